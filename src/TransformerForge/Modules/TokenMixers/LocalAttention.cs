using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TransformerForge.Modules.TokenMixers;

/// <summary>
/// Archai's <c>local_attn</c> token mixer (LocalMHA): a bias-free QKV projection, then causal sliding-window
/// attention (<see cref="LocalWindowAttention"/>) per head, with rotary embeddings over the head size. Its decoding
/// state keeps the rotated keys and values of the last window.
/// Names: <c>to_qkv</c> (Linear dim → 3·DimOut, chunked q | k | v, each (head, dim_head)), <c>attn_fn.rel_pos.inv_freq</c>.
/// </summary>
public sealed class LocalAttention : TokenMixer
{
    readonly Linear _toQkv;
    readonly LocalWindowAttention _attnFn;

    public LocalAttention(int dim, int dimHead, int heads, int windowSize)
        : base(nameof(LocalAttention), dim, dimHead, heads)
    {
        register_module("to_qkv", _toQkv = nn.Linear(dim, 3 * DimOut, hasBias: false));
        register_module("attn_fn", _attnFn = new LocalWindowAttention(windowSize, DimHead));
    }

    public int WindowSize => _attnFn.WindowSize;

    public override TokenMixerState NewState() => new WindowState();

    public override Tensor Forward(Tensor x, TokenMixerState? state)
    {
        var window = StateAs<WindowState>(state);
        var (batch, length) = (x.shape[0], x.shape[1]);
        var qkv = _toQkv.forward(x).chunk(3, -1);
        // [B, n, H·D] -> [B·H, n, D]: heads are independent sequences for the window attention.
        Tensor Split(Tensor t) => t.view(batch, length, Heads, DimHead).transpose(1, 2).reshape(batch * Heads, length, DimHead);
        var (q, k, v) = (Split(qkv[0]), Split(qkv[1]), Split(qkv[2]));

        Tensor output;
        if (window is null) output = _attnFn.Forward(q, k, v);
        else
        {
            (output, var rotated) = _attnFn.Forward(q, k, v, window.Length, window.Keys, window.Values);
            window.Keep(rotated, v, WindowSize);
        }
        return output.view(batch, Heads, length, DimHead).transpose(1, 2).reshape(batch, length, DimOut);
    }

    /// <summary>Rotated keys and values of the last window of positions, [batch·heads, ≤ window, dim_head].</summary>
    sealed class WindowState : TokenMixerState
    {
        public Tensor? Keys => Get("k");
        public Tensor? Values => Get("v");

        public void Keep(Tensor keys, Tensor values, int window)
        {
            long n = keys.shape[1];
            if (Keys is { } k) (keys, values) = (cat([k, keys], 1), cat([Values!, values], 1));
            long keep = Math.Min(window, keys.shape[1]);
            Set("k", keys.narrow(1, keys.shape[1] - keep, keep));
            Set("v", values.narrow(1, values.shape[1] - keep, keep));
            Advance(n);
        }
    }
}
