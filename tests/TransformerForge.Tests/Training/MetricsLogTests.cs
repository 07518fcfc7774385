using System.Text.Json.Nodes;
using TransformerForge.Tests.Data;
using TransformerForge.Training;

namespace TransformerForge.Tests.Training;

/// <summary>
/// metrics.jsonl as written and read back (what `tforge compare` and `tforge plot` read), a resumed run's log that
/// drops the steps it trains again, and the comparison of validation curves.
/// </summary>
public class MetricsLogTests
{
    static StepReport Step(int step, double loss) =>
        new(step, 10, loss, 1e-3, 0.5, 1234.56, TimeSpan.FromSeconds(step * 1.5), TimeSpan.Zero, IsLogStep: true);

    static EvaluationMetrics Eval(int step, double loss, double? exactMatch = null) =>
        new(step, loss, Math.Exp(loss), loss / Math.Log(2), "byte", exactMatch, 8);

    static string WriteRun(TempDir tmp, string name, params (int Step, double Loss)[] evaluations)
    {
        var dir = Path.Combine(tmp.Path, name);
        using var log = MetricsLog.Open(dir, keepThroughStep: null);
        foreach (var (step, loss) in evaluations)
        {
            log.Write(Step(step, loss + 0.1));
            log.Write(Eval(step, loss));
        }
        return Path.Combine(dir, MetricsLog.FileName);
    }

    [Fact]
    public void EachLineIsOneObjectWithTheDocumentedKeys()
    {
        using var tmp = new TempDir();
        var dir = Path.Combine(tmp.Path, "run");
        using (var log = MetricsLog.Open(dir, null))
        {
            log.Write(Step(3, 2.5));
            log.Write(Eval(3, 2.0, exactMatch: 0.25));
            log.Write(new EvaluationMetrics(4, 1.5, Math.Exp(1.5), null, null, null, 2));
        }
        var rows = MetricsLog.Read(Path.Combine(dir, MetricsLog.FileName));
        Assert.Equal(3, rows.Count);
        Assert.Equal("""{"kind":"train","step":3,"loss":2.5,"lr":0.001,"grad_norm":0.5,"tokens_per_second":1234.6,"elapsed_seconds":4.5}""",
            rows[0].ToJsonString());
        var eval = rows[1];
        Assert.Equal("eval", eval["kind"]!.GetValue<string>());
        Assert.Equal(3, eval["step"]!.GetValue<int>());
        Assert.Equal(2.0, eval["val_loss"]!.GetValue<double>());
        Assert.Equal(Math.Exp(2.0), eval["perplexity"]!.GetValue<double>());
        Assert.Equal(8, eval["examples"]!.GetValue<int>());
        Assert.Equal(2.0 / Math.Log(2), eval["bits_per_byte"]!.GetValue<double>());
        Assert.Equal(0.25, eval["exact_match"]!.GetValue<double>());
        // Without a unit or a task there is no bits or exact-match key.
        Assert.Equal(["kind", "step", "val_loss", "perplexity", "examples"], rows[2].Select(p => p.Key));
    }

    [Fact]
    public void AResumedRunKeepsTheLinesThroughItsCheckpointAndANewRunStartsEmpty()
    {
        using var tmp = new TempDir();
        var path = WriteRun(tmp, "run", (2, 3.0), (4, 2.0), (6, 1.0));
        var dir = Path.GetDirectoryName(path)!;
        // A torn last line (the run was killed while writing) is skipped by Read and dropped on resume.
        File.AppendAllText(path, "{\"kind\":\"train\",\"st");

        using (var log = MetricsLog.Open(dir, keepThroughStep: 4)) log.Write(Step(5, 9.0));
        var steps = MetricsLog.Read(path).Select(o => (o["kind"]!.GetValue<string>(), o["step"]!.GetValue<int>())).ToList();
        Assert.Equal([("train", 2), ("eval", 2), ("train", 4), ("eval", 4), ("train", 5)], steps);

        using (MetricsLog.Open(dir, keepThroughStep: null)) { }
        Assert.Empty(MetricsLog.Read(path));
    }

