using TorchSharp;
using TransformerForge.Runtime;
using TransformerForge.Training;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Training;

public class AdamWTests
{
    static (nn.Module Model, Tensor X, Tensor Y) Problem(int seed)
    {
        TorchRuntime.EnsureLoaded();
        torch.random.manual_seed(seed);
        var model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3));
        model.to(ScalarType.Float64);
        var x = randn(16, 4, dtype: ScalarType.Float64);
        var y = randn(16, 3, dtype: ScalarType.Float64);
        return (model, x, y);
    }

    static void Backward(nn.Module model, Tensor x, Tensor y)
    {
        using var scope = NewDisposeScope();
        var pred = ((nn.Module<Tensor, Tensor>)model).forward(x);
        nn.functional.mse_loss(pred, y).backward();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void MatchesTorchAdamW(bool flat)
    {
        var (ours, x, y) = Problem(3);
        var (theirs, _, _) = Problem(4);
        // Same starting weights without relying on the global RNG (other tests use it in parallel).
        using (no_grad())
            foreach (var ((_, a), (_, b)) in ours.named_parameters().Zip(theirs.named_parameters())) b.copy_(a);
        const double lr = 0.01, wd = 0.1;
        var named = ours.named_parameters().Select(p => new NamedParameter(p.name, p.parameter)).ToList();
        using var adam = new AdamW(new[] { new ParameterGroup("all", wd, named) }, 0.9, 0.99, 1e-8, flat);
        using var reference = torch.optim.AdamW(theirs.parameters(), lr, 0.9, 0.99, 1e-8, wd);
        for (int step = 0; step < 20; step++)
        {
            adam.ZeroGrad();
            Backward(ours, x, y);
            adam.Step(lr);
            reference.zero_grad();
            Backward(theirs, x, y);
            reference.step();
        }
        foreach (var ((name, a), (_, b)) in ours.named_parameters().Zip(theirs.named_parameters()))
            Assert.True(a.allclose(b, rtol: 1e-10, atol: 1e-12), $"{name} differs from torch.optim.AdamW");
    }

    [Fact]
    public void FlatLayoutHoldsParametersAndGradientsInOneBufferAndClipsLikeTorch()
    {
        var (model, x, y) = Problem(6);
        var (reference, _, _) = Problem(6);
        using (no_grad())
            foreach (var ((_, a), (_, b)) in model.named_parameters().Zip(reference.named_parameters())) b.copy_(a);
        var named = ParameterGroups.Unique(model);
        // Two groups, decay first: each is one contiguous range of the buffer.
        using var adam = new AdamW(new[] { new ParameterGroup("decay", 0.1, named.Where(p => p.Parameter.dim() == 2).ToList()),
            new ParameterGroup("none", 0, named.Where(p => p.Parameter.dim() < 2).ToList()) });
        var flat = Assert.Single(adam.FlatBuffers);
        Assert.Equal(named.Sum(p => p.Parameter.numel()), flat.Count);
        Assert.Equal(new[] { 0.1, 0.0 }, flat.Ranges.Select(r => r.WeightDecay));

        // The parameters are views of the buffer: writing the buffer changes them.
        using (no_grad()) flat.Values.add_(1);
        using (no_grad())
            foreach (var ((name, a), (_, b)) in model.named_parameters().Zip(reference.named_parameters()))
            {
                Assert.True(a.allclose(b + 1), $"{name} is not a view of the flat buffer");
                b.add_(1);
            }

        // Backward accumulates into the flat gradient; clipping scales it as torch's clip_grad_norm_ does.
        adam.ZeroGrad();
        Backward(model, x, y);
        Backward(reference, x, y);
        Assert.True(flat.Gradients.abs().sum().item<double>() > 0);
        double expected = nn.utils.clip_grad_norm_(reference.parameters(), 0.05);
        using var norm = adam.ClipGradNorm(0.05);
        Assert.Equal(expected, norm.item<double>(), 12);
        foreach (var ((name, a), (_, b)) in model.named_parameters().Zip(reference.named_parameters()))
            Assert.True(a.grad!.allclose(b.grad!, rtol: 1e-12, atol: 1e-15), $"{name}: clipped gradient differs from torch");
    }

    [Fact]
    public void FlatStateNeedsOneStepPerBuffer()
    {
        var (model, x, y) = Problem(8);
        var named = ParameterGroups.Unique(model);
        using var perTensor = new AdamW(new[] { new ParameterGroup("all", 0.01, named) }, flat: false);
        perTensor.ZeroGrad();
        Backward(model, x, y);
        perTensor.Step(1e-3);
        var state = perTensor.StateTensors();
        state["0.bias.step"] = full(Array.Empty<long>(), 7L, dtype: ScalarType.Int64);

        var (other, _, _) = Problem(8);
        using var flat = new AdamW(new[] { new ParameterGroup("all", 0.01, ParameterGroups.Unique(other)) });
        var e = Assert.Throws<InvalidDataException>(() => flat.LoadState(state, "test"));
        Assert.Contains("0.bias", e.Message);
    }

    [Fact]
    public void StateRoundTripsByParameterName()
    {
        var (model, x, y) = Problem(5);
        var named = ParameterGroups.Unique(model);
        using var adam = new AdamW(new[] { new ParameterGroup("all", 0.01, named) });
        for (int i = 0; i < 3; i++)
        {
            adam.ZeroGrad();
            Backward(model, x, y);
            adam.Step(1e-3);
        }
        var state = adam.StateTensors();
        Assert.Equal(named.Count * 3, state.Count);
        Assert.Equal(3L, state["0.weight.step"].item<long>());

        // Load into an optimizer whose groups list the parameters in the opposite order: names decide.
        using var other = new AdamW(new[] { new ParameterGroup("rev", 0.01, named.Reverse().ToList()) });
        other.LoadState(state, "test");
        var back = other.StateTensors();
        foreach (var (k, v) in state) Assert.True(v.eq(back[k]).all().item<bool>(), k);

        state.Remove("0.bias.exp_avg");
        var e = Assert.Throws<InvalidDataException>(() => other.LoadState(state, "test"));
        Assert.Contains("0.bias.exp_avg", e.Message);
    }
}
