namespace MedVL.Vision.Codecs;

/// <summary>
/// Thrown for any malformed, truncated or unsupported image file. The message always names the
/// source (file path or "&lt;stream&gt;"), the format and what was wrong, so a user can fix the input.
/// </summary>
public sealed class InvalidImageException : Exception
{
    /// <summary>The file path (or "&lt;stream&gt;") the bad data came from.</summary>
    public string ImageSource { get; }

    public InvalidImageException(string source, string message)
        : base($"{source}: {message}") => ImageSource = source;

    public InvalidImageException(string source, string message, Exception inner)
        : base($"{source}: {message}", inner) => ImageSource = source;
}
