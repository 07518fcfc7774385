using TransformerForge.Search;

namespace TransformerForge.Tests.Search;

/// <summary>
/// Each algorithm on a cheap synthetic objective with a known optimum, over 20 seeds, against random search with the
/// same number of evaluations (or the same training budget); plus determinism and the rules each algorithm states.
/// </summary>
public class SearchAlgorithmTests
{
    const int Seeds = 20;
    static readonly Objective Loss = Objective.Of(Metrics.ValLoss);
    static readonly int[] Target = [3, 1, 4, 0, 5, 2];

    /// <summary>Squared distance to <see cref="Target"/>: 0 at the optimum only.</summary>
    static double Distance(int[] x) => x.Select((v, i) => (double)(v - Target[i]) * (v - Target[i])).Sum();

    /// <summary>Evaluations until the optimum is found (or the budget + 1 if never).</summary>
    static int EvaluationsToOptimum(ISearchAlgorithm algorithm, int seed, int budget)
    {
        var history = SyntheticSearch.Run(algorithm, new GridSpace(4, 6), [Loss], seed, budget, SyntheticSearch.Simple(Metrics.ValLoss, Distance),
            stop: h => h[^1].Metrics[Metrics.ValLoss] == 0);
        return history[^1].Metrics[Metrics.ValLoss] == 0 ? history.Count : budget + 1;
    }

    [Fact]
    public void EvolutionReachesTheOptimumInFewerEvaluationsThanRandomSearch()
    {
        // 6^4 = 1296 models, one optimum. Random search never repeats a model, so it finds the optimum within 1296
        // evaluations (648 on average); evolution climbs to it.
        const int budget = 1296;
        var evolution = Enumerable.Range(0, Seeds).Select(s => EvaluationsToOptimum(new RegularizedEvolution(population: 20, sampleSize: 5), s, budget)).ToList();
        var random = Enumerable.Range(0, Seeds).Select(s => EvaluationsToOptimum(new RandomSearch(), s, budget)).ToList();
        Assert.All(evolution, e => Assert.True(e <= budget));
        Assert.True(evolution.Average() < random.Average() / 2, $"evaluations to the optimum: evolution {evolution.Average():F0}, random {random.Average():F0}");
        Assert.True(evolution.Zip(random).Count(p => p.First < p.Second) >= 16, $"evolution {string.Join(",", evolution)}; random {string.Join(",", random)}");
    }

    [Fact]
    public void ParetoEvolutionFindsABetterFrontThanRandomSearch()
    {
        // Two conflicting objectives over 10 choices of 0..4: the sum (min) and the squared distance from all-fours (min).
        const int n = 10, k = 5, budget = 200;
        var objectives = new[] { Objective.Of(Metrics.ValLoss), Objective.Of(Metrics.Params) };
        SyntheticSearch.Evaluator both = (x, _) => (TrialState.Complete, new Dictionary<string, double>
        {
            [Metrics.ValLoss] = x.Sum(), [Metrics.Params] = x.Sum(v => (double)(k - 1 - v) * (k - 1 - v)),
        }, []);
        var reference = (X: n * (k - 1) + 1.0, Y: n * (k - 1.0) * (k - 1) + 1);
        // The true front: for each sum s, the most even spread of s over the choices.
        var trueFront = Enumerable.Range(0, n * (k - 1) + 1).Select(s =>
        {
            var x = Enumerable.Range(0, n).Select(i => s / n + (i < s % n ? 1 : 0)).ToArray();
            return ((double)s, x.Sum(v => (double)(k - 1 - v) * (k - 1 - v)));
        }).ToList();
        double best = Pareto.Hypervolume2D(trueFront, reference);

        double Volume(ISearchAlgorithm a, int seed)
        {
            var h = SyntheticSearch.Run(a, new GridSpace(n, k), objectives, seed, budget, both);
            var front = Pareto.Front(h, objectives);
            // The front is non-dominated among all trials.
            foreach (var f in front)
                Assert.DoesNotContain(h, t => Pareto.Dominates(Pareto.Losses(t, objectives)!, Pareto.Losses(f, objectives)!));
            return Pareto.Hypervolume2D(front.Select(t => (t.Metrics[Metrics.ValLoss], t.Metrics[Metrics.Params])), reference);
        }
        var pareto = Enumerable.Range(0, Seeds).Select(s => Volume(new ParetoEvolution(initialRandom: 10), s)).ToList();
        var random = Enumerable.Range(0, Seeds).Select(s => Volume(new RandomSearch(), s)).ToList();
        Assert.True(pareto.Average() > random.Average(), $"hypervolume: pareto {pareto.Average():F1}, random {random.Average():F1}, true front {best:F1}");
        Assert.True(best - pareto.Average() < 0.85 * (best - random.Average()), $"gap to the true front: pareto {best - pareto.Average():F1}, random {best - random.Average():F1}");
        Assert.True(pareto.Zip(random).Count(p => p.First > p.Second) >= 15, $"pareto {string.Join(",", pareto.Select(v => v.ToString("F0")))}; random {string.Join(",", random.Select(v => v.ToString("F0")))}");
    }

