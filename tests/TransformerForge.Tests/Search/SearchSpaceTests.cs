using System.Text.Json.Nodes;
using TransformerForge.Config;
using TransformerForge.Search;

namespace TransformerForge.Tests.Search;

/// <summary>Space files: x-transformers options (generic over the option tables), Archai's Transformer++ space and its
/// ArchConfig JSON, the operators, determinism, and rejection with a clear error.</summary>
public class SearchSpaceTests
{
    const string Primer = """
        { "space": "x-transformers",
          "model": { "type": "TransformerWrapper", "num_tokens": 20, "max_seq_len": 16,
                     "attn_layers": { "type": "Decoder", "dim": 32, "depth": 2, "heads": 4, "attn_dim_head": 8 } },
          "choices": {
            "attn_layers.ff_relu_squared": [false, true],
            "attn_layers.attn_dconv": [false, true],
            "attn_layers.attn_dconv_kernel_size": { "values": [3, 5], "when": { "attn_layers.attn_dconv": true } },
            "attn_layers.dim": [16, 32, 48],
            "positions": { "path": "attn_layers", "values": [{}, { "rotary_pos_emb": true }, { "alibi_pos_bias": true }, { "rel_pos_bias": true }] },
            "attn_layers.rel_pos_bias": [false, true]
          } }
        """;

    static List<Candidate> Draw(ISearchSpace space, int seed, int count)
    {
        var source = new CandidateSource(space);
        var seen = new HashSet<string>();
        var list = new List<Candidate>();
        for (int n = 0; n < count; n++)
        {
            var c = source.Random(AskContext.RandomFor(seed, n), seen);
            seen.Add(c.Key);
            list.Add(c);
        }
        return list;
    }

    [Fact]
    public void SamplesAreModelJsonTheTrainerTakesAndTheSameSeedGivesTheSameOnes()
    {
        var space = SearchSpaces.Parse(Primer);
        var a = Draw(space, 5, 30);
        Assert.Equal(a.Select(c => c.Key), Draw(space, 5, 30).Select(c => c.Key));
        Assert.NotEqual(a.Select(c => c.Key), Draw(space, 6, 30).Select(c => c.Key));
        foreach (var c in a)
        {
            // The sample is the parser's canonical JSON: parsing and writing it gives it back.
            var config = ModelConfig.Parse(c.Spec.ToJsonString());
            Assert.True(JsonNode.DeepEquals(c.Spec, config.ToJson()), c.Spec.ToJsonString());
            var layers = ((TransformerWrapperConfig)config).AttnLayers;
            // ALiBi with T5 bias is a combination x-transformers rejects: never sampled, whichever choice set it.
            Assert.False(layers.AlibiPosBias && layers.RelPosBias);
            // The kernel size applies only with the convolution on.
            if (!layers.Attn.Dconv) Assert.Equal(3, layers.Attn.DconvKernelSize);
        }
        Assert.Contains(a, c => ((TransformerWrapperConfig)ModelConfig.Parse(c.Spec.ToJsonString())).AttnLayers.Attn.DconvKernelSize == 5);
    }

    [Fact]
    public void AnyOptionOfTheTablesIsAChoiceWithoutCode()
    {
        // Every boolean option of the layer stack that a plain decoder accepts on its own, searched at once.
        var probe = new JsonObject { ["type"] = "TransformerWrapper", ["num_tokens"] = 20, ["max_seq_len"] = 16,
            ["attn_layers"] = new JsonObject { ["type"] = "Decoder", ["dim"] = 32, ["depth"] = 1, ["heads"] = 2, ["attn_dim_head"] = 16 } };
        var choices = new JsonObject();
        foreach (var key in AttentionLayersConfig.Table.Keys)
        {
            var model = (JsonObject)probe.DeepClone();
            model["attn_layers"]![key] = true;
            try { ModelConfig.Parse(model.ToJsonString()); }
            catch (ConfigException) { continue; }
            choices[$"attn_layers.{key}"] = new JsonArray(false, true);
        }
        Assert.True(choices.Count >= 15, $"{choices.Count} boolean options");
        var space = SearchSpaces.FromJson(new JsonObject { ["space"] = "x-transformers", ["model"] = probe, ["choices"] = choices });
        var seen = new HashSet<string>();
        foreach (var c in Draw(space, 1, 40))
            foreach (var (k, v) in (JsonObject)c.Spec["attn_layers"]!)
                if (v!.GetValueKind() == System.Text.Json.JsonValueKind.True) seen.Add(k);
        Assert.True(seen.Count >= choices.Count - 3, $"options turned on in 40 samples: {seen.Count} of {choices.Count}");
    }

