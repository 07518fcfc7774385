using System.Diagnostics;
using TransformerForge.Data;
using TransformerForge.Runtime;
using Xunit.Abstractions;

namespace TransformerForge.Tests.Data;

[CollectionDefinition(nameof(MemoryMeasurement), DisableParallelization = true)]
public sealed class MemoryMeasurement;

/// <summary>Runs alone so that other tests' allocations do not blur the working-set measurement.</summary>
[Collection(nameof(MemoryMeasurement))]
public class TextDatasetMemoryTests(ITestOutputHelper output)
{
    [Fact]
    public void TwentyMegabyteCorpusIsStreamedIntoAMemoryMappedTokenFile()
    {
        TorchRuntime.EnsureLoaded();
        using var dir = new TempDir();
        var file = dir.File("big.txt");
        var random = new Random(3);
        string[] words = ["the", "model", "attends", "to", "every", "token", "in", "context", "and", "predicts", "next", "ünïcode", "日本"];
        using (var w = new StreamWriter(file))
        {
            while (w.BaseStream.Length < 20_000_000)
            {
                for (var i = 0; i < 1000; i++) w.Write(words[random.Next(words.Length)] + (i % 12 == 11 ? "\n" : " "));
                w.Flush();
            }
        }
        var corpusBytes = new FileInfo(file).Length;

        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var before = Environment.WorkingSet;
        long peak = before;
        using var stop = new CancellationTokenSource();
        var sampler = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                peak = Math.Max(peak, Environment.WorkingSet);
                Thread.Sleep(5);
            }
        });
        sampler.Start();

        var clock = Stopwatch.StartNew();
        using var data = TextDataset.Open(file, Tokenizers.Create("bytes"), new TextDatasetOptions(CacheDirectory: Path.Combine(dir.Path, "cache")));
        var elapsed = clock.Elapsed;
        using (var batch = data.SampleBatch(DataSplit.Train, 64, 256, new Random(1))) Assert.Equal([64, 257], batch.shape);
        stop.Cancel();
        sampler.Join();
        peak = Math.Max(peak, Environment.WorkingSet);

        // bytes: one token per UTF-8 byte, stored as uint16 after a 64-byte header.
        Assert.Equal(corpusBytes, data.TokenCount);
        Assert.Equal(TokenFile.HeaderBytes + 2 * corpusBytes, new FileInfo(data.TokenFilePath).Length);

        // Windows are read from the token file: compare with the corpus bytes at the same offsets.
        using var raw = File.OpenRead(file);
        foreach (var offset in new long[] { 0, 12_345_678, corpusBytes - 300 })
        {
            var expected = new byte[300];
            raw.Position = offset;
            raw.ReadExactly(expected);
            Assert.Equal(expected.Select(b => (int)b), data.ReadTokens(offset, 300));
        }

        var growth = peak - before;
        output.WriteLine($"working set +{growth / 1e6:F1} MB (peak) tokenizing {corpusBytes / 1e6:F1} MB in {elapsed.TotalSeconds:F2} s");
        Assert.True(growth < 2 * corpusBytes,
            $"working set grew by {growth / 1e6:F1} MB while tokenizing a {corpusBytes / 1e6:F1} MB corpus (in {elapsed.TotalSeconds:F1} s)");
    }
}
