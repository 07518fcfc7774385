using System.Text.Json;
using TorchSharp;
using TransformerForge.Config;
using TransformerForge.IO;
using TransformerForge.Models;
using TransformerForge.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Parity;

/// <summary>
/// How each fixture family is built and called. x-transformers cases carry a <c>model</c> (the constructor as JSON)
/// and a <c>call</c> kind; the table below maps each call kind to what the Python side computed.
/// </summary>
public static class CaseKinds
{
    public static ParityCall Prepare(string dir, JsonElement c)
    {
        if (c.TryGetProperty("model", out var model)) return XTransformers(dir, model, c);
        if (c.TryGetProperty("module", out var module)) return LabmlCases.Prepare(dir, module.GetString() ?? "", c);
        if (c.TryGetProperty("op", out var op)) return ArchaiCases.PrepareOp(dir, op.GetString() ?? "", c);
        if (c.TryGetProperty("block", out var block)) return ArchaiCases.PrepareBlock(dir, block.GetString() ?? "", c);
        throw new InvalidDataException("case.json has neither 'model', 'module', 'op' nor 'block'");
    }

    static ParityCall XTransformers(string dir, JsonElement modelJson, JsonElement c)
    {
        // The fixture's source names the x-transformers release (its case.json model has no version key).
        var version = XTransformersVersions.FromSource(c.TryGetProperty("source", out var s) ? s.GetString() : null);
        var config = ModelConfig.FromJson(modelJson, version);
        var call = c.GetProperty("call").GetString() ?? "";
        var weightsPath = Path.Combine(dir, "weights.safetensors");
        var inputs = Inputs(dir);

        return call switch
        {
            "tokens" => (dt, dev) => Run(Wrapper(config, weightsPath, dt, dev), m => Out(m.Forward(inputs(dev, "x", dt)).Output)),
            "tokens_mask" => (dt, dev) => Run(Wrapper(config, weightsPath, dt, dev), m => Out(m.Forward(inputs(dev, "x", dt), mask: inputs(dev, "mask", dt)).Output)),
            "tokens_context" => (dt, dev) => Run(Wrapper(config, weightsPath, dt, dev), m => Out(m
                .Forward(inputs(dev, "x", dt), context: inputs(dev, "context", dt), contextMask: inputs(dev, "context_mask", dt)).Output)),
            "continuous" => (dt, dev) => Run(Build<ContinuousTransformerWrapper>(config, weightsPath, dt, dev),
                m => Out(m.Forward(inputs(dev, "x", dt), mask: inputs(dev, "mask", dt)))),
            "vit" => (dt, dev) => Run(Build<ViTransformerWrapper>(config, weightsPath, dt, dev), m => Out(m.Forward(inputs(dev, "img", dt)))),
            "cross" => (dt, dev) => Run(Build<AttentionLayers>(config, weightsPath, dt, dev), m => Out(m.Forward(inputs(dev, "x", dt),
                context: inputs(dev, "context", dt), mask: inputs(dev, "mask", dt), contextMask: inputs(dev, "context_mask", dt)).Output)),
            "xl" => (dt, dev) => Run(Wrapper(config, weightsPath, dt, dev), m => TransformerXl(m, inputs, dt, dev)),
            "caption" => (dt, dev) =>
            {
                // Two models: a ViT encoder and a captioning decoder; returned as one module so both are inspectable.
                var decoderConfig = ModelConfig.FromJson(c.GetProperty("decoder"), version);
                var encoder = Build<ViTransformerWrapper>(config, weightsPath, dt, dev);
                var decoder = Build<TransformerWrapper>(decoderConfig, Path.Combine(dir, "decoder_weights.safetensors"), dt, dev);
                var encoded = encoder.Forward(inputs(dev, "img", dt), returnEmbeddings: true);
                var pair = new CaptionModel(encoder, decoder);
                return (pair, new() { ["encoded"] = encoded, ["out"] = decoder.Forward(inputs(dev, "caption", dt), context: encoded).Output });
            },
            "xtransformer" => (dt, dev) => Run(Build<XTransformer>(config, weightsPath, dt, dev), m =>
            {
                var (src, srcMask, tgt, tgtMask) = (inputs(dev, "src", dt), inputs(dev, "src_mask", dt), inputs(dev, "tgt", dt), inputs(dev, "tgt_mask", dt));
                var encoded = m.Encode(src, srcMask);
                long n = tgt.shape[1] - 1;
                var logits = m.Decode(tgt.narrow(1, 0, n), encoded, tgtMask.narrow(1, 0, n), srcMask);
                return new() { ["encoded"] = encoded, ["out"] = logits, ["loss"] = m.Loss(src, tgt, srcMask, tgtMask).reshape(1) };
            }),
            _ => throw new NotSupportedException($"call kind '{call}'"),
        };
    }

    static (nn.Module, Dictionary<string, Tensor>) Run<T>(T model, Func<T, Dictionary<string, Tensor>> call) where T : nn.Module =>
        (model, call(model));

    /// <summary>Three segments in turn, memories carried over (x-transformers' return_mems / mems).</summary>
    static Dictionary<string, Tensor> TransformerXl(TransformerWrapper m, Func<Device, string, ScalarType, Tensor> inputs, ScalarType dt, Device dev)
    {
        var result = new Dictionary<string, Tensor>();
        IReadOnlyList<Tensor>? mems = null;
        for (int i = 0; i < 3; i++)
        {
            var o = m.Forward(inputs(dev, $"seg{i}", dt), mems: mems, returnMems: true);
            result[$"out{i}"] = o.Output;
            mems = o.Mems!;
            for (int l = 0; l < mems.Count; l++) result[$"mems{i}_{l}"] = mems[l];
        }
        return result;
    }

    static Dictionary<string, Tensor> Out(Tensor t) => new() { ["out"] = t };

    static TransformerWrapper Wrapper(ModelConfig config, string weights, ScalarType dt, Device dev) => Build<TransformerWrapper>(config, weights, dt, dev);

    static T Build<T>(ModelConfig config, string weights, ScalarType dt, Device dev) where T : nn.Module
    {
        var model = ModelFactory.Create(config) as T
            ?? throw new InvalidDataException($"configuration type {config.Type} does not build a {typeof(T).Name}");
        StateDict.Load(model, weights);
        model.to(dt).to(dev);
        model.eval();
        return model;
    }

    /// <summary>Reads <c>in.*</c> tensors: floats cast to the run's precision, uint8 masks to booleans.</summary>
    internal static Func<Device, string, ScalarType, Tensor> Inputs(string dir)
    {
        var path = Path.Combine(dir, "io.safetensors");
        return (dev, name, dt) =>
        {
            var file = SafeTensorsFile.Read(path);
            if (!file.TryGet("in." + name, out var entry)) throw new InvalidDataException($"{path} has no input 'in.{name}'");
            var t = SafeTensorsTorch.ToTensor(entry);
            return (t.dtype switch
            {
                ScalarType.Float32 or ScalarType.Float64 => t.to_type(dt),
                ScalarType.Byte or ScalarType.Bool => t.to_type(ScalarType.Bool),
                _ => t,
            }).to(dev);
        };
    }

    /// <summary>The captioning case's two models under one module, so both can be inspected (e.g. for gradients).</summary>
    sealed class CaptionModel : ForgeModule
    {
        public CaptionModel(ViTransformerWrapper encoder, TransformerWrapper decoder) : base(nameof(CaptionModel))
        {
            register_module("encoder", encoder);
            register_module("decoder", decoder);
        }
    }
}