    [Fact]
    public void TheLlamaSpaceSearchesTheX140Options()
    {
        // docs/search/llama-space.json: the version key sits in the base model, every sample is a 1.40 model.
        var space = SearchSpaces.Load(Path.Combine(TestPaths.RepoRoot, "docs", "search", "llama-space.json"));
        space = SearchSpaces.WithData(space, 20, 16);
        var samples = Draw(space, 3, 40);
        var kvHeads = new HashSet<int>();
        foreach (var c in samples)
        {
            var config = (TransformerWrapperConfig)ModelConfig.Parse(c.Spec.ToJsonString());
            Assert.Equal(XTransformersVersion.V1_40, config.Version);
            Assert.True(JsonNode.DeepEquals(c.Spec, config.ToJson()), c.Spec.ToJsonString());
            kvHeads.Add(config.AttnLayers.Attn.KeyValueHeads(config.AttnLayers.Heads));
            Assert.True(ModelCost.FlopsPerToken(c.Spec, 16) > 0);
        }
        Assert.Equal(new HashSet<int> { 1, 2, 4 }, kvHeads);
    }

    [Theory]
    [InlineData("\"attn_layers.ff_relu_sqared\": [true]", "unknown option", "ff_relu_squared")]
    [InlineData("\"attn_layers.depth\": [2, \"deep\"]", "choices.attn_layers.depth[1]", "expected an integer")]
    [InlineData("\"attn_layers.dim\": []", "choices.attn_layers.dim has no values", null)]
    [InlineData("\"attn_layers.dim\": [16, 16]", "lists 16 twice", null)]
    [InlineData("\"k\": { \"values\": [3], \"when\": { \"nothing\": true } }", "names 'nothing', which is not a choice", null)]
    public void SpaceFileErrorsNameTheChoice(string choice, string expected, string? also)
    {
        var json = $$"""{ "space": "x-transformers", "model": { "type": "TransformerWrapper", "attn_layers": { "type": "Decoder", "dim": 16, "depth": 1 } }, "choices": { {{choice}} } }""";
        var e = Assert.Throws<SearchException>(() => SearchSpaces.Parse(json));
        Assert.Contains(expected, e.Message);
        if (also is not null) Assert.Contains(also, e.Message);
    }

    [Fact]
    public void ConstraintsRejectCandidatesAndAnImpossibleOneIsAClearError()
    {
        var space = SearchSpaces.Parse(Primer);
        var dims = new Meter(c => ((JsonObject)c.Spec["attn_layers"]!)["dim"]!.GetValue<int>());
        var small = new CandidateSource(space, [new Constraint(Metrics.Params, 20)], dims);
        var seen = new HashSet<string>();
        for (int n = 0; n < 10; n++) Assert.Equal(16, small.Random(AskContext.RandomFor(0, n), seen).Spec["attn_layers"]!["dim"]!.GetValue<int>());

        var impossible = new CandidateSource(space, [new Constraint(Metrics.Params, 8)], dims, maxDraws: 200);
        var e = Assert.Throws<SearchException>(() => impossible.Random(new Random(0), new HashSet<string>()));
        Assert.Contains("cannot meet its constraints", e.Message);
        Assert.Contains("over params <= 8 (the smallest seen is 16)", e.Message);
    }

    [Fact]
    public void ASmallSpaceIsExhaustedNotSpunOn()
    {
        var space = SearchSpaces.Parse("""{ "space": "x-transformers", "model": { "type": "TransformerWrapper", "num_tokens": 8, "max_seq_len": 8, "attn_layers": { "type": "Decoder", "dim": 16, "depth": 1 } }, "choices": { "attn_layers.ff_glu": [false, true] } }""");
        var source = new CandidateSource(space);
        var seen = new HashSet<string>();
        for (int i = 0; i < 2; i++) seen.Add(source.Random(new Random(i), seen).Key);
        Assert.Throws<SpaceExhaustedException>(() => source.Random(new Random(9), seen));
    }

    [Fact]
    public void MutationMovesAndCrossoverMixesOnlyParentValues()
    {
        var parameters = new GridSpace(12, 5).Parameters;
        var rng = new Random(3);
        for (int trial = 0; trial < 200; trial++)
        {
            var a = SpaceOperators.Sample(parameters, rng);
            var b = SpaceOperators.Sample(parameters, rng);
            Assert.NotEqual(a, SpaceOperators.Mutate(parameters, a, 0, rng));   // even at p = 0 a mutant differs
            var m = SpaceOperators.Mutate(parameters, a, 1, rng);
            Assert.All(Enumerable.Range(0, 12), i => Assert.NotEqual(a[i], m[i]));   // p = 1: every choice moves
            var c = SpaceOperators.Crossover(parameters, a, b, rng);
            Assert.All(Enumerable.Range(0, 12), i => Assert.True(c[i] == a[i] || c[i] == b[i]));
        }
    }

