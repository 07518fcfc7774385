using System.Text.Json.Nodes;
using TransformerForge.Config;
using TransformerForge.Models;
using TransformerForge.Search;

namespace TransformerForge.Tests.Tfpp;

/// <summary>
/// The architecture search's Transformer++ samples (Archai <c>ArchConfig</c> JSON, <see cref="TfppSpace"/>) are what this
/// loader reads: every sample of a space with all six ops, mixed or single-op, per-layer or homogeneous, in both
/// layouts, loads, builds, and gets the heads per op that Archai's rounding gives.
/// </summary>
public class SearchSampleContractTests
{
    [Theory]
    [InlineData("codegen", true, false)]
    [InlineData("gpt2", true, false)]
    [InlineData("codegen", false, true)]
    public void EverySearchSampleLoadsAsArchaiBuildsIt(string backbone, bool mixedOps, bool homogeneous)
    {
        var definition = JsonNode.Parse($$"""
            { "space": "transformer++", "backbone": "{{backbone}}", "embed_dims": [32, 48], "inner_dims": [64], "total_heads": [4, 8],
              "total_layers": [1, 2, 3], "local_attn_window_sizes": [8], "sgconv_kernel_sizes": [4, 8], "sconv1d_kernel_sizes": [3],
              "lsh_attn_num_hashes": [1, 2], "lsh_attn_bucket_size": [4], "mixed_ops": {{(mixedOps ? "true" : "false")}},
              "homogeneous": {{(homogeneous ? "true" : "false")}}, "vocab_size": 20, "n_positions": 32 }
            """)!.AsObject();
        var space = SearchSpaces.FromJson(definition);
        var random = new Random(7);
        int loaded = 0;
        for (int n = 0; n < 40; n++)
        {
            JsonObject sample;
            try { sample = space.Build(SpaceOperators.Sample(space.Parameters, random)); }
            catch (InvalidCandidateException) { continue; }
            var config = Assert.IsType<TransformerPlusPlusConfig>(ModelConfig.Parse(sample.ToJsonString()));
            Assert.Equal(backbone, config.Block);
            Assert.Equal(sample["hidden_size"]!.GetValue<int>(), config.Dim);
            var configs = (JsonObject)sample["hidden_layers"]!["_configs"]!;
            Assert.Equal(configs.Count, config.Depth);
            for (int i = 0; i < config.Depth; i++)
            {
                var layer = configs[i.ToString()]!;
                int heads = layer["total_heads"]!.GetValue<int>();
                var expected = ((JsonArray)layer["op_allocation"]!)
                    .Select(p => new MixerHeads(p![0]!.GetValue<string>(), HeadAllocationSimplex.Heads(heads, p[1]!.GetValue<double>())))
                    .Where(m => m.Heads > 0).ToList();
                Assert.Equal(expected, config.Layers[i].Mixers);
                Assert.Equal(layer["d_inner"]!.GetValue<int>(), config.Layers[i].FfInnerDim);
            }
            using var model = new TransformerPlusPlus(config);
            loaded++;
        }
        Assert.True(loaded >= 20, $"only {loaded} of 40 draws were valid samples");
    }
}
