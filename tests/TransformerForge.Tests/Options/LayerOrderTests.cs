using System.Text.RegularExpressions;
using TransformerForge.Config;
using TransformerForge.Modules;
using TransformerForge.Tests.Support;

namespace TransformerForge.Tests.Options;

/// <summary>
/// The layer order ('a' self-attention, 'c' cross-attention, 'f' feed-forward) of every ordering option, against the
/// lists x-transformers 0.20's <c>AttentionLayers.__init__</c> builds, worked out by hand below from its rules:
/// <list type="bullet">
/// <item>default block: ('a', 'f'); ('a', 'c', 'f') with cross_attend; ('c', 'f') with only_cross; macaron prepends 'f'.</item>
/// <item>custom_layers: exactly the list.</item>
/// <item>par_ratio r: par_depth = depth·len(block); block without 'f'; par_attn = par_depth // r;
/// depth_cut = par_depth·2 // 3; par_width = (depth_cut + depth_cut // par_attn) // par_attn;
/// par_block = block + 'f'·(par_width − len(block)); layers = par_block·par_attn + 'f'·(par_depth − len).</item>
/// <item>sandwich_coef k: 'a'·k + block·(depth − k) + 'f'·k.</item>
/// </list>
/// The built stack is checked twice: its layer types, and which modules its parameters say each layer holds.
/// </summary>
public class LayerOrderTests
{
    static string Order(string options, string type = "Encoder", int depth = 4)
    {
        var json = $$"""{ "type": "{{type}}", "dim": 16, "depth": {{depth}}, "heads": 2, "attn_dim_head": 8{{(options.Length > 0 ? ", " + options : "")}} }""";
        var stack = Build.Stack(json, perturbSeed: null);
        var order = new string(stack.LayerTypes.ToArray());

        // The modules agree: layer i has attention parameters (to_q) for 'a'/'c' and feed-forward parameters (net) for 'f'.
        var kinds = new SortedDictionary<int, char>();
        foreach (var (name, _) in stack.named_parameters())
        {
            var m = Regex.Match(name, @"^layers\.(\d+)\.1\.(.*)$");
            if (!m.Success) continue;
            int i = int.Parse(m.Groups[1].Value);
            if (m.Groups[2].Value.Contains("to_q.")) kinds[i] = 'A';
            else if (m.Groups[2].Value.Contains("net.")) kinds[i] = 'F';
        }
        Assert.Equal(order.Length, kinds.Count);
        Assert.Equal(order.Replace('a', 'A').Replace('c', 'A').Replace('f', 'F'), new string(kinds.Values.ToArray()));
        return order;
    }

    [Fact]
    public void DefaultBlocks()
    {
        Assert.Equal("afafafaf", Order(""));
        Assert.Equal("acfacf", Order("\"cross_attend\": true", "Decoder", depth: 2));
        Assert.Equal("cfcf", Order("", "CrossAttender", depth: 2));
    }

    [Fact]
    [Proves("AttentionLayers.only_cross", "AttentionLayers.cross_attend")]
    public void OnlyCrossDropsSelfAttention()
    {
        Assert.Equal("cfcf", Order("\"cross_attend\": true, \"only_cross\": true", depth: 2));
        Assert.Equal("cfcf", Order("\"cross_attend\": true, \"only_cross\": true", "Decoder", depth: 2));
    }

    [Fact]
    [Proves("AttentionLayers.custom_layers")]
    public void CustomLayersAreTakenAsGiven()
    {
        Assert.Equal("aaf", Order("\"custom_layers\": [\"a\", \"a\", \"f\"]"));
        Assert.Equal("fffa", Order("\"custom_layers\": [\"f\", \"f\", \"f\", \"a\"]", "Decoder"));
        Assert.Equal("caff", Order("\"cross_attend\": true, \"custom_layers\": [\"c\", \"a\", \"f\", \"f\"]", "Decoder"));
        // depth does not matter once the list is given.
        Assert.Equal("af", Order("\"custom_layers\": [\"a\", \"f\"]", depth: 3));
    }

    [Fact]
    [Proves("AttentionLayers.par_ratio")]
    public void ParRatioConcentratesAttentionInTheFirstTwoThirds()
    {
        // depth 4, block (a, f): par_depth 8, par_attn 8 // 4 = 2, depth_cut 16 // 3 = 5, par_width (5 + 5 // 2) // 2 = 3,
        // par_block (a, f, f); head a f f a f f; then 8 - 6 = 2 more f.
        Assert.Equal("affaff" + "ff", Order("\"par_ratio\": 4"));
        // depth 4, par_ratio 2: par_attn 4, depth_cut 5, par_width (5 + 1) // 4 = 1, par_block (a); head a a a a; then f f f f.
        Assert.Equal("aaaaffff", Order("\"par_ratio\": 2"));
        // cross_attend, depth 3, block (a, c, f): par_depth 9, par_attn 3, depth_cut 6, par_width (6 + 2) // 3 = 2,
        // par_block (a, c); head a c a c a c; then 9 - 6 = 3 f.
        Assert.Equal("acacacfff", Order("\"cross_attend\": true, \"par_ratio\": 3", "Decoder", depth: 3));
        // macaron, depth 3, block (f, a, f): par_depth 9, par_attn 3, depth_cut 6, par_width 2, par_block (a, f); a f a f a f f f f.
        Assert.Equal("afafaffff", Order("\"macaron\": true, \"par_ratio\": 3", depth: 3));
        // cross_attend, depth 3, par_ratio 2: par_attn 4, par_width (6 + 1) // 4 = 1 < len((a, c)): x-transformers asserts.
        var e = Assert.Throws<ConfigException>(() => Order("\"cross_attend\": true, \"par_ratio\": 2", "Decoder", depth: 3));
        Assert.Equal("par_ratio", e.Key);
    }

    [Fact]
    [Proves("AttentionLayers.sandwich_coef")]
    public void SandwichCoefPutsAttentionFirstAndFeedForwardsLast()
    {
        // depth 4, k 2: a a + (a f)(a f) + f f.
        Assert.Equal("aa" + "afaf" + "ff", Order("\"sandwich_coef\": 2"));
        // depth 4, k 4: all attention, then all feed-forwards.
        Assert.Equal("aaaaffff", Order("\"sandwich_coef\": 4"));
        // macaron, depth 3, k 1: a + (f a f)(f a f) + f.
        Assert.Equal("a" + "faffaf" + "f", Order("\"macaron\": true, \"sandwich_coef\": 1", depth: 3));
    }

    [Fact]
    [Proves("AttentionLayers.macaron")]
    public void MacaronPutsAFeedForwardBeforeEveryBlock()
    {
        Assert.Equal("faffaf", Order("\"macaron\": true", depth: 2));
        Assert.Equal("facffacf", Order("\"macaron\": true, \"cross_attend\": true", "Decoder", depth: 2));
    }

    [Fact]
    public void OrderingOptionsAreExclusive()
    {
        var e = Assert.Throws<ConfigException>(() => Order("\"par_ratio\": 2, \"sandwich_coef\": 1"));
        Assert.Contains("at most one", e.Message);
    }
}
