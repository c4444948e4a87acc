namespace MedVL.Formats;

/// <summary>
/// A checkpoint or array file is malformed, truncated, inconsistent or uses something MedVL does not support.
/// The message always names the file and, where known, the tensor/field and what was expected.
/// Derives from <see cref="IOException"/> so callers that already handle I/O failures handle this too.
/// </summary>
public class InvalidCheckpointException : IOException
{
    public string FilePath { get; }

    public InvalidCheckpointException(string filePath, string message, Exception? inner = null)
        : base($"{filePath}: {message}", inner)
    {
        FilePath = filePath;
    }
}

/// <summary>
/// A pickle tried to reference a global (module.name) outside the allow-list. Nothing was imported,
/// instantiated or executed; <see cref="GlobalName"/> is the offending "module.name".
/// </summary>
public sealed class UnsafePickleException : InvalidCheckpointException
{
    public string GlobalName { get; }

    public UnsafePickleException(string filePath, string globalName)
        : base(filePath, $"pickle references the global '{globalName}', which is not on MedVL's allow-list " +
                         "(only torch tensor/storage rebuild functions and collections.OrderedDict are permitted); refusing to load")
    {
        GlobalName = globalName;
    }
}