    [Fact]
    public void SuccessiveHalvingFindsABetterModelThanRandomSearchWithTheSameTrainingBudget()
    {
        // A short training budget shows the true quality blurred by noise that shrinks as the budget grows.
        var space = new GridSpace(6, 6);
        int[] target = [2, 4, 1, 5, 0, 3];
        double True(int[] x) => x.Select((v, i) => (double)(v - target[i]) * (v - target[i])).Sum();
        SyntheticSearch.Evaluator trained = (x, plan) =>
        {
            var noise = new Random(x.Aggregate(17, (h, v) => h * 31 + v)).NextDouble() * 6;
            return (TrialState.Complete, new Dictionary<string, double> { [Metrics.ValLoss] = True(x) + noise * (1 - plan.BudgetFraction) }, []);
        };
        const double budget = 30;   // in full trainings
        double BestFullBudget(ISearchAlgorithm a, int seed)
        {
            var h = SyntheticSearch.Run(a, space, [Loss], seed, 10_000, trained, stop: h => h.Sum(t => t.Plan.BudgetFraction) >= budget);
            var full = h.Where(t => t.Plan.BudgetFraction == 1).ToList();
            return full.Count == 0 ? double.PositiveInfinity : full.Min(t => True(GridSpace.Values(t)));
        }
        var halving = Enumerable.Range(0, Seeds).Select(s => BestFullBudget(new SuccessiveHalving(eta: 3, rungs: 3), s)).ToList();
        var random = Enumerable.Range(0, Seeds).Select(s => BestFullBudget(new RandomSearch(), s)).ToList();
        Assert.True(halving.Average() < random.Average(), $"best true distance: halving {halving.Average():F2}, random {random.Average():F2}");
    }

    [Fact]
    public void SuccessiveHalvingPromotesTheTopThirdOfARungWithThreeTimesTheBudget()
    {
        var h = SyntheticSearch.Run(new SuccessiveHalving(eta: 3, rungs: 3), new GridSpace(4, 5), [Loss], 1, 60,
            SyntheticSearch.Simple(Metrics.ValLoss, x => x.Sum()));
        Assert.Equal(1.0 / 9, h[0].Plan.BudgetFraction, 12);
        foreach (var t in h.Where(t => t.Plan.Origin == "promotion"))
        {
            var parent = h[t.Plan.Parents[0]];
            Assert.Equal(parent.Plan.Rung + 1, t.Plan.Rung);
            Assert.Equal(parent.Key, t.Key);
            Assert.Equal(parent.Plan.BudgetFraction * 3, t.Plan.BudgetFraction, 12);
            // The parent was in the top third of its rung's complete trials when it was promoted.
            var before = h.Take(t.Number).Where(o => o.Plan.Rung == parent.Plan.Rung).OrderBy(o => o.Metrics[Metrics.ValLoss]).ToList();
            Assert.True(before.IndexOf(parent) < before.Count / 3, $"trial {parent.Number} promoted from rank {before.IndexOf(parent)} of {before.Count}");
        }
        Assert.Contains(h, t => t.Plan.Rung == 2);
        Assert.Equal(h.Count(t => t.Plan.Origin == "promotion"), h.Where(t => t.Plan.Origin == "promotion").Select(t => (t.Plan.Rung, t.Plan.Parents[0])).Distinct().Count());
    }

