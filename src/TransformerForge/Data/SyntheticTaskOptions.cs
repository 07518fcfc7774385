namespace TransformerForge.Data;

/// <summary>
/// Sizes of a synthetic task; a null field takes the task's default. Setting an option a task does not use is an error.
/// </summary>
/// <param name="Length">Items to copy/reverse/sort (default 10), key-value pairs for associative-recall (default 6),
/// digits per operand for addition (default 4).</param>
/// <param name="Symbols">Alphabet size of the items (copy/reverse/sort, default 10), of the values
/// (associative-recall, default 10), or the number base (addition, default 10).</param>
/// <param name="Keys">Number of distinct keys for associative-recall (default 16); at least Length.</param>
/// <param name="ReverseAnswer">addition only: write the sum least-significant digit first (default true), the order
/// in which carries are computed, which makes the task far easier to learn left to right.</param>
public sealed record SyntheticTaskOptions(int? Length = null, int? Symbols = null, int? Keys = null, bool? ReverseAnswer = null);
