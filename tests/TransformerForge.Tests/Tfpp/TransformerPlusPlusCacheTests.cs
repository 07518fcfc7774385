using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Models;
using TransformerForge.Modules.TokenMixers;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Tfpp;

/// <summary>
/// Cached decoding of every token mixer equals recomputing the whole sequence: a 24-token sequence fed in pieces
/// (a prompt, single tokens, a short chunk) through the decoding state gives the logits of feeding it whole, in
/// float64 to 1e-10, with perturbed weights. The pieces cross local-attention windows, LSH chunks and the reach of the
/// convolution kernels; both block layouts.
/// </summary>
public class TransformerPlusPlusCacheTests
{
    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var block in TransformerPlusPlusConfig.Blocks)
        {
            foreach (var op in TokenMixerFactory.OpNames) data.Add(op, block);
            data.Add("mixed", block);
        }
        return data;
    }

    static TransformerPlusPlusConfig ConfigFor(string op, string block) => op == "mixed"
        ? TfppFixtures.Config(block,
            TfppFixtures.Layer(4, ("mha", 1), ("sgconv", 1), ("local_attn", 1), ("lsh_attn", 1)),
            TfppFixtures.Layer(2, ("sep_conv1d", 1), ("sgconv3", 1)),
            TfppFixtures.Layer(3, ("local_attn", 2), ("mha", 1)))
        : TfppFixtures.Config(block, TfppFixtures.Layer(2, (op, 2)), TfppFixtures.Layer(4, (op, 3), ("mha", 1)));

    [Theory]
    [MemberData(nameof(Cases))]
    public void CachedLogitsEqualFullRecompute(string op, string block)
    {
        using var scope = NewDisposeScope();
        using var model = TfppFixtures.Perturbed(ConfigFor(op, block));
        using var _ = no_grad();
        var tokens = randint(0, 40, [2, 24]);
        var full = model.Logits(tokens);

        using var state = model.CreateDecodingState()!;
        var pieces = new List<Tensor>();
        long at = 0;
        foreach (var length in new long[] { 5, 1, 1, 4, 1, 7, 1, 1, 3 })
        {
            pieces.Add(model.Logits(tokens.narrow(1, at, length), state: state));
            at += length;
        }
        Assert.Equal(24, at);
        Assert.Equal(24, state.Length);
        var cached = cat(pieces, 1);
        var error = TfppFixtures.MaxAbs(cached, full);
        Assert.True(error < 1e-10, $"{op} ({block}): cached logits differ from the full recompute by {error:e2}");
        // Not vacuous: the logits depend on the tokens (and so on the cached positions).
        Assert.True(full.std().item<double>() > 1e-3);
    }

    [Fact]
    public void APaddingMaskIsRefusedWithAClearMessage()
    {
        using var model = TfppFixtures.Perturbed(ConfigFor("mha", "codegen"));
        var tokens = randint(0, 40, [2, 6]);
        var mask = ones(2, 6, dtype: ScalarType.Bool);
        mask[0, 0] = false;
        var e = Assert.Throws<ArgumentException>(() => model.Logits(tokens, mask));
        Assert.Contains("no padding mask", e.Message);
        // An all-true mask is no padding.
        Assert.Equal(model.Logits(tokens).shape, model.Logits(tokens, ones(2, 6, dtype: ScalarType.Bool)).shape);
    }
}
