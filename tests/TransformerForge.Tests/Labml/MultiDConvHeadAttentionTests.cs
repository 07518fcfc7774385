using TorchSharp;
using TransformerForge.Modules;
using TransformerForge.Parity;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Labml;

public class MultiDConvHeadAttentionTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(DConvKernelLayout.SharedByHeads, 1)]
    [InlineData(DConvKernelLayout.SharedByHeads, 3)]
    [InlineData(DConvKernelLayout.PerChannel, 1)]
    [InlineData(DConvKernelLayout.PerChannel, 4)]
    public void CachedStepsEqualFullForward(DConvKernelLayout layout, int chunk)
    {
        manual_seed(7);
        using var attention = new MultiDConvHeadAttention(dModel: 16, heads: 4, layout);
        attention.to(ScalarType.Float64).eval();
        using var _ = no_grad();
        var x = randn(2, 11, 16, dtype: ScalarType.Float64);

        var full = attention.forward(x);

        MultiDConvHeadAttentionCache? cache = null;
        var pieces = new List<Tensor>();
        for (long start = 0; start < x.shape[1]; start += chunk)
        {
            var length = Math.Min(chunk, x.shape[1] - start);
            (var piece, cache) = attention.ForwardCached(x.narrow(1, start, length), cache);
            pieces.Add(piece);
        }
        var stepped = cat(pieces, dim: 1);

        Assert.Equal(x.shape[1], cache!.Length);
        var error = ParityRunner.RelativeError(stepped, full);
        output.WriteLine($"{layout}, chunks of {chunk}: max relative error {error:E3}");
        Assert.True(error <= 1e-12, $"cached differs from full forward: {error:E3}");
    }

    [Fact]
    public void PerChannelLayoutHasOneKernelPerProjectedFeature()
    {
        using var shared = new MultiDConvHeadAttention(dModel: 32, heads: 4, DConvKernelLayout.SharedByHeads);
        using var perChannel = new MultiDConvHeadAttention(dModel: 32, heads: 4, DConvKernelLayout.PerChannel);
        var sharedShapes = shared.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        var perChannelShapes = perChannel.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);

        Assert.Equal(new long[] { 8, 1, 3 }, sharedShapes["key_conv.weight"]);
        Assert.Equal(new long[] { 32, 1, 3 }, perChannelShapes["key_conv.weight"]);
        Assert.Equal(new long[] { 32 }, perChannelShapes["value_conv.bias"]);
    }

    [Fact]
    public void PerChannelWithKernelsRepeatedPerHeadEqualsSharedByHeads()
    {
        manual_seed(3);
        using var shared = new MultiDConvHeadAttention(dModel: 16, heads: 4, DConvKernelLayout.SharedByHeads);
        using var perChannel = new MultiDConvHeadAttention(dModel: 16, heads: 4, DConvKernelLayout.PerChannel);
        shared.to(ScalarType.Float64).eval();
        perChannel.to(ScalarType.Float64).eval();
        using var _ = no_grad();
        // Feature h·d_k + i of the projection uses kernel i in the shared layout.
        var weights = shared.state_dict().ToDictionary(
            w => w.Key,
            w => w.Key.Contains("_conv.") ? w.Value.repeat(w.Value.dim() == 3 ? [4, 1, 1] : [4]) : w.Value);
        perChannel.load_state_dict(weights, strict: true);

        var x = randn(2, 9, 16, dtype: ScalarType.Float64);
        var error = ParityRunner.RelativeError(perChannel.forward(x), shared.forward(x));
        Assert.True(error <= 1e-12, $"{error:E3}");
    }

    [Fact]
    public void ConvolutionIsCausal()
    {
        using var _ = no_grad();
        using var conv = new CausalDepthwiseConv1d(channels: 2);
        conv.Weight.copy_(tensor(new float[] { 1, 2, 3, 10, 20, 30 }).view(2, 1, 3));
        conv.Bias.zero_();
        // One sequence of 4 positions, one group, channel 0 = 1,2,3,4 and channel 1 = 0.
        var x = stack([tensor(new float[] { 1, 2, 3, 4 }), zeros(4)], dim: 1).unsqueeze(0);
        var y = conv.forward(x);
        // Position i = 1·x[i-2] + 2·x[i-1] + 3·x[i].
        Assert.Equal(new float[] { 3, 8, 14, 20 }, y[0, .., 0].data<float>().ToArray());
        Assert.Equal(new float[] { 0, 0, 0, 0 }, y[0, .., 1].data<float>().ToArray());
    }
}
