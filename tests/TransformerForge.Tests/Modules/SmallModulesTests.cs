using TorchSharp;
using TransformerForge.Modules;
using TransformerForge.Runtime;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Modules;

/// <summary>
/// Reference values and argument checks of the small modules (positions, norms, the causal convolution, dropout,
/// the Feedback layer), where no parity fixture reaches.
/// </summary>
public class SmallModulesTests
{
    public SmallModulesTests() => TorchRuntime.EnsureLoaded();

    /// <summary>x-transformers' ALiBi slopes for a head count that is not a power of two (3 → 2 + 1, 6 → 4 + 2).</summary>
    [Theory]
    [InlineData(3, new[] { -4, -8, -2 })]
    [InlineData(6, new[] { -2, -4, -6, -8, -1, -3 })]
    public void AlibiSlopesForHeadsThatAreNotAPowerOfTwoInterleaveTheNextPower(int heads, int[] log2Slopes)
    {
        Assert.Equal(log2Slopes.Select(e => Math.Pow(2, e)).ToArray(), AlibiPositionalBias.Slopes(heads));
    }

    [Fact]
    public void AbsolutePositionsPastMaxSeqLenAreRefused()
    {
        using var scope = NewDisposeScope();
        var emb = new AbsolutePositionalEmbedding(16, 8);
        Assert.Equal(new long[] { 1, 2, 16 }, emb.Forward(2, 6, CPU).shape);
        var e = Assert.Throws<ArgumentException>(() => emb.Forward(3, 6, CPU));
        Assert.Contains("sequence position 9 exceeds max_seq_len 8", e.Message);
    }

    /// <summary>Position-infused attention's sinusoids: sin(p / 10000^(2i/dim)) then cos, as x-transformers' FixedPositionalEmbedding.</summary>
    [Fact]
    public void FixedPositionalEmbeddingIsTheSinusoidOfTheReference()
    {
        using var scope = NewDisposeScope();
        const int dim = 8;
        var e = new FixedPositionalEmbedding(dim).Forward(4, 2, ScalarType.Float64);
        Assert.Equal(new long[] { 1, 4, dim }, e.shape);
        for (var p = 0; p < 4; p++)
            for (var i = 0; i < dim / 2; i++)
            {
                var angle = (p + 2) / Math.Pow(10000, 2.0 * i / dim);
                Assert.Equal(Math.Sin(angle), e[0, p, i].item<double>(), 5);
                Assert.Equal(Math.Cos(angle), e[0, p, dim / 2 + i].item<double>(), 5);
            }
    }

    /// <summary><c>*_unit_offset</c> stores gain − 1: a fresh norm with it computes what a fresh norm without it does.</summary>
    [Fact]
    public void UnitOffsetNormsStartAsTheNormsWithoutIt()
    {
        using var scope = NewDisposeScope();
        var x = randn(3, 16, dtype: ScalarType.Float64);
        foreach (var (with, without) in new (nn.Module<Tensor, Tensor>, nn.Module<Tensor, Tensor>)[]
                 {
                     (new RMSNorm(16, unitOffset: true), new RMSNorm(16)),
                     (new ScaleNorm(16, unitOffset: true), new ScaleNorm(16)),
                     (new BiaslessLayerNorm(16, unitOffset: true), new BiaslessLayerNorm(16)),
                 })
        {
            with.to(ScalarType.Float64);
            without.to(ScalarType.Float64);
            Assert.True(with.forward(x).allclose(without.forward(x), rtol: 0, atol: 1e-12), with.GetName());
        }
    }

