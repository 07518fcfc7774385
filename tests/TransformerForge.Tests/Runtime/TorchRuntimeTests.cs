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
    public void OpenMpThreadsSleepWhileWaitingUnlessTheUserChose()
    {
        TorchRuntime.EnsureLoaded();
        var chosen = Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") ?? Environment.GetEnvironmentVariable("GOMP_SPINCOUNT");
        var native = System.Runtime.InteropServices.Marshal.PtrToStringAnsi(getenv("OMP_WAIT_POLICY"));
        if (chosen is null) Assert.Equal("PASSIVE", native);
        Assert.Contains(RuntimeInfo.Describe(torch.CPU), l => l.Contains("OpenMP wait policy"));
    }

    [System.Runtime.InteropServices.DllImport("libc")]
    static extern IntPtr getenv(string name);
}
