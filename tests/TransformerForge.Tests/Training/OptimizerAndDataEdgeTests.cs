using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Data;
using TransformerForge.Models;
using TransformerForge.Runtime;
using TransformerForge.Tests.Data;
using TransformerForge.Training;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Training;

/// <summary>
/// Boundaries, messages and branches of the optimizer, its flat buffers, loss scaling, precision names, parameter
/// groups and the training-data adapters that a mutation run asks for (exact messages, just-inside / just-outside).
/// </summary>
public class OptimizerAndDataEdgeTests
{
    static (nn.Module Model, Tensor X, Tensor Y) Problem(int seed)
    {
        TorchRuntime.EnsureLoaded();
        var g = new Generator((ulong)seed);
        var model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3));
        model.to(ScalarType.Float64);
        using (no_grad())
            foreach (var p in model.parameters()) p.copy_(randn(p.shape, dtype: ScalarType.Float64, generator: g) * 0.5);
        var x = randn(new long[] { 16, 4 }, dtype: ScalarType.Float64, generator: g);
        var y = randn(new long[] { 16, 3 }, dtype: ScalarType.Float64, generator: g);
        return (model, x, y);
    }

    static void CopyWeights(nn.Module from, nn.Module to)
    {
        using var _ = no_grad();
        foreach (var ((_, a), (_, b)) in from.named_parameters().Zip(to.named_parameters())) b.copy_(a);
    }

    static void Backward(nn.Module model, Tensor x, Tensor y)
    {
        using var scope = NewDisposeScope();
        nn.functional.mse_loss(((nn.Module<Tensor, Tensor>)model).forward(x), y).backward();
    }

    static List<NamedParameter> Named(nn.Module model) => ParameterGroups.Unique(model).ToList();

    // ---------------- LossScaler ----------------

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void LossScalerRefusesANonPositiveOrNonFiniteScale(double scale)
    {
        var e = Assert.Throws<ArgumentException>(() => new LossScaler(scale));
        Assert.Equal($"the loss scale must be a positive finite number, got {scale}", e.Message);
    }

    [Fact]
    public void LossScalerGrowsAfterExactlyTheIntervalAndHalvesOnOverflow()
    {
        Assert.Equal(65536, LossScaler.DefaultInitialScale);
        Assert.Equal(2000, LossScaler.GrowthInterval);
        Assert.Equal(Math.Pow(2, -24), LossScaler.MinimumScale);
        Assert.Equal(65536, new LossScaler().Scale);
        var tiny = new LossScaler(double.Epsilon, goodSteps: 5);
        Assert.Equal(double.Epsilon, tiny.Scale);
        Assert.Equal(5, tiny.GoodSteps);

        var s = new LossScaler(8, goodSteps: LossScaler.GrowthInterval - 2);
        Assert.True(s.Update(false));
        Assert.Equal(8, s.Scale);
        Assert.Equal(LossScaler.GrowthInterval - 1, s.GoodSteps);
        Assert.True(s.Update(false));
        Assert.Equal(16, s.Scale);
        Assert.Equal(0, s.GoodSteps);

        Assert.True(s.Update(false));
        Assert.Equal(1, s.GoodSteps);
        Assert.False(s.Update(true));
        Assert.Equal(8, s.Scale);
        Assert.Equal(0, s.GoodSteps);
        Assert.Equal(1, s.SkippedSteps);
        Assert.False(s.Update(true));
        Assert.Equal(4, s.Scale);
        Assert.Equal(2, s.SkippedSteps);
    }

    // ---------------- Precision ----------------

    [Fact]
    public void PrecisionNamesMapToDTypesAndAnUnknownNameIsRefusedByName()
    {
        Assert.Equal(new[] { "fp32", "bf16", "fp16" }, Precision.Names);
        Assert.Equal(ScalarType.Float32, Precision.DType("fp32"));
        Assert.Equal(ScalarType.BFloat16, Precision.DType("bf16"));
        Assert.Equal(ScalarType.Float16, Precision.DType("fp16"));
        var e = Assert.Throws<ArgumentException>(() => Precision.DType("fp8"));
        Assert.Equal("unknown precision 'fp8': use fp32, bf16, fp16", e.Message);
    }

    // ---------------- AdamW ----------------

    [Fact]
    public void AdamWRefusesDuplicateAndMissingParameters()
    {
        var (model, _, _) = Problem(1);
        var named = Named(model);
        var e = Assert.Throws<ArgumentException>(() => new AdamW(new[] { new ParameterGroup("a", 0.1, named), new ParameterGroup("b", 0, named.Take(1).ToList()) }));
        Assert.Equal("parameter '0.weight' is in more than one group", e.Message);
        foreach (var flat in new[] { true, false })
        {
            e = Assert.Throws<ArgumentException>(() => new AdamW(new[] { new ParameterGroup("a", 0.1, Array.Empty<NamedParameter>()) }, flat: flat));
            Assert.Equal("no parameters to optimize", e.Message);
        }
    }

    /// <summary>Torch reference with one optimizer per group (AdamW is per parameter, so this is exact).</summary>
    static void ReferenceStep(IEnumerable<torch.optim.Optimizer> reference)
    {
        foreach (var r in reference) r.step();
    }

    [Theory]
    [InlineData(true, AdamW.DefaultChunkElements)]
    [InlineData(true, 7L)]    // chunks that do not divide the buffer (99 elements): the last one is shorter
    [InlineData(true, 0L)]    // 0: the whole buffer at once
    [InlineData(true, -1L)]   // negative: likewise
    [InlineData(true, 99L)]   // exactly one chunk
    [InlineData(false, 0L)]
    public void GroupsWithAndWithoutDecayMatchTorchInEveryChunking(bool flat, long chunk)
    {
        Assert.Equal(1L << 20, AdamW.DefaultChunkElements);
        var (ours, x, y) = Problem(11);
        var (theirs, _, _) = Problem(12);
        CopyWeights(ours, theirs);
        var named = Named(ours);
        var decay = named.Where(p => p.Parameter.dim() == 2).ToList();
        var none = named.Where(p => p.Parameter.dim() < 2).ToList();
        const double lr = 0.02, wd = 0.3;
        using var adam = new AdamW(new[] { new ParameterGroup("decay", wd, decay), new ParameterGroup("none", 0, none) }, 0.8, 0.95, 1e-6, flat)
        { ChunkElements = chunk };
        Assert.Equal(flat, adam.IsFlat);
        Assert.Equal(chunk, adam.ChunkElements);
        var theirNamed = theirs.named_parameters().ToList();
        using var refDecay = torch.optim.AdamW(theirNamed.Where(p => p.parameter.dim() == 2).Select(p => p.parameter), lr, 0.8, 0.95, 1e-6, wd);
        using var refNone = torch.optim.AdamW(theirNamed.Where(p => p.parameter.dim() < 2).Select(p => p.parameter), lr, 0.8, 0.95, 1e-6, 0);
        for (int step = 0; step < 6; step++)
        {
            adam.ZeroGrad();
            Backward(ours, x, y);
            adam.Step(lr);
            refDecay.zero_grad();
            refNone.zero_grad();
            Backward(theirs, x, y);
            ReferenceStep(new torch.optim.Optimizer[] { refDecay, refNone });
        }
        foreach (var ((name, a), (_, b)) in ours.named_parameters().Zip(theirs.named_parameters()))
            Assert.True(a.allclose(b, rtol: 1e-12, atol: 1e-14), $"{name} differs from torch.optim.AdamW ({(flat ? $"flat, chunk {chunk}" : "per tensor")})");
        Assert.Equal(6L, adam.StateTensors()["2.bias.step"].item<long>());
    }

    [Fact]
    public void PerTensorLeavesAParameterWithoutGradientAloneWhileFlatStepsIt()
    {
        var (model, x, y) = Problem(13);
        var extra = new TorchSharp.Modules.Parameter(ones(3, dtype: ScalarType.Float64));
        var named = Named(model).Append(new NamedParameter("extra", extra)).ToList();
        using var perTensor = new AdamW(new[] { new ParameterGroup("all", 0.5, named) }, flat: false);
        perTensor.ZeroGrad();      // no gradients yet: nothing to zero, nothing fails
        using (var none = perTensor.ClipGradNorm(1.0))
            Assert.Equal(0.0, none.item<float>());
        Backward(model, x, y);
        perTensor.Step(0.1);
        Assert.True(extra.eq(1).all().item<bool>(), "a parameter without a gradient was decayed or updated");
        var state = perTensor.StateTensors();
        Assert.Equal(0L, state["extra.step"].item<long>());
        Assert.Equal(ScalarType.Int64, state["extra.step"].dtype);
        Assert.Equal(1L, state["0.weight.step"].item<long>());

        // ZeroGrad zeroes the gradients it finds.
        perTensor.ZeroGrad();
        Assert.All(model.parameters(), p => Assert.Equal(0.0, p.grad!.abs().sum().item<double>()));

        // The flat layout gives every parameter a gradient (zero): the decay applies and the step counts.
        var (model2, x2, y2) = Problem(13);
        var extra2 = new TorchSharp.Modules.Parameter(ones(3, dtype: ScalarType.Float64));
        using var flat = new AdamW(new[] { new ParameterGroup("all", 0.5, Named(model2).Append(new NamedParameter("extra", extra2)).ToList()) });
        flat.ZeroGrad();
        Backward(model2, x2, y2);
        flat.Step(0.1);
        Assert.True(extra2.allclose(ones(3, dtype: ScalarType.Float64) * 0.95), "flat: a parameter without a gradient is still decayed");
        Assert.Equal(1L, flat.StateTensors()["extra.step"].item<long>());
        flat.ZeroGrad();
        Assert.Equal(0.0, flat.FlatBuffers[0].Gradients.abs().sum().item<double>());
    }

    [Fact]
    public void ClipGradNormOnlyMeasuresWhenInfiniteOrBelowTheMaximum()
    {
        foreach (var flat in new[] { true, false })
        {
            var (model, x, y) = Problem(14);
            using var adam = new AdamW(new[] { new ParameterGroup("all", 0, Named(model)) }, flat: flat);
            adam.ZeroGrad();
            Backward(model, x, y);
            var before = model.parameters().Select(p => p.grad!.clone()).ToList();
            using var norm = adam.ClipGradNorm(double.PositiveInfinity);
            double n = norm.item<double>();
            double expected = Math.Sqrt(before.Sum(g => g.pow(2).sum().item<double>()));
            Assert.Equal(expected, n, 12);
            Assert.All(model.parameters().Zip(before), t => Assert.True(t.First.grad!.eq(t.Second).all().item<bool>()));

            // A maximum just above the norm leaves the gradients as they are (the factor is clamped to 1).
            using var again = adam.ClipGradNorm(n * 1.001);
            Assert.All(model.parameters().Zip(before), t => Assert.True(t.First.grad!.eq(t.Second).all().item<bool>()));

            // Half the norm halves them (to within clip_grad_norm_'s 1e-6).
            using var third = adam.ClipGradNorm(n / 2);
            Assert.Equal(n, third.item<double>(), 12);
            double factor = (n / 2) / (n + 1e-6);
            Assert.All(model.parameters().Zip(before), t => Assert.True(t.First.grad!.allclose(t.Second * factor, rtol: 1e-12, atol: 0)));
        }
    }

    [Fact]
    public void TwoDTypesMakeTwoBucketsAndTheNormSpansBoth()
    {
        var (model, x, y) = Problem(15);
        var single = new TorchSharp.Modules.Parameter(full(new long[] { 2 }, 3.0f, dtype: ScalarType.Float32));
        var named = Named(model).Append(new NamedParameter("single", single)).ToList();
        using var adam = new AdamW(new[] { new ParameterGroup("all", 0, named) });
        Assert.Equal(2, adam.FlatBuffers.Count);
        Assert.Equal(ScalarType.Float64, adam.FlatBuffers[0].DType);
        Assert.Equal(ScalarType.Float32, adam.FlatBuffers[1].DType);
        adam.ZeroGrad();
        Backward(model, x, y);
        using (no_grad()) adam.FlatBuffers[1].Gradients.fill_(2.0f);
        double g64 = adam.FlatBuffers[0].Gradients.pow(2).sum().item<double>();
        using var norm = adam.ClipGradNorm(double.PositiveInfinity);
        Assert.Equal(Math.Sqrt(g64 + 8), norm.item<double>(), 6);
        Assert.Equal(named.Count, adam.Parameters.Count());
    }

    static AdamW Stepped(nn.Module model, Tensor x, Tensor y, bool flat, int steps)
    {
        var adam = new AdamW(new[] { new ParameterGroup("all", 0.1, Named(model)) }, flat: flat);
        for (int i = 0; i < steps; i++)
        {
            adam.ZeroGrad();
            Backward(model, x, y);
            adam.Step(1e-2);
        }
        return adam;
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(false, false)]
    public void LoadedStateContinuesExactlyAsTheUninterruptedRun(bool saveFlat, bool loadFlat)
    {
        // Uninterrupted: 5 steps. Resumed: 3 steps, state and weights into a fresh optimizer, 2 more steps.
        var (a, x, y) = Problem(16);
        using var straight = Stepped(a, x, y, saveFlat, 5);

        var (b, _, _) = Problem(16);
        using var first = Stepped(b, x, y, saveFlat, 3);
        var state = first.StateTensors();
        var (c, _, _) = Problem(17);
        CopyWeights(b, c);
        using var resumed = new AdamW(new[] { new ParameterGroup("all", 0.1, Named(c)) }, flat: loadFlat);
        resumed.LoadState(state, "test");
        Assert.Equal(3L, resumed.StateTensors()["0.weight.step"].item<long>());
        for (int i = 0; i < 2; i++)
        {
            resumed.ZeroGrad();
            Backward(c, x, y);
            resumed.Step(1e-2);
        }
        foreach (var ((name, p), (_, q)) in a.named_parameters().Zip(c.named_parameters()))
            Assert.True(p.allclose(q, rtol: 1e-12, atol: 1e-14), $"{name}: resumed differs from uninterrupted");
        Assert.Equal(5L, resumed.StateTensors()["2.weight.step"].item<long>());
    }

    [Fact]
    public void LoadStateNamesMissingUnexpectedMisshapenAndMismatchedSteps()
    {
        var (model, x, y) = Problem(18);
        using var adam = Stepped(model, x, y, flat: false, steps: 1);
        var good = adam.StateTensors();

        var state = new Dictionary<string, Tensor>(good);
        state.Remove("0.bias.exp_avg");
        state.Remove("0.bias.step");
        state["zz.exp_avg"] = zeros(1);
        state["aa.step"] = zeros(1);
        var e = Assert.Throws<InvalidDataException>(() => adam.LoadState(state, "ckpt"));
        Assert.Equal("optimizer state in ckpt does not match the model: missing 0.bias.exp_avg, 0.bias.step; unexpected aa.step, zz.exp_avg", e.Message);

        state = new Dictionary<string, Tensor>(good) { ["zz.exp_avg"] = zeros(1) };
        e = Assert.Throws<InvalidDataException>(() => adam.LoadState(state, "ckpt"));
        Assert.Equal("optimizer state in ckpt does not match the model: unexpected zz.exp_avg", e.Message);

        state = new Dictionary<string, Tensor>(good);
        state.Remove("2.bias.exp_avg_sq");
        e = Assert.Throws<InvalidDataException>(() => adam.LoadState(state, "ckpt"));
        Assert.Equal("optimizer state in ckpt does not match the model: missing 2.bias.exp_avg_sq", e.Message);

        foreach (var key in new[] { "0.weight.exp_avg", "0.weight.exp_avg_sq" })
        {
            state = new Dictionary<string, Tensor>(good) { [key] = zeros(new long[] { 4, 8 }, dtype: ScalarType.Float64) };
            e = Assert.Throws<InvalidDataException>(() => adam.LoadState(state, "ckpt"));
            Assert.Equal("optimizer state in ckpt: '0.weight' has shape [4, 8], the parameter [8, 4]", e.Message);
        }

        // Flat: the first parameter's step is seen first, the second one differs.
        var (other, _, _) = Problem(18);
        using var flat = new AdamW(new[] { new ParameterGroup("all", 0.1, Named(other)) });
        state = new Dictionary<string, Tensor>(good) { ["0.bias.step"] = full(Array.Empty<long>(), 7L, dtype: ScalarType.Int64) };
        e = Assert.Throws<InvalidDataException>(() => flat.LoadState(state, "ckpt"));
        Assert.Equal("optimizer state in ckpt: '0.bias' is at step 7 but '0.weight' at step 1; the flat optimizer keeps one step for all " +
            "parameters (load it with the per-tensor layout)", e.Message);
        // The per-tensor layout takes different steps.
        adam.LoadState(state, "ckpt");
        Assert.Equal(7L, adam.StateTensors()["0.bias.step"].item<long>());
        Assert.Equal(1L, adam.StateTensors()["0.weight.step"].item<long>());
    }

    [Fact]
    public void DisposeFreesTheFlatBuffersAndTheMoments()
    {
        var (model, _, _) = Problem(19);
        var adam = new AdamW(new[] { new ParameterGroup("all", 0, Named(model)) });
        var flat = adam.FlatBuffers[0];
        adam.Dispose();
        Assert.True(flat.Values.IsInvalid);
        Assert.True(flat.Gradients.IsInvalid);
    }

    // ---------------- FlatParameters ----------------

    [Fact]
    public void FlatParametersLaysOutInOrderAndMergesOnlyNeighbouringEqualDecays()
    {
        TorchRuntime.EnsureLoaded();
        var e = Assert.Throws<ArgumentException>(() => new FlatParameters(Array.Empty<(string, TorchSharp.Modules.Parameter, double)>()));
        Assert.Equal("no parameters to lay out", e.Message);

        var p = new[] { 2L, 3L, 4L, 5L }.Select(n => new TorchSharp.Modules.Parameter(arange(n, dtype: ScalarType.Float64) + 10 * n)).ToList();
        var wds = new[] { 0.1, 0.1, 0.0, 0.1 };
        using var flat = new FlatParameters(p.Select((q, i) => ($"p{i}", q, wds[i])).ToList());
        Assert.Equal(14, flat.Count);
        Assert.Equal(ScalarType.Float64, flat.DType);
        Assert.Equal(new long[] { 0, 2, 5, 9 }, flat.Slots.Select(s => s.Offset));
        Assert.Equal(new long[] { 2, 3, 4, 5 }, flat.Slots.Select(s => s.Length));
        Assert.Equal(new[] { (0L, 5L, 0.1), (5L, 4L, 0.0), (9L, 5L, 0.1) }, flat.Ranges);
        // Values were copied; each parameter is a view of the buffer and its .grad a view of the gradient buffer.
        Assert.Equal(new double[] { 20, 21, 30, 31, 32, 40, 41, 42, 43, 50, 51, 52, 53, 54 }, flat.Values.data<double>().ToArray());
        Assert.Equal(0.0, flat.Gradients.abs().sum().item<double>());
        using (no_grad()) flat.Gradients.fill_(1.0);
        Assert.All(p, q => Assert.True(q.grad!.eq(1.0).all().item<bool>()));
        using (no_grad()) p[2].add_(100);
        Assert.Equal(140.0, flat.Values[5].item<double>());
        using var view = FlatParameters.View(flat.Values, flat.Slots[1]);
        Assert.Equal(new long[] { 3 }, view.shape);
        Assert.Equal(new double[] { 30, 31, 32 }, view.data<double>().ToArray());

        var odd = new TorchSharp.Modules.Parameter(zeros(2, dtype: ScalarType.Float32));
        e = Assert.Throws<ArgumentException>(() => new FlatParameters(new[] { ("a", p[0], 0.0), ("b", odd, 0.0) }));
        Assert.Equal("parameter 'b' is Float32 on cpu, the others Float64 on cpu: one flat buffer holds one dtype on one device", e.Message);

        flat.Dispose();
        Assert.True(flat.Values.IsInvalid);
        Assert.True(flat.Gradients.IsInvalid);
    }

    // ---------------- ParameterGroups ----------------

    [Fact]
    public void IsNoDecayLooksAtRankEmbeddingsAndTheLastNameComponent()
    {
        TorchRuntime.EnsureLoaded();
        var none = new HashSet<string>();
        using var matrix = zeros(2, 2);
        using var vector = zeros(2);
        using var scalar = zeros(Array.Empty<long>());
        Assert.False(ParameterGroups.IsNoDecay("w", matrix, none));
        Assert.True(ParameterGroups.IsNoDecay("w", vector, none));
        Assert.True(ParameterGroups.IsNoDecay("w", scalar, none));
        Assert.True(ParameterGroups.IsNoDecay("emb.weight", matrix, new HashSet<string> { "emb.weight" }));
        Assert.True(ParameterGroups.IsNoDecay("layers.0.memory_tokens", matrix, none));
        Assert.True(ParameterGroups.IsNoDecay("attn.mem_k", matrix, none));
        Assert.True(ParameterGroups.IsNoDecay("mem_v", matrix, none));
        Assert.False(ParameterGroups.IsNoDecay("mem_k.weight", matrix, none));
        Assert.False(ParameterGroups.IsNoDecay("attn.mem_kv", matrix, none));
    }

    [Fact]
    public void SplitNamesARootEmbeddingSkipsFrozenParametersAndRefusesAnEmptyModel()
    {
        TorchRuntime.EnsureLoaded();
        using var embedding = nn.Embedding(10, 4);
        var groups = ParameterGroups.Split(embedding, 0.25);
        Assert.Equal(new[] { "decay", "no_decay" }, groups.Select(g => g.Name));
        Assert.Equal(new[] { 0.25, 0.0 }, groups.Select(g => g.WeightDecay));
        Assert.Empty(groups[0].Parameters);
        Assert.Equal("weight", Assert.Single(groups[1].Parameters).Name);

        using var linear = nn.Linear(3, 2);
        linear.bias!.requires_grad = false;
        groups = ParameterGroups.Split(linear, 0.1);
        Assert.Equal("weight", Assert.Single(groups[0].Parameters).Name);
        Assert.Empty(groups[1].Parameters);

        linear.weight!.requires_grad = false;
        Assert.Empty(ParameterGroups.Unique(linear));
        var e = Assert.Throws<ArgumentException>(() => ParameterGroups.Split(linear, 0.1));
        Assert.Equal("the model has no trainable parameters", e.Message);
    }

    // ---------------- MixedPrecision ----------------

    [Fact]
    public void MixedPrecisionRefusesWhatItCannotRunWithOneLineEach()
    {
        TorchRuntime.EnsureLoaded();
        var config = TrainingFixtures.TinyDecoder();
        using var model = ModelFactory.CreateLanguageModel(config);
        var cpu = torch.CPU;
        using (var adam = new AdamW(ParameterGroups.Split(model, 0.1)))
        {
            var e = Assert.Throws<ArgumentException>(() => new MixedPrecision(config, adam, ScalarType.Float32, cpu));
            Assert.Equal("mixed precision needs bfloat16 or float16, not Float32", e.Message);
        }
        using (var perTensor = new AdamW(ParameterGroups.Split(model, 0.1), flat: false))
        {
            var e = Assert.Throws<ArgumentException>(() => new MixedPrecision(config, perTensor, ScalarType.BFloat16, cpu));
            Assert.Equal("mixed precision needs the flat optimizer (flat_optimizer: true)", e.Message);
        }
        var extra = new TorchSharp.Modules.Parameter(zeros(2, dtype: ScalarType.Float64));
        using (var two = new AdamW(ParameterGroups.Split(model, 0.1).Append(new ParameterGroup("x", 0, new[] { new NamedParameter("x", extra) }))))
        {
            var e = Assert.Throws<ArgumentException>(() => new MixedPrecision(config, two, ScalarType.BFloat16, cpu));
            Assert.Equal("mixed precision needs every parameter in one float32 buffer on one device", e.Message);
        }
        using var model64 = ModelFactory.CreateLanguageModel(config);
        model64.to(ScalarType.Float64);
        using (var adam64 = new AdamW(ParameterGroups.Split(model64, 0.1)))
        {
            var e = Assert.Throws<ArgumentException>(() => new MixedPrecision(config, adam64, ScalarType.Float16, cpu));
            Assert.Equal("mixed precision needs float32 master weights, the model is Float64", e.Message);
        }
        // A working copy built from another configuration has other parameters.
        var wider = TrainingFixtures.TinyDecoder(numTokens: 12);
        using (var adam = new AdamW(ParameterGroups.Split(model, 0.1)))
        {
            var e = Assert.Throws<ArgumentException>(() => new MixedPrecision(wider, adam, ScalarType.BFloat16, cpu));
            Assert.StartsWith("the working copy has no parameter '", e.Message);
            Assert.EndsWith("' of shape [11, 16]", e.Message);
        }
    }

    [Fact]
    public void MixedPrecisionAccumulatesScaledGradientsZeroesItsOwnAndRefreshesWeights()
    {
        TorchRuntime.EnsureLoaded();
        var config = TrainingFixtures.TinyDecoder();
        using var model = ModelFactory.CreateLanguageModel(config);
        using var adam = new AdamW(ParameterGroups.Split(model, 0.1));
        using var mixed = new MixedPrecision(config, adam, ScalarType.BFloat16, torch.CPU);
        Assert.Equal(ScalarType.BFloat16, mixed.DType);
        Assert.Same(mixed.Model, mixed.Module);
        Assert.True(mixed.Model.training);
        var master = adam.FlatBuffers[0];
        var working = mixed.Model.parameters().First();
        // The working copy starts as the master weights, rounded.
        var name = mixed.Model.named_parameters().First().name;
        var masterParam = model.named_parameters().First(p => p.name == name).parameter;
        Assert.True(working.to_type(ScalarType.Float32).allclose(masterParam.to_type(ScalarType.BFloat16).to_type(ScalarType.Float32)));

        using (no_grad())
        {
            working.grad!.copy_(full_like(working.grad!, 2.0f, dtype: ScalarType.Float32));
            master.Gradients.fill_(1.0f);
        }
        mixed.AccumulateGradients();
        var first = FlatParameters.View(master.Gradients, master.Slots.First(s => s.Name == name));
        Assert.True(first.eq(3.0f).all().item<bool>());
        Assert.Equal(0.0, working.grad!.to_type(ScalarType.Float64).abs().sum().item<double>());
        using (no_grad()) working.grad!.copy_(full_like(working.grad!, 2.0f, dtype: ScalarType.Float32));
        mixed.AccumulateGradients(0.25);
        Assert.True(first.eq(3.5f).all().item<bool>());
        Assert.Equal(0.0, working.grad!.to_type(ScalarType.Float64).abs().sum().item<double>());

        using (no_grad()) master.Values.fill_(0.5f);
        Assert.False(working.to_type(ScalarType.Float32).eq(0.5f).all().item<bool>());
        mixed.RefreshWeights();
        Assert.All(mixed.Model.parameters(), p => Assert.True(p.to_type(ScalarType.Float32).eq(0.5f).all().item<bool>()));
    }

    // ---------------- TrainingBatch ----------------

    [Fact]
    public void TrainingBatchCountsMaskedTokensAndMovesAllThree()
    {
        TorchRuntime.EnsureLoaded();
        var input = zeros(new long[] { 2, 3 }, dtype: ScalarType.Int64);
        var target = ones(new long[] { 2, 3 }, dtype: ScalarType.Int64);
        Assert.Equal(6, new TrainingBatch(input, target).CountedTokens);
        var mask = tensor(new[] { true, false, true, false, false, true }).reshape(2, 3);
        var batch = new TrainingBatch(input, target, mask);
        Assert.Equal(3, batch.CountedTokens);
        var moved = batch.To(torch.CPU);
        Assert.True(moved.Target.eq(1).all().item<bool>());
        Assert.True(moved.LossMask!.eq(mask).all().item<bool>());
        Assert.Null(new TrainingBatch(input, target).To(torch.CPU).LossMask);
    }

    // ---------------- TextWindowData ----------------

    static string Text(int chars) => string.Concat(Enumerable.Range(0, chars).Select(i => (char)('a' + i % 26)));

    [Fact]
    public void TextWindowsNeedSeqLenPlusOneTokensInTheShorterSplit()
    {
        using var dir = new TempDir();
        var file = dir.File("c.txt", Text(100));
        var options = new TextDatasetOptions(CacheDirectory: Path.Combine(dir.Path, "cache"));
        // 100 bytes: 90 train, 10 validation. seq_len 9 (windows of 10) fits; 10 does not.
        using (var data = new TextWindowData(TextDataset.Open(file, Tokenizers.Create("bytes"), options), 9))
        {
            Assert.Equal(9, data.InputLength);
            Assert.Equal("byte", data.TokenUnit);
            Assert.False(data.HasExactMatch);
            Assert.Equal(256, data.VocabSize);
            Assert.Equal($"text '{data.Dataset.SourcePath}' (bytes tokens: 90 train, 10 validation)", data.Description);
            Assert.Empty(data.Samples(null!, new(), 0, 4, torch.CPU));

            var batch = data.TrainBatch(3, new Random(1));
            Assert.Equal(new long[] { 3, 9 }, batch.Input.shape);
            Assert.True(batch.Input.narrow(1, 1, 8).eq(batch.Target.narrow(1, 0, 8)).all().item<bool>(), "targets are the inputs shifted by one");
            Assert.Null(batch.LossMask);
            var v1 = data.ValidationBatches(2, 2).ToList();
            var v2 = data.ValidationBatches(2, 2).ToList();
            Assert.Equal(2, v1.Count);
            Assert.All(v1.Zip(v2), t => Assert.True(t.First.Input.eq(t.Second.Input).all().item<bool>()));
            // The validation split is bytes 90..99 and a window of 10 starts at 90: always the same.
            Assert.Equal(Text(100)[90..99].Select(c => (long)c), v1[0].Input[0].data<long>().ToArray());
        }
        var bytes = Tokenizers.Create("bytes");
        var e = Assert.Throws<ArgumentException>(() => new TextWindowData(TextDataset.Open(file, bytes, options), 10));
        Assert.Equal($"seq_len 10 is too long for '{Path.GetFullPath(file)}': its validation split has only 10 tokens and a window needs " +
            "seq_len + 1; use a shorter --seq-len or a larger corpus", e.Message);
        e = Assert.Throws<ArgumentException>(() => TextWindowData.Open(file, bytes, 0));
        Assert.Equal("seq_len must be a positive integer, got 0", e.Message);

        // A training split shorter than the validation split is the one named.
        var small = new TextDatasetOptions(CacheDirectory: Path.Combine(dir.Path, "cache2"), TrainFraction: 0.1);
        e = Assert.Throws<ArgumentException>(() => new TextWindowData(TextDataset.Open(file, bytes, small), 10));
        Assert.Contains("its training split has only 10 tokens", e.Message);
        Assert.Equal("char", new TextWindowData(TextDataset.Open(file, Tokenizers.Create("chars", Text(100)), small with { CacheDirectory = Path.Combine(dir.Path, "c3") }), 9).TokenUnit);
    }

    // ---------------- SyntheticTaskData ----------------

    [Fact]
    public void SyntheticTaskDataSlicesTheHeldOutProblemsIntoBatches()
    {
        TorchRuntime.EnsureLoaded();
        Assert.Throws<ArgumentNullException>(() => new SyntheticTaskData(null!));
        using var data = TrainingFixtures.CopyTask();
        Assert.Equal(data.Task.SeqLen - 1, data.InputLength);
        Assert.Null(data.TokenUnit);
        Assert.True(data.HasExactMatch);
        Assert.Equal(data.Task.VocabSize, data.VocabSize);
        Assert.Equal($"task {data.Task}", data.Description);
        Assert.True(data.DefaultSampling(3).Greedy);
        Assert.Equal(3, data.DefaultSampling(3).Seed);
        Assert.Empty(data.Samples(null!, new(), 0, 4, torch.CPU));

        var batches = data.ValidationBatches(3, 2).ToList();
        Assert.Equal(3, batches.Count);
        var all = data.Task.HeldOut(6).ForNextToken();
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(new long[] { 2, data.InputLength }, batches[i].Input.shape);
            Assert.True(batches[i].Input.eq(all.Item1.narrow(0, 2 * i, 2)).all().item<bool>(), $"batch {i}");
            Assert.True(batches[i].LossMask!.eq(all.Item3.narrow(0, 2 * i, 2)).all().item<bool>(), $"mask {i}");
        }
        var train = data.TrainBatch(4, new Random(2));
        Assert.Equal(new long[] { 4, data.InputLength }, train.Target.shape);
        Assert.NotNull(train.LossMask);
    }

    // ---------------- Samples, null and boundary cases of the data adapters ----------------

    [Fact]
    public void SyntheticSamplesShowPromptAnswerAndVerdictPerProblem()
    {
        TorchRuntime.EnsureLoaded();
        using var data = TrainingFixtures.CopyTask();
        using var model = ModelFactory.CreateLanguageModel(TrainingFixtures.TinyDecoder());
        model.eval();
        var lines = data.Samples(model, data.DefaultSampling(1), 3, 0, torch.CPU);
        Assert.Equal(3, lines.Count);
        var examples = data.Task.HeldOut(3);
        for (int b = 0; b < 3; b++)
        {
            var prompt = data.Task.Render(examples.Tokens[b].narrow(0, 0, data.Task.PromptLength));
            var expected = examples.Tokens[b].narrow(0, data.Task.PromptLength, data.Task.AnswerLength).data<long>().ToArray();
            Assert.StartsWith(prompt + " ", lines[b]);
            // An untrained model: the verdict is a cross naming the expected answer (or a tick when it happens to be right).
            Assert.True(lines[b].EndsWith($"  ✗ (expected {data.Task.Render(expected)})") || lines[b].EndsWith("  ✓"), lines[b]);
        }
        Assert.Contains(lines, l => l.Contains('✗'));
    }

    /// <summary>Predicts the next token of known sequences exactly: every greedy answer is right.</summary>
    sealed class Oracle(Tensor sequences, int vocab) : TransformerForge.Generation.ILanguageModel
    {
        public int NumTokens => vocab;
        public int MaxSeqLen => (int)sequences.shape[1];
        public Tensor Logits(Tensor tokens, Tensor? mask = null, TransformerForge.Generation.IDecodingState? state = null)
        {
            var t = tokens.shape[1];
            return nn.functional.one_hot(sequences.narrow(1, 1, t), vocab).to_type(ScalarType.Float32);
        }
        public TransformerForge.Generation.IDecodingState? CreateDecodingState() => null;
    }

    [Fact]
    public void SyntheticSamplesTickAnswersThatAreRight()
    {
        TorchRuntime.EnsureLoaded();
        using var data = TrainingFixtures.CopyTask();
        var examples = data.Task.HeldOut(2);
        var lines = data.Samples(new Oracle(examples.Tokens, data.VocabSize), data.DefaultSampling(1), 2, 0, torch.CPU);
        Assert.Equal(2, lines.Count);
        for (int b = 0; b < 2; b++)
        {
            var prompt = data.Task.Render(examples.Tokens[b].narrow(0, 0, data.Task.PromptLength));
            var answer = data.Task.Render(examples.Tokens[b].narrow(0, data.Task.PromptLength, data.Task.AnswerLength).data<long>().ToArray());
            Assert.Equal($"{prompt} {answer}  ✓", lines[b]);
        }
    }

    [Fact]
    public void TextWindowDataChecksItsInputsKeepsAGivenSpecAndSamplesOnOneLine()
    {
        TorchRuntime.EnsureLoaded();
        Assert.Throws<ArgumentNullException>(() => new TextWindowData(null!, 4));
        using var dir = new TempDir();
        // Every 10 characters a CR, LF and TAB: samples must show them as one line.
        var text = string.Concat(Enumerable.Repeat("ab\r\ncd\tef\n", 100));
        var file = dir.File("c.txt", text);
        var bytes = Tokenizers.Create("bytes");
        var options = new TextDatasetOptions(CacheDirectory: Path.Combine(dir.Path, "cache"));
        var spec = TrainingDataSpec.ForText("elsewhere.txt", "bytes", 9);
        using var data = new TextWindowData(TextDataset.Open(file, bytes, options), 9, spec);
        Assert.Same(spec, data.Spec);
        Assert.Equal(Path.GetFullPath(file), new TextWindowData(TextDataset.Open(file, bytes, options), 1).Spec.Path);

        using var model = ModelFactory.CreateLanguageModel(TrainingFixtures.TinyDecoder(numTokens: 256));
        model.eval();
        var lines = data.Samples(model, data.DefaultSampling(3), 3, 4, torch.CPU);
        Assert.Equal(3, lines.Count);
        // The prompts: windows of min(32, seq_len) = 9 tokens of the validation split, drawn from the seed after ValidationSeed.
        using var prompts = data.Dataset.SampleBatch(DataSplit.Validation, 3, 8, new Random(TextWindowData.ValidationSeed + 1));
        Assert.Equal(new long[] { 3, 9 }, prompts.shape);
        for (int b = 0; b < 3; b++)
        {
            var prompt = bytes.Decode(prompts[b].data<long>().ToArray().Select(t => (int)t));
            var shown = prompt.Replace("\r", "").Replace("\n", "⏎").Replace("\t", "⇥");
            Assert.StartsWith(shown + " ⟶ ", lines[b]);
            Assert.DoesNotContain('\n', lines[b]);
            Assert.DoesNotContain('\r', lines[b]);
            Assert.DoesNotContain('\t', lines[b]);
        }
        Assert.Contains(lines, l => l.Contains('⏎'));
        Assert.Contains(lines, l => l.Contains('⇥'));
        Assert.Equal(0.8, data.DefaultSampling(3).Temperature);
        Assert.Equal(3, data.DefaultSampling(3).Seed);
    }

    [Fact]
    public void TextWindowsOfOneTokenAndEqualSplitsNameTheTrainingSplit()
    {
        using var dir = new TempDir();
        var file = dir.File("c.txt", Text(100));
        var half = new TextDatasetOptions(CacheDirectory: Path.Combine(dir.Path, "cache"), TrainFraction: 0.5);
        var bytes = Tokenizers.Create("bytes");
        using (var one = new TextWindowData(TextDataset.Open(file, bytes, half), 1))
            Assert.Equal(1, one.InputLength);
        var e = Assert.Throws<ArgumentException>(() => new TextWindowData(TextDataset.Open(file, bytes, half), 50));
        Assert.Contains("its training split has only 50 tokens", e.Message);
        using (new TextWindowData(TextDataset.Open(file, bytes, half), 49)) { }
    }
}

/// <summary>Reads the global torch RNG, so it runs alone.</summary>
[Collection(SerialCollection.Name)]
public class MixedPrecisionRngTests
{
    [Fact]
    public void BuildingTheWorkingCopyLeavesTheGlobalRngWhereItWas()
    {
        TorchRuntime.EnsureLoaded();
        var config = TrainingFixtures.TinyDecoder();
        using var model = ModelFactory.CreateLanguageModel(config);
        using var adam = new AdamW(ParameterGroups.Split(model, 0.1));
        torch.random.manual_seed(123);
        using var expected = torch.rand(5);
        torch.random.manual_seed(123);
        using var mixed = new MixedPrecision(config, adam, ScalarType.BFloat16, torch.CPU);
        using var got = torch.rand(5);
        Assert.True(got.eq(expected).all().item<bool>(), "building the working copy advanced the global RNG");
    }
}
