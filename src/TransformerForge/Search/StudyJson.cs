using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace TransformerForge.Search;

/// <summary>How trial columns are written as JSON in a study (snake_case, NaN/Infinity allowed), one place for all storages.</summary>
public static class StudyJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        WriteIndented = false,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    public static string Plan(TrialPlan plan) => JsonSerializer.Serialize(plan, Options);
    public static TrialPlan Plan(string json) => IO.StrictJson.Deserialize<TrialPlan>(json, Options);

    public static string Metrics(IReadOnlyDictionary<string, double> metrics) => JsonSerializer.Serialize(metrics, Options);
    public static IReadOnlyDictionary<string, double> Metrics(string? json) =>
        string.IsNullOrEmpty(json) ? new Dictionary<string, double>() : IO.StrictJson.Deserialize<Dictionary<string, double>>(json, Options);

    public static string Intermediate(IReadOnlyList<IntermediateValue> values) => JsonSerializer.Serialize(values, Options);
    public static IReadOnlyList<IntermediateValue> Intermediate(string? json) =>
        string.IsNullOrEmpty(json) ? [] : IO.StrictJson.Deserialize<List<IntermediateValue>>(json, Options);

    public static JsonObject Object(string json) => IO.StrictJson.ParseNode(json) as JsonObject ?? throw new InvalidDataException("expected a JSON object");
}
