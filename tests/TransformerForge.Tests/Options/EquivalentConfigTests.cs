using System.Text.Json.Nodes;
using TransformerForge.Parity;
using TransformerForge.Tests.Support;

namespace TransformerForge.Tests.Options;

/// <summary>
/// Options that spell a fixture's model another way: the fixture, with its configuration rewritten, must still match
/// the Python reference (same weights, same outputs, float64 and float32).
/// </summary>
public class EquivalentConfigTests
{
    /// <summary>Runs fixture <paramref name="name"/> with its <c>model</c> rewritten by <paramref name="rewrite"/>.</summary>
    static ParityResult RunRewritten(string name, Action<JsonObject> rewrite)
    {
        var tmp = Directory.CreateTempSubdirectory("tforge-variant-").FullName;
        try
        {
            foreach (var f in Directory.GetFiles(TestPaths.Fixture("xtransformers", name))) File.Copy(f, Path.Combine(tmp, Path.GetFileName(f)));
            var path = Path.Combine(tmp, "case.json");
            var c = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            rewrite(c["model"]!.AsObject());
            File.WriteAllText(path, c.ToJsonString());
            return ParityRunner.Run(tmp, name + " (rewritten)");
        }
        finally { Directory.Delete(tmp, true); }
    }

    static void AssertMatches(ParityResult r) => Assert.True(r.Pass, r.ToString());

    [Fact]
    [Proves("AttentionLayers.causal")]
    public void CausalAttentionLayersIsADecoder()
    {
        AssertMatches(RunRewritten("decoder_base", m =>
        {
            var layers = m["attn_layers"]!.AsObject();
            layers["type"] = "AttentionLayers";
            layers["causal"] = true;
        }));
        // Without causal the same weights give other numbers.
        Assert.False(RunRewritten("decoder_base", m => m["attn_layers"]!["type"] = "AttentionLayers").Pass);
    }

    [Fact]
    [Proves("AttentionLayers.only_cross")]
    public void OnlyCrossEncoderIsACrossAttender()
    {
        AssertMatches(RunRewritten("cross_attender", m =>
        {
            m["type"] = "Encoder";
            m["cross_attend"] = true;
            m["only_cross"] = true;
        }));
    }

    [Fact]
    [Proves("AttentionLayers.alibi_pos_emb")]
    public void AlibiPosEmbIsAnotherNameForAlibiPosBias()
    {
        AssertMatches(RunRewritten("alibi", m =>
        {
            var layers = m["attn_layers"]!.AsObject();
            layers.Remove("alibi_pos_bias");
            layers["alibi_pos_emb"] = true;
        }));
    }

    [Fact]
    [Proves("ContinuousTransformerWrapper.emb_dim")]
    public void ContinuousEmbDimIsAcceptedAndUnusedAsInXTransformers020()
    {
        // x-transformers 0.20's ContinuousTransformerWrapper takes emb_dim and never uses it: same weights, same numbers.
        AssertMatches(RunRewritten("continuous", m => m["emb_dim"] = 24));
    }

    [Fact]
    [Proves("XTransformer.enc_num_memory_tokens")]
    public void EncoderMemoryTokensAreTheEncodersMemoryTokens()
    {
        // memory_tokens is an Encoder TransformerWrapper with 3 memory tokens; as XTransformer's encoder it must load the
        // same weights (under encoder.) and give the same output.
        var dir = TestPaths.Fixture("xtransformers", "memory_tokens");
        var x = Build.Model<TransformerForge.Models.XTransformer>("""
            { "type": "XTransformer", "dim": 32, "enc_num_tokens": 64, "enc_max_seq_len": 32, "enc_depth": 2, "enc_heads": 4,
              "enc_num_memory_tokens": 3, "dec_num_tokens": 64, "dec_max_seq_len": 32, "dec_depth": 1, "dec_heads": 4 }
            """, perturbSeed: null);
        // The fixture's weights are float32; the model is float64 (loading is dtype-exact, so widen them first).
        var weights = Path.Combine(dir, "weights.safetensors");
        TransformerForge.IO.StateDict.Load(x.Encoder, TransformerForge.IO.SafeTensorsTorch.Load(weights)
            .ToDictionary(w => w.Key, w => w.Value.to_type(TorchSharp.torch.ScalarType.Float64)), weights);
        var io = TransformerForge.IO.SafeTensorsTorch.Load(Path.Combine(dir, "io.safetensors"));
        using var _ = TorchSharp.torch.no_grad();
        var output = x.Encoder.Forward(io["in.x"], mask: io["in.mask"]).Output;
        Assert.True(Build.MaxDiff(output, io["f64.out"]) < 1e-12);
    }
}
