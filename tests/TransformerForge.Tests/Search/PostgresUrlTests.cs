using Npgsql;
using TransformerForge.Search;
using TransformerForge.Tests.Data;

namespace TransformerForge.Tests.Search;

/// <summary>Reading <c>--storage</c>: libpq URLs into Npgsql settings (TLS options passed through), descriptions and
/// errors without the password, and the value read from an environment variable or a file.</summary>
public class PostgresUrlTests
{
    [Fact]
    public void AUrlBecomesNpgsqlSettingsWithTlsOptionsPassedThrough()
    {
        var b = PostgresUrl.Parse("postgresql://search%40lab:p%40ss%3Aw0rd%2F@db.example.org:6543/studies" +
                                  "?sslmode=verify-full&sslrootcert=/etc/ca.pem&sslcert=/etc/c.pem&sslkey=/etc/k.pem&connect_timeout=7" +
                                  "&application_name=w1&Keepalive=30&target_session_attrs=read-write");
        Assert.Equal("search@lab", b.Username);
        Assert.Equal("p@ss:w0rd/", b.Password);
        Assert.Equal("db.example.org", b.Host);
        Assert.Equal(6543, b.Port);
        Assert.Equal("studies", b.Database);
        Assert.Equal(SslMode.VerifyFull, b.SslMode);
        Assert.Equal("/etc/ca.pem", b.RootCertificate);
        Assert.Equal("/etc/c.pem", b.SslCertificate);
        Assert.Equal("/etc/k.pem", b.SslKey);
        Assert.Equal(7, b.Timeout);
        Assert.Equal("w1", b.ApplicationName);
        Assert.Equal(30, b.KeepAlive);
        Assert.Equal("read-write", b.TargetSessionAttributes);
        Assert.Equal("postgresql://search%40lab@db.example.org:6543/studies", PostgresUrl.Describe(b));

        Assert.Equal(SslMode.Require, PostgresUrl.Parse("postgres://h/d?sslmode=require").SslMode);
        Assert.Equal(45, PostgresUrl.Parse("postgresql://h/d?Command%20Timeout=45").CommandTimeout);
        // Several hosts (failover), a socket folder, and nothing at all (libpq's environment variables fill in).
        Assert.Equal("a:5432,[::1]:5433", PostgresUrl.Parse("postgresql://u@a:5432,[::1]:5433/d").Host);
        Assert.Equal("/var/run/postgresql", PostgresUrl.Parse("postgresql://%2Fvar%2Frun%2Fpostgresql/d").Host);
        Assert.Equal("/tmp/sock", PostgresUrl.Parse("postgresql:///d?host=/tmp/sock").Host);
        Assert.Null(PostgresUrl.Parse("postgresql://").Host);
    }

    [Fact]
    public void BadUrlsNameThePartNeverThePassword()
    {
        const string secret = "hunter2-secret";
        var port = Assert.Throws<StudyStorageException>(() => PostgresUrl.Parse($"postgresql://u:{secret}@h:99999/d"));
        Assert.Contains("bad port '99999'", port.Message);
        var unknown = Assert.Throws<StudyStorageException>(() => PostgresUrl.Parse($"postgresql://u:{secret}@h/d?sslmod=require"));
        Assert.Contains("unknown parameter 'sslmod'", unknown.Message);
        var mode = Assert.Throws<StudyStorageException>(() => PostgresUrl.Parse($"postgresql://u:{secret}@h/d?sslmode=sometimes"));
        Assert.Contains("bad value for 'sslmode'", mode.Message);
        var timeout = Assert.Throws<StudyStorageException>(() => PostgresUrl.Parse($"postgresql://u:{secret}@h/d?connect_timeout=soon"));
        Assert.Contains("bad value for 'connect_timeout': 'soon'", timeout.Message);
        foreach (var e in new[] { port, unknown, mode, timeout }) Assert.DoesNotContain(secret, e.Message);

        var other = Assert.Throws<StudyStorageException>(() => StudyStorages.Open($"mysql://u:{secret}@h/d"));
        Assert.Contains("'mysql://' storages are not supported", other.Message);
        Assert.DoesNotContain(secret, other.Message);
    }

    [Fact]
    public void TheStorageComesFromAnEnvironmentVariableOrAFile()
    {
        using var tmp = new TempDir();
        var name = "TFORGE_TEST_STORAGE_" + Guid.NewGuid().ToString("N")[..6];
        Environment.SetEnvironmentVariable(name, " postgresql://u:pw@h/d \n");
        try
        {
            Assert.Equal("postgresql://u:pw@h/d", StudyStorages.Resolve($"env:{name}"));
            var file = tmp.File("storage", "# the study database\n\npostgresql://u:pw@h/d2\n");
            Assert.Equal("postgresql://u:pw@h/d2", StudyStorages.Resolve($"file:{file}"));
            Assert.Equal("my.db", StudyStorages.Resolve("my.db"));
            Assert.Contains($"{name}X is not set", Assert.Throws<StudyStorageException>(() => StudyStorages.Resolve($"env:{name}X")).Message);
            Assert.Contains("no such file", Assert.Throws<StudyStorageException>(() => StudyStorages.Resolve($"file:{tmp.Path}/none")).Message);
        }
        finally
        {
            Environment.SetEnvironmentVariable(name, null);
        }
    }
}
