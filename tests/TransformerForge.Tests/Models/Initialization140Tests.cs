using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Models;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Models;

/// <summary>x-transformers 1.40's parameters start where 1.40 starts them (parity loads weights, so only these tests see initial values).</summary>
public class Initialization140Tests
{
    static TransformerWrapper Build(string layerOptions, string wrapperOptions = "")
    {
        TransformerForge.Runtime.TorchRuntime.EnsureLoaded();
        return (TransformerWrapper)ModelFactory.Create(ModelConfig.Parse($$"""
            { "type": "TransformerWrapper", "x_transformers_version": "1.40", {{wrapperOptions}} "num_tokens": 16, "max_seq_len": 8,
              "attn_layers": { "type": "Decoder", "dim": 16, "depth": 1, "heads": 2, "attn_dim_head": 8 {{layerOptions}} } }
            """));
    }

    static Tensor P(nn.Module m, string name) => m.named_parameters().Single(p => p.name == name).parameter;

    [Fact]
    public void NormGainsAreStoredAsOffsetsFromOne()
    {
        // norm_add_unit_offset (the default): gamma starts at 0 and the norm multiplies by gamma + 1, a plain LayerNorm.
        using var m = Build("");
        Assert.Equal(0f, P(m, "attn_layers.layers.0.0.0.gamma").abs().max().item<float>());
        Assert.Equal(0f, P(m, "attn_layers.final_norm.gamma").abs().max().item<float>());
        var x = randn(2, 3, 16);
        var norm = m.AttnLayers.named_modules().Single(n => n.name == "final_norm").module as nn.Module<Tensor, Tensor>;
        var expected = nn.functional.layer_norm(x, new long[] { 16 });
        Assert.True((norm!.forward(x) - expected).abs().max().item<float>() < 1e-6);

        using var plain = Build(", \"norm_add_unit_offset\": false, \"use_rmsnorm\": true");
        Assert.Equal(1f, P(plain, "attn_layers.layers.0.0.0.g").min().item<float>());
    }

    [Fact]
    public void LayerScaleStartsAtItsInitValue()
    {
        using var m = Build(", \"use_layerscale\": true, \"layerscale_init_value\": 0.25");
        Assert.Equal(-0.75f, P(m, "attn_layers.layers.0.1.gamma").min().item<float>());   // stored as init - 1
        using var noOffset = Build(", \"use_layerscale\": true, \"layerscale_init_value\": 0.25, \"norm_add_unit_offset\": false");
        Assert.Equal(0.25f, P(noOffset, "attn_layers.layers.0.1.gamma").max().item<float>());
    }

    [Fact]
    public void GatesStartOpenAndTalkingHeadsAtTheIdentity()
    {
        using var m = Build(", \"attn_gate_values\": true, \"attn_gate_value_heads\": true, \"attn_pre_talking_heads\": true, \"attn_post_talking_heads\": true, \"attn_qk_norm\": true, \"attn_qk_norm_dim_scale\": true");
        Assert.Equal(0f, P(m, "attn_layers.layers.0.1.to_v_gate.weight").abs().max().item<float>());
        Assert.Equal(10f, P(m, "attn_layers.layers.0.1.to_v_gate.bias").min().item<float>());
        Assert.Equal(0f, P(m, "attn_layers.layers.0.1.to_v_head_gate.weight").abs().max().item<float>());
        Assert.Equal(10f, P(m, "attn_layers.layers.0.1.to_v_head_gate.bias").min().item<float>());
        foreach (var which in new[] { "pre", "post" })
            Assert.Equal(0f, (P(m, $"attn_layers.layers.0.1.attend.{which}_softmax_talking_heads.weight").reshape(2, 2) - eye(2)).abs().max().item<float>());
        Assert.Equal(1f, P(m, "attn_layers.layers.0.1.qk_norm_q_scale").min().item<float>());
        Assert.Equal(1f, P(m, "attn_layers.layers.0.1.qk_norm_k_scale").max().item<float>());
    }

    [Fact]
    public void L2NormalisedEmbeddingsStartTiny()
    {
        using var m = Build("", "\"l2norm_embed\": true,");
        Assert.True(P(m, "token_emb.emb.weight").std().item<float>() < 1e-4);
        Assert.True(P(m, "pos_emb.emb.weight").std().item<float>() < 1e-4);
        using var plain = Build("");
        Assert.True(P(plain, "token_emb.emb.weight").std().item<float>() > 0.1);
    }
}
