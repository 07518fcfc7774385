namespace TransformerForge.IO;

/// <summary>
/// Builds the exceptions for malformed files. <see cref="InvalidDataException"/> is sealed, so there is no
/// subclass; every message has the same shape, naming the source first and then the problem.
/// </summary>
internal static class SafeTensorsErrors
{
    public static InvalidDataException Invalid(string source, string problem) =>
        new($"Invalid safetensors file '{source}': {problem}");
}
