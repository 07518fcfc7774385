using TorchSharp;
using TransformerForge.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Modules;

/// <summary>Dropout that is off issues no operation; on, it draws exactly what TorchSharp's module draws (same numbers, same RNG use).</summary>
public class OptionalDropoutTests
{
    [Fact]
    public void OffItReturnsItsInputItself()
    {
        TransformerForge.Runtime.TorchRuntime.EnsureLoaded();
        var x = randn(4, 8);
        var none = new OptionalDropout(0.0);
        none.train();
        Assert.Same(x, none.forward(x));
        var evaluating = new OptionalDropout(0.5);
        evaluating.eval();
        Assert.Same(x, evaluating.forward(x));
    }

    [Fact]
    public void OnItMatchesTorchSharpsDropoutDrawForDraw()
    {
        TransformerForge.Runtime.TorchRuntime.EnsureLoaded();
        var x = randn(64, 32);
        var ours = new OptionalDropout(0.3);
        var theirs = nn.Dropout(0.3);
        ours.train();
        theirs.train();
        manual_seed(5);
        var a = ours.forward(x);
        var afterOurs = randn(3);
        manual_seed(5);
        var b = theirs.forward(x);
        var afterTheirs = randn(3);
        Assert.True(a.eq(b).all().item<bool>());
        Assert.True(afterOurs.eq(afterTheirs).all().item<bool>());
        Assert.False(a.eq(x).all().item<bool>());
    }
}
