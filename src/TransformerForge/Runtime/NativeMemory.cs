using System.Globalization;
using System.Runtime.InteropServices;

namespace TransformerForge.Runtime;

/// <summary>
/// Keeps the process's resident memory flat over long runs. libtorch frees a step's activations to the C allocator
/// (glibc malloc), which keeps freed pages for reuse; as the mix of sizes shifts from step to step its arenas
/// fragment and resident memory creeps up (measured: 460 MiB at step 3, 790 MiB at step 65 of a 4-layer decoder, with
/// no live tensor more). <see cref="TrimIfGrown"/>, called between steps, hands free pages back to the kernel
/// (<c>malloc_trim</c>) once resident memory has grown by <see cref="GrowthToTrim"/> over the level the steps
/// settled at (see <see cref="TrimPolicy"/>): rarely enough that the pages it frees are not faulted back in every
/// step, often enough to hold the peak. <c>TFORGE_MALLOC_TRIM=0</c> turns it off.
/// </summary>
public static class NativeMemory
{
    public const string Env = "TFORGE_MALLOC_TRIM";
    /// <summary>Relative growth of resident memory since the last trim that triggers the next.</summary>
    public static double GrowthToTrim { get; set; } = 0.10;
    static readonly bool Enabled = Environment.GetEnvironmentVariable(Env) != "0" && File.Exists("/proc/self/statm") && OperatingSystem.IsLinux();
    static readonly long PageSize = Environment.SystemPageSize;
    static readonly TrimPolicy Policy = new();
    static bool _trimUnavailable;

    /// <summary>Trims done so far (for benchmarks and tests).</summary>
    public static int Trims { get; private set; }

    /// <summary>Whether trimming is on (Linux with glibc, not turned off by <c>TFORGE_MALLOC_TRIM=0</c>).</summary>
    public static bool IsEnabled => Enabled && !_trimUnavailable;

    /// <summary>Resident memory in bytes (from <c>/proc/self/statm</c>), or -1 where it cannot be read.</summary>
    public static long ResidentBytes()
    {
        try
        {
            var fields = File.ReadAllText("/proc/self/statm").Split(' ');
            return long.Parse(fields[1], CultureInfo.InvariantCulture) * PageSize;
        }
        catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException or UnauthorizedAccessException)
        {
            return -1;
        }
    }

    /// <summary>Between steps: returns free heap pages to the kernel if resident memory grew enough over the steps' level.</summary>
    public static void TrimIfGrown()
    {
        if (!IsEnabled) return;
        long rss = ResidentBytes();
        if (rss < 0 || !Policy.ShouldTrim(rss, GrowthToTrim)) return;
        Trim();
    }

    /// <summary>Returns free heap pages of every arena to the kernel now.</summary>
    public static void Trim()
    {
        if (_trimUnavailable) return;
        try
        {
            MallocTrim(0);
            Trims++;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            _trimUnavailable = true; // not glibc
        }
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    static extern int MallocTrim(nuint pad);
}

/// <summary>
/// When to trim, from resident memory read between steps. The baseline is the level a step brings memory back to,
/// read at the first step after a trim (a trim releases pages that the next step faults right back in: measured
/// from the trim itself, the baseline would sit below every step's working set, and a model whose activations exceed
/// the growth allowed would be trimmed, and pay those page faults, at every step). A trim is due when memory has
/// grown by the relative growth (and at least 32 MiB) over that baseline: fragmentation creeping up, not the
/// working set coming back.
/// </summary>
public sealed class TrimPolicy
{
    const long MinimumGrowthBytes = 32L << 20;
    long _baseline;

    /// <summary>Takes resident memory <paramref name="rss"/> (bytes) between two steps; true when a trim is due now.</summary>
    public bool ShouldTrim(long rss, double growth)
    {
        if (_baseline == 0) { _baseline = rss; return false; }
        if (rss < _baseline + Math.Max(MinimumGrowthBytes, (long)(_baseline * growth))) return false;
        _baseline = 0; // the next reading, once the next step has faulted its working set back in, is the new level
        return true;
    }
}
