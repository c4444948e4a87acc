using System.Globalization;
using System.Text.Json;

namespace MedVL.Text;

/// <summary>
/// One split of the input on its way to the model. <see cref="AtOrigin"/> is true when the split starts at offset 0 of
/// the original text (HF checks <c>offsets_original().0 == 0</c> for Metaspace's <c>prepend_scheme: first</c>).
/// </summary>
internal readonly record struct Piece(string Text, bool AtOrigin);

/// <summary>A pre-tokenizer from <c>tokenizer.json</c> <c>pre_tokenizer</c> (HF tokenizers/src/pre_tokenizers/).</summary>
internal abstract class PreTokenizer
{
    /// <summary>Replaces <paramref name="pieces"/> with the refined split; empty pieces are dropped like HF's <c>PreTokenizedString::split</c>.</summary>
    public abstract void PreTokenize(List<Piece> pieces);

    protected static void SplitAll(List<Piece> pieces, Func<Piece, List<(int S, int E)>, IEnumerable<Piece>?> splitOne)
    {
        var ranges = new List<(int S, int E)>();
        var output = new List<Piece>(pieces.Count * 2);
        foreach (var p in pieces)
        {
            var custom = splitOne(p, ranges);
            if (custom != null)
            {
                foreach (var c in custom) if (c.Text.Length > 0) output.Add(c);
                continue;
            }
            foreach (var (s, e) in ranges)
                if (e > s) output.Add(new Piece(p.Text.Substring(s, e - s), p.AtOrigin && s == 0));
        }
        pieces.Clear();
        pieces.AddRange(output);
    }

    public static PreTokenizer? Parse(JsonFields f, JsonElement? el, string path, int depth = 0)
    {
        if (el is not { } e) return null;
        if (depth > 8) throw f.Error(path, "pre-tokenizers nested deeper than 8 levels");
        string type = f.RequiredString(e, path, "type", 64);
        switch (type)
        {
            case "Sequence":
            {
                var arr = f.Array(f.Required(e, path, "pretokenizers"), $"{path}.pretokenizers", 64);
                var list = new List<PreTokenizer>();
                int i = 0;
                foreach (var item in arr.EnumerateArray())
                {
                    if (Parse(f, item, $"{path}.pretokenizers[{i}]", depth + 1) is { } p) list.Add(p);
                    i++;
                }
                return new SequencePreTokenizer(list);
            }
            case "ByteLevel":
                return new ByteLevelPreTokenizer(f.OptionalBool(e, path, "add_prefix_space", true), f.OptionalBool(e, path, "use_regex", true));
            case "Split":
                return new SplitPreTokenizer(PatternParser.Parse(f, f.Required(e, path, "pattern"), $"{path}.pattern"),
                    ParseBehavior(f, f.Required(e, path, "behavior"), $"{path}.behavior"), f.OptionalBool(e, path, "invert", false));
            case "Metaspace":
            {
                char replacement = f.SingleChar(f.Required(e, path, "replacement"), $"{path}.replacement");
                string scheme = f.OptionalString(e, path, "prepend_scheme", 16) ?? "always";
                var ps = scheme switch
                {
                    "first" => PrependScheme.First,
                    "always" => PrependScheme.Always,
                    "never" => PrependScheme.Never,
                    _ => throw f.Error($"{path}.prepend_scheme", $"expected first|always|never, found \"{scheme}\""),
                };
                // Legacy files carry add_prefix_space=false instead of prepend_scheme (metaspace.rs deserializer).
                if (f.Optional(e, "add_prefix_space") is { ValueKind: JsonValueKind.False }) ps = PrependScheme.Never;
                return new MetaspacePreTokenizer(replacement, ps, f.OptionalBool(e, path, "split", true));
            }
            case "Digits":
                return new DigitsPreTokenizer(f.OptionalBool(e, path, "individual_digits", false));
            default:
                throw f.Error($"{path}.type", $"unsupported pre-tokenizer \"{type}\" (supported: Sequence, ByteLevel, Split, Metaspace, Digits)");
        }
    }

    internal static SplitDelimiterBehavior ParseBehavior(JsonFields f, JsonElement el, string path)
    {
        string s = f.String(el, path, 32);
        return s switch
        {
            "Removed" => SplitDelimiterBehavior.Removed,
            "Isolated" => SplitDelimiterBehavior.Isolated,
            "MergedWithPrevious" => SplitDelimiterBehavior.MergedWithPrevious,
            "MergedWithNext" => SplitDelimiterBehavior.MergedWithNext,
            "Contiguous" => SplitDelimiterBehavior.Contiguous,
            _ => throw f.Error(path, $"expected Removed|Isolated|MergedWithPrevious|MergedWithNext|Contiguous, found \"{s}\""),
        };
    }
}

