using System.Text.Json;
using TransformerForge.Config;

namespace TransformerForge.Tests.Config;

/// <summary>
/// <see cref="OptionTable{T}"/> on its own: integer and nullable readers, version filters, duplicate rows, and the
/// "did you mean" suggestion (nearest key by edit distance, within max(2, length / 4), aliases included, keys of the
/// other x-transformers version left out).
/// </summary>
public class OptionTableBehaviourTests
{
    sealed record Probe
    {
        public int N { get; init; }
        public double? D { get; init; }
        public XTransformersVersion Version { get; init; }
    }

    static JsonElement Json(string json) => JsonDocument.Parse(json).RootElement;

    static ConfigException Unknown(OptionTable<Probe> table, string key, Probe? start = null)
    {
        var e = Assert.Throws<ConfigException>(() => table.Read(Json($$"""{"{{key}}": 1}"""), start ?? new Probe(), "p."));
        Assert.Equal("p." + key, e.Key);
        return e;
    }

    static OptionTable<Probe> Keys(params string[] keys)
    {
        var t = new OptionTable<Probe>();
        foreach (var k in keys) t.Int(k, p => p.N, (p, v) => p with { N = v });
        return t;
    }

    [Fact]
    public void KeysForListsTheSharedKeysAndThoseOfThatVersionOnly()
    {
        var v020 = AttentionOptions.Table.KeysFor(XTransformersVersion.V0_20).ToList();
        var v140 = AttentionOptions.Table.KeysFor(XTransformersVersion.V1_40).ToList();
        Assert.Contains("attn_dim_head", v020);
        Assert.Contains("attn_dim_head", v140);
        Assert.Contains("attn_talking_heads", v020);
        Assert.DoesNotContain("attn_talking_heads", v140);
        Assert.Contains("attn_pre_talking_heads", v140);
        Assert.DoesNotContain("attn_pre_talking_heads", v020);
    }

    [Fact]
    public void IncludedRowsKeepTheirVersion()
    {
        Assert.Equal(XTransformersVersion.V1_40, AttentionLayersConfig.Table.VersionOnly("attn_qk_norm"));
        Assert.Equal(XTransformersVersion.V0_20, AttentionLayersConfig.Table.VersionOnly("attn_talking_heads"));
        Assert.Equal(XTransformersVersion.V1_40, AttentionLayersConfig.Table.VersionOnly("ff_swish"));
        Assert.DoesNotContain("attn_qk_norm", AttentionLayersConfig.Table.KeysFor(XTransformersVersion.V0_20));
        Assert.Null(AttentionLayersConfig.Table.VersionOnly("attn_dim_head"));
        Assert.Null(AttentionLayersConfig.Table.VersionOnly("no_such_key"));
    }

    [Fact]
    public void ARowAddedTwiceIsAProgrammingError()
    {
        var e = Assert.Throws<InvalidOperationException>(() => Keys("a", "a"));
        Assert.Equal("option table has 'a' twice", e.Message);
    }

    [Fact]
    public void NullableReadersTakeNullAndNumbers()
    {
        var t = new OptionTable<Probe>().OptDouble("d", p => p.D, (p, v) => p with { D = v });
        Assert.Null(t.Read(Json("""{"d": null}"""), new Probe { D = 2 }, "").D);
        Assert.Equal(1.5, t.Read(Json("""{"d": 1.5}"""), new Probe(), "").D);
        var layers = AttentionLayersConfig.FromJson(Json("""{"type": "Decoder", "dim": 16, "depth": 1, "heads": 2, "alibi_num_heads": null, "attn_sparse_topk": 3}"""), "");
        Assert.Null(layers.AlibiNumHeads);
        Assert.Equal(3, layers.Attn.SparseTopk);
    }

