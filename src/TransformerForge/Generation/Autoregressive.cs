using TorchSharp;
using static TorchSharp.torch;

namespace TransformerForge.Generation;

/// <summary>
/// Autoregressive generation, as x-transformers' <c>AutoregressiveWrapper.generate</c> does it and with a KV cache:
/// the prompt is fed once, then one token per step. Prompts of different lengths go in one batch left-padded, with a
/// mask marking the real tokens. Past the model's <c>MaxSeqLen</c> the cache gives way to recomputing the last
/// <c>MaxSeqLen</c> tokens each step (what x-transformers does throughout).
/// </summary>
public static class Autoregressive
{
    /// <summary>Generates <paramref name="maxNewTokens"/> tokens after <paramref name="prompt"/> [b, t]; returns them as [b, n].</summary>
    public static Tensor Generate(ILanguageModel model, Tensor prompt, int maxNewTokens, SamplingOptions? options = null,
        Tensor? promptMask = null, Action<Tensor>? onToken = null)
    {
        var o = options ?? new SamplingOptions();
        o.Validate();
        if (prompt.dim() != 2) throw new ArgumentException($"prompt must be [batch, length], got [{string.Join(", ", prompt.shape)}]");
        if (prompt.shape[1] == 0) throw new ArgumentException("prompt must hold at least one token");
        if (promptMask is not null && !promptMask.shape.SequenceEqual(prompt.shape)) throw new ArgumentException("prompt mask must have the prompt's shape");

        var module = model as nn.Module;
        bool wasTraining = module?.training ?? false;
        module?.eval();
        using var noGrad = no_grad();
        // Seeded sampling draws on the CPU (see Sampler), so the same seed gives the same text on every device.
        using var rng = o.Seed is { } seed ? new torch.Generator((ulong)seed) : null;
        // Owns every tensor of the loop (each step's growing sequence, mask and tokens), so a call frees all it made
        // but its result; without it the replaced tensors of each step would wait for the finalizer.
        using var callScope = NewDisposeScope();

        long b = prompt.shape[0];
        var tokens = prompt.clone();
        var mask = promptMask?.to_type(ScalarType.Bool).clone();
        var finished = zeros(b, dtype: ScalarType.Bool, device: prompt.device);
        IDecodingState? state = o.UseCache ? model.CreateDecodingState() : null;
        var generated = new List<Tensor>();
        try
        {
            for (int step = 0; step < maxNewTokens; step++)
            {
                Runtime.ThreadPolicy.Adjust();
                using var scope = NewDisposeScope();
                bool cached = state is not null && tokens.shape[1] <= model.MaxSeqLen;
                // Cached: feed what the state has not seen (the prompt first, then one token); else the last window.
                long seen = cached ? (step == 0 ? 0 : tokens.shape[1] - 1) : tokens.shape[1] - Math.Min(tokens.shape[1], model.MaxSeqLen);
                long fresh = tokens.shape[1] - seen;
                // A one-token step's matrix products are too small to split over threads (see MklThreads).
                using var products = Runtime.MklThreads.ForStep(b * fresh);
                if (!cached)
                {
                    state?.Dispose();
                    state = null;
                }
                var logits = model.Logits(tokens.narrow(1, seen, fresh), mask?.narrow(1, seen, fresh), state).select(1, -1);
                var next = Sampler.Sample(logits, o, rng);
                if (o.EosToken is { } eos)
                {
                    next = next.masked_fill(finished.unsqueeze(1), o.PadValue);
                    finished = finished.logical_or(next.squeeze(1).eq(eos)).MoveToOuterDisposeScope();
                }
                tokens = cat(new[] { tokens, next }, 1).MoveToOuterDisposeScope();
                if (mask is not null) mask = cat(new[] { mask, ones(b, 1, dtype: ScalarType.Bool, device: mask.device) }, 1).MoveToOuterDisposeScope();
                generated.Add(next.MoveToOuterDisposeScope());
                onToken?.Invoke(next);
                if (o.EosToken is not null && finished.all().item<bool>()) break;
            }
            var result = generated.Count == 0 ? zeros(b, 0, dtype: prompt.dtype, device: prompt.device) : cat(generated, 1);
            return result.MoveToOuterDisposeScope();
        }
        finally
        {
            state?.Dispose();
            module?.train(wasTraining);
        }
    }

    /// <summary>Next-token cross-entropy (x-transformers' AutoregressiveWrapper forward): predict tokens[:, 1:] from tokens[:, :-1].</summary>
    public static Tensor NextTokenLoss(ILanguageModel model, Tensor tokens, Tensor? mask = null, long ignoreIndex = -100)
    {
        long n = tokens.shape[1] - 1;
        var input = tokens.narrow(1, 0, n);
        var target = tokens.narrow(1, 1, n);
        if (mask is not null && mask.shape[1] == tokens.shape[1]) mask = mask.narrow(1, 0, n);
        var logits = model.Logits(input, mask);
        return nn.functional.cross_entropy(logits.transpose(1, 2), target, ignore_index: ignoreIndex);
    }
}
