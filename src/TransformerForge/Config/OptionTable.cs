using System.Text.Json;
using System.Text.Json.Nodes;

namespace TransformerForge.Config;

/// <summary>
/// The explicit map between one option record and its JSON object: each row names a snake_case key (x-transformers'
/// keyword), how to read it into the record and how to write it back. Unknown keys and wrong JSON types are errors
/// naming the key. Rows are listed in one place per record, so the table is the documentation of the JSON shape.
/// A row may belong to one x-transformers version only (<see cref="Only"/>); a table that knows its record's version
/// (<see cref="VersionedBy"/>) rejects such a key under the other version, naming the key and the version it needs.
/// </summary>
public sealed class OptionTable<T> where T : class
{
    sealed record Row(string Key, Func<T, JsonElement, string, T> Read, Func<T, JsonNode?> Write, XTransformersVersion? Only = null, string? RenamedTo = null);

    readonly List<Row> _rows = new();
    readonly Dictionary<string, string> _aliases = new();
    Func<T, XTransformersVersion>? _versionOf;

    public IEnumerable<string> Keys => _rows.Select(r => r.Key);

    /// <summary>The keys a configuration of <paramref name="version"/> may use.</summary>
    public IEnumerable<string> KeysFor(XTransformersVersion version) => _rows.Where(r => r.Only is null || r.Only == version).Select(r => r.Key);

    /// <summary>The version a key belongs to, or null when both versions have it.</summary>
    public XTransformersVersion? VersionOnly(string key) => _rows.FirstOrDefault(r => r.Key == key)?.Only;

    /// <summary>How this table finds the version of the record it reads (for rows marked <see cref="Only"/>).</summary>
    public OptionTable<T> VersionedBy(Func<T, XTransformersVersion> versionOf)
    {
        _versionOf = versionOf;
        return this;
    }

    /// <summary>
    /// Marks the last row as belonging to <paramref name="version"/> only (x-transformers added or removed it); with
    /// <paramref name="renamedTo"/>, the other version has the same option under that key (both rows set one property).
    /// </summary>
    public OptionTable<T> Only(XTransformersVersion version, string? renamedTo = null)
    {
        _rows[^1] = _rows[^1] with { Only = version, RenamedTo = renamedTo };
        return this;
    }

    /// <summary>Second accepted names, each mapped to its main key.</summary>
    public IReadOnlyDictionary<string, string> Aliases => _aliases;

    public OptionTable<T> Int(string key, Func<T, int> get, Func<T, int, T> set) =>
        Add(key, (c, e, path) => set(c, ReadInt(e, path)), c => get(c));

    public OptionTable<T> OptInt(string key, Func<T, int?> get, Func<T, int?, T> set) =>
        Add(key, (c, e, path) => set(c, e.ValueKind == JsonValueKind.Null ? null : ReadInt(e, path)), c => get(c) is { } v ? v : null);

    public OptionTable<T> Double(string key, Func<T, double> get, Func<T, double, T> set) =>
        Add(key, (c, e, path) => set(c, ReadDouble(e, path)), c => get(c));

    public OptionTable<T> OptDouble(string key, Func<T, double?> get, Func<T, double?, T> set) =>
        Add(key, (c, e, path) => set(c, e.ValueKind == JsonValueKind.Null ? null : ReadDouble(e, path)), c => get(c) is { } v ? v : null);

