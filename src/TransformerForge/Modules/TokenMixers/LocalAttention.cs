using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// Archai's <c>local_attn</c> token mixer (LocalMHA): a bias-free QKV projection, then causal sliding-window
/// attention (<see cref="LocalWindowAttention"/>) per head, with rotary embeddings over the head size.
/// Names: <c>to_qkv</c> (Linear hidden → 3·OpSize, chunked q | k | v, each (head, dim)), <c>attn_fn.rel_pos.inv_freq</c>.
/// </summary>
public sealed class LocalAttention : TokenMixer
{
    readonly Linear _toQkv;
    readonly LocalWindowAttention _attnFn;

    public LocalAttention(int hiddenSize, int totalHeads, int opHeads, int windowSize)
        : base(nameof(LocalAttention), hiddenSize, totalHeads, opHeads)
    {
        register_module("to_qkv", _toQkv = nn.Linear(hiddenSize, 3 * OpSize, hasBias: false));
        register_module("attn_fn", _attnFn = new LocalWindowAttention(windowSize, HeadSize));
    }

    public int WindowSize => _attnFn.WindowSize;

    public override Tensor forward(Tensor x)
    {
        var (batch, length) = (x.shape[0], x.shape[1]);
        var qkv = _toQkv.forward(x).chunk(3, -1);
        // [B, L, H·D] -> [B·H, L, D]: heads are independent sequences for the window attention.
        Tensor Heads(Tensor t) => t.view(batch, length, OpHeads, HeadSize).transpose(1, 2).reshape(batch * OpHeads, length, HeadSize);
        var output = _attnFn.Forward(Heads(qkv[0]), Heads(qkv[1]), Heads(qkv[2]));
        return output.view(batch, OpHeads, length, HeadSize).transpose(1, 2).reshape(batch, length, OpSize);
    }
}
