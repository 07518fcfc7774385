using System.Buffers.Binary;
using TorchSharp;
using static TorchSharp.torch;

namespace TransformerForge.Training;

/// <summary>
/// The torch random state a run depends on (dropout; batches come from <see cref="Trainer.BatchRandom"/>), as a
/// checkpoint saves it in <c>rng.safetensors</c>:
/// <list type="bullet">
/// <item><c>torch_cpu</c>: the CPU generator's state, saved and restored as is.</item>
/// <item><c>torch_cuda</c> (runs on CUDA): TorchSharp cannot read the CUDA generator, so a run on CUDA reseeds it at the
/// start of every step with a seed derived from (seed, step), and the checkpoint stores the state the next step starts
/// from, in PyTorch's layout (16 bytes: seed as uint64, Philox offset 0 as int64). A resumed run is then exact on CUDA too.</item>
/// </list>
/// Every entry's dtype and size is checked before anything is restored: libtorch aborts the process on a wrong-sized state.
/// </summary>
public static class TrainingRng
{
    public const string CpuKey = "torch_cpu";
    public const string CudaKey = "torch_cuda";
    /// <summary>Bytes of a CUDA (Philox) generator state: seed and offset.</summary>
    public const int CudaStateBytes = 16;

    /// <summary>The CUDA generator's seed for step <paramref name="step"/> (0-based) of a run seeded with <paramref name="seed"/>.</summary>
    public static long CudaSeed(int seed, int step)
    {
        ulong z = ((ulong)(uint)seed << 32 | (uint)step) ^ 0xD1B54A32D192ED03UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return (long)((z ^ (z >> 31)) & long.MaxValue);
    }

    /// <summary>Called before each optimizer step: on CUDA, sets the CUDA generator to the step's derived seed.</summary>
    public static void BeginStep(Device device, int seed, int step)
    {
        if (device.type == DeviceType.CUDA) torch.cuda.manual_seed_all(CudaSeed(seed, step));
    }

    /// <summary>The state to save after <paramref name="step"/> completed steps (the caller disposes the tensors).</summary>
    public static Dictionary<string, Tensor> Capture(Device device, int seed, int step)
    {
        var state = new Dictionary<string, Tensor>(StringComparer.Ordinal) { [CpuKey] = torch.random.get_rng_state() };
        if (device.type == DeviceType.CUDA) state[CudaKey] = CudaState(CudaSeed(seed, step));
        return state;
    }

    /// <summary>A CUDA generator state in PyTorch's layout for <paramref name="seed"/> at offset 0.</summary>
    public static Tensor CudaState(long seed)
    {
        var bytes = new byte[CudaStateBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)seed);
        return torch.tensor(bytes, dtype: ScalarType.Byte);
    }

    /// <summary>Checks the saved entries (names, dtypes, sizes) against what this libtorch's generators hold.</summary>
    public static void Check(IReadOnlyDictionary<string, Tensor> state, string source)
    {
        if (!state.TryGetValue(CpuKey, out var cpu))
            throw new InvalidDataException($"{source} has no '{CpuKey}' generator state");
        long expected;
        using (var current = torch.random.get_rng_state()) expected = current.NumberOfElements;
        if (cpu.dtype != ScalarType.Byte || cpu.dim() != 1 || cpu.NumberOfElements != expected)
            throw new InvalidDataException(
                $"{source}: '{CpuKey}' must be {expected} bytes (uint8) of generator state, but it is {cpu.dtype} [{string.Join(", ", cpu.shape)}]");
        if (state.TryGetValue(CudaKey, out var cuda) && (cuda.dtype != ScalarType.Byte || cuda.dim() != 1 || cuda.NumberOfElements != CudaStateBytes))
            throw new InvalidDataException(
                $"{source}: '{CudaKey}' must be {CudaStateBytes} bytes (uint8) of CUDA generator state, but it is {cuda.dtype} [{string.Join(", ", cuda.shape)}]");
        var unknown = state.Keys.Where(k => k is not (CpuKey or CudaKey)).ToList();
        if (unknown.Count > 0) throw new InvalidDataException($"{source} has unknown entries: {string.Join(", ", unknown)}");
    }

    /// <summary>Restores checked entries; the CUDA state only when training on CUDA.</summary>
    public static void Restore(IReadOnlyDictionary<string, Tensor> state, Device device)
    {
        torch.random.set_rng_state(state[CpuKey]);
        if (device.type == DeviceType.CUDA && state.TryGetValue(CudaKey, out var cuda))
            torch.cuda.manual_seed_all((long)BinaryPrimitives.ReadUInt64LittleEndian(cuda.bytes));
    }
}
