using System.Diagnostics;
using Microsoft.ML.Tokenizers;
using TransformerForge.Data;

namespace TransformerForge.Benchmarks;

/// <summary>
/// BPE tokenization speed on prose and on text without spaces (one long run of letters), in the 64K-character chunks a
/// text dataset tokenizes, through TransformerForge's tokenizer (long runs cut at <see cref="TiktokenBpeTokenizer.MaxRun"/>)
/// and, optionally, through Microsoft.ML.Tokenizers alone (what it took before: superlinear in the run's length).
/// </summary>
public static class TokenizerBenchmark
{
    /// <param name="chars">Characters of each text.</param>
    /// <param name="beforeChars">Characters of the no-space text given to Microsoft.ML.Tokenizers alone (0: skip; it is slow), extrapolated to <paramref name="chars"/>.</param>
    public static IReadOnlyList<string> Run(string encoding = TiktokenBpeTokenizer.Cl100k, int chars = 5_000_000, int beforeChars = 0,
        string? corpus = null, int rounds = 2, Action<string>? log = null)
    {
        var prose = Prose(chars, corpus);
        var random = new Random(1);
        var letters = new string(Enumerable.Range(0, chars).Select(_ => (char)('a' + random.Next(26))).ToArray());
        var ours = Tokenizers.Create(encoding);
        var inner = TiktokenTokenizer.CreateForEncoding(encoding + "_base");
        Func<string, int> after = t => ours.Encode(t).Length, before = t => inner.EncodeToIds(t).Count;
        Time(prose[..Math.Min(prose.Length, 200_000)], after);   // warm up the JIT and both caches
        Time(prose[..Math.Min(prose.Length, 200_000)], before);

        var lines = new List<string>();
        void Log(string line) { lines.Add(line); log?.Invoke(line); }
        Log($"{encoding}, {chars:N0} characters each, 64K-character chunks; prose from {corpus ?? "generated words"}; no spaces: random lowercase letters");
        for (int round = 1; round <= rounds; round++)
        {
            double pa = Time(prose, after), la = Time(letters, after);
            var line = $"round {round}: prose {pa:F2} s, no spaces {la:F2} s ({la / pa:F1}x prose)";
            if (beforeChars > 0)
            {
                double pb = Time(prose, before), lb = Time(letters[..Math.Min(beforeChars, chars)], before) * chars / Math.Min(beforeChars, chars);
                line += $" | Microsoft.ML.Tokenizers alone: prose {pb:F2} s, no spaces {lb:F0} s (from {Math.Min(beforeChars, chars):N0} chars; {lb / pb:F0}x prose)";
            }
            Log(line);
        }
        return lines;
    }

    static double Time(string text, Func<string, int> encode)
    {
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < text.Length; i += TextDatasetOptions.DefaultChunkChars)
            encode(text.Substring(i, Math.Min(TextDatasetOptions.DefaultChunkChars, text.Length - i)));
        return sw.Elapsed.TotalSeconds;
    }

    static string Prose(int chars, string? corpus)
    {
        if (corpus is not null)
        {
            var text = File.ReadAllText(corpus);
            if (text.Length == 0) throw new InvalidDataException($"corpus '{corpus}' is empty");
            return string.Concat(Enumerable.Repeat(text, chars / text.Length + 1))[..chars];
        }
        // Words of 1-10 letters, spaces, some punctuation and newlines.
        var random = new Random(2);
        var sb = new System.Text.StringBuilder(chars + 16);
        while (sb.Length < chars)
        {
            int n = 1 + random.Next(10);
            for (int i = 0; i < n; i++) sb.Append((char)('a' + random.Next(26)));
            sb.Append(random.Next(12) switch { 0 => ", ", 1 => ".\n", _ => " " });
        }
        return sb.ToString(0, chars);
    }
}
