using System.Text.Json;
using TransformerForge.Config;
using TransformerForge.Models;

namespace TransformerForge.Tests.Config;

/// <summary>
/// Each check of <see cref="AttentionLayersConfig"/>'s reading and validation, at its boundary: the value just outside is
/// refused with the exact key and message (not caught later by another check under another key), the value just
/// inside passes. Written to kill the Stryker survivors of AttentionLayersConfig.cs (see docs/testing.md).
/// </summary>
public class AttentionLayersValidationBoundaryTests
{
    static readonly AttentionLayersConfig Base = new()
    {
        Type = LayerStackType.Decoder, Dim = 16, Depth = 1, Heads = 2, Attn = new AttentionOptions { DimHead = 8 },
    };

    static readonly AttentionLayersConfig Base140 = Base with { Version = XTransformersVersion.V1_40 };

    static void Refused(AttentionLayersConfig c, string key, string problem)
    {
        var e = Assert.Throws<ConfigException>(() => c.Validate("attn_layers."));
        Assert.Equal(("attn_layers." + key, problem), (e.Key, e.Problem));
    }

    static ConfigException RefusedJson(string json) =>
        Assert.Throws<ConfigException>(() => AttentionLayersConfig.FromJson(JsonDocument.Parse(json).RootElement, "attn_layers."));

    [Fact]
    public void DimAndDepthBelowOneAreRefusedUnderTheirOwnKeys()
    {
        Refused(Base with { Dim = 0 }, "dim", "must be a positive integer");
        Refused(Base with { Depth = 0 }, "depth", "must be a positive integer");
    }

    [Fact]
    public void FeedForwardOptionsAreValidatedByTheStack()
    {
        Refused(Base with { Ff = new FeedForwardOptions { Dropout = 1 } }, "ff_dropout", "must be in [0, 1)");
        Refused(Base with { Ff = new FeedForwardOptions { Mult = -1 } }, "ff_mult", "must be a positive finite number");
    }

    [Fact]
    public void FeedForwardWidthMayBeExactlyOneOrExactlyIntMax()
    {
        (Base with { Ff = new FeedForwardOptions { Mult = 1.0 / 16 } }).Validate();
        (Base with { Dim = int.MaxValue, Heads = 1, Ff = new FeedForwardOptions { Mult = 1 } }).Validate();
        Refused(Base with { Ff = new FeedForwardOptions { Mult = 0.99 / 16 } }, "ff_mult",
            $"gives a feed-forward width of int(16 × {0.99 / 16}) = 0; it must be between 1 and {int.MaxValue}");
    }

    [Fact]
    public void DynamicPositionBiasMlpDepthBoundary()
    {
        (Base140 with { DynamicPosBias = true, DynamicPosBiasMlpDepth = 1 }).Validate();
        Refused(Base140 with { DynamicPosBias = true, DynamicPosBiasMlpDepth = 0 }, "dynamic_pos_bias_mlp_depth", "must be at least 1");
    }

    [Fact]
    public void RelativePositionBucketsBoundaries()
    {
        (Base with { RelPosBias = true, RelPosNumBuckets = 16, RelPosMaxDistance = 16 }).Validate();
        (Base with { RelPosBias = true, RelPosNumBuckets = 2 }).Validate();
        Refused(Base with { RelPosBias = true, RelPosNumBuckets = 17, RelPosMaxDistance = 16 }, "rel_pos_num_buckets", "must be at most rel_pos_max_distance");
        Refused(Base with { RelPosBias = true, RelPosNumBuckets = 1 }, "rel_pos_num_buckets", "must be at least 2");
    }

