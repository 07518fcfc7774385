using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Models;
using TransformerForge.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Support;

/// <summary>Models for option tests, built the way users build them: JSON configuration → <see cref="ModelFactory"/>.</summary>
internal static class Build
{
    /// <summary>The model a JSON configuration describes, in float64 and eval mode, its parameters perturbed (unless <paramref name="perturbSeed"/> is null).</summary>
    public static T Model<T>(string json, ulong? perturbSeed = 0) where T : nn.Module
    {
        TransformerForge.Runtime.TorchRuntime.EnsureLoaded();
        var model = ModelFactory.Create(ModelConfig.Parse(json));
        var typed = model as T ?? throw new InvalidCastException($"{json} builds a {model.GetType().Name}, not a {typeof(T).Name}");
        typed.to(ScalarType.Float64);
        if (perturbSeed is { } seed) Weights.Perturb(typed, seed);
        typed.eval();
        return typed;
    }

    /// <summary>
    /// A small decoder language model from C# options (vocab 40, max_seq_len 32, dim_head 32), seeded by
    /// <paramref name="initSeed"/>, in float64 and eval mode, its parameters perturbed as the fixtures' are.
    /// </summary>
    public static TransformerWrapper Decoder(Func<AttentionLayersConfig, AttentionLayersConfig> options,
        Func<TransformerWrapperConfig, TransformerWrapperConfig>? wrapper = null, int dim = 32, int heads = 4, ulong initSeed = 0)
    {
        TransformerForge.Runtime.TorchRuntime.EnsureLoaded();
        manual_seed((long)initSeed);
        var c = new TransformerWrapperConfig
        {
            NumTokens = 40, MaxSeqLen = 32,
            AttnLayers = options(new AttentionLayersConfig { Type = LayerStackType.Decoder, Dim = dim, Depth = 2, Heads = heads, Attn = new() { DimHead = 32 } }),
        };
        if (wrapper is not null) c = wrapper(c);
        var m = new TransformerWrapper(c);
        m.to(ScalarType.Float64);
        Weights.Perturb(m);
        m.eval();
        return m;
    }

    /// <summary>A bare layer stack (<c>Encoder</c>, <c>Decoder</c>, ...) as the model.</summary>
    public static AttentionLayers Stack(string json, ulong? perturbSeed = 0) => Model<AttentionLayers>(json, perturbSeed);

    /// <summary>The stack's output for <paramref name="x"/> [b, n, dim].</summary>
    public static Tensor Run(AttentionLayers stack, Tensor x, Tensor? attnMask = null) => stack.Forward(x, attnMask: attnMask).Output;

    /// <summary>The stack's output and post-softmax attention maps (one per attention layer).</summary>
    public static (Tensor Output, IReadOnlyList<Tensor> Attention) RunWithAttention(AttentionLayers stack, Tensor x)
    {
        var (output, inter) = stack.Forward(x, returnAttention: true);
        return (output, inter.Attention.Select(a => a.PostSoftmaxAttn!).ToList());
    }

    /// <summary>Normal float64 inputs from a fixed generator.</summary>
    public static Tensor Randn(ulong seed, params long[] shape)
    {
        using var g = new Generator(seed);
        return randn(shape, dtype: ScalarType.Float64, generator: g);
    }

    /// <summary>Token ids in [0, numTokens) from a fixed generator.</summary>
    public static Tensor Tokens(ulong seed, int numTokens, params long[] shape)
    {
        using var g = new Generator(seed);
        return randint(0, numTokens, shape, dtype: ScalarType.Int64, generator: g);
    }

    public static double MaxAbs(Tensor a) => a.abs().max().item<double>();
    public static double MaxDiff(Tensor a, Tensor b) => MaxAbs(a - b);
}
