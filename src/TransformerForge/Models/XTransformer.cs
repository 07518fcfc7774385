using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Models;

/// <summary>Holds a decoder under the name <c>net</c>, as x-transformers' <c>AutoregressiveWrapper</c> does (for weight names).</summary>
public sealed class AutoregressiveWrapper : ForgeModule
{
    public TransformerWrapper Net { get; }

    public AutoregressiveWrapper(TransformerWrapper net) : base(nameof(AutoregressiveWrapper))
    {
        Net = net;
        register_module("net", net);
    }
}

/// <summary>
/// Encoder-decoder (x-transformers' <c>XTransformer</c>): the decoder cross-attends to the encoder's embeddings and is
/// trained with next-token cross-entropy.
/// </summary>
public sealed class XTransformer : ForgeModule
{
    public XTransformerConfig Config { get; }
    public TransformerWrapper Encoder { get; }
    public TransformerWrapper Decoder { get; }
    public int IgnoreIndex { get; init; } = -100;

    public XTransformer(XTransformerConfig c) : base(nameof(XTransformer))
    {
        Config = c;
        Encoder = new TransformerWrapper(c.Encoder);
        Decoder = new TransformerWrapper(c.Decoder, c.TieTokenEmb ? Encoder.TokenEmbedding : null);
        register_module("encoder", Encoder);
        register_module("decoder", new AutoregressiveWrapper(Decoder));
    }

    public Tensor Encode(Tensor src, Tensor? srcMask = null, Tensor? srcAttnMask = null) =>
        Encoder.Forward(src, mask: srcMask, attnMask: srcAttnMask, returnEmbeddings: true).Output;

    /// <summary>Decoder logits for <paramref name="tgt"/> given the encoder's output.</summary>
    public Tensor Decode(Tensor tgt, Tensor encoded, Tensor? tgtMask = null, Tensor? srcMask = null) =>
        Decoder.Forward(tgt, mask: tgtMask, context: encoded, contextMask: srcMask).Output;

    /// <summary>Teacher-forced loss: predict tgt[:, 1:] from tgt[:, :-1] (x-transformers' AutoregressiveWrapper).</summary>
    public Tensor Loss(Tensor src, Tensor tgt, Tensor? srcMask = null, Tensor? tgtMask = null)
    {
        var enc = Encode(src, srcMask);
        long n = tgt.shape[1] - 1;
        var input = tgt.narrow(1, 0, n);
        var target = tgt.narrow(1, 1, n);
        var mask = tgtMask is not null && tgtMask.shape[1] == tgt.shape[1] ? tgtMask.narrow(1, 0, n) : tgtMask;
        var logits = Decode(input, enc, mask, srcMask);
        return nn.functional.cross_entropy(logits.transpose(1, 2), target, ignore_index: IgnoreIndex);
    }
}
