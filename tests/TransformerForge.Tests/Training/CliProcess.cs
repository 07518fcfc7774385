using System.Diagnostics;
using System.Text;

namespace TransformerForge.Tests.Training;

/// <summary>Runs the built <c>tforge</c> CLI (src/TransformerForge.Cli/bin/CONFIG/net10.0/tforge.dll) as a child process.</summary>
internal sealed class CliProcess : IDisposable
{
    readonly Process _process;
    readonly StringBuilder _stdout = new(), _stderr = new();

    /// <summary>The tforge.dll built with the same configuration (Debug/Release) as the tests.</summary>
    public static string TforgeDll
    {
        get
        {
            var parts = AppContext.BaseDirectory.Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
            int bin = Array.LastIndexOf(parts, "bin");
            var configuration = bin >= 0 && bin + 1 < parts.Length ? parts[bin + 1] : "Debug";
            var dll = Path.Combine(TestPaths.RepoRoot, "src", "TransformerForge.Cli", "bin", configuration, "net10.0", "tforge.dll");
            if (!File.Exists(dll)) throw new FileNotFoundException($"tforge.dll is not built at {dll} (the test project builds it as a project reference)", dll);
            return dll;
        }
    }

    public CliProcess(params string[] args) : this(args, null)
    {
    }

    /// <param name="environment">Variables to set (null value: remove) in tforge's environment.</param>
    public CliProcess(string[] args, IReadOnlyDictionary<string, string?>? environment)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(TforgeDll);
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
            if (value is null) info.Environment.Remove(name);
            else info.Environment[name] = value;
        _process = new Process { StartInfo = info };
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_stdout) _stdout.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_stderr) _stderr.AppendLine(e.Data); };
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string Stdout { get { lock (_stdout) return _stdout.ToString(); } }
    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }
    public bool HasExited => _process.HasExited;
    public int Id => _process.Id;

    /// <summary>Waits for the exit; returns the exit code.</summary>
    public int Wait(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            Kill();
            throw new TimeoutException($"tforge did not finish in {timeout}:\n{Stdout}\n{Stderr}");
        }
        _process.WaitForExit(); // flushes the output readers
        return _process.ExitCode;
    }

    /// <summary>SIGKILL, as a crash or an out-of-memory kill would end it: no handler runs.</summary>
    public void Kill()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    /// <summary>SIGKILL to tforge alone (its children are left to notice by themselves).</summary>
    public void KillParentOnly()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: false);
        _process.WaitForExit();
    }

    /// <summary>Runs tforge to completion.</summary>
    public static (int Code, string Stdout, string Stderr) Run(TimeSpan timeout, params string[] args) => Run(timeout, args, null);

    /// <summary>Runs tforge to completion with these environment variables set (null value: removed).</summary>
    public static (int Code, string Stdout, string Stderr) Run(TimeSpan timeout, string[] args, IReadOnlyDictionary<string, string?>? environment)
    {
        using var p = new CliProcess(args, environment);
        var code = p.Wait(timeout);
        return (code, p.Stdout, p.Stderr);
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }
}
