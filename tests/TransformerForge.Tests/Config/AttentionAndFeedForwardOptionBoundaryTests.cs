using TransformerForge.Config;

namespace TransformerForge.Tests.Config;

/// <summary>
/// The range checks of <see cref="AttentionOptions.Validate"/> and <see cref="FeedForwardOptions.Validate"/> at their
/// boundaries: just outside is refused with the exact key and message, just inside passes.
/// </summary>
public class AttentionAndFeedForwardOptionBoundaryTests
{
    static void Refused(AttentionOptions o, int heads, string key, string problem)
    {
        var e = Assert.Throws<ConfigException>(() => o.Validate(heads, "attn_layers."));
        Assert.Equal(("attn_layers." + key, problem), (e.Key, e.Problem));
    }

    static void Refused(FeedForwardOptions o, string key, string problem)
    {
        var e = Assert.Throws<ConfigException>(() => o.Validate("attn_layers."));
        Assert.Equal(("attn_layers." + key, problem), (e.Key, e.Problem));
    }

    static readonly AttentionOptions V140 = new() { Version = XTransformersVersion.V1_40 };

    [Fact]
    public void ProjectionWidthMayBeExactlyIntMax()
    {
        new AttentionOptions { DimHead = int.MaxValue }.Validate(1);
        Refused(new AttentionOptions { DimHead = 1 << 30 }, 2, "attn_dim_head", $"heads × attn_dim_head = 2147483648 exceeds {int.MaxValue}");
    }

    [Fact]
    public void SparseTopkAndMaxAttendPastBoundaries()
    {
        Refused(new AttentionOptions { SparseTopk = 0 }, 2, "attn_sparse_topk", "must be positive");
        new AttentionOptions { SparseTopk = 1 }.Validate(2);
        new AttentionOptions { MaxAttendPast = 0 }.Validate(2);
        Refused(new AttentionOptions { MaxAttendPast = -1 }, 2, "attn_max_attend_past", "must not be negative");
    }

    [Fact]
    public void CollaborativeCompressionIsInZeroToOne()
    {
        Refused(new AttentionOptions { CollabCompression = 0 }, 2, "attn_collab_compression", "must be in (0, 1]");
        Refused(new AttentionOptions { CollabCompression = 1.5 }, 2, "attn_collab_compression", "must be in (0, 1]");
        new AttentionOptions { CollabCompression = 1 }.Validate(2);
        new AttentionOptions { CollabCompression = 1e-9 }.Validate(2);
    }

    [Fact]
    public void CollaborativeHeadsNeedOneSharedKeyFeature()
    {
        // 0.3 × 2 × 1 = 0.6: no feature left. 0.25 × 4 × 1 = 1: exactly one.
        Refused(new AttentionOptions { CollabHeads = true, DimHead = 2 }, 1, "attn_collab_compression", "leaves no query/key dimension");
        new AttentionOptions { CollabHeads = true, DimHead = 4, CollabCompression = 0.25 }.Validate(1);
    }

    [Fact]
    public void MemoryKeysOfAnotherWidthNameTheSharedKeyWidth()
    {
        // 0.3 × 2 heads × 64 = 38.4: a shared key of 38 features.
        Refused(new AttentionOptions { CollabHeads = true, NumMemKv = 2 }, 2, "attn_num_mem_kv",
            "memory keys have attn_dim_head (64) features but attn_collab_heads' shared key has attn_collab_compression × heads × attn_dim_head = 38; x-transformers 0.20 cannot combine them either");
    }

    [Fact]
    public void DconvKernelMayBeOne()
    {
        new AttentionOptions { Dconv = true, DconvKernelSize = 1 }.Validate(2);
        Refused(new AttentionOptions { Dconv = true, DconvKernelSize = 0 }, 2, "attn_dconv_kernel_size", "must be at least 1");
    }

    [Fact]
    public void QkNormGroupsAndSoftclampMustBePositiveEvenWhenOff()
    {
        Refused(V140 with { QkNormGroups = 0 }, 2, "attn_qk_norm_groups", "must be a positive integer");
        Refused(V140 with { LogitSoftclampValue = 0 }, 2, "attn_logit_softclamp_value", "must be positive");
        (V140 with { LogitSoftclampValue = 1e-9, QkNormGroups = 1 }).Validate(2);
    }

    [Fact]
    public void FeedForwardMultiplierMustBePositiveAndFinite()
    {
        Refused(new FeedForwardOptions { Mult = -1 }, "ff_mult", "must be a positive finite number");
        Refused(new FeedForwardOptions { Mult = 0 }, "ff_mult", "must be a positive finite number");
        Refused(new FeedForwardOptions { Mult = double.NaN }, "ff_mult", "must be a positive finite number");
        new FeedForwardOptions { Mult = 1e-9 }.Validate();
    }

    [Fact]
    public void FeedForwardDropoutIsInZeroToOne()
    {
        Refused(new FeedForwardOptions { Dropout = 1 }, "ff_dropout", "must be in [0, 1)");
        Refused(new FeedForwardOptions { Dropout = -0.1 }, "ff_dropout", "must be in [0, 1)");
        new FeedForwardOptions { Dropout = 0 }.Validate();
        new FeedForwardOptions { Dropout = 0.999 }.Validate();
    }
}