    [Fact]
    public void HurdlesSaveTrainingWithoutLosingTheOptimum()
    {
        // Training lowers the loss by the same amount for everyone, so the early loss ranks candidates as the final one does.
        SyntheticSearch.Evaluator withHurdles = (x, plan) =>
        {
            double At(double f) => Distance(x) + 5 * (1 - f);
            var intermediate = new List<IntermediateValue>();
            foreach (var hurdle in plan.Hurdles)
            {
                intermediate.Add(new IntermediateValue(hurdle.At, 0, 0, At(hurdle.At)));
                if (HurdlePolicy.Fails(hurdle, At(hurdle.At), Loss))
                    return (TrialState.Pruned, new Dictionary<string, double> { [Metrics.ValLoss] = At(hurdle.At), ["cost"] = hurdle.At }, intermediate);
            }
            return (TrialState.Complete, new Dictionary<string, double> { [Metrics.ValLoss] = At(1), ["cost"] = 1 }, intermediate);
        };
        var policy = new HurdlePolicy([0.25], Percentile: 50, MinTrials: 5);
        double cost = 0, costWithout = 0;
        int found = 0, foundWithout = 0;
        for (int seed = 0; seed < Seeds; seed++)
        {
            var h = SyntheticSearch.Run(new RegularizedEvolution(), new GridSpace(6, 6), [Loss], seed, 200, withHurdles, policy);
            var h0 = SyntheticSearch.Run(new RegularizedEvolution(), new GridSpace(6, 6), [Loss], seed, 200, withHurdles);
            cost += h.Sum(t => t.Metrics["cost"]);
            costWithout += h0.Sum(t => t.Metrics["cost"]);
            found += h.Any(t => t.State == TrialState.Complete && Distance(GridSpace.Values(t)) == 0) ? 1 : 0;
            foundWithout += h0.Any(t => Distance(GridSpace.Values(t)) == 0) ? 1 : 0;
            Assert.Contains(h, t => t.State == TrialState.Pruned);
        }
        Assert.True(cost < 0.8 * costWithout, $"training with hurdles {cost:F0} vs without {costWithout:F0}");
        Assert.True(found >= foundWithout - 2, $"optimum found with hurdles in {found}, without in {foundWithout} of {Seeds} seeds");
    }

    [Fact]
    public void HurdleThresholdIsThePercentileOfEarlierValuesAtThatPoint()
    {
        var values = new[] { 5.0, 1, 4, 2, 3 };
        var history = values.Select((v, i) => new TrialRecord
        {
            Number = i, State = i == 4 ? TrialState.Pruned : TrialState.Complete, Spec = new(), Key = $"{i}", Genome = new(), Plan = new TrialPlan(),
            Intermediate = [new IntermediateValue(0.5, 10, 1, v), new IntermediateValue(0.25, 5, 1, 100)],
        }).ToList();
        var hurdles = new HurdlePolicy([0.25, 0.5], Percentile: 50, MinTrials: 5).Thresholds(history, Loss);
        Assert.Equal([new Hurdle(0.25, 100), new Hurdle(0.5, 3)], hurdles);
        // Too few earlier values: the hurdle only measures.
        var early = Assert.Single(new HurdlePolicy([0.5], MinTrials: 6).Thresholds(history, Loss));
        Assert.Null(early.Threshold);
        Assert.False(HurdlePolicy.Fails(early, 1e9, Loss));
        // Maximised metrics: the threshold is the percentile from the good end, and a lower value fails.
        var em = Objective.Of(Metrics.ExactMatch);
        var emHurdle = new HurdlePolicy([0.5], Percentile: 25, MinTrials: 5).Thresholds(history, em).Single();
        Assert.Equal(4, emHurdle.Threshold);
        Assert.True(HurdlePolicy.Fails(emHurdle, 3.9, em));
        Assert.False(HurdlePolicy.Fails(emHurdle, 4.1, em));
        Assert.True(HurdlePolicy.Fails(new Hurdle(0.5, 3), double.NaN, Loss));
    }

