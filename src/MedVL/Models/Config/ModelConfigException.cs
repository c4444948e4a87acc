namespace MedVL.Models.Config;

/// <summary>A config.json (or weight listing) that does not describe a model MedVL can build. The message names the
/// file, the JSON field and what was expected.</summary>
public sealed class ModelConfigException : Exception
{
    public string File { get; }
    public string? Field { get; }

    public ModelConfigException(string file, string? field, string message, Exception? inner = null)
        : base(field is null ? $"{file}: {message}" : $"{file}: field '{field}': {message}", inner)
    {
        File = file;
        Field = field;
    }
}
