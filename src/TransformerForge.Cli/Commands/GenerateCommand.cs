using System.CommandLine;
using System.Diagnostics;
using System.Text;
using TorchSharp;
using TransformerForge.Config;
using TransformerForge.Data;
using TransformerForge.Generation;
using TransformerForge.IO;
using TransformerForge.Models;
using TransformerForge.Runtime;
using static TorchSharp.torch;

namespace TransformerForge.Cli.Commands;

/// <summary>
/// <c>tforge generate --model DIR --prompt TEXT</c>: loads a saved model (a model directory, a checkpoint or a run
/// directory) and its tokenizer, and streams a continuation; <c>--prompts FILE</c> continues every line of a file in
/// one batch. Sampling: temperature, top-k, top-p, entmax or greedy, an end-of-sequence token, a seed. Prints tokens/s.
/// </summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Saved model: a model directory, a checkpoint, or a run directory (its checkpoint/).", Required = true };
        var prompt = new Option<string?>("--prompt") { Description = "Text to continue [default: a newline]." };
        var prompts = new Option<string?>("--prompts") { Description = "A file with one prompt per line: all are continued in one batch (left-padded)." };
        var tokens = new Option<int>("--tokens") { Description = "How many tokens to generate.", DefaultValueFactory = _ => 200 };
        var tokenizerOption = new Option<string?>("--tokenizer") { Description = $"Tokenizer: {string.Join(", ", Tokenizers.Kinds.Where(k => k != CharTokenizer.KindName))}, or a tokenizer.json (or its folder) [default: the model's tokenizer.json]." };
        var temperature = new Option<double>("--temperature") { Description = "Sampling temperature.", DefaultValueFactory = _ => 1.0 };
        var topK = new Option<int?>("--top-k") { Description = "Sample among the k most likely tokens [default: all]." };
        var topP = new Option<double?>("--top-p") { Description = "Nucleus sampling: the smallest set of tokens with this much probability [default: off]." };
        var entmax = new Option<double?>("--entmax") { Description = "Sample from α-entmax instead of softmax (x-transformers uses 1.3); gives unlikely tokens exactly zero [default: off]." };
        var greedy = new Option<bool>("--greedy") { Description = "Always take the most likely token." };
        var eos = new Option<string?>("--eos") { Description = "Stop a sequence at this token: an id, or text that is one token (e.g. a newline) [default: none]." };
        var noCache = new Option<bool>("--no-cache") { Description = "Recompute the whole window each step instead of using the KV cache." };
        var upcast = new Option<bool>("--upcast") { Description = "Accept F16/BF16 weights for a float32 model (reported); otherwise weight dtypes must match exactly." };
        var seed = new Option<long?>("--seed") { Description = "Random seed for sampling [default: random]." };
        var device = CliRunner.DeviceOption();
        var cmd = new Command("generate", "Generate text from a saved model.")
        {
            model, prompt, prompts, tokens, tokenizerOption, temperature, topK, topP, entmax, greedy, eos, noCache, upcast, seed, device,
        };
        cmd.SetAction(r => Run(new Request(r.GetValue(model)!, r.GetValue(prompt), r.GetValue(prompts), r.GetValue(tokens), r.GetValue(tokenizerOption),
            new SamplingOptions
            {
                Greedy = r.GetValue(greedy), Temperature = r.GetValue(temperature), TopK = r.GetValue(topK), TopP = r.GetValue(topP),
                EntmaxAlpha = r.GetValue(entmax), UseCache = !r.GetValue(noCache), Seed = r.GetValue(seed),
            },
            r.GetValue(eos), r.GetValue(upcast), r.GetValue(device)!)));
        return cmd;
    }

    sealed record Request(string Model, string? Prompt, string? PromptsFile, int Tokens, string? Tokenizer, SamplingOptions Sampling,
        string? Eos, bool Upcast, string Device);

    static int Run(Request q)
    {
        if (q.Tokens < 0) throw new ArgumentException($"--tokens must not be negative, got {q.Tokens}");
        if (q.Prompt is not null && q.PromptsFile is not null) throw new ArgumentException("give --prompt or --prompts, not both");
        q.Sampling.Validate();
        var dev = TorchRuntime.SelectDevice(q.Device);
        var dir = CliPaths.ModelDirectory(q.Model);
        var tokenizer = LoadTokenizer(dir, q.Tokenizer);
        var texts = q.PromptsFile is { } file ? ReadPrompts(file) : [q.Prompt ?? "\n"];

        // Everything checkable before the weights load: sizes, the vocabulary, the prompts, the end token.
        var config = ModelConfig.Load(Path.Combine(dir, IO.ModelDirectory.ConfigFile));
        var numTokens = ModelFactory.Vocabulary(config) ?? throw new ArgumentException($"the model in '{dir}' ({config.Type}) is not a language model");
        var encoded = texts.Select(t => tokenizer.Encode(t)).ToList();
        for (int i = 0; i < encoded.Count; i++)
        {
            if (encoded[i].Length == 0) throw new ArgumentException($"prompt {i + 1} encodes to no tokens");
            CheckIds(encoded[i], numTokens, tokenizer, $"prompt {i + 1}");
        }
        var sampling = q.Sampling with { EosToken = q.Eos is null ? null : EosId(q.Eos, tokenizer, numTokens) };
        long longest = encoded.Max(e => e.Length) + (long)q.Tokens;
        MemoryGuard.EnsureFits(ModelSize.ForInference(config, encoded.Count, longest), dev, $"generating {encoded.Count} × {longest} tokens");

        var loaded = IO.ModelDirectory.Open(dir, q.Upcast ? WeightDTypePolicy.UpcastHalfToFloat32 : WeightDTypePolicy.Exact);
        using var module = loaded.Model;
        if (loaded.Report.Summary is { } note) Console.Error.WriteLine($"tforge: {note} (--upcast)");
        if (module is not ILanguageModel lm) throw new ArgumentException($"the model in '{dir}' ({config.Type}) is not a language model");
        module.to(dev);

        var watch = Stopwatch.StartNew();
        long generated = encoded.Count == 1 ? Stream(lm, encoded[0], texts[0], q.Tokens, sampling, tokenizer, dev) : Batch(lm, encoded, texts, q.Tokens, sampling, tokenizer, dev);
        var seconds = watch.Elapsed.TotalSeconds;
        Console.Error.WriteLine($"generated {generated} tokens in {seconds:F2} s ({generated / Math.Max(seconds, 1e-9):F1} tokens/s)");
        return 0;
    }

    /// <summary>One prompt: prints each piece of text as soon as it is whole (bytes exactly as generated for the bytes tokenizer).</summary>
    static long Stream(ILanguageModel lm, int[] ids, string text, int tokens, SamplingOptions sampling, ITokenizer tokenizer, Device dev)
    {
        using var input = tensor(ids.Select(i => (long)i).ToArray(), device: dev).unsqueeze(0);
        var generated = new List<int>();
        Console.Write(text);
        using var stdout = Console.OpenStandardOutput();
        string shown = "";
        long count = 0;
        Autoregressive.Generate(lm, input, tokens, sampling, onToken: next =>
        {
            int id = (int)next[0, 0].item<long>();
            count++;
            if (sampling.EosToken == id) return;
            generated.Add(id);
            if (tokenizer is IByteLevelTokenizer bytes)
            {
                Console.Out.Flush();
                stdout.Write(bytes.DecodeBytes([id]));
                stdout.Flush();
                return;
            }
            // Decode everything so far and print what is new (multi-byte characters arrive whole).
            var decoded = tokenizer.Decode(generated);
            if (decoded.Length > shown.Length && !decoded.EndsWith('\uFFFD')) { Console.Write(decoded[shown.Length..]); shown = decoded; }
        });
        Console.WriteLine();
        return count;
    }

    /// <summary>Several prompts at once: left-padded with a mask, then each continuation printed under its prompt.</summary>
    static long Batch(ILanguageModel lm, List<int[]> encoded, IReadOnlyList<string> texts, int tokens, SamplingOptions sampling, ITokenizer tokenizer, Device dev)
    {
        int width = encoded.Max(e => e.Length);
        var ids = new long[encoded.Count * width];
        var mask = new bool[encoded.Count * width];
        for (int b = 0; b < encoded.Count; b++)
        {
            int pad = width - encoded[b].Length;
            for (int j = 0; j < encoded[b].Length; j++)
            {
                ids[b * width + pad + j] = encoded[b][j];
                mask[b * width + pad + j] = true;
            }
        }
        using var scope = NewDisposeScope();
        var input = tensor(ids, [encoded.Count, width], device: dev);
        var inputMask = tensor(mask, [encoded.Count, width], device: dev);
        var output = Autoregressive.Generate(lm, input, tokens, sampling, promptMask: inputMask).cpu();
        long count = 0;
        for (int b = 0; b < encoded.Count; b++)
        {
            var row = output[b].data<long>().ToArray().Select(t => (int)t).ToList();
            int end = sampling.EosToken is { } e && row.IndexOf(e) is >= 0 and var at ? at : row.Count;
            count += Math.Min(row.Count, end + 1);
            Console.WriteLine($"--- prompt {b + 1}");
            Console.WriteLine(texts[b] + tokenizer.Decode(row.Take(end)));
        }
        return count;
    }

    static IReadOnlyList<string> ReadPrompts(string file)
    {
        if (!File.Exists(file)) throw new FileNotFoundException($"prompts file '{file}' does not exist", file);
        var lines = File.ReadAllLines(file).Where(l => l.Length > 0).ToList();
        if (lines.Count == 0) throw new InvalidDataException($"prompts file '{file}' has no prompts (one per line)");
        return lines;
    }

    /// <summary>The model directory's tokenizer.json, or the one named: a kind, or a tokenizer.json file or folder.</summary>
    static ITokenizer LoadTokenizer(string dir, string? name)
    {
        if (name is null)
            return File.Exists(Path.Combine(dir, TokenizerFile.FileName)) ? Tokenizers.Load(dir)
                : throw new ArgumentException($"'{dir}' has no {TokenizerFile.FileName}; give --tokenizer (bytes, cl100k, o200k, or a tokenizer.json)");
        if (File.Exists(name) || Directory.Exists(name)) return Tokenizers.Load(name);
        if (name.Trim().ToLowerInvariant() is "chars" or "char")
            throw new ArgumentException("a chars tokenizer needs its vocabulary: give the tokenizer.json it was saved in");
        return Tokenizers.Create(name);
    }

    /// <summary>Ids at or above the model's vocabulary would index past its embedding: refused with the token that did it.</summary>
    static void CheckIds(int[] ids, int numTokens, ITokenizer tokenizer, string what)
    {
        foreach (var id in ids)
            if (id >= numTokens)
                throw new ArgumentException($"{what} holds token {id} ({Show(tokenizer, id)}), but the model has only {numTokens} tokens; " +
                    "use the tokenizer the model was trained with (--tokenizer)");
    }

    static string Show(ITokenizer tokenizer, int id)
    {
        try { return "'" + StrictJson.Printable(tokenizer.Decode([id])) + "'"; }
        catch (ArgumentException) { return "?"; }
    }

    /// <summary>An id, or text that encodes to exactly one token (escapes \n and \t allowed).</summary>
    static int EosId(string eos, ITokenizer tokenizer, int numTokens)
    {
        int id;
        if (int.TryParse(eos, out var parsed)) id = parsed;
        else
        {
            var ids = tokenizer.Encode(eos.Replace("\\n", "\n").Replace("\\t", "\t"));
            if (ids.Length != 1) throw new ArgumentException($"--eos '{eos}' is {ids.Length} tokens for the {tokenizer.Kind} tokenizer; give one token, or its id");
            id = ids[0];
        }
        if (id < 0 || id >= numTokens) throw new ArgumentException($"--eos {id} is outside the model's {numTokens} tokens");
        return id;
    }
}
