using System.Text;
using System.Text.Json.Nodes;

namespace TransformerForge.Data;

/// <summary>
/// One token per Unicode character (scalar value, so a surrogate pair is one token); the vocabulary is the sorted
/// distinct characters of a corpus and is saved with the tokenizer, because ids depend on it.
/// </summary>
public sealed class CharTokenizer : ITokenizer
{
    public const string KindName = "chars";

    readonly Rune[] _vocab;
    readonly Dictionary<int, int> _ids;

    /// <summary>Builds from an explicit vocabulary; it must be non-empty, sorted by code point and without repeats.</summary>
    public CharTokenizer(string vocabulary)
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        _vocab = vocabulary.EnumerateRunes().ToArray();
        if (_vocab.Length == 0)
            throw new ArgumentException("The chars tokenizer vocabulary is empty; it needs at least one character.", nameof(vocabulary));
        _ids = new Dictionary<int, int>(_vocab.Length);
        for (var i = 0; i < _vocab.Length; i++)
        {
            if (i > 0 && _vocab[i].Value <= _vocab[i - 1].Value)
                throw new ArgumentException(
                    $"The chars tokenizer vocabulary must be sorted by code point without repeats, but {UnknownCharacterException.Describe(_vocab[i])} " +
                    $"at index {i} follows {UnknownCharacterException.Describe(_vocab[i - 1])}.", nameof(vocabulary));
            _ids[_vocab[i].Value] = i;
        }
    }

    /// <summary>Vocabulary of the distinct characters in <paramref name="corpus"/>.</summary>
    public static CharTokenizer FromCorpus(string corpus) => FromCorpus([corpus]);

    /// <summary>Vocabulary of the distinct characters over several pieces of text (e.g. file chunks), without concatenating them.</summary>
    public static CharTokenizer FromCorpus(IEnumerable<string> corpus)
    {
        ArgumentNullException.ThrowIfNull(corpus);
        var seen = new CharacterSet();
        foreach (var text in corpus) seen.Add(text);
        return seen.ToTokenizer();
    }

    public string Kind => KindName;
    public int VocabSize => _vocab.Length;

    /// <summary>The vocabulary as a string: character i has id i.</summary>
    public string Vocabulary => string.Concat(_vocab.Select(r => r.ToString()));

    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length);
        Encode(text, ids);
        return ids.ToArray();
    }

    public void Encode(ReadOnlySpan<char> text, List<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var position = 0;
        foreach (var r in text.EnumerateRunes())
        {
            if (!_ids.TryGetValue(r.Value, out var id))
                throw new UnknownCharacterException(r, position, _vocab.Length);
            ids.Add(id);
            position += r.Utf16SequenceLength;
        }
    }

    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var sb = new StringBuilder();
        var i = 0;
        foreach (var id in ids)
        {
            if ((uint)id >= (uint)_vocab.Length)
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} at position {i} is outside the chars vocabulary [0, {_vocab.Length}).");
            sb.Append(_vocab[id].ToString());
            i++;
        }
        return sb.ToString();
    }

    public string ToJson() => TokenizerFile.Format(new JsonObject { ["kind"] = KindName, ["vocab"] = Vocabulary });

    public void Save(string directory) => TokenizerFile.Write(directory, ToJson());

    /// <summary>Accumulates distinct characters from streamed text.</summary>
    internal sealed class CharacterSet
    {
        readonly HashSet<int> _seen = [];

        public void Add(ReadOnlySpan<char> text)
        {
            foreach (var r in text.EnumerateRunes()) _seen.Add(r.Value);
        }

        public CharTokenizer ToTokenizer()
        {
            if (_seen.Count == 0)
                throw new ArgumentException("The chars tokenizer needs corpus text with at least one character to build its vocabulary.");
            var sb = new StringBuilder();
            foreach (var cp in _seen.Order()) sb.Append(new Rune(cp).ToString());
            return new CharTokenizer(sb.ToString());
        }
    }
}
