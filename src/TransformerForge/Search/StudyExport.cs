using System.Text.Json;
using System.Text.Json.Nodes;

namespace TransformerForge.Search;

/// <summary>
/// Writes a study's results as model files ready for <c>tforge train --config</c>: <c>best.json</c> (the best complete
/// trial on the primary objective), <c>front/trial-N.json</c> for each member of the Pareto front, and
/// <c>front.json</c> listing them with their metrics.
/// </summary>
public static class StudyExport
{
    public static IReadOnlyList<string> Write(StudyInfo study, IReadOnlyList<TrialRecord> trials, string directory)
    {
        var objectives = study.Definition.Objectives;
        var best = Pareto.Best(trials, objectives[0]) ?? throw new SearchException($"study '{study.Name}' has no complete trial yet: nothing to export");
        var front = Pareto.Front(trials, objectives);
        Directory.CreateDirectory(Path.Combine(directory, "front"));
        var written = new List<string>();
        var indented = new JsonSerializerOptions { WriteIndented = true };

        var bestPath = Path.Combine(directory, "best.json");
        WriteAtomically(bestPath, best.Spec.ToJsonString(indented));
        written.Add(bestPath);
        var list = new JsonArray();
        foreach (var t in front)
        {
            var path = Path.Combine(directory, "front", $"trial-{t.Number}.json");
            WriteAtomically(path, t.Spec.ToJsonString(indented));
            written.Add(path);
            list.Add(new JsonObject
            {
                ["trial"] = t.Number,
                ["config"] = Path.Combine("front", $"trial-{t.Number}.json"),
                ["metrics"] = JsonSerializer.SerializeToNode(t.Metrics, StudyJson.Options),
            });
        }
        var summary = new JsonObject
        {
            ["study"] = study.Name,
            ["objectives"] = new JsonArray(objectives.Select(o => (JsonNode?)o.ToString()).ToArray()),
            ["best"] = new JsonObject { ["trial"] = best.Number, ["config"] = "best.json", ["metrics"] = JsonSerializer.SerializeToNode(best.Metrics, StudyJson.Options) },
            ["front"] = list,
        };
        var summaryPath = Path.Combine(directory, "front.json");
        WriteAtomically(summaryPath, summary.ToJsonString(indented));
        written.Add(summaryPath);
        return written;
    }

    static void WriteAtomically(string path, string text)
    {
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, text);
        File.Move(tmp, path, overwrite: true);
    }
}
