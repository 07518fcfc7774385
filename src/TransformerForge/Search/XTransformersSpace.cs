using System.Text.Json;
using System.Text.Json.Nodes;
using TransformerForge.Config;

namespace TransformerForge.Search;

/// <summary>
/// Primer-style search over x-transformers options: a base model JSON and, for any of its keys, a list of values to
/// choose from. A choice is named by its dotted path in the model JSON (<c>attn_layers.ff_relu_squared</c>,
/// <c>tie_embedding</c>), so every option of the configuration tables, including ones added later, can be searched
/// without code. A choice may set several keys at once (its values are objects merged at <c>path</c>, e.g. one
/// positional scheme out of rotary / ALiBi / T5) and may apply only <c>when</c> other choices hold given values.
/// A sample is valid when the configuration parser accepts it; the sample is the parser's canonical JSON.
/// <code>
/// { "space": "x-transformers",
///   "model": { "type": "TransformerWrapper", "attn_layers": { "type": "Decoder", "dim": 64, "depth": 2, "heads": 4 } },
///   "choices": {
///     "attn_layers.ff_relu_squared": [false, true],
///     "attn_layers.attn_dconv": [false, true],
///     "attn_layers.attn_dconv_kernel_size": { "values": [3, 5], "when": { "attn_layers.attn_dconv": true } },
///     "positions": { "path": "attn_layers", "values": [{}, { "rotary_pos_emb": true }, { "alibi_pos_bias": true }] } } }
/// </code>
/// <c>num_tokens</c> and <c>max_seq_len</c> may be left out of the model: the search fills them from its data.
/// </summary>
public sealed class XTransformersSpace : ISearchSpace
{
    public const string KindName = "x-transformers";

    readonly JsonObject _model;
    readonly IReadOnlyList<string> _paths;
    readonly JsonObject _choices;

    XTransformersSpace(JsonObject model, IReadOnlyList<SpaceParameter> parameters, IReadOnlyList<string> paths, JsonObject choices)
    {
        _model = model;
        Parameters = parameters;
        _paths = paths;
        _choices = choices;
    }

    public string Kind => KindName;
    public IReadOnlyList<SpaceParameter> Parameters { get; }

    /// <summary>The base model (before any choice).</summary>
    public JsonObject Model => (JsonObject)_model.DeepClone();

    /// <summary>Whether the base model leaves the vocabulary size or window length to the data.</summary>
    public bool NeedsData => !_model.ContainsKey("num_tokens") || !_model.ContainsKey("max_seq_len");

    public static XTransformersSpace Parse(JsonObject definition)
    {
        if (definition["model"] is not JsonObject model) throw new SearchException("space: 'model' must be the base model JSON object");
        if (definition["choices"] is not JsonObject choices || choices.Count == 0)
            throw new SearchException("space: 'choices' must be an object with at least one choice (\"path\": [values])");
        foreach (var key in definition.Select(p => p.Key))
            if (key is not ("space" or "model" or "choices")) throw new SearchException($"space: unknown key '{key}' (x-transformers spaces have space, model, choices)");

        var parameters = new List<SpaceParameter>();
        var paths = new List<string>();
        var pendingWhen = new List<(int Index, JsonObject When)>();
        foreach (var (name, node) in choices)
        {
            JsonArray? values;
            string path = name;
            JsonObject? when = null;
            if (node is JsonArray a) values = a;
            else if (node is JsonObject o)
            {
                foreach (var k in o.Select(p => p.Key))
                    if (k is not ("values" or "path" or "when")) throw new SearchException($"space: choices.{name}: unknown key '{k}' (values, path, when)");
                values = o["values"] as JsonArray ?? throw new SearchException($"space: choices.{name}: 'values' must be a list");
                if (o["path"] is JsonNode p) path = p.GetValueKind() == JsonValueKind.String ? p.GetValue<string>() : throw new SearchException($"space: choices.{name}.path must be a string");
                if (o["when"] is JsonNode w) when = w as JsonObject ?? throw new SearchException($"space: choices.{name}.when must be an object of choice names and values");
            }
            else throw new SearchException($"space: choices.{name} must be a list of values or an object with 'values'");
            if (values.Count == 0) throw new SearchException($"space: choices.{name} has no values");
            var list = values.Select(v => v?.DeepClone()).ToList();
            for (int i = 0; i < list.Count; i++)
                for (int j = 0; j < i; j++)
                    if (JsonNode.DeepEquals(list[i], list[j])) throw new SearchException($"space: choices.{name} lists {list[i]?.ToJsonString() ?? "null"} twice");
            if (path.Length == 0 || path.Split('.').Any(s => s.Length == 0)) throw new SearchException($"space: choices.{name}: bad path '{path}'");
            parameters.Add(new SpaceParameter(name, list));
            paths.Add(path);
            if (when is not null) pendingWhen.Add((parameters.Count - 1, when));
        }
        foreach (var (index, when) in pendingWhen)
        {
            var conditions = new Dictionary<string, IReadOnlyList<JsonNode?>>();
            foreach (var (other, allowed) in when)
            {
                var target = parameters.FirstOrDefault(p => p.Name == other)
                    ?? throw new SearchException($"space: choices.{parameters[index].Name}.when names '{other}', which is not a choice");
                if (target.Name == parameters[index].Name) throw new SearchException($"space: choices.{other}.when refers to itself");
                var list = allowed is JsonArray arr ? arr.Select(v => v?.DeepClone()).ToList() : new List<JsonNode?> { allowed?.DeepClone() };
                foreach (var v in list)
                    if (target.IndexOf(v) < 0)
                        throw new SearchException($"space: choices.{parameters[index].Name}.when: {v?.ToJsonString() ?? "null"} is not a value of '{other}'");
                conditions[other] = list;
            }
            parameters[index] = parameters[index] with { When = conditions };
        }

        var space = new XTransformersSpace((JsonObject)model.DeepClone(), parameters, paths, (JsonObject)choices.DeepClone());
        space.CheckValues();
        return space;
    }

