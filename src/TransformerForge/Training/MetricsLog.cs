using System.Text.Json.Nodes;

using TransformerForge.IO;

namespace TransformerForge.Training;

/// <summary>
/// <c>metrics.jsonl</c> in a run directory: one JSON object per line, <c>"kind": "train"</c> every log step and
/// <c>"kind": "eval"</c> after each evaluation. Each line is flushed as written, so a killed run loses nothing logged.
/// </summary>
public sealed class MetricsLog : IDisposable
{
    public const string FileName = "metrics.jsonl";

    readonly StreamWriter _writer;

    MetricsLog(StreamWriter writer, string path)
    {
        _writer = writer;
        Path = path;
    }

    public string Path { get; }

    /// <summary>
    /// Opens the log in <paramref name="runDirectory"/> for appending. A resumed run passes the checkpoint's step as
    /// <paramref name="keepThroughStep"/>: lines logged after it (by the run that was stopped) are dropped, since those
    /// steps are trained again. Null starts a new log.
    /// </summary>
    public static MetricsLog Open(string runDirectory, int? keepThroughStep)
    {
        Directory.CreateDirectory(runDirectory);
        var path = System.IO.Path.Combine(runDirectory, FileName);
        if (keepThroughStep is { } keep && File.Exists(path))
        {
            var kept = File.ReadAllLines(path).Where(l => StepOf(l) is { } s && s <= keep).ToList();
            File.WriteAllLines(path, kept);
        }
        else if (File.Exists(path)) File.Delete(path);
        var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
        return new MetricsLog(new StreamWriter(stream) { AutoFlush = true }, path);
    }

    public void Write(StepReport r) => Write(new JsonObject
    {
        ["kind"] = "train",
        ["step"] = r.Step,
        ["loss"] = r.Loss,
        ["lr"] = r.LearningRate,
        ["grad_norm"] = r.GradNorm,
        ["tokens_per_second"] = Math.Round(r.TokensPerSecond, 1),
        ["elapsed_seconds"] = Math.Round(r.Elapsed.TotalSeconds, 3),
    });

    public void Write(EvaluationMetrics m)
    {
        var o = new JsonObject
        {
            ["kind"] = "eval",
            ["step"] = m.Step,
            ["val_loss"] = m.Loss,
            ["perplexity"] = m.Perplexity,
            ["examples"] = m.Examples,
        };
        if (m.BitsPerUnit is { } bits) o[$"bits_per_{m.Unit}"] = bits;
        if (m.ExactMatch is { } em) o["exact_match"] = em;
        Write(o);
    }

    void Write(JsonObject o) => _writer.WriteLine(o.ToJsonString());

    /// <summary>Every line of a metrics file as a JSON object (lines that do not parse are skipped: a torn last line).</summary>
    public static IReadOnlyList<JsonObject> Read(string path)
    {
        var result = new List<JsonObject>();
        foreach (var line in File.ReadLines(path))
        {
            try
            {
                if (StrictJson.ParseNode(System.Text.Encoding.UTF8.GetBytes(line)) is JsonObject o) result.Add(o);
            }
            catch (System.Text.Json.JsonException) { }
        }
        return result;
    }

    static int? StepOf(string line)
    {
        try
        {
            return StrictJson.ParseNode(System.Text.Encoding.UTF8.GetBytes(line))?["step"]?.GetValue<int>();
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }

    public void Dispose() => _writer.Dispose();
}
