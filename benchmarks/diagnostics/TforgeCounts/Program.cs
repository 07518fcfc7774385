// What one training forward / backward and one decoding token cost TransformerForge: tensors created (each a native
// call), OpenMP parallel regions (with gompcount.c preloaded; each wakes the thread pool and ends at a barrier) and
// CPU time (all threads, user + system). benchmarks/diagnostics/gpt_counts.py prints the same for the hand-written GPT.
//   dotnet run -c Release --project benchmarks/diagnostics/TforgeCounts -- [threads] [dim depth heads seq batch]
using System.Runtime.InteropServices;
using TransformerForge.Config;
using TransformerForge.Generation;
using TransformerForge.Models;
using TransformerForge.Runtime;
using TransformerForge.Training;
using TorchSharp;
using static TorchSharp.torch;

int threads = args.Length > 0 ? int.Parse(args[0]) : 2;
int[] size = args.Length > 5 ? args[1..6].Select(int.Parse).ToArray() : new[] { 256, 4, 4, 256, 8 };
var (dim, depth, heads, seq, batch) = (size[0], size[1], size[2], size[3], size[4]);
ThreadPolicy.Fix(threads);
var json = $$$"""{"type":"TransformerWrapper","num_tokens":256,"max_seq_len":{{{seq}}},"attn_layers":{"type":"Decoder","dim":{{{dim}}},"depth":{{{depth}}},"heads":{{{heads}}},"attn_dim_head":{{{dim / heads}}}}}""";
var model = (TransformerWrapper)ModelFactory.CreateLanguageModel(ModelConfig.Parse(json));
manual_seed(0);
var tokens = randint(0, 256, new long[] { batch, seq + 1 });
var (input, target) = (tokens.narrow(1, 0, seq).contiguous(), tokens.narrow(1, 1, seq).contiguous());
Console.WriteLine($"TransformerForge d{dim}-l{depth}-h{heads}, batch {batch} x {seq}, {threads} threads, regions counted: {Regions.Available}");

model.train();
Tensor Loss() => Trainer.Loss(model.Logits(input), target, null);
for (int i = 0; i < 3; i++) { using var warm = NewDisposeScope(); Loss().backward(); }
for (int i = 0; i < 3; i++)
{
    using var scope = NewDisposeScope();
    var (t0, r0, c0) = (Created(), Regions.Count(), Cpu());
    var loss = Loss();
    var (t1, r1, c1) = (Created(), Regions.Count(), Cpu());
    loss.backward();
    Console.WriteLine($"training: forward + loss {t1 - t0} tensors, {r1 - r0} regions, {(c1 - c0) * 1e3:F1} ms CPU; " +
        $"backward {Regions.Count() - r1} regions, {(Cpu() - c1) * 1e3:F1} ms CPU");
}

model.eval();
var prompt = randint(0, 256, new long[] { 1, 16 });
var greedy = new SamplingOptions { Greedy = true };
int newTokens = seq - 16;
Autoregressive.Generate(model, prompt, 8, greedy).Dispose();
for (int i = 0; i < 3; i++)
{
    var (t0, r0, c0) = (Created(), Regions.Count(), Cpu());
    Autoregressive.Generate(model, prompt, newTokens, greedy).Dispose();
    Console.WriteLine($"decoding: per token {(Created() - t0) / (double)newTokens:F1} tensors, {(Regions.Count() - r0) / (double)newTokens:F1} regions, " +
        $"{(Cpu() - c0) * 1e3 / newTokens:F3} ms CPU");
}

static double Cpu() => Environment.CpuUsage.TotalTime.TotalSeconds;
static long Created() => DisposeScopeManager.Statistics.CreatedInScopeCount + DisposeScopeManager.Statistics.CreatedOutsideScopeCount;

static class Regions
{
    [DllImport("libgompcount.so", EntryPoint = "gomp_count")]
    static extern long GompCount();

    public static bool Available => Count() >= 0;

    /// <summary>Parallel regions so far (gompcount.c, preloaded), or -1 without it.</summary>
    public static long Count()
    {
        try { return GompCount(); }
        catch (DllNotFoundException) { return -1; }
    }
}
