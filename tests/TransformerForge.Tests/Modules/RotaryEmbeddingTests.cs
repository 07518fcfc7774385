using System.Text.Json;
using TorchSharp;
using TransformerForge.Config;
using TransformerForge.IO;
using TransformerForge.Models;
using TransformerForge.Modules;
using TransformerForge.Parity;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Modules;

/// <summary>
/// Rotary buffers as x-transformers makes them, and rotation of low-precision activations. Parity loads the fixtures'
/// buffers with their weights, so only a freshly built model shows the formulas that fill <c>inv_freq</c> and xPos's <c>scale</c>.
/// </summary>
public class RotaryEmbeddingTests
{
    [Fact]
    public void FreshRotaryBuffersEqualThoseOfTheFixtures()
    {
        int compared = 0;
        var roots = new[] { TestPaths.Fixture("xtransformers"), TestPaths.Fixture("xtransformers-1.40"), TestPaths.RepoFixture("xtransformers-1.40-extra") };
        foreach (var dir in roots.SelectMany(ParityRunner.FindCases))
        {
            var saved = SafeTensorsTorch.Load(Path.Combine(dir, "weights.safetensors"));
            try
            {
                if (!saved.Keys.Any(k => k.Contains("rotary_pos_emb."))) continue;
                using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "case.json")));
                var version = XTransformersVersions.FromSource(doc.RootElement.GetProperty("source").GetString());
                TransformerForge.Runtime.TorchRuntime.EnsureLoaded();
                using var model = (nn.Module)ModelFactory.Create(ModelConfig.FromJson(doc.RootElement.GetProperty("model"), version));
                foreach (var (name, buffer) in model.named_buffers().Where(b => b.name.Contains("rotary_pos_emb.")))
                {
                    var expected = saved[name].to_type(ScalarType.Float64);
                    double err = (buffer.to_type(ScalarType.Float64) - expected).abs().max().item<double>();
                    Assert.True(err < 1e-7, $"{Path.GetFileName(dir)}: {name} differs by {err}");
                    compared++;
                }
            }
            finally { foreach (var t in saved.Values) t.Dispose(); }
        }
        // inv_freq in every rotary case, and xPos's scale in rotary_xpos_mask.
        Assert.True(compared >= 6, $"{compared} buffers compared");
    }

    [Fact]
    public void LowPrecisionActivationsAreRotatedByFloat32Angles()
    {
        // Angles of a position in the thousands need float32: bfloat16 keeps 8 bits, so 3000 rad would be off by up to 8.
        TransformerForge.Runtime.TorchRuntime.EnsureLoaded();
        using var rotary = new RotaryEmbedding(16);
        var freqs = rotary.Forward(3008).narrow(2, 3000, 8);                 // float32 [1, 1, 8, 16]
        var t = randn(1, 2, 8, 16, generator: new Generator(3));
        var exact = RotaryEmbedding.Apply(t.to_type(ScalarType.Float64), freqs.to_type(ScalarType.Float64));
        var low = RotaryEmbedding.Apply(t.to_type(ScalarType.BFloat16), freqs).to_type(ScalarType.Float64);
        double err = (low - exact).abs().max().item<double>();
        Assert.True(err < 0.05, $"bfloat16 rotation off by {err}");
    }
}
