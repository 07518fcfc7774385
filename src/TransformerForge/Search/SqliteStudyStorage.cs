using System.Globalization;
using Microsoft.Data.Sqlite;

namespace TransformerForge.Search;

/// <summary>
/// A study in one SQLite file (the default): a <c>studies</c> row per study and a <c>trials</c> row per trial. Every
/// change is a transaction taken with <c>BEGIN IMMEDIATE</c> (one writer at a time, so claims are exact between
/// processes on this machine); the file is in WAL mode with full sync, so a committed trial survives a kill at any
/// moment. Thread-safe (one connection, used under a lock).
/// </summary>
public sealed class SqliteStudyStorage : IStudyStorage
{
    const int SchemaVersion = 1;
    readonly SqliteConnection _connection;
    readonly object _lock = new();

    public SqliteStudyStorage(string path)
    {
        Path = System.IO.Path.GetFullPath(path);
        var dir = System.IO.Path.GetDirectoryName(Path);
        if (!string.IsNullOrEmpty(dir) && !Directory.Exists(dir)) throw new DirectoryNotFoundException($"the folder of study file '{path}' does not exist");
        var builder = new SqliteConnectionStringBuilder { DataSource = Path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = false, DefaultTimeout = 60 };
        _connection = new SqliteConnection(builder.ToString());
        try
        {
            _connection.Open();
            Execute("PRAGMA journal_mode=WAL;");
            Execute("PRAGMA synchronous=FULL;");
            Execute("PRAGMA busy_timeout=60000;");
            CreateSchema();
        }
        catch (SqliteException e)
        {
            _connection.Dispose();
            throw new InvalidDataException($"'{path}' is not a usable study file: {e.Message}", e);
        }
    }

    public string Path { get; }

    void CreateSchema()
    {
        using var tx = _connection.BeginTransaction();
        Execute("""
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS studies (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                definition TEXT NOT NULL,
                max_trials INTEGER NOT NULL,
                created_at REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS trials (
                id INTEGER PRIMARY KEY,
                study_id INTEGER NOT NULL REFERENCES studies(id),
                number INTEGER NOT NULL,
                state TEXT NOT NULL,
                spec TEXT NOT NULL,
                spec_key TEXT NOT NULL,
                genome TEXT NOT NULL,
                plan TEXT NOT NULL,
                seed INTEGER NOT NULL,
                metrics TEXT,
                intermediate TEXT,
                error TEXT,
                worker TEXT,
                attempt INTEGER NOT NULL DEFAULT 0,
                created_at REAL NOT NULL,
                started_at REAL,
                heartbeat_at REAL,
                finished_at REAL,
                seconds REAL,
                UNIQUE (study_id, number));
            CREATE INDEX IF NOT EXISTS trials_by_state ON trials (study_id, state, number);
            """, tx);
        var version = Scalar("SELECT value FROM meta WHERE key = 'schema'", tx);
        if (version is null) Execute($"INSERT INTO meta (key, value) VALUES ('schema', '{SchemaVersion}')", tx);
        else if (Convert.ToInt32(version, CultureInfo.InvariantCulture) != SchemaVersion)
            throw new InvalidDataException($"study file '{Path}' has schema version {version}; this tforge reads version {SchemaVersion}");
        tx.Commit();
    }

    public StudyInfo OpenOrCreate(StudyDefinition definition, int maxTrials)
    {
        lock (_lock)
        {
            using var tx = _connection.BeginTransaction();
            using (var insert = Command("INSERT INTO studies (name, definition, max_trials, created_at) VALUES ($name, $def, $max, $now) ON CONFLICT(name) DO NOTHING", tx))
            {
                insert.Parameters.AddWithValue("$name", definition.Name);
                insert.Parameters.AddWithValue("$def", definition.ToJsonString());
                insert.Parameters.AddWithValue("$max", maxTrials);
                insert.Parameters.AddWithValue("$now", Now());
                insert.ExecuteNonQuery();
            }
            var study = FindLocked(definition.Name, tx)!;
            tx.Commit();
            return study;
        }
    }

    public StudyInfo? Find(string name)
    {
        lock (_lock) return FindLocked(name, null);
    }

