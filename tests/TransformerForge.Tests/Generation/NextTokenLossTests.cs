using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Generation;
using TransformerForge.Models;
using TransformerForge.Tests.Support;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Generation;

/// <summary>Next-token loss leaves out the targets equal to <c>ignore_index</c> (padding), as x-transformers' AutoregressiveWrapper does.</summary>
public class NextTokenLossTests
{
    [Fact]
    public void IgnoredTargetsDoNotCount()
    {
        var m = Build.Model<TransformerWrapper>("""
            { "type": "TransformerWrapper", "num_tokens": 16, "max_seq_len": 16, "attn_layers": { "type": "Decoder", "dim": 16, "depth": 1, "heads": 2, "attn_dim_head": 8 } }
            """);
        // Two sequences; the second ends in padding (token 0), which is the ignore index here.
        var tokens = tensor(new long[,] { { 3, 5, 7, 9, 11, 13 }, { 4, 6, 8, 0, 0, 0 } });
        using var _ = no_grad();
        var logits = m.forward(tokens.narrow(1, 0, 5));
        var targets = tokens.narrow(1, 1, 5);
        var losses = nn.functional.cross_entropy(logits.reshape(10, 16), targets.reshape(10), reduction: nn.Reduction.None);
        var keep = targets.reshape(10).ne(0);
        double expected = losses.masked_select(keep).mean().item<double>();
        Assert.Equal(expected, Autoregressive.NextTokenLoss(m, tokens, ignoreIndex: 0).item<double>(), 12);
        Assert.NotEqual(expected, losses.mean().item<double>(), 6);
    }
}
