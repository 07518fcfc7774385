using TorchSharp;
using TransformerForge.Modules;
using TransformerForge.Runtime;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Modules;

/// <summary>What 1.5-entmax and bisection entmax accept, refuse, and promise about any dim and any iteration count.</summary>
public class EntmaxArgumentsTests
{
    public EntmaxArgumentsTests() => TorchRuntime.EnsureLoaded();

    public static TheoryData<string> Functions() => new() { "entmax15", "bisect" };

    static Tensor Apply(string f, Tensor x, long dim = -1) => f == "entmax15" ? Entmax15.Apply(x, dim) : EntmaxBisect.Apply(x, 1.5, dim);

    [Theory]
    [MemberData(nameof(Functions))]
    public void BadInputsAreRefusedWithAClearMessage(string f)
    {
        using var scope = NewDisposeScope();
        var name = f == "entmax15" ? "Entmax15" : "EntmaxBisect";
        var integer = Assert.Throws<ArgumentException>(() => Apply(f, ones(3, dtype: ScalarType.Int64)));
        Assert.Contains($"{name} needs a floating-point tensor, got Int64", integer.Message);
        var scalar = Assert.Throws<ArgumentException>(() => Apply(f, tensor(1.0)));
        Assert.Contains($"{name} needs at least one dimension", scalar.Message);
        foreach (var dim in new long[] { 2, -3 })
        {
            var range = Assert.Throws<ArgumentOutOfRangeException>(() => Apply(f, randn(2, 3), dim));
            Assert.Contains("is out of range for a 2-D tensor", range.Message);
        }
    }

    /// <summary>Any dimension: dim 0 of a matrix is the last dim of its transpose.</summary>
    [Theory]
    [MemberData(nameof(Functions))]
    public void AlongDimZeroEqualsTheTransposedLastDim(string f)
    {
        using var scope = NewDisposeScope();
        var x = randn(5, 3, dtype: ScalarType.Float64, generator: new Generator(2)) * 2;
        Assert.True(Apply(f, x, 0).allclose(Apply(f, x.t().contiguous()).t(), rtol: 0, atol: 1e-12));
    }

    /// <summary>Attention logits can be large: the result depends only on differences (shift invariance), also in float32.</summary>
    [Fact]
    public void Entmax15OfLargeLogitsIsShiftInvariantInFloat32()
    {
        using var scope = NewDisposeScope();
        var x = randn(4, 16, generator: new Generator(3)) * 2;
        Assert.True(Entmax15.Apply(x + 1000).allclose(Entmax15.Apply(x), rtol: 0, atol: 1e-3));
    }

    [Fact]
    public void BisectionRefusesAlphaAtMostOneAndNoIterations()
    {
        using var scope = NewDisposeScope();
        var x = randn(2, 3);
        foreach (var alpha in new[] { 1.0, 0.5, double.NaN })
            Assert.Contains("alpha must be > 1", Assert.Throws<ArgumentOutOfRangeException>(() => EntmaxBisect.Apply(x, alpha)).Message);
        Assert.Contains("at least one bisection step", Assert.Throws<ArgumentOutOfRangeException>(() => EntmaxBisect.Apply(x, 1.5, iterations: 0)).Message);
    }

    /// <summary>Whatever the iteration count (one included), the output is a distribution: it sums to one.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void BisectionWithFewIterationsStillSumsToOne(int iterations)
    {
        using var scope = NewDisposeScope();
        var x = randn(4, 9, dtype: ScalarType.Float64, generator: new Generator(5)) * 3;
        var p = EntmaxBisect.Apply(x, 1.3, iterations: iterations);
        Assert.True(p.sum(-1).allclose(ones(4, dtype: ScalarType.Float64), rtol: 0, atol: 1e-12));
        Assert.True(p.ge(0).all().item<bool>());
    }
}