    StudyInfo? FindLocked(string name, SqliteTransaction? tx)
    {
        using var cmd = Command("SELECT id, definition, max_trials, created_at FROM studies WHERE name = $name", tx);
        cmd.Parameters.AddWithValue("$name", name);
        using var r = cmd.ExecuteReader();
        return r.Read() ? ReadStudy(r) : null;
    }

    public IReadOnlyList<StudyInfo> List()
    {
        lock (_lock)
        {
            using var cmd = Command("SELECT id, definition, max_trials, created_at FROM studies ORDER BY id", null);
            using var r = cmd.ExecuteReader();
            var list = new List<StudyInfo>();
            while (r.Read()) list.Add(ReadStudy(r));
            return list;
        }
    }

    static StudyInfo ReadStudy(SqliteDataReader r) =>
        new(r.GetInt64(0), StudyDefinition.FromJson(StudyJson.Object(r.GetString(1))), r.GetInt32(2), Time(r.GetDouble(3)));

    public void SetMaxTrials(long studyId, int maxTrials)
    {
        lock (_lock)
        {
            using var tx = _connection.BeginTransaction();
            using var cmd = Command("UPDATE studies SET max_trials = $max WHERE id = $id", tx);
            cmd.Parameters.AddWithValue("$max", maxTrials);
            cmd.Parameters.AddWithValue("$id", studyId);
            cmd.ExecuteNonQuery();
            tx.Commit();
        }
    }

    public IReadOnlyList<TrialRecord> Trials(long studyId)
    {
        lock (_lock) return TrialsLocked(studyId, null);
    }

    const string TrialColumns = "id, number, state, spec, spec_key, genome, plan, seed, metrics, intermediate, error, worker, attempt, created_at, started_at, heartbeat_at, finished_at, seconds";

    List<TrialRecord> TrialsLocked(long studyId, SqliteTransaction? tx)
    {
        using var cmd = Command($"SELECT {TrialColumns} FROM trials WHERE study_id = $study ORDER BY number", tx);
        cmd.Parameters.AddWithValue("$study", studyId);
        using var r = cmd.ExecuteReader();
        var list = new List<TrialRecord>();
        while (r.Read()) list.Add(ReadTrial(r));
        return list;
    }

    TrialRecord TrialLocked(long trialId, SqliteTransaction? tx)
    {
        using var cmd = Command($"SELECT {TrialColumns} FROM trials WHERE id = $id", tx);
        cmd.Parameters.AddWithValue("$id", trialId);
        using var r = cmd.ExecuteReader();
        return r.Read() ? ReadTrial(r) : throw new InvalidOperationException($"no trial with id {trialId}");
    }

    static TrialRecord ReadTrial(SqliteDataReader r) => TrialRows.Read(r, (row, i) => Time(row.GetDouble(i)));

