using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using TransformerForge.Cli.Search;
using TransformerForge.Search;

namespace TransformerForge.Cli.Commands;

/// <summary><c>tforge search show</c> (studies, a study's trials, its best trial and Pareto front, a plot) and
/// <c>tforge search export</c> (the best model and the front as model JSON files for <c>tforge train --config</c>).</summary>
public static class SearchShowCommand
{
    public static Command CreateShow()
    {
        var study = new Option<string?>("--study") { Description = "The study to show (default: list the studies)." };
        var storage = SearchCommand.StorageOption();
        var top = new Option<int?>("--top") { Description = "Show only the N best complete trials (default: every trial)." };
        var plot = new Option<string?>("--plot") { Description = "Write the Pareto-front (or progress) plot to this PNG." };
        var x = new Option<string?>("--x") { Description = "Metric on the plot's x axis (default: the second objective)." };
        var y = new Option<string?>("--y") { Description = "Metric on the plot's y axis (default: the primary objective)." };
        var spec = new Option<int?>("--trial") { Description = "Print the model JSON of this trial." };
        var effects = new Option<bool>("--effects") { Description = "For each choice value: trials, mean primary metric, share of the best fifth." };
        var with = new Option<string[]>("--with") { Description = "Also draw this study's Pareto front on the plot (same storage), e.g. a baseline; repeatable." };
        var cmd = new Command("show", "Show the studies of a study file, or one study: trials, best, Pareto front, plot.") { study, storage, top, plot, x, y, spec, effects, with };
        cmd.SetAction(r =>
        {
            using var s = Open(r.GetValue(storage));
            if (r.GetValue(study) is not { } name) return List(s);
            var info = s.Find(name) ?? throw new SearchException($"there is no study '{name}' in {StudyStorages.Describe(s)}");
            var trials = s.Trials(info.Id);
            if (r.GetValue(spec) is { } number)
            {
                var t = trials.FirstOrDefault(t => t.Number == number) ?? throw new SearchException($"study '{name}' has no trial {number}");
                Console.WriteLine(t.Spec.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
                return 0;
            }
            Show(info, trials, r.GetValue(top));
            if (r.GetValue(effects)) Effects(info, trials);
            if (r.GetValue(plot) is { } png)
            {
                var others = (r.GetValue(with) ?? []).Select(n => (n, s.Trials((s.Find(n) ?? throw new SearchException($"there is no study '{n}' to draw with --with")).Id))).ToList();
                Console.WriteLine(StudyPlot.Write(info.Definition, trials, png, r.GetValue(x), r.GetValue(y), others) is { } p ? $"plot: {p}" : "no complete trial to plot yet");
            }
            return 0;
        });
        return cmd;
    }

    public static Command CreateExport()
    {
        var study = new Option<string>("--study") { Description = "The study to export.", Required = true };
        var storage = SearchCommand.StorageOption();
        var output = new Option<string>("--out") { Description = "Folder for best.json, front/trial-N.json and front.json.", Required = true };
        var cmd = new Command("export", "Write the best model and the Pareto front as model JSON files ready for tforge train --config.") { study, storage, output };
        cmd.SetAction(r =>
        {
            using var s = Open(r.GetValue(storage));
            var name = r.GetValue(study)!;
            var info = s.Find(name) ?? throw new SearchException($"there is no study '{name}' in {StudyStorages.Describe(s)}");
            foreach (var path in StudyExport.Write(info, s.Trials(info.Id), r.GetValue(output)!)) Console.WriteLine(path);
            return 0;
        });
        return cmd;
    }

    static IStudyStorage Open(string? storage) => SearchCommand.OpenStorage(storage, mustExist: true);

    static int List(IStudyStorage storage)
    {
        var studies = storage.List();
        if (studies.Count == 0)
        {
            Console.WriteLine($"{StudyStorages.Describe(storage)} holds no study");
            return 0;
        }
        var table = new Table().AddColumns("study", "algorithm", "space", "objectives", "trials", "best");
        foreach (var st in studies)
        {
            var trials = storage.Trials(st.Id);
            var primary = st.Definition.Objectives[0];
            var best = Pareto.Best(trials, primary);
            table.AddRow(Markup.Escape(st.Name), Markup.Escape(st.Definition.Algorithm["name"]?.ToString() ?? "?"), Markup.Escape(st.Definition.Space["space"]?.ToString() ?? "?"),
                Markup.Escape(string.Join(", ", st.Definition.Objectives)), $"{trials.Count(t => t.IsFinished)}/{st.MaxTrials}",
                best is null ? "-" : Markup.Escape($"#{best.Number} {primary.Metric} {SearchConsole.Number(best.Metric(primary.Metric)!.Value)}"));
        }
        AnsiConsole.Write(table);
        return 0;
    }

    static void Show(StudyInfo study, IReadOnlyList<TrialRecord> trials, int? top)
    {
        var d = study.Definition;
        var objectives = d.Objectives;
        Console.WriteLine($"study '{study.Name}': {d.Algorithm.ToJsonString()} over a {d.Space["space"]} space; objectives {string.Join(", ", objectives)}" +
                          (d.Constraints.Count > 0 ? $"; constraints {string.Join(", ", d.Constraints)}" : "") + (d.Hurdles is { } h ? $"; hurdles at {string.Join(", ", h.At)}" : ""));
        Console.WriteLine($"{trials.Count(t => t.IsFinished)} of {study.MaxTrials} trials finished: {trials.Count(t => t.State == TrialState.Complete)} complete, " +
                          $"{trials.Count(t => t.State == TrialState.Pruned)} pruned, {trials.Count(t => t.State == TrialState.Failed)} failed, {trials.Count(t => !t.IsFinished)} unfinished");

        var front = Pareto.Front(trials, objectives).Select(t => t.Number).ToHashSet();
        IEnumerable<TrialRecord> rows = trials;
        if (top is { } n)
            rows = trials.Where(t => t.State == TrialState.Complete && t.Metric(objectives[0].Metric) is not null)
                .OrderBy(t => objectives[0].Loss(t.Metric(objectives[0].Metric)!.Value)).Take(n);
        var metricNames = objectives.Select(o => o.Metric).Concat([Metrics.Params, Metrics.FlopsPerToken]).Distinct().ToList();
        IReadOnlyList<SpaceParameter>? parameters = null;
        try { parameters = SearchSpaces.FromJson(d.Space).Parameters; }
        catch (SearchException) { }   // a space this build cannot read: show every value
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = Math.Max(AnsiConsole.Profile.Width, 200);
        var table = new Table().AddColumn("#").AddColumn("state");
        foreach (var m in metricNames) table.AddColumn(m);
        table.AddColumns("seconds", "origin", "choices");
        foreach (var t in rows)
        {
            var cells = new List<string> { $"{t.Number}{(front.Contains(t.Number) ? " *" : "")}", t.State == TrialState.Failed ? $"failed: {Markup.Escape(Short(t.Error))}" : t.State.Name() };
            cells.AddRange(metricNames.Select(m => t.Metric(m) is { } v ? SearchConsole.Number(v) : "-"));
            cells.Add(t.Seconds is { } s ? s.ToString("0.0", CultureInfo.InvariantCulture) : "-");
            cells.Add(Markup.Escape(t.Plan.Describe()));
            cells.Add(Markup.Escape(Choices(t, parameters)));
            table.AddRow(cells.ToArray());
        }
        AnsiConsole.Write(table);
        if (Pareto.Best(trials, objectives[0]) is { } best)
            Console.WriteLine($"best: trial {best.Number}: {SearchConsole.Describe(best.Metrics, objectives)}");
        if (objectives.Count > 1) Console.WriteLine($"Pareto front (*): trials {string.Join(", ", front.Order())}");
    }

    static void Effects(StudyInfo study, IReadOnlyList<TrialRecord> trials)
    {
        var primary = study.Definition.Objectives[0];
        var rows = ChoiceEffects.Of(trials, SearchSpaces.FromJson(study.Definition.Space).Parameters, primary);
        if (rows.Count == 0) return;
        var table = new Table().AddColumns("choice", "value", "trials", $"mean {primary.Metric}", $"in best {rows[0].TopCount}");
        foreach (var r in rows)
            table.AddRow(Markup.Escape(r.Parameter), Markup.Escape(r.Value), r.Trials.ToString(CultureInfo.InvariantCulture),
                SearchConsole.Number(r.Mean), r.InTop.ToString(CultureInfo.InvariantCulture));
        AnsiConsole.Write(table);
    }

    /// <summary>The genome's values that matter (its active choices), compactly.</summary>
    static string Choices(TrialRecord t, IReadOnlyList<SpaceParameter>? parameters)
    {
        IEnumerable<KeyValuePair<string, System.Text.Json.Nodes.JsonNode?>> values = t.Genome;
        if (parameters is not null)
        {
            var genome = Genome.FromJson(t.Genome, parameters);
            var active = Enumerable.Range(0, parameters.Count).Where(i => genome.IsActive(parameters, i)).Select(i => parameters[i].Name).ToHashSet();
            values = values.Where(p => active.Contains(p.Key));
        }
        var text = string.Join(" ", values.Select(p => $"{Last(p.Key)}={p.Value?.ToJsonString() ?? "null"}"));
        return text.Length > 160 ? text[..157] + "..." : text;
    }

    static string Last(string path) => path.Contains('.') && !path.StartsWith("hidden_layers") ? path[(path.LastIndexOf('.') + 1)..] : path;

    static string Short(string? s) => s is null ? "" : s.Length > 60 ? s[..57] + "..." : s;
}