    [Fact]
    public void AlibiHeadsMustBeBetweenOneAndTheHeadCount()
    {
        (Base with { AlibiPosBias = true, AlibiNumHeads = 2 }).Validate();
        (Base with { AlibiPosBias = true, AlibiNumHeads = 1 }).Validate();
        Refused(Base with { AlibiPosBias = true, AlibiNumHeads = 0 }, "alibi_num_heads", "must be between 1 and the number of heads");
        Refused(Base with { AlibiPosBias = true, AlibiNumHeads = 3 }, "alibi_num_heads", "must be between 1 and the number of heads");
    }

    [Fact]
    public void RotaryDimensionChecks()
    {
        Refused(Base with { RotaryEmbDim = 0 }, "rotary_emb_dim", "must be positive");
        Refused(Base with { RotaryPosEmb = true }, "rotary_emb_dim", "rotary dimension 32 (at least 32, as in x-transformers) exceeds attn_dim_head 8");
        (Base with { RotaryPosEmb = true, Attn = new AttentionOptions { DimHead = 32 } }).Validate();
    }

    [Fact]
    public void OnlyCrossNeedsCrossAttend()
    {
        Refused(Base with { OnlyCross = true }, "only_cross", "needs cross_attend");
        (Base with { OnlyCross = true, CrossAttend = true }).Validate();
    }

    [Fact]
    public void ShiftTokensChecks()
    {
        Refused(Base with { ShiftTokens = [-1] }, "shift_tokens", "must not be negative");
        Refused(Base with { ShiftTokens = [1, -1] }, "shift_tokens", "must not be negative");
        // Bidirectional shifts take 2s + 1 segments, causal ones s + 1; the message names the largest shift.
        var encoder = Base with { Type = LayerStackType.Encoder };
        Refused(encoder with { ShiftTokens = [8] }, "shift_tokens", "8 needs 17 feature segments, more than dim 16");
        Refused(encoder with { ShiftTokens = [0, 8] }, "shift_tokens", "8 needs 17 feature segments, more than dim 16");
        (encoder with { Dim = 17, ShiftTokens = [8] }).Validate();
        (Base with { ShiftTokens = [15] }).Validate();
        // One value per layer, cross-attention layers counted: a, c, f.
        (Base with { CrossAttend = true, ShiftTokens = [0, 1, 0] }).Validate();
        Refused(Base with { CrossAttend = true, ShiftTokens = [0, 1] }, "shift_tokens", "a list must have one value per layer (3 layers)");
    }

    [Fact]
    public void OneNormChoiceIsRefusedUnderTheLastKeySet()
    {
        // x-transformers 0.20 has no use_simple_rmsnorm: its users are pointed at use_rmsnorm.
        Refused(Base with { UseScalenorm = true, UseRmsnorm = true }, "use_rmsnorm", "choose one of use_scalenorm, use_rmsnorm and use_simple_rmsnorm");
        Refused(Base140 with { UseRmsnorm = true, UseSimpleRmsnorm = true }, "use_simple_rmsnorm", "choose one of use_scalenorm, use_rmsnorm and use_simple_rmsnorm");
        Refused(Base140 with { UseScalenorm = true, UseSimpleRmsnorm = true }, "use_simple_rmsnorm", "choose one of use_scalenorm, use_rmsnorm and use_simple_rmsnorm");
        (Base140 with { UseSimpleRmsnorm = true }).Validate();
        (Base with { UseScalenorm = true }).Validate();
    }

    [Fact]
    public void CustomLayersChecks()
    {
        Refused(Base with { CustomLayers = ["a", "x"] }, "custom_layers", "must be a non-empty list of 'a', 'c' and 'f'");
        Refused(Base with { CustomLayers = ["x"] }, "custom_layers", "must be a non-empty list of 'a', 'c' and 'f'");
        Refused(Base with { CustomLayers = [] }, "custom_layers", "must be a non-empty list of 'a', 'c' and 'f'");
        Refused(Base with { CustomLayers = ["a", "c", "f"] }, "custom_layers", "has a cross-attention layer 'c' but cross_attend is not set");
        (Base with { CustomLayers = ["a", "c", "f"], CrossAttend = true }).Validate();
    }

