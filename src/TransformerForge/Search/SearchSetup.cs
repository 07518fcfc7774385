using System.Text.Json.Nodes;
using TransformerForge.Training;

namespace TransformerForge.Search;

/// <summary>Everything a command line says about a new study (null = not given, use the default).</summary>
public sealed record SearchRequest
{
    public required string Study { get; init; }
    public string? SpacePath { get; init; }
    public string? Algorithm { get; init; }
    public IReadOnlyList<string> Objectives { get; init; } = [];
    public int? Trials { get; init; }
    public TrainingDataSpec? Data { get; init; }
    public int? BudgetSteps { get; init; }
    public double? BudgetSeconds { get; init; }
    public int? BatchSize { get; init; }
    public double? LearningRate { get; init; }
    public int? WarmupSteps { get; init; }
    public double? WeightDecay { get; init; }
    public double? GradClip { get; init; }
    public int? EvalBatches { get; init; }
    public int? Threads { get; init; }
    public double? MaxParams { get; init; }
    public double? MaxFlops { get; init; }
    public double? MaxLatencyMs { get; init; }
    public IReadOnlyList<double>? Hurdles { get; init; }
    public double? HurdlePercentile { get; init; }
    public int? HurdleMinTrials { get; init; }
    public int? Population { get; init; }
    public int? SampleSize { get; init; }
    public double? MutationProbability { get; init; }
    public double? CrossoverProbability { get; init; }
    public int? InitialRandom { get; init; }
    public int? Eta { get; init; }
    public int? Rungs { get; init; }
    public double? TrialTimeoutSeconds { get; init; }
    public double? TrialMemoryMiB { get; init; }
    public int? MaxAttempts { get; init; }
    public int? Seed { get; init; }

    /// <summary>Whether the request says anything about the study's definition (beyond its name and trial count).</summary>
    public bool DefinesStudy => SpacePath is not null || Algorithm is not null || Objectives.Count > 0 || Data is not null
        || BudgetSteps is not null || BudgetSeconds is not null || BatchSize is not null || LearningRate is not null || WarmupSteps is not null
        || WeightDecay is not null || GradClip is not null || EvalBatches is not null || Threads is not null || MaxParams is not null
        || MaxFlops is not null || MaxLatencyMs is not null || Hurdles is not null || HurdlePercentile is not null || HurdleMinTrials is not null
        || Population is not null || SampleSize is not null || MutationProbability is not null || CrossoverProbability is not null
        || InitialRandom is not null || Eta is not null || Rungs is not null || TrialTimeoutSeconds is not null || TrialMemoryMiB is not null
        || MaxAttempts is not null || Seed is not null;
}

/// <summary>
/// Creates a study from a request, or continues one by name: with only the name (and optionally a new trial count)
/// the stored definition is used as it is; a request that defines the study must match the stored one exactly, or it
/// is refused naming the settings that differ.
/// </summary>
public static class SearchSetup
{
    public static StudyInfo OpenOrCreate(IStudyStorage storage, SearchRequest request)
    {
        if (request.Trials is < 1) throw new SearchException($"--trials must be at least 1, got {request.Trials}");
        var existing = storage.Find(request.Study);
        if (existing is not null && !request.DefinesStudy)
        {
            if (request.Trials is { } more && more != existing.MaxTrials)
            {
                storage.SetMaxTrials(existing.Id, more);
                existing = existing with { MaxTrials = more };
            }
            return existing;
        }
        if (existing is null && request.SpacePath is null)
            throw new SearchException($"there is no study '{request.Study}' in {StudyStorages.Describe(storage)}; give --space (and the rest of its settings) to create it");

        var definition = Define(request);
        var study = storage.OpenOrCreate(definition, request.Trials ?? 50);
        var differences = study.Definition.Differences(definition);
        if (differences.Count > 0)
            throw new SearchException($"study '{request.Study}' exists with other settings ({string.Join(", ", differences)}); " +
                "continue it with --study alone (and --trials to change its length), or choose another name");
        if (request.Trials is { } trials && trials != study.MaxTrials)
        {
            storage.SetMaxTrials(study.Id, trials);
            study = study with { MaxTrials = trials };
        }
        return study;
    }

