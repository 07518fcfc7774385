using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Training;

/// <summary>Where one parameter lives inside a <see cref="FlatParameters"/> buffer.</summary>
public sealed record FlatSlot(string Name, long[] Shape, long Offset, long Length, double WeightDecay);

/// <summary>
/// Parameters of one dtype and device laid end to end in a single buffer, with their gradients likewise: each
/// parameter becomes a view into <see cref="Values"/> (its storage is moved there, the <c>Parameter</c> object and
/// every module holding it stay the same) and its <c>.grad</c> a view into <see cref="Gradients"/>, into which autograd
/// accumulates in place. An optimizer step, a gradient norm or zeroing the gradients is then a handful of operations
/// over two buffers instead of several per tensor (the "flat" layout of Megatron-LM and DeepSpeed).
/// <para>
/// Parameters are placed in the order given; a caller that keeps groups together (all weight-decay parameters first)
/// gets each group as one contiguous range, see <see cref="Ranges"/>.
/// </para>
/// </summary>
public sealed class FlatParameters : IDisposable
{
    readonly List<FlatSlot> _slots = new();

    /// <param name="parameters">(name, parameter, weight decay) in the order to lay them out; all of one dtype and device.</param>
    public FlatParameters(IReadOnlyList<(string Name, Parameter Parameter, double WeightDecay)> parameters)
    {
        if (parameters.Count == 0) throw new ArgumentException("no parameters to lay out");
        var first = parameters[0].Parameter;
        DType = first.dtype;
        Device = first.device;
        long total = 0;
        foreach (var (name, p, wd) in parameters)
        {
            if (p.dtype != DType || p.device.ToString() != Device.ToString())
                throw new ArgumentException($"parameter '{name}' is {p.dtype} on {p.device}, the others {DType} on {Device}: one flat buffer holds one dtype on one device");
            _slots.Add(new FlatSlot(name, p.shape, total, p.numel(), wd));
            total += p.numel();
        }
        Count = total;

        using var _ = no_grad();
        Values = empty(total, dtype: DType, device: Device).DetachFromDisposeScope();
        Gradients = zeros(total, dtype: DType, device: Device).DetachFromDisposeScope();
        for (int i = 0; i < parameters.Count; i++)
        {
            using var scope = NewDisposeScope();
            var (_, p, _) = parameters[i];
            var slot = _slots[i];
            var view = View(Values, slot);
            view.copy_(p);
            p.set_(view);
            p.grad = View(Gradients, slot);
        }
        Ranges = Contiguous(_slots);
    }

    public ScalarType DType { get; }
    public Device Device { get; }
    /// <summary>Elements in all.</summary>
    public long Count { get; }
    /// <summary>Every parameter's values, end to end.</summary>
    public Tensor Values { get; }
    /// <summary>Every parameter's gradient, end to end (zero until a backward pass adds to it).</summary>
    public Tensor Gradients { get; }
    public IReadOnlyList<FlatSlot> Slots => _slots;
    /// <summary>Maximal runs of neighbouring parameters that share a weight decay: (offset, length, weight decay).</summary>
    public IReadOnlyList<(long Offset, long Length, double WeightDecay)> Ranges { get; }

    /// <summary>The part of a flat buffer (<see cref="Values"/>, <see cref="Gradients"/> or one laid out like them) that belongs to <paramref name="slot"/>, in its shape.</summary>
    public static Tensor View(Tensor flat, FlatSlot slot) => flat.narrow(0, slot.Offset, slot.Length).view(slot.Shape);

    static List<(long, long, double)> Contiguous(IEnumerable<FlatSlot> slots)
    {
        var ranges = new List<(long Offset, long Length, double WeightDecay)>();
        foreach (var s in slots)
        {
            if (ranges.Count > 0 && ranges[^1].WeightDecay == s.WeightDecay && ranges[^1].Offset + ranges[^1].Length == s.Offset)
                ranges[^1] = (ranges[^1].Offset, ranges[^1].Length + s.Length, s.WeightDecay);
            else ranges.Add((s.Offset, s.Length, s.WeightDecay));
        }
        return ranges;
    }

    public void Dispose()
    {
        Values.Dispose();
        Gradients.Dispose();
    }
}
