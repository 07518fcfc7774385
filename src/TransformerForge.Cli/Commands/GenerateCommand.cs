using System.CommandLine;
using TorchSharp;
using TransformerForge.Data;
using TransformerForge.Generation;
using TransformerForge.IO;
using TransformerForge.Runtime;
using static TorchSharp.torch;

namespace TransformerForge.Cli.Commands;

/// <summary><c>tforge generate --model DIR --prompt TEXT</c>: loads a saved model (and its tokenizer) and streams text.</summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Saved model or checkpoint directory (config.json, model.safetensors, tokenizer.json).", Required = true };
        var prompt = new Option<string>("--prompt") { Description = "Text to continue.", DefaultValueFactory = _ => "\n" };
        var tokens = new Option<int>("--tokens") { Description = "How many tokens to generate.", DefaultValueFactory = _ => 200 };
        var temperature = new Option<double>("--temperature") { Description = "Sampling temperature.", DefaultValueFactory = _ => 1.0 };
        var topK = new Option<int?>("--top-k") { Description = "Sample among the k most likely tokens." };
        var topP = new Option<double?>("--top-p") { Description = "Nucleus sampling: the smallest set of tokens with this much probability." };
        var greedy = new Option<bool>("--greedy") { Description = "Always take the most likely token." };
        var noCache = new Option<bool>("--no-cache") { Description = "Recompute the whole window each step instead of using the KV cache." };
        var seed = new Option<long?>("--seed") { Description = "Random seed for sampling." };
        var device = CliRunner.DeviceOption();
        var cmd = new Command("generate", "Generate text from a saved model.") { model, prompt, tokens, temperature, topK, topP, greedy, noCache, seed, device };
        cmd.SetAction(r =>
        {
            var dev = TorchRuntime.SelectDevice(r.GetValue(device)!);
            var dir = r.GetValue(model)!;
            var (_, lm) = ModelDirectory.LoadLanguageModel(dir);
            var tokenizer = Tokenizers.Load(dir);
            lm.to(dev);

            var ids = tokenizer.Encode(r.GetValue(prompt)!);
            if (ids.Length == 0) throw new ArgumentException("the prompt encodes to no tokens");
            using var input = tensor(ids.Select(i => (long)i).ToArray(), device: dev).unsqueeze(0);
            var options = new SamplingOptions
            {
                Greedy = r.GetValue(greedy), Temperature = r.GetValue(temperature), TopK = r.GetValue(topK), TopP = r.GetValue(topP),
                UseCache = !r.GetValue(noCache), Seed = r.GetValue(seed),
            };

            // Stream: decode everything generated so far and print what is new (multi-byte characters arrive whole).
            var generated = new List<int>();
            string shown = "";
            Console.Write(r.GetValue(prompt));
            Autoregressive.Generate(lm, input, r.GetValue(tokens), options, onToken: next =>
            {
                generated.Add((int)next[0, 0].item<long>());
                var text = tokenizer.Decode(generated);
                if (text.Length > shown.Length && !text.EndsWith('\uFFFD')) { Console.Write(text[shown.Length..]); shown = text; }
            });
            Console.WriteLine();
            return 0;
        });
        return cmd;
    }
}
