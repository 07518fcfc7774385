using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Models;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Tfpp;

/// <summary>Tiny Transformer++ configurations and models for tests.</summary>
internal static class TfppFixtures
{
    /// <summary>Every mixer's sizes, small enough that a 24-token sequence spans several windows, chunks and kernel scales.</summary>
    public static TransformerPlusPlusLayer Layer(int heads, params (string Op, int Heads)[] mixers) => new()
    {
        Heads = heads,
        FfInnerDim = 48,
        Mixers = mixers.Select(m => new MixerHeads(m.Op, m.Heads)).ToList(),
        SepConv1dKernelSize = mixers.Any(m => m.Op == "sep_conv1d") ? 3 : null,
        SGConvKernelSize = mixers.Any(m => m.Op == "sgconv") ? 4 : null,
        SGConv3KernelSize = mixers.Any(m => m.Op == "sgconv3") ? 8 : null,
        LocalAttnWindowSize = mixers.Any(m => m.Op == "local_attn") ? 5 : null,
        LshNumHashes = mixers.Any(m => m.Op == "lsh_attn") ? 2 : null,
        LshBucketSize = mixers.Any(m => m.Op == "lsh_attn") ? 3 : null,
    };

    public static TransformerPlusPlusConfig Config(string block, params TransformerPlusPlusLayer[] layers) => new()
    {
        NumTokens = 40,
        MaxSeqLen = 32,
        Dim = 24,
        Block = block,
        RotaryDim = 4,
        Layers = layers,
    };

    /// <summary>The model in float64, in eval mode, every parameter perturbed by N(0, 0.1) as the parity fixtures are
    /// (Hugging Face's zero biases and tiny weights could hide a path).</summary>
    public static TransformerPlusPlus Perturbed(TransformerPlusPlusConfig config, long seed = 0)
    {
        manual_seed(seed);
        var model = new TransformerPlusPlus(config);
        model.to(ScalarType.Float64);
        using (no_grad())
            foreach (var p in model.parameters()) p.add_(randn_like(p) * 0.1);
        model.eval();
        return model;
    }

    /// <summary>Adds N(0, 0.1) to every parameter of <paramref name="model"/> (seeded), in place.</summary>
    public static void Perturb(nn.Module model, long seed = 0)
    {
        manual_seed(seed);
        using var _ = no_grad();
        foreach (var p in model.parameters()) p.add_(randn_like(p) * 0.1);
    }

    public static double MaxAbs(Tensor a, Tensor b) => (a - b).abs().max().to_type(ScalarType.Float64).item<double>();
}
