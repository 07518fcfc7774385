namespace TransformerForge.Tests;

/// <summary>The run settings (test.runsettings) reach the test host: see that file for why the gen0 budget is raised.</summary>
public class TestSettingsTests
{
    [Fact]
    public void TheTestHostRunsWithTheLargerGen0Budget() =>
        Assert.Equal("0x8000000", Environment.GetEnvironmentVariable("DOTNET_GCgen0size"));
}
