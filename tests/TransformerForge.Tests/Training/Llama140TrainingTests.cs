using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Generation;
using TransformerForge.IO;
using TransformerForge.Models;
using TransformerForge.Tests.Data;
using TransformerForge.Training;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Training;

/// <summary>
/// A Llama-like x-transformers 1.40 decoder (rotary, SwiGLU without biases, RMSNorm, grouped-query attention) trains
/// with the library's trainer and with <c>tforge train --config</c>, and generates with its KV cache.
/// </summary>
public class Llama140TrainingTests
{
    static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    const string TinyLlama = """
        { "type": "TransformerWrapper", "x_transformers_version": "1.40", "num_tokens": 11, "max_seq_len": 16,
          "attn_layers": { "type": "Decoder", "dim": 64, "depth": 2, "heads": 2, "attn_dim_head": 32, "attn_one_kv_head": true,
                           "rotary_pos_emb": true, "ff_swish": true, "ff_glu": true, "ff_no_bias": true, "ff_mult": 2, "use_rmsnorm": true } }
        """;

    [Fact]
    public void LossFallsOnTheCopyTaskAndItGeneratesWithTheCache()
    {
        var config = ModelConfig.Parse(TinyLlama);
        using var data = TrainingFixtures.CopyTask();
        var options = TrainingFixtures.TinyOptions() with { Steps = 60, BatchSize = 16, LearningRate = 1e-2, WarmupSteps = 5, EvalEvery = 60 };
        using var trainer = Trainer.Create(config, data, options);
        var before = trainer.Evaluate();
        var result = trainer.Run();
        Assert.True(result.LastEvaluation!.Loss < before.Loss / 2, $"loss {before.Loss} -> {result.LastEvaluation.Loss}");

        var prompt = tensor(new long[] { 1, 2, 3, 4 }).unsqueeze(0);
        var cached = Autoregressive.Generate(trainer.Model, prompt, 10, new SamplingOptions { Greedy = true });
        var recomputed = Autoregressive.Generate(trainer.Model, prompt, 10, new SamplingOptions { Greedy = true, UseCache = false });
        Assert.True(cached.eq(recomputed).all().item<bool>());
    }

    [Fact]
    public void TheDocumentedExampleTrainsWithTheCliAndGeneratesWithItsCache()
    {
        using var tmp = new TempDir();
        var example = Path.Combine(TestPaths.RepoRoot, "docs", "examples", "llama-1.40.json");
        var corpus = tmp.File("c.txt", string.Concat(Enumerable.Repeat("to be or not to be, that is the question. ", 200)));
        var run = Path.Combine(tmp.Path, "run");
        var train = CliProcess.Run(Timeout, "train", "--config", example, "--data", corpus, "--tokenizer", "bytes", "--seq-len", "32",
            "--steps", "3", "--batch", "4", "--eval-every", "0", "--eval-batches", "1", "--sample-every", "0", "--log-every", "1", "--out", run);
        Assert.True(train.Code == 0, train.Stdout + train.Stderr);
        Assert.Contains("step 3/3", train.Stdout);

        // The checkpoint keeps the version: it loads as the same 1.40 model.
        var checkpoint = Path.Combine(run, "checkpoint");
        var (config, model) = ModelDirectory.LoadLanguageModel(checkpoint);
        model.Dispose();
        Assert.Equal(XTransformersVersion.V1_40, config.Version);

        // tforge generate decodes with the KV cache by default; --no-cache recomputes every step: same greedy text.
        var args = new[] { "generate", "--model", checkpoint, "--prompt", "to be", "--tokens", "12", "--greedy" };
        using var cached = new CliProcess(args);
        using var recomputed = new CliProcess([.. args, "--no-cache"]);   // both at once: they only read the checkpoint
        Assert.True(cached.Wait(Timeout) == 0, cached.Stdout + cached.Stderr);
        Assert.True(recomputed.Wait(Timeout) == 0, recomputed.Stdout + recomputed.Stderr);
        Assert.Equal(recomputed.Stdout, cached.Stdout);
        Assert.StartsWith("to be", cached.Stdout);
    }
}

/// <summary>A 1.40 decoder trains in bfloat16 as in float32 (runs compared step by step: serial, like MixedPrecisionTests).</summary>
[Collection(SerialCollection.Name)]
public class Llama140MixedPrecisionTests
{
    // Bias-less LayerNorm (1.40's default norm), grouped-query attention, rotary, SwiGLU, ResiDual, value residuals.
    const string Decoder = """
        { "type": "TransformerWrapper", "x_transformers_version": "1.40", "num_tokens": 11, "max_seq_len": 16,
          "attn_layers": { "type": "Decoder", "dim": 64, "depth": 2, "heads": 2, "attn_dim_head": 32, "attn_one_kv_head": true,
                           "rotary_pos_emb": true, "ff_swish": true, "ff_glu": true, "ff_no_bias": true, "ff_mult": 2,
                           "resi_dual": true, "add_value_residual": true } }
        """;

    static List<double> Losses(string precision)
    {
        using var data = TrainingFixtures.CopyTask();
        var options = TrainingFixtures.TinyOptions() with { Steps = 20, Precision = precision, LearningRate = 1e-2 };
        using var trainer = Trainer.Create(ModelConfig.Parse(Decoder), data, options);
        var seen = new RecordingObserver();
        trainer.Run(seen);
        return seen.Steps.Select(s => s.Loss).ToList();
    }

    [Fact]
    public void Bf16TrainingTracksFp32()
    {
        var fp32 = Losses(Precision.Fp32);
        var bf16 = Losses(Precision.Bf16);
        Assert.True(fp32[^1] < fp32[0] * 0.9, $"fp32 loss {fp32[0]} -> {fp32[^1]}");
        for (int i = 0; i < fp32.Count; i++)
            Assert.True(Math.Abs(bf16[i] - fp32[i]) <= 0.03 * fp32[i] + 0.02, $"step {i + 1}: bf16 loss {bf16[i]}, fp32 {fp32[i]}");
        Assert.NotEqual(fp32, bf16);
    }
}
