using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace TransformerForge.Search;

/// <summary>
/// A study in a PostgreSQL database, for workers on many machines (as Optuna's RDB storage: stateless workers, all
/// state in the database). Tables <c>tforge_studies</c>, <c>tforge_trials</c> and <c>tforge_meta</c> in the connection's
/// schema, created on first use under an advisory lock (so workers starting at once on an empty database agree).
/// Same guarantees as <see cref="SqliteStudyStorage"/> (see <see cref="IStudyStorage"/>), with the database doing the
/// arbitration: the waiting trial is taken with <c>FOR UPDATE SKIP LOCKED</c>, a new trial's number is backed by
/// <c>UNIQUE (study_id, number)</c> (the loser of a race retries with the fresh history), every time is the server's
/// <c>now()</c> (workers' clocks never matter), and a trial counts as silent only once it has not beaten for the grace
/// period since the later of its last heartbeat and the server's start (a restarted server does not orphan live trials).
/// <para>Losing the database is survived: an operation that fails on a broken connection (a restart, a failover, a
/// network cut) is retried on a new one for up to <see cref="ReconnectFor"/>. An operation whose commit may have landed
/// before the connection broke is checked before it is repeated (each claim carries a token), so a retry never claims
/// a second trial or counts a result twice. Thread-safe (a pool of connections).</para>
/// </summary>
public sealed class PostgresStudyStorage : IStudyStorage
{
    const int SchemaVersion = 1;
    /// <summary>The advisory lock key that serialises schema creation ("tforge" in ASCII).</summary>
    const long SchemaLock = 0x74666f726765;

    readonly NpgsqlDataSource _source;
    readonly Action<string>? _log;
    readonly object _cacheLock = new();
    /// <summary>Finished trials by study and id: they never change, so they are read once.</summary>
    readonly Dictionary<long, Dictionary<long, TrialRecord>> _finished = new();
    long _roundTrips;

    /// <param name="url">A <c>postgresql://</c> URL (<see cref="PostgresUrl"/>).</param>
    /// <param name="reconnectFor">How long an operation keeps retrying while the database is unreachable (default 10 minutes).</param>
    /// <param name="log">Told when the database becomes unreachable and the storage starts retrying.</param>
    public PostgresStudyStorage(string url, TimeSpan? reconnectFor = null, Action<string>? log = null)
        : this(PostgresUrl.Parse(url), reconnectFor, log)
    {
    }

    public PostgresStudyStorage(NpgsqlConnectionStringBuilder settings, TimeSpan? reconnectFor = null, Action<string>? log = null)
    {
        var copy = new NpgsqlConnectionStringBuilder(settings.ConnectionString);
        if (string.IsNullOrEmpty(copy.ApplicationName)) copy.ApplicationName = "tforge";
        // The same few statements run again and again on pooled connections that keep no session state: prepare them
        // once per connection, and skip the session reset when a connection returns to the pool.
        if (copy.MaxAutoPrepare == 0) copy.MaxAutoPrepare = 32;
        copy.NoResetOnClose = true;
        Description = PostgresUrl.Describe(copy);
        ReconnectFor = reconnectFor ?? TimeSpan.FromMinutes(10);
        _log = log;
        _source = NpgsqlDataSource.Create(copy);
        try
        {
            Retry("open the study tables", (c, _) => CreateSchema(c));
        }
        catch
        {
            _source.Dispose();
            throw;
        }
    }

    /// <summary>The database as a URL without secrets.</summary>
    public string Description { get; }

    public TimeSpan ReconnectFor { get; }

    /// <summary>Statements sent to the server so far (a batch of statements counts once).</summary>
    public long RoundTrips => Interlocked.Read(ref _roundTrips);

