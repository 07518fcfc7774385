using System.Text.Json;
using System.Text.Json.Nodes;
using TransformerForge.IO;

namespace TransformerForge.Data;

/// <summary>Reads and writes <c>tokenizer.json</c>, the one file a saved tokenizer consists of.</summary>
public static class TokenizerFile
{
    public const string FileName = "tokenizer.json";

    static readonly JsonSerializerOptions Pretty = new() { WriteIndented = true };

    /// <summary>Serializes a JSON object the way every tokenizer stores itself (stable, indented).</summary>
    public static string Format(JsonObject json) => json.ToJsonString(Pretty);

    public static void Write(string directory, string json)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        if (File.Exists(directory))
            throw new IOException($"Cannot save the tokenizer into '{directory}': it is a file, not a directory.");
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, FileName), json + Environment.NewLine);
    }

    /// <summary>Parses <c>tokenizer.json</c> found in <paramref name="path"/> (a directory) or at <paramref name="path"/> itself.</summary>
    public static JsonObject Read(string path, out string file)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (Directory.Exists(path)) file = Path.Combine(path, FileName);
        else if (File.Exists(path)) file = path;
        else throw new DirectoryNotFoundException($"Tokenizer directory '{path}' does not exist.");
        if (!File.Exists(file))
            throw new FileNotFoundException($"Tokenizer directory '{path}' has no {FileName}.", file);

        JsonNode? node;
        try
        {
            node = StrictJson.ParseNode(File.ReadAllBytes(file));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Tokenizer file '{file}' is not valid JSON: {e.Message}", e);
        }
        return node as JsonObject
            ?? throw new InvalidDataException($"Tokenizer file '{file}' must contain a JSON object, e.g. {{\"kind\":\"bytes\"}}.");
    }

    /// <summary>A required string property, or a clear error naming the file and the property.</summary>
    public static string RequireString(JsonObject json, string name, string file)
    {
        if (json[name] is JsonValue v && v.TryGetValue<string>(out var s)) return s;
        throw new InvalidDataException($"Tokenizer file '{file}' is missing the string property \"{name}\".");
    }
}
