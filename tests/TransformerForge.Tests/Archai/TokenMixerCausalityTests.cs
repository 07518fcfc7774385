using TorchSharp;
using TransformerForge.Modules.TokenMixers;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Archai;

/// <summary>
/// Every token mixer is causal: changing the input at one position never changes the outputs before it. The FFT
/// convolutions of SGConv spread rounding over the whole sequence, so "unchanged" means within 1e-12 in float64;
/// the outputs from that position on must change, so the test cannot pass vacuously.
/// </summary>
public class TokenMixerCausalityTests
{
    const int Dim = 32;

    static readonly TokenMixerOptions Options = new()
    {
        Dim = Dim, Heads = 4, MaxSeqLen = 64, RotaryDim = 4, SepConvKernelSize = 5, SGConvKernelSize = 16, SGConv3KernelSize = 8,
        LocalAttnWindowSize = 8, LshNumHashes = 2, LshBucketSize = 4,
    };

    public static TheoryData<string, int> Cases()
    {
        var data = new TheoryData<string, int>();
        foreach (var op in TokenMixerFactory.OpNames)
            foreach (var length in new[] { 24, 21 })   // 21: not a whole number of local-attention windows
                data.Add(op, length);
        data.Add("mixed", 24);
        data.Add("mixed", 21);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void LaterPositionsNeverChangeEarlierOutputs(string op, int length)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        manual_seed(7);
        nn.Module<Tensor, Tensor> mixer = op == "mixed"
            ? MixedAttentionBlock.Create([("mha", 2), ("sgconv", 1), ("local_attn", 1)], Options)
            : TokenMixerFactory.Create(op, 2, Options);
        mixer.to(ScalarType.Float64);
        mixer.eval();

        var x = randn(2, length, Dim, dtype: ScalarType.Float64);
        var before = mixer.forward(x);
        foreach (var position in new[] { 0, 9, length - 1 })
        {
            var changed = x.clone();
            changed[.., position] = randn(2, Dim, dtype: ScalarType.Float64);
            var after = mixer.forward(changed);

            if (position > 0)
            {
                var earlier = (after.narrow(1, 0, position) - before.narrow(1, 0, position)).abs().max().item<double>();
                Assert.True(earlier <= 1e-12, $"{op}: changing position {position} moved an earlier output by {earlier:e2}");
            }
            var atPosition = (after.narrow(1, position, 1) - before.narrow(1, position, 1)).abs().max().item<double>();
            Assert.True(atPosition > 1e-6, $"{op}: changing position {position} did not change its own output");
        }
    }
}
