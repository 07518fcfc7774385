using System.Diagnostics;
using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Data;
using TransformerForge.Generation;
using TransformerForge.IO;
using TransformerForge.Models;
using TransformerForge.Tests.Support;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Generation;

public class SamplingTests
{
    static TransformerWrapper Model(bool relative = true)
    {
        manual_seed(1);
        var m = new TransformerWrapper(new TransformerWrapperConfig
        {
            NumTokens = 256, MaxSeqLen = 64,
            AttnLayers = new AttentionLayersConfig { Type = LayerStackType.Decoder, Dim = 32, Depth = 2, Heads = 4, Attn = new() { DimHead = 8 }, RelPosBias = relative },
        });
        m.to(ScalarType.Float64);
        Weights.Perturb(m);   // as the fixtures are: batched == alone must hold for generic weights
        m.eval();
        return m;
    }

    [Fact]
    public void TopKKeepsExactlyKCandidates()
    {
        var logits = tensor(new float[] { 1, 5, 3, 4, 2 }).unsqueeze(0);
        var kept = Sampler.TopK(logits, 2);
        Assert.Equal(new[] { false, true, false, true, false }, kept.isfinite().squeeze(0).data<bool>().ToArray());
    }

    [Fact]
    public void TopPKeepsTheSmallestNucleus()
    {
        // probabilities 0.5, 0.3, 0.2: p = 0.7 needs the first two; p = 0.5 only the first.
        var logits = log(tensor(new float[] { 0.2f, 0.5f, 0.3f })).unsqueeze(0);
        Assert.Equal(new[] { false, true, true }, Sampler.TopP(logits, 0.7).isfinite().squeeze(0).data<bool>().ToArray());
        Assert.Equal(new[] { false, true, false }, Sampler.TopP(logits, 0.5).isfinite().squeeze(0).data<bool>().ToArray());
    }

    [Fact]
    public void SeededSamplingIsReproducibleAndFiltersHold()
    {
        var m = Model();
        var prompt = randint(0, 256, new long[] { 3, 4 });
        var o = new SamplingOptions { Temperature = 0.9, TopK = 5, Seed = 42 };
        var a = Autoregressive.Generate(m, prompt, 12, o);
        var b = Autoregressive.Generate(m, prompt, 12, o);
        Assert.True(a.eq(b).all().item<bool>());
        var entmax = Autoregressive.Generate(m, prompt, 5, new SamplingOptions { EntmaxAlpha = 1.3, Seed = 1 });
        Assert.Equal(new long[] { 3, 5 }, entmax.shape);
    }

    [Fact]
    public void StopsWhenEverySequenceHasProducedEos()
    {
        var m = Model();
        var prompt = randint(0, 256, new long[] { 2, 3 });
        var first = Autoregressive.Generate(m, prompt, 8, new SamplingOptions { Greedy = true });
        int eos = (int)first[0, 2].item<long>();   // the greedy path produces this token at step 3 for sequence 0
        var stopped = Autoregressive.Generate(m, prompt, 8, new SamplingOptions { Greedy = true, EosToken = eos, PadValue = 0 });
        var row0 = stopped[0].data<long>().ToArray();
        int at = Array.IndexOf(row0, (long)eos);
        Assert.True(at >= 0 && at <= 2);
        Assert.All(row0.Skip(at + 1), t => Assert.Equal(0L, t));
    }

    [Fact]
    public void BatchedPromptsOfDifferentLengthsMatchAlone()
    {
        // Left-padded batch + mask gives each prompt the continuation it gets alone. T5 buckets are relative and replace the
        // absolute embedding, so padding shifts nothing (with absolute positions or 0.20's rotary, which also rotates values, it would).
        var m = Model(relative: true);
        var shortPrompt = tensor(new long[] { 5, 17, 99 }).unsqueeze(0);
        var longPrompt = tensor(new long[] { 1, 2, 3, 4, 5, 6 }).unsqueeze(0);
        var alone = Autoregressive.Generate(m, shortPrompt, 6, new SamplingOptions { Greedy = true });
        var batch = cat(new[] { cat(new[] { zeros(1, 3, dtype: ScalarType.Int64), shortPrompt }, 1), longPrompt }, 0);
        var mask = ones(2, 6, dtype: ScalarType.Bool);
        mask[0, TensorIndex.Slice(0, 3)] = tensor(false);
        var together = Autoregressive.Generate(m, batch, 6, new SamplingOptions { Greedy = true }, promptMask: mask);
        Assert.True(together[0].eq(alone[0]).all().item<bool>());
        var longAlone = Autoregressive.Generate(m, longPrompt, 6, new SamplingOptions { Greedy = true });
        Assert.True(together[1].eq(longAlone[0]).all().item<bool>());
    }

    [Fact]
    public void NextTokenLossIsCrossEntropyOfTheShiftedSequence()
    {
        var m = Model();
        var tokens = randint(0, 256, new long[] { 2, 9 });
        var logits = m.forward(tokens.narrow(1, 0, 8));
        var expected = nn.functional.cross_entropy(logits.reshape(16, 256), tokens.narrow(1, 1, 8).reshape(16));
        Assert.Equal(expected.item<double>(), Autoregressive.NextTokenLoss(m, tokens).item<double>(), 12);
    }

    [Fact]
    public void TforgeGenerateStreamsFromASavedModel()
    {
        var m = Model(relative: false);
        var dir = Path.Combine(Path.GetTempPath(), $"tforge-gen-{Guid.NewGuid():N}");
        try
        {
            m.to(ScalarType.Float32);
            var tokenizer = Tokenizers.Create("bytes");
            ModelDirectory.Save(dir, m.Config, m, writeExtra: tmp => tokenizer.Save(tmp));
            var dll = Path.Combine(TestPaths.RepoRoot, "src", "TransformerForge.Cli", "bin",
                AppContext.BaseDirectory.Contains("/Release/") ? "Release" : "Debug", "net10.0", "tforge.dll");
            var psi = new ProcessStartInfo("dotnet", $"\"{dll}\" generate --model \"{dir}\" --prompt \"Hello\" --tokens 12 --seed 3")
                { RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEnd();
            var stderr = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, stderr);
            Assert.StartsWith("Hello", stdout);
            Assert.True(stdout.Length > "Hello".Length, stdout);
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }
}
