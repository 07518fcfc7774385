using TorchSharp;
using TransformerForge.Generation;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Generation;

/// <summary>Sampling draws from the distribution its options describe: softmax(logits / temperature), or α-entmax.</summary>
public class SamplerDistributionTests
{
    const int Draws = 40000;

    /// <summary>How often each of the three tokens is drawn from <paramref name="logits"/> (one row, repeated).</summary>
    static double[] Frequencies(double[] logits, SamplingOptions o)
    {
        using var rng = new torch.Generator(17);
        var rows = tensor(logits).unsqueeze(0).expand(Draws, -1);
        var ids = Sampler.Sample(rows, o, rng).flatten().data<long>().ToArray();
        return Enumerable.Range(0, logits.Length).Select(t => ids.Count(i => i == t) / (double)Draws).ToArray();
    }

    static void AssertClose(double[] expected, double[] observed)
    {
        for (int t = 0; t < expected.Length; t++)
        {
            double sd = Math.Sqrt(Math.Max(expected[t] * (1 - expected[t]), 1e-12) / Draws);
            Assert.True(Math.Abs(observed[t] - expected[t]) <= 6 * sd + 1e-12,
                $"token {t}: drawn {observed[t]:0.0000}, expected {expected[t]:0.0000} (all: {string.Join(", ", observed.Select(f => f.ToString("0.0000")))})");
        }
    }

    static double[] Softmax(double[] z)
    {
        var e = z.Select(v => Math.Exp(v - z.Max())).ToArray();
        return e.Select(v => v / e.Sum()).ToArray();
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(0.5)]
    [InlineData(2.0)]
    public void TemperatureDividesTheLogits(double temperature)
    {
        double[] logits = { 0.0, 1.0, 2.0 };
        var observed = Frequencies(logits, new SamplingOptions { Temperature = temperature });
        AssertClose(Softmax(logits.Select(l => l / temperature).ToArray()), observed);
    }

    /// <summary>α-entmax (Peters et al. 2019): p_i = [(α−1) z_i − τ]₊^{1/(α−1)} with τ such that the p_i sum to 1 (bisection here).</summary>
    static double[] Entmax(double[] z, double alpha)
    {
        double P(double v, double tau) => Math.Pow(Math.Max((alpha - 1) * v - tau, 0), 1 / (alpha - 1));
        double lo = (alpha - 1) * z.Max() - 1, hi = (alpha - 1) * z.Max();
        for (int i = 0; i < 200; i++)
        {
            double mid = (lo + hi) / 2;
            if (z.Sum(v => P(v, mid)) >= 1) lo = mid; else hi = mid;
        }
        var p = z.Select(v => P(v, lo)).ToArray();
        return p.Select(v => v / p.Sum()).ToArray();
    }

    [Fact]
    public void EntmaxSamplingGivesUnlikelyTokensExactlyZero()
    {
        double[] logits = { 0.0, 3.0, 4.0 };
        var expected = Entmax(logits, 1.3);
        Assert.Equal(0.0, expected[0]);   // softmax would give it 1.3%
        var observed = Frequencies(logits, new SamplingOptions { EntmaxAlpha = 1.3 });
        Assert.Equal(0.0, observed[0]);
        AssertClose(expected, observed);
    }

    [Fact]
    public void TopKAndTopPThenTemperature()
    {
        // Filters come first: top-2 of (0, 1, 2, 3) at temperature 0.5 is softmax((2, 3) / 0.5) over the last two.
        double[] logits = { 0.0, 1.0, 2.0, 3.0 };
        var observed = Frequencies(logits, new SamplingOptions { TopK = 2, Temperature = 0.5 });
        var top = Softmax(new[] { 4.0, 6.0 });
        AssertClose(new[] { 0, 0, top[0], top[1] }, observed);
    }
}