    /// <summary>This space with <c>num_tokens</c> and <c>max_seq_len</c> set where the base model leaves them out.</summary>
    public XTransformersSpace WithData(int numTokens, int maxSeqLen)
    {
        var model = Model;
        model["num_tokens"] ??= numTokens;
        model["max_seq_len"] ??= maxSeqLen;
        return Parse(new JsonObject { ["space"] = KindName, ["model"] = model, ["choices"] = _choices.DeepClone() });
    }

    public JsonObject Build(Genome genome)
    {
        if (NeedsData) throw new InvalidOperationException("the space's model has no num_tokens/max_seq_len yet: call WithData first");
        return Canonical(Assemble(genome, _model));
    }

    JsonObject Assemble(Genome genome, JsonObject baseModel)
    {
        if (genome.Count != Parameters.Count) throw new ArgumentException($"genome has {genome.Count} values, the space {Parameters.Count} parameters");
        var model = (JsonObject)baseModel.DeepClone();
        for (int i = 0; i < Parameters.Count; i++)
            if (genome.IsActive(Parameters, i)) Assign(model, _paths[i], Parameters[i].Choices[genome[i]]);
        return model;
    }

    /// <summary>Sets the value at a dotted path; an object value at a path holding an object is merged into it.</summary>
    static void Assign(JsonObject model, string path, JsonNode? value)
    {
        var parts = path.Split('.');
        JsonObject target = model;
        for (int i = 0; i < parts.Length - 1; i++)
        {
            if (target[parts[i]] is not JsonObject next)
            {
                next = new JsonObject();
                target[parts[i]] = next;
            }
            target = next;
        }
        var last = parts[^1];
        if (value is JsonObject merge && target[last] is JsonObject existing)
        {
            foreach (var (k, v) in merge) existing[k] = v?.DeepClone();
            return;
        }
        target[last] = value?.DeepClone();
    }

    static JsonObject Canonical(JsonObject model)
    {
        try
        {
            using var doc = JsonDocument.Parse(model.ToJsonString());
            return ModelConfig.FromJson(doc.RootElement).ToJson();
        }
        catch (ConfigException e)
        {
            throw new InvalidCandidateException(e.Message);
        }
    }

    /// <summary>Each value of each choice, set alone on the base model, must name a real option with the right type
    /// (combinations that only some other choices make invalid are left to sampling).</summary>
    void CheckValues()
    {
        var probe = Model;
        probe["num_tokens"] ??= 256;
        probe["max_seq_len"] ??= 1024;
        try
        {
            Canonical(probe);
        }
        catch (InvalidCandidateException e)
        {
            if (IsSpellingOrType(e.Message)) throw new SearchException($"space: model: {e.Message}");
        }
        for (int i = 0; i < Parameters.Count; i++)
            for (int j = 0; j < Parameters[i].Choices.Count; j++)
            {
                var model = (JsonObject)probe.DeepClone();
                Assign(model, _paths[i], Parameters[i].Choices[j]);
                try
                {
                    Canonical(model);
                }
                catch (InvalidCandidateException e) when (IsSpellingOrType(e.Message))
                {
                    throw new SearchException($"space: choices.{Parameters[i].Name}[{j}] = {Parameters[i].Choices[j]?.ToJsonString() ?? "null"}: {e.Message}");
                }
                catch (InvalidCandidateException)
                {
                    // Invalid with the base alone; other choices may make it valid.
                }
            }
    }

    static bool IsSpellingOrType(string message) => message.Contains("unknown option") || message.Contains(": expected") || message.StartsWith("expected");

    public JsonObject ToJson() => new() { ["space"] = KindName, ["model"] = Model, ["choices"] = _choices.DeepClone() };
}
