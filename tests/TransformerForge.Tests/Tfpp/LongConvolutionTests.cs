using TorchSharp;
using TransformerForge.Modules.TokenMixers;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Tfpp;

/// <summary>SGConv's causal long convolution: the direct sum and the FFT compute the same thing, for whole sequences and for the last outputs of a longer one.</summary>
public class LongConvolutionTests
{
    /// <summary>y[t] = Σ_j k[j] · u[t - j], by loops.</summary>
    static double[,,] Reference(double[,,] u, double[,] kernel)
    {
        int batch = u.GetLength(0), channels = u.GetLength(1), length = u.GetLength(2), taps = kernel.GetLength(1);
        var y = new double[batch, channels, length];
        for (int b = 0; b < batch; b++)
            for (int c = 0; c < channels; c++)
                for (int t = 0; t < length; t++)
                    for (int j = 0; j < taps && j <= t; j++)
                        y[b, c, t] += kernel[c, j] * u[b, c, t - j];
        return y;
    }

    [Theory]
    [InlineData(40, 7, 40)]    // short kernel, whole sequence
    [InlineData(40, 40, 40)]   // sequence-long kernel
    [InlineData(40, 64, 40)]   // kernel longer than the sequence (its tail never reaches an output)
    [InlineData(40, 9, 1)]     // the last output only (a decoding step)
    [InlineData(40, 9, 5)]     // the last few (a chunk after a history longer than the kernel)
    [InlineData(6, 9, 4)]      // the last few, with a history shorter than the kernel
    public void DirectAndFftEqualTheDefinition(int length, int taps, int outputs)
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var u = randn(2, 3, length, dtype: ScalarType.Float64);
        var kernel = randn(3, taps, dtype: ScalarType.Float64);
        var reference = Reference(ToArray3(u), ToArray2(kernel));
        var expected = tensor(reference).narrow(-1, length - outputs, outputs);

        // What CausalConv hands each path: the taps within the sequence, the inputs within reach of the outputs.
        var used = kernel.narrow(-1, 0, Math.Min(taps, length));
        long window = Math.Min(length, outputs + used.shape[^1] - 1);
        var input = u.narrow(-1, length - window, window);
        Assert.True(TfppFixtures.MaxAbs(LongConvolution.Direct(input, used, outputs), expected) < 1e-10, "direct");
        Assert.True(TfppFixtures.MaxAbs(LongConvolution.Fft(input, used, outputs), expected) < 1e-10, "fft");
        Assert.True(TfppFixtures.MaxAbs(LongConvolution.CausalConv(u, kernel, outputs), expected) < 1e-10, "CausalConv");
    }

    /// <summary>Broadcast over leading dimensions, as GConv3's second convolution uses it ([B, d, d, heads, L] with [heads, taps]).</summary>
    [Fact]
    public void BroadcastsOverLeadingDimensions()
    {
        using var scope = NewDisposeScope();
        var u = randn([2, 3, 3, 4, 30], dtype: ScalarType.Float64);
        var kernel = randn(4, 30, dtype: ScalarType.Float64);
        var direct = LongConvolution.Direct(u, kernel, 30);
        var fft = LongConvolution.Fft(u, kernel, 30);
        Assert.Equal(new long[] { 2, 3, 3, 4, 30 }, direct.shape);
        Assert.True(TfppFixtures.MaxAbs(direct, fft) < 1e-10);
        var one = LongConvolution.Direct(u[1, 2].unsqueeze(0), kernel, 30);
        Assert.True(TfppFixtures.MaxAbs(direct[1, 2].unsqueeze(0), one) < 1e-12);
    }

    /// <summary>The measured crossover (tforge bench conv, docs/transformer-plus-plus.md): a 256-tap kernel runs directly at
    /// 1024-4096 positions (at the crossover at 1024, faster at 2048-4096), 512 taps and sequence-long kernels (SGConv's
    /// usual case) through the FFT, a decoding step directly.</summary>
    [Fact]
    public void PicksTheFasterPathAsMeasured()
    {
        foreach (var length in new long[] { 1024, 2048, 4096 })
        {
            Assert.False(LongConvolution.UseFft(length, 256), $"256 taps at {length}");
            Assert.True(LongConvolution.UseFft(length, length), $"{length} taps at {length}");
            Assert.True(LongConvolution.UseFft(length, 512), $"512 taps at {length}");
            Assert.False(LongConvolution.UseFft(1, length), $"one output of {length} taps");
        }
        Assert.False(LongConvolution.UseFft(64, 16));
    }

    /// <summary>The convolution the mixers call runs the path <see cref="LongConvolution.UseFft"/> picks: in float32 the two
    /// paths round differently, and the result is bit for bit the picked one's.</summary>
    [Fact]
    public void CausalConvRunsThePathItPicks()
    {
        using var scope = NewDisposeScope();
        manual_seed(4);
        foreach (var (length, taps) in new[] { (600L, 600L), (16L, 8L) })
        {
            var u = randn(1, 2, length);
            var kernel = randn(2, taps);
            var (fft, direct) = (LongConvolution.Fft(u, kernel, length), LongConvolution.Direct(u, kernel, length));
            Assert.True((fft - direct).abs().max().item<float>() > 0, "the paths must round differently for the check to mean anything");
            var picked = LongConvolution.UseFft(length, taps) ? fft : direct;
            Assert.Equal(0, (LongConvolution.CausalConv(u, kernel) - picked).abs().max().item<float>());
        }
        Assert.True(LongConvolution.UseFft(600, 600) && !LongConvolution.UseFft(16, 8));
    }

    /// <summary><c>tforge bench conv</c> at a tiny size: a row per (length, taps ≤ length) with both timings and the pick; bad sizes are refused first.</summary>
    [Fact]
    public void BenchConvMeasuresBothPathsAndRefusesBadSizes()
    {
        var rows = TransformerForge.Benchmarks.ConvolutionBenchmark.Run(CPU, [32], [4, 32, 64], batch: 1, channels: 2, repeats: 1);
        Assert.Equal([(32L, 4L), (32L, 32L)], rows.Select(r => (r.Length, r.Taps)));
        Assert.All(rows, r => Assert.True(r.DirectSeconds > 0 && r.FftSeconds > 0 && r.PicksFft == LongConvolution.UseFft(r.Length, r.Taps)));
        foreach (var (lengths, taps, repeats, expected) in new (long[], long[], int, string)[]
        {
            ([0], [4], 1, "--lengths"), ([32], [-1], 1, "--taps"), ([32], [64], 1, "nothing to measure"), ([32], [4], 0, "--repeats"),
        })
            Assert.Contains(expected, Assert.Throws<ArgumentException>(() => TransformerForge.Benchmarks.ConvolutionBenchmark.Run(CPU, lengths, taps, 1, 2, repeats)).Message);
    }

    static double[,,] ToArray3(Tensor t)
    {
        var (a, b, c) = ((int)t.shape[0], (int)t.shape[1], (int)t.shape[2]);
        var data = t.contiguous().data<double>().ToArray();
        var result = new double[a, b, c];
        Buffer.BlockCopy(data, 0, result, 0, data.Length * sizeof(double));
        return result;
    }

    static double[,] ToArray2(Tensor t)
    {
        var (a, b) = ((int)t.shape[0], (int)t.shape[1]);
        var data = t.contiguous().data<double>().ToArray();
        var result = new double[a, b];
        Buffer.BlockCopy(data, 0, result, 0, data.Length * sizeof(double));
        return result;
    }
}
