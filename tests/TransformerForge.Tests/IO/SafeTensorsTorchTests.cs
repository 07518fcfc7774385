using TorchSharp;
using TransformerForge.IO;
using TransformerForge.Runtime;
using static TorchSharp.torch;

namespace TransformerForge.Tests.IO;

/// <summary>The TorchSharp bridge: files to tensors and back, bit for bit.</summary>
public sealed class SafeTensorsTorchTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("tforge-safetensors-torch-").FullName;

    public SafeTensorsTorchTests() => TorchRuntime.EnsureLoaded();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<ScalarType, SafeTensorDType> DTypes => new()
    {
        { ScalarType.Float32, SafeTensorDType.F32 },
        { ScalarType.Float64, SafeTensorDType.F64 },
        { ScalarType.Int64, SafeTensorDType.I64 },
        { ScalarType.Int32, SafeTensorDType.I32 },
        { ScalarType.Bool, SafeTensorDType.Bool },
        { ScalarType.Byte, SafeTensorDType.U8 },
        { ScalarType.BFloat16, SafeTensorDType.BF16 },
        { ScalarType.Float16, SafeTensorDType.F16 },
    };

    static Tensor Sample(ScalarType dtype, params long[] shape) => dtype switch
    {
        ScalarType.Bool => rand(shape) > 0.5,
        ScalarType.Byte => randint(0, 256, shape, dtype: ScalarType.Byte),
        ScalarType.Int32 or ScalarType.Int64 => randint(-1_000_000, 1_000_000, shape, dtype: dtype),
        _ => (randn(shape, dtype: ScalarType.Float64) * 1e3).to_type(dtype),
    };

    [Theory]
    [MemberData(nameof(DTypes))]
    public void RoundTripsThroughAFile(ScalarType torchType, SafeTensorDType fileType)
    {
        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>
        {
            ["w"] = Sample(torchType, 3, 5),
            ["scalar"] = Sample(torchType),
            ["empty"] = Sample(torchType, 0, 2),
            // Non-contiguous view: Save must write it in logical (row-major) order.
            ["transposed"] = Sample(torchType, 4, 6).t(),
        };
        var path = Path.Combine(_dir, "t.safetensors");

        SafeTensorsTorch.Save(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });

        var raw = SafeTensorsFile.Read(path);
        Assert.All(raw.Tensors, t => Assert.Equal(fileType, t.DType));
        Assert.Equal("pt", raw.Metadata["format"]);

        var loaded = SafeTensorsTorch.Load(path);
        Assert.Equal(tensors.Keys.Order(), loaded.Keys.Order());
        foreach (var (name, expected) in tensors)
        {
            var actual = loaded[name];
            Assert.Equal(torchType, actual.dtype);
            Assert.Equal(DeviceType.CPU, actual.device_type);
            Assert.Equal(expected.shape, actual.shape);
            // Raw bytes, so F16/BF16 are compared bit for bit and NaN-free equality is not needed.
            Assert.Equal(expected.contiguous().bytes.ToArray(), actual.bytes.ToArray());
            Assert.True(expected.eq(actual).all().item<bool>(), $"{name} differs");
        }
    }

    [Fact]
    public void HalfPrecisionBitsSurviveWithoutConversion()
    {
        // Bit patterns that a trip through float would change: NaN payloads, signed zero, subnormals.
        ushort[] bits = [0x7E01, 0x8000, 0x0001, 0x7BFF, 0xFC00, 0x3C00];
        var bytes = bits.SelectMany(BitConverter.GetBytes).ToArray();
        foreach (var dtype in new[] { SafeTensorDType.F16, SafeTensorDType.BF16 })
        {
            using var t = SafeTensorsTorch.ToTensor(new SafeTensor("h", dtype, [2, 3], bytes));
            Assert.Equal(SafeTensorsTorch.ToScalarType(dtype), t.dtype);
            Assert.Equal(bytes, t.bytes.ToArray());
            Assert.Equal(bytes, SafeTensorsTorch.FromTensor("h", t).Data.ToArray());
        }
    }

    [Fact]
    public void LoadsDecoderFixture()
    {
        var tensors = SafeTensorsTorch.Load(TestPaths.Fixture("xtransformers", "decoder_base", "weights.safetensors"));
        try
        {
            var toQ = tensors["attn_layers.layers.0.1.to_q.weight"];
            Assert.Equal(new long[] { 256, 32 }, toQ.shape);
            Assert.Equal(ScalarType.Float32, toQ.dtype);
            Assert.Equal(0.13065259158611298f, toQ[0, 0].item<float>());
            Assert.Equal(-0.22868676483631134f, toQ[0, 1].item<float>());
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    [Fact]
    public void UnsupportedDTypeIsNamed()
    {
        using var t = zeros(2, dtype: ScalarType.Int8);
        var e = Assert.Throws<NotSupportedException>(() => SafeTensorsTorch.FromTensor("q", t));
        Assert.Contains("'q'", e.Message);
        Assert.Contains("Int8", e.Message);
    }

    [Fact]
    public void SaveLeavesCallerTensorsAlive()
    {
        using var t = ones(2, 2);
        SafeTensorsTorch.Save(Path.Combine(_dir, "a.safetensors"), new Dictionary<string, Tensor> { ["t"] = t });
        Assert.Equal(4f, t.sum().item<float>());
    }
}