    bool CreateSchema(NpgsqlConnection c)
    {
        // One batch, one transaction: the lock makes concurrent first starts wait for each other's tables.
        using var batch = Batch(c,
            $"SELECT pg_advisory_xact_lock({SchemaLock})",
            $"""
            DO $$ BEGIN
              IF to_regclass('tforge_meta') IS NULL THEN
                CREATE TABLE tforge_meta (key text PRIMARY KEY, value text NOT NULL);
                INSERT INTO tforge_meta (key, value) VALUES ('schema', '{SchemaVersion}');
              END IF;
              IF to_regclass('tforge_studies') IS NULL THEN
                CREATE TABLE tforge_studies (
                  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                  name text NOT NULL UNIQUE,
                  definition text NOT NULL,
                  max_trials integer NOT NULL CHECK (max_trials >= 0),
                  created_at timestamptz NOT NULL DEFAULT now());
              END IF;
              IF to_regclass('tforge_trials') IS NULL THEN
                CREATE TABLE tforge_trials (
                  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                  study_id bigint NOT NULL REFERENCES tforge_studies (id),
                  number integer NOT NULL CHECK (number >= 0),
                  state text NOT NULL CHECK (state IN ('waiting', 'running', 'complete', 'pruned', 'failed')),
                  spec text NOT NULL,
                  spec_key text NOT NULL,
                  genome text NOT NULL,
                  plan text NOT NULL,
                  seed integer NOT NULL,
                  metrics text,
                  intermediate text,
                  error text,
                  worker text,
                  attempt integer NOT NULL DEFAULT 0,
                  claim uuid,
                  created_at timestamptz NOT NULL DEFAULT now(),
                  started_at timestamptz,
                  heartbeat_at timestamptz,
                  finished_at timestamptz,
                  seconds double precision,
                  UNIQUE (study_id, number));
                CREATE INDEX tforge_trials_by_state ON tforge_trials (study_id, state, number);
              END IF;
            END $$
            """);
        Interlocked.Increment(ref _roundTrips);
        batch.ExecuteNonQuery();
        using var cmd = Command(c, "SELECT value FROM tforge_meta WHERE key = 'schema'");
        using var r = Execute(cmd);
        var version = r.Read() ? r.GetString(0) : null;
        if (version != SchemaVersion.ToString(CultureInfo.InvariantCulture))
            throw new StudyStorageException($"the study tables in {Description} have schema version {version ?? "none"}; this tforge reads version {SchemaVersion}");
        return true;
    }

    public StudyInfo OpenOrCreate(StudyDefinition definition, int maxTrials) => Retry("create the study", (c, _) =>
    {
        // Inserted unless the name exists (a concurrent insert of the name waits for the other to commit, then does
        // nothing); the second statement, with a fresh snapshot, reads whichever row won.
        using var batch = Batch(c,
            "INSERT INTO tforge_studies (name, definition, max_trials) VALUES (@name, @def, @max) ON CONFLICT (name) DO NOTHING RETURNING id",
            "SELECT id, definition, max_trials, created_at FROM tforge_studies WHERE name = @name");
        Set(batch.BatchCommands[0], ("name", definition.Name), ("def", definition.ToJsonString()), ("max", maxTrials));
        Set(batch.BatchCommands[1], ("name", definition.Name));
        using var r = ExecuteBatch(batch);
        r.NextResult();
        return r.Read() ? ReadStudy(r) : throw new InvalidOperationException("the study row vanished");
    });

    public StudyInfo? Find(string name) => Retry("read the study", (c, _) =>
    {
        using var cmd = Command(c, "SELECT id, definition, max_trials, created_at FROM tforge_studies WHERE name = @name", ("name", name));
        using var r = Execute(cmd);
        return r.Read() ? ReadStudy(r) : null;
    });

    public IReadOnlyList<StudyInfo> List() => Retry("list the studies", (c, _) =>
    {
        using var cmd = Command(c, "SELECT id, definition, max_trials, created_at FROM tforge_studies ORDER BY id");
        using var r = Execute(cmd);
        var list = new List<StudyInfo>();
        while (r.Read()) list.Add(ReadStudy(r));
        return list;
    });

    static StudyInfo ReadStudy(NpgsqlDataReader r) =>
        new(r.GetInt64(0), StudyDefinition.FromJson(StudyJson.Object(r.GetString(1))), r.GetInt32(2), r.GetFieldValue<DateTimeOffset>(3));

    public void SetMaxTrials(long studyId, int maxTrials) => Retry("change the study's trial count", (c, _) =>
    {
        using var cmd = Command(c, "UPDATE tforge_studies SET max_trials = @max WHERE id = @id", ("max", maxTrials), ("id", studyId));
        return ExecuteNonQuery(cmd);
    });

    const string TrialColumns = "id, number, state, spec, spec_key, genome, plan, seed, metrics, intermediate, error, worker, attempt, created_at, started_at, heartbeat_at, finished_at, seconds";

