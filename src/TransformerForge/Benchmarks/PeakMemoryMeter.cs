using System.Diagnostics;
using System.Runtime.InteropServices;

namespace TransformerForge.Benchmarks;

/// <summary>
/// Measures how far the process's resident memory (RSS) rises above where it stood when the meter started: the
/// memory a piece of work needs on top of what was already resident. Linux only (reads <c>/proc/self/status</c>).
/// <para>
/// Preferred method: reset the kernel's peak-RSS mark (<c>echo 5 &gt; /proc/self/clear_refs</c>, Linux 4.0+) and read
/// <c>VmHWM</c> at the end, which catches every peak however short. Where that file cannot be written, a background
/// thread samples <c>VmRSS</c> every millisecond, which can miss peaks shorter than that.
/// </para>
/// <para>
/// Before the baseline, freed heap memory is handed back to the kernel (glibc <c>malloc_trim</c>), so that memory an
/// earlier piece of work freed but the allocator kept cannot be reused unseen by the next one.
/// </para>
/// </summary>
public sealed class PeakMemoryMeter : IDisposable
{
    private const string StatusFile = "/proc/self/status";
    private const string ClearRefsFile = "/proc/self/clear_refs";

    private readonly long _baselineKiB;
    private readonly Thread? _sampler;
    private long _sampledPeakKiB;
    private volatile bool _stopping;

    private PeakMemoryMeter(long baselineKiB, bool sample)
    {
        _baselineKiB = baselineKiB;
        _sampledPeakKiB = baselineKiB;
        if (!sample) return;
        _sampler = new Thread(Sample) { IsBackground = true, Name = nameof(PeakMemoryMeter) };
        _sampler.Start();
    }

    /// <summary>True when the process's memory can be read at all (Linux).</summary>
    public static bool IsSupported => File.Exists(StatusFile);

    /// <summary>How the peak is found: <c>VmHWM</c> after a reset, or sampling <c>VmRSS</c>.</summary>
    public string Method => _sampler is null ? "VmHWM after a reset" : "VmRSS sampled every 1 ms";

    /// <summary>Resident memory when the meter started, in MiB.</summary>
    public double BaselineMiB => _baselineKiB / 1024.0;

    /// <summary>Returns memory the allocator kept to the kernel, takes the baseline, and starts watching.</summary>
    public static PeakMemoryMeter Start()
    {
        if (!IsSupported) throw new PlatformNotSupportedException($"{StatusFile} is not there: peak memory is measured on Linux only");
        GC.Collect();
        GC.WaitForPendingFinalizers();
        TrimHeap();
        var baseline = ReadKiB("VmRSS");
        return new PeakMemoryMeter(baseline, sample: !TryResetPeak());
    }

    /// <summary>
    /// The process's highest resident memory so far (<c>VmHWM</c>), in MiB: what <c>getrusage</c>'s <c>ru_maxrss</c>
    /// reports to a Python process, so the two stacks of the side-by-side harness compare alike. NaN where not on Linux.
    /// </summary>
    public static double ProcessPeakMiB() => IsSupported ? ReadKiB("VmHWM") / 1024.0 : double.NaN;

    /// <summary>The process's resident memory now (<c>VmRSS</c>), in MiB; NaN where not on Linux.</summary>
    public static double ProcessResidentMiB() => IsSupported ? ReadKiB("VmRSS") / 1024.0 : double.NaN;

    /// <summary>The highest resident memory since <see cref="Start"/>, minus the baseline, in MiB.</summary>
    public double PeakGrowthMiB()
    {
        var peak = _sampler is null ? ReadKiB("VmHWM") : Math.Max(Interlocked.Read(ref _sampledPeakKiB), ReadKiB("VmRSS"));
        return Math.Max(0, peak - _baselineKiB) / 1024.0;
    }

    public void Dispose()
    {
        _stopping = true;
        _sampler?.Join();
    }

    private void Sample()
    {
        while (!_stopping)
        {
            var rss = ReadKiB("VmRSS");
            if (rss > Interlocked.Read(ref _sampledPeakKiB)) Interlocked.Exchange(ref _sampledPeakKiB, rss);
            Thread.Sleep(1);
        }
    }

    private static bool TryResetPeak()
    {
        try
        {
            File.WriteAllText(ClearRefsFile, "5");
            // The reset sets VmHWM to the current RSS; if it did not, the file is there but ignored.
            return ReadKiB("VmHWM") <= ReadKiB("VmRSS") + 1024;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>A field of <c>/proc/self/status</c> such as <c>VmRSS:   123456 kB</c>, in KiB.</summary>
    private static long ReadKiB(string field)
    {
        foreach (var line in File.ReadLines(StatusFile))
        {
            if (!line.StartsWith(field + ":", StringComparison.Ordinal)) continue;
            var number = line[(field.Length + 1)..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
            return long.Parse(number, System.Globalization.CultureInfo.InvariantCulture);
        }
        throw new InvalidDataException($"{StatusFile} has no {field} line");
    }

    private static void TrimHeap()
    {
        try
        {
            MallocTrim(0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc: nothing to trim, the baseline may include freed memory.
            Debug.WriteLine($"malloc_trim unavailable: {e.Message}");
        }
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);
}
