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
}