    [Fact]
    public void ArchaisHeadAllocationSimplex()
    {
        // 3 ops, 4 heads: even splits over every non-empty subset except all three (4/3 heads each is not whole), in numpy's order.
        var a = HeadAllocationSimplex.Allocations([4], 3);
        double[][] expected = [[0, 0, 1], [0, 0.5, 0.5], [0, 1, 0], [0.5, 0, 0.5], [0.5, 0.5, 0], [1, 0, 0]];
        Assert.Equal(expected.Length, a.Count);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], a[i]);
        // 12 heads over Archai's 5 mixers: every subset but all five (12/5 rounds to 2, 10 heads) — 30 allocations.
        var five = HeadAllocationSimplex.Allocations([12], 5);
        Assert.Equal(30, five.Count);
        Assert.DoesNotContain(five, s => s.All(x => x > 0));
        // With 10 heads too, thirds are out for 10 but in for 12: the union is kept.
        Assert.Contains(HeadAllocationSimplex.Allocations([10, 12], 3), s => s.All(x => Math.Abs(x - 1.0 / 3) < 1e-12));
    }

    const string Tfpp = """
        { "space": "transformer++", "embed_dims": [32, 48], "inner_dims": [64, 96], "total_heads": [4], "total_layers": [1, 2, 3],
          "op_subset": ["sgconv", "mha", "sep_conv1d", "local_attn"], "local_attn_window_sizes": [8], "sgconv_kernel_sizes": [4, 8],
          "sconv1d_kernel_sizes": [3], "vocab_size": 20, "n_positions": 32 }
        """;

    [Fact]
    public void TransformerPlusPlusSamplesAreArchaisArchConfigJson()
    {
        var space = (TfppSpace)SearchSpaces.Parse(Tfpp);
        Assert.Equal(["mha", "sep_conv1d", "sgconv", "local_attn"], space.OpSubset);   // Archai's OPS order, whatever the file's
        foreach (var c in Draw(space, 2, 25))
        {
            var s = c.Spec;
            Assert.Equal(["backbone", "hidden_size", "hidden_layers", "vocab_size", "n_positions"], s.Select(p => p.Key));
            Assert.Equal("codegen", s["backbone"]!.GetValue<string>());
            var list = (JsonObject)s["hidden_layers"]!;
            Assert.Equal("config_list", list["_config_type"]!.GetValue<string>());
            Assert.False(list["_share_arch"]!.GetValue<bool>());
            int depth = list["_repeat_times"]!.GetValue<int>();
            var configs = (JsonObject)list["_configs"]!;
            Assert.Equal(Enumerable.Range(0, depth).Select(i => i.ToString()), configs.Select(p => p.Key));
            foreach (var (_, node) in configs)
            {
                var layer = (JsonObject)node!;
                Assert.Equal(["total_heads", "op_allocation", "d_inner"], layer.Select(p => p.Key).Take(3));
                var allocation = (JsonArray)layer["op_allocation"]!;
                Assert.Equal(space.OpSubset, allocation.Select(p => p![0]!.GetValue<string>()));
                Assert.Equal(4, allocation.Sum(p => HeadAllocationSimplex.Heads(4, p![1]!.GetValue<double>())));
                // Settings are written for the mixers that get heads (mha has none of its own).
                var withHeads = allocation.Where(p => p![1]!.GetValue<double>() > 0).Select(p => p![0]!.GetValue<string>()).Where(op => op != "mha");
                Assert.Equal(withHeads.Order(), layer.Select(p => p.Key).Skip(3).Order());
                if (layer["sgconv"] is JsonObject sg) Assert.Contains(sg["kernel_size"]!.GetValue<int>(), new[] { 4, 8 });
                if (layer["local_attn"] is JsonObject la) Assert.Equal(8, la["window_size"]!.GetValue<int>());
            }
        }
    }

    [Fact]
    public void HomogeneousSpacesShareOneLayerConfigAndMixedOpsOffGivesOneOpPerLayer()
    {
        var space = SearchSpaces.FromJson(JsonNode.Parse(Tfpp)!.AsObject().Also(o => { o["homogeneous"] = true; o["mixed_ops"] = false; }));
        foreach (var c in Draw(space, 4, 10))
        {
            var list = (JsonObject)c.Spec["hidden_layers"]!;
            Assert.True(list["_share_arch"]!.GetValue<bool>());
            var layers = ((JsonObject)list["_configs"]!).Select(p => p.Value!.ToJsonString()).ToList();
            Assert.Single(layers.Distinct());
            var shares = ((JsonArray)JsonNode.Parse(layers[0])!["op_allocation"]!).Select(p => p![1]!.GetValue<double>()).ToList();
            Assert.Equal(1, shares.Count(x => x == 1));
            Assert.Equal(shares.Count - 1, shares.Count(x => x == 0));
        }
    }

    [Theory]
    [InlineData("\"op_subset\": [\"mha\", \"flash\"]", "unknown op 'flash'")]
    [InlineData("\"embed_dims\": [30], \"total_heads\": [4]", "embed_dims 30 is not divisible")]
    [InlineData("\"total_layers\": [0]", "must be positive")]
    [InlineData("\"heads\": [4]", "unknown key 'heads'")]
    public void TransformerPlusPlusSpaceErrors(string keys, string expected)
    {
        var e = Assert.Throws<SearchException>(() => SearchSpaces.Parse($$"""{ "space": "transformer++", {{keys}} }"""));
        Assert.Contains(expected, e.Message);
    }

    sealed class Meter(Func<Candidate, double> f) : ICandidateMeter
    {
        public double Measure(Candidate candidate, string metric) => f(candidate);
    }
}

internal static class JsonObjectExtensions
{
    public static JsonObject Also(this JsonObject o, Action<JsonObject> change)
    {
        change(o);
        return o;
    }
}
