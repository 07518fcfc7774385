using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Models;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Models;

/// <summary>Primer EZ in the x-transformers configuration: the preset turns on ReLU² and multi-DConv-head attention.</summary>
public class PrimerTests
{
    const string Json = """
        { "type": "TransformerWrapper", "num_tokens": 32, "max_seq_len": 16,
          "attn_layers": { "type": "Decoder", "dim": 32, "depth": 2, "heads": 4, "attn_dim_head": 8, "primer_ez": true } }
        """;

    [Fact]
    public void PresetAddsConvolutionsAfterEveryProjection()
    {
        var m = new TransformerWrapper((TransformerWrapperConfig)ModelConfig.Parse(Json));
        var names = m.named_parameters().Select(p => p.name).ToList();
        foreach (var proj in new[] { "to_q_dconv", "to_k_dconv", "to_v_dconv" })
            Assert.Contains($"attn_layers.layers.0.1.{proj}.weight", names);
        // One kernel per projected channel (the paper): heads · dim_head = 32 channels of width 3.
        Assert.Equal(new long[] { 32, 1, 3 }, m.named_parameters().Single(p => p.name == "attn_layers.layers.0.1.to_q_dconv.weight").parameter.shape);
        var shared = (TransformerWrapperConfig)ModelConfig.Parse(Json.Replace("\"primer_ez\": true", "\"attn_dconv\": true, \"attn_dconv_shared_heads\": true"));
        var ms = new TransformerWrapper(shared);
        Assert.Equal(new long[] { 8, 1, 3 }, ms.named_parameters().Single(p => p.name == "attn_layers.layers.0.1.to_q_dconv.weight").parameter.shape);
    }

    [Fact]
    public void ConvolutionIsCausal()
    {
        // Changing a later token never changes earlier logits.
        manual_seed(3);
        var m = new TransformerWrapper((TransformerWrapperConfig)ModelConfig.Parse(Json));
        m.eval();
        using var _ = no_grad();
        var a = randint(0, 32, new long[] { 1, 10 });
        var b = a.clone();
        b[0, 7] = (a[0, 7] + 1) % 32;
        var la = m.forward(a);
        var lb = m.forward(b);
        Assert.True((la.narrow(1, 0, 7) - lb.narrow(1, 0, 7)).abs().max().item<float>() < 1e-6);
        Assert.True((la.narrow(1, 7, 1) - lb.narrow(1, 7, 1)).abs().max().item<float>() > 1e-6);
    }

    [Fact]
    public void ConfigRoundTripsAndRejectsCollabHeads()
    {
        var c = ModelConfig.Parse(Json);
        Assert.Contains("\"primer_ez\": true", c.ToJsonString());
        var e = Assert.Throws<ConfigException>(() => ModelConfig.Parse(Json.Replace("\"primer_ez\": true", "\"primer_ez\": true, \"attn_collab_heads\": true")));
        Assert.Equal("attn_layers.attn_dconv", e.Key);
    }
}
