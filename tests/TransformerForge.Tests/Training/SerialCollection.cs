namespace TransformerForge.Tests.Training;

/// <summary>
/// Tests that need the process to themselves: bit-exact comparisons that read the global torch RNG (which tests in
/// parallel collections would advance) and the CLI runs whose timing matters. xunit runs this collection alone.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialCollection
{
    public const string Name = "serial: global torch RNG and timing";
}