    public ClaimResult Claim(long studyId, string worker, Func<IReadOnlyList<TrialRecord>, int, NewTrial?> propose, ClaimPolicy policy)
    {
        while (true)
        {
            lock (_lock)
            {
                using var tx = _connection.BeginTransaction();
                RequeueAbandoned(studyId, policy, tx);
                if (ClaimWaiting(studyId, worker, tx) is { } claimed)
                {
                    tx.Commit();
                    return new ClaimResult.Claimed(claimed, IsNew: false);
                }
                tx.Commit();
            }

            // No queued trial: ask the algorithm outside any transaction (it may take a while), then insert.
            IReadOnlyList<TrialRecord> history;
            int maxTrials;
            lock (_lock)
            {
                history = TrialsLocked(studyId, null);
                maxTrials = MaxTrialsLocked(studyId);
            }
            if (history.Count >= maxTrials)
            {
                int open = history.Count(t => !t.IsFinished);
                return open > 0 ? new ClaimResult.Wait($"all {maxTrials} trials are proposed; {open} still running")
                    : new ClaimResult.Done($"all {maxTrials} trials are finished");
            }
            var next = propose(history, history.Count);
            if (next is null) return new ClaimResult.Wait("the algorithm waits for running trials");

            lock (_lock)
            {
                using var tx = _connection.BeginTransaction();
                var count = Convert.ToInt32(Scalar($"SELECT COUNT(*) FROM trials WHERE study_id = {studyId}", tx), CultureInfo.InvariantCulture);
                var waiting = Convert.ToInt32(Scalar($"SELECT COUNT(*) FROM trials WHERE study_id = {studyId} AND state = 'waiting'", tx), CultureInfo.InvariantCulture);
                if (count != history.Count || waiting > 0) continue;   // another worker moved first: start over with its trials
                var now = Now();
                using (var insert = Command("""
                    INSERT INTO trials (study_id, number, state, spec, spec_key, genome, plan, seed, worker, attempt, created_at, started_at, heartbeat_at)
                    VALUES ($study, $number, 'running', $spec, $key, $genome, $plan, $seed, $worker, 1, $now, $now, $now)
                    """, tx))
                {
                    insert.Parameters.AddWithValue("$study", studyId);
                    insert.Parameters.AddWithValue("$number", count);
                    insert.Parameters.AddWithValue("$spec", next.Spec.ToJsonString());
                    insert.Parameters.AddWithValue("$key", next.Key);
                    insert.Parameters.AddWithValue("$genome", next.Genome.ToJsonString());
                    insert.Parameters.AddWithValue("$plan", StudyJson.Plan(next.Plan));
                    insert.Parameters.AddWithValue("$seed", next.Plan.Seed);
                    insert.Parameters.AddWithValue("$worker", worker);
                    insert.Parameters.AddWithValue("$now", now);
                    insert.ExecuteNonQuery();
                }
                var id = (long)Scalar("SELECT last_insert_rowid()", tx)!;
                var trial = TrialLocked(id, tx);
                tx.Commit();
                return new ClaimResult.Claimed(trial, IsNew: true);
            }
        }
    }

    int MaxTrialsLocked(long studyId) => Convert.ToInt32(Scalar($"SELECT max_trials FROM studies WHERE id = {studyId}", null), CultureInfo.InvariantCulture);

    void RequeueAbandoned(long studyId, ClaimPolicy policy, SqliteTransaction tx)
    {
        var stale = new List<(long Id, string? Worker, int Attempt, bool Gone)>();
        using (var cmd = Command("SELECT id, worker, attempt, heartbeat_at FROM trials WHERE study_id = $study AND state = 'running'", tx))
        {
            cmd.Parameters.AddWithValue("$study", studyId);
            using var r = cmd.ExecuteReader();
            double now = Now();
            while (r.Read())
            {
                var w = r.IsDBNull(1) ? null : r.GetString(1);
                bool gone = w is not null && policy.WorkerIsGone?.Invoke(w) == true;
                bool silent = r.IsDBNull(3) || now - r.GetDouble(3) >= policy.Grace.TotalSeconds;
                if (gone || silent) stale.Add((r.GetInt64(0), w, r.GetInt32(2), gone));
            }
        }
        foreach (var (id, w, attempt, gone) in stale)
        {
            var why = gone ? $"worker {w} is gone" : $"worker {w} sent no heartbeat for {policy.Grace.TotalSeconds:0} s";
            bool giveUp = attempt >= policy.MaxAttempts;
            using var cmd = Command(giveUp
                ? "UPDATE trials SET state = 'failed', error = $error, finished_at = $now WHERE id = $id AND state = 'running'"
                : "UPDATE trials SET state = 'waiting', error = $error WHERE id = $id AND state = 'running'", tx);
            cmd.Parameters.AddWithValue("$id", id);
            cmd.Parameters.AddWithValue("$now", Now());
            cmd.Parameters.AddWithValue("$error", giveUp
                ? $"abandoned {attempt} times, the limit ({why})"
                : $"re-queued after attempt {attempt}: {why}");
            cmd.ExecuteNonQuery();
        }
    }

