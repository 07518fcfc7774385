using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Generation;
using TransformerForge.Models;
using TransformerForge.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Training;

/// <summary>
/// Mixed-precision training without autocast (TorchSharp 0.107 has none): a low-precision working copy of the model
/// runs forward and backward, the float32 model (the master weights, what checkpoints, evaluation and samples use)
/// and AdamW's state stay float32.
/// <list type="bullet">
/// <item>The working copy's parameters live in one flat low-precision buffer, its gradients in another (see
/// <see cref="FlatParameters"/>), laid out like the optimizer's float32 buffer.</item>
/// <item>After each backward pass its gradients are added to the float32 gradients in one operation (and zeroed);
/// after each optimizer step the updated master weights are copied back into it in one operation.</item>
/// <item>Matmuls and attention run in the low precision; libtorch's layer norm, softmax and fused attention kernels
/// accumulate in float32, RMSNorm and ScaleNorm compute in float32, the loss is taken on float32 logits, and position
/// frequencies stay float32 (see <see cref="LowPrecision"/>).</item>
/// </list>
/// </summary>
public sealed class MixedPrecision : IDisposable
{
    readonly LanguageModel _working;
    readonly FlatParameters _workingFlat;
    readonly FlatParameters _master;

    /// <param name="config">The model's configuration: the working copy is built from it.</param>
    /// <param name="optimizer">The flat AdamW over the float32 model's parameters (one buffer).</param>
    public MixedPrecision(ModelConfig config, AdamW optimizer, ScalarType dtype, Device device)
    {
        if (!LowPrecision.IsLow(dtype)) throw new ArgumentException($"mixed precision needs bfloat16 or float16, not {dtype}");
        if (!optimizer.IsFlat) throw new ArgumentException("mixed precision needs the flat optimizer (flat_optimizer: true)");
        if (optimizer.FlatBuffers.Count != 1)
            throw new ArgumentException("mixed precision needs every parameter in one float32 buffer on one device");
        _master = optimizer.FlatBuffers[0];
        if (_master.DType != ScalarType.Float32) throw new ArgumentException($"mixed precision needs float32 master weights, the model is {_master.DType}");
        DType = dtype;

        // Building the copy initialises weights it will not keep: keep the global RNG where it was, so that a mixed
        // precision run draws the same dropout masks as the float32 run of the same seed.
        using var rng = torch.random.get_rng_state();
        _working = ModelFactory.CreateLanguageModel(config);
        torch.random.set_rng_state(rng);
        try
        {
            _working.to(device);
            LowPrecision.Convert(_working, dtype);
            var byName = _working.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            var ordered = _master.Slots.Select(s => byName.TryGetValue(s.Name, out var p) && p.shape.SequenceEqual(s.Shape)
                ? (s.Name, p, s.WeightDecay)
                : throw new ArgumentException($"the working copy has no parameter '{s.Name}' of shape [{string.Join(", ", s.Shape)}]")).ToList();
            _workingFlat = new FlatParameters(ordered);
            if (_workingFlat.Count != _master.Count) throw new ArgumentException("the working copy's parameters do not match the model's");
            _working.train();
            RefreshWeights();
        }
        catch
        {
            _working.Dispose();
            throw;
        }
    }

    public ScalarType DType { get; }
    /// <summary>The low-precision copy that runs forward and backward.</summary>
    public LanguageModel Model => _working;
    public nn.Module Module => _working;

    /// <summary>Adds the working copy's gradients to the float32 ones (times <paramref name="factor"/>) and zeroes them.</summary>
    public void AccumulateGradients(double factor = 1)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        if (factor == 1) _master.Gradients.add_(_workingFlat.Gradients);
        else _master.Gradients.add_(_workingFlat.Gradients, alpha: factor);
        _workingFlat.Gradients.zero_();
    }

    /// <summary>Copies the float32 master weights into the working copy.</summary>
    public void RefreshWeights()
    {
        using var _ = no_grad();
        _workingFlat.Values.copy_(_master.Values);
    }

    public void Dispose()
    {
        _workingFlat.Dispose();
        _working.Dispose();
    }
}
