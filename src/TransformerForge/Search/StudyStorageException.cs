namespace TransformerForge.Search;

/// <summary>
/// The study storage cannot be used: a bad storage name or URL, a database that refuses the connection, or one that
/// stayed unreachable for longer than the storage waits. The message names the storage without its secrets (never a
/// password), so the CLI prints it as one line.
/// </summary>
public sealed class StudyStorageException(string message, Exception? inner = null) : Exception(message, inner);
