using TorchSharp;
using TransformerForge.Modules;
using TransformerForge.Tests.Support;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Modules;

/// <summary>
/// The layer stack's own rules that no fixture shows (each found as a surviving Stryker mutant): how Transformer-XL
/// memories are counted, aligned and masked, which calls are refused, and 1.40's norm bound. float64, weights perturbed.
/// </summary>
public class AttentionLayersTests
{
    const string Layers = "\"dim\": 16, \"heads\": 2, \"attn_dim_head\": 8";

    [Fact]
    public void MemoriesAreCountedPerSelfAttentionLayer()
    {
        // Macaron at depth 2 is f a f f a f: two self-attention layers among six, so two memories, not four.
        var stack = Build.Stack($$"""{ "type": "Decoder", {{Layers}}, "depth": 2, "macaron": true }""");
        Assert.Equal(2, stack.NumAttnLayers);
        var x = Build.Randn(1, 1, 4, 16);
        var mems = new Tensor?[] { Build.Randn(2, 1, 3, 16), Build.Randn(3, 1, 3, 16) };
        using var _ = no_grad();
        Assert.Equal(new long[] { 1, 4, 16 }, stack.Forward(x, mems: mems).Output.shape);
        var e = Assert.Throws<ArgumentException>(() => stack.Forward(x, mems: mems.Concat(mems).ToArray()));
        Assert.Contains("expected 2 memories", e.Message);
        Assert.Contains("got 4", e.Message);
    }

    [Fact]
    public void ContextIsRequiredExactlyWhenCrossAttending()
    {
        var plain = Build.Stack($$"""{ "type": "Decoder", {{Layers}}, "depth": 1 }""");
        var cross = Build.Stack($$"""{ "type": "Decoder", {{Layers}}, "depth": 1, "cross_attend": true }""");
        var x = Build.Randn(1, 1, 4, 16);
        var context = Build.Randn(2, 1, 5, 16);
        Assert.Contains("context given but cross_attend is not set", Assert.Throws<ArgumentException>(() => plain.Forward(x, context: context)).Message);
        Assert.Contains("context must be passed in when cross_attend is set", Assert.Throws<ArgumentException>(() => cross.Forward(x)).Message);
    }

    [Fact]
    public void LayersMayHaveMemoriesOfDifferentLengths()
    {
        // x-transformers sizes the rotary angles by the longest memory (a layer may have none): each layer's keys
        // take the last positions. The first layer sees only its own memory, so what it passes on does not depend
        // on the second layer's.
        var stack = Build.Stack("""{ "type": "Decoder", "dim": 16, "heads": 2, "attn_dim_head": 32, "depth": 2, "rotary_pos_emb": true }""");
        var x = Build.Randn(1, 1, 4, 16);
        var first = Build.Randn(2, 1, 3, 16);
        using var _ = no_grad();
        var (uneven, unevenInter) = stack.Forward(x, mems: new Tensor?[] { first, null });
        var (_, evenInter) = stack.Forward(x, mems: new Tensor?[] { first, Build.Randn(3, 1, 3, 16) });
        Assert.True(Build.MaxDiff(unevenInter.Hiddens[1], evenInter.Hiddens[1]) < 1e-12);
        // The second layer, without a memory, sees the new positions only: as if no layer had one, from its input on.
        var (_, none) = stack.Forward(x, mems: new Tensor?[] { null, null });
        Assert.True(Build.MaxDiff(unevenInter.Hiddens[0], none.Hiddens[0]) < 1e-12);
        Assert.False(uneven.isnan().any().item<bool>());
    }

    [Fact]
    public void MemoriesStayVisibleWhenNewPositionsArePadded()
    {
        // An encoder with Transformer-XL memories and a padding mask: a padded position hides from every query, so
        // the real positions' outputs are those of the sequence without it; the memories are never masked.
        var stack = Build.Stack($$"""{ "type": "Encoder", {{Layers}}, "depth": 2 }""");
        var x = Build.Randn(1, 1, 6, 16);
        var mems = new Tensor?[] { Build.Randn(2, 1, 3, 16), Build.Randn(3, 1, 3, 16) };
        var mask = ones(1, 6, dtype: ScalarType.Bool);
        mask[0, 4] = tensor(false);
        mask[0, 5] = tensor(false);
        using var _ = no_grad();
        var padded = stack.Forward(x, mask: mask, mems: mems).Output;
        var truncated = stack.Forward(x.narrow(1, 0, 4), mems: mems).Output;
        Assert.True(Build.MaxDiff(padded.narrow(1, 0, 4), truncated) < 1e-12);
        var withoutMems = stack.Forward(x.narrow(1, 0, 4)).Output;
        Assert.True(Build.MaxDiff(truncated, withoutMems) > 1e-3, "the memories reach the output");
    }

    [Theory]
    [InlineData("use_rmsnorm")]
    [InlineData("use_simple_rmsnorm")]
    [InlineData("use_scalenorm")]
    public void Norms140BoundTheLengthAsTorchNormalizeDoes(string norm)
    {
        // 1.40's norms are F.normalize(x) · √dim · gain, and F.normalize divides by max(‖x‖, 1e-12). A vector of
        // length 4e-12 is above that bound: it comes out at length √dim (initial gains are 1).
        var stack = Build.Stack($$"""{ "type": "Decoder", "x_transformers_version": "1.40", {{Layers}}, "depth": 1, "{{norm}}": true }""", perturbSeed: null);
        var final = (nn.Module<Tensor, Tensor>)stack.named_modules().Single(m => m.name == "final_norm").module;
        var direction = Build.Randn(4, 1, 1, 16);
        direction = direction / direction.norm(-1, keepdim: true);
        using var _ = no_grad();
        foreach (var length in new[] { 4e-12, 1.0 })
        {
            var y = final.forward(direction * length);
            Assert.True(Build.MaxDiff(y, direction * 4.0) < 1e-9, $"{norm}, ‖x‖ = {length}: {Build.MaxDiff(y, direction * 4.0)}");
        }
        // Below the bound the division stops at 1e-12: length 1e-13 comes out at 0.1 · √dim.
        Assert.True(Build.MaxDiff(final.forward(direction * 1e-13), direction * 0.4) < 1e-9);
    }
}
