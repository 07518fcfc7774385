using TorchSharp;
using TorchSharp.Modules;
using TransformerForge.Models;
using TransformerForge.Runtime;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Labml;

public class FeedbackTransformerTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("feedback_transformer", false, ScalarType.Float64, 1e-9)]
    [InlineData("feedback_transformer", false, ScalarType.Float32, 1e-4)]
    [InlineData("feedback_transformer_kv", true, ScalarType.Float64, 1e-9)]
    [InlineData("feedback_transformer_kv", true, ScalarType.Float32, 1e-4)]
    public void MatchesLabml(string caseName, bool sharedKeyValues, ScalarType dtype, double tolerance)
    {
        TorchRuntime.EnsureLoaded();
        var fixture = LabmlFixture.Load(caseName);
        using var model = new FeedbackTransformer(dModel: 32, heads: 4, dFf: 64, nLayers: 2, sharedKeyValues);
        model.to(dtype);
        model.load_state_dict(fixture.MappedWeights(FeedbackTransformer.FromLabmlName, dtype), strict: true);
        model.eval();

        using var _ = no_grad();
        var actual = model.forward(fixture.Input(dtype));

        var expected = fixture.Expected(dtype);
        var error = LabmlFixture.MaxRelativeError(actual, expected);
        output.WriteLine($"{caseName} {dtype}: max relative error {error:E3} " +
                         $"(largest element-wise {LabmlFixture.MaxElementwiseRelativeError(actual, expected):E3})");
        Assert.True(error <= tolerance, $"max relative error {error:E3} > {tolerance:E0}");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void GradientsReachEveryParameter(bool sharedKeyValues)
    {
        TorchRuntime.EnsureLoaded();
        manual_seed(11);
        using var model = new FeedbackLanguageModel(numTokens: 13, dModel: 16, heads: 2, dFf: 32, nLayers: 3, sharedKeyValues);
        var tokens = randint(13, [2, 9], dtype: ScalarType.Int64);

        var logits = model.forward(tokens);
        Assert.Equal(new long[] { 2, 9, 13 }, logits.shape);
        var loss = nn.functional.cross_entropy(logits[.., ..^1].reshape(-1, 13), tokens[.., 1..].reshape(-1));
        loss.backward();

        foreach (var (name, parameter) in model.named_parameters())
        {
            Assert.True(parameter.grad is not null, $"{name} has no gradient");
            var magnitude = parameter.grad!.abs().sum().item<float>();
            output.WriteLine($"{name}: |grad| sum {magnitude:E3}");
            Assert.True(magnitude > 0, $"{name} has an all-zero gradient");
        }
    }

    /// <summary>
    /// The model reuses cached keys and values through <c>AppendOnlyStack</c>'s custom autograd; a literal
    /// transcription of labml's loops (stack the whole memory and project it again at every step) must give the
    /// same outputs and the same gradient for every parameter. 70 steps also take the stack past its first growth.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void CachedMemoryGivesSameOutputsAndGradientsAsRecomputingIt(bool sharedKeyValues)
    {
        TorchRuntime.EnsureLoaded();
        manual_seed(5);
        using var model = new FeedbackTransformer(dModel: 8, heads: 2, dFf: 16, nLayers: 2, sharedKeyValues, maxMemory: 128);
        model.to(ScalarType.Float64);
        // Non-zero position terms so that they take part.
        using (no_grad())
            foreach (var (name, parameter) in model.named_parameters())
                if (name.Contains("pos_")) parameter.normal_(0, 0.1);
        var x = randn(2, 70, 8, dtype: ScalarType.Float64);
        var weights = randn(2, 70, 8, dtype: ScalarType.Float64);

        var cached = model.forward(x);
        (cached * weights).sum().backward();
        var cachedGradients = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        model.zero_grad();

        var recomputed = RecomputingForward(model, x);
        (recomputed * weights).sum().backward();

        Assert.True(LabmlFixture.MaxRelativeError(cached, recomputed) <= 1e-12);
        foreach (var (name, parameter) in model.named_parameters())
        {
            var error = LabmlFixture.MaxRelativeError(cachedGradients[name], parameter.grad!);
            Assert.True(error <= 1e-10, $"{name}: gradient differs by {error:E3}");
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void StepByStepGenerationEqualsWholeSequence(bool sharedKeyValues)
    {
        TorchRuntime.EnsureLoaded();
        manual_seed(9);
        using var model = new FeedbackLanguageModel(numTokens: 11, dModel: 16, heads: 4, dFf: 32, nLayers: 2, sharedKeyValues);
        model.to(ScalarType.Float64).eval();
        using var _ = no_grad();
        var tokens = randint(11, [3, 10], dtype: ScalarType.Int64);

        var whole = model.forward(tokens);

        using var memory = model.NewMemory();
        var steps = Enumerable.Range(0, 10).Select(t => model.Step(tokens[.., t], memory)).ToArray();
        Assert.Equal(10, memory.Length);
        Assert.True(LabmlFixture.MaxRelativeError(stack(steps, dim: 1), whole) <= 1e-12);

        // Continuing a memory over chunks is the same as one pass.
        using var chunked = model.Transformer.NewMemory();
        var inputs = randn(3, 10, 16, dtype: ScalarType.Float64);
        var firstHalf = model.Transformer.Forward(inputs[.., ..4], chunked);
        var secondHalf = model.Transformer.Forward(inputs[.., 4..], chunked);
        Assert.True(LabmlFixture.MaxRelativeError(cat([firstHalf, secondHalf], 1), model.Transformer.forward(inputs)) <= 1e-12);
    }

    /// <summary>labml's forward loops, written out: the memory is stacked and projected again at every step.</summary>
    private static Tensor RecomputingForward(FeedbackTransformer model, Tensor x)
    {
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module);
        var heads = model.Heads;
        var memory = new List<Tensor>();
        var outputs = new List<Tensor>();
        foreach (var position in x.unbind(1))
        {
            var h = position;
            var layerOutputs = new List<Tensor> { h };
            var memoryTensor = memory.Count > 0 ? stack(memory) : null;
            for (var i = 0; i < model.Layers.Count; i++)
            {
                var layer = model.Layers[i];
                Tensor? keys = null, values = null;
                if (memoryTensor is not null)
                {
                    if (model.SharedKeyValues)
                    {
                        var shape = new long[] { memoryTensor.shape[0], memoryTensor.shape[1], heads, model.HeadDim };
                        keys = ((Linear)modules["memory_key"]).forward(memoryTensor).view(shape);
                        values = ((Linear)modules["memory_value"]).forward(memoryTensor).view(shape);
                    }
                    else
                    {
                        keys = layer.Attention.ProjectKey(memoryTensor);
                        values = layer.Attention.ProjectValue(memoryTensor);
                    }
                }
                h = layer.forward(h, keys, values);
                layerOutputs.Add(h);
            }
            memory.Add(einsum("lbd,l->bd", stack(layerOutputs), model.MemoryWeights.softmax(0)));
            outputs.Add(h);
        }
        return model.Norm.forward(stack(outputs, dim: 1));
    }
}
