using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace TransformerForge.Search;

/// <summary>A genome with its model JSON and the key that identifies the model (a hash of the canonical JSON):
/// genomes that build the same model share a key, so a search never trains the same model twice.</summary>
public sealed record Candidate(Genome Genome, JsonObject Spec, string Key)
{
    public static Candidate Of(Genome genome, JsonObject spec) => new(genome, spec, KeyOf(spec));

    public static string KeyOf(JsonObject spec) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(spec.ToJsonString())))[..32];
}
