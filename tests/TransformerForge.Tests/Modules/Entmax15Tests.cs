using TorchSharp;
using TransformerForge.Modules;
using TransformerForge.Runtime;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Modules;

public class Entmax15Tests
{
    public Entmax15Tests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void SumsToOneAndIsSparseForPeakedInput()
    {
        using var x = tensor(new[] { 4.0, 3.5, 0.0, -1.0, -3.0, 2.0 }, dtype: float64);
        using var y = Entmax15.Apply(x);
        Assert.Equal(1.0, y.sum().item<double>(), 12);
        var v = y.data<double>().ToArray();
        Assert.Equal(0.0, v[2]);
        Assert.Equal(0.0, v[3]);
        Assert.Equal(0.0, v[4]);
        Assert.True(v[0] > v[1] && v[1] > 0);
        Assert.All(v, p => Assert.True(p >= 0));
    }

    [Fact]
    public void MatchesBruteForceReferenceInDoubles()
    {
        manual_seed(11);
        using var x = randn(new long[] { 5, 4, 9 }, dtype: float64) * 3;
        using var y = Entmax15.Apply(x);
        var xs = x.data<double>().ToArray();
        var ys = y.data<double>().ToArray();
        for (var row = 0; row < 20; row++)
        {
            var expected = BruteForceEntmax15(xs.AsSpan(row * 9, 9).ToArray());
            for (var i = 0; i < 9; i++)
                Assert.Equal(expected[i], ys[row * 9 + i], 12);
        }
    }

    [Fact]
    public void MatchesBisectionWithManyIterations()
    {
        manual_seed(12);
        using var x = randn(new long[] { 6, 13 }, dtype: float64) * 2;
        using var y = Entmax15.Apply(x);
        using var reference = EntmaxBisect.Apply(x, 1.5, iterations: 200);
        Assert.True(y.allclose(reference, rtol: 0, atol: 1e-12));
    }

    [Fact]
    public void GradientMatchesFiniteDifferences()
    {
        manual_seed(13);
        using var x0 = randn(new long[] { 2, 3, 7 }, dtype: float64) * 1.5;
        using var w = randn(new long[] { 2, 3, 7 }, dtype: float64);

        using var x = x0.clone().requires_grad_();
        using var loss = (Entmax15.Apply(x) * w).sum();
        loss.backward();
        var analytic = x.grad!.data<double>().ToArray();

        const double eps = 1e-6;
        var flat = x0.data<double>().ToArray();
        double Loss(double[] values)
        {
            using var xt = tensor(values, dtype: float64).view(2, 3, 7);
            using var l = (Entmax15.Apply(xt) * w).sum();
            return l.item<double>();
        }
        for (var i = 0; i < flat.Length; i++)
        {
            var plus = (double[])flat.Clone();
            var minus = (double[])flat.Clone();
            plus[i] += eps;
            minus[i] -= eps;
            var numeric = (Loss(plus) - Loss(minus)) / (2 * eps);
            Assert.True(Math.Abs(numeric - analytic[i]) < 1e-6, $"index {i}: numeric {numeric}, analytic {analytic[i]}");
        }
    }

    [Fact]
    public void GradientIsTheClosedForm()
    {
        manual_seed(14);
        using var x = randn(new long[] { 4, 10 }, dtype: float64).requires_grad_();
        using var dy = randn(new long[] { 4, 10 }, dtype: float64);
        using var y = Entmax15.Apply(x);
        // The forward runs under no_grad, so any gradient at all comes from the custom node.
        y.backward(new[] { dy });

        using var s = y.detach().sqrt();
        using var expected = dy * s - (dy * s).sum(-1, keepdim: true) / s.sum(-1, keepdim: true) * s;
        Assert.True(x.grad!.allclose(expected, rtol: 0, atol: 1e-14));
    }

    [Fact]
    public void MaskedEntriesGetZeroWeightAndGradient()
    {
        // Attention masks fill with -inf or with the dtype's most negative finite value.
        foreach (var fill in new[] { double.NegativeInfinity, -float.MaxValue })
        {
            using var x = tensor(new[] { 0.3, fill, -0.2, fill, 1.0 }, dtype: float32).requires_grad_();
            using var y = Entmax15.Apply(x);
            using var reference = Entmax15.Apply(tensor(new[] { 0.3, -0.2, 1.0 }, dtype: float32));
            var v = y.data<float>().ToArray();
            var r = reference.data<float>().ToArray();
            Assert.Equal(new[] { r[0], 0f, r[1], 0f, r[2] }, v);
            (y * arange(5, dtype: float32)).sum().backward();
            var g = x.grad!.data<float>().ToArray();
            Assert.All(g, gi => Assert.True(float.IsFinite(gi)));
            Assert.Equal(0f, g[1]);
            Assert.Equal(0f, g[3]);
        }
    }

