using System.Text.Json;
using System.Text.Json.Nodes;

namespace TransformerForge.Config;

/// <summary>
/// Encoder-decoder (x-transformers' <c>XTransformer</c>): <c>enc_*</c> keys configure the encoder and <c>dec_*</c> the
/// decoder, each either a <c>TransformerWrapper</c> option (num_tokens, max_seq_len, emb_dropout, and for the encoder
/// num_memory_tokens) or an attention-layers option. The decoder always cross-attends to the encoder's output.
/// </summary>
public sealed record XTransformerConfig : ModelConfig
{
    public override string Type => "XTransformer";
    /// <summary>The x-transformers release both halves follow.</summary>
    public override XTransformersVersion Version
    {
        get => Encoder.Version;
        init
        {
            Encoder = Encoder with { Version = value };
            Decoder = Decoder with { Version = value };
        }
    }
    public int Dim { get; init; }
    public bool TieTokenEmb { get; init; }
    public TransformerWrapperConfig Encoder { get; init; } = new();
    public TransformerWrapperConfig Decoder { get; init; } = new();

    static readonly string[] WrapperKeys = { "num_tokens", "max_seq_len", "emb_dropout" };
    const string EncoderOnlyWrapperKey = "num_memory_tokens";
    static readonly string[] FixedLayerKeys = { "type", "cross_attend", "causal" };

    /// <summary>
    /// Every key XTransformer accepts: its own, the <c>enc_</c>/<c>dec_</c> wrapper keys, and (as the two entries
    /// <c>enc_&lt;attn_layers key&gt;</c>, <c>dec_&lt;attn_layers key&gt;</c>) the attention-layers keys routed to either side.
    /// </summary>
    public static IReadOnlyList<string> Keys { get; } = new[] { "dim", "tie_token_emb" }
        .Concat(WrapperKeys.Select(k => "enc_" + k)).Append("enc_" + EncoderOnlyWrapperKey)
        .Concat(WrapperKeys.Select(k => "dec_" + k))
        .Concat(new[] { "enc_<attn_layers key>", "dec_<attn_layers key>" }).ToArray();

    public static XTransformerConfig FromJson(JsonElement obj, XTransformersVersion version = XTransformersVersion.V0_20)
    {
        if (!obj.TryGetProperty("dim", out var dimEl)) throw new ConfigException("dim", "is required");
        int dim = OptionTable<XTransformerConfig>.ReadInt(dimEl, "dim");
        bool tie = false;
        var enc = new JsonObject { ["type"] = "Encoder", ["dim"] = dim };
        var dec = new JsonObject { ["type"] = "Decoder", ["dim"] = dim, ["cross_attend"] = true };
        var encWrap = new JsonObject();
        var decWrap = new JsonObject();
        foreach (var p in obj.EnumerateObject())
        {
            if (p.Name is "type" or "dim" or XTransformersVersions.Key) continue;
            if (p.Name == "tie_token_emb")
            {
                tie = p.Value.ValueKind switch
                {
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    _ => throw new ConfigException(p.Name, $"expected true or false, got {OptionTable<XTransformerConfig>.Describe(p.Value)}"),
                };
                continue;
            }
            bool isEnc = p.Name.StartsWith("enc_"), isDec = p.Name.StartsWith("dec_");
            if (!isEnc && !isDec) throw new ConfigException(p.Name, "unknown option (XTransformer takes dim, tie_token_emb, enc_* and dec_* keys)");
            var key = p.Name[4..];
            if (key == "dim") throw new ConfigException(p.Name, "dimension of either encoder or decoder must be set with the `dim` keyword");
            if (FixedLayerKeys.Contains(key))
                throw new ConfigException(p.Name, "is fixed by XTransformer (encoder: Encoder; decoder: Decoder with cross_attend)");
            bool wrapper = WrapperKeys.Contains(key) || (isEnc && key == EncoderOnlyWrapperKey);
            var target = wrapper ? (isEnc ? encWrap : decWrap) : (isEnc ? enc : dec);
            target[key] = JsonNode.Parse(p.Value.GetRawText());
        }
        // 1.40's encoder is built with return_only_embed (no logits head); 0.20's keeps an unused one.
        var encoder = Wrapper(encWrap, enc, "enc_", version) with { ReturnOnlyEmbed = version == XTransformersVersion.V1_40 };
        var decoder = Wrapper(decWrap, dec, "dec_", version);
        return new XTransformerConfig { Dim = dim, TieTokenEmb = tie, Encoder = encoder, Decoder = decoder };
    }

    static TransformerWrapperConfig Wrapper(JsonObject wrap, JsonObject layers, string prefix, XTransformersVersion version)
    {
        foreach (var k in new[] { "num_tokens", "max_seq_len" })
            if (!wrap.ContainsKey(k)) throw new ConfigException(prefix + k, "is required");
        using var wrapDoc = JsonDocument.Parse(wrap.ToJsonString());
        using var layersDoc = JsonDocument.Parse(layers.ToJsonString());
        var c = TransformerWrapperConfig.Table.Read(wrapDoc.RootElement, new TransformerWrapperConfig { Version = version }, prefix);
        var l = AttentionLayersConfig.Table.Read(layersDoc.RootElement,
            new AttentionLayersConfig { Type = LayerStackTypes.Parse(layers["type"]!.GetValue<string>()), Version = version }, prefix, "type");
        c = c with { AttnLayers = l };
        c.Validate(prefix);
        return c;
    }

    public override JsonObject ToJson()
    {
        var o = Header();
        o["dim"] = Dim;
        if (TieTokenEmb) o["tie_token_emb"] = true;
        Flatten(Encoder, "enc_", new AttentionLayersConfig { Type = LayerStackType.Encoder, Version = Version }, o);
        Flatten(Decoder, "dec_", new AttentionLayersConfig { Type = LayerStackType.Decoder, CrossAttend = true, Version = Version }, o);
        return o;
    }

    static void Flatten(TransformerWrapperConfig w, string prefix, AttentionLayersConfig defaults, JsonObject o)
    {
        var wrap = new JsonObject();
        TransformerWrapperConfig.Table.Write(w, new TransformerWrapperConfig { Version = w.Version }, wrap, "num_tokens", "max_seq_len");
        foreach (var (k, v) in wrap)
            if (k != "attn_layers") o[prefix + k] = v?.DeepClone();
        var layers = new JsonObject();
        AttentionLayersConfig.Table.Write(w.AttnLayers, defaults with { Dim = w.AttnLayers.Dim }, layers, "depth");
        foreach (var (k, v) in layers)
            if (k != "dim") o[prefix + k] = v?.DeepClone();
    }
}
