namespace TransformerForge.Training;

/// <summary>
/// Linear warmup from 0 to the peak rate, then a half cosine down to <c>peak × minRatio</c> at the last step.
/// A pure function of the step, so a resumed run needs only the step to continue the schedule.
/// </summary>
public sealed record LearningRateSchedule(double Peak, int WarmupSteps, int TotalSteps, double MinRatio)
{
    public static LearningRateSchedule From(TrainOptions o) => new(o.LearningRate, o.WarmupSteps, o.Steps, o.MinLrRatio);

    /// <summary>The rate for optimizer step <paramref name="step"/> (0-based: the first update uses step 0).</summary>
    public double At(int step)
    {
        if (step < WarmupSteps) return Peak * (step + 1) / WarmupSteps;
        int decaySteps = TotalSteps - WarmupSteps;
        if (decaySteps <= 1) return Peak;
        double progress = Math.Clamp((double)(step - WarmupSteps) / (decaySteps - 1), 0, 1);
        double min = Peak * MinRatio;
        return min + (Peak - min) * 0.5 * (1 + Math.Cos(Math.PI * progress));
    }
}
