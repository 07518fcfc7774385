using TransformerForge.Config;

namespace TransformerForge.Tests.Config;

/// <summary>
/// What <see cref="ModelPresets.Create"/> builds, exactly: head width, Primer EZ, Transformer++'s share of heads per
/// mixer at the boundaries (1, 2, 3, 4, 8 heads), preset aliases and argument checks. Found by Stryker as surviving
/// mutants in ModelPresets.
/// </summary>
public class ModelPresetShapeTests
{
    [Theory]
    [InlineData("vanilla", false)]
    [InlineData("decoder", false)]
    [InlineData("primer-ez", true)]
    [InlineData("primer_ez", true)]
    [InlineData(" Primer ", true)]
    public void DecoderPresetsSplitTheWidthAmongHeads(string name, bool primerEz)
    {
        var c = Assert.IsType<TransformerWrapperConfig>(ModelPresets.Create(name, 20, 12, 32, 2, 4));
        Assert.Equal((20, 12), (c.NumTokens, c.MaxSeqLen));
        var l = c.AttnLayers;
        Assert.Equal((LayerStackType.Decoder, 32, 2, 4), (l.Type, l.Dim, l.Depth, l.Heads));
        Assert.Equal(8, l.Attn.DimHead);
        Assert.Equal(primerEz, l.PrimerEz);
    }

    [Fact]
    public void HeadWidthIsAtLeastOne()
    {
        var c = Assert.IsType<TransformerWrapperConfig>(ModelPresets.Create(ModelPresets.Vanilla, 20, 12, 2, 1, 4));
        Assert.Equal(1, c.AttnLayers.Attn.DimHead);
    }

    [Theory]
    [InlineData("vanilla")]
    [InlineData("primer-ez")]
    [InlineData("tfpp")]
    public void PresetsValidateWhatTheyBuild(string name)
    {
        var e = Assert.Throws<ConfigException>(() => ModelPresets.Create(name, 0, 12, 32, 1, 4));
        Assert.Equal(("num_tokens", "must be a positive integer"), (e.Key, e.Problem));
    }

    [Fact]
    public void TransformerPlusPlusRefusesHeadsThatDoNotDivideTheWidth()
    {
        var e = Assert.Throws<ConfigException>(() => ModelPresets.Create("transformer++", 16, 12, 30, 1, 4));
        Assert.Equal(("heads", "must divide dim (30), got 4"), (e.Key, e.Problem));
    }

    [Theory]
    [InlineData("depth", 0, 4, 0)]
    [InlineData("heads", 1, 0, 0)]
    [InlineData("heads", 1, -2, -2)]
    public void TransformerPlusPlusRefusesNonPositiveDepthOrHeads(string key, int depth, int heads, int got)
    {
        var e = Assert.Throws<ConfigException>(() => ModelPresets.Create("transformer++", 16, 12, 32, depth, heads));
        Assert.Equal((key, $"must be a positive integer, got {got}"), (e.Key, e.Problem));
    }

    /// <summary>Half (rounded up) rotary attention, a quarter SGConv, a quarter local attention; under 4 heads, half SGConv and no local attention.</summary>
    [Theory]
    [InlineData(1, "mha 1")]
    [InlineData(2, "mha 1, sgconv 1")]
    [InlineData(3, "mha 2, sgconv 1")]
    [InlineData(4, "mha 2, sgconv 1, local_attn 1")]
    [InlineData(8, "mha 4, sgconv 2, local_attn 2")]
    public void TransformerPlusPlusSharesHeadsAmongMixers(int heads, string mixers)
    {
        var c = Assert.IsType<TransformerPlusPlusConfig>(ModelPresets.Create("transformer++", 16, 12, 48, 1, heads));
        var layer = Assert.Single(c.Layers);
        Assert.Equal(heads, layer.Heads);
        Assert.Equal(4 * 48, layer.FfInnerDim);
        Assert.Equal(mixers, string.Join(", ", layer.Mixers.Select(m => $"{m.Op} {m.Heads}")));
        Assert.Equal(layer.Uses("sgconv") ? 12 : null, layer.SGConvKernelSize);
        Assert.Equal(layer.Uses("local_attn") ? 64 : null, layer.LocalAttnWindowSize);
    }

    [Fact]
    public void TransformerPlusPlusKernelIsAtMost64Taps()
    {
        var c = Assert.IsType<TransformerPlusPlusConfig>(ModelPresets.Create(ModelPresets.TransformerPlusPlus, 16, 100, 32, 3, 4));
        Assert.Equal(3, c.Depth);
        Assert.All(c.Layers, l => Assert.Equal(64, l.SGConvKernelSize));
    }

    [Theory]
    [InlineData("transformer++")]
    [InlineData("transformer-plus-plus")]
    [InlineData("TFPP")]
    public void TransformerPlusPlusAliases(string name) =>
        Assert.IsType<TransformerPlusPlusConfig>(ModelPresets.Create(name, 16, 12, 32, 1, 4));

    [Fact]
    public void AnUnknownPresetListsTheKnownOnes()
    {
        var e = Assert.Throws<ArgumentException>(() => ModelPresets.Create("gpt", 16, 12, 32, 1, 4));
        Assert.Equal("unknown preset 'gpt'; known presets: vanilla, primer-ez, transformer++", e.Message);
    }
}
