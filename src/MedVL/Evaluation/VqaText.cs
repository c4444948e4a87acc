using System.Text;
using System.Text.RegularExpressions;

namespace MedVL.Evaluation;

/// <summary>
/// The answer normalisation and word counting of Med-MoE's scorer (moellava/eval/eval_metrics/glossary.py
/// <c>normalize_word</c> and utils.py <c>split_sentence</c>, inherited from LLaVA-Med), reproduced with its quirks:
/// the punctuation test looks at the original string, and the period regex runs with count = re.UNICODE = 32.
/// </summary>
public static class VqaText
{
    // Order matters: each character is handled in turn against the progressively edited string.
    private static readonly string[] Punctuation =
        { ";", "/", "[", "]", "\"", "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!" };

    private static readonly string[] Articles = { "a", "an", "the" };

    // "(?!<=\d)" in the original is a lookahead for the literal "<=" (a mistyped lookbehind) and never matches before
    // a '.', so the pattern removes every period not followed by a digit.
    private static readonly Regex PeriodStrip = new(@"\.(?!\d)", RegexOptions.CultureInvariant);
    private static readonly Regex CommaStrip = new(@"\d,\d", RegexOptions.CultureInvariant);
    private const int PeriodStripCount = 32; // re.sub(p, "", s, re.UNICODE): the flag lands in the count argument

    private static readonly Dictionary<string, string> NumberWords = new()
    {
        ["none"] = "0", ["zero"] = "0", ["one"] = "1", ["two"] = "2", ["three"] = "3", ["four"] = "4",
        ["five"] = "5", ["six"] = "6", ["seven"] = "7", ["eight"] = "8", ["nine"] = "9", ["ten"] = "10",
    };

    /// <summary>VQA-style answer normalisation (glossary.py normalize_word).</summary>
    public static string NormalizeWord(string token)
    {
        string edited = token;
        bool hasDigitCommaDigit = CommaStrip.IsMatch(token);
        foreach (var p in Punctuation)
        {
            bool adjacentToSpace = token.Contains(p + " ", StringComparison.Ordinal) || token.Contains(" " + p, StringComparison.Ordinal);
            edited = edited.Replace(p, adjacentToSpace || hasDigitCommaDigit ? "" : " ", StringComparison.Ordinal);
        }
        string stripped = PeriodStrip.Replace(edited, "", PeriodStripCount);

        var words = new List<string>();
        foreach (var w in PythonSplit(PythonLower(stripped)))
        {
            string word = NumberWords.TryGetValue(w, out var n) ? n : w;
            if (Array.IndexOf(Articles, word) < 0) words.Add(word);
        }
        for (int i = 0; i < words.Count; i++)
            if (VqaContractions.Map.TryGetValue(words[i], out var c)) words[i] = c;
        return string.Join(' ', words).Replace(",", "", StringComparison.Ordinal);
    }

    /// <summary>n-gram counts of a sentence after lower-casing and whitespace splitting (utils.py split_sentence).</summary>
    public static Dictionary<string, int> SplitSentence(string sentence, int n)
    {
        var tokens = PythonSplit(PythonLower(sentence));
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i + n <= tokens.Count; i++)
        {
            string gram = n == 1 ? tokens[i] : string.Join(' ', tokens.GetRange(i, n));
            if (gram.Length > 0) counts[gram] = counts.GetValueOrDefault(gram) + 1;
        }
        return counts;
    }

    /// <summary>Python's str.split() with no argument: runs of Unicode whitespace separate, no empty tokens.</summary>
    public static List<string> PythonSplit(string s)
    {
        var result = new List<string>();
        int i = 0;
        while (i < s.Length)
        {
            while (i < s.Length && IsPythonWhitespace(s[i])) i++;
            int start = i;
            while (i < s.Length && !IsPythonWhitespace(s[i])) i++;
            if (i > start) result.Add(s.Substring(start, i - start));
        }
        return result;
    }

    /// <summary>str.isspace() for one UTF-16 unit: Unicode White_Space plus the ASCII separators \x1c-\x1f.</summary>
    public static bool IsPythonWhitespace(char c) =>
        char.IsWhiteSpace(c) || (c >= '\x1c' && c <= '\x1f');

    /// <summary>Python's str.lower() (full Unicode lower-casing; the one multi-char mapping, U+0130, handled explicitly).</summary>
    public static string PythonLower(string s)
    {
        if (s.IndexOf('\u0130') < 0) return s.ToLowerInvariant();
        var sb = new StringBuilder(s.Length + 4);
        foreach (char c in s)
        {
            if (c == '\u0130') sb.Append("i\u0307");
            else sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }
}
