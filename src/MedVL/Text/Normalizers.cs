using System.Text;
using System.Text.Json;

namespace MedVL.Text;

/// <summary>A text normaliser from <c>tokenizer.json</c> <c>normalizer</c> (HF tokenizers/src/normalizers/).</summary>
internal abstract class Normalizer
{
    public abstract string Normalize(string text);

    public static Normalizer? Parse(JsonFields f, JsonElement? el, string path, int depth = 0)
    {
        if (el is not { } e) return null;
        if (depth > 8) throw f.Error(path, "normalizers nested deeper than 8 levels");
        string type = f.RequiredString(e, path, "type", 64);
        switch (type)
        {
            case "Sequence":
            {
                var arr = f.Array(f.Required(e, path, "normalizers"), $"{path}.normalizers", 64);
                var list = new List<Normalizer>();
                int i = 0;
                foreach (var item in arr.EnumerateArray())
                {
                    if (Parse(f, item, $"{path}.normalizers[{i}]", depth + 1) is { } n) list.Add(n);
                    i++;
                }
                return new SequenceNormalizer(list);
            }
            case "Prepend": return new PrependNormalizer(f.RequiredString(e, path, "prepend", 64));
            case "Replace":
                return new ReplaceNormalizer(PatternParser.Parse(f, f.Required(e, path, "pattern"), $"{path}.pattern"),
                    f.RequiredString(e, path, "content", 1024));
            case "NFC": return new UnicodeNormalizer(UnicodeNormalForm.NFC);
            case "NFD": return new UnicodeNormalizer(UnicodeNormalForm.NFD);
            case "NFKC": return new UnicodeNormalizer(UnicodeNormalForm.NFKC);
            case "NFKD": return new UnicodeNormalizer(UnicodeNormalForm.NFKD);
            case "Lowercase": return new LowercaseNormalizer();
            case "Strip":
                return new StripNormalizer(f.OptionalBool(e, path, "strip_left", true), f.OptionalBool(e, path, "strip_right", true));
            default:
                throw f.Error($"{path}.type", $"unsupported normalizer \"{type}\" (supported: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase, Strip)");
        }
    }
}

internal sealed class SequenceNormalizer(List<Normalizer> items) : Normalizer
{
    public override string Normalize(string text)
    {
        foreach (var n in items) text = n.Normalize(text);
        return text;
    }
}

/// <summary>normalizers/prepend.rs: prepends only to a non-empty string.</summary>
internal sealed class PrependNormalizer(string prepend) : Normalizer
{
    public override string Normalize(string text) => text.Length == 0 ? text : prepend + text;
}

internal sealed class ReplaceNormalizer(RegexPattern pattern, string content) : Normalizer
{
    public override string Normalize(string text) => pattern.Replace(text, content);
}

/// <summary>normalizers/unicode.rs. Uses our own tables: string.Normalize is a no-op under InvariantGlobalization.</summary>
internal sealed class UnicodeNormalizer(UnicodeNormalForm form) : Normalizer
{
    public override string Normalize(string text) => UnicodeNormalization.Normalize(text, form);
}

internal sealed class LowercaseNormalizer : Normalizer
{
    // Rust `str::to_lowercase` is culture-independent; ToLowerInvariant matches it except for final-sigma context.
    public override string Normalize(string text) => text.ToLowerInvariant();
}

/// <summary>normalizers/strip.rs: trims Unicode whitespace.</summary>
internal sealed class StripNormalizer(bool left, bool right) : Normalizer
{
    public override string Normalize(string text)
    {
        if (left) text = text.TrimStart();
        if (right) text = text.TrimEnd();
        return text;
    }
}

internal static class PatternParser
{
    /// <summary>HF <c>{"String": "..."}</c> or <c>{"Regex": "..."}</c>.</summary>
    public static RegexPattern Parse(JsonFields f, JsonElement el, string path)
    {
        f.Object(el, path);
        if (f.Optional(el, "String") is { } s) return new RegexPattern(f.String(s, $"{path}.String", 4096), isLiteral: true);
        if (f.Optional(el, "Regex") is { } r)
        {
            string src = f.String(r, $"{path}.Regex", 4096);
            try { return new RegexPattern(src, isLiteral: false); }
            catch (ArgumentException ex) { throw new TokenizerFormatException(f.Source, $"{path}.Regex", $"regex does not compile in .NET: {ex.Message}", ex); }
        }
        throw f.Error(path, "expected {\"String\": ...} or {\"Regex\": ...}");
    }
}
