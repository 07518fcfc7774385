using System.Diagnostics;

namespace TransformerForge.Search;

/// <summary>
/// Names a worker as <c>host/pid/start</c> (start = the process's start time in kernel clock ticks), so a trial held by
/// a process that no longer exists on this machine is known to be abandoned at once, without waiting out the
/// heartbeat grace period; a reused pid has a different start time. Workers on other machines are judged by heartbeats.
/// </summary>
public static class WorkerIdentity
{
    static readonly Lazy<string> Current = new(() => Name(Environment.ProcessId));

    /// <summary>This process's worker name.</summary>
    public static string Self => Current.Value;

    public static string Name(int pid) => $"{Environment.MachineName}/{pid}/{StartTicks(pid)?.ToString() ?? "?"}";

    /// <summary>Whether <paramref name="worker"/> names a process of this machine that is not running any more.</summary>
    public static bool IsGone(string worker)
    {
        var parts = worker.Split('/');
        if (parts.Length != 3 || parts[0] != Environment.MachineName || !int.TryParse(parts[1], out var pid)) return false;
        if (worker == Self) return false;
        var start = StartTicks(pid);
        if (start is null) return OperatingSystem.IsLinux() || !IsRunning(pid);
        return parts[2] != start.Value.ToString();
    }

    /// <summary>Field 22 of <c>/proc/PID/stat</c> (start time since boot), or null when there is no such process.</summary>
    static long? StartTicks(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
            var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(rest[19]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException or ArgumentOutOfRangeException)
        {
            return null;
        }
    }

    static bool IsRunning(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