    [Fact]
    public void RegularizedEvolutionNeverPicksParentsThatAgedOut()
    {
        // Trial 0 is by far the best but older than the population window: it must never be a parent again.
        var space = new GridSpace(6, 6);
        var evaluate = SyntheticSearch.Simple(Metrics.ValLoss, x => x.Sum());
        var evolution = new RegularizedEvolution(population: 5, sampleSize: 5);
        var seeded = SyntheticSearch.Run(new RandomSearch(), space, [Loss], 3, 12, evaluate);
        seeded[0] = seeded[0] with { Metrics = new Dictionary<string, double> { [Metrics.ValLoss] = -1000 } };
        var source = new CandidateSource(space);
        for (int n = 12; n < 40; n++)
        {
            var p = evolution.Ask(new AskContext(n, AskContext.RandomFor(3, n), seeded, source, [Loss]))!;
            Assert.Equal("mutation", p.Origin);
            var window = seeded.TakeLast(5).Select(t => t.Number).ToList();
            Assert.Contains(p.Parents[0], window);
            // The whole window is sampled (sample size = population), so the parent is its fittest member.
            Assert.Equal(seeded.TakeLast(5).MinBy(t => t.Metrics[Metrics.ValLoss])!.Number, p.Parents[0]);
            seeded.Add(new TrialRecord
            {
                Id = n + 1, Number = n, State = TrialState.Complete, Spec = p.Candidate.Spec, Key = p.Candidate.Key,
                Genome = p.Candidate.Genome.ToJson(space.Parameters), Plan = new TrialPlan(),
                Metrics = new Dictionary<string, double> { [Metrics.ValLoss] = p.Candidate.Genome.Indices.Sum() },
            });
        }
    }

    [Theory]
    [InlineData(RandomSearch.AlgorithmName)]
    [InlineData(RegularizedEvolution.AlgorithmName)]
    [InlineData(ParetoEvolution.AlgorithmName)]
    [InlineData(SuccessiveHalving.AlgorithmName)]
    public void SameSeedSameProposalsOtherSeedOthers(string name)
    {
        var algorithm = SearchAlgorithms.FromJson(new System.Text.Json.Nodes.JsonObject { ["name"] = name });
        var objectives = new[] { Objective.Of(Metrics.ValLoss), Objective.Of(Metrics.Params) };
        SyntheticSearch.Evaluator f = (x, _) => (TrialState.Complete, new Dictionary<string, double> { [Metrics.ValLoss] = Distance(x), [Metrics.Params] = x.Sum() }, []);
        List<string> Keys(int seed) => SyntheticSearch.Run(algorithm, new GridSpace(6, 6), objectives, seed, 60, f).Select(t => t.Key).ToList();
        var a = Keys(7);
        Assert.Equal(a, Keys(7));
        Assert.NotEqual(a, Keys(8));
        // A model is never proposed twice (successive halving retrains promoted ones on purpose).
        if (name != SuccessiveHalving.AlgorithmName) Assert.Equal(a.Count, a.Distinct().Count());
    }

    [Fact]
    public void ParetoFrontIsTheNonDominatedCompleteTrials()
    {
        TrialRecord T(int n, double a, double b, TrialState s = TrialState.Complete) => new()
        {
            Number = n, State = s, Spec = new(), Key = $"{n}", Genome = new(), Plan = new TrialPlan(),
            Metrics = new Dictionary<string, double> { [Metrics.ValLoss] = a, [Metrics.ExactMatch] = b },
        };
        var objectives = new[] { Objective.Of(Metrics.ValLoss), Objective.Of(Metrics.ExactMatch) };   // min, max
        var trials = new[] { T(0, 1, 0.5), T(1, 2, 0.9), T(2, 2, 0.4), T(3, 0.5, 0.1), T(4, 0.1, 1, TrialState.Failed), T(5, 1, 0.5), T(6, 3, 0.9) };
        Assert.Equal([0, 1, 3], Pareto.Front(trials, objectives).Select(t => t.Number));
        Assert.Equal(3, Pareto.Best(trials, objectives[0])!.Number);
    }
}
