using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace TransformerForge.Modules;

/// <summary>
/// A sequence of same-shaped tensors that grows by one entry per step and is read whole at every step, as the
/// Feedback Transformer does with the keys and values of its memory (Fan et al. 2020, section 3).
/// <para>
/// Entries live in one preallocated buffer (doubled when full). <see cref="Read"/> returns all entries so far as
/// <c>[count, ...entry shape]</c> without copying them, so that a sequence of n steps keeps O(n) entries alive for
/// backward instead of the O(n²) that concatenating (or stacking) a fresh tensor at every step would keep.
/// </para>
/// <para>
/// Gradients follow labml's <c>Stack</c>: a read at count n hands its gradient for every entry to a shared
/// accumulator and returns to autograd only the gradient of the newest entry n-1. The gradient of entry n-1 is
/// complete at that moment because every later read depends on entry n-1 through the step that produced it, so
/// autograd has already run their backward. Requirements that follow: read at most once per count (repeated reads
/// at the same count return the same tensor), and one backward per graph (no <c>retain_graph</c> replays, no double
/// backward).
/// </para>
/// </summary>
public sealed class AppendOnlyStack : IDisposable
{
    private const int InitialCapacity = 64;

    private Tensor? _buffer;
    private Tensor? _gradients;
    private Tensor? _newest;
    private Tensor? _lastRead;
    private long _lastReadCount = -1;
    // Set by the read node's forward, so that Read can drop what TorchSharp caches for it.
    private AutogradContext? _readContext;

    /// <summary>Number of entries appended so far.</summary>
    public long Count { get; private set; }

    /// <summary>
    /// Whether the last read with autograd freed TorchSharp's read-sized output cache at once
    /// (<see cref="AutogradOutputCache"/>); without it each read holds a second [count, ...] tensor until backward.
    /// </summary>
    public bool LastReadDroppedOutputCache { get; private set; }

    /// <summary>Appends <paramref name="entry"/>; its gradient reaches it through later <see cref="Read"/>s.</summary>
    public void Append(Tensor entry)
    {
        using (no_grad())
        {
            EnsureCapacity(entry);
            _buffer![Count].copy_(entry);
        }
        // A backward over earlier reads is finished; reads after this append belong to a new graph.
        ReleaseGradients();
        // Only an entry with autograd history needs to be kept (as the input of later reads); not keeping the others
        // lets generation dispose each step's tensors.
        _newest = entry.requires_grad ? entry : null;
        Count++;
    }

    /// <summary>All entries appended so far, <c>[Count, ...entry shape]</c>, oldest first.</summary>
    public Tensor Read()
    {
        if (Count == 0) throw new InvalidOperationException("the stack is empty");
        if (_lastReadCount == Count && _lastRead is { IsInvalid: false }) return _lastRead;

        if (is_grad_enabled() && _newest is { IsInvalid: false })
        {
            _lastRead = ReadFunction.apply(this, Count, _newest);
            // On a 2-layer Feedback LM at seq 256, batch 16 this halves the original variant's forward
            // (docs/feedback-benchmark.md).
            LastReadDroppedOutputCache = _readContext is not null && AutogradOutputCache.Drop(_readContext);
            _readContext = null;
        }
        else
        {
            _lastRead = Alias(Count);
        }
        _lastReadCount = Count;
        return _lastRead;
    }

    /// <summary>
    /// Cuts the entries so far off from autograd (truncated backpropagation through time): later reads pass no
    /// gradient to them. Call between segments whose graphs are backpropagated separately.
    /// </summary>
    public void Detach()
    {
        _newest = null;
        _lastRead = null;
        _lastReadCount = -1;
    }

    public void Dispose()
    {
        _buffer?.Dispose();
        _buffer = null;
        ReleaseGradients();
        _newest = null;
        _lastRead = null;
    }

    /// <summary>
    /// A tensor over the first <paramref name="count"/> entries of the buffer. It shares the buffer's memory but
    /// is not a view of it, so later in-place appends do not bump its version counter (which autograd would
    /// otherwise report as a modification of a tensor saved for backward).
    /// </summary>
    private Tensor Alias(long count)
    {
        using var _ = no_grad();
        return empty(0, dtype: _buffer!.dtype, device: _buffer.device).set_(_buffer.narrow(0, 0, count));
    }