    public OptionTable<T> Bool(string key, Func<T, bool> get, Func<T, bool, T> set) =>
        Add(key, (c, e, path) => set(c, e.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new ConfigException(path, $"expected true or false, got {Describe(e)}"),
        }), c => get(c));

    /// <summary>An integer, or a list with one integer per layer (a Python tuple), e.g. <c>shift_tokens</c>.</summary>
    public OptionTable<T> IntOrList(string key, Func<T, IReadOnlyList<int>> get, Func<T, IReadOnlyList<int>, T> set) =>
        Add(key, (c, e, path) => set(c, e.ValueKind == JsonValueKind.Array
                ? e.EnumerateArray().Select((x, i) => ReadInt(x, $"{path}[{i}]")).ToArray()
                : new[] { ReadInt(e, path) }),
            c => get(c) is { Count: 1 } one ? one[0] : new JsonArray(get(c).Select(v => (JsonNode?)v).ToArray()));

    public OptionTable<T> OptStringList(string key, Func<T, IReadOnlyList<string>?> get, Func<T, IReadOnlyList<string>?, T> set) =>
        Add(key, (c, e, path) => set(c, e.ValueKind switch
        {
            JsonValueKind.Null => null,
            JsonValueKind.Array => e.EnumerateArray().Select((x, i) => x.ValueKind == JsonValueKind.String
                ? x.GetString()! : throw new ConfigException($"{path}[{i}]", $"expected a string, got {Describe(x)}")).ToArray(),
            _ => throw new ConfigException(path, $"expected a list of strings, got {Describe(e)}"),
        }), c => get(c) is { } l ? new JsonArray(l.Select(s => (JsonNode?)s).ToArray()) : null);

    /// <summary>A nested option object (e.g. <c>attn_layers</c>), read and written by its own code.</summary>
    public OptionTable<T> Nested(string key, Func<T, JsonElement, string, T> read, Func<T, JsonNode?> write) => Add(key, read, write);

    /// <summary>
    /// Splices in the rows (and aliases) of a part's table, keys unchanged: the part is its own record in C# (e.g.
    /// <see cref="AttentionOptions"/>) while its options stay flat in this JSON object, as x-transformers' keywords do.
    /// </summary>
    public OptionTable<T> Include<TPart>(OptionTable<TPart> part, Func<T, TPart> get, Func<T, TPart, T> set) where TPart : class
    {
        foreach (var (key, read, write, only, renamedTo) in part.Rows)
        {
            Add(key, (c, e, path) => set(c, read(get(c), e, path)), c => write(get(c)));
            if (only is { } v) Only(v, renamedTo);
        }
        foreach (var (alias, key) in part.Aliases) _aliases[alias] = key;
        return this;
    }

    internal IEnumerable<(string Key, Func<T, JsonElement, string, T> Read, Func<T, JsonNode?> Write, XTransformersVersion? Only, string? RenamedTo)> Rows =>
        _rows.Select(r => (r.Key, r.Read, r.Write, r.Only, r.RenamedTo));

    /// <summary>A second accepted name for a key (written back under the main name).</summary>
    public OptionTable<T> Alias(string alias, string key)
    {
        _aliases[alias] = key;
        return this;
    }

    OptionTable<T> Add(string key, Func<T, JsonElement, string, T> read, Func<T, JsonNode?> write)
    {
        if (_rows.Any(r => r.Key == key)) throw new InvalidOperationException($"option table has '{key}' twice");
        _rows.Add(new Row(key, read, write));
        return this;
    }

    /// <summary>Reads every property of <paramref name="obj"/> except those in <paramref name="skip"/> into <paramref name="start"/>.</summary>
    public T Read(JsonElement obj, T start, string prefix, params string[] skip)
    {
        var seen = new HashSet<string>();
        var version = _versionOf?.Invoke(start);
        foreach (var p in obj.EnumerateObject())
        {
            if (skip.Contains(p.Name)) continue;
            var key = _aliases.TryGetValue(p.Name, out var main) ? main : p.Name;
            var path = prefix + p.Name;
            var row = _rows.FirstOrDefault(r => r.Key == key)
                ?? throw new ConfigException(path, $"unknown option{Suggest(p.Name, version)}");
            if (version is { } v && row.Only is { } only && only != v)
                throw new ConfigException(path, row.RenamedTo is { } renamed ? $"is called '{renamed}' in x-transformers {v.JsonName()}" : NotInVersion(only, v));
            if (!seen.Add(key)) throw new ConfigException(path, $"given twice (also as an alias of '{key}')");
            start = row.Read(start, p.Value, path);
        }
        return start;
    }

    /// <summary>Writes the options of <paramref name="value"/> that differ from <paramref name="defaults"/> (and those in <paramref name="always"/>).</summary>
    public void Write(T value, T defaults, JsonObject target, params string[] always)
    {
        var version = _versionOf?.Invoke(value);
        foreach (var row in _rows)
        {
            if (version is { } ver && row.Only is { } only && only != ver) continue;
            var v = row.Write(value);
            var d = row.Write(defaults);
            if (always.Contains(row.Key) || !JsonNode.DeepEquals(v, d)) target[row.Key] = v;
        }
    }

    /// <summary>
    /// Rejects a record built in C# that sets an option its version does not have (the JSON reader already rejects the
    /// key): every row of another version must hold its default.
    /// </summary>
    public void CheckVersion(T value, T defaults, XTransformersVersion version, string prefix = "")
    {
        foreach (var row in _rows)
            if (row.Only is { } only && only != version && row.RenamedTo is null && !JsonNode.DeepEquals(row.Write(value), row.Write(defaults)))
                throw new ConfigException(prefix + row.Key, NotInVersion(only, version));
    }

    static string NotInVersion(XTransformersVersion only, XTransformersVersion current) => only == XTransformersVersion.V1_40
        ? $"is an x-transformers 1.40 option: add \"{XTransformersVersions.Key}\": \"1.40\" at the top of the model JSON"
        : $"is an x-transformers {only.JsonName()} option that {current.JsonName()} no longer has (this configuration follows {current.JsonName()})";

    string Suggest(string name, XTransformersVersion? version)
    {
        var close = _rows.Where(r => version is null || r.Only is null || r.Only == version).Select(r => r.Key).Concat(_aliases.Keys)
            .OrderBy(k => Distance(k, name)).FirstOrDefault(k => Distance(k, name) <= Math.Max(2, name.Length / 4));
        return close is null ? "" : $" (did you mean '{close}'?)";
    }

    static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
        return d[a.Length, b.Length];
    }

    internal static int ReadInt(JsonElement e, string path)
    {
        if (e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var i)) return i;
        if (e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out var d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue) return (int)d;
        throw new ConfigException(path, $"expected an integer, got {Describe(e)}");
    }

    internal static double ReadDouble(JsonElement e, string path) =>
        e.ValueKind == JsonValueKind.Number ? e.GetDouble() : throw new ConfigException(path, $"expected a number, got {Describe(e)}");

    internal static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => $"the string \"{e.GetString()}\"",
        JsonValueKind.Number => $"the number {e.GetRawText()}",
        JsonValueKind.True or JsonValueKind.False => $"the boolean {e.GetRawText()}",
        JsonValueKind.Array => "a list",
        JsonValueKind.Object => "an object",
        _ => "null",
    };
}