    public IReadOnlyList<TrialRecord> Trials(long studyId) => Retry("read the trials", (c, _) =>
    {
        using var batch = c.CreateBatch();
        var known = AddTrialsQuery(batch, studyId);
        using var r = ExecuteBatch(batch);
        return MergeTrials(studyId, known, ReadTrials(r));
    });

    /// <summary>Adds the query for the study's trials, less the finished ones this storage has read already (they
    /// never change); returns those, to merge with what the query returns.</summary>
    Dictionary<long, TrialRecord> AddTrialsQuery(NpgsqlBatch batch, long studyId)
    {
        Dictionary<long, TrialRecord> known;
        lock (_cacheLock) known = _finished.TryGetValue(studyId, out var k) ? new(k) : new();
        var cmd = new NpgsqlBatchCommand($"SELECT {TrialColumns} FROM tforge_trials WHERE study_id = @study AND id <> ALL(@known) ORDER BY number");
        Set(cmd, ("study", studyId), ("known", known.Keys.ToArray()));
        batch.BatchCommands.Add(cmd);
        return known;
    }

    List<TrialRecord> MergeTrials(long studyId, Dictionary<long, TrialRecord> known, List<TrialRecord> fresh)
    {
        lock (_cacheLock)
        {
            if (!_finished.TryGetValue(studyId, out var cache)) _finished[studyId] = cache = new();
            foreach (var t in fresh.Where(t => t.IsFinished)) cache[t.Id] = t;
        }
        return known.Values.Concat(fresh).OrderBy(t => t.Number).ToList();
    }

    static List<TrialRecord> ReadTrials(NpgsqlDataReader r)
    {
        var list = new List<TrialRecord>();
        while (r.Read()) list.Add(ReadTrial(r));
        return list;
    }

    static TrialRecord ReadTrial(NpgsqlDataReader r) => TrialRows.Read(r, (row, i) => row.GetFieldValue<DateTimeOffset>(i));

    /// <summary>What one claim round trip found.</summary>
    sealed record ClaimStep(TrialRecord? Claimed, IReadOnlyList<(long Id, string Worker, int Attempt)> Running, int MaxTrials, List<TrialRecord>? History);

    public ClaimResult Claim(long studyId, string worker, Func<IReadOnlyList<TrialRecord>, int, NewTrial?> propose, ClaimPolicy policy)
    {
        // The token marks the row this call claims, so a retry after a connection lost at commit finds it.
        var token = Guid.NewGuid();
        while (true)
        {
            var step = Retry("claim a trial", (c, retrying) =>
                retrying && Held(c, studyId, worker, token) is { } mine ? new ClaimStep(mine, [], 0, null) : TakeWaiting(c, studyId, worker, token, policy));
            var gone = policy.WorkerIsGone is { } isGone ? step.Running.Where(t => isGone(t.Worker)).ToList() : [];
            if (gone.Count > 0) Retry("re-queue abandoned trials", (c, _) => RequeueGone(c, gone, policy));
            if (step.Claimed is { } claimed) return new ClaimResult.Claimed(claimed, IsNew: false);
            if (gone.Count > 0) continue;   // they wait now: take one of them

            var history = step.History!;
            if (history.Count >= step.MaxTrials)
            {
                int open = history.Count(t => !t.IsFinished);
                return open > 0 ? new ClaimResult.Wait($"all {step.MaxTrials} trials are proposed; {open} still running")
                    : new ClaimResult.Done($"all {step.MaxTrials} trials are finished");
            }
            // Asked outside any transaction (an algorithm may be slow); the insert below settles any race.
            var next = propose(history, history.Count);
            if (next is null) return new ClaimResult.Wait("the algorithm waits for running trials");
            var inserted = Retry("add a trial", (c, retrying) =>
                retrying && Held(c, studyId, worker, token) is { } mine ? mine : Insert(c, studyId, history.Count, next, worker, token));
            if (inserted is not null) return new ClaimResult.Claimed(inserted, IsNew: true);
            // Another worker took this number first, or a trial became waiting: start over with the fresh history.
        }
    }

