using TransformerForge.Config;
using TransformerForge.Models;

namespace TransformerForge.Tests.Config;

/// <summary>
/// par_ratio with one attention block (par_attn = 1): x-transformers' par_width, (depth_cut + depth_cut) // 1, can exceed
/// par_depth, and Python's <c>('f',) * negative</c> is empty, so the layer list is the head alone, longer than par_depth.
/// Found judging the Stryker survivor at AttentionLayersConfig.cs:347 (par_ratio = par_depth passes validation): the
/// layer list used to throw ArgumentOutOfRangeException from Enumerable.Repeat.
/// </summary>
public class ParRatioLongHeadTests
{
    [Theory]
    // depth 3, block (a, f): par_depth 6, par_attn 1, depth_cut 4, par_width 8: a + 7 f.
    [InlineData(3, false, 6, "afffffff")]
    [InlineData(3, false, 4, "afffffff")]
    // depth 2, macaron block (f, a, f): par_depth 6, the same head.
    [InlineData(2, true, 6, "afffffff")]
    // depth 2, block (a, f): par_depth 4, depth_cut 2, par_width 4: the head fills par_depth exactly.
    [InlineData(2, false, 4, "afff")]
    public void TheLayerListIsX_TransformersAndTheCountsAgree(int depth, bool macaron, int par, string expected)
    {
        var c = new AttentionLayersConfig { Type = LayerStackType.Decoder, Dim = 16, Depth = depth, Heads = 2, Macaron = macaron, ParRatio = par, Attn = new AttentionOptions { DimHead = 8 } };
        c.Validate();
        Assert.Equal(expected, new string(c.LayerTypes().ToArray()));
        Assert.Equal((1L, 0L, expected.Length - 1L), ModelSize.LayerCounts(c));
    }

    [Fact]
    public void TheModelBuildsAndRuns()
    {
        var json = """{"type": "TransformerWrapper", "num_tokens": 16, "max_seq_len": 8, "attn_layers": {"type": "Decoder", "dim": 16, "depth": 3, "heads": 2, "attn_dim_head": 8, "par_ratio": 6, "shift_tokens": [0, 1, 0, 0, 0, 0, 0, 0]}}""";
        using var m = new TransformerWrapper((TransformerWrapperConfig)ModelConfig.Parse(json));
        using var logits = m.forward(TorchSharp.torch.randint(0, 16, [1, 5]));
        Assert.Equal(new long[] { 1, 5, 16 }, logits.shape);
    }
}
