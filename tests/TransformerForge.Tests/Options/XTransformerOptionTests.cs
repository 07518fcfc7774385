using System.Text.Json.Nodes;
using TransformerForge.Config;
using TransformerForge.Tests.Support;

namespace TransformerForge.Tests.Options;

/// <summary>XTransformer routes every <c>enc_</c>/<c>dec_</c> attention-layers key to that side's layer stack, and only there.</summary>
public class XTransformerOptionTests
{
    const string Base = """
        { "type": "XTransformer", "dim": 32, "enc_num_tokens": 16, "enc_max_seq_len": 16, "enc_depth": 2, "enc_heads": 4, "enc_attn_dim_head": 32,
          "dec_num_tokens": 16, "dec_max_seq_len": 16, "dec_depth": 2, "dec_heads": 4, "dec_attn_dim_head": 32 }
        """;

    /// <summary>Keys XTransformer sets itself (or takes as its own <c>dim</c>).</summary>
    static readonly string[] Fixed = { "dim", "type", "causal", "cross_attend" };

    /// <summary>Values for keys whose default is null (no value to flip).</summary>
    static readonly Dictionary<string, JsonNode> Samples = new()
    {
        ["alibi_num_heads"] = 2, ["rotary_emb_dim"] = 40, ["custom_layers"] = new JsonArray("a", "f"), ["sandwich_coef"] = 1,
        ["par_ratio"] = 2, ["attn_sparse_topk"] = 3, ["attn_max_attend_past"] = 5, ["attn_kv_heads"] = 2,
    };

    /// <summary>A valid value other than <paramref name="defaultValue"/> for an option.</summary>
    static JsonNode NonDefault(string key, JsonNode? defaultValue) => defaultValue switch
    {
        null => Samples.TryGetValue(key, out var s) ? s.DeepClone()
            : throw new InvalidOperationException($"no sample value for '{key}' (default null): add one to Samples"),
        JsonValue v when v.TryGetValue<bool>(out var b) => !b,
        JsonValue v when v.TryGetValue<int>(out var i) => i + 1,
        JsonValue v when v.TryGetValue<double>(out var d) => Math.Round(d + 0.1, 10),
        _ => throw new InvalidOperationException($"no non-default value for '{key}' = {defaultValue.ToJsonString()}"),
    };

    public static TheoryData<string, string> RoutedKeys()
    {
        var data = new TheoryData<string, string>();
        foreach (var side in new[] { "enc_", "dec_" })
            foreach (var key in AttentionLayersConfig.Table.Keys.Concat(AttentionLayersConfig.Table.Aliases.Keys).Except(Fixed))
                data.Add(side, key);
        return data;
    }

    [Theory]
    [MemberData(nameof(RoutedKeys))]
    [Proves("XTransformer.enc_<attn_layers key>", "XTransformer.dec_<attn_layers key>")]
    public void AttentionLayersKeyReachesItsSideOnly(string side, string key)
    {
        var mainKey = AttentionLayersConfig.Table.Aliases.GetValueOrDefault(key, key);
        // A key of one x-transformers version only is tried in a configuration of that version.
        var version = AttentionLayersConfig.Table.VersionOnly(mainKey) ?? XTransformersVersion.V0_20;
        var versionDefaults = new AttentionLayersConfig { Version = version };
        var defaults = new JsonObject();
        AttentionLayersConfig.Table.Write(versionDefaults, versionDefaults, defaults, AttentionLayersConfig.Table.Keys.ToArray());
        var value = NonDefault(mainKey, defaults[mainKey]);

        var baseJson = JsonNode.Parse(Base)!.AsObject();
        if (version != XTransformersVersion.V0_20) baseJson[XTransformersVersions.Key] = version.JsonName();
        var json = baseJson.DeepClone().AsObject();
        json[side + key] = value.DeepClone();
        var baseline = (XTransformerConfig)ModelConfig.Parse(baseJson.ToJsonString());
        XTransformerConfig routed;
        try { routed = (XTransformerConfig)ModelConfig.Parse(json.ToJsonString()); }
        catch (ConfigException e)
        {
            // Values that side rejects (ALiBi on the encoder, only_cross without cross_attend) are rejected on that side.
            Assert.True(e.Key.StartsWith(side) && (e.Key.EndsWith(key) || e.Key.EndsWith(mainKey)), $"{side}{key}: error names '{e.Key}'");
            return;
        }
        var (mine, other) = side == "enc_" ? (routed.Encoder, routed.Decoder) : (routed.Decoder, routed.Encoder);
        var baselineOther = side == "enc_" ? baseline.Decoder : baseline.Encoder;
        Assert.True(JsonNode.DeepEquals(value, mine.AttnLayers.ToJson()[mainKey]), $"{side}{key} = {value.ToJsonString()} did not reach {side}attn_layers: {mine.AttnLayers.ToJson().ToJsonString()}");
        Assert.True(JsonNode.DeepEquals(baselineOther.ToJson(), other.ToJson()), $"{side}{key} changed the other side");
    }
}