    [Fact]
    public void ParRatioUpperBoundCountsTheMacaronFeedForward()
    {
        // depth 2, macaron: block (f, a, f), par_depth 6; par_ratio 6 is in (1, 6].
        (Base with { Depth = 2, Macaron = true, ParRatio = 6 }).Validate();
        Refused(Base with { Depth = 2, Macaron = true, ParRatio = 7 }, "par_ratio", "par ratio out of range (must be in (1, 6])");
        // depth 2, macaron, par_ratio 2: par_attn 3, depth_cut 4, par_width (4 + 1) // 3 = 1 fits the one non-'f' layer.
        var two = Base with { Depth = 2, Macaron = true, ParRatio = 2 };
        two.Validate();
        Assert.Equal("aaafff", new string(two.LayerTypes().ToArray()));
    }

    [Fact]
    public void SandwichCoefficientBelowOneIsRefused()
    {
        Refused(Base with { Depth = 2, SandwichCoef = 0 }, "sandwich_coef", "sandwich coefficient should be between 1 and the depth");
        (Base with { Depth = 2, SandwichCoef = 1 }).Validate();
    }

    [Fact]
    public void UnetSkipsOfACustomOrderJoinSingleLayers()
    {
        // Not the default order: every layer is a block of one; depth 1 gives one skip, [0], taken by layer 1.
        var c = Base140 with { UnetSkips = true, CustomLayers = ["a", "f"] };
        c.Validate();
        Assert.Equal(new Dictionary<int, int> { [1] = 0 }, c.UnetSkipSources());
    }

    [Fact]
    public void UnetSkipsThatX_TransformersCannotWireAreRefused()
    {
        // Three layers, one skip: the third layer finds none.
        Refused(Base140 with { UnetSkips = true, CustomLayers = ["a", "f", "a"] }, "unet_skips",
            "the second half has more blocks than the first half has skips (x-transformers fails here too)");
        // Depth 3: skips [0, 1, 2]; layer 2 (the first of the second half) would take skip 2, its own input.
        Refused(Base140 with { Depth = 3, UnetSkips = true, CustomLayers = ["a", "f", "a"] }, "unet_skips",
            "layer 2 would join the input of layer 2, which runs after it (x-transformers fails here too)");
    }

    [Fact]
    public void CrossAttentionNeverConvolvesTheContext()
    {
        var c = Base with { Attn = new AttentionOptions { DimHead = 8, Dconv = true } };
        Assert.True(c.SelfAttn.Dconv);
        Assert.False(c.CrossAttn.Dconv);
        Assert.Equal(c.Attn with { Dconv = false }, c.CrossAttn);
    }

    [Fact]
    public void ALayerObjectThatIsNotAnObjectIsRefused()
    {
        var e = RefusedJson("5");
        Assert.Equal(("attn_layers", "expected an object with a 'type'"), (e.Key, e.Problem));
    }

    [Theory]
    [InlineData("Decoder", "always")]
    [InlineData("Encoder", "never")]
    public void CausalityOfAFixedTypeIsRefusedNamingIt(string type, string which)
    {
        var e = RefusedJson($$"""{"type": "{{type}}", "dim": 16, "depth": 1, "heads": 2, "causal": true}""");
        Assert.Equal(("attn_layers.causal", $"cannot set causality on {type} (it is {which} causal)"), (e.Key, e.Problem));
    }

    [Theory]
    [InlineData("cross_attend")]
    [InlineData("only_cross")]
    public void CrossAttenderRefusesEitherCrossKey(string key)
    {
        var e = RefusedJson($$"""{"type": "CrossAttender", "dim": 16, "depth": 1, "heads": 2, "{{key}}": true}""");
        Assert.Equal(("attn_layers.cross_attend", "CrossAttender sets cross_attend and only_cross itself"), (e.Key, e.Problem));
    }
}
