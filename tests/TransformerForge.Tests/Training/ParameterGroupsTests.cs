using TransformerForge.Config;
using TransformerForge.Models;
using TransformerForge.Runtime;
using TransformerForge.Training;

namespace TransformerForge.Tests.Training;

public class ParameterGroupsTests
{
    [Fact]
    public void NormsBiasesEmbeddingsAndMemoryTokensGetNoWeightDecay()
    {
        TorchRuntime.EnsureLoaded();
        var config = TrainingFixtures.TinyDecoder() with { NumMemoryTokens = 2 };
        using var model = ModelFactory.Create(config);
        var groups = ParameterGroups.Split(model, 0.1);
        var decay = groups.Single(g => g.Name == "decay");
        var noDecay = groups.Single(g => g.Name == "no_decay");
        Assert.Equal(0.1, decay.WeightDecay);
        Assert.Equal(0, noDecay.WeightDecay);
        var noDecayNames = noDecay.Parameters.Select(p => p.Name).ToHashSet();
        var decayNames = decay.Parameters.Select(p => p.Name).ToHashSet();

        Assert.Contains("token_emb.weight", noDecayNames);
        Assert.Contains("pos_emb.emb.weight", noDecayNames);
        Assert.Contains("memory_tokens", noDecayNames);
        Assert.Contains("norm.weight", noDecayNames);
        Assert.Contains("norm.bias", noDecayNames);
        Assert.Contains("to_logits.bias", noDecayNames);
        Assert.Contains("to_logits.weight", decayNames);
        Assert.All(decay.Parameters, p => Assert.True(p.Parameter.dim() >= 2, p.Name));
        Assert.All(decayNames, n => Assert.DoesNotContain("emb", n));
        // Every parameter is in exactly one group.
        Assert.Equal(model.parameters().Count(), decayNames.Count + noDecayNames.Count);
        Assert.Empty(decayNames.Intersect(noDecayNames));
    }

    [Fact]
    public void TiedWeightsAreOptimizedOnce()
    {
        TorchRuntime.EnsureLoaded();
        var config = (XTransformerConfig)ModelConfig.Parse("""
            { "type": "XTransformer", "dim": 16, "tie_token_emb": true,
              "enc_num_tokens": 12, "enc_max_seq_len": 8, "enc_depth": 1, "enc_heads": 2, "enc_attn_dim_head": 8,
              "dec_num_tokens": 12, "dec_max_seq_len": 8, "dec_depth": 1, "dec_heads": 2, "dec_attn_dim_head": 8 }
            """);
        using var model = ModelFactory.Create(config);
        var names = model.state_dict().Keys.Where(k => k.Contains("token_emb")).ToList();
        Assert.True(names.Count >= 2, $"expected the shared embedding under two names, got {string.Join(", ", names)}");
        var unique = ParameterGroups.Unique(model);
        Assert.Single(unique, p => p.Name.Contains("token_emb"));
        Assert.Equal(unique.Count, unique.Select(p => p.Parameter).Distinct(ReferenceEqualityComparer.Instance).Count());
        using var optimizer = new AdamW(ParameterGroups.Split(model, 0.01));
        Assert.Equal(unique.Count, optimizer.Parameters.Count());
    }
}
