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

    [Fact]
    public void MatchesTorchAdamW()
    {
        var (ours, x, y) = Problem(3);
        var (theirs, _, _) = Problem(4);
        // Same starting weights without relying on the global RNG (other tests use it in parallel).
        using (no_grad())
            foreach (var ((_, a), (_, b)) in ours.named_parameters().Zip(theirs.named_parameters())) b.copy_(a);
        const double lr = 0.01, wd = 0.1;
        var named = ours.named_parameters().Select(p => new NamedParameter(p.name, p.parameter)).ToList();
        using var adam = new AdamW(new[] { new ParameterGroup("all", wd, named) }, 0.9, 0.99, 1e-8);
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
