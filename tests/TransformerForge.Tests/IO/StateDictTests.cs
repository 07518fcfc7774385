using TorchSharp;
using TransformerForge.Config;
using TransformerForge.IO;
using TransformerForge.Models;
using static TorchSharp.torch;

namespace TransformerForge.Tests.IO;

/// <summary>Loading x-transformers weights is strict: every mismatch is listed by name.</summary>
public class StateDictTests
{
    static TransformerWrapper Decoder() => new((TransformerWrapperConfig)ModelConfig.Parse(
        """{ "type": "TransformerWrapper", "num_tokens": 64, "max_seq_len": 32, "attn_layers": { "type": "Decoder", "dim": 32, "depth": 2, "heads": 4 } }"""));

    [Fact]
    public void LoadsTheFixtureStateDictByItsPythonNames()
    {
        var m = Decoder();
        StateDict.Load(m, TestPaths.Fixture("xtransformers", "decoder_base", "weights.safetensors"));
        Assert.Contains(m.state_dict().Keys, k => k == "attn_layers.layers.0.1.to_q.weight");
    }

    [Fact]
    public void MissingUnexpectedAndMisshapenNamesAreListed()
    {
        var m = Decoder();
        var weights = SafeTensorsTorch.Load(TestPaths.Fixture("xtransformers", "decoder_base", "weights.safetensors"));
        weights.Remove("norm.weight");
        weights["attn_layers.layers.9.1.to_q.weight"] = zeros(4, 4);
        weights["to_logits.bias"] = zeros(3);
        var e = Assert.Throws<InvalidDataException>(() => StateDict.Load(m, weights, "test.safetensors"));
        Assert.Contains("test.safetensors", e.Message);
        Assert.Contains("missing 1: norm.weight", e.Message);
        Assert.Contains("unexpected 1: attn_layers.layers.9.1.to_q.weight", e.Message);
        Assert.Contains("to_logits.bias: model [64], file [3]", e.Message);
    }

    [Fact]
    public void ModelDirectoryRoundTripsAndNamesWhatIsMissing()
    {
        var m = Decoder();
        var dir = Path.Combine(Path.GetTempPath(), $"tforge-md-{Guid.NewGuid():N}");
        try
        {
            ModelDirectory.Save(dir, m.Config, m);
            var (config, loaded) = ModelDirectory.Load(dir);
            Assert.Equal(m.Config.ToJsonString(), config.ToJsonString());
            var x = randint(0, 64, new long[] { 1, 8 });
            using (no_grad()) Assert.Equal(0f, (m.forward(x) - ((TransformerWrapper)loaded).forward(x)).abs().max().item<float>());
            File.Delete(Path.Combine(dir, ModelDirectory.WeightsFile));
            Assert.Contains("model.safetensors is missing", Assert.Throws<FileNotFoundException>(() => ModelDirectory.Load(dir)).Message);
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    /// <summary>
    /// The file's bytes of F32 weights, relabelled I32 in the header: a cast would load different numbers (the issue
    /// measured logits moving by 1.8). The dtype must match exactly.
    /// </summary>
    [Fact]
    public void WeightsOfTheWrongDTypeAreRefusedNotCast()
    {
        var m = Decoder();
        var file = SafeTensorsFile.Read(TestPaths.Fixture("xtransformers", "decoder_base", "weights.safetensors"));
        var relabelled = file.Tensors.Select(t => t.Name == "norm.weight" ? t with { DType = SafeTensorDType.I32 } : t).ToList();
        var tensors = SafeTensorsTorch.ToTensors(SafeTensorsFile.Parse(SafeTensorsWriter.ToBytes(relabelled)));
        try
        {
            var e = Assert.Throws<InvalidDataException>(() => StateDict.Load(m, tensors, "relabelled.safetensors"));
            Assert.Contains("dtype mismatch 1: norm.weight: model F32, file I32", e.Message);
        }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }

    [Theory]
    [InlineData(ScalarType.Float16, "F16")]
    [InlineData(ScalarType.BFloat16, "BF16")]
    public void HalfPrecisionWeightsNeedTheExplicitUpcastPolicyWhichReportsThem(ScalarType half, string name)
    {
        var m = Decoder();
        var weights = SafeTensorsTorch.Load(TestPaths.Fixture("xtransformers", "decoder_base", "weights.safetensors"));
        var halves = weights.ToDictionary(kv => kv.Key, kv => kv.Value.to_type(half));
        try
        {
            var refused = Assert.Throws<InvalidDataException>(() => StateDict.Load(m, halves, "half.safetensors"));
            Assert.Contains($"model F32, file {name}", refused.Message);
            Assert.Contains("explicit upcast", refused.Message);

            var report = StateDict.Load(m, halves, "half.safetensors", WeightDTypePolicy.UpcastHalfToFloat32);
            Assert.Equal(weights.Count, report.Upcast.Count);
            Assert.Equal($"upcast {weights.Count} tensors from {name} to F32", report.Summary);
            using var _ = no_grad();
            var expected = halves["norm.weight"].to_type(ScalarType.Float32);
            Assert.True(m.state_dict()["norm.weight"].eq(expected).all().item<bool>());
        }
        finally
        {
            foreach (var t in weights.Values) t.Dispose();
            foreach (var t in halves.Values) t.Dispose();
        }
    }

    [Fact]
    public void MatchingWeightsReportNothing()
    {
        var m = Decoder();
        var report = StateDict.Load(m, TestPaths.Fixture("xtransformers", "decoder_base", "weights.safetensors"));
        Assert.Empty(report.Upcast);
        Assert.Null(report.Summary);
    }
}
