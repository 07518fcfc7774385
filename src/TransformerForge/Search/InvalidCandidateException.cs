namespace TransformerForge.Search;

/// <summary>A genome that does not make a valid model (e.g. two positional schemes x-transformers rejects together).</summary>
public sealed class InvalidCandidateException(string message) : Exception(message);

/// <summary>
/// A search that cannot go on as asked: a space whose constraints no sample meets, a study whose stored definition
/// differs from the command line, a space file with an error. The CLI prints the message as one line.
/// </summary>
public sealed class SearchException(string message) : Exception(message);
