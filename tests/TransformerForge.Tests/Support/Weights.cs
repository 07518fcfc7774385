using TorchSharp;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Support;

/// <summary>
/// Weights for self-consistency tests, made as the parity fixtures' are: every floating-point parameter gets N(0, 0.1)
/// added after construction, so zero- or one-initialised parameters (ReZero gates, residual scales, head scales,
/// value gates, norms) take generic values and every path reaches the output. Buffers are left alone, as in the
/// fixtures (their rotary <c>inv_freq</c> is the exact formula).
/// </summary>
internal static class Weights
{
    public const double Std = 0.1;

    /// <summary>Perturbs <paramref name="module"/>'s parameters in place (name order, own generator: the global RNG is untouched) and returns it.</summary>
    public static T Perturb<T>(T module, ulong seed = 0) where T : nn.Module
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var generator = new Generator(seed);
        foreach (var (_, p) in module.named_parameters().OrderBy(p => p.name, StringComparer.Ordinal))
        {
            if (!p.is_floating_point()) continue;
            var noise = randn(p.shape, dtype: ScalarType.Float64, generator: generator) * Std;
            p.add_(noise.to(p.dtype, p.device));
        }
        return module;
    }

    /// <summary>Copies every parameter and buffer of <paramref name="from"/> into <paramref name="to"/> (same names and shapes).</summary>
    public static void Copy(nn.Module from, nn.Module to) =>
        TransformerForge.IO.StateDict.Load(to, from.state_dict(), "the source module");

    /// <summary>Copies into each parameter and buffer of <paramref name="to"/> the one of the same name in <paramref name="from"/> (which may have more).</summary>
    public static void CopyShared(nn.Module from, nn.Module to)
    {
        var source = from.state_dict();
        TransformerForge.IO.StateDict.Load(to, to.state_dict().Keys.ToDictionary(k => k, k => source[k]), "the source module");
    }

    /// <summary>A parameter by its (x-transformers) name.</summary>
    public static Tensor Param(nn.Module m, string name) =>
        m.named_parameters().FirstOrDefault(p => p.name == name).parameter
        ?? throw new KeyNotFoundException($"no parameter '{name}'; the model has {string.Join(", ", m.named_parameters().Select(p => p.name))}");

    public static bool Has(nn.Module m, string name) => m.named_parameters().Any(p => p.name == name);

    /// <summary>Sets a parameter's value (shape must match).</summary>
    public static void Set(nn.Module m, string name, Tensor value)
    {
        using var _ = no_grad();
        var p = Param(m, name);
        if (!p.shape.SequenceEqual(value.shape))
            throw new ArgumentException($"{name}: shape [{string.Join(", ", p.shape)}], value [{string.Join(", ", value.shape)}]");
        p.copy_(value);
    }
}