internal enum PrependScheme { First, Always, Never }

internal sealed class SequencePreTokenizer(List<PreTokenizer> items) : PreTokenizer
{
    public override void PreTokenize(List<Piece> pieces)
    {
        foreach (var p in items) p.PreTokenize(pieces);
    }
}

/// <summary>
/// pre_tokenizers/byte_level.rs: optional prefix space, optional GPT-2 regex split (Isolated), then every piece is
/// rewritten into the byte-level alphabet.
/// </summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : PreTokenizer
{
    internal const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
    private static readonly RegexPattern Gpt2Regex = new(Gpt2Pattern, isLiteral: false);

    public override void PreTokenize(List<Piece> pieces)
    {
        var matches = new List<(int, int)>();
        var spans = new List<(int S, int E, bool M)>();
        if (!useRegex)
        {
            // Common in Qwen/Llama-3/cl100k files: a Split does the regex work, ByteLevel only maps bytes.
            for (int i = 0; i < pieces.Count; i++)
            {
                string t = pieces[i].Text;
                if (addPrefixSpace && !t.StartsWith(' ')) t = " " + t;
                pieces[i] = pieces[i] with { Text = ByteLevelAlphabet.Encode(t) };
            }
            return;
        }
        SplitAll(pieces, (p, ranges) =>
        {
            string text = p.Text;
            if (addPrefixSpace && !text.StartsWith(' ')) text = " " + text;
            Gpt2Regex.FindMatches(text, matches);
            Splitter.ToSpans(text.Length, matches, false, spans);
            var list = new List<Piece>(spans.Count);
            foreach (var sp in spans) if (sp.E > sp.S) list.Add(new Piece(text.Substring(sp.S, sp.E - sp.S), p.AtOrigin && sp.S == 0));
            return list;
        });
        for (int i = 0; i < pieces.Count; i++) pieces[i] = pieces[i] with { Text = ByteLevelAlphabet.Encode(pieces[i].Text) };
    }
}

/// <summary>pre_tokenizers/split.rs.</summary>
internal sealed class SplitPreTokenizer(RegexPattern pattern, SplitDelimiterBehavior behavior, bool invert) : PreTokenizer
{
    public override void PreTokenize(List<Piece> pieces)
    {
        var matches = new List<(int, int)>();
        var spans = new List<(int S, int E, bool M)>();
        SplitAll(pieces, (p, ranges) =>
        {
            pattern.FindMatches(p.Text, matches);
            Splitter.ToSpans(p.Text.Length, matches, invert, spans);
            Splitter.Apply(spans, behavior, ranges);
            return null;
        });
    }
}

/// <summary>pre_tokenizers/metaspace.rs: spaces → replacement, prepend per scheme, split MergedWithNext on it.</summary>
internal sealed class MetaspacePreTokenizer(char replacement, PrependScheme scheme, bool split) : PreTokenizer
{
    public char Replacement => replacement;
    public PrependScheme Scheme => scheme;

    public override void PreTokenize(List<Piece> pieces)
    {
        var spans = new List<(int S, int E, bool M)>();
        SplitAll(pieces, (p, ranges) =>
        {
            string text = p.Text.Replace(' ', replacement);
            bool prepend = scheme switch
            {
                PrependScheme.Always => !text.StartsWith(replacement),
                PrependScheme.First => !text.StartsWith(replacement) && p.AtOrigin,
                _ => false,
            };
            if (prepend) text = replacement + text;
            if (!split) return [p with { Text = text }];
            Splitter.CharSpans(text, cp => cp == replacement, spans);
            Splitter.Apply(spans, SplitDelimiterBehavior.MergedWithNext, ranges);
            var list = new List<Piece>(ranges.Count);
            foreach (var (s, e) in ranges) list.Add(new Piece(text.Substring(s, e - s), p.AtOrigin && s == 0));
            return list;
        });
    }
}

/// <summary>pre_tokenizers/digits.rs: Rust <c>char::is_numeric</c> = general categories Nd, Nl, No.</summary>
internal sealed class DigitsPreTokenizer(bool individualDigits) : PreTokenizer
{
    public override void PreTokenize(List<Piece> pieces)
    {
        var spans = new List<(int S, int E, bool M)>();
        SplitAll(pieces, (p, ranges) =>
        {
            Splitter.CharSpans(p.Text, IsNumeric, spans);
            Splitter.Apply(spans, individualDigits ? SplitDelimiterBehavior.Isolated : SplitDelimiterBehavior.Contiguous, ranges);
            return null;
        });
    }

    private static bool IsNumeric(int cp) => CharUnicodeInfo.GetUnicodeCategory(cp) is
        UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;
}
