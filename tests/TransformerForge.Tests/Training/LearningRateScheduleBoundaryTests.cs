using TransformerForge.Training;

namespace TransformerForge.Tests.Training;

/// <summary>Exact values of <see cref="LearningRateSchedule"/> at its seams: warmup's end, a decay of 0, 1 or 2 steps, the midpoint.</summary>
public class LearningRateScheduleBoundaryTests
{
    [Fact]
    public void FromTakesEachFieldFromItsOption() =>
        Assert.Equal(new LearningRateSchedule(2e-3, 5, 50, 0.2),
            LearningRateSchedule.From(new TrainOptions { LearningRate = 2e-3, WarmupSteps = 5, Steps = 50, MinLrRatio = 0.2 }));

    [Fact]
    public void WarmupRisesByPeakOverWarmupPerStep()
    {
        var s = new LearningRateSchedule(Peak: 8, WarmupSteps: 4, TotalSteps: 100, MinRatio: 0);
        Assert.Equal(new[] { 2.0, 4, 6, 8 }, Enumerable.Range(0, 4).Select(s.At));
        Assert.Equal(8, s.At(4));   // the first decay step is the peak, not past it
    }

    [Theory]
    [InlineData(0)]   // no decay steps at all
    [InlineData(1)]   // one decay step: the peak, not 0/0
    public void ADecayOfAtMostOneStepStaysAtThePeak(int decaySteps)
    {
        var s = new LearningRateSchedule(Peak: 3, WarmupSteps: 2, TotalSteps: 2 + decaySteps, MinRatio: 0.25);
        Assert.Equal(3, s.At(2));
        Assert.Equal(3, s.At(10));
    }

    [Fact]
    public void ADecayOfTwoStepsGoesFromThePeakToTheFloor()
    {
        var s = new LearningRateSchedule(Peak: 4, WarmupSteps: 2, TotalSteps: 4, MinRatio: 0.25);
        Assert.Equal(4, s.At(2), 12);
        Assert.Equal(1, s.At(3), 12);
        Assert.Equal(1, s.At(4), 12);   // clamped past the end
    }

    [Fact]
    public void HalfwayThroughTheDecayIsHalfwayBetweenPeakAndFloor()
    {
        var s = new LearningRateSchedule(Peak: 4, WarmupSteps: 0, TotalSteps: 3, MinRatio: 0.5);
        Assert.Equal(4, s.At(0), 12);
        Assert.Equal(3, s.At(1), 12);
        Assert.Equal(2, s.At(2), 12);
    }

    [Fact]
    public void AQuarterOfTheWayFollowsTheCosine()
    {
        var s = new LearningRateSchedule(Peak: 1, WarmupSteps: 1, TotalSteps: 6, MinRatio: 0);
        Assert.Equal(0.5 * (1 + Math.Cos(Math.PI / 4)), s.At(2), 12);
    }
}
