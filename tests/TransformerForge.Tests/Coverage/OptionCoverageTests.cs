using System.Reflection;
using System.Text.Json.Nodes;
using TransformerForge.Config;
using TransformerForge.Parity;
using TransformerForge.Tests.Parity;
using TransformerForge.Tests.Support;

namespace TransformerForge.Tests.Coverage;

/// <summary>
/// Every key of every option table (aliases included) is covered: a parity fixture that the parity tests run sets it
/// to a value other than its default, or a test declares with <see cref="ProvesAttribute"/> that it fails when the
/// option is broken or ignored. A new key or table without either fails <see cref="EveryOptionIsCovered"/>.
/// </summary>
public class OptionCoverageTests
{
    /// <summary>
    /// Table name → its keys (aliases included). Found by one scan: every public static <see cref="OptionTable{T}"/>
    /// field in the library, named after its record (<c>AttentionLayersConfig</c> → <c>AttentionLayers</c>), plus
    /// XTransformer, which routes prefixed keys instead of having a table. A table whose keys are all spliced into
    /// another (<c>AttentionOptions</c>, <c>FeedForwardOptions</c> into AttentionLayers) is covered there.
    /// </summary>
    internal static IReadOnlyDictionary<string, IReadOnlyList<string>> Tables()
    {
        var all = ScanTables();
        return all.Where(t => !all.Any(other => other.Key != t.Key && t.Value.All(other.Value.Contains)))
            .ToDictionary(t => t.Key, t => t.Value);
    }

