using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace MedVL.Text;

/// <summary>How a split keeps the matched delimiters (HF <c>SplitDelimiterBehavior</c>, tokenizers/src/tokenizer/normalizer.rs).</summary>
public enum SplitDelimiterBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

/// <summary>
/// A regex as used by HF's <c>Split</c>/<c>Replace</c>/<c>ByteLevel</c>, evaluated so that results match Oniguruma on UTF-8.
/// </summary>
/// <remarks>
/// .NET regexes run over UTF-16 code units, so a supplementary-plane character (CJK Ext-B, math letters, emoji) is two
/// surrogates that match neither <c>\p{L}</c> nor <c>\p{N}</c>, and <c>\p{N}{1,3}</c> counts units, not code points.
/// Oniguruma works on code points. We therefore match against a projection of the input in which every supplementary
/// code point is replaced by one BMP character of the same Unicode general category, and map the offsets back. The
/// tokenizer regexes only test categories, whitespace and ASCII literals, so the projection preserves every match.
/// </remarks>
internal sealed class RegexPattern
{
    private readonly Regex _regex;
    public string Source { get; }

    public RegexPattern(string pattern, bool isLiteral)
    {
        Source = pattern;
        _regex = new Regex(isLiteral ? Regex.Escape(pattern) : pattern,
            RegexOptions.CultureInvariant | RegexOptions.Compiled, TimeSpan.FromSeconds(10));
    }

    /// <summary>Matches as (start, length) in UTF-16 indices of <paramref name="input"/>, non-overlapping, left to right.</summary>
    public void FindMatches(string input, List<(int Start, int Length)> matches)
    {
        matches.Clear();
        if (input.Length == 0) return;
        if (!ContainsSurrogate(input))
        {
            for (var m = _regex.Match(input); m.Success; m = m.NextMatch())
                if (m.Length > 0) matches.Add((m.Index, m.Length));
            return;
        }
        // Project: one char per code point; map[i] = original index of projected char i (map[n] = input.Length).
        var projected = new StringBuilder(input.Length);
        var map = new List<int>(input.Length + 1);
        for (int i = 0; i < input.Length;)
        {
            map.Add(i);
            if (char.IsHighSurrogate(input[i]) && i + 1 < input.Length && char.IsLowSurrogate(input[i + 1]))
            {
                projected.Append(Representative(char.ConvertToUtf32(input[i], input[i + 1])));
                i += 2;
            }
            else { projected.Append(input[i]); i++; }
        }
        map.Add(input.Length);
        string p = projected.ToString();
        for (var m = _regex.Match(p); m.Success; m = m.NextMatch())
        {
            if (m.Length == 0) continue;
            int s = map[m.Index], e = map[m.Index + m.Length];
            matches.Add((s, e - s));
        }
    }

    public string Replace(string input, string replacement)
    {
        if (input.Length == 0) return input;
        var matches = new List<(int, int)>();
        FindMatches(input, matches);
        if (matches.Count == 0) return input;
        var sb = new StringBuilder(input.Length);
        int prev = 0;
        foreach (var (s, l) in matches) { sb.Append(input, prev, s - prev).Append(replacement); prev = s + l; }
        return sb.Append(input, prev, input.Length - prev).ToString();
    }

    private static bool ContainsSurrogate(string s)
    {
        foreach (char c in s) if (char.IsSurrogate(c)) return true;
        return false;
    }

    /// <summary>A BMP character with the same general category as the supplementary code point <paramref name="cp"/>.</summary>
    private static char Representative(int cp) => CharUnicodeInfo.GetUnicodeCategory(cp) switch
    {
        UnicodeCategory.UppercaseLetter => '\u0100',
        UnicodeCategory.LowercaseLetter => '\u0101',
        UnicodeCategory.TitlecaseLetter => '\u01C5',
        UnicodeCategory.ModifierLetter => '\u02B0',
        UnicodeCategory.OtherLetter => '\u00AA',
        UnicodeCategory.NonSpacingMark => '\u0300',
        UnicodeCategory.SpacingCombiningMark => '\u0903',
        UnicodeCategory.EnclosingMark => '\u0488',
        UnicodeCategory.DecimalDigitNumber => '\u0660',
        UnicodeCategory.LetterNumber => '\u2160',
        UnicodeCategory.OtherNumber => '\u00B2',
        UnicodeCategory.Format => '\u00AD',
        UnicodeCategory.PrivateUse => '\uE000',
        UnicodeCategory.ConnectorPunctuation => '\u203F',
        UnicodeCategory.DashPunctuation => '\u2010',
        UnicodeCategory.OpenPunctuation => '\u2045',
        UnicodeCategory.ClosePunctuation => '\u2046',
        UnicodeCategory.InitialQuotePunctuation => '\u00AB',
        UnicodeCategory.FinalQuotePunctuation => '\u00BB',
        UnicodeCategory.OtherPunctuation => '\u00A7',
        UnicodeCategory.MathSymbol => '\u00AC',
        UnicodeCategory.CurrencySymbol => '\u00A2',
        UnicodeCategory.ModifierSymbol => '\u00B4',
        UnicodeCategory.OtherSymbol => '\u00A6',
        _ => '\u0378', // unassigned
    };
}

