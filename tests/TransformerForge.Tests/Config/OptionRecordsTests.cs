using TransformerForge.Config;
using TransformerForge.Modules;

namespace TransformerForge.Tests.Config;

/// <summary>
/// The <c>attn_*</c> and <c>ff_*</c> options are their own records: their keys live only in their own tables (spliced,
/// flat, into the layer object), the records reach the blocks unchanged, and they are checked where they live.
/// </summary>
public class OptionRecordsTests
{
    [Fact]
    public void AttentionAndFeedForwardKeysLiveInTheirOwnTables()
    {
        var layerKeys = AttentionLayersConfig.Table.Keys.ToList();
        Assert.Equal(layerKeys.Count, layerKeys.Distinct().Count());
        Assert.Subset(layerKeys.ToHashSet(), AttentionOptions.Table.Keys.ToHashSet());
        Assert.Subset(layerKeys.ToHashSet(), FeedForwardOptions.Table.Keys.ToHashSet());
        Assert.All(AttentionOptions.Table.Keys, k => Assert.StartsWith("attn_", k));
        Assert.All(FeedForwardOptions.Table.Keys, k => Assert.StartsWith("ff_", k));
        // No attn_* or ff_* key is defined by the layer record itself.
        var own = layerKeys.Except(AttentionOptions.Table.Keys).Except(FeedForwardOptions.Table.Keys);
        Assert.DoesNotContain(own, k => k.StartsWith("attn_") || k.StartsWith("ff_"));
    }

    [Fact]
    public void TheRecordsReachTheBlocksAsConfigured()
    {
        const string json = """
            { "type": "Decoder", "dim": 16, "depth": 2, "heads": 2, "cross_attend": true, "attn_dim_head": 8,
              "attn_num_mem_kv": 2, "attn_max_attend_past": 5, "attn_gate_values": true, "attn_qkv_bias": true, "attn_dropout": 0.25,
              "primer_ez": true, "ff_mult": 2, "ff_dropout": 0.5 }
            """;
        var c = Assert.IsType<AttentionLayersModelConfig>(ModelConfig.Parse(json)).Layers;
        Assert.Equal(new AttentionOptions { DimHead = 8, NumMemKv = 2, MaxAttendPast = 5, GateValues = true, QkvBias = true, Dropout = 0.25 }, c.Attn);
        Assert.Equal(new FeedForwardOptions { Mult = 2, Dropout = 0.5 }, c.Ff);

        using var layers = new AttentionLayers(c);
        var blocks = layers.named_modules().Select(m => m.module).OfType<Attention>().ToList();
        // primer_ez adds the convolutions to self-attention only; cross-attention gets the attn_* keys as written.
        Assert.Equal(new[] { c.Attn with { Dconv = true }, c.Attn, c.Attn with { Dconv = true }, c.Attn }, blocks.Select(b => b.Options));
        Assert.Equal(new[] { true, false, true, false }, blocks.Select(b => b.Causal));
    }

    [Theory]
    [InlineData("attn_dim_head", 0)]
    [InlineData("attn_dropout", 1.0)]
    [InlineData("attn_num_mem_kv", -1)]
    [InlineData("attn_max_attend_past", -1)]
    [InlineData("attn_dconv_kernel_size", 0)]
    public void AttentionOptionsAreCheckedWhereTheyLive(string key, double value)
    {
        var o = key switch
        {
            "attn_dim_head" => new AttentionOptions { DimHead = (int)value },
            "attn_dropout" => new AttentionOptions { Dropout = value },
            "attn_num_mem_kv" => new AttentionOptions { NumMemKv = (int)value },
            "attn_max_attend_past" => new AttentionOptions { MaxAttendPast = (int)value },
            _ => new AttentionOptions { DconvKernelSize = (int)value },
        };
        // Built in C#, the block checks its options itself; in JSON, the key comes with its path.
        Assert.Equal(key, Assert.Throws<ConfigException>(() => new Attention(16, 2, causal: false, o)).Key);
        var json = $$"""{ "type": "TransformerWrapper", "num_tokens": 8, "max_seq_len": 8, "attn_layers": { "type": "Decoder", "dim": 16, "depth": 1, "{{key}}": {{value}} } }""";
        Assert.Equal("attn_layers." + key, Assert.Throws<ConfigException>(() => ModelConfig.Parse(json)).Key);
    }
}