    /// <summary>One round trip: re-queue silent trials, list the running ones, take the lowest waiting trial, and read
    /// the trial count and history (used when nothing was waiting).</summary>
    ClaimStep TakeWaiting(NpgsqlConnection c, long studyId, string worker, Guid token, ClaimPolicy policy)
    {
        var grace = policy.Grace.TotalSeconds.ToString("0", CultureInfo.InvariantCulture);
        using var batch = Batch(c,
            // Silent: no heartbeat for the grace period, counted from the server's start if that is later.
            $"""
            WITH requeued AS (
              UPDATE tforge_trials SET
                state = CASE WHEN attempt >= @max_attempts THEN 'failed' ELSE 'waiting' END,
                error = CASE WHEN attempt >= @max_attempts
                  THEN 'abandoned ' || attempt || ' times, the limit (worker ' || coalesce(worker, '?') || ' sent no heartbeat for {grace} s)'
                  ELSE 're-queued after attempt ' || attempt || ': worker ' || coalesce(worker, '?') || ' sent no heartbeat for {grace} s' END,
                finished_at = CASE WHEN attempt >= @max_attempts THEN now() END,
                claim = NULL
              WHERE id IN (SELECT id FROM tforge_trials WHERE study_id = @study AND state = 'running'
                           AND GREATEST(heartbeat_at, pg_postmaster_start_time()) <= now() - @grace
                           FOR UPDATE SKIP LOCKED)
              RETURNING 1)
            SELECT count(*) FROM requeued
            """,
            "SELECT id, worker, attempt FROM tforge_trials WHERE study_id = @study AND state = 'running'",
            $"""
            UPDATE tforge_trials SET state = 'running', worker = @worker, attempt = attempt + 1, started_at = now(), heartbeat_at = now(), claim = @token
            WHERE id = (SELECT id FROM tforge_trials WHERE study_id = @study AND state = 'waiting' ORDER BY number LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING {TrialColumns}
            """,
            "SELECT max_trials FROM tforge_studies WHERE id = @study");
        Set(batch.BatchCommands[0], ("study", studyId), ("max_attempts", policy.MaxAttempts), ("grace", policy.Grace));
        Set(batch.BatchCommands[1], ("study", studyId));
        Set(batch.BatchCommands[2], ("study", studyId), ("worker", worker), ("token", token));
        Set(batch.BatchCommands[3], ("study", studyId));
        var known = AddTrialsQuery(batch, studyId);

        using var r = ExecuteBatch(batch);
        r.NextResult();
        var running = new List<(long, string, int)>();
        while (r.Read()) if (!r.IsDBNull(1)) running.Add((r.GetInt64(0), r.GetString(1), r.GetInt32(2)));
        r.NextResult();
        var claimed = r.Read() ? ReadTrial(r) : null;
        r.NextResult();
        int maxTrials = r.Read() ? r.GetInt32(0) : throw new StudyStorageException($"study {studyId} does not exist in {Description}");
        r.NextResult();
        var history = MergeTrials(studyId, known, ReadTrials(r));
        return new ClaimStep(claimed, running, maxTrials, claimed is null ? history : null);
    }

    /// <summary>Re-queues (or fails, after their attempts) trials whose worker is known to be gone; each only if that
    /// same attempt still holds it.</summary>
    bool RequeueGone(NpgsqlConnection c, IReadOnlyList<(long Id, string Worker, int Attempt)> gone, ClaimPolicy policy)
    {
        using var batch = c.CreateBatch();
        foreach (var (id, w, attempt) in gone)
        {
            bool giveUp = attempt >= policy.MaxAttempts;
            var cmd = new NpgsqlBatchCommand(giveUp
                ? "UPDATE tforge_trials SET state = 'failed', error = @error, finished_at = now(), claim = NULL WHERE id = @id AND state = 'running' AND worker = @worker AND attempt = @attempt"
                : "UPDATE tforge_trials SET state = 'waiting', error = @error, claim = NULL WHERE id = @id AND state = 'running' AND worker = @worker AND attempt = @attempt");
            Set(cmd, ("id", id), ("worker", w), ("attempt", attempt),
                ("error", giveUp ? $"abandoned {attempt} times, the limit (worker {w} is gone)" : $"re-queued after attempt {attempt}: worker {w} is gone"));
            batch.BatchCommands.Add(cmd);
        }
        Interlocked.Increment(ref _roundTrips);
        batch.ExecuteNonQuery();
        return true;
    }

