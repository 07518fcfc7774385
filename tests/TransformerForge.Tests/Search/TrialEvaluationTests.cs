using System.Text.Json.Nodes;
using TransformerForge.Config;
using TransformerForge.Models;
using TransformerForge.Search;
using TransformerForge.Training;

namespace TransformerForge.Tests.Search;

/// <summary>Objectives: parameters of the built model, analytic FLOPs by hand, and a trial's metrics, hurdles and
/// failures as the trial runner reports them.</summary>
public class TrialEvaluationTests
{
    static JsonObject Decoder(Action<JsonObject>? layers = null)
    {
        var attn = new JsonObject { ["type"] = "Decoder", ["dim"] = 8, ["depth"] = 1, ["heads"] = 2, ["attn_dim_head"] = 4, ["ff_mult"] = 2 };
        layers?.Invoke(attn);
        return new JsonObject { ["type"] = "TransformerWrapper", ["num_tokens"] = 10, ["max_seq_len"] = 6, ["attn_layers"] = attn };
    }

    [Fact]
    public void ParametersAreCountedOnTheBuiltModel()
    {
        using var model = ModelFactory.Create(ModelConfig.Parse(Decoder().ToJsonString()));
        // token_emb 10·8, pos_emb 6·8; attention: norm 2·8, to_q/k/v 3·8·8, to_out 8·8+8; feed-forward: norm 2·8,
        // 8→16 (+16), 16→8 (+8); final norm 2·8; to_logits 8·10+10.
        long embedding = 80 + 48 + 90;
        long layers = 16 + 192 + 72 + 16 + 144 + 136 + 16;
        Assert.Equal((embedding + layers, layers), ModelCost.CountParameters(model));
        using var tied = ModelFactory.Create(ModelConfig.Parse(Decoder().Also(o => o["tie_embedding"] = true).ToJsonString()));
        Assert.Equal((80 + 48 + layers, layers), ModelCost.CountParameters(tied));
    }

    [Fact]
    public void FlopsPerTokenByHand()
    {
        // dim 32, 2 layers, 4 heads of 8, ff_mult 4, vocab 20, context 16.
        var spec = new JsonObject
        {
            ["type"] = "TransformerWrapper", ["num_tokens"] = 20, ["max_seq_len"] = 16,
            ["attn_layers"] = new JsonObject { ["type"] = "Decoder", ["dim"] = 32, ["depth"] = 2, ["heads"] = 4, ["attn_dim_head"] = 8 },
        };
        double qkv = 3 * 2 * 32 * 32, scores = 2 * 16 * 32, weighted = 2 * 16 * 32, output = 2 * 32 * 32;
        double ff = 2 * 32 * 128 + 2 * 128 * 32, logits = 2 * 32 * 20;
        double plain = 2 * (qkv + scores + weighted + output + ff) + logits;
        Assert.Equal(54528, plain);
        Assert.Equal(plain, ModelCost.FlopsPerToken(spec, 16));
        // Primer's additions: a GLU doubles the input projection; kernels of 3 on q, k and v (32 channels each).
        var primer = (JsonObject)spec.DeepClone();
        primer["attn_layers"]!["ff_glu"] = true;
        primer["attn_layers"]!["attn_dconv"] = true;
        Assert.Equal(plain + 2 * (2 * 32 * 128) + 2 * (3 * 2 * 3 * 32), ModelCost.FlopsPerToken(primer, 16));
        // A longer context costs attention only.
        Assert.Equal(plain + 2 * 2 * (2 * 16 * 32), ModelCost.FlopsPerToken(spec, 32));

        // x-transformers 1.40: one key/value head of 8 makes to_k and to_v 32 → 8; weight-tied layers still run depth times.
        var v140 = (JsonObject)spec.DeepClone();
        v140["x_transformers_version"] = "1.40";
        Assert.Equal(plain, ModelCost.FlopsPerToken(v140, 16));
        v140["attn_layers"]!["attn_one_kv_head"] = true;
        Assert.Equal(plain - 2 * (2 * 2 * 32 * (32 - 8)), ModelCost.FlopsPerToken(v140, 16));
        v140["attn_layers"]!["weight_tie_layers"] = true;
        Assert.Equal(plain - 2 * (2 * 2 * 32 * (32 - 8)), ModelCost.FlopsPerToken(v140, 16));
        // Pre- and post-softmax talking heads mix 4 heads over 16 keys each.
        var talking = (JsonObject)spec.DeepClone();
        talking["x_transformers_version"] = "1.40";
        talking["attn_layers"]!["attn_pre_talking_heads"] = true;
        talking["attn_layers"]!["attn_post_talking_heads"] = true;
        Assert.Equal(plain + 2 * (2 * 2 * 4 * 4 * 16), ModelCost.FlopsPerToken(talking, 16));
    }

    [Fact]
    public void TransformerPlusPlusFlopsByHand()
    {
        // One layer of hidden 16 with 4 heads: 2 mha heads (8 channels) and 2 sep_conv1d heads (kernel 3), d_inner 32, vocab 10.
        var spec = JsonNode.Parse("""
            { "backbone": "codegen", "hidden_size": 16,
              "hidden_layers": { "_config_type": "config_list", "_share_arch": false, "_repeat_times": 1, "_configs": { "0": {
                "total_heads": 4, "op_allocation": [["mha", 0.5], ["sep_conv1d", 0.5]], "d_inner": 32, "sep_conv1d": { "kernel_size": 3 } } } },
              "vocab_size": 10, "n_positions": 12 }
            """)!.AsObject();
        double mha = 2 * 16 * 24 + 2 * 2 * 12 * 8, conv = 2 * 16 * 8 + 2 * 3 * 8, outProj = 2 * 16 * 16, mlp = 2 * 2 * 16 * 32, head = 2 * 16 * 10;
        Assert.Equal(mha + conv + outProj + mlp + head, ModelCost.FlopsPerToken(spec, 12));
    }

