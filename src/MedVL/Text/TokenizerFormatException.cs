namespace MedVL.Text;

/// <summary>
/// A <c>tokenizer.json</c> (or related file) is malformed or uses a feature this engine does not implement.
/// The message names the file, the JSON path of the offending field and what was expected.
/// </summary>
public sealed class TokenizerFormatException : FormatException
{
    public string FileName { get; }
    public string JsonPath { get; }

    public TokenizerFormatException(string source, string jsonPath, string message, Exception? inner = null)
        : base($"{source}: {jsonPath}: {message}", inner)
    {
        FileName = source;
        JsonPath = jsonPath;
    }
}
