using System.Text.Json;
using TorchSharp;
using TransformerForge.IO;
using static TorchSharp.torch;

namespace TransformerForge.Parity;

/// <summary>One case's verdict: PASS/FAIL, the worst float64 relative error over its outputs (float32's in the note), and a note.</summary>
public sealed record ParityResult(string Case, bool Pass, double MaxRelativeError, string Note, double F32RelativeError = double.NaN)
{
    public override string ToString() =>
        $"{Case} {(Pass ? "PASS" : "FAIL")} {Format(MaxRelativeError)} {(double.IsNaN(F32RelativeError) ? "" : $"(f32 {Format(F32RelativeError)}) ")}{Note}".TrimEnd();

    static string Format(double e) => double.IsNaN(e) ? "-" : e.ToString("0.00e+00");
}

/// <summary>Builds a case's model at one precision and device, loads the reference weights and runs the reference call.</summary>
/// <returns>The model and its outputs by name (without the f64./f32. prefix).</returns>
public delegate (nn.Module Model, Dictionary<string, Tensor> Outputs) ParityCall(ScalarType dtype, Device device);

/// <summary>
/// Runs the parity fixtures: every case directory (one holding <c>case.json</c>) under a root is built from its
/// configuration, given the reference weights, called as the reference was, and compared with the reference outputs
/// in float64 (relative error ≤ 1e-9) and float32 (≤ 1e-4). Relative error is max|ours − reference| / max|reference|
/// per output tensor.
/// </summary>
public static class ParityRunner
{
    public const double F64Tolerance = 1e-9;
    public const double F32Tolerance = 1e-4;

    /// <summary>Case directories under <paramref name="root"/> (or root itself), sorted by path.</summary>
    public static IReadOnlyList<string> FindCases(string root)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"fixtures directory '{root}' does not exist");
        return Directory.EnumerateFiles(root, "case.json", SearchOption.AllDirectories)
            .Select(f => Path.GetDirectoryName(f)!).OrderBy(d => d, StringComparer.Ordinal).ToList();
    }

    public static IEnumerable<ParityResult> RunAll(string root, Device? device = null)
    {
        foreach (var dir in FindCases(root)) yield return Run(dir, Path.GetRelativePath(root, dir), device);
    }

    public static ParityResult Run(string caseDir, string? name = null, Device? device = null)
    {
        name ??= Path.GetFileName(caseDir);
        Runtime.TorchRuntime.EnsureLoaded();
        device ??= CPU;
        try
        {
            using var doc = StrictJson.ParseFile(Path.Combine(caseDir, "case.json"));
            var call = CaseKinds.Prepare(caseDir, doc.RootElement);
            var io = SafeTensorsTorch.Load(Path.Combine(caseDir, "io.safetensors"));
            try { return Compare(name, call, io, device); }
            finally { foreach (var t in io.Values) t.Dispose(); }
        }
        catch (NotSupportedException e)
        {
            return new ParityResult(name, false, double.NaN, $"not supported: {e.Message}");
        }
        catch (Exception e)
        {
            return new ParityResult(name, false, double.NaN, $"error: {e.GetType().Name}: {e.Message}");
        }
    }

    static ParityResult Compare(string name, ParityCall call, Dictionary<string, Tensor> io, Device device)
    {
        var worst = new Dictionary<ScalarType, double> { [ScalarType.Float64] = 0, [ScalarType.Float32] = 0 };
        var failures = new List<string>();
        var notes = new List<string>();
        foreach (var (prefix, dtype, tol) in new[] { ("f64.", ScalarType.Float64, F64Tolerance), ("f32.", ScalarType.Float32, F32Tolerance) })
        {
            using var scope = NewDisposeScope();
            Dictionary<string, Tensor> outputs;
            using (no_grad()) outputs = call(dtype, device).Outputs;
            var expectedNames = io.Keys.Where(k => k.StartsWith(prefix)).Select(k => k[prefix.Length..]).ToList();
            // A reference may exist in one precision only (x-transformers 1.40's dynamic position bias cannot run in
            // float64): that precision is compared, the other is not; a case with neither is broken.
            if (expectedNames.Count == 0)
            {
                if (!io.Keys.Any(k => k.StartsWith("f64.") || k.StartsWith("f32."))) throw new InvalidDataException("io.safetensors has no f64.* or f32.* outputs");
                worst[dtype] = double.NaN;
                notes.Add($"no {prefix[..3]} reference");
                continue;
            }
            foreach (var output in expectedNames)
            {
                if (!outputs.TryGetValue(output, out var ours))
                {
                    failures.Add($"{prefix}{output} not computed");
                    continue;
                }
                var reference = io[prefix + output];
                if (!ours.shape.SequenceEqual(reference.shape))
                {
                    failures.Add($"{prefix}{output} shape [{string.Join(",", ours.shape)}] vs [{string.Join(",", reference.shape)}]");
                    continue;
                }
                double err = RelativeError(ours, reference);
                worst[dtype] = Math.Max(worst[dtype], double.IsNaN(err) ? double.PositiveInfinity : err);
                if (!(err <= tol)) failures.Add($"{prefix}{output} {err:0.0e+00} > {tol:0e+00}");
            }
        }
        return new ParityResult(name, failures.Count == 0, worst[ScalarType.Float64], string.Join("; ", failures.Concat(notes)), worst[ScalarType.Float32]);
    }

    public static double RelativeError(Tensor ours, Tensor reference)
    {
        using var a = ours.detach().cpu().to_type(ScalarType.Float64);
        using var b = reference.detach().cpu().to_type(ScalarType.Float64);
        if (a.numel() == 0) return 0;
        double scale = b.abs().max().item<double>();
        double diff = (a - b).abs().max().item<double>();
        return diff / Math.Max(scale, 1e-30);
    }
}
