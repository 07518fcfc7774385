using System.Diagnostics;
using Npgsql;
using TransformerForge.Search;

namespace TransformerForge.Tests.Search;

/// <summary>
/// The real PostgreSQL server the distributed-search tests run against. <c>.ci/run</c> starts a throwaway one
/// (<c>.ci/postgres.sh</c>) and passes it as <c>TFORGE_TEST_POSTGRES</c> (its URL) and <c>TFORGE_TEST_POSTGRES_DIR</c>
/// (its folder, for the restart test). Without them — a developer's <c>dotnet test</c> — the fixture starts one itself
/// through the same script and stops it at the end. These tests are never skipped: with no server to be had they fail,
/// saying why. Each test gets a database of its own.
/// </summary>
public sealed class PostgresServer : IDisposable
{
    public const string UrlVariable = "TFORGE_TEST_POSTGRES";
    public const string DirVariable = "TFORGE_TEST_POSTGRES_DIR";
    readonly bool _owned;

    public PostgresServer()
    {
        Url = Environment.GetEnvironmentVariable(UrlVariable) is { Length: > 0 } url ? url : null!;
        Dir = Environment.GetEnvironmentVariable(DirVariable) is { Length: > 0 } dir ? dir : null;
        if (Url is null)
        {
            // Directly under /tmp: the server's user (not root) must be able to reach the folder.
            Dir = Path.Combine("/tmp", "tforge-test-pg-" + Guid.NewGuid().ToString("N")[..8]);
            var (code, output) = Script("start", Dir, Environment.ProcessId.ToString());
            if (code != 0)
                throw new InvalidOperationException($"no PostgreSQL server for the distributed-search tests (set {UrlVariable}, or install PostgreSQL): {output}");
            Url = File.ReadAllText(Path.Combine(Dir, "url")).Trim();
            _owned = true;
        }
        Password = PostgresUrl.Parse(Url).Password ?? "";
    }

    /// <summary>The server's URL (with the password).</summary>
    public string Url { get; }
    public string? Dir { get; }
    public string Password { get; }

    static string ScriptPath => Path.Combine(TestPaths.RepoRoot, ".ci", "postgres.sh");

    static (int Code, string Output) Script(params string[] args)
    {
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(ScriptPath);
        foreach (var a in args) info.ArgumentList.Add(a);
        using var p = Process.Start(info)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout + stderr.Result);
    }

    /// <summary>Stops the server at once (as a crash would), keeps it down for <paramref name="down"/>, starts it again.</summary>
    public void Restart(TimeSpan down)
    {
        if (Dir is null) throw new InvalidOperationException($"restarting needs a server started by .ci/postgres.sh ({DirVariable})");
        var (code, output) = Script("restart", Dir, down.TotalSeconds.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture));
        if (code != 0) throw new InvalidOperationException($"postgres.sh restart failed: {output}");
    }

    /// <summary>A new empty database on the server; dropped when disposed.</summary>
    public Database CreateDatabase() => new(this, "tf_" + Guid.NewGuid().ToString("N")[..12]);

    /// <summary><paramref name="url"/> with its database replaced.</summary>
    public static string WithDatabase(string url, string database)
    {
        int q = url.IndexOf('?');
        var head = q < 0 ? url : url[..q];
        var query = q < 0 ? "" : url[q..];
        int hosts = head.IndexOf("://", StringComparison.Ordinal) + 3;
        int at = head.LastIndexOf('@');
        int slash = head.IndexOf('/', Math.Max(hosts, at));
        return (slash < 0 ? head : head[..slash]) + "/" + database + query;
    }

    internal void Admin(string sql)
    {
        using var c = new NpgsqlConnection(PostgresUrl.Parse(Url).ConnectionString);
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    public void Dispose()
    {
        if (_owned && Dir is not null) Script("stop", Dir);
    }

    public sealed class Database : IDisposable
    {
        readonly PostgresServer _server;

        internal Database(PostgresServer server, string name)
        {
            _server = server;
            Name = name;
            server.Admin($"CREATE DATABASE {name}");
            Url = WithDatabase(server.Url, name);
        }

        public string Name { get; }
        /// <summary>The database's URL (with the password).</summary>
        public string Url { get; }

        /// <summary>Runs SQL in this database (e.g. to cut every worker's connection).</summary>
        public void Execute(string sql) => WithCommand(sql, cmd => cmd.ExecuteNonQuery());

        /// <summary>The first column of the first row of a query in this database, as text.</summary>
        public string? Query(string sql) => WithCommand(sql, cmd => cmd.ExecuteScalar()?.ToString());

        /// <summary>One unpooled connection for one command, so no connection outlives the call.</summary>
        T WithCommand<T>(string sql, Func<NpgsqlCommand, T> run)
        {
            var b = PostgresUrl.Parse(Url);
            b.Pooling = false;
            using var c = new NpgsqlConnection(b.ConnectionString);
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = sql;
            return run(cmd);
        }

        public void Dispose()
        {
            NpgsqlConnection.ClearAllPools();
            try
            {
                _server.Admin($"DROP DATABASE IF EXISTS {Name} WITH (FORCE)");
            }
            catch (NpgsqlException)
            {
                // The server is throwaway; a database left behind goes with it.
            }
        }
    }
}

/// <summary>The tests that share the PostgreSQL server run one after another (one of them restarts it).</summary>
[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>
{
    public const string Name = "postgres";
}
