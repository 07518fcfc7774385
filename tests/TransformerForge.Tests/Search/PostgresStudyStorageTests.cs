using System.Text.Json.Nodes;
using TransformerForge.Search;

namespace TransformerForge.Tests.Search;

/// <summary>
/// The PostgreSQL study against a real server: the storage contract (the same tests as SQLite), connections cut by the
/// server, a server restart that must not orphan running trials, and errors that never show the password.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresStudyStorageTests(PostgresServer server) : StudyStorageContract
{
    readonly PostgresServer.Database _db = server.CreateDatabase();

    protected override IStudyStorage Open() => new PostgresStudyStorage(_db.Url, TimeSpan.FromSeconds(60));

    public override void Dispose() => _db.Dispose();

    static StudyDefinition Definition() => new()
    {
        Name = "pg", Space = new JsonObject { ["space"] = "grid" }, Objectives = [Objective.Of(Metrics.ValLoss)],
        Algorithm = new JsonObject { ["name"] = "random" }, Evaluation = new JsonObject(), Seed = 1,
    };

    static NewTrial Propose(IReadOnlyList<TrialRecord> history, int number)
    {
        var spec = new JsonObject { ["n"] = number };
        return new NewTrial(spec, Candidate.KeyOf(spec), new JsonObject { ["x"] = number }, new TrialPlan { Seed = 1 });
    }

    static TrialResult Done(double loss) => new(TrialState.Complete, new Dictionary<string, double> { [Metrics.ValLoss] = loss }, [], null, 0.1);

    static TrialRecord Claim(IStudyStorage storage, StudyInfo study, string worker, TimeSpan grace) =>
        Assert.IsType<ClaimResult.Claimed>(storage.Claim(study.Id, worker, Propose, new ClaimPolicy(grace, 3))).Trial;

    [Fact]
    public void ARestartedServerKeepsEveryTrialAndGivesLiveWorkersTheGracePeriodToBeatAgain()
    {
        using var a = Open();
        using var b = Open();
        var study = a.OpenOrCreate(Definition(), 10);
        var held = Claim(a, study, "a", TimeSpan.FromMinutes(1));
        var done = Claim(a, study, "a2", TimeSpan.FromMinutes(1));
        Assert.True(a.Finish(done.Id, "a2", 1, Done(0.5)));
        var grace = TimeSpan.FromSeconds(2);
        Thread.Sleep(grace + TimeSpan.FromSeconds(0.5));   // a's last heartbeat is now older than the grace period

        server.Restart(TimeSpan.FromSeconds(0.5));
        // b's pooled connections are dead; it reconnects. Counted from the server's start, a's trial is not silent yet:
        // b gets a new trial rather than a's (which it would re-run with attempt 2 if silence counted from the last beat).
        var next = Claim(b, study, "b", grace);
        Assert.Equal(2, next.Number);
        Assert.Equal(1, next.Attempt);
        // a beats again: the first beat may land on a dead pooled connection (one try only), the next one reconnects.
        Assert.True(Beat(a, held) || Beat(a, held));
        Assert.True(a.Finish(held.Id, "a", 1, Done(0.25)));
        var trials = b.Trials(study.Id);
        Assert.Equal([TrialState.Complete, TrialState.Complete, TrialState.Running], trials.Select(t => t.State));
        Assert.Equal(0.25, trials[0].Metric(Metrics.ValLoss));
        Assert.Equal(0.5, trials[1].Metric(Metrics.ValLoss));

        static bool Beat(IStudyStorage s, TrialRecord t)
        {
            try
            {
                return s.Heartbeat(t.Id, t.Worker!, t.Attempt);
            }
            catch (StudyStorageException)
            {
                return false;
            }
        }
    }

    [Fact]
    public void ConnectionsCutByTheServerAreReplacedAndNothingIsDoneTwice()
    {
        using var storage = Open();
        var study = storage.OpenOrCreate(Definition(), 4);
        var t0 = Claim(storage, study, "w", TimeSpan.FromMinutes(1));
        // Every connection to the database is cut (as a failover or a network blip would), between and during calls.
        _db.Execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()");
        Assert.True(storage.Finish(t0.Id, "w", 1, Done(1)));
        _db.Execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()");
        var t1 = Claim(storage, study, "w", TimeSpan.FromMinutes(1));
        Assert.Equal(1, t1.Number);
        var trials = storage.Trials(study.Id);
        Assert.Equal(2, trials.Count);
        Assert.Equal(TrialState.Complete, trials[0].State);
        Assert.Equal("w", trials[1].Worker);
    }

    [Fact]
    public void ACommitWhoseReplyIsLostIsRecognisedOnRetryNotRepeated()
    {
        var direct = PostgresUrl.Parse(_db.Url);
        using var proxy = new CuttingProxy(direct.Host!, direct.Port);
        var settings = PostgresUrl.Parse(_db.Url);
        settings.Port = proxy.Port;
        settings.SslMode = Npgsql.SslMode.Disable;
        using var storage = new PostgresStudyStorage(settings, TimeSpan.FromSeconds(60));
        var study = storage.OpenOrCreate(Definition(), 4);

        // The new trial's insert commits, its reply is lost: the retry finds the trial by its claim token instead of
        // claiming a second one (and leaving the first running with nobody working on it).
        proxy.CutAfter("INSERT INTO tforge_trials (study_id, number");
        var t0 = Claim(storage, study, "w", TimeSpan.FromMinutes(1));
        Assert.Equal(1, proxy.Cuts);
        Assert.Equal(0, t0.Number);
        Assert.Single(storage.Trials(study.Id));

        // A waiting trial is taken in the same way.
        Assert.True(storage.Release(t0.Id, "w", 1));
        proxy.CutAfter("ORDER BY number LIMIT 1 FOR UPDATE SKIP LOCKED");
        var again = Claim(storage, study, "w", TimeSpan.FromMinutes(1));
        Assert.Equal(2, proxy.Cuts);
        Assert.Equal((0, 1), (again.Number, again.Attempt));
        Assert.Single(storage.Trials(study.Id));

        // The result commits, its reply is lost: the retry sees it recorded and reports it accepted.
        proxy.CutAfter("finished_at = now(), seconds");
        Assert.True(storage.Finish(t0.Id, "w", 1, Done(0.5)));
        Assert.Equal(3, proxy.Cuts);
        var trial = Assert.Single(storage.Trials(study.Id));
        Assert.Equal((TrialState.Complete, 1), (trial.State, trial.Attempt));
    }

    [Fact]
    public void WorkersOpeningAnEmptyDatabaseAtOnceCreateOneSchemaAndOneStudy()
    {
        using var empty = server.CreateDatabase();
        const int workers = 6;
        using var start = new Barrier(workers);
        var studies = new StudyInfo[workers];
        var errors = new List<string>();
        var threads = Enumerable.Range(0, workers).Select(i => new Thread(() =>
        {
            start.SignalAndWait();
            try
            {
                using var storage = new PostgresStudyStorage(empty.Url, TimeSpan.FromSeconds(60));
                studies[i] = storage.OpenOrCreate(Definition(), 5);
            }
            catch (Exception e)
            {
                lock (errors) errors.Add(e.Message);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.Empty(errors);
        Assert.Single(studies.Select(s => s.Id).Distinct());
        Assert.Equal("1", empty.Query("SELECT count(*) FROM tforge_studies"));
    }

    [Fact]
    public async Task AWaitingTrialLockedByAnotherClaimIsSkippedNotWaitedFor()
    {
        using var storage = Open();
        var study = storage.OpenOrCreate(Definition(), 4);
        var t0 = Claim(storage, study, "a", TimeSpan.FromMinutes(1));
        var t1 = Claim(storage, study, "b", TimeSpan.FromMinutes(1));
        Assert.True(storage.Release(t0.Id, "a", 1));
        Assert.True(storage.Release(t1.Id, "b", 1));
        // Another worker's claim transaction holds trial 0's row (as FOR UPDATE does mid-claim): the next claim takes
        // trial 1 at once instead of queueing behind that lock.
        using var other = new Npgsql.NpgsqlConnection(PostgresUrl.Parse(_db.Url).ConnectionString);
        other.Open();
        using var transaction = other.BeginTransaction();
        using (var lockRow = other.CreateCommand())
        {
            lockRow.CommandText = $"SELECT id FROM tforge_trials WHERE id = {t0.Id} FOR UPDATE";
            lockRow.ExecuteScalar();
        }
        var claim = Task.Run(() => Claim(storage, study, "c", TimeSpan.FromMinutes(1)));
        Assert.True(await Task.WhenAny(claim, Task.Delay(TimeSpan.FromSeconds(20))) == claim, "the claim waited for the locked trial");
        Assert.Equal(1, (await claim).Number);
        transaction.Rollback();
        Assert.Equal(0, Claim(storage, study, "d", TimeSpan.FromMinutes(1)).Number);
    }

    [Fact]
    public void RoundTripsPerTrialAreFew()
    {
        using var storage = Open();
        var study = storage.OpenOrCreate(Definition(), 20);
        long before = storage.RoundTrips;
        for (int i = 0; i < 20; i++)
        {
            var t = Claim(storage, study, "w", TimeSpan.FromMinutes(1));
            Assert.True(storage.Finish(t.Id, "w", t.Attempt, Done(i)));
        }
        // A new trial: one request to claim (re-queue, take a waiting trial, read the history), one to insert; one to finish.
        Assert.Equal(3 * 20, storage.RoundTrips - before);
    }

    [Fact]
    public void TlsSettingsInTheUrlReachTheConnection()
    {
        var ca = server.Dir is { } dir && File.Exists(Path.Combine(dir, "ca.pem")) ? Path.Combine(dir, "ca.pem")
            : throw new InvalidOperationException("the test server has no TLS certificate (start it with .ci/postgres.sh)");
        string With(string query) => _db.Url + (_db.Url.Contains('?') ? "&" : "?") + query;
        // Verified against the server's certificate: the study works, over TLS.
        using (var storage = new PostgresStudyStorage(With($"sslmode=verify-full&sslrootcert={Uri.EscapeDataString(ca)}&application_name=tls-verified")))
        {
            storage.OpenOrCreate(Definition(), 1);   // its connection stays in the pool, so the server lists it
            Assert.Equal("true", _db.Query("SELECT bool_and(s.ssl)::text FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'tls-verified'"));
        }
        using (var plain = new PostgresStudyStorage(With("sslmode=disable&application_name=tls-off")))
        {
            plain.Find("pg");
            Assert.Equal("false", _db.Query("SELECT bool_or(s.ssl)::text FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'tls-off'"));
        }
        // Another authority's certificate does not verify the server: refused at once (not retried for the reconnect period).
        var other = Path.Combine(Path.GetDirectoryName(ca)!, "other-ca.pem");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<StudyStorageException>(() => new PostgresStudyStorage(With($"sslmode=verify-full&sslrootcert={Uri.EscapeDataString(other)}"), TimeSpan.FromSeconds(60)));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"a TLS failure was retried ({clock.Elapsed}): {e.Message}");
        Assert.DoesNotContain(server.Password, e.ToString());
    }

    [Fact]
    public void UnreachableOrRefusingDatabasesAreOneClearErrorWithoutThePassword()
    {
        var b = PostgresUrl.Parse(_db.Url);
        const string secret = "s3cret-PASSWORD-x";
        // Nothing listens on this port: retried for the reconnect period, then one error naming the database.
        var closed = $"postgresql://{b.Username}:{secret}@127.0.0.1:1/{_db.Name}";
        var e = Assert.Throws<StudyStorageException>(() => new PostgresStudyStorage(closed, TimeSpan.FromSeconds(1)));
        Assert.Contains($"postgresql://{b.Username}@127.0.0.1:1/{_db.Name}", e.Message);
        Assert.Contains("unreachable", e.Message);
        Assert.DoesNotContain(secret, e.ToString());
        // A wrong password is refused at once (not retried).
        var wrong = $"postgresql://{b.Username}:{secret}@{b.Host}:{b.Port}/{_db.Name}";
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var refused = Assert.Throws<StudyStorageException>(() => new PostgresStudyStorage(wrong, TimeSpan.FromSeconds(60)));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"a refused password was retried ({clock.Elapsed})");
        Assert.Contains("28P01", refused.Message);
        Assert.DoesNotContain(secret, refused.ToString());
        Assert.DoesNotContain(server.Password, refused.ToString());
    }
}