    [Fact]
    public void ReadSkipsLinesThatAreNotJsonObjects()
    {
        using var tmp = new TempDir();
        var path = Path.Combine(tmp.Path, MetricsLog.FileName);
        File.WriteAllLines(path, ["{\"step\":1}", "not json", "[1,2]", "{\"step\":2}"]);
        Assert.Equal([1, 2], MetricsLog.Read(path).Select(o => o["step"]!.GetValue<int>()));
    }

    [Fact]
    public void AValidationCurveIsReadFromTheEvaluationLinesOnly()
    {
        using var tmp = new TempDir();
        var path = WriteRun(tmp, "run", (2, 3.0), (4, 1.5), (6, 2.0));
        var curve = ValidationCurve.Read("base", path);
        Assert.Equal("base", curve.Label);
        Assert.Equal([(2, 3.0), (4, 1.5), (6, 2.0)], curve.Points);
        Assert.Equal(2.0, curve.Final);
        Assert.Equal((4, 1.5), curve.Best);
        Assert.Equal(4, curve.FirstStepAtOrBelow(2.0));     // at or below: 1.5 at step 4 is the first
        Assert.Equal(2, curve.FirstStepAtOrBelow(3.0));     // equal counts
        Assert.Null(curve.FirstStepAtOrBelow(1.0));
    }

    [Fact]
    public void ALogWithoutEvaluationsIsRefusedNamingTheFile()
    {
        using var tmp = new TempDir();
        var dir = Path.Combine(tmp.Path, "run");
        using (var log = MetricsLog.Open(dir, null)) log.Write(Step(1, 2.0));
        var path = Path.Combine(dir, MetricsLog.FileName);
        var e = Assert.Throws<InvalidDataException>(() => ValidationCurve.Read("x", path));
        Assert.Equal($"{path} holds no evaluations (kind \"eval\" with val_loss)", e.Message);
    }

    [Fact]
    public void CandidatesArePairedWithTheirBaselinesAndMeasuredByTheStepsTheyNeed()
    {
        var baselines = new[]
        {
            new ValidationCurve("b1", [(10, 3.0), (20, 2.0)]),
            new ValidationCurve("b2", [(10, 2.5), (20, 1.0)]),
        };
        var candidates = new[]
        {
            new ValidationCurve("c1", [(10, 2.0), (20, 1.5)]),   // reaches b1's final 2.0 at step 10
            new ValidationCurve("c2", [(10, 2.0), (20, 1.2)]),   // never reaches b2's final 1.0
        };
        var rows = RunComparison.Compare(baselines, candidates);
        Assert.Equal(2, rows.Count);
        Assert.Same(baselines[0], rows[0].Baseline);
        Assert.Same(candidates[0], rows[0].Candidate);
        Assert.Equal(10, rows[0].CandidateStepToBaselineFinal);
        Assert.Equal(0.5, rows[0].StepFraction);
        Assert.Same(baselines[1], rows[1].Baseline);
        Assert.Null(rows[1].CandidateStepToBaselineFinal);
        Assert.Null(rows[1].StepFraction);
    }

    [Theory]
    [InlineData(1, 2)]
    [InlineData(2, 1)]
    [InlineData(0, 0)]
    public void CompareNeedsAsManyCandidatesAsBaselines(int baselines, int candidates)
    {
        var curve = new ValidationCurve("r", [(1, 1.0)]);
        var e = Assert.Throws<ArgumentException>(() =>
            RunComparison.Compare(Enumerable.Repeat(curve, baselines).ToList(), Enumerable.Repeat(curve, candidates).ToList()));
        Assert.Equal($"need as many candidate runs as baseline runs (got {baselines} and {candidates})", e.Message);
    }
}
