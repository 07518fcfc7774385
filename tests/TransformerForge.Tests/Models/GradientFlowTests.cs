using System.Text.Json;
using TorchSharp;
using TransformerForge.Parity;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Models;

/// <summary>
/// Every option trains: for each x-transformers fixture (one per option), one backward pass from the fixture's
/// inputs reaches every parameter, and one optimizer step changes each of them.
/// </summary>
public class GradientFlowTests
{
    /// <summary>Parameters x-transformers creates but never uses in that call (so no gradient can reach them).</summary>
    static readonly Dictionary<string, string[]> Unused = new()
    {
        // Post-norm applies each layer's norm after its residual, except the last layer's (the wrapper's norm follows).
        ["post_norm"] = new[] { "attn_layers.layers.3.0.weight", "attn_layers.layers.3.0.bias" },
        ["residual_attn_postnorm"] = new[] { "attn_layers.layers.3.0.weight", "attn_layers.layers.3.0.bias" },
        // XTransformer's encoder is a TransformerWrapper used for its embeddings only; its logits layer exists but is unused.
        ["xtransformer"] = new[] { "encoder.to_logits.weight", "encoder.to_logits.bias" },
        ["xtransformer_cross_residual"] = new[] { "encoder.to_logits.weight", "encoder.to_logits.bias" },
    };

    public static TheoryData<string> Cases() => TestPaths.XTransformersCases();

    [Theory]
    [MemberData(nameof(Cases))]
    public void OneStepReachesAndChangesEveryParameter(string name)
    {
        var dir = TestPaths.Fixture("xtransformers", name);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "case.json")));
        var call = CaseKinds.Prepare(dir, doc.RootElement);
        var (model, outputs) = call(ScalarType.Float32, CPU);
        model.train();

        var loss = outputs.Values.Select(o => o.square().mean()).Aggregate((a, b) => a + b);
        loss.backward();

        var skip = Unused.GetValueOrDefault(name, Array.Empty<string>());
        var parameters = model.named_parameters().Where(p => !skip.Contains(p.name)).ToList();
        Assert.NotEmpty(parameters);
        var before = parameters.ToDictionary(p => p.name, p => p.parameter.detach().clone());
        foreach (var (pname, p) in parameters)
        {
            Assert.True(p.grad is not null, $"{name}: no gradient reached {pname}");
            Assert.True(p.grad!.abs().sum().item<float>() > 0, $"{name}: zero gradient for {pname}");
        }
        using var opt = optim.Adam(model.parameters(), lr: 1e-3);
        opt.step();
        foreach (var (pname, p) in parameters)
            Assert.False(p.detach().eq(before[pname]).all().item<bool>(), $"{name}: {pname} did not change after a step");
    }
}
