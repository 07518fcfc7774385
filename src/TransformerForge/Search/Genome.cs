using System.Text.Json.Nodes;

namespace TransformerForge.Search;

/// <summary>
/// A point of a search space: for each of its parameters (in the space's order) the index of the chosen value.
/// Immutable; two genomes are equal when they choose the same values. What the operators sample, mutate and cross.
/// </summary>
public sealed class Genome : IEquatable<Genome>
{
    readonly int[] _indices;

    public Genome(IReadOnlyList<int> indices) => _indices = indices.ToArray();

    public IReadOnlyList<int> Indices => _indices;
    public int this[int parameter] => _indices[parameter];
    public int Count => _indices.Length;

    /// <summary>The chosen value of each parameter, by name: how a genome is stored and shown.</summary>
    public JsonObject ToJson(IReadOnlyList<SpaceParameter> parameters)
    {
        var o = new JsonObject();
        for (int i = 0; i < parameters.Count; i++) o[parameters[i].Name] = parameters[i].Choices[_indices[i]]?.DeepClone();
        return o;
    }

    /// <summary>Reads <see cref="ToJson"/> back; a missing name or a value that is not a choice is an error naming it.</summary>
    public static Genome FromJson(JsonObject values, IReadOnlyList<SpaceParameter> parameters)
    {
        var indices = new int[parameters.Count];
        for (int i = 0; i < parameters.Count; i++)
        {
            var p = parameters[i];
            if (!values.TryGetPropertyValue(p.Name, out var v)) throw new InvalidDataException($"genome has no value for '{p.Name}'");
            indices[i] = p.IndexOf(v);
            if (indices[i] < 0) throw new InvalidDataException($"genome value {v?.ToJsonString() ?? "null"} of '{p.Name}' is not one of its choices");
        }
        return new Genome(indices);
    }

    /// <summary>The value chosen for the parameter called <paramref name="name"/>.</summary>
    public JsonNode? Value(IReadOnlyList<SpaceParameter> parameters, string name)
    {
        for (int i = 0; i < parameters.Count; i++)
            if (parameters[i].Name == name) return parameters[i].Choices[_indices[i]];
        throw new KeyNotFoundException($"no parameter '{name}'");
    }

    /// <summary>Whether parameter <paramref name="index"/> matters for this genome (its <c>when</c> conditions hold).</summary>
    public bool IsActive(IReadOnlyList<SpaceParameter> parameters, int index)
    {
        if (parameters[index].When is not { } when) return true;
        foreach (var (name, allowed) in when)
        {
            var value = Value(parameters, name);
            if (!allowed.Any(a => JsonNode.DeepEquals(a, value))) return false;
        }
        return true;
    }

    public bool Equals(Genome? other) => other is not null && _indices.AsSpan().SequenceEqual(other._indices);
    public override bool Equals(object? obj) => Equals(obj as Genome);

    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var i in _indices) h.Add(i);
        return h.ToHashCode();
    }

    public override string ToString() => string.Join(",", _indices);
}
