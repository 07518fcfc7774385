using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Generation;
using TransformerForge.Models;
using TransformerForge.Runtime;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Generation;

/// <summary>A small decoding step runs MKL's products on the calling thread; larger ones and the caller keep theirs.</summary>
public class MklThreadsTests
{
    [Fact]
    public void SmallDecodingStepsRunMklOnTheCallingThreadAndTheCallersSettingComesBack()
    {
        TorchRuntime.EnsureLoaded();
        manual_seed(0);
        using var m = new TransformerWrapper(new TransformerWrapperConfig
        {
            NumTokens = 40, MaxSeqLen = 32,
            AttnLayers = new AttentionLayersConfig { Type = LayerStackType.Decoder, Dim = 16, Depth = 1, Heads = 2 },
        });
        using var outer = MklThreads.OnCallingThread(); // restores this test thread's setting at the end
        int before = get_num_threads();
        set_num_threads(2); // libtorch sets MKL's count on this thread too
        try
        {
            Assert.Equal(2, MklThreads.Current());
            var small = new List<int?>();
            Autoregressive.Generate(m, randint(0, 40, [1, 4]), 3, new SamplingOptions { Greedy = true },
                onToken: _ => small.Add(MklThreads.Current()));
            Assert.Equal([1, 1, 1], small); // the 4-token prompt, then one token per step
            Assert.Equal(2, MklThreads.Current());

            var large = new List<int?>();
            Autoregressive.Generate(m, randint(0, 40, [4, 4]), 2, new SamplingOptions { Greedy = true },
                onToken: _ => large.Add(MklThreads.Current()));
            Assert.Equal([2, 1], large); // 16 prompt rows split over the threads; then 4 rows, one token each
        }
        finally { set_num_threads(before); }
    }
}
