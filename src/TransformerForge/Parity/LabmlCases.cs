using System.Text.Json;

namespace TransformerForge.Parity;

/// <summary>labml's Primer EZ and Feedback Transformer fixtures (layout [seq, batch, d_model]).</summary>
public static class LabmlCases
{
    public static ParityCall Prepare(string dir, string module, JsonElement c) =>
        throw new NotSupportedException($"labml module '{module}'");
}
