using TorchSharp;
using TransformerForge.Modules;
using TransformerForge.Tests.Support;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Options;

/// <summary>
/// <c>shift_tokens</c> beyond what the fixtures (no mask, no cache) show; both found by Stryker as surviving mutants.
/// </summary>
public class ShiftTokensTests
{
    static string Encoder(string layer) =>
        $$"""{ "type": "Encoder", "dim": 16, "depth": 1, "heads": 2, "custom_layers": ["{{layer}}"], "shift_tokens": 1 }""";

    [Fact]
    [Proves("AttentionLayers.shift_tokens")]
    public void PaddedPositionsAreZeroedBeforeTheyAreShifted()
    {
        // As in x-transformers 0.20 (t.masked_fill(~mask, 0.) before shifting): a padded position's features never
        // reach its neighbours. One self-attention layer (0.20 passes the mask to attention blocks only, not to
        // feed-forwards): the mask hides position 2 as a key, and the shift must not carry it into positions 1 and 3.
        var stack = Build.Stack(Encoder("a"));
        var x = Build.Randn(1, 1, 6, 16);
        var mask = ones(1, 6, dtype: ScalarType.Bool);
        mask[0, 2] = tensor(false);
        var changed = x.clone();
        changed[0, 2] = Build.Randn(2, 16);
        using var _ = no_grad();
        var a = stack.Forward(x, mask: mask).Output;
        var b = stack.Forward(changed, mask: mask).Output;
        foreach (long p in new long[] { 0, 1, 3, 4, 5 })
            Assert.True(Build.MaxDiff(a[0, p], b[0, p]) < 1e-12, $"padded position 2 leaked into position {p}");
        // Without the mask position 2 does reach its neighbours (an encoder shifts both ways).
        var c = stack.Forward(x).Output;
        var d = stack.Forward(changed).Output;
        Assert.True(Build.MaxDiff(c[0, 1], d[0, 1]) > 1e-3 && Build.MaxDiff(c[0, 3], d[0, 3]) > 1e-3);
    }

    [Fact]
    [Proves("AttentionLayers.shift_tokens")]
    public void ShiftingIntoTheFutureRefusesACache()
    {
        // An encoder shifts by -1..1: position t reads t + 1, which a cache that grows step by step does not have yet.
        var stack = Build.Stack(Encoder("f"));
        using var cache = new DecodingCache();
        using var _ = no_grad();
        var e = Assert.Throws<InvalidOperationException>(() => stack.Forward(Build.Randn(1, 1, 3, 16), cache: cache));
        Assert.Contains("future", e.Message);
    }
    [Fact]
    [Proves("AttentionLayers.shift_tokens")]
    public void AnEncoderShiftsByUpToTheAmountEachWay()
    {
        // Encoder, shift_tokens 2: five feature segments shifted by -2..2, so through one feed-forward layer position
        // p depends on positions p-2 .. p+2 and on no other.
        var stack = Build.Stack("""{ "type": "Encoder", "dim": 16, "depth": 1, "heads": 2, "custom_layers": ["f"], "shift_tokens": 2 }""");
        var x = Build.Randn(1, 1, 8, 16);
        var changed = x.clone();
        changed[0, 4] = Build.Randn(2, 16);
        using var _ = no_grad();
        var a = stack.Forward(x).Output;
        var b = stack.Forward(changed).Output;
        for (long p = 0; p < 8; p++)
        {
            bool reached = Build.MaxDiff(a[0, p], b[0, p]) > 1e-6;
            Assert.True(reached == (Math.Abs(p - 4) <= 2), $"position {p} {(reached ? "reached" : "not reached")} by position 4");
        }
    }
}
