using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using TransformerForge.IO;

namespace TransformerForge.Training;

/// <summary>Another live process holds the run directory's lock.</summary>
public sealed class RunLockedException(string message) : IOException(message);

/// <summary>
/// <c>run.lock</c> in a run directory: one process trains in a directory at a time, so two runs can never interleave
/// their checkpoints and metrics. The file holds the owner's pid and the start time of that process; it is created
/// atomically (create-new), and a lock whose process is gone (or whose pid now belongs to a process started at
/// another time) is stale and taken over. Disposing releases it. A process may take the same directory's lock again
/// (the CLI takes it before it looks at the directory, the trainer again when it runs): that is a no-op handle.
/// </summary>
public sealed class RunLock : IDisposable
{
    public const string FileName = "run.lock";

    static readonly Dictionary<string, int> Held = new(StringComparer.Ordinal);
    readonly string _path;
    bool _released;

    RunLock(string path) => _path = path;

    /// <summary>The lock file's path.</summary>
    public string Path => _path;

    /// <summary>Takes the lock of <paramref name="runDirectory"/> (creating the directory), or throws <see cref="RunLockedException"/>.</summary>
    public static RunLock Acquire(string runDirectory)
    {
        var dir = System.IO.Path.GetFullPath(runDirectory);
        if (File.Exists(dir)) throw new IOException($"'{runDirectory}' is a file, not a run directory");
        Directory.CreateDirectory(dir);
        var path = System.IO.Path.Combine(dir, FileName);
        lock (Held)
        {
            if (Held.TryGetValue(path, out var count))
            {
                Held[path] = count + 1;
                return new RunLock(path);
            }
            for (int attempt = 0; ; attempt++)
            {
                try
                {
                    using (var f = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read))
                    {
                        var me = new JsonObject
                        {
                            ["pid"] = Environment.ProcessId, ["start"] = ProcessStart(Environment.ProcessId),
                            ["started_at"] = DateTime.Now.ToString("yyyy-MM-dd HH:mm:ss"), ["host"] = Environment.MachineName,
                        };
                        f.Write(System.Text.Encoding.UTF8.GetBytes(me.ToJsonString()));
                        f.Flush(flushToDisk: true);
                    }
                    Held[path] = 1;
                    return new RunLock(path);
                }
                catch (IOException) when (File.Exists(path) && attempt < 3)
                {
                    var owner = ReadOwner(path);
                    if (owner is { } o && IsAlive(o.Pid, o.Start))
                        throw new RunLockedException($"run directory '{runDirectory}' is in use by process {o.Pid} (started {o.StartText}); " +
                            $"wait for it to finish, or choose another --out (if no such run is going on, delete {path})");
                    // Stale (its process is gone) or unreadable mid-write: remove it and try again.
                    if (owner is not null || attempt > 0) TryDelete(path);
                    else Thread.Sleep(50);
                }
            }
        }
    }

    /// <summary>The owner recorded in a lock file, or null when it cannot be read.</summary>
    static (int Pid, string? Start, string StartText)? ReadOwner(string path)
    {
        try
        {
            using var doc = StrictJson.Parse(File.ReadAllBytes(path));
            var root = doc.RootElement;
            int pid = root.GetProperty("pid").GetInt32();
            var start = root.TryGetProperty("start", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
            var at = root.TryGetProperty("started_at", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString() : null;
            return (pid, start, at ?? "at an unknown time");
        }
        catch (Exception e) when (e is IOException or JsonException or InvalidOperationException or KeyNotFoundException or FormatException)
        {
            return null;
        }
    }

    /// <summary>Whether the process <paramref name="pid"/> runs and is the one that started at <paramref name="start"/> (pids are reused).</summary>
    static bool IsAlive(int pid, string? start)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            if (p.HasExited) return false;
            return start is null || ProcessStart(pid) == start;
        }
        catch (ArgumentException) { return false; }      // no such process
        catch (InvalidOperationException) { return false; }
    }

    /// <summary>The start time of a process (clock ticks since boot from /proc on Linux, else the .NET start time).</summary>
    static string? ProcessStart(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // Field 22 (starttime) counts from after the ")" that closes the command name, which may itself hold spaces.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return "boot+" + fields[19];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or IndexOutOfRangeException or ArgumentOutOfRangeException)
        {
            try { using var p = Process.GetProcessById(pid); return p.StartTime.ToUniversalTime().ToString("O"); }
            catch (Exception) { return null; }
        }
    }

    static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    public void Dispose()
    {
        if (_released) return;
        _released = true;
        lock (Held)
        {
            if (!Held.TryGetValue(_path, out var count)) return;
            if (count > 1) { Held[_path] = count - 1; return; }
            Held.Remove(_path);
            TryDelete(_path);
        }
    }
}
