using System.CommandLine;
using TransformerForge.Config;
using TransformerForge.Runtime;

namespace TransformerForge.Cli.Commands;

/// <summary>Runs the parsed command; turns the library's input errors into one clear line and exit code 2.</summary>
public static class CliRunner
{
    public static int Run(RootCommand root, string[] args)
    {
        try
        {
            return root.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (e is ConfigException or TransformerForge.Search.SearchException or TransformerForge.Search.StudyStorageException or ArgumentException or InvalidDataException or FileNotFoundException
                                       or DirectoryNotFoundException or TorchRuntimeException)
        {
            Console.Error.WriteLine($"tforge: {e.Message}");
            return 2;
        }
    }

    /// <summary>The common <c>--device</c> option: cpu, cuda or cuda:N.</summary>
    public static Option<string> DeviceOption() => new("--device")
    {
        Description = "Device to run on: cpu, cuda or cuda:N (CUDA needs TFORGE_LIBTORCH or a CUDA PyTorch for python3).",
        DefaultValueFactory = _ => "cpu",
    };
}
