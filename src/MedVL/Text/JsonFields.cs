using System.Text.Json;

namespace MedVL.Text;

/// <summary>Typed, path-aware accessors over <see cref="JsonElement"/> that fail with a <see cref="TokenizerFormatException"/>.</summary>
internal readonly struct JsonFields
{
    public readonly string Source;
    public JsonFields(string source) => Source = source;

    public TokenizerFormatException Error(string path, string message) => new(Source, path, message);

    public JsonElement Object(JsonElement parent, string path)
    {
        if (parent.ValueKind != JsonValueKind.Object) throw Error(path, $"expected a JSON object, found {parent.ValueKind}");
        return parent;
    }

    /// <summary>Property or null when absent / JSON null.</summary>
    public JsonElement? Optional(JsonElement obj, string name)
    {
        if (obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null) return v;
        return null;
    }

    public JsonElement Required(JsonElement obj, string path, string name)
    {
        if (obj.ValueKind != JsonValueKind.Object) throw Error(path, $"expected a JSON object, found {obj.ValueKind}");
        if (!obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
            throw Error($"{path}.{name}", "required field is missing");
        return v;
    }

    public string String(JsonElement el, string path, int maxLength = 1 << 20)
    {
        if (el.ValueKind != JsonValueKind.String) throw Error(path, $"expected a string, found {el.ValueKind}");
        var s = el.GetString()!;
        if (s.Length > maxLength) throw Error(path, $"string of length {s.Length} exceeds the limit {maxLength}");
        return s;
    }

    public string RequiredString(JsonElement obj, string path, string name, int maxLength = 1 << 20)
        => String(Required(obj, path, name), $"{path}.{name}", maxLength);

    public string? OptionalString(JsonElement obj, string path, string name, int maxLength = 1 << 20)
        => Optional(obj, name) is { } v ? String(v, $"{path}.{name}", maxLength) : null;

    public bool OptionalBool(JsonElement obj, string path, string name, bool fallback)
    {
        if (Optional(obj, name) is not { } v) return fallback;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error($"{path}.{name}", $"expected true/false, found {v.ValueKind}"),
        };
    }

    public int Int(JsonElement el, string path, int min = 0, int max = int.MaxValue)
    {
        if (el.ValueKind != JsonValueKind.Number || !el.TryGetInt64(out long v))
            throw Error(path, $"expected an integer, found {el.ValueKind} {Truncate(el.GetRawText())}");
        if (v < min || v > max) throw Error(path, $"integer {v} is outside [{min}, {max}]");
        return (int)v;
    }

    public int OptionalInt(JsonElement obj, string path, string name, int fallback, int min = 0, int max = int.MaxValue)
        => Optional(obj, name) is { } v ? Int(v, $"{path}.{name}", min, max) : fallback;

    public JsonElement Array(JsonElement el, string path, int maxCount)
    {
        if (el.ValueKind != JsonValueKind.Array) throw Error(path, $"expected a JSON array, found {el.ValueKind}");
        int n = el.GetArrayLength();
        if (n > maxCount) throw Error(path, $"array of {n} entries exceeds the limit {maxCount}");
        return el;
    }

    public char SingleChar(JsonElement el, string path)
    {
        var s = String(el, path, 2);
        // Rust `char` is one Unicode scalar; in UTF-16 that is one char or one surrogate pair (only BMP supported here).
        if (s.Length != 1) throw Error(path, $"expected a single character, found \"{s}\"");
        return s[0];
    }

    public static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "…";
}
