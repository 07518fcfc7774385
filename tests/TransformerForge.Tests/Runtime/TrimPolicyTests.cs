using TransformerForge.Runtime;

namespace TransformerForge.Tests.Runtime;

/// <summary>Heap trimming answers fragmentation creeping up, not a step's working set coming back after a trim.</summary>
public class TrimPolicyTests
{
    const long MiB = 1L << 20;

    static int Trims(params long[] residentMiB)
    {
        var policy = new TrimPolicy();
        return residentMiB.Count(rss => policy.ShouldTrim(rss * MiB, 0.10));
    }

    [Fact]
    public void AWorkingSetLargerThanTheAllowedGrowthIsNotTrimmedEveryStep()
    {
        // Before the first step only the weights are resident; every step then brings its activations back (a trim
        // releases them between steps, the next step faults them in again). Measuring from the trim would trim, and
        // fault 200 MiB back in, at every step.
        Assert.Equal(1, Trims(100, 300, 300, 300, 300, 300, 300, 300));
    }

    [Fact]
    public void CreepingMemoryIsTrimmedOncePerTenPercentOverTheStepsLevel()
    {
        Assert.Equal(0, Trims(400, 405, 410, 420, 435));
        // 400 is the level; 440 is 10% over it: trim. The next reading (400, after the step faulted its pages back) is the new level.
        Assert.Equal(1, Trims(400, 410, 425, 440, 400, 410, 425, 435));
        Assert.Equal(2, Trims(400, 410, 425, 440, 400, 410, 425, 440));
    }

    [Fact]
    public void SmallModelsWaitForAtLeast32MiB()
    {
        Assert.Equal(0, Trims(100, 110, 120, 131));
        Assert.Equal(1, Trims(100, 110, 120, 132));
    }
}
