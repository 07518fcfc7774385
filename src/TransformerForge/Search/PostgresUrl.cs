using System.Globalization;
using Npgsql;

namespace TransformerForge.Search;

/// <summary>
/// Reads a libpq connection URL, <c>postgresql://[user[:password]@][host[:port][,host[:port]...]][/database][?name=value&amp;...]</c>,
/// into Npgsql's connection settings. Query parameters take libpq's names (<c>sslmode</c>, <c>sslrootcert</c>,
/// <c>sslcert</c>, <c>sslkey</c>, <c>sslpassword</c>, <c>connect_timeout</c>, <c>application_name</c>, <c>options</c>,
/// <c>target_session_attrs</c>, <c>channel_binding</c>, <c>host</c>, <c>port</c>, <c>user</c>, <c>password</c>,
/// <c>dbname</c>, <c>passfile</c>) or any Npgsql keyword as it is (<c>Trust%20Server%20Certificate=true</c>). Whatever is
/// not in the URL comes from libpq's environment variables and <c>~/.pgpass</c>, as Npgsql reads them.
/// Messages about a URL name the part that is wrong, never the password.
/// </summary>
public static class PostgresUrl
{
    static readonly string[] Schemes = ["postgresql://", "postgres://"];

    /// <summary>libpq query parameter → Npgsql keyword.</summary>
    static readonly Dictionary<string, string> Aliases = new(StringComparer.OrdinalIgnoreCase)
    {
        ["sslmode"] = "SSL Mode", ["sslrootcert"] = "Root Certificate", ["sslcert"] = "SSL Certificate", ["sslkey"] = "SSL Key",
        ["sslpassword"] = "SSL Password", ["connect_timeout"] = "Timeout", ["application_name"] = "Application Name",
        ["options"] = "Options", ["target_session_attrs"] = "Target Session Attributes", ["channel_binding"] = "Channel Binding",
        ["host"] = "Host", ["port"] = "Port", ["user"] = "Username", ["password"] = "Password", ["dbname"] = "Database",
        ["passfile"] = "Passfile", ["sslnegotiation"] = "SSL Negotiation", ["gssencmode"] = "GSS Encryption Mode",
    };

    /// <summary>libpq's sslmode values → Npgsql's.</summary>
    static readonly Dictionary<string, string> SslModes = new(StringComparer.OrdinalIgnoreCase)
    {
        ["disable"] = "Disable", ["allow"] = "Allow", ["prefer"] = "Prefer", ["require"] = "Require", ["verify-ca"] = "VerifyCA", ["verify-full"] = "VerifyFull",
    };

    public static bool IsUrl(string value) => Schemes.Any(s => value.StartsWith(s, StringComparison.OrdinalIgnoreCase));

