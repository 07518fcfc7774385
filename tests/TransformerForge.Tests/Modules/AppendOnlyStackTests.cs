using TorchSharp;
using TransformerForge.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Modules;

public class AppendOnlyStackTests
{
    /// <summary>
    /// A backward through n reads must not leave their gradients (one [count, ...] tensor per read, O(n²) in all)
    /// alive in the caller's dispose scope, as a training step run in one would until it ends. TorchSharp hands each
    /// gradient to the custom backward in a new handle that only the stack can dispose.
    /// </summary>
    [Fact]
    public void BackwardLeavesNoReadSizedTensorInTheDisposeScope()
    {
        using var scope = NewDisposeScope();
        using var stack = new AppendOnlyStack();
        var x = randn(3, 4, requires_grad: true);
        var h = x;
        var loss = zeros(1);
        for (var t = 0; t < 20; t++)
        {
            // Each entry depends on the reads before it, as the Feedback Transformer's memory does.
            if (stack.Count > 0) h = h + stack.Read().mean([0]);
            stack.Append(h.tanh());
            loss = loss + h.sum();
        }
        var beforeBackward = scope.DisposablesView.ToHashSet(ReferenceEqualityComparer.Instance);

        loss.backward();

        Assert.NotNull(x.grad);
        var leftBehind = scope.DisposablesView.Where(d => !beforeBackward.Contains(d)).OfType<Tensor>()
            .Where(tensor => !tensor.IsInvalid && tensor.numel() > x.numel())
            .Select(tensor => $"[{string.Join(", ", tensor.shape)}]")
            .ToList();
        Assert.True(leftBehind.Count == 0, $"backward left {leftBehind.Count} tensors: {string.Join(" ", leftBehind.Take(5))}");
    }

    /// <summary>
    /// TorchSharp keeps a read-sized empty tensor per custom autograd node until backward; the stack frees it at once
    /// through TorchSharp's private fields. This fails when a TorchSharp upgrade moves them (the stack then still
    /// works, but each read holds that tensor again): see <c>AutogradOutputCache</c>.
    /// </summary>
    [Fact]
    public void ReadsFreeTorchSharpsOutputCache()
    {
        using var scope = NewDisposeScope();
        using var stack = new AppendOnlyStack();
        var x = randn(3, 4, requires_grad: true);
        stack.Append(x.tanh());
        var read = stack.Read();
        Assert.True(stack.LastReadDroppedOutputCache);
        read.sum().backward();
        Assert.NotNull(x.grad);
    }

    [Fact]
    public void ReadingAnEmptyStackSaysSo()
    {
        TransformerForge.Runtime.TorchRuntime.EnsureLoaded();
        using var stack = new AppendOnlyStack();
        var e = Assert.Throws<InvalidOperationException>(() => stack.Read());
        Assert.Contains("empty", e.Message);
    }

    [Fact]
    public void AnEntryOfAnotherShapeIsRefusedNamingBothShapes()
    {
        using var scope = NewDisposeScope();
        using var stack = new AppendOnlyStack();
        stack.Append(randn(3, 4));
        var e = Assert.Throws<ArgumentException>(() => stack.Append(randn(3, 5)));
        Assert.Equal("entry shape [3, 5] differs from the stack's [3, 4]", e.Message);
    }

    /// <summary>Truncated backpropagation through time: after <c>Detach</c> a read (with autograd on) is plain data.</summary>
    [Fact]
    public void AfterDetachAReadPassesNoGradient()
    {
        using var scope = NewDisposeScope();
        using var stack = new AppendOnlyStack();
        var x = randn(3, 4, dtype: ScalarType.Float64, requires_grad: true);
        stack.Append(x * 2);
        stack.Detach();
        var read = stack.Read();
        Assert.False(read.requires_grad);
        Assert.True(read[0].allclose(x.detach() * 2, rtol: 0, atol: 0));
    }

    /// <summary>
    /// A read whose consumer passes back no gradient (an undefined one, as a custom autograd function may) counts as a
    /// zero gradient: backward still runs through it, and earlier reads' gradients arrive intact.
    /// </summary>
    [Fact]
    public void AReadThatGetsNoGradientCountsAsZero()
    {
        using var scope = NewDisposeScope();
        using var stack = new AppendOnlyStack();
        var x = randn(2, 3, dtype: ScalarType.Float64, requires_grad: true);
        stack.Append(x * 2);
        var first = stack.Read();                        // [1, 2, 3]
        stack.Append(first[0] * 3);                      // entry 1 = 6x
        var second = stack.Read();                       // [2, 2, 3], reaches the loss only through NoGradient
        var loss = NoGradient.apply(second).sum() + first.sum();
        loss.backward();
        // Only first.sum() passes a gradient: d/dx sum(2x) = 2.
        Assert.True(x.grad!.allclose(full_like(x, 2.0)));
    }

    /// <summary>Identity whose backward returns no gradient (undefined), not zeros.</summary>
    sealed class NoGradient : autograd.SingleTensorFunction<NoGradient>
    {
        public override string Name => nameof(NoGradient);
        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars) => ((Tensor)vars[0]).clone();
        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput) => [null!];
    }

    /// <summary>
    /// TorchSharp allocates a read-sized tensor per custom autograd node and keeps it until backward; the stack frees it at
    /// once (docs/feedback-benchmark.md: it halves the forward's memory). After a read, no read-sized tensor other than the
    /// read itself (its handles) is alive in the caller's scope.
    /// </summary>
    [Fact]
    public void AReadKeepsNoSecondReadSizedTensorAlive()
    {
        using var scope = NewDisposeScope();
        using var stack = new AppendOnlyStack();
        var x = randn(3, 4, requires_grad: true);
        for (var t = 0; t < 5; t++) stack.Append(x.abs() + t + 1);
        var read = stack.Read();
        // Handles of the read itself show the stack's entries (all >= 1); a read-sized tensor that does not is a second one.
        var others = scope.DisposablesView.OfType<Tensor>()
            .Where(tensor => !tensor.IsInvalid && tensor.shape.SequenceEqual(read.shape) && !tensor.allclose(read, rtol: 0, atol: 0))
            .ToList();
        Assert.True(others.Count == 0, $"{others.Count} other read-sized tensors alive");
        Assert.True(stack.LastReadDroppedOutputCache);
    }
}

