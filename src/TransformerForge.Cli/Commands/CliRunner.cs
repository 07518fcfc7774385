using System.CommandLine;
using System.Text.Json;
using System.Text.RegularExpressions;
using TransformerForge.Config;
using TransformerForge.Runtime;
using TransformerForge.Training;

namespace TransformerForge.Cli.Commands;

/// <summary>
/// Runs the parsed command with tforge's exit codes: 0 success; 2 bad input or environment (a command line that does
/// not parse, a bad file, key or value, a missing file, a full disk, too little memory, a run directory in use), told
/// in one line naming the problem; 1 an internal error (a bug), whose stack trace goes to a log file — in the run
/// directory when the command has one, else a temporary file — named in the one line printed. Never a stack trace.
/// </summary>
public static partial class CliRunner
{
    public const int InputError = 2;
    public const int InternalError = 1;

    /// <summary>The run directory of the command in progress, where an internal error's log is written.</summary>
    public static string? RunDirectory { get; set; }

    public static int Run(RootCommand root, string[] args)
    {
        ParseResult parsed;
        try
        {
            parsed = root.Parse(args);
        }
        catch (Exception e)
        {
            return Internal(e);
        }
        if (parsed.Errors.Count > 0)
        {
            var command = parsed.CommandResult.Command;
            var name = command == root ? "tforge" : $"tforge {string.Join(' ', CommandPath(parsed))}";
            // "Required command was not provided" says less than an unrecognized argument next to it.
            var error = parsed.Errors.FirstOrDefault(e => !e.Message.StartsWith("Required command", StringComparison.Ordinal)) ?? parsed.Errors[0];
            Console.Error.WriteLine($"tforge: {Friendly(error.Message)} (see '{name} --help')");
            return InputError;
        }
        try
        {
            return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (IsInputError(e))
        {
            Console.Error.WriteLine($"tforge: {Describe(e)}");
            return InputError;
        }
        catch (Exception e)
        {
            return Internal(e);
        }
    }

    /// <summary>Errors caused by what the user gave or the machine they run on, as opposed to a bug in tforge.</summary>
    public static bool IsInputError(Exception e) => e is ConfigException or TransformerForge.Search.SearchException or TransformerForge.Search.StudyStorageException or ArgumentException or InvalidDataException or JsonException
        or FileNotFoundException or DirectoryNotFoundException or IOException or UnauthorizedAccessException
        or TorchRuntimeException or MemoryLimitException or RunLockedException or NonFiniteLossException || IsOutOfMemory(e);

    /// <summary>libtorch's allocator failing (the estimate let it through, or the machine's memory filled up meanwhile).</summary>
    static bool IsOutOfMemory(Exception e) => e is OutOfMemoryException
        || e is System.Runtime.InteropServices.ExternalException x && (x.Message.Contains("can't allocate memory") || x.Message.Contains("out of memory"));

    /// <summary>The one line for an input error: the library's message, without .NET's parameter and type decorations.</summary>
    public static string Describe(Exception e)
    {
        var message = IsOutOfMemory(e) ? "out of memory: " + e.Message.Split('\n')[0].Trim() : e.Message;
        if (e is ArgumentException a && a.ParamName is { } p) message = message.Replace($" (Parameter '{p}')", "");
        if (e is ArgumentOutOfRangeException { ActualValue: { } v } && !message.Contains(v.ToString() ?? "")) message += $" (got {v})";
        if (e is UnauthorizedAccessException) message = $"permission denied: {message}";
        return Friendly(message.Replace(Environment.NewLine, " ").Trim());
    }

    /// <summary>Writes the trace of an unexpected exception to a log file and prints one line naming it.</summary>
    static int Internal(Exception e)
    {
        string? log = null;
        foreach (var dir in new[] { RunDirectory, Path.GetTempPath() })
        {
            if (dir is null) continue;
            try
            {
                Directory.CreateDirectory(dir);
                var path = Path.Combine(dir, $"tforge-error-{DateTime.Now:yyyyMMdd-HHmmss}-{Environment.ProcessId}.log");
                File.WriteAllText(path, $"tforge {string.Join(' ', Environment.GetCommandLineArgs().Skip(1))}\n{DateTime.Now:O}\n\n{e}\n");
                log = path;
                break;
            }
            catch (Exception io) when (io is IOException or UnauthorizedAccessException) { }
        }
        Console.Error.WriteLine($"tforge: internal error: {Friendly(e.Message.Replace(Environment.NewLine, " "))}" +
            (log is null ? " (the details could not be written to a log file)" : $"; details in {log}"));
        return InternalError;
    }

    static IEnumerable<string> CommandPath(ParseResult parsed)
    {
        var names = new List<string>();
        for (var r = parsed.CommandResult; r is not null && r.Parent is not null; r = r.Parent as System.CommandLine.Parsing.CommandResult)
            names.Insert(0, r.Command.Name);
        return names;
    }

    /// <summary>Replaces .NET type names (e.g. <c>System.Nullable`1[System.Int32]</c>) with words.</summary>
    public static string Friendly(string message) => TypeName().Replace(message, m => m.Groups["type"].Value switch
    {
        "Int32" or "Int64" => "an integer",
        "Double" or "Single" => "a number",
        "Boolean" => "true or false",
        "String" => "text",
        var other => other,
    }).Replace("as expected type an", "as an").Replace("as expected type a", "as a").Replace("as expected type", "as");

    [GeneratedRegex(@"'?System\.Nullable`1\[System\.(?<type>\w+)\]'?|'?System\.(?<type>Int32|Int64|Double|Single|Boolean|String)'?")]
    private static partial Regex TypeName();

    /// <summary>The common <c>--device</c> option: cpu, cuda or cuda:N.</summary>
    public static Option<string> DeviceOption() => new("--device")
    {
        Description = "Device to run on: cpu, cuda or cuda:N (CUDA needs TFORGE_LIBTORCH or a CUDA PyTorch for python3).",
        DefaultValueFactory = _ => "cpu",
    };
}
