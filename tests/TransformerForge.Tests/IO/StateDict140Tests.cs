using System.Text.Json.Nodes;
using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Generation;
using TransformerForge.IO;
using TransformerForge.Models;
using TransformerForge.Tests.Data;
using static TorchSharp.torch;

namespace TransformerForge.Tests.IO;

/// <summary>
/// An x-transformers 1.40 <c>state_dict</c> saved as safetensors loads with its own names: as weights for a 1.40
/// configuration, and as a model directory (config.json with the version key beside the file) that the library and
/// <c>tforge generate</c> open like any checkpoint. The file is the shared fixture's, written from PyTorch.
/// </summary>
public class StateDict140Tests
{
    const string Case = "m_gqa_kv_heads";

    static string Weights => TestPaths.Fixture("xtransformers-1.40", Case, "weights.safetensors");

    /// <summary>The fixture's model JSON with the version key its <c>source</c> implies.</summary>
    static JsonObject ModelJson(string version = "1.40")
    {
        var model = JsonNode.Parse(File.ReadAllText(TestPaths.Fixture("xtransformers-1.40", Case, "case.json")))!["model"]!.AsObject();
        model[XTransformersVersions.Key] = version;
        return model;
    }

    [Fact]
    public void LoadsByTheNamesOf140()
    {
        TransformerForge.Runtime.TorchRuntime.EnsureLoaded();
        using var m = ModelFactory.Create(ModelConfig.Parse(ModelJson().ToJsonString()));
        StateDict.Load(m, Weights);
        var names = m.state_dict().Keys.ToHashSet();
        Assert.Contains("token_emb.emb.weight", names);
        Assert.Contains("attn_layers.layers.0.0.0.gamma", names);
        Assert.Contains("attn_layers.final_norm.gamma", names);
        Assert.Equal(SafeTensorsFile.Read(Weights).Tensors.Select(t => t.Name).Order(StringComparer.Ordinal), names.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A020ModelNamesWhatItMisses()
    {
        // Without grouped heads the configuration is 0.20's too; its layout differs from the file's, name by name.
        TransformerForge.Runtime.TorchRuntime.EnsureLoaded();
        var model = ModelJson("0.20");
        model["attn_layers"]!.AsObject().Remove("attn_kv_heads");
        using var m = ModelFactory.Create(ModelConfig.Parse(model.ToJsonString()));
        var e = Assert.Throws<InvalidDataException>(() => StateDict.Load(m, Weights));
        Assert.Contains("unexpected", e.Message);
        Assert.Contains("attn_layers.final_norm.gamma", e.Message);
        Assert.Contains("missing", e.Message);
        Assert.Contains("norm.weight", e.Message);
    }

    [Fact]
    public void AModelDirectoryOfA140StateDictReproducesItsLogitsAndGeneratesWithItsCache()
    {
        using var tmp = new TempDir();
        var dir = Path.Combine(tmp.Path, "gqa-1.40");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, ModelDirectory.ConfigFile), ModelJson().ToJsonString());
        File.Copy(Weights, Path.Combine(dir, ModelDirectory.WeightsFile));

        var (config, model) = ModelDirectory.LoadLanguageModel(dir);
        using var _ = model;
        Assert.Equal(XTransformersVersion.V1_40, config.Version);
        model.eval();
        var io = SafeTensorsTorch.Load(TestPaths.Fixture("xtransformers-1.40", Case, "io.safetensors"));
        using (no_grad())
        {
            var expected = io["f32.out"];
            var relative = ((model.Logits(io["in.x"]) - expected).abs().max() / expected.abs().max()).item<float>();
            Assert.True(relative <= 1e-4, $"relative error {relative}");
        }

        var prompt = io["in.x"].narrow(1, 0, 4);
        var cached = Autoregressive.Generate(model, prompt, 12, new SamplingOptions { Greedy = true });
        var recomputed = Autoregressive.Generate(model, prompt, 12, new SamplingOptions { Greedy = true, UseCache = false });
        Assert.True(cached.eq(recomputed).all().item<bool>());
    }
}
