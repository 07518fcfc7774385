using TorchSharp;
using TransformerForge.Runtime;

namespace TransformerForge.Tests.Runtime;

public class TorchRuntimeTests
{
    [Fact]
    public void LoadsAndComputes()
    {
        TorchRuntime.EnsureLoaded();
        using var a = torch.ones(2, 3);
        using var b = (a * 2).sum();
        Assert.Equal(12f, b.item<float>());
        Assert.Equal(Backend.Cpu, TorchRuntime.Loaded);
        Assert.Contains(TorchRuntime.TorchLibraries(), p => p.EndsWith("libLibTorchSharp.so"));
    }

    [Fact]
    public void ScaledDotProductAttentionAndAutogradWork()
    {
        TorchRuntime.EnsureLoaded();
        using var q = torch.randn(1, 2, 4, 8, requires_grad: true);
        using var o = torch.nn.functional.scaled_dot_product_attention(q, q, q, is_casual: true);
        o.sum().backward();
        Assert.NotNull(q.grad);
    }

    [Fact]
    public void OpenMpThreadsSpinBrieflyThenSleepUnlessTheUserChose()
    {
        TorchRuntime.EnsureLoaded();
        var chosen = Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") ?? Environment.GetEnvironmentVariable("GOMP_SPINCOUNT");
        var native = System.Runtime.InteropServices.Marshal.PtrToStringAnsi(getenv("GOMP_SPINCOUNT"));
        if (chosen is null) Assert.Equal(TorchRuntime.DefaultSpinCount, native);
        Assert.Contains(RuntimeInfo.Describe(torch.CPU), l => l.Contains("OpenMP wait policy"));
    }

    [Theory]
    [InlineData(2, 2, 0.0, 2)]   // idle: every core
    [InlineData(2, 2, 0.4, 2)]   // a little background work: still every core
    [InlineData(2, 2, 0.6, 1)]   // another process keeps a core busy: the one left
    [InlineData(2, 2, 1.9, 1)]   // a saturated machine: one thread, no barrier to wait at
    [InlineData(8, 8, 3.0, 5)]
    [InlineData(4, 8, 0.0, 4)]   // never more than libtorch's own choice
    public void ThreadPolicyUsesTheCoresOtherProcessesLeave(int max, int cores, double others, int expected) =>
        Assert.Equal(expected, ThreadPolicy.Choose(max, cores, others));

    [System.Runtime.InteropServices.DllImport("libc")]
    static extern IntPtr getenv(string name);
}
