using System.Globalization;

namespace MedVL.Text;

/// <summary>An entry of <c>tokenizer.json</c> <c>added_tokens</c> (HF tokenizer/added_vocabulary.rs <c>AddedToken</c>).</summary>
public sealed record AddedToken(int Id, string Content, bool SingleWord, bool LStrip, bool RStrip, bool Normalized, bool Special);

/// <summary>
/// Splits added tokens out of the text before the model sees it, as HF <c>AddedVocabulary::extract_and_normalize</c>:
/// tokens with <c>normalized=false</c> are matched on the raw text, the remaining pieces are normalised, then tokens with
/// <c>normalized=true</c> are matched on the normalised pieces. Matching is leftmost-longest.
/// </summary>
internal sealed class AddedVocabulary
{
    private sealed class TrieNode
    {
        public Dictionary<char, TrieNode>? Children;
        public int TokenIndex = -1;
    }

    private readonly AddedToken[] _tokens;
    private readonly TrieNode? _rawTrie, _normalizedTrie;

    public AddedVocabulary(IReadOnlyList<AddedToken> tokens, Normalizer? normalizer)
    {
        _tokens = tokens.ToArray();
        for (int i = 0; i < _tokens.Length; i++)
        {
            var t = _tokens[i];
            if (t.Content.Length == 0) continue;
            // Normalised tokens are matched in their normalised form (added_vocabulary.rs refresh_normalized_tokens).
            string pattern = t.Normalized && normalizer != null ? normalizer.Normalize(t.Content) : t.Content;
            if (pattern.Length == 0) continue;
            ref var root = ref (t.Normalized ? ref _normalizedTrie : ref _rawTrie);
            root ??= new TrieNode();
            var node = root;
            foreach (char c in pattern)
            {
                node.Children ??= new Dictionary<char, TrieNode>();
                if (!node.Children.TryGetValue(c, out var next)) node.Children[c] = next = new TrieNode();
                node = next;
            }
            // Several entries with one content: HF's map keeps one id per content; the last one wins.
            node.TokenIndex = i;
        }
    }

    public bool HasNormalizedTokens => _normalizedTrie != null;
    public bool HasRawTokens => _rawTrie != null;

    /// <summary>A piece of input: either literal text (<see cref="TokenId"/> = -1) or an added token.</summary>
    public readonly record struct Segment(string Text, int TokenId, bool AtOrigin);

    public void SplitRaw(string text, List<Segment> output) => Split(text, _rawTrie, true, output);

    public void SplitNormalized(string text, bool atOrigin, List<Segment> output) => Split(text, _normalizedTrie, atOrigin, output);

    private void Split(string sentence, TrieNode? trie, bool atOrigin, List<Segment> output)
    {
        if (sentence.Length == 0) return;
        if (trie == null) { output.Add(new Segment(sentence, -1, atOrigin)); return; }
        int startOffset = 0;
        int pos = 0;
        while (pos < sentence.Length)
        {
            // Leftmost-longest: the longest token starting at the first position where any token starts.
            int bestLen = 0, bestIndex = -1;
            var node = trie;
            for (int k = pos; k < sentence.Length; k++)
            {
                if (node.Children == null || !node.Children.TryGetValue(sentence[k], out node)) break;
                if (node.TokenIndex >= 0) { bestLen = k - pos + 1; bestIndex = node.TokenIndex; }
            }
            if (bestIndex < 0) { pos++; continue; }
            int start = pos, stop = pos + bestLen;
            pos = stop; // the automaton resumes after the raw match, even if rstrip consumed more (find_matches)
            var tok = _tokens[bestIndex];
            if (tok.SingleWord)
            {
                bool startSpace = start == 0 || !EndsWithWord(sentence, start);
                bool stopSpace = stop == sentence.Length || !StartsWithWord(sentence, stop);
                if (!startSpace || !stopSpace) continue;
            }
            if (tok.LStrip)
            {
                int newStart = start;
                while (newStart > 0 && IsWhiteSpaceBefore(sentence, newStart, out int w)) newStart -= w;
                start = Math.Max(newStart, startOffset);
            }
            if (tok.RStrip)
            {
                while (stop < sentence.Length && IsWhiteSpaceAt(sentence, stop, out int w)) stop += w;
            }
            if (startOffset < start) output.Add(new Segment(sentence[startOffset..start], -1, atOrigin && startOffset == 0));
            output.Add(new Segment(sentence[start..stop], tok.Id, atOrigin && start == 0));
            startOffset = stop;
            if (pos < stop) pos = stop;
        }
        if (startOffset != sentence.Length) output.Add(new Segment(sentence[startOffset..], -1, atOrigin && startOffset == 0));
    }

    private static int CodePointBefore(string s, int index, out int width)
    {
        if (index >= 2 && char.IsLowSurrogate(s[index - 1]) && char.IsHighSurrogate(s[index - 2]))
        { width = 2; return char.ConvertToUtf32(s[index - 2], s[index - 1]); }
        width = 1; return s[index - 1];
    }

    private static int CodePointAt(string s, int index, out int width)
    {
        if (char.IsHighSurrogate(s[index]) && index + 1 < s.Length && char.IsLowSurrogate(s[index + 1]))
        { width = 2; return char.ConvertToUtf32(s[index], s[index + 1]); }
        width = 1; return s[index];
    }

    private static bool IsWhiteSpaceBefore(string s, int index, out int width) => IsWhiteSpace(CodePointBefore(s, index, out width));
    private static bool IsWhiteSpaceAt(string s, int index, out int width) => IsWhiteSpace(CodePointAt(s, index, out width));

    // Rust regex `\s` = Unicode White_Space; all of it is in the BMP and matches char.IsWhiteSpace.
    private static bool IsWhiteSpace(int cp) => cp < 0x10000 && char.IsWhiteSpace((char)cp);

    private static bool EndsWithWord(string s, int end) => IsWordChar(CodePointBefore(s, end, out _));
    private static bool StartsWithWord(string s, int start) => IsWordChar(CodePointAt(s, start, out _));

    /// <summary>Rust regex <c>\w</c>: Alphabetic, marks, decimal numbers, connector punctuation, join controls.</summary>
    private static bool IsWordChar(int cp)
    {
        if (cp is 0x200C or 0x200D) return true;
        return CharUnicodeInfo.GetUnicodeCategory(cp) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter or UnicodeCategory.LetterNumber
                or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
                or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.ConnectorPunctuation => true,
            _ => false,
        };
    }
}
