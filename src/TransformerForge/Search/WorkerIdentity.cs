using System.Diagnostics;

namespace TransformerForge.Search;

/// <summary>
/// Names a worker as <c>host/pid/start/space</c> (start = the process's start time in kernel clock ticks; space = this
/// boot of the kernel and the pid namespace the pid belongs to), so a trial held by a process that no longer exists on
/// this machine is known to be abandoned at once, without waiting out the heartbeat grace period; a reused pid has a
/// different start time. Workers anywhere else — another machine, or another container on this one that shares its
/// host name but not its pids — are judged by heartbeats only.
/// </summary>
public static class WorkerIdentity
{
    static readonly Lazy<string> Current = new(() => Name(Environment.ProcessId));
    static readonly Lazy<string> Space = new(PidSpace);

    /// <summary>This process's worker name.</summary>
    public static string Self => Current.Value;

    public static string Name(int pid) => $"{Environment.MachineName}/{pid}/{StartTicks(pid)?.ToString() ?? "?"}/{Space.Value}";

    /// <summary>Whether <paramref name="worker"/> names a process of this machine (and pid namespace) that is not running any more.</summary>
    public static bool IsGone(string worker)
    {
        var parts = worker.Split('/');
        if (parts.Length is not (3 or 4) || parts[0] != Environment.MachineName || !int.TryParse(parts[1], out var pid)) return false;
        // Names without the space (written by earlier versions) are trusted by host name alone, as they were.
        if (parts.Length == 4 && (parts[3] != Space.Value || Space.Value == "?")) return false;
        if (worker == Self) return false;
        var start = StartTicks(pid);
        if (start is null) return OperatingSystem.IsLinux() || !IsRunning(pid);
        return parts[2] != start.Value.ToString();
    }

    /// <summary>The kernel boot id's first 8 hex digits and the pid namespace's inode: equal for two processes exactly
    /// when their pids mean the same processes.</summary>
    static string PidSpace()
    {
        try
        {
            var boot = File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim();
            var ns = new FileInfo("/proc/self/ns/pid").LinkTarget;   // "pid:[4026531836]"
            var inode = ns is null ? "" : new string(ns.Where(char.IsAsciiDigit).ToArray());
            return boot.Length >= 8 && inode.Length > 0 ? $"{boot[..8]}-{inode}" : "?";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "?";
        }
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