    /// <summary>Inserts trial <paramref name="number"/> as running for this worker, unless the number is taken, a
    /// trial waits to be re-run, or the study has its trials; null then.</summary>
    TrialRecord? Insert(NpgsqlConnection c, long studyId, int number, NewTrial next, string worker, Guid token)
    {
        using var cmd = Command(c, $"""
            INSERT INTO tforge_trials (study_id, number, state, spec, spec_key, genome, plan, seed, worker, attempt, claim, started_at, heartbeat_at)
            SELECT @study, @number, 'running', @spec, @key, @genome, @plan, @seed, @worker, 1, @token, now(), now()
            WHERE NOT EXISTS (SELECT 1 FROM tforge_trials WHERE study_id = @study AND state = 'waiting')
              AND @number < (SELECT max_trials FROM tforge_studies WHERE id = @study)
            ON CONFLICT (study_id, number) DO NOTHING
            RETURNING {TrialColumns}
            """,
            ("study", studyId), ("number", number), ("spec", next.Spec.ToJsonString()), ("key", next.Key), ("genome", next.Genome.ToJsonString()),
            ("plan", StudyJson.Plan(next.Plan)), ("seed", next.Plan.Seed), ("worker", worker), ("token", token));
        using var r = Execute(cmd);
        return r.Read() ? ReadTrial(r) : null;
    }

    /// <summary>The trial this claim's token marks, if the claim committed before its connection broke.</summary>
    TrialRecord? Held(NpgsqlConnection c, long studyId, string worker, Guid token)
    {
        using var cmd = Command(c, $"SELECT {TrialColumns} FROM tforge_trials WHERE study_id = @study AND claim = @token AND state = 'running' AND worker = @worker",
            ("study", studyId), ("token", token), ("worker", worker));
        using var r = Execute(cmd);
        return r.Read() ? ReadTrial(r) : null;
    }

    /// <summary>One attempt, no retries: a missed beat is harmless unless it lasts the grace period, and a worker must
    /// not stall on its heartbeat while the database is away.</summary>
    public bool Heartbeat(long trialId, string worker, int attempt)
    {
        try
        {
            using var c = _source.OpenConnection();
            using var cmd = Command(c, "UPDATE tforge_trials SET heartbeat_at = now() WHERE id = @id AND state = 'running' AND worker = @worker AND attempt = @attempt",
                ("id", trialId), ("worker", worker), ("attempt", attempt));
            return ExecuteNonQuery(cmd) == 1;
        }
        catch (Exception e) when (IsTransient(e))
        {
            _source.Clear();
            throw new StudyStorageException($"heartbeat to {Description} failed: {Message(e)}", e);
        }
    }

    public bool Release(long trialId, string worker, int attempt) => Retry("give the trial back", (c, _) =>
    {
        using var cmd = Command(c, """
            UPDATE tforge_trials SET state = 'waiting', attempt = attempt - 1, error = 'released by its worker', claim = NULL
            WHERE id = @id AND state = 'running' AND worker = @worker AND attempt = @attempt
            """, ("id", trialId), ("worker", worker), ("attempt", attempt));
        return ExecuteNonQuery(cmd) == 1;
    });

    public bool Finish(long trialId, string worker, int attempt, TrialResult result)
    {
        if (!result.State.IsFinished()) throw new ArgumentException($"a trial finishes as complete, pruned or failed, not {result.State.Name()}", nameof(result));
        return Retry("record the trial's result", (c, retrying) =>
        {
            using var cmd = Command(c, """
                UPDATE tforge_trials SET state = @state, metrics = @metrics, intermediate = @intermediate, error = @error,
                    worker = @worker, finished_at = now(), seconds = @seconds, claim = NULL
                WHERE id = @id AND ((state = 'running' AND worker = @worker AND attempt = @attempt) OR state = 'waiting')
                """,
                ("state", result.State.Name()), ("metrics", StudyJson.Metrics(result.Metrics)), ("intermediate", StudyJson.Intermediate(result.Intermediate)),
                ("error", (object?)result.Error ?? DBNull.Value), ("worker", worker), ("seconds", result.Seconds), ("id", trialId), ("attempt", attempt));
            if (ExecuteNonQuery(cmd) == 1) return true;
            if (!retrying) return false;
            // The first try may have committed before its connection broke: then the trial is finished by this attempt.
            using var check = Command(c, "SELECT 1 FROM tforge_trials WHERE id = @id AND state IN ('complete', 'pruned', 'failed') AND worker = @worker AND attempt = @attempt AND state = @state",
                ("id", trialId), ("worker", worker), ("attempt", attempt), ("state", result.State.Name()));
            using var r = Execute(check);
            return r.Read();
        });
    }