    /// <summary>Mixed precision: a bfloat16 input is normalised in float32 and comes back in bfloat16.</summary>
    [Fact]
    public void NormsOfBfloat16ComputeInFloat32AndAnswerInBfloat16()
    {
        using var scope = NewDisposeScope();
        var x = (randn(4, 16, generator: new Generator(9)) * 3).to_type(ScalarType.BFloat16);
        foreach (var norm in new nn.Module<Tensor, Tensor>[] { new RMSNorm(16), new ScaleNorm(16), new BiaslessLayerNorm(16) })
        {
            using (no_grad())
                foreach (var p in norm.parameters()) p.add_(randn(p.shape) * 0.1);
            var y = norm.forward(x);
            Assert.Equal(ScalarType.BFloat16, y.dtype);
            Assert.True(y.allclose(norm.forward(x.to_type(ScalarType.Float32)).to_type(ScalarType.BFloat16), rtol: 0, atol: 0), norm.GetName());
        }
    }

    [Fact]
    public void CausalConvolutionChecksItsKernelAndFeatureSizes()
    {
        using var scope = NewDisposeScope();
        Assert.Throws<ArgumentOutOfRangeException>(() => new CausalDepthwiseConv1d(4, kernelSize: 0));
        var conv = new CausalDepthwiseConv1d(2, kernelSize: 3);
        var e = Assert.Throws<ArgumentException>(() => conv.forward(randn(1, 4, 5)));
        Assert.Contains("feature size 5 is not a multiple of 2 channels", e.Message);
    }

    /// <summary>A one-tap causal convolution is a per-channel scale and shift of the current position.</summary>
    [Fact]
    public void ACausalConvolutionOfKernelSizeOneScalesEachChannel()
    {
        using var scope = NewDisposeScope();
        var conv = new CausalDepthwiseConv1d(3, kernelSize: 1);
        var x = randn(2, 5, 6);
        var expected = x * conv.Weight.reshape(3).repeat(2) + conv.Bias.repeat(2);
        Assert.True(conv.forward(x).allclose(expected, rtol: 1e-5, atol: 1e-6));
    }

    /// <summary>PyTorch's Conv1d initialisation: weight and bias uniform in ±1/sqrt(kernel size).</summary>
    [Fact]
    public void CausalConvolutionStartsWithPyTorchsUniformInitialisation()
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        var conv = new CausalDepthwiseConv1d(512, kernelSize: 4);
        foreach (var p in new[] { conv.Weight, conv.Bias })
        {
            Assert.True(p.abs().max().item<float>() <= 0.5f);
            Assert.True(p.max().item<float>() > 0.45f && p.min().item<float>() < -0.45f);
        }
    }

    [Fact]
    public void DropoutRatesOutsideZeroToOneAreRefused()
    {
        foreach (var p in new[] { -0.1, 1.0 })
            Assert.Contains("dropout rate must be in [0, 1)", Assert.Throws<ArgumentOutOfRangeException>(() => new OptionalDropout(p)).Message);
    }

    [Fact]
    public void FeedbackAttentionChecksItsArguments()
    {
        using var scope = NewDisposeScope();
        Assert.Contains("dim 10 is not divisible by 3 heads", Assert.Throws<ArgumentException>(() => new FeedbackAttention(10, 3, true)).Message);
        var own = new FeedbackAttention(8, 2, projectsKeyValues: true, maxMemory: 4);
        var shared = new FeedbackAttention(8, 2, projectsKeyValues: false, maxMemory: 4);
        Assert.True(own.ProjectsKeyValues);
        Assert.False(shared.ProjectsKeyValues);
        Assert.Contains("shared by all layers", Assert.Throws<InvalidOperationException>(() => shared.ProjectKey(randn(3, 8))).Message);
        var keys = randn(5, 1, 2, 4);
        var tooLong = Assert.Throws<InvalidOperationException>(() => own.Forward(randn(1, 8), keys, keys));
        Assert.Contains("memory of 5 steps exceeds the 4 learned relative positions", tooLong.Message);
        var layer = new FeedbackLayer(8, 2, 16, projectsKeyValues: true);
        Assert.Throws<ArgumentNullException>(() => layer.Forward(randn(1, 8), randn(2, 1, 2, 4), null));
    }
}
