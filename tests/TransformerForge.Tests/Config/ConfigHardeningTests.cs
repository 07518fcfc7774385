using TransformerForge.Config;
using TransformerForge.Models;

namespace TransformerForge.Tests.Config;

/// <summary>Configurations that used to abort the process (or silently misbehave) are refused with the key named.</summary>
public class ConfigHardeningTests
{
    static ConfigException Refused(string layerOptions)
    {
        var json = """{"type": "TransformerWrapper", "num_tokens": 16, "max_seq_len": 16, "attn_layers": {"type": "Decoder", "dim": 16, "depth": 1, "heads": 2"""
            + layerOptions + "}}";
        return Assert.Throws<ConfigException>(() => ModelConfig.Parse(json));
    }

    /// <summary>Found by Stryker (Attention.cs:284): this combination used to fail inside libtorch with no key named.</summary>
    [Fact]
    public void CollaborativeHeadsWithMemoryKeysOfAnotherWidthAreRefused()
    {
        var e = Refused(""", "attn_collab_heads": true, "attn_num_mem_kv": 2""");
        Assert.Equal("attn_layers.attn_num_mem_kv", e.Key);
        Assert.Contains("attn_dim_head (64)", e.Message);
        // Where the shared key has exactly dim_head features, the memory keys fit and the model runs.
        var json = """{"type": "TransformerWrapper", "num_tokens": 16, "max_seq_len": 16, "attn_layers": {"type": "Decoder", "dim": 16, "depth": 1, "heads": 2, "attn_collab_heads": true, "attn_collab_compression": 0.5, "attn_num_mem_kv": 2}}""";
        using var m = new TransformerWrapper((TransformerWrapperConfig)ModelConfig.Parse(json));
        using var logits = m.forward(TorchSharp.torch.randint(0, 16, [1, 5]));
        Assert.Equal(new long[] { 1, 5, 16 }, logits.shape);
    }

    [Fact]
    public void FeedForwardWidthOfZeroIsRefused()
    {
        var e = Refused(""", "ff_mult": 1e-9""");
        Assert.Equal("attn_layers.ff_mult", e.Key);
        Assert.Contains("= 0", e.Message);
    }

    [Fact]
    public void InfiniteFeedForwardMultiplierIsRefused()
    {
        Assert.Equal("attn_layers.ff_mult", Refused(""", "ff_mult": 1e400""").Key);
        // From C# the JSON reader is not involved: the record's validation catches it.
        var layers = new AttentionLayersConfig { Dim = 16, Depth = 1, Ff = new FeedForwardOptions { Mult = double.PositiveInfinity } };
        Assert.Equal("ff_mult", Assert.Throws<ConfigException>(() => layers.Validate()).Key);
    }

    [Fact]
    public void HeadsTimesHeadDimensionOverflowingAnIntIsRefused()
    {
        var e = Refused(""", "attn_dim_head": 1073741824""");
        Assert.Equal("attn_layers.attn_dim_head", e.Key);
        Assert.Contains("2147483648", e.Message);
    }

    [Theory]
    [InlineData("2147483647")]
    [InlineData("16")]
    [InlineData("[]")]
    public void ShiftTokensBeyondTheWidthIsRefused(string shift)
    {
        var e = Refused($$""", "shift_tokens": {{shift}}""");
        Assert.Equal("attn_layers.shift_tokens", e.Key);
    }

    [Fact]
    public void ShiftTokensWithinTheWidthIsAccepted()
    {
        var c = (TransformerWrapperConfig)ModelConfig.Parse("""{"type": "TransformerWrapper", "num_tokens": 16, "max_seq_len": 16, "attn_layers": {"type": "Decoder", "dim": 16, "depth": 1, "heads": 2, "shift_tokens": 15}}""");
        Assert.Equal(15, c.AttnLayers.ShiftTokens[0]);
    }

    [Fact]
    public void LayerCountsAgreeWithTheLayerList()
    {
        var configs = new[]
        {
            new AttentionLayersConfig { Type = LayerStackType.Decoder, Dim = 8, Depth = 5, Macaron = true },
            new AttentionLayersConfig { Type = LayerStackType.Decoder, Dim = 8, Depth = 4, SandwichCoef = 3 },
            new AttentionLayersConfig { Type = LayerStackType.AttentionLayers, Dim = 8, Depth = 6, CrossAttend = true, ParRatio = 5 },
            new AttentionLayersConfig { Type = LayerStackType.CrossAttender, Dim = 8, Depth = 3 },
            new AttentionLayersConfig { Type = LayerStackType.Encoder, Dim = 8, Depth = 1, CustomLayers = ["a", "f", "a"] },
        };
        foreach (var c in configs)
        {
            var types = c.LayerTypes();
            var (a, x, f) = ModelSize.LayerCounts(c);
            Assert.Equal((types.Count(t => t == 'a'), types.Count(t => t == 'c'), types.Count(t => t == 'f')), ((int)a, (int)x, (int)f));
        }
    }
}