    /// <summary>The study definition a request describes: checked, with the space resolved against the data.</summary>
    public static StudyDefinition Define(SearchRequest r)
    {
        var space = SearchSpaces.Load(r.SpacePath ?? throw new SearchException("give --space"));
        var data = r.Data ?? throw new SearchException("give the data trials train on: --data FILE (with --tokenizer) or --task NAME");
        if (SearchSpaces.NeedsData(space))
        {
            using var opened = data.Open();
            space = SearchSpaces.WithData(space, opened.VocabSize, opened.InputLength);
        }

        var objectives = (r.Objectives.Count > 0 ? r.Objectives : [Metrics.ValLoss]).Select(Objective.Of).ToList();
        if (objectives.Select(o => o.Metric).Distinct().Count() != objectives.Count) throw new SearchException("an objective is given twice");
        var constraints = new List<Constraint>();
        if (r.MaxParams is { } mp) constraints.Add(new Constraint(Metrics.Params, mp));
        if (r.MaxFlops is { } mf) constraints.Add(new Constraint(Metrics.FlopsPerToken, mf));
        if (r.MaxLatencyMs is { } ml) constraints.Add(new Constraint(Metrics.LatencyMs, ml));

        var algorithmName = r.Algorithm ?? (objectives.Count > 1 ? ParetoEvolution.AlgorithmName : RegularizedEvolution.AlgorithmName);
        ISearchAlgorithm algorithm = algorithmName switch
        {
            RandomSearch.AlgorithmName => new RandomSearch(),
            RegularizedEvolution.AlgorithmName => new RegularizedEvolution(r.Population ?? 20, r.SampleSize ?? 5, r.MutationProbability, r.CrossoverProbability ?? 0),
            ParetoEvolution.AlgorithmName => new ParetoEvolution(r.InitialRandom ?? 10, mutationProbability: r.MutationProbability),
            SuccessiveHalving.AlgorithmName => new SuccessiveHalving(r.Eta ?? 3, r.Rungs ?? 3),
            _ => throw new SearchException($"unknown algorithm '{algorithmName}'; known: {string.Join(", ", SearchAlgorithms.Names)}"),
        };
        // An option of another algorithm is a mistake, not something to ignore.
        var foreign = new (string Option, object? Value, string For)[]
        {
            ("--population", r.Population, RegularizedEvolution.AlgorithmName), ("--sample-size", r.SampleSize, RegularizedEvolution.AlgorithmName),
            ("--crossover-prob", r.CrossoverProbability, RegularizedEvolution.AlgorithmName), ("--initial-random", r.InitialRandom, ParetoEvolution.AlgorithmName),
            ("--eta", r.Eta, SuccessiveHalving.AlgorithmName), ("--rungs", r.Rungs, SuccessiveHalving.AlgorithmName),
            ("--mutation-prob", r.MutationProbability, algorithm is ParetoEvolution ? ParetoEvolution.AlgorithmName : RegularizedEvolution.AlgorithmName),
        }.Where(f => f.Value is not null && f.For != algorithm.Name).ToList();
        if (foreign.Count > 0)
            throw new SearchException($"{string.Join(", ", foreign.Select(f => f.Option))} {(foreign.Count == 1 ? "is an option" : "are options")} of --algorithm {foreign[0].For}, not {algorithm.Name}");
        if (algorithm is ParetoEvolution && objectives.Count < 2) throw new SearchException("the pareto algorithm needs at least two objectives (--objective, repeated)");

        HurdlePolicy? hurdles = null;
        if (r.Hurdles is { } at)
        {
            if (algorithm is SuccessiveHalving) throw new SearchException("hurdles and successive halving both stop candidates early; choose one");
            if (!Metrics.Get(objectives[0].Metric).NeedsTraining)
                throw new SearchException($"hurdles compare the primary objective part-way through training; {objectives[0].Metric} is not a training metric");
            hurdles = new HurdlePolicy(at, r.HurdlePercentile ?? 50, r.HurdleMinTrials ?? 5);
            hurdles.Validate();
        }

        var metrics = objectives.Select(o => o.Metric).Concat(constraints.Select(c => c.Metric)).Distinct().ToList();
        var settings = new EvaluationSettings
        {
            Data = data,
            Metrics = metrics,
            BudgetSteps = r.BudgetSteps,
            BudgetSeconds = r.BudgetSeconds,
            BatchSize = r.BatchSize ?? 32,
            LearningRate = r.LearningRate ?? 1e-3,
            WarmupSteps = r.WarmupSteps ?? 50,
            WeightDecay = r.WeightDecay ?? 0.01,
            GradClip = r.GradClip ?? 1.0,
            EvalBatches = r.EvalBatches ?? 8,
            Threads = r.Threads,
            TrialTimeoutSeconds = r.TrialTimeoutSeconds ?? 0,
            TrialMemoryMiB = r.TrialMemoryMiB ?? 0,
        };
        settings.Validate();
        if (r.MaxAttempts is < 1) throw new SearchException($"--max-attempts must be at least 1, got {r.MaxAttempts}");

        return new StudyDefinition
        {
            Name = r.Study,
            Space = space.ToJson(),
            Objectives = objectives,
            Algorithm = algorithm.ToJson(),
            Constraints = constraints,
            Hurdles = hurdles,
            Evaluation = settings.ToJson(),
            Seed = r.Seed ?? 0,
            MaxAttempts = r.MaxAttempts ?? 3,
        };
    }

    /// <summary>The pieces a worker of <paramref name="study"/> needs: its space's candidate source and its evaluation settings.</summary>
    public static (CandidateSource Candidates, EvaluationSettings Settings) Prepare(StudyInfo study)
    {
        var d = study.Definition;
        var space = SearchSpaces.FromJson(d.Space);
        var settings = EvaluationSettings.FromJson(d.Evaluation);
        ICandidateMeter? meter = null;
        if (d.Constraints.Count > 0)
        {
            using var data = settings.Data.Open();
            meter = new ModelMeter(data.InputLength, settings.LatencyRepeats);
        }
        return (new CandidateSource(space, d.Constraints, meter), settings);
    }
}