    /// <summary>Npgsql's settings for <paramref name="url"/>; a <see cref="StudyStorageException"/> naming the bad part otherwise.</summary>
    public static NpgsqlConnectionStringBuilder Parse(string url)
    {
        var scheme = Schemes.FirstOrDefault(s => url.StartsWith(s, StringComparison.OrdinalIgnoreCase))
                     ?? throw new StudyStorageException("a PostgreSQL storage is a URL starting with postgresql://");
        var rest = url[scheme.Length..];
        int q = rest.IndexOf('?');
        var head = q < 0 ? rest : rest[..q];
        var query = q < 0 ? "" : rest[(q + 1)..];
        var builder = new NpgsqlConnectionStringBuilder();

        int at = head.LastIndexOf('@');
        if (at >= 0)
        {
            var userInfo = head[..at];
            head = head[(at + 1)..];
            int colon = userInfo.IndexOf(':');
            var user = Decode(colon < 0 ? userInfo : userInfo[..colon], "the user name");
            if (user.Length > 0) builder.Username = user;
            if (colon >= 0) builder.Password = Decode(userInfo[(colon + 1)..], "the password");
        }
        int slash = head.IndexOf('/');
        var hosts = slash < 0 ? head : head[..slash];
        var database = slash < 0 ? "" : Decode(head[(slash + 1)..], "the database name");
        if (database.Length > 0) builder.Database = database;
        if (hosts.Length > 0) SetHosts(builder, hosts);

        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = pair.IndexOf('=');
            var key = Decode(eq < 0 ? pair : pair[..eq], "a parameter name");
            var value = eq < 0 ? "" : Decode(pair[(eq + 1)..], $"the value of '{key}'");
            var keyword = Aliases.GetValueOrDefault(key, key);
            if (keyword == "SSL Mode" && SslModes.TryGetValue(value, out var mode)) value = mode;
            try
            {
                builder[keyword] = value;
            }
            catch (Exception e) when (e is ArgumentException or FormatException or InvalidCastException or OverflowException)
            {
                bool secret = keyword.Contains("password", StringComparison.OrdinalIgnoreCase);
                throw new StudyStorageException(e is ArgumentException && !builder.ContainsKey(keyword)
                    ? $"the PostgreSQL URL has an unknown parameter '{key}' (libpq names such as sslmode, or Npgsql keywords)"
                    : $"the PostgreSQL URL has a bad value for '{key}'{(secret ? "" : $": '{value}'")}");
            }
        }
        return builder;
    }

    static void SetHosts(NpgsqlConnectionStringBuilder builder, string hosts)
    {
        var list = hosts.Split(',').Select(h => Decode(h, "the host")).ToList();
        if (list.Count == 1)
        {
            var (host, port) = SplitPort(list[0]);
            if (host.Length > 0) builder.Host = host;
            if (port is { } p) builder.Port = p;
            return;
        }
        // Several hosts (failover or load balancing): Npgsql takes them as host:port,host:port.
        builder.Host = string.Join(",", list.Select(h =>
        {
            var (host, port) = SplitPort(h);
            return port is { } p ? $"{Bracket(host)}:{p}" : Bracket(host);
        }));
    }

    static string Bracket(string host) => host.Contains(':') ? $"[{host}]" : host;

    /// <summary>host, [v6]:port, host:port or a socket folder (starts with '/').</summary>
    static (string Host, int? Port) SplitPort(string hostPort)
    {
        if (hostPort.StartsWith('/')) return (hostPort, null);
        string host = hostPort, port = "";
        if (hostPort.StartsWith('['))
        {
            int close = hostPort.IndexOf(']');
            if (close < 0) throw new StudyStorageException($"the PostgreSQL URL has a bad host '{hostPort}'");
            host = hostPort[1..close];
            port = hostPort[(close + 1)..].TrimStart(':');
        }
        else if (hostPort.IndexOf(':') is var colon and >= 0)
        {
            host = hostPort[..colon];
            port = hostPort[(colon + 1)..];
        }
        if (port.Length == 0) return (host, null);
        return int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p is > 0 and < 65536 ? (host, p)
            : throw new StudyStorageException($"the PostgreSQL URL has a bad port '{port}'");
    }

    static string Decode(string s, string what)
    {
        try
        {
            return Uri.UnescapeDataString(s);
        }
        catch (Exception e) when (e is UriFormatException or ArgumentException)
        {
            throw new StudyStorageException($"the PostgreSQL URL has a badly escaped {what}");
        }
    }

    /// <summary>The URL without its secrets, for messages and displays: <c>postgresql://user@host:port/database</c>.</summary>
    public static string Describe(NpgsqlConnectionStringBuilder b)
    {
        var user = string.IsNullOrEmpty(b.Username) ? "" : $"{Uri.EscapeDataString(b.Username)}@";
        var host = string.IsNullOrEmpty(b.Host) ? "" : b.Host.StartsWith('/') ? Uri.EscapeDataString(b.Host) : b.Host;
        var port = b.Host?.Contains(',') == true || b.Port == NpgsqlConnection.DefaultPort ? "" : $":{b.Port}";
        var db = string.IsNullOrEmpty(b.Database) ? "" : $"/{Uri.EscapeDataString(b.Database)}";
        return $"postgresql://{user}{host}{port}{db}";
    }
}
