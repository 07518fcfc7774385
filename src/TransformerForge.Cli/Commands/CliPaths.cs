using TransformerForge.IO;
using TransformerForge.Training;

namespace TransformerForge.Cli.Commands;

/// <summary>Where a command's <c>--model</c> points: a model directory, a checkpoint, or a run directory.</summary>
public static class CliPaths
{
    /// <summary>The directory holding config.json: the path itself, or its checkpoint/ (a run directory).</summary>
    public static string ModelDirectory(string path)
    {
        if (File.Exists(Path.Combine(path, IO.ModelDirectory.ConfigFile))) return path;
        if (File.Exists(path)) throw new ArgumentException($"--model '{path}' is a file; give the model's directory (with {IO.ModelDirectory.ConfigFile}) or a run directory");
        try
        {
            return Checkpoint.Resolve(path);
        }
        catch (DirectoryNotFoundException)
        {
            throw new DirectoryNotFoundException($"no model at '{path}' (expected a directory with {IO.ModelDirectory.ConfigFile}, or a run directory with checkpoint/)");
        }
    }
}
