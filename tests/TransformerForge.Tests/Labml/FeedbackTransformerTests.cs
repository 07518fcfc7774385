using TorchSharp;
using TorchSharp.Modules;
using TransformerForge.Generation;
using TransformerForge.Models;
using TransformerForge.Parity;
using TransformerForge.Tests.Support;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Labml;

public class FeedbackTransformerTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void GradientsReachEveryParameter(bool sharedKeyValues)
    {
        manual_seed(11);
        using var model = new FeedbackLanguageModel(numTokens: 13, dim: 16, heads: 2, ffInnerDim: 32, depth: 3, sharedKeyValues);
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
        manual_seed(5);
        using var model = new FeedbackTransformer(dim: 8, heads: 2, ffInnerDim: 16, depth: 2, sharedKeyValues, maxMemory: 128);
        model.to(ScalarType.Float64);
        // Perturbed as the fixtures are: the position terms (zero at the start) and memory weights (equal) take part.
        Weights.Perturb(model);
        var x = randn(2, 70, 8, dtype: ScalarType.Float64);
        var weights = randn(2, 70, 8, dtype: ScalarType.Float64);

        var cached = model.forward(x);
        (cached * weights).sum().backward();
        var cachedGradients = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        model.zero_grad();

        var recomputed = RecomputingForward(model, x);
        (recomputed * weights).sum().backward();

        Assert.True(ParityRunner.RelativeError(cached, recomputed) <= 1e-12);
        foreach (var (name, parameter) in model.named_parameters())
        {
            var error = ParityRunner.RelativeError(cachedGradients[name], parameter.grad!);
            Assert.True(error <= 1e-10, $"{name}: gradient differs by {error:E3}");
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void StepByStepEqualsWholeSequence(bool sharedKeyValues)
    {
        manual_seed(9);
        using var model = new FeedbackLanguageModel(numTokens: 11, dim: 16, heads: 4, ffInnerDim: 32, depth: 2, sharedKeyValues);
        model.to(ScalarType.Float64);
        Weights.Perturb(model);
        model.eval();
        using var _ = no_grad();
        var tokens = randint(11, [3, 10], dtype: ScalarType.Int64);

        var whole = model.forward(tokens);

        using var memory = model.NewMemory();
        var steps = Enumerable.Range(0, 10).Select(t => model.Step(tokens[.., t], memory)).ToArray();
        Assert.Equal(10, memory.Length);
        Assert.True(ParityRunner.RelativeError(stack(steps, dim: 1), whole) <= 1e-12);

        // Continuing a memory over chunks (ILanguageModel with a decoding state) is the same as one pass.
        using var state = model.CreateDecodingState();
        var chunked = cat([model.Logits(tokens[.., ..4], state: state), model.Logits(tokens[.., 4..], state: state)], 1);
        Assert.True(ParityRunner.RelativeError(chunked, whole) <= 1e-12);
    }

    /// <summary>Left padding, hidden by the mask, leaves every sequence's outputs as they are without it.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LeftPaddingIsInvisible(bool sharedKeyValues)
    {
        manual_seed(21);
        using var model = new FeedbackLanguageModel(numTokens: 11, dim: 16, heads: 4, ffInnerDim: 32, depth: 2, sharedKeyValues);
        model.to(ScalarType.Float64);
        Weights.Perturb(model);
        model.eval();
        using var _ = no_grad();
        var shorter = randint(1, 11, [1, 5], dtype: ScalarType.Int64);
        var longer = randint(1, 11, [1, 8], dtype: ScalarType.Int64);

        var batch = cat([cat([zeros(1, 3, dtype: ScalarType.Int64), shorter], 1), longer], 0);
        var mask = batch.ne(0);
        mask[1].fill_(true);
        var padded = model.Logits(batch, mask);

        Assert.True(ParityRunner.RelativeError(padded[0, 3..], model.forward(shorter)[0]) <= 1e-12);
        Assert.True(ParityRunner.RelativeError(padded[1], model.forward(longer)[0]) <= 1e-12);
    }

    /// <summary>Generation with the memory as cache (one step per token, each in its own dispose scope) = recomputing.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void CachedGenerationEqualsRecomputedGeneration(bool sharedKeyValues)
    {
        manual_seed(4);
        using var model = new FeedbackLanguageModel(numTokens: 17, dim: 16, heads: 2, ffInnerDim: 32, depth: 2, sharedKeyValues);
        Weights.Perturb(model);
        var prompt = randint(17, [2, 3], dtype: ScalarType.Int64);

        var cached = Autoregressive.Generate(model, prompt, 12, new SamplingOptions { Greedy = true });
        var recomputed = Autoregressive.Generate(model, prompt, 12, new SamplingOptions { Greedy = true, UseCache = false });

        Assert.Equal(new long[] { 2, 12 }, cached.shape);
        Assert.Equal(recomputed.data<long>().ToArray(), cached.data<long>().ToArray());
    }

    /// <summary>Truncated backpropagation through time: a detached memory carries values, not gradients, forward.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DetachedMemoryCarriesOverSegments(bool sharedKeyValues)
    {
        manual_seed(8);
        using var model = new FeedbackLanguageModel(numTokens: 7, dim: 8, heads: 2, ffInnerDim: 16, depth: 2, sharedKeyValues);
        model.to(ScalarType.Float64);
        Weights.Perturb(model);
        var tokens = randint(7, [2, 12], dtype: ScalarType.Int64);
        using var state = model.NewMemory();
        model.Logits(tokens[.., ..5], state: state).sum().backward();
        state.Detach();
        model.zero_grad();
        var second = model.Logits(tokens[.., 5..], state: state);
        second.sum().backward();

        using (no_grad())
            Assert.True(ParityRunner.RelativeError(second, model.forward(tokens)[.., 5..]) <= 1e-12);
        Assert.All(model.named_parameters(), p => Assert.True(p.parameter.grad is not null, p.name));
    }

    [Fact]
    public void LabmlNamesMapOntoParameters()
    {
        Assert.Equal("memory_weights", FeedbackTransformer.FromLabmlName("weights"));
        Assert.Equal("memory_key.weight", FeedbackTransformer.FromLabmlName("key.linear.weight"));
        Assert.Equal("layers.1.attn.value.bias", FeedbackTransformer.FromLabmlName("layers.1.attn.value.linear.bias"));
        Assert.Equal("layers.0.attn.key_pos_bias", FeedbackTransformer.FromLabmlName("layers.0.attn.key_pos_bias"));
        Assert.Equal("embedding.weight", FeedbackLanguageModel.FromLabmlName("src_embed.weight"));
        Assert.Equal("transformer.memory_weights", FeedbackLanguageModel.FromLabmlName("transformer.weights"));
    }

    /// <summary>labml's forward loops, written out: the memory is stacked and projected again at every step.</summary>
    private static Tensor RecomputingForward(FeedbackTransformer model, Tensor x)
    {
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module);
        var memory = new List<Tensor>();
        var outputs = new List<Tensor>();
        foreach (var position in x.unbind(1))
        {
            var h = position;
            var layerOutputs = new List<Tensor> { h };
            var memoryTensor = memory.Count > 0 ? stack(memory) : null;
            foreach (var layer in model.Layers)
            {
                Tensor? keys = null, values = null;
                if (memoryTensor is not null)
                {
                    if (model.SharedKeyValues)
                    {
                        var shape = new long[] { memoryTensor.shape[0], memoryTensor.shape[1], model.Heads, model.DimHead };
                        keys = ((Linear)modules["memory_key"]).forward(memoryTensor).view(shape);
                        values = ((Linear)modules["memory_value"]).forward(memoryTensor).view(shape);
                    }
                    else
                    {
                        keys = layer.Attention.ProjectKey(memoryTensor);
                        values = layer.Attention.ProjectValue(memoryTensor);
                    }
                }
                h = layer.Forward(h, keys, values);
                layerOutputs.Add(h);
            }
            memory.Add(einsum("lbd,l->bd", stack(layerOutputs), model.MemoryWeights.softmax(0)));
            outputs.Add(h);
        }
        return model.Norm.forward(stack(outputs, dim: 1));
    }
}