    static TrialRequest Request(IReadOnlyList<string> metrics, TrainingDataSpec? data = null, JsonObject? spec = null, int steps = 4,
        double lr = 1e-3, IReadOnlyList<Hurdle>? hurdles = null, string primary = Metrics.ValLoss) => new()
    {
        Spec = spec ?? new JsonObject
        {
            ["type"] = "TransformerWrapper", ["num_tokens"] = 16, ["max_seq_len"] = 24,
            ["attn_layers"] = new JsonObject { ["type"] = "Decoder", ["dim"] = 16, ["depth"] = 1, ["heads"] = 2, ["attn_dim_head"] = 8 },
        },
        Settings = new EvaluationSettings
        {
            Data = data ?? TrainingDataSpec.ForTask("reverse", new TransformerForge.Data.SyntheticTaskOptions(4, 6)),
            Metrics = metrics, BudgetSteps = steps, BatchSize = 4, LearningRate = lr, WarmupSteps = 1, EvalBatches = 1, Threads = 1,
            LatencyRepeats = 2, GenerationTokens = 4,
        },
        Plan = new TrialPlan { Seed = 3, Hurdles = hurdles ?? [] },
        PrimaryMetric = primary,
    };

    [Fact]
    public void ATrialReportsEveryMetricItIsAskedFor()
    {
        var metrics = new[] { Metrics.ValLoss, Metrics.ExactMatch, Metrics.LatencyMs, Metrics.GenerationTokensPerSecond, Metrics.PeakMemoryMiB };
        var r = TrialRunner.Run(Request(metrics));
        Assert.True(r.State == TrialState.Complete, r.Error);
        Assert.True(r.Metrics[Metrics.ValLoss] is > 0 and < 10);
        Assert.InRange(r.Metrics[Metrics.ExactMatch], 0, 1);
        Assert.True(r.Metrics[Metrics.LatencyMs] > 0);
        Assert.True(r.Metrics[Metrics.GenerationTokensPerSecond] > 0);
        Assert.True(r.Metrics[Metrics.PeakMemoryMiB] >= 0);
        Assert.Equal(4, r.Metrics["steps"]);
        using var model = ModelFactory.Create(ModelConfig.Parse(Request([]).Spec.ToJsonString()));
        Assert.Equal(ModelCost.CountParameters(model).Total, r.Metrics[Metrics.Params]);
        using var data = Request([]).Settings.Data.Open();
        Assert.Equal(ModelCost.FlopsPerToken(Request([]).Spec, data.InputLength), r.Metrics[Metrics.FlopsPerToken]);
    }

    [Fact]
    public void BitsPerCharacterOnText()
    {
        using var tmp = new Data.TempDir();
        var corpus = tmp.File("c.txt", string.Concat(Enumerable.Repeat("the cat sat on the mat. ", 80)));
        var r = TrialRunner.Run(Request([Metrics.BitsPerChar], TrainingDataSpec.ForText(corpus, "chars", 12), steps: 2));
        Assert.True(r.State == TrialState.Complete, r.Error);
        Assert.Equal(r.Metrics[Metrics.ValLoss] / Math.Log(2), r.Metrics[Metrics.BitsPerChar], 9);
    }

    [Fact]
    public void ACandidateStopsAtAHurdleItFailsAndGoesOnPastOneItPasses()
    {
        var pruned = TrialRunner.Run(Request([Metrics.ValLoss], steps: 8, hurdles: [new Hurdle(0.25, -1)]));
        Assert.Equal(TrialState.Pruned, pruned.State);
        Assert.Equal(2, pruned.Metrics["steps"]);
        var v = Assert.Single(pruned.Intermediate);
        Assert.Equal((0.25, 2), (v.At, v.Step));
        Assert.Equal(v.Value, pruned.Metrics[Metrics.ValLoss]);

        var passed = TrialRunner.Run(Request([Metrics.ValLoss], steps: 8, hurdles: [new Hurdle(0.25, 1e9), new Hurdle(0.5, 1e9)]));
        Assert.Equal(TrialState.Complete, passed.State);
        Assert.Equal(8, passed.Metrics["steps"]);
        Assert.Equal([2, 4], passed.Intermediate.Select(i => i.Step));
        // A hurdle without a threshold measures and goes on.
        var measured = TrialRunner.Run(Request([Metrics.ValLoss], steps: 4, hurdles: [new Hurdle(0.5, null)]));
        Assert.Equal(TrialState.Complete, measured.State);
        Assert.Equal(2, Assert.Single(measured.Intermediate).Step);
        // Exact match is maximised: a hurdle above 100% cannot be passed.
        var em = TrialRunner.Run(Request([Metrics.ExactMatch], steps: 4, hurdles: [new Hurdle(0.5, 1.5)], primary: Metrics.ExactMatch));
        Assert.Equal(TrialState.Pruned, em.State);
    }

    [Fact]
    public void ADivergingCandidateIsAFailedTrialWithTheReason()
    {
        var r = TrialRunner.Run(Request([Metrics.ValLoss], lr: 1e30) with { });
        Assert.Equal(TrialState.Failed, r.State);
        Assert.Contains("diverged", r.Error);
        Assert.True(r.Metrics.ContainsKey(Metrics.Params));
    }
}
