using System.Text;

namespace TransformerForge.Data;

/// <summary>Raised by the <c>chars</c> tokenizer for a character its vocabulary does not contain.</summary>
public sealed class UnknownCharacterException : ArgumentException
{
    public UnknownCharacterException(Rune character, int position, int vocabSize)
        : base($"Character {Describe(character)} at position {position} is not in the chars tokenizer vocabulary " +
               $"({vocabSize} characters); build the tokenizer from a corpus that contains it, or use the 'bytes' tokenizer.")
    {
        Character = character;
        Position = position;
    }

    /// <summary>The character (a Unicode scalar value, so emoji are one character).</summary>
    public Rune Character { get; }

    /// <summary>Index of the character in the encoded string, counted in UTF-16 code units like <see cref="string"/> indices.</summary>
    public int Position { get; }

    /// <summary>Printable form for messages: the character itself unless it is invisible, and always its code point.</summary>
    public static string Describe(Rune r)
    {
        var visible = !Rune.IsControl(r) && !Rune.IsWhiteSpace(r) && Rune.GetUnicodeCategory(r) != System.Globalization.UnicodeCategory.Format;
        return visible ? $"'{r}' (U+{r.Value:X4})" : $"U+{r.Value:X4}";
    }
}
