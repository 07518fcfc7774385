using TorchSharp;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Labml;

/// <summary>One case directory of /work/shared/fixtures/labml (override the root with TFORGE_FIXTURES).</summary>
internal sealed class LabmlFixture
{
    private LabmlFixture(string directory)
    {
        Directory = directory;
        Weights = TestSafetensors.Load(Path.Combine(directory, "weights.safetensors"));
        Io = TestSafetensors.Load(Path.Combine(directory, "io.safetensors"));
    }

    public string Directory { get; }

    /// <summary>labml's state_dict, float32, under labml's names.</summary>
    public Dictionary<string, Tensor> Weights { get; }

    /// <summary><c>in.x</c>, <c>f64.out</c>, <c>f32.out</c>, all in labml's [seq, batch, d_model] layout.</summary>
    public Dictionary<string, Tensor> Io { get; }

    public static LabmlFixture Load(string caseName)
    {
        var root = Environment.GetEnvironmentVariable("TFORGE_FIXTURES") ?? "/work/shared/fixtures";
        var directory = Path.Combine(root, "labml", caseName);
        if (!System.IO.Directory.Exists(directory))
            throw new DirectoryNotFoundException($"parity fixture {directory} is missing (set TFORGE_FIXTURES to the fixtures root)");
        return new LabmlFixture(directory);
    }

    /// <summary>Weights renamed to the port's parameter names and cast to <paramref name="dtype"/>.</summary>
    public Dictionary<string, Tensor> MappedWeights(Func<string, string> fromLabmlName, ScalarType dtype) =>
        Weights.ToDictionary(w => fromLabmlName(w.Key), w => w.Value.to_type(dtype));

    /// <summary>The input in the port's [batch, seq, d_model] layout.</summary>
    public Tensor Input(ScalarType dtype) => Io["in.x"].transpose(0, 1).to_type(dtype);

    /// <summary>The reference output for <paramref name="dtype"/>, in the port's [batch, seq, d_model] layout.</summary>
    public Tensor Expected(ScalarType dtype) =>
        Io[dtype == ScalarType.Float64 ? "f64.out" : "f32.out"].transpose(0, 1);

    /// <summary>max |actual - expected| / max |expected|, computed in float64.</summary>
    public static double MaxRelativeError(Tensor actual, Tensor expected)
    {
        Assert.Equal(expected.shape, actual.shape);
        using var a = actual.detach().to_type(ScalarType.Float64);
        using var e = expected.detach().to_type(ScalarType.Float64);
        return (a - e).abs().max().item<double>() / e.abs().max().item<double>();
    }

    /// <summary>max over elements of |actual - expected| / |expected| (reported, not asserted: tiny references inflate it).</summary>
    public static double MaxElementwiseRelativeError(Tensor actual, Tensor expected)
    {
        using var a = actual.detach().to_type(ScalarType.Float64);
        using var e = expected.detach().to_type(ScalarType.Float64);
        return ((a - e).abs() / e.abs()).max().item<double>();
    }
}
