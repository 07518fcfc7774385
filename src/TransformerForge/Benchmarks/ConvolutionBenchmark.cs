using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using TransformerForge.Modules.TokenMixers;
using static TorchSharp.torch;

namespace TransformerForge.Benchmarks;

/// <summary>One measured shape: median seconds of the direct sum and of the FFT, and which one <see cref="LongConvolution.UseFft"/> picks.</summary>
public sealed record ConvolutionBenchmarkRow(long Length, long Taps, double DirectSeconds, double FftSeconds, bool PicksFft)
{
    /// <summary>How many times faster the FFT is than the direct sum.</summary>
    public double FftSpeedup => DirectSeconds / FftSeconds;

    /// <summary>Whether the pick is the faster of the two (or within 10% of it, where timing noise decides).</summary>
    public bool PickIsRight => PicksFft ? FftSeconds <= DirectSeconds * 1.1 : DirectSeconds <= FftSeconds * 1.1;
}

/// <summary>
/// SGConv's long causal convolution, <see cref="LongConvolution.Direct"/> against <see cref="LongConvolution.Fft"/>, on
/// a [batch, channels, length] input with a [channels, taps] kernel (forward only). The two are timed interleaved
/// (direct, FFT, direct, ...) so that load from other processes hits both alike; medians are reported.
/// </summary>
public static class ConvolutionBenchmark
{
    public static IReadOnlyList<ConvolutionBenchmarkRow> Run(Device device, IReadOnlyList<long> lengths, IReadOnlyList<long> taps,
        int batch = 4, int channels = 128, int repeats = 7, Action<string>? log = null)
    {
        Validate(lengths, taps, batch, channels, repeats);
        var rows = new List<ConvolutionBenchmarkRow>();
        manual_seed(0);
        foreach (var length in lengths)
            foreach (var t in taps.Where(t => t <= length))
            {
                using var scope = NewDisposeScope();
                using var _ = no_grad();
                var u = randn(batch, channels, length, device: device);
                var kernel = randn(channels, t, device: device);
                // Same numbers both ways (checked in float32 here; the tests check float64 to 1e-10).
                var difference = (LongConvolution.Direct(u, kernel, length) - LongConvolution.Fft(u, kernel, length)).abs().max().item<float>();
                var direct = new List<double>();
                var fft = new List<double>();
                for (int r = 0; r < repeats + 1; r++)
                {
                    var d = Time(() => LongConvolution.Direct(u, kernel, length), device);
                    var f = Time(() => LongConvolution.Fft(u, kernel, length), device);
                    if (r == 0) continue;   // the first pair warms up
                    direct.Add(d);
                    fft.Add(f);
                }
                var row = new ConvolutionBenchmarkRow(length, t, Median(direct), Median(fft), LongConvolution.UseFft(length, t));
                rows.Add(row);
                log?.Invoke(string.Create(CultureInfo.InvariantCulture,
                    $"length {length,5}  taps {t,5}  direct {row.DirectSeconds * 1e3,9:F2} ms  fft {row.FftSeconds * 1e3,9:F2} ms  fft speed-up {row.FftSpeedup,6:F2}x  picks {(row.PicksFft ? "fft" : "direct"),-6} {(row.PickIsRight ? "" : "(slower choice)")}  |direct - fft| {difference:e1}"));
            }
        return rows;
    }

    /// <summary>Sizes are checked before anything is allocated: each error names its option.</summary>
    public static void Validate(IReadOnlyList<long> lengths, IReadOnlyList<long> taps, int batch, int channels, int repeats)
    {
        if (lengths.Count == 0 || lengths.Any(l => l is < 1 or > 1 << 24)) throw new ArgumentException($"--lengths must be between 1 and {1 << 24}, got {string.Join(" ", lengths)}");
        if (taps.Count == 0 || taps.Any(t => t < 1)) throw new ArgumentException($"--taps must be positive, got {string.Join(" ", taps)}");
        if (!taps.Any(t => t <= lengths.Max())) throw new ArgumentException($"no --taps value is at most the longest length {lengths.Max()}: nothing to measure");
        if (batch is < 1 or > 4096) throw new ArgumentException($"--batch must be between 1 and 4096, got {batch}");
        if (channels is < 1 or > 1 << 16) throw new ArgumentException($"--channels must be between 1 and {1 << 16}, got {channels}");
        if (repeats is < 1 or > 10_000) throw new ArgumentException($"--repeats must be between 1 and 10000, got {repeats}");
    }

    static double Time(Func<Tensor> run, Device device)
    {
        using var scope = NewDisposeScope();
        var watch = Stopwatch.StartNew();
        var y = run();
        if (device.type == DeviceType.CUDA) cuda.synchronize();
        _ = y.shape;
        return watch.Elapsed.TotalSeconds;
    }

    static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }
}
