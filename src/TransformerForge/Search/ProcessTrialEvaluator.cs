using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace TransformerForge.Search;

/// <summary>
/// Runs each trial in a child process (<c>tforge search trial</c>) with hard bounds, so that no candidate can stop
/// the search: the request goes in on standard input, progress and the result come back as lines on standard output
/// (<c>progress …</c>, <c>result {json}</c>). The child is killed when it runs past the time limit or its resident
/// memory passes the memory limit, and a crash, a kill by the kernel or a missing result is a failed trial with the
/// reason. The child watches its standard input and kills itself when it closes, so it never outlives the worker.
/// </summary>
public sealed class ProcessTrialEvaluator(string fileName, IReadOnlyList<string> arguments) : ITrialEvaluator
{
    public const string ResultPrefix = "result ";
    public const string ProgressPrefix = "progress ";
    static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(100);

    public TrialResult? Evaluate(TrialRecord trial, TrialRequest request, Action<string>? progress, CancellationToken cancellation)
    {
        var clock = Stopwatch.StartNew();
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        // Shown by ps, ignored by the child: which trial this process is.
        info.ArgumentList.Add("--trial");
        info.ArgumentList.Add(trial.Number.ToString(CultureInfo.InvariantCulture));
        using var process = new Process { StartInfo = info };
        string? resultJson = null;
        var stderr = new Queue<string>();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            if (e.Data.StartsWith(ResultPrefix, StringComparison.Ordinal)) resultJson = e.Data[ResultPrefix.Length..];
            else if (e.Data.StartsWith(ProgressPrefix, StringComparison.Ordinal)) progress?.Invoke(e.Data[ProgressPrefix.Length..]);
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null || e.Data.Length == 0) return;
            lock (stderr)
            {
                stderr.Enqueue(e.Data);
                if (stderr.Count > 20) stderr.Dequeue();
            }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            process.StandardInput.WriteLine(request.ToJsonString());
            process.StandardInput.Flush();
        }
        catch (IOException)
        {
            // The child died at once; its exit code and stderr say why.
        }

        var s = request.Settings;
        double peakMiB = 0;
        string? killedFor = null;
        while (!process.WaitForExit(Poll))
        {
            if (cancellation.IsCancellationRequested)
            {
                Kill(process);
                return null;
            }
            if (s.TrialTimeoutSeconds > 0 && clock.Elapsed.TotalSeconds > s.TrialTimeoutSeconds)
            {
                killedFor = $"timed out: still running after {s.TrialTimeoutSeconds:0.#} s (the trial time limit)";
                break;
            }
            if (s.TrialMemoryMiB > 0 && ResidentMiB(process.Id) is { } rss)
            {
                peakMiB = Math.Max(peakMiB, rss);
                if (rss > s.TrialMemoryMiB)
                {
                    killedFor = $"out of memory: resident memory reached {rss:0} MiB, over the trial limit of {s.TrialMemoryMiB:0} MiB";
                    break;
                }
            }
        }
        if (killedFor is not null)
        {
            Kill(process);
            return TrialResult.Failed(killedFor, clock.Elapsed.TotalSeconds);
        }
        process.WaitForExit();   // drains the output readers

        if (resultJson is not null)
        {
            try
            {
                return IO.StrictJson.Deserialize<TrialResult>(resultJson, StudyJson.Options);
            }
            catch (System.Text.Json.JsonException e)
            {
                return TrialResult.Failed($"the trial process wrote an unreadable result: {e.Message}", clock.Elapsed.TotalSeconds);
            }
        }
        string last;
        lock (stderr) last = string.Join(" | ", stderr.TakeLast(3));
        int code = process.ExitCode;
        var how = code > 128 && code < 160 ? $"was killed by signal {code - 128}{(code - 128 == 9 ? " (SIGKILL: the kernel's out-of-memory killer?)" : "")}" : $"exited with code {code}";
        return TrialResult.Failed($"the trial process {how} without a result{(last.Length > 0 ? $": {last}" : "")}", clock.Elapsed.TotalSeconds);
    }

    static void Kill(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
        process.WaitForExit();
    }

    /// <summary>VmRSS of a process in MiB (Linux), or null when it cannot be read.</summary>
    public static double? ResidentMiB(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    return long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
        }
        return null;
    }

    /// <summary>The child side: reads the request from standard input, kills itself if the parent goes away
    /// (standard input closes), runs the trial and writes progress and the result to standard output.</summary>
    public static int RunChild(TextReader input, TextWriter output)
    {
        var line = input.ReadLine();
        if (string.IsNullOrWhiteSpace(line))
        {
            Console.Error.WriteLine("tforge search trial: expected a trial request on standard input");
            return 2;
        }
        var watchdog = new Thread(() =>
        {
            try
            {
                while (input.ReadLine() is not null) { }
            }
            catch (IOException) { }
            // The worker is gone: nobody will read our result.
            Process.GetCurrentProcess().Kill();
        }) { IsBackground = true, Name = "parent watchdog" };
        watchdog.Start();

        TrialResult result;
        try
        {
            var request = TrialRequest.Parse(line);
            result = TrialRunner.Run(request, p =>
            {
                lock (output) output.WriteLine(ProgressPrefix + p);
            });
        }
        catch (Exception e) when (e is InvalidDataException or System.Text.Json.JsonException or SearchException)
        {
            result = TrialResult.Failed($"bad trial request: {e.Message}", 0);
        }
        var json = System.Text.Json.JsonSerializer.Serialize(result, StudyJson.Options);
        lock (output)
        {
            output.WriteLine(ResultPrefix + json);
            output.Flush();
        }
        return 0;
    }
}