    /// <summary>Backward of a read at <paramref name="count"/>: collect its gradient, return the newest entry's.</summary>
    private Tensor AccumulateGradient(Tensor gradient, long count)
    {
        if (_gradients is null || _gradients.IsInvalid || _gradients.shape[0] < count)
        {
            // Autograd runs the largest read first, so this is normally allocated once, at its size. The buffer may
            // already be disposed (a forward pass disposes its memory before backward): take the gradient's shape.
            var grown = zeros(gradient.shape, dtype: gradient.dtype, device: gradient.device).DetachFromDisposeScope();
            if (_gradients is { IsInvalid: false })
                grown.narrow(0, 0, _gradients.shape[0]).copy_(_gradients);
            _gradients?.Dispose();
            _gradients = grown;
        }
        // The views are disposed here, not left to the caller's dispose scope: they would keep every accumulator
        // alive until the training step ends.
        using (var accumulated = _gradients.narrow(0, 0, count)) accumulated.add_(gradient);
        Tensor newest;
        using (var entry = _gradients[count - 1]) newest = entry.clone();
        // The read at count 1 is the last one autograd runs for this graph.
        if (count == 1) ReleaseGradients();
        return newest;
    }

    private void EnsureCapacity(Tensor entry)
    {
        if (_buffer is not null && !_buffer.shape.Skip(1).SequenceEqual(entry.shape))
            throw new ArgumentException($"entry shape [{string.Join(", ", entry.shape)}] differs from the stack's " +
                                        $"[{string.Join(", ", _buffer.shape.Skip(1))}]");
        if (_buffer is not null && Count < _buffer.shape[0]) return;

        var capacity = _buffer is null ? InitialCapacity : 2 * _buffer.shape[0];
        var grown = empty([capacity, .. entry.shape], dtype: entry.dtype, device: entry.device).DetachFromDisposeScope();
        if (_buffer is not null)
        {
            grown.narrow(0, 0, Count).copy_(_buffer.narrow(0, 0, Count));
            // Earlier reads alias the old buffer's memory and keep it alive; this handle is no longer needed.
            _buffer.Dispose();
        }
        _buffer = grown;
    }

    private void ReleaseGradients()
    {
        _gradients?.Dispose();
        _gradients = null;
    }

    /// <summary>Autograd node of a read: arguments are (stack, count, newest entry).</summary>
    private sealed class ReadFunction : SingleTensorFunction<ReadFunction>
    {
        public override string Name => nameof(AppendOnlyStack) + "Read";

        public override Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var (stack, count) = ((AppendOnlyStack)vars[0], (long)vars[1]);
            ctx.save_data("stack", stack);
            ctx.save_data("count", count);
            // backward makes its own zeros for an undefined gradient, so TorchSharp's output cache can go.
            ctx.set_materialize_grads(false);
            stack._readContext = ctx;
            var read = stack.Alias(count);
            ctx.save_data("shape", read.shape);
            ctx.save_data("dtype", read.dtype);
            ctx.save_data("device", read.device);
            return read;
        }

        public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
        {
            var stack = (AppendOnlyStack)ctx.get_data("stack");
            var count = (long)ctx.get_data("count");
            if (gradOutput.IsInvalid)
            {
                // The read reached the loss through no differentiable path: its gradient is zero.
                gradOutput = zeros((long[])ctx.get_data("shape"), dtype: (ScalarType)ctx.get_data("dtype"),
                    device: (Device)ctx.get_data("device"));
            }
            try
            {
                return [null!, null!, stack.AccumulateGradient(gradOutput, count)];
            }
            finally
            {
                // TorchSharp hands the gradient over in a new managed handle that nothing else disposes: without this,
                // every read's [count, ...] gradient stays alive until the enclosing dispose scope ends or the GC
                // runs, O(n²) memory over a sequence of n steps.
                gradOutput.Dispose();
            }
        }
    }
}