    [Fact]
    public void AStringListRefusesANonStringNamingTheElement()
    {
        var e = Assert.Throws<ConfigException>(() => AttentionLayersConfig.FromJson(
            Json("""{"type": "Decoder", "dim": 16, "depth": 1, "heads": 2, "custom_layers": ["a", 1]}"""), "attn_layers."));
        Assert.Equal(("attn_layers.custom_layers[1]", "expected a string, got the number 1"), (e.Key, e.Problem));
    }

    [Theory]
    [InlineData("16.0", 16)]
    [InlineData("1e1", 10)]
    [InlineData("-3.0", -3)]
    [InlineData("2147483647", int.MaxValue)]
    public void IntegersMayBeWrittenAsWholeDoubles(string raw, int expected)
    {
        Assert.Equal(expected, Keys("n").Read(Json($$"""{"n": {{raw}}}"""), new Probe(), "").N);
    }

    [Theory]
    [InlineData("2.5")]
    [InlineData("2147483647.0")]
    [InlineData("1e10")]
    public void FractionsAndOutOfRangeWholeDoublesAreNotIntegers(string raw)
    {
        var e = Assert.Throws<ConfigException>(() => Keys("n").Read(Json($$"""{"n": {{raw}}}"""), new Probe(), "p."));
        Assert.Equal(("p.n", $"expected an integer, got the number {raw}"), (e.Key, e.Problem));
    }

    [Fact]
    public void SuggestionIsTheNearestKey()
    {
        // abcx: 1 edit from abcd, 2 from abxy (both within the limit of 2).
        Assert.Equal("unknown option (did you mean 'abcd'?)", Unknown(Keys("abxy", "abcd"), "abcx").Problem);
        Assert.Equal("unknown option (did you mean 'abcd'?)", Unknown(Keys("abcd", "abxy"), "abcx").Problem);
    }

    [Fact]
    public void NoSuggestionBeyondTheLimit()
    {
        Assert.Equal("unknown option", Unknown(Keys("alpha"), "zzzzzzzz").Problem);
        // The distance counts every letter of both names (a 2-letter name is not "close" to a long key, nor the reverse).
        Assert.Equal("unknown option", Unknown(Keys("xxxxxx"), "zz").Problem);
        Assert.Equal("unknown option", Unknown(Keys("ab"), "zzzzzzzz").Problem);
        Assert.Equal("unknown option (did you mean 'xxxxxx'?)", Unknown(Keys("xxxxxx"), "xxxxzz").Problem);
    }

    [Fact]
    public void AliasesAreSuggestedToo()
    {
        var t = Keys("alpha_beta").Alias("gamma_delta", "alpha_beta");
        Assert.Equal("unknown option (did you mean 'gamma_delta'?)", Unknown(t, "gamma_delt").Problem);
    }

    [Fact]
    public void AnUnversionedTableSuggestsEveryKey()
    {
        var t = Keys("alpha").Only(XTransformersVersion.V1_40);
        Assert.Equal("unknown option (did you mean 'alpha'?)", Unknown(t, "alphx").Problem);
    }

    [Fact]
    public void AVersionedTableSuggestsOnlyKeysOfItsVersion()
    {
        var t = Keys("shared_key").Int("old_key", p => p.N, (p, v) => p with { N = v }).Only(XTransformersVersion.V0_20)
            .Int("new_key", p => p.N, (p, v) => p with { N = v }).Only(XTransformersVersion.V1_40)
            .VersionedBy(p => p.Version);
        var v020 = new Probe { Version = XTransformersVersion.V0_20 };
        var v140 = new Probe { Version = XTransformersVersion.V1_40 };
        Assert.Equal("unknown option (did you mean 'old_key'?)", Unknown(t, "old_kex", v020).Problem);
        Assert.Equal("unknown option", Unknown(t, "old_kex", v140).Problem);
        Assert.Equal("unknown option (did you mean 'new_key'?)", Unknown(t, "new_kex", v140).Problem);
        Assert.Equal("unknown option", Unknown(t, "new_kex", v020).Problem);
        Assert.Equal("unknown option (did you mean 'shared_key'?)", Unknown(t, "shared_kex", v020).Problem);
    }
}