    [Fact]
    public void WorksAlongDimOneOfThreeDTensor()
    {
        manual_seed(15);
        using var x = randn(new long[] { 2, 5, 3 }, dtype: float64) * 2;
        using var y = Entmax15.Apply(x, dim: 1);
        using var viaLast = Entmax15.Apply(x.transpose(1, 2)).transpose(1, 2);
        Assert.Equal(x.shape, y.shape);
        Assert.True(y.allclose(viaLast, rtol: 0, atol: 1e-15));
        using var sums = y.sum(1);
        Assert.True(sums.allclose(ones_like(sums), rtol: 0, atol: 1e-12));

        using var xg = x.clone().requires_grad_();
        Entmax15.Apply(xg, dim: 1).pow(2).sum().backward();
        using var xl = x.clone().requires_grad_();
        Entmax15.Apply(xl.transpose(1, 2)).pow(2).sum().backward();
        Assert.True(xg.grad!.allclose(xl.grad!, rtol: 0, atol: 1e-14));
    }

    [Fact]
    public void Float32Works()
    {
        manual_seed(16);
        using var x64 = randn(new long[] { 3, 4, 11 }, dtype: float64) * 2;
        using var x = x64.to_type(float32).requires_grad_();
        using var y = Entmax15.Apply(x);
        Assert.Equal(float32, y.dtype);
        using var reference = Entmax15.Apply(x.detach().to_type(float64));
        Assert.True(y.to_type(float64).allclose(reference, rtol: 0, atol: 1e-5));
        y.sum().backward();
        // Outputs always sum to 1, so the gradient of their sum vanishes.
        Assert.True(x.grad!.abs().max().item<float>() < 1e-5f);
    }

    [Fact]
    public void BisectWithAlphaTwoIsSparsemax()
    {
        using var x = tensor(new[] { 1.2, 0.9, 0.1, -0.5 }, dtype: float64);
        using var y = EntmaxBisect.Apply(x, 2.0, iterations: 100);
        // Sparsemax by hand: support {0, 1}, tau = (1.2 + 0.9 - 1) / 2 = 0.55.
        using var expected = tensor(new[] { 0.65, 0.35, 0.0, 0.0 }, dtype: float64);
        Assert.True(y.allclose(expected, rtol: 0, atol: 1e-12));
    }

    [Fact]
    public void BisectApproachesSoftmaxAsAlphaGoesToOne()
    {
        manual_seed(17);
        using var x = randn(new long[] { 3, 8 }, dtype: float64);
        using var softmax = x.softmax(-1);
        using var far = EntmaxBisect.Apply(x, 1.1, iterations: 100);
        using var near = EntmaxBisect.Apply(x, 1.001, iterations: 100);
        var farErr = (far - softmax).abs().max().item<double>();
        var nearErr = (near - softmax).abs().max().item<double>();
        Assert.True(nearErr < 1e-3, $"alpha 1.001 max error {nearErr}");
        Assert.True(nearErr < farErr);
    }

    [Fact]
    public void BisectFloat32AlongDimSumsToOne()
    {
        manual_seed(18);
        using var x = randn(new long[] { 2, 6, 3 }, dtype: float32);
        using var y = EntmaxBisect.Apply(x, 1.3, dim: 1);
        Assert.Equal(float32, y.dtype);
        using var sums = y.sum(1);
        Assert.True(sums.allclose(ones_like(sums), rtol: 0, atol: 1e-5));
    }

    /// <summary>
    /// Independent reference in plain doubles: try every support size k of the sorted input
    /// z = x/2, solve sum_{i&lt;=k} (z_i - tau)^2 = 1 for tau, and keep the one consistent solution
    /// (z_k &gt; tau &gt;= z_{k+1}).
    /// </summary>
    private static double[] BruteForceEntmax15(double[] x)
    {
        var z = x.Select(v => v / 2).ToArray();
        var sorted = z.OrderByDescending(v => v).ToArray();
        for (var k = 1; k <= sorted.Length; k++)
        {
            double s1 = 0, s2 = 0;
            for (var i = 0; i < k; i++) { s1 += sorted[i]; s2 += sorted[i] * sorted[i]; }
            var disc = s1 * s1 - k * (s2 - 1);
            if (disc < 0) continue;
            var tau = (s1 - Math.Sqrt(disc)) / k;
            var next = k < sorted.Length ? sorted[k] : double.NegativeInfinity;
            if (sorted[k - 1] > tau && tau >= next)
                return z.Select(v => Math.Max(v - tau, 0) * Math.Max(v - tau, 0)).ToArray();
        }
        throw new InvalidOperationException("no consistent support found");
    }
}
