using TransformerForge.Generation;
using static TorchSharp.torch;

namespace TransformerForge.Training;

/// <summary>Continues prompts for the samples a run prints. TODO: use TransformerForge.Generation once it lands on main.</summary>
public interface ITokenGenerator
{
    /// <summary>The <paramref name="count"/> tokens [b, count] that follow <paramref name="prompt"/> [b, t].</summary>
    Tensor Generate(ILanguageModel model, Tensor prompt, int count);
}
