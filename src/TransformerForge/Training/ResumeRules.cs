namespace TransformerForge.Training;

/// <summary>
/// What a resumed run may change. A resume is exact (the same steps as an uninterrupted run) only with the same seed,
/// batch, optimizer and learning-rate schedule, and the same data; those are refused when they differ. Free to change:
/// <see cref="TrainOptions.Steps"/> (where to stop; the saved schedule is kept, so steps past its end run at its final
/// rate), the device, and how often to log, evaluate, sample and checkpoint.
/// </summary>
public static class ResumeRules
{
    /// <summary>The options that fix a run's arithmetic, as "name saved → given" for those that differ.</summary>
    public static IReadOnlyList<string> Differences(TrainOptions saved, TrainOptions given)
    {
        var d = new List<string>();
        void Compare<T>(string name, T a, T b)
        {
            if (!EqualityComparer<T>.Default.Equals(a, b)) d.Add($"{name} {a} → {b}");
        }
        Compare("seed", saved.Seed, given.Seed);
        Compare("batch_size", saved.BatchSize, given.BatchSize);
        Compare("grad_accumulation", saved.GradAccumulation, given.GradAccumulation);
        Compare("learning_rate", saved.LearningRate, given.LearningRate);
        Compare("warmup_steps", saved.WarmupSteps, given.WarmupSteps);
        Compare("min_lr_ratio", saved.MinLrRatio, given.MinLrRatio);
        Compare("weight_decay", saved.WeightDecay, given.WeightDecay);
        Compare("beta1", saved.Beta1, given.Beta1);
        Compare("beta2", saved.Beta2, given.Beta2);
        Compare("epsilon", saved.Epsilon, given.Epsilon);
        Compare("grad_clip", saved.GradClip, given.GradClip);
        return d;
    }

    /// <summary>Throws when <paramref name="options"/> or <paramref name="data"/> would make the resumed run differ from an uninterrupted one.</summary>
    public static void Check(string checkpoint, TrainerState state, TrainingDataSpec savedData, TrainOptions options, TrainingDataSpec data)
    {
        if (state.Step > options.Steps)
            throw new ArgumentException($"the checkpoint in '{checkpoint}' is at step {state.Step}, past the {options.Steps} steps asked for; ask for more steps");
        var changes = Differences(state.Options, options).Concat(savedData.Differences(data)).ToList();
        if (changes.Count > 0)
            throw new ArgumentException($"cannot resume '{checkpoint}' exactly: {string.Join(", ", changes)} " +
                "(a resumed run keeps its seed, batch, optimizer, learning-rate schedule and data; start a new run to change them)");
    }
}
