namespace TransformerForge.Tests.Parity;

/// <summary>
/// Every folder under the shared fixtures is a family that a parity theory runs case by case (all its case folders,
/// found on disk), or a family listed as pending with its reason. <see cref="FixtureDiscoveryTests"/> fails on any
/// other folder, so a new family is never skipped silently.
/// </summary>
internal static class FixtureFamilies
{
    /// <summary>Family folder → the test class whose theory runs each of its cases.</summary>
    public static readonly IReadOnlyDictionary<string, string> Run = new Dictionary<string, string>
    {
        ["xtransformers"] = nameof(XTransformersParityTests),
        ["xtransformers-1.40"] = nameof(XTransformers140ParityTests),
        ["labml"] = nameof(TransformerForge.Tests.Labml.LabmlParityTests),
        ["archai"] = nameof(TransformerForge.Tests.Archai.ArchaiParityTests),
    };

    /// <summary>
    /// Reference families kept in this repository (tests/TransformerForge.Tests/Fixtures, made by the original library
    /// through scripts/fixtures) for options the shared fixtures do not set → the test class whose theory runs each case.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string> RepoRun = new Dictionary<string, string>
    {
        [XTransformers140ParityTests.ReferenceFamily] = nameof(XTransformers140ParityTests),
    };

    /// <summary>
    /// Families (or single cases, "family/case") known to fail, with why. Their cases are run and must still fail;
    /// when one passes, delete its line here (and add the family to <see cref="Run"/>).
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string> Pending = new Dictionary<string, string>
    {
    };
}
