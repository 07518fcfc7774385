using System.Text.Json.Nodes;
using TransformerForge.Benchmarks;
using TransformerForge.Config;
using TransformerForge.Data;
using TransformerForge.Models;
using TransformerForge.Search;
using TransformerForge.Training;

namespace TransformerForge.Tests.Tfpp;

/// <summary>
/// Transformer++ is a language model like the decoders: the factory builds it, and the benchmarks and the architecture
/// search's trials run it through the same paths, with no case of their own. The search never trains a sample that the
/// loader would refuse.
/// </summary>
public class TransformerPlusPlusLanguageModelTests
{
    static TransformerPlusPlusConfig Tiny() =>
        TfppFixtures.Config(TransformerPlusPlusConfig.CodeGen,
            TfppFixtures.Layer(4, ("mha", 1), ("sgconv", 1), ("local_attn", 1), ("lsh_attn", 1)),
            TfppFixtures.Layer(2, ("sep_conv1d", 1), ("sgconv3", 1))) with { MaxSeqLen = 16 };

    [Fact]
    public void TheFactoryBuildsItAsALanguageModel()
    {
        var config = Tiny();
        Assert.True(ModelFactory.IsLanguageModel(config));
        Assert.Equal(40, ModelFactory.Vocabulary(config));
        using var model = ModelFactory.CreateLanguageModel(config);
        Assert.IsType<TransformerPlusPlus>(model);
        Assert.Equal((40, 16), (model.NumTokens, model.MaxSeqLen));
        using var built = ModelFactory.Create(config);
        Assert.IsType<TransformerPlusPlus>(built);
    }

    [Fact]
    public void BenchTrainAndBenchGenerateRunIt()
    {
        var train = TrainingBenchmark.Run(new TrainingBenchmarkOptions { Model = Tiny(), Batch = 2, SeqLen = 8, WarmupSteps = 1, Steps = 1 }, "tfpp");
        Assert.True(double.IsFinite(train.FinalLoss) && train.TokensPerSecond > 0);

        var rows = GenerationBenchmark.Run(new GenerationBenchmarkOptions { Model = Tiny(), PromptLength = 3, NewTokens = 6, Repeats = 1 });
        Assert.Equal(["kv-cache", "recompute"], rows.Select(r => r.Name));
        Assert.All(rows, r => Assert.Equal("", r.Note));   // both paths produced the same tokens
    }

    static JsonObject Space(string more = "") => JsonNode.Parse($$"""
        { "space": "transformer++", "embed_dims": [16], "inner_dims": [24], "total_heads": [4], "total_layers": [1, 2],
          "op_subset": ["mha", "sgconv", "lsh_attn"], "sgconv_kernel_sizes": [4], "lsh_attn_num_hashes": [2], "lsh_attn_bucket_size": [4] {{more}} }
        """)!.AsObject();

    /// <summary>A sampled architecture trains and is measured by the trial runner the search workers use.</summary>
    [Fact]
    public void ASearchTrialTrainsAndMeasuresASample()
    {
        var data = TrainingDataSpec.ForTask("reverse", new SyntheticTaskOptions(4, 6));
        ISearchSpace space = SearchSpaces.FromJson(Space());
        using (var opened = data.Open()) space = SearchSpaces.WithData(space, opened.VocabSize, opened.InputLength);
        var random = new Random(1);
        var spec = space.Build(SpaceOperators.Sample(space.Parameters, random));

        var result = TrialRunner.Run(new TrialRequest
        {
            Spec = spec,
            Settings = new EvaluationSettings
            {
                Data = data, Metrics = [Metrics.ValLoss, Metrics.ExactMatch, Metrics.LatencyMs, Metrics.GenerationTokensPerSecond],
                BudgetSteps = 2, BatchSize = 4, WarmupSteps = 1, EvalBatches = 1, Threads = 1, LatencyRepeats = 1, GenerationTokens = 3,
            },
            Plan = new TrialPlan { Seed = 3, Hurdles = [] },
            PrimaryMetric = Metrics.ValLoss,
        });
        Assert.True(result.State == TrialState.Complete, result.Error);
        Assert.Equal(2, result.Metrics["steps"]);
        Assert.True(result.Metrics[Metrics.ValLoss] is > 0 and < 10);
        Assert.True(result.Metrics[Metrics.GenerationTokensPerSecond] > 0);
    }

    /// <summary>
    /// Samples go through the model loader as they are built: an SGConv kernel of twice n_positions, or LSH attention on
    /// heads of odd size, is an invalid candidate naming the key (the search draws another), and every sample that is
    /// returned loads.
    /// </summary>
    [Theory]
    [InlineData(", \"sgconv_kernel_sizes\": [4, 64], \"n_positions\": 16, \"vocab_size\": 10", "sgconv.kernel_size")]
    [InlineData(", \"embed_dims\": [24], \"total_heads\": [4, 8], \"n_positions\": 16, \"vocab_size\": 10", "lsh_attn's rotary embedding needs an even head size")]
    public void SamplesThatWouldNotLoadAreInvalidCandidates(string more, string expected)
    {
        var json = Space().ToJsonString();
        var o = JsonNode.Parse(json)!.AsObject();
        foreach (var (k, v) in JsonNode.Parse("{" + more.TrimStart(',') + "}")!.AsObject()) o[k] = v?.DeepClone();
        var space = SearchSpaces.FromJson(o);
        var random = new Random(2);
        int invalid = 0, valid = 0;
        for (int i = 0; i < 40; i++)
        {
            try
            {
                var sample = space.Build(SpaceOperators.Sample(space.Parameters, random));
                Assert.IsType<TransformerPlusPlusConfig>(ModelConfig.Parse(sample.ToJsonString()));
                valid++;
            }
            catch (InvalidCandidateException e)
            {
                Assert.Contains(expected, e.Message);
                invalid++;
            }
        }
        Assert.True(invalid > 0 && valid > 0, $"{invalid} invalid, {valid} valid of 40 draws");
    }

    [Fact]
    public void AnHfConfigKeyTheLoaderDoesNotReadIsASpaceError()
    {
        var e = Assert.Throws<SearchException>(() => SearchSpaces.FromJson(Space(", \"hf_config\": { \"resid_pdrop\": 0.1, \"n_embd\": 16 }")));
        Assert.Contains("hf_config.n_embd", e.Message);
        SearchSpaces.FromJson(Space(", \"hf_config\": { \"resid_pdrop\": 0.1 }"));
    }
}
