using System.Diagnostics;
using System.Globalization;
using static TorchSharp.torch;

namespace TransformerForge.Runtime;

/// <summary>
/// How many intra-op threads libtorch uses, adapted to what the rest of the machine is doing.
/// <para>
/// libtorch's OpenMP threads meet at a barrier after every parallel operation. Waiting there, they either spin (fast
/// to wake, but they burn a core) or sleep (free, but each wake-up costs microseconds, which small operations such as
/// an optimizer's or a decoding step's pay hundreds of times); <see cref="TorchRuntime"/> has them spin briefly, then sleep. Neither helps
/// on a machine whose other processes already keep the cores busy: then any thread that waits at a barrier waits for
/// a core the scheduler gave to someone else. So, every <see cref="Interval"/>, the policy measures how much CPU the other
/// processes used (<c>/proc/stat</c> minus this process's share from <c>/proc/self/stat</c>) and uses only the cores
/// left over (at least one); one thread means no barrier at all.
/// </para>
/// <para>
/// It runs on the thread that computes (OpenMP's thread count belongs to the calling thread), from the generation loop
/// via <see cref="Adjust"/>. A training run chooses once, at its start, and keeps that count (<see cref="ForRun"/>):
/// sums split over another number of threads round differently, and a resumed run must agree bit for bit with an
/// uninterrupted one, so the count is saved in the checkpoint and a resumed run takes it again. A thread count the user
/// chose (<see cref="Fix"/>, <c>OMP_NUM_THREADS</c>, or <c>TFORGE_THREADS=fixed</c>) is left alone.
/// </para>
/// </summary>
public static class ThreadPolicy
{
    public const string Env = "TFORGE_THREADS";
    /// <summary>How often the machine is looked at.</summary>
    public static TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(1);

    static readonly object Gate = new();
    static readonly Stopwatch Clock = Stopwatch.StartNew();
    static int? _fixed;
    static bool _chosen;
    static bool? _adaptive;
    static TimeSpan? _lastCheck;
    static (long Busy, long Total, long Self)? _last;

    /// <summary>The thread count the policy chose last (0 before its first choice).</summary>
    public static int Current { get; private set; }

    /// <summary>The largest thread count: libtorch's choice when the process started (the machine's cores).</summary>
    public static int MaxThreads { get; private set; }

    /// <summary>Whether the thread count follows the machine's load (see the class summary).</summary>
    public static bool IsAdaptive
    {
        get
        {
            lock (Gate)
            {
                _adaptive ??= _fixed is null && Environment.GetEnvironmentVariable("OMP_NUM_THREADS") is null
                    && !string.Equals(Environment.GetEnvironmentVariable(Env), "fixed", StringComparison.OrdinalIgnoreCase)
                    && File.Exists("/proc/stat") && File.Exists("/proc/self/stat");
                return _adaptive.Value;
            }
        }
    }

    /// <summary>The user's choice (<c>--threads</c>): uses <paramref name="threads"/> threads from now on and stops adapting.</summary>
    public static void Fix(int threads)
    {
        Pin(threads);
        lock (Gate) _chosen = true;
    }

    static void Pin(int threads)
    {
        if (threads < 1) throw new ArgumentException($"threads must be positive, got {threads}");
        lock (Gate)
        {
            _fixed = threads;
            _adaptive = false;
        }
        set_num_threads(threads);
    }