    TrialRecord? ClaimWaiting(long studyId, string worker, SqliteTransaction tx)
    {
        using var pick = Command("SELECT id FROM trials WHERE study_id = $study AND state = 'waiting' ORDER BY number LIMIT 1", tx);
        pick.Parameters.AddWithValue("$study", studyId);
        if (pick.ExecuteScalar() is not long id) return null;
        using var cmd = Command("""
            UPDATE trials SET state = 'running', worker = $worker, attempt = attempt + 1, started_at = $now, heartbeat_at = $now
            WHERE id = $id AND state = 'waiting'
            """, tx);
        cmd.Parameters.AddWithValue("$worker", worker);
        cmd.Parameters.AddWithValue("$now", Now());
        cmd.Parameters.AddWithValue("$id", id);
        return cmd.ExecuteNonQuery() == 1 ? TrialLocked(id, tx) : null;
    }

    public bool Heartbeat(long trialId, string worker, int attempt)
    {
        lock (_lock)
        {
            using var tx = _connection.BeginTransaction();
            using var cmd = Command("UPDATE trials SET heartbeat_at = $now WHERE id = $id AND state = 'running' AND worker = $worker AND attempt = $attempt", tx);
            cmd.Parameters.AddWithValue("$now", Now());
            cmd.Parameters.AddWithValue("$id", trialId);
            cmd.Parameters.AddWithValue("$worker", worker);
            cmd.Parameters.AddWithValue("$attempt", attempt);
            bool held = cmd.ExecuteNonQuery() == 1;
            tx.Commit();
            return held;
        }
    }

    public bool Release(long trialId, string worker, int attempt)
    {
        lock (_lock)
        {
            using var tx = _connection.BeginTransaction();
            using var cmd = Command("""
                UPDATE trials SET state = 'waiting', attempt = attempt - 1, error = 'released by its worker'
                WHERE id = $id AND state = 'running' AND worker = $worker AND attempt = $attempt
                """, tx);
            cmd.Parameters.AddWithValue("$id", trialId);
            cmd.Parameters.AddWithValue("$worker", worker);
            cmd.Parameters.AddWithValue("$attempt", attempt);
            bool released = cmd.ExecuteNonQuery() == 1;
            tx.Commit();
            return released;
        }
    }

    public bool Finish(long trialId, string worker, int attempt, TrialResult result)
    {
        if (!result.State.IsFinished()) throw new ArgumentException($"a trial finishes as complete, pruned or failed, not {result.State.Name()}", nameof(result));
        lock (_lock)
        {
            using var tx = _connection.BeginTransaction();
            using var cmd = Command("""
                UPDATE trials SET state = $state, metrics = $metrics, intermediate = $intermediate, error = $error,
                    worker = $worker, finished_at = $now, seconds = $seconds
                WHERE id = $id AND ((state = 'running' AND worker = $worker AND attempt = $attempt) OR state = 'waiting')
                """, tx);
            cmd.Parameters.AddWithValue("$state", result.State.Name());
            cmd.Parameters.AddWithValue("$metrics", StudyJson.Metrics(result.Metrics));
            cmd.Parameters.AddWithValue("$intermediate", StudyJson.Intermediate(result.Intermediate));
            cmd.Parameters.AddWithValue("$error", (object?)result.Error ?? DBNull.Value);
            cmd.Parameters.AddWithValue("$worker", worker);
            cmd.Parameters.AddWithValue("$now", Now());
            cmd.Parameters.AddWithValue("$seconds", result.Seconds);
            cmd.Parameters.AddWithValue("$id", trialId);
            cmd.Parameters.AddWithValue("$attempt", attempt);
            bool accepted = cmd.ExecuteNonQuery() == 1;
            tx.Commit();
            return accepted;
        }
    }

    SqliteCommand Command(string sql, SqliteTransaction? tx)
    {
        var cmd = _connection.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        return cmd;
    }

    void Execute(string sql, SqliteTransaction? tx = null)
    {
        using var cmd = Command(sql, tx);
        cmd.ExecuteNonQuery();
    }

    object? Scalar(string sql, SqliteTransaction? tx)
    {
        using var cmd = Command(sql, tx);
        return cmd.ExecuteScalar();
    }

    static double Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
    static DateTimeOffset Time(double unixSeconds) => DateTimeOffset.FromUnixTimeMilliseconds((long)Math.Round(unixSeconds * 1000));

    public void Dispose()
    {
        lock (_lock) _connection.Dispose();
    }
}
