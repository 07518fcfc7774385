using TransformerForge.Training;

namespace TransformerForge.Tests.Training;

public class LearningRateScheduleTests
{
    [Fact]
    public void WarmsUpLinearlyThenDecaysByCosineToTheFloor()
    {
        var s = new LearningRateSchedule(Peak: 1e-3, WarmupSteps: 10, TotalSteps: 110, MinRatio: 0.1);
        Assert.Equal(1e-4, s.At(0), 12);
        Assert.Equal(5e-4, s.At(4), 12);
        Assert.Equal(1e-3, s.At(9), 12);
        Assert.Equal(1e-3, s.At(10), 12);          // first decay step is still the peak
        Assert.Equal(1e-4, s.At(109), 12);         // last step reaches the floor
        double mid = s.At(10 + 99 / 2);
        Assert.InRange(mid, 0.5e-3, 0.6e-3);
        for (int i = 11; i < 110; i++) Assert.True(s.At(i) <= s.At(i - 1));
        Assert.Equal(1e-4, s.At(500), 12);         // past the end it stays at the floor
    }

    [Fact]
    public void NoWarmupStartsAtThePeak()
    {
        var s = new LearningRateSchedule(2e-3, 0, 5, 0);
        Assert.Equal(2e-3, s.At(0), 12);
        Assert.Equal(0, s.At(4), 12);
    }
}
