using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// A list of parameters saved as <c>0</c>, <c>1</c>, … (PyTorch's <c>nn.ParameterList</c> names); read back by index at
/// forward time so that <c>Module.to()</c> replacements are seen.
/// </summary>
public sealed class ParameterSequence : ForgeModule
{
    public ParameterSequence(IEnumerable<Tensor> initial) : base(nameof(ParameterSequence))
    {
        foreach (var t in initial) register_parameter((Count++).ToString(), new Parameter(t));
    }

    public int Count { get; }

    public Tensor this[int index] => get_parameter(index.ToString()) ?? throw new ArgumentOutOfRangeException(nameof(index));
}
