namespace MedVL.Text;

/// <summary>
/// Incremental detokeniser for generation: <see cref="Step"/> returns only new, complete text, holding back output that
/// currently ends in U+FFFD (an incomplete UTF-8 sequence split across byte tokens). Same algorithm as HF
/// <c>DecodeStream::step</c> (tokenizer/mod.rs): decode a short window of ids with and without the new one and emit the
/// difference, so decoders with context (Strip, Metaspace, ByteLevel) behave as in a full decode.
/// One instance per stream; not thread-safe.
/// </summary>
public sealed class StreamingDecoder
{
    private readonly Tokenizer _tokenizer;
    private readonly bool _skipSpecialTokens;
    private readonly List<int> _ids = new();
    private string _prefix = "";
    private int _prefixIndex;

    internal StreamingDecoder(Tokenizer tokenizer, bool skipSpecialTokens)
    {
        _tokenizer = tokenizer;
        _skipSpecialTokens = skipSpecialTokens;
    }

    private string DecodeIds() => _tokenizer.Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ids), _skipSpecialTokens);

    /// <summary>Feeds one id; returns the newly completed text, or null when nothing can be emitted yet.</summary>
    public string? Step(int id)
    {
        if (_prefix.Length == 0 && _ids.Count > 0)
        {
            string p = DecodeIds();
            if (!p.EndsWith('\uFFFD')) { _prefix = p; _prefixIndex = _ids.Count; }
        }
        _ids.Add(id);
        string s = DecodeIds();
        if (s.Length > _prefix.Length && !s.EndsWith('\uFFFD'))
        {
            if (!s.StartsWith(_prefix, StringComparison.Ordinal))
                throw new InvalidOperationException($"streaming decode: text \"{s}\" does not extend the previous prefix \"{_prefix}\" (token {id})");
            string text = s[_prefix.Length..];
            int newPrefixIndex = _ids.Count - _prefixIndex;
            _ids.RemoveRange(0, _prefixIndex);
            _prefix = DecodeIds();
            _prefixIndex = newPrefixIndex;
            return text;
        }
        return null;
    }

    /// <summary>Returns whatever is still held back (possibly ending in U+FFFD) and resets the stream.</summary>
    public string Flush()
    {
        string s = _ids.Count == 0 ? "" : DecodeIds();
        string rest = s.StartsWith(_prefix, StringComparison.Ordinal) ? s[_prefix.Length..] : s;
        _ids.Clear();
        _prefix = "";
        _prefixIndex = 0;
        return rest;
    }
}