    /// <summary>Runs <paramref name="operation"/> on a pooled connection, again on a new one while the failure is a
    /// lost or refused connection, for up to <see cref="ReconnectFor"/>. The flag tells a repeat from the first try.</summary>
    T Retry<T>(string what, Func<NpgsqlConnection, bool, T> operation)
    {
        Stopwatch? outage = null;
        var delay = TimeSpan.FromMilliseconds(50);
        int failures = 0;
        while (true)
        {
            try
            {
                using var c = _source.OpenConnection();
                var result = operation(c, failures > 0);
                if (failures > 1) _log?.Invoke($"the study database {Description} is back");
                return result;
            }
            catch (Exception e) when (IsTransient(e))
            {
                outage ??= Stopwatch.StartNew();
                if (outage.Elapsed >= ReconnectFor)
                    throw new StudyStorageException($"cannot {what}: the study database {Description} was unreachable for {ReconnectFor.TotalSeconds:0} s ({Message(e)})", e);
                // Pooled connections to a server that restarted are all dead: drop them rather than fail on each.
                if (failures == 0) _source.Clear();
                else if (failures == 1) _log?.Invoke($"the study database {Description} is unreachable ({Message(e)}); retrying for up to {ReconnectFor.TotalSeconds:0} s");
                failures++;
                Thread.Sleep(delay);
                delay = TimeSpan.FromMilliseconds(Math.Min(2000, delay.TotalMilliseconds * 2));
            }
            catch (PostgresException e)
            {
                throw new StudyStorageException($"cannot {what}: {Description} answered {e.SqlState}: {e.MessageText}", e);
            }
            catch (NpgsqlException e)
            {
                throw new StudyStorageException($"cannot {what} in {Description}: {Message(e)}", e);
            }
        }
    }

    /// <summary>Failures that another try on a new connection may not meet: the connection broke or was refused, the
    /// server is shutting down or starting, a timeout, or a serialization conflict.</summary>
    static bool IsTransient(Exception e) => e switch
    {
        PostgresException p => p.SqlState.StartsWith("08", StringComparison.Ordinal)
                               || p.SqlState is "57P01" or "57P02" or "57P03" or "40001" or "40P01" or "53300" or "55P03",
        NpgsqlException n => n.IsTransient || n.InnerException is IOException or System.Net.Sockets.SocketException or TimeoutException,
        IOException or System.Net.Sockets.SocketException or TimeoutException => true,
        _ => false,
    };

    /// <summary>An exception's message with its cause (e.g. "Failed to connect to 10.0.0.5:5432 (Connection refused)").</summary>
    static string Message(Exception e) => e.InnerException is { } inner && !e.Message.Contains(inner.Message, StringComparison.Ordinal)
        ? $"{e.Message.TrimEnd('.')} ({inner.Message.TrimEnd('.')})" : e.Message.TrimEnd('.');

    static NpgsqlBatch Batch(NpgsqlConnection c, params string[] statements)
    {
        var batch = c.CreateBatch();
        foreach (var s in statements) batch.BatchCommands.Add(new NpgsqlBatchCommand(s));
        return batch;
    }

    NpgsqlDataReader ExecuteBatch(NpgsqlBatch batch)
    {
        Interlocked.Increment(ref _roundTrips);
        return batch.ExecuteReader();
    }

    static NpgsqlCommand Command(NpgsqlConnection c, string sql, params (string Name, object? Value)[] parameters)
    {
        var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (name, value) in parameters) cmd.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return cmd;
    }

    static void Set(NpgsqlBatchCommand cmd, params (string Name, object? Value)[] parameters)
    {
        foreach (var (name, value) in parameters) cmd.Parameters.AddWithValue(name, value ?? DBNull.Value);
    }

    NpgsqlDataReader Execute(NpgsqlCommand cmd)
    {
        Interlocked.Increment(ref _roundTrips);
        return cmd.ExecuteReader();
    }

    int ExecuteNonQuery(NpgsqlCommand cmd)
    {
        Interlocked.Increment(ref _roundTrips);
        return cmd.ExecuteNonQuery();
    }

    public void Dispose() => _source.Dispose();
}
