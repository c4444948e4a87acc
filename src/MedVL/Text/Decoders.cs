using System.Text;
using System.Text.Json;

namespace MedVL.Text;

/// <summary>A decoder from <c>tokenizer.json</c> <c>decoder</c> (HF tokenizers/src/decoders/): token strings → text pieces.</summary>
internal abstract class Decoder
{
    public abstract void DecodeChain(List<string> tokens);

    public static Decoder? Parse(JsonFields f, JsonElement? el, string path, int depth = 0)
    {
        if (el is not { } e) return null;
        if (depth > 8) throw f.Error(path, "decoders nested deeper than 8 levels");
        string type = f.RequiredString(e, path, "type", 64);
        switch (type)
        {
            case "Sequence":
            {
                var arr = f.Array(f.Required(e, path, "decoders"), $"{path}.decoders", 64);
                var list = new List<Decoder>();
                int i = 0;
                foreach (var item in arr.EnumerateArray())
                {
                    if (Parse(f, item, $"{path}.decoders[{i}]", depth + 1) is { } d) list.Add(d);
                    i++;
                }
                return new SequenceDecoder(list);
            }
            case "ByteLevel": return new ByteLevelDecoder();
            case "ByteFallback": return new ByteFallbackDecoder();
            case "Fuse": return new FuseDecoder();
            case "Replace":
                return new ReplaceDecoder(PatternParser.Parse(f, f.Required(e, path, "pattern"), $"{path}.pattern"), f.RequiredString(e, path, "content", 1024));
            case "Strip":
                return new StripDecoder(f.SingleChar(f.Required(e, path, "content"), $"{path}.content"),
                    f.OptionalInt(e, path, "start", 0, 0, 1 << 20), f.OptionalInt(e, path, "stop", 0, 0, 1 << 20));
            case "Metaspace":
            {
                char replacement = f.SingleChar(f.Required(e, path, "replacement"), $"{path}.replacement");
                string scheme = f.OptionalString(e, path, "prepend_scheme", 16) ?? "always";
                bool never = scheme == "never" || f.Optional(e, "add_prefix_space") is { ValueKind: JsonValueKind.False };
                return new MetaspaceDecoder(replacement, !never);
            }
            case "BPEDecoder": return new BpeSuffixDecoder(f.OptionalString(e, path, "suffix", 64) ?? "</w>");
            default:
                throw f.Error($"{path}.type", $"unsupported decoder \"{type}\" (supported: Sequence, ByteLevel, ByteFallback, Fuse, Replace, Strip, Metaspace, BPEDecoder)");
        }
    }
}

internal sealed class SequenceDecoder(List<Decoder> items) : Decoder
{
    public override void DecodeChain(List<string> tokens)
    {
        foreach (var d in items) d.DecodeChain(tokens);
    }
}

/// <summary>
/// decoders ByteLevel (pre_tokenizers/byte_level.rs): all tokens are mapped back to bytes (a token with a char outside
/// the alphabet contributes its raw UTF-8) and the whole byte string is decoded lossily into one piece.
/// </summary>
internal sealed class ByteLevelDecoder : Decoder
{
    public override void DecodeChain(List<string> tokens)
    {
        var bytes = new List<byte>();
        foreach (var t in tokens)
        {
            bool ok = true;
            foreach (char c in t) if (ByteLevelAlphabet.CharToByte(c) < 0) { ok = false; break; }
            if (ok) foreach (char c in t) bytes.Add((byte)ByteLevelAlphabet.CharToByte(c));
            else bytes.AddRange(Encoding.UTF8.GetBytes(t));
        }
        tokens.Clear();
        tokens.Add(Utf8Lossy.Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes)));
    }
}

/// <summary>decoders/byte_fallback.rs: runs of <c>&lt;0xXX&gt;</c> become UTF-8 text, or one U+FFFD per byte if invalid.</summary>
internal sealed class ByteFallbackDecoder : Decoder
{
    public override void DecodeChain(List<string> tokens)
    {
        var output = new List<string>(tokens.Count);
        var pending = new List<byte>();
        void Flush()
        {
            if (pending.Count == 0) return;
            var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(pending);
            if (System.Text.Unicode.Utf8.IsValid(span)) output.Add(Encoding.UTF8.GetString(span));
            else for (int i = 0; i < pending.Count; i++) output.Add("\uFFFD");
            pending.Clear();
        }
        foreach (var t in tokens)
        {
            if (t.Length == 6 && t.StartsWith("<0x", StringComparison.Ordinal) && t[5] == '>' && IsHex(t[3]) && IsHex(t[4]))
                pending.Add(Convert.ToByte(t.Substring(3, 2), 16));
            else { Flush(); output.Add(t); }
        }
        Flush();
        tokens.Clear();
        tokens.AddRange(output);
    }

    private static bool IsHex(char c) => char.IsAsciiHexDigit(c);
}

internal sealed class FuseDecoder : Decoder
{
    public override void DecodeChain(List<string> tokens)
    {
        var s = string.Concat(tokens);
        tokens.Clear();
        tokens.Add(s);
    }
}

internal sealed class ReplaceDecoder(RegexPattern pattern, string content) : Decoder
{
    public override void DecodeChain(List<string> tokens)
    {
        for (int i = 0; i < tokens.Count; i++) tokens[i] = pattern.Replace(tokens[i], content);
    }
}

/// <summary>decoders/strip.rs: removes up to <c>start</c> leading and <c>stop</c> trailing <c>content</c> chars per token.</summary>
internal sealed class StripDecoder(char content, int start, int stop) : Decoder
{
    public override void DecodeChain(List<string> tokens)
    {
        for (int i = 0; i < tokens.Count; i++)
        {
            string t = tokens[i];
            int s = 0;
            while (s < start && s < t.Length && t[s] == content) s++;
            int e = t.Length, k = 0;
            while (k < stop && e > s && t[e - 1] == content) { e--; k++; }
            tokens[i] = t.Substring(s, e - s);
        }
    }
}

/// <summary>pre_tokenizers/metaspace.rs decoder: replacement → ' ', except in the first token when a prefix was prepended.</summary>
internal sealed class MetaspaceDecoder(char replacement, bool prepended) : Decoder
{
    public override void DecodeChain(List<string> tokens)
    {
        for (int i = 0; i < tokens.Count; i++)
        {
            // HF drops every replacement char of token 0 (not only the first) when prepend_scheme != never.
            tokens[i] = i == 0 && prepended ? tokens[i].Replace(replacement.ToString(), "") : tokens[i].Replace(replacement, ' ');
        }
    }
}

/// <summary>decoders/bpe.rs: end-of-word suffix → space (none after the last token).</summary>
internal sealed class BpeSuffixDecoder(string suffix) : Decoder
{
    public override void DecodeChain(List<string> tokens)
    {
        for (int i = 0; i < tokens.Count; i++) tokens[i] = tokens[i].Replace(suffix, i == tokens.Count - 1 ? "" : " ");
    }
}

internal static class Utf8Lossy
{
    /// <summary>UTF-8 → string with U+FFFD per maximal invalid subpart, as Rust's <c>String::from_utf8_lossy</c> (and .NET's decoder).</summary>
    public static string Decode(ReadOnlySpan<byte> bytes) => Encoding.UTF8.GetString(bytes);
}