/// <summary>Splitting of one piece by a set of (match, isMatch) spans, following HF's <c>NormalizedString::split</c>.</summary>
internal static class Splitter
{
    /// <summary>
    /// Turns the matches of a pattern into the covering list of (start, end, isMatch) spans (HF <c>Pattern::find_matches</c>).
    /// </summary>
    public static void ToSpans(int length, List<(int Start, int Length)> matches, bool invert, List<(int S, int E, bool M)> spans)
    {
        spans.Clear();
        if (length == 0) { spans.Add((0, 0, invert)); return; }
        int prev = 0;
        foreach (var (s, l) in matches)
        {
            if (prev != s) spans.Add((prev, s, invert));
            spans.Add((s, s + l, !invert));
            prev = s + l;
        }
        if (prev != length) spans.Add((prev, length, invert));
    }

    /// <summary>Applies a <see cref="SplitDelimiterBehavior"/>; returns the kept (start, end) ranges.</summary>
    public static void Apply(List<(int S, int E, bool M)> spans, SplitDelimiterBehavior behavior, List<(int S, int E)> result)
    {
        result.Clear();
        switch (behavior)
        {
            case SplitDelimiterBehavior.Isolated:
                foreach (var sp in spans) result.Add((sp.S, sp.E));
                break;
            case SplitDelimiterBehavior.Removed:
                foreach (var sp in spans) if (!sp.M) result.Add((sp.S, sp.E));
                break;
            case SplitDelimiterBehavior.Contiguous:
            {
                bool previous = false;
                foreach (var sp in spans)
                {
                    if (sp.M == previous && result.Count > 0) result[^1] = (result[^1].S, sp.E);
                    else result.Add((sp.S, sp.E));
                    previous = sp.M;
                }
                break;
            }
            case SplitDelimiterBehavior.MergedWithPrevious:
            {
                bool previous = false;
                foreach (var sp in spans)
                {
                    if (sp.M && !previous && result.Count > 0) result[^1] = (result[^1].S, sp.E);
                    else result.Add((sp.S, sp.E));
                    previous = sp.M;
                }
                break;
            }
            case SplitDelimiterBehavior.MergedWithNext:
            {
                bool previous = false;
                for (int i = spans.Count - 1; i >= 0; i--)
                {
                    var sp = spans[i];
                    if (sp.M && !previous && result.Count > 0) result[^1] = (sp.S, result[^1].E);
                    else result.Add((sp.S, sp.E));
                    previous = sp.M;
                }
                result.Reverse();
                break;
            }
        }
    }

    /// <summary>Spans for a per-code-point predicate (HF <c>impl Pattern for Fn(char) -> bool</c>).</summary>
    public static void CharSpans(string s, Func<int, bool> predicate, List<(int S, int E, bool M)> spans)
    {
        spans.Clear();
        if (s.Length == 0) { spans.Add((0, 0, false)); return; }
        int lastOffset = 0, i = 0;
        while (i < s.Length)
        {
            int cp; int len;
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { cp = char.ConvertToUtf32(s[i], s[i + 1]); len = 2; }
            else { cp = s[i]; len = 1; }
            if (predicate(cp))
            {
                if (lastOffset < i) spans.Add((lastOffset, i, false));
                spans.Add((i, i + len, true));
                lastOffset = i + len;
            }
            i += len;
        }
        if (s.Length > lastOffset) spans.Add((lastOffset, s.Length, false));
    }
}
