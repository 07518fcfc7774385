namespace TransformerForge.Tests.Support;

/// <summary>
/// Declares that the test fails when the named configuration option is broken or ignored. Keys are written
/// <c>Table.key</c> with the table named as in <see cref="Coverage.OptionCoverageTests"/> (the model type, e.g.
/// <c>TransformerWrapper.use_pos_emb</c>, and <c>AttentionLayers.*</c> for the layer-stack keys). The coverage test
/// counts these alongside the parity fixtures, and rejects a key that no table has.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
internal sealed class ProvesAttribute(params string[] keys) : Attribute
{
    public IReadOnlyList<string> Keys { get; } = keys;
}