    static SortedDictionary<string, IReadOnlyList<string>> ScanTables()
    {
        var tables = new SortedDictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var type in typeof(OptionTable<>).Assembly.GetTypes())
            foreach (var field in type.GetFields(BindingFlags.Public | BindingFlags.Static))
            {
                if (!field.FieldType.IsGenericType || field.FieldType.GetGenericTypeDefinition() != typeof(OptionTable<>)) continue;
                var table = field.GetValue(null)!;
                var keys = ((IEnumerable<string>)field.FieldType.GetProperty("Keys")!.GetValue(table)!)
                    .Concat(((IReadOnlyDictionary<string, string>)field.FieldType.GetProperty("Aliases")!.GetValue(table)!).Keys).ToList();
                var name = type.Name.EndsWith("Config") ? type.Name[..^"Config".Length] : type.Name;
                tables.Add(name, keys);
            }
        tables.Add("XTransformer", XTransformerConfig.Keys);
        return tables;
    }

    static IEnumerable<string> AllKeys() => Tables().SelectMany(t => t.Value.Select(k => $"{t.Key}.{k}"));

    /// <summary>Every <c>[Proves]</c> key in this test assembly, with the test that declares it.</summary>
    static IEnumerable<(string Key, string Test)> Proofs() =>
        from type in typeof(OptionCoverageTests).Assembly.GetTypes()
        from method in type.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static)
        from attribute in method.GetCustomAttributes<ProvesAttribute>()
        from key in attribute.Keys
        select (key, $"{type.Name}.{method.Name}");

    /// <summary>
    /// Keys set to a non-default value by a fixture of a family the parity tests run (shared, or kept in this repository
    /// as reference cases made by the original library), with the case. A fixture's <c>source</c> names the x-transformers
    /// release whose semantics its model uses.
    /// </summary>
    internal static IEnumerable<(string Key, string Case)> FixtureKeys()
    {
        var dirs = FixtureFamilies.Run.Keys.SelectMany(family => ParityRunner.FindCases(TestPaths.Fixture(family))
                .Select(dir => (Dir: dir, Case: $"{family}/{Path.GetRelativePath(TestPaths.Fixture(family), dir)}")))
            .Concat(FixtureFamilies.RepoRun.Keys.SelectMany(family => ParityRunner.FindCases(TestPaths.RepoFixture(family))
                .Select(dir => (Dir: dir, Case: $"{family}/{Path.GetFileName(dir)}"))));
        foreach (var (dir, caseName) in dirs)
        {
            var c = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "case.json")))!.AsObject();
            var version = XTransformersVersions.FromSource(c["source"]?.GetValue<string>());
            foreach (var part in new[] { "model", "decoder" })
                if (c[part] is JsonObject model)
                    foreach (var key in KeysSetBy(model, version))
                        yield return (key, caseName);
        }
    }

    static readonly string[] LayerTypes = { "Encoder", "Decoder", "CrossAttender", "AttentionLayers" };

    /// <summary>
    /// The keys a model configuration sets to a non-default value: those whose removal changes the parsed
    /// configuration (or makes it invalid, as for required keys). Keys of a nested <c>attn_layers</c> count for
    /// AttentionLayers; XTransformer's <c>enc_</c>/<c>dec_</c> keys count for its table and for the table they are routed to.
    /// </summary>
    internal static IEnumerable<string> KeysSetBy(JsonObject model, XTransformersVersion version = XTransformersVersion.V0_20)
    {
        var type = model["type"]!.GetValue<string>();
        var table = LayerTypes.Contains(type) ? "AttentionLayers" : type;
        var baseline = Parse(model, version)!;

        bool Matters(Action<JsonObject> remove)
        {
            var copy = model.DeepClone().AsObject();
            remove(copy);
            return Parse(copy, version) != baseline;
        }

        foreach (var key in model.Select(p => p.Key).Where(k => k != "type").ToList())
        {
            if (!Matters(m => m.Remove(key))) continue;
            if (table != "XTransformer") { yield return $"{table}.{key}"; continue; }
            if (XTransformerConfig.Keys.Contains(key)) yield return $"XTransformer.{key}";
            if (key.Length > 4 && key[3] == '_' && key[..3] is "enc" or "dec")
            {
                var routed = key[4..];
                if (TransformerWrapperConfig.Table.Keys.Contains(routed)) yield return $"TransformerWrapper.{routed}";
                else
                {
                    yield return $"XTransformer.{key[..4]}<attn_layers key>";
                    yield return $"AttentionLayers.{routed}";
                }
            }
        }
        if (model["attn_layers"] is JsonObject)
            foreach (var key in model["attn_layers"]!.AsObject().Select(p => p.Key).Where(k => k != "type").ToList())
                if (Matters(m => m["attn_layers"]!.AsObject().Remove(key)))
                    yield return $"AttentionLayers.{key}";
    }

    /// <summary>The configuration as the library writes it back, or null when it does not parse.</summary>
    static string? Parse(JsonObject model, XTransformersVersion version)
    {
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(model.ToJsonString());
            return ModelConfig.FromJson(doc.RootElement, version).ToJsonString();
        }
        catch (ConfigException) { return null; }
    }

    [Fact]
    public void EveryOptionIsCovered()
    {
        var covered = Proofs().Select(p => p.Key).Concat(FixtureKeys().Select(f => f.Key)).ToHashSet();
        var uncovered = AllKeys().Where(k => !covered.Contains(k)).ToList();
        Assert.True(uncovered.Count == 0,
            $"{uncovered.Count} option(s) with no parity fixture setting them to a non-default value and no test marked " +
            $"[Proves(\"Table.key\")] that fails when the option is broken or ignored:\n  {string.Join("\n  ", uncovered)}");
    }

    [Fact]
    public void ProofsNameRealOptionsOnTests()
    {
        var keys = AllKeys().ToHashSet();
        var unknown = Proofs().Where(p => !keys.Contains(p.Key)).Select(p => $"{p.Test}: {p.Key}").ToList();
        Assert.True(unknown.Count == 0, $"[Proves] names options that no table has:\n  {string.Join("\n  ", unknown)}");
        var notTests = (from type in typeof(OptionCoverageTests).Assembly.GetTypes()
                        from method in type.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static)
                        where method.GetCustomAttributes<ProvesAttribute>().Any() && method.GetCustomAttribute<FactAttribute>() is null
                        select $"{type.Name}.{method.Name}").ToList();
        Assert.True(notTests.Count == 0, $"[Proves] on methods that are not tests: {string.Join(", ", notTests)}");
    }

    [Fact]
    public void FixturesCountOnlyForKeysTheySetToANonDefaultValue()
    {
        var model = JsonNode.Parse("""
            { "type": "TransformerWrapper", "num_tokens": 64, "max_seq_len": 32, "use_pos_emb": true, "emb_dim": 24,
              "attn_layers": { "type": "Decoder", "dim": 32, "depth": 2, "heads": 8, "ff_mult": 4, "macaron": true } }
            """)!.AsObject();
        Assert.Equal(
            new[] { "AttentionLayers.depth", "AttentionLayers.dim", "AttentionLayers.macaron", "TransformerWrapper.attn_layers",
                    "TransformerWrapper.emb_dim", "TransformerWrapper.max_seq_len", "TransformerWrapper.num_tokens" },
            KeysSetBy(model).Order(StringComparer.Ordinal));
        var x = JsonNode.Parse("""
            { "type": "XTransformer", "dim": 32, "enc_num_tokens": 8, "enc_max_seq_len": 8, "enc_depth": 1, "enc_emb_dropout": 0,
              "dec_num_tokens": 8, "dec_max_seq_len": 8, "dec_depth": 1, "dec_rotary_pos_emb": true }
            """)!.AsObject();
        var keys = KeysSetBy(x).ToHashSet();
        Assert.Contains("XTransformer.enc_num_tokens", keys);
        Assert.Contains("TransformerWrapper.num_tokens", keys);
        Assert.Contains("XTransformer.dec_<attn_layers key>", keys);
        Assert.Contains("AttentionLayers.rotary_pos_emb", keys);
        Assert.DoesNotContain("XTransformer.enc_emb_dropout", keys);
    }
}
