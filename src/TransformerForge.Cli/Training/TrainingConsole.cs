using System.Runtime.InteropServices;
using Spectre.Console;
using TransformerForge.Training;

namespace TransformerForge.Cli.Training;

/// <summary>
/// Runs a trainer in the console: a live progress bar (loss, tokens/s, ETA) on a terminal, plain lines when output is
/// redirected; evaluation lines and samples as they come; Ctrl+C, SIGTERM and SIGHUP stop after the current step with a checkpoint.
/// </summary>
public static class TrainingConsole
{
    public static int Train(Trainer trainer)
    {
        using var cancel = new CancellationTokenSource();
        // Ctrl+C, and SIGTERM / SIGHUP (timeout, docker stop, a Slurm preemption, a closed terminal): stop after the
        // current step with a checkpoint. A second signal ends the process at once (the default action runs).
        var registrations = new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP }
            .Select(signal => PosixSignalRegistration.Create(signal, context =>
            {
                if (cancel.IsCancellationRequested) return;
                context.Cancel = true;
                cancel.Cancel();
                Console.Error.WriteLine($"{Name(context.Signal)}: stopping after this step and saving a checkpoint (send it again to abort)");
            }))
            .ToList();
        try
        {
            TrainingResult result;
            if (Console.IsOutputRedirected || !AnsiConsole.Profile.Capabilities.Interactive)
                result = trainer.Run(new PlainObserver(), cancellation: cancel.Token);
            else
                result = AnsiConsole.Progress()
                    .AutoClear(false)
                    .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new SpinnerColumn())
                    .Start(ctx => trainer.Run(new LiveObserver(ctx), cancellation: cancel.Token));
            Console.WriteLine(Summary(trainer, result));
            WritePlot(trainer.Options.OutDir);
            return 0;
        }
        catch (NonFiniteLossException e)
        {
            Console.Error.WriteLine($"tforge: {e.Message}; the last checkpoint (if any) is left as it was");
            WritePlot(trainer.Options.OutDir);
            return 1;
        }
        finally
        {
            foreach (var r in registrations) r.Dispose();
        }
    }

    static string Name(PosixSignal signal) => signal switch
    {
        PosixSignal.SIGINT => "Ctrl+C",
        PosixSignal.SIGTERM => "SIGTERM",
        PosixSignal.SIGHUP => "SIGHUP",
        _ => signal.ToString(),
    };

    static void WritePlot(string? runDirectory)
    {
        if (runDirectory is null) return;
        try
        {
            if (LossPlot.Write(runDirectory) is { } png) Console.WriteLine($"loss plot: {png}");
        }
        catch (Exception e) when (e is IOException or TypeInitializationException or DllNotFoundException)
        {
            // The plot is a convenience; metrics.jsonl has the numbers.
            Console.Error.WriteLine($"tforge: could not draw the loss plot: {e.Message}");
        }
    }

    static string Summary(Trainer trainer, TrainingResult r)
    {
        var how = r.Reason switch
        {
            StopReason.TargetReached => $"reached the exact-match target {trainer.Options.TargetExactMatch * 100:0.#}% at step {r.Step}",
            StopReason.StopRequested => $"stopped at step {r.Step} of {trainer.Options.Steps}",
            _ => $"finished {r.Step} steps",
        };
        var eval = r.LastEvaluation is { } e ? $"; {Describe(e)}" : "";
        var where = r.CheckpointPath is { } p ? $"\ncheckpoint: {p}" : "";
        return $"{how} in {Time(r.Elapsed)} ({r.TokensPerSecond:N0} tokens/s){eval}{where}";
    }

    internal static string Start(TrainingStart s) =>
        $"training {s.ParameterCount:N0} parameters on {s.Data} ({s.Device}), " +
        (s.StartStep > 0 ? $"from step {s.StartStep} " : "") + $"for {s.TotalSteps} steps" + (s.OutDir is { } o ? $"; run directory {o}" : "");

    internal static string Step(StepReport r) =>
        $"step {r.Step}/{r.TotalSteps}  loss {r.Loss:F4}  lr {r.LearningRate:0.00e+0}  grad {r.GradNorm:F2}  {Rate(r.TokensPerSecond)} tok/s  " +
        $"elapsed {Time(r.Elapsed)}  eta {Time(r.Eta)}";

    internal static string Describe(EvaluationMetrics m)
    {
        var parts = new List<string> { $"val loss {m.Loss:F4}", $"ppl {m.Perplexity:F3}" };
        if (m.BitsPerUnit is { } bits) parts.Add($"{bits:F3} bits/{m.Unit}");
        if (m.ExactMatch is { } em) parts.Add($"exact match {em * 100:F1}% ({m.Examples} held-out)");
        return string.Join(", ", parts);
    }

    internal static string Evaluation(EvaluationMetrics m) => $"step {m.Step}: {Describe(m)}";

    static string Rate(double tokensPerSecond) => tokensPerSecond >= 1e4 ? $"{tokensPerSecond / 1e3:F1}k" : $"{tokensPerSecond:F0}";

    static string Time(TimeSpan t) => t.TotalHours >= 1 ? $"{(int)t.TotalHours}:{t:mm\\:ss}" : $"{(int)t.TotalMinutes}:{t:ss}";

    /// <summary>Plain lines for logs and pipes.</summary>
    sealed class PlainObserver : ITrainingObserver
    {
        public void OnStart(TrainingStart start) => Console.WriteLine(Start(start));
        public void OnStep(StepReport report)
        {
            if (report.IsLogStep) Console.WriteLine(Step(report));
        }
        public void OnEvaluation(EvaluationMetrics metrics) => Console.WriteLine(Evaluation(metrics));
        public void OnSamples(int step, IReadOnlyList<string> samples)
        {
            Console.WriteLine($"samples at step {step}:");
            foreach (var s in samples) Console.WriteLine($"  {s}");
        }
        public void OnCheckpoint(int step, string path) => Console.WriteLine($"checkpoint at step {step}: {path}");
    }

    /// <summary>A Spectre progress bar; other output is written above it.</summary>
    sealed class LiveObserver(ProgressContext ctx) : ITrainingObserver
    {
        ProgressTask? _task;

        public void OnStart(TrainingStart start)
        {
            AnsiConsole.WriteLine(Start(start));
            _task = ctx.AddTask("starting", maxValue: start.TotalSteps);
            _task.Value = start.StartStep;
        }

        public void OnStep(StepReport r)
        {
            if (_task is null) return;
            _task.Value = r.Step;
            _task.Description = Markup.Escape($"step {r.Step}/{r.TotalSteps} loss {r.Loss:F4} {Rate(r.TokensPerSecond)} tok/s eta {Time(r.Eta)}");
        }

        public void OnEvaluation(EvaluationMetrics metrics) => AnsiConsole.MarkupLine(Markup.Escape(Evaluation(metrics)));

        public void OnSamples(int step, IReadOnlyList<string> samples)
        {
            AnsiConsole.MarkupLine($"[grey]samples at step {step}:[/]");
            foreach (var s in samples) AnsiConsole.MarkupLine($"  {Markup.Escape(s)}");
        }

        public void OnCheckpoint(int step, string path) => AnsiConsole.MarkupLine($"[grey]{Markup.Escape($"checkpoint at step {step}: {path}")}[/]");
    }
}