    /// <summary>The count the user chose: <see cref="Fix"/>, else <c>OMP_NUM_THREADS</c>; null when none.</summary>
    static int? UserChoice()
    {
        lock (Gate) if (_chosen) return _fixed;
        return int.TryParse(Environment.GetEnvironmentVariable("OMP_NUM_THREADS"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n)
            && n > 0 ? n : null;
    }

    /// <summary>
    /// Fixes the thread count for a training run and returns it. A run computes with one count from its first step to
    /// its last, and a resumed run with the count it was saved with: sums split over another number of threads round
    /// differently, so otherwise a resumed run would drift from an uninterrupted one in the last bits. See <see cref="RunThreads"/>.
    /// </summary>
    public static int ForRun(int? saved)
    {
        int threads = RunThreads(UserChoice(), saved, () => IsAdaptive ? MeasureOnce() : get_num_threads());
        Pin(threads);
        return threads;
    }

    /// <summary>
    /// A training run's thread count: the user's choice wins; else a resumed run keeps its saved count; else a new run
    /// takes <paramref name="measure"/> (the cores the other processes leave now, or libtorch's default where the
    /// count does not adapt).
    /// </summary>
    public static int RunThreads(int? userChoice, int? saved, Func<int> measure) => userChoice ?? saved ?? measure();

    /// <summary>The cores other processes leave free, measured once over a short window.</summary>
    static int MeasureOnce()
    {
        int max = get_num_threads();
        var first = Sample();
        Thread.Sleep(250);
        var second = Sample();
        if (first is not { } a || second is not { } b || b.Total <= a.Total) return max;
        int cores = Environment.ProcessorCount;
        double others = Math.Max(0, (b.Busy - a.Busy) - (b.Self - a.Self)) * cores / (double)(b.Total - a.Total);
        return Choose(max, cores, others);
    }

    /// <summary>
    /// Called between steps or tokens on the computing thread: at most once per <see cref="Interval"/>, sets libtorch's
    /// thread count to the cores the other processes left free. Cheap when it has nothing to do.
    /// </summary>
    public static void Adjust()
    {
        if (!IsAdaptive) return;
        int threads;
        lock (Gate)
        {
            var now = Clock.Elapsed;
            if (_lastCheck is { } last && now - last < Interval) return;
            _lastCheck = now;
            if (MaxThreads == 0) MaxThreads = get_num_threads();
            var sample = Sample();
            if (sample is null) return;
            var previous = _last;
            _last = sample;
            if (previous is not { } p) return;
            long total = sample.Value.Total - p.Total, busy = sample.Value.Busy - p.Busy, self = sample.Value.Self - p.Self;
            if (total <= 0) return;
            int cores = Environment.ProcessorCount;
            double others = Math.Max(0, busy - self) * cores / (double)total;
            threads = Choose(MaxThreads, cores, others);
            Current = threads;
        }
        if (threads != get_num_threads()) set_num_threads(threads);
    }

    /// <summary>
    /// The thread count for a machine of <paramref name="cores"/> cores on which other processes kept
    /// <paramref name="othersBusyCores"/> cores busy: the cores they left (a core counts as taken from half use on), at
    /// least 1, at most <paramref name="maxThreads"/>.
    /// </summary>
    public static int Choose(int maxThreads, int cores, double othersBusyCores)
    {
        int free = cores - (int)Math.Round(othersBusyCores, MidpointRounding.AwayFromZero);
        return Math.Clamp(free, 1, Math.Max(1, maxThreads));
    }

    /// <summary>(busy ticks of all CPUs, all ticks, this process's ticks), or null where /proc cannot be read.</summary>
    static (long Busy, long Total, long Self)? Sample()
    {
        try
        {
            string? cpu;
            using (var stat = new StreamReader("/proc/stat")) cpu = stat.ReadLine();
            if (cpu is null || !cpu.StartsWith("cpu ", StringComparison.Ordinal)) return null;
            var f = cpu.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(x => long.Parse(x, CultureInfo.InvariantCulture)).ToArray();
            // user nice system idle iowait irq softirq steal (guest time is already in user)
            long total = f.Take(8).Sum(), idle = f[3] + f[4];
            var self = File.ReadAllText("/proc/self/stat");
            // Fields after the command name (which may hold spaces) start after the last ')'; utime and stime are 14 and 15.
            var rest = self[(self.LastIndexOf(')') + 2)..].Split(' ');
            long mine = long.Parse(rest[11], CultureInfo.InvariantCulture) + long.Parse(rest[12], CultureInfo.InvariantCulture);
            return (total - idle, total, mine);
        }
        catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
