using System.IO.Compression;
using System.Text.Json;

namespace MedVL.Text;

/// <summary>
/// A Hugging Face <c>tokenizer.json</c> tokenizer (BPE model: SentencePiece-style with byte fallback, or byte-level),
/// producing the same ids as HF <c>tokenizers</c>. Immutable and thread-safe after loading.
/// </summary>
/// <remarks>
/// Pipeline (HF tokenizer/mod.rs <c>encode_single_sequence</c>): split out added tokens → normalise → pre-tokenise →
/// BPE per pre-token → post-process (special tokens). Decoding maps ids to token strings (added tokens first) and runs
/// the decoder chain; without a decoder, tokens are joined with spaces.
/// </remarks>
public sealed class Tokenizer
{
    /// <summary>LLaVA's placeholder id for an image in <c>input_ids</c> (llava/constants.py <c>IMAGE_TOKEN_INDEX</c>).</summary>
    public const int ImageTokenIndex = -200;
    public const string ImageToken = "<image>";

    private readonly Normalizer? _normalizer;
    private readonly PreTokenizer? _preTokenizer;
    private readonly BpeModel _model;
    private readonly PostProcessor? _postProcessor;
    private readonly Decoder? _decoder;
    private readonly AddedVocabulary _addedVocabulary;
    private readonly Dictionary<string, int> _addedByContent = new(StringComparer.Ordinal);
    private readonly Dictionary<int, AddedToken> _addedById = new();
    // Decode form of each added token: its normalised content when normalized=true (added_vocabulary.rs simple_id_to_token).
    private readonly Dictionary<int, string> _addedDecodeForm = new();
    private readonly HashSet<string> _specialContents = new(StringComparer.Ordinal);

    /// <summary>The file or stream name the tokenizer was loaded from (used in error messages).</summary>
    public string SourceName { get; }
    public IReadOnlyList<AddedToken> AddedTokens { get; }
    public int? BosTokenId { get; private set; }
    public int? EosTokenId { get; private set; }
    public int? PadTokenId { get; private set; }
    public int? UnkTokenId { get; private set; }

    /// <summary>Model vocab plus added tokens that are not in it (HF <c>get_vocab_size(with_added_tokens: true)</c>).</summary>
    public int VocabSize { get; }

    private Tokenizer(string source, Normalizer? normalizer, PreTokenizer? preTokenizer, BpeModel model,
        PostProcessor? postProcessor, Decoder? decoder, List<AddedToken> added, SpecialTokenNames? names)
    {
        SourceName = source;
        _normalizer = normalizer;
        _preTokenizer = preTokenizer;
        _model = model;
        _postProcessor = postProcessor;
        _decoder = decoder;
        AddedTokens = added;
        foreach (var t in added)
        {
            _addedByContent[t.Content] = t.Id;
            _addedById[t.Id] = t;
            _addedDecodeForm[t.Id] = t.Normalized && normalizer != null && normalizer.Normalize(t.Content) is { Length: > 0 } n ? n : t.Content;
            if (t.Special) _specialContents.Add(t.Content);
        }
        _addedVocabulary = new AddedVocabulary(added, normalizer);
        int extra = 0;
        foreach (var t in added) if (model.TokenToId(t.Content) == null) extra++;
        VocabSize = model.VocabSize + extra;

        int? Lookup(string? token) => token != null ? TokenToId(token) : null;
        if (names != null)
        {
            // tokenizer_config.json is authoritative: a null entry means the model has no such token (Qwen: no BOS).
            UnkTokenId = Lookup(names.Unk);
            BosTokenId = Lookup(names.Bos);
            EosTokenId = Lookup(names.Eos);
            PadTokenId = Lookup(names.Pad);
        }
        else
        {
            // Without the config: BOS/EOS from the post-processor template, else well-known *special* added tokens.
            UnkTokenId = Lookup(model.UnkToken);
            BosTokenId = postProcessor?.LeadingSpecialId ?? FirstSpecial("<s>", "<|begin_of_text|>", "<|startoftext|>", "<bos>");
            EosTokenId = postProcessor?.TrailingSpecialId ?? FirstSpecial("</s>", "<|endoftext|>", "<|end_of_text|>", "<eos>");
            PadTokenId = FirstSpecial("<pad>", "<|pad|>", "[PAD]");
        }
    }

    private int? FirstSpecial(params string[] candidates)
    {
        foreach (var c in candidates)
            if (_addedByContent.TryGetValue(c, out int id) && _addedById[id].Special) return id;
        return null;
    }

    // ---------------------------------------------------------------- loading

    /// <summary>Loads a <c>tokenizer.json</c> (or <c>.json.gz</c>). The optional <paramref name="specialTokens"/> names BOS/EOS/PAD/UNK as <c>tokenizer_config.json</c> does.</summary>
    public static Tokenizer FromFile(string path, SpecialTokenNames? specialTokens = null, TokenizerLimits? limits = null)
    {
        limits ??= TokenizerLimits.Default;
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"Tokenizer file not found: {path}", path);
        if (info.Length > limits.MaxFileBytes) throw new TokenizerFormatException(path, "$", $"file of {info.Length} bytes exceeds the limit {limits.MaxFileBytes}");
        using var fs = File.OpenRead(path);
        return FromStream(fs, path, specialTokens, limits);
    }

    /// <summary>Loads from a stream; gzip is detected from the magic bytes.</summary>
    public static Tokenizer FromStream(Stream stream, string sourceName, SpecialTokenNames? specialTokens = null, TokenizerLimits? limits = null)
    {
        limits ??= TokenizerLimits.Default;
        var buffered = new BufferedStream(stream);
        Span<byte> magic = stackalloc byte[2];
        int got = 0;
        // Peek two bytes without consuming them: read into a MemoryStream prefix.
        var ms = new MemoryStream();
        got = buffered.Read(magic);
        ms.Write(magic[..got]);
        bool gz = got == 2 && magic[0] == 0x1F && magic[1] == 0x8B;
        Stream body = new ConcatStream(ms.ToArray(), buffered);
        if (gz) body = new GZipStream(body, CompressionMode.Decompress);
        var bytes = ReadBounded(body, limits.MaxFileBytes, sourceName);
        return FromJson(bytes, sourceName, specialTokens, limits);
    }

    private static byte[] ReadBounded(Stream s, long max, string source)
    {
        var ms = new MemoryStream();
        var buf = new byte[81920];
        int n;
        while ((n = s.Read(buf, 0, buf.Length)) > 0)
        {
            if (ms.Length + n > max) throw new TokenizerFormatException(source, "$", $"content exceeds the limit of {max} bytes");
            ms.Write(buf, 0, n);
        }
        return ms.ToArray();
    }

    /// <summary>Parses UTF-8 <c>tokenizer.json</c> content.</summary>
    public static Tokenizer FromJson(ReadOnlyMemory<byte> utf8Json, string sourceName, SpecialTokenNames? specialTokens = null, TokenizerLimits? limits = null)
    {
        limits ??= TokenizerLimits.Default;
        if (utf8Json.Length > limits.MaxFileBytes) throw new TokenizerFormatException(sourceName, "$", $"content of {utf8Json.Length} bytes exceeds the limit {limits.MaxFileBytes}");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(utf8Json, new JsonDocumentOptions { MaxDepth = 64 }); }
        catch (JsonException ex) { throw new TokenizerFormatException(sourceName, $"$ (line {ex.LineNumber + 1}, byte {ex.BytePositionInLine})", $"invalid JSON: {ex.Message}", ex); }
        using (doc)
        {
            var f = new JsonFields(sourceName);
            var root = f.Object(doc.RootElement, "$");
            var normalizer = Normalizer.Parse(f, f.Optional(root, "normalizer"), "$.normalizer");
            var pre = PreTokenizer.Parse(f, f.Optional(root, "pre_tokenizer"), "$.pre_tokenizer");
            var model = BpeModel.Parse(f, f.Required(root, "$", "model"), "$.model", limits);
            var post = PostProcessor.Parse(f, f.Optional(root, "post_processor"), "$.post_processor");
            var decoder = Decoder.Parse(f, f.Optional(root, "decoder"), "$.decoder");
            var added = new List<AddedToken>();
            if (f.Optional(root, "added_tokens") is { } at)
            {
                f.Array(at, "$.added_tokens", limits.MaxAddedTokens);
                int i = 0;
                foreach (var t in at.EnumerateArray())
                {
                    string p = $"$.added_tokens[{i++}]";
                    string content = f.RequiredString(t, p, "content", limits.MaxTokenLength);
                    int id = f.Int(f.Required(t, p, "id"), $"{p}.id", 0, limits.MaxId);
                    bool special = f.OptionalBool(t, p, "special", false);
                    // An added token already in the model vocab keeps the model's id (added_vocabulary.rs add_tokens).
                    if (model.TokenToId(content) is { } modelId) id = modelId;
                    added.Add(new AddedToken(id, content, f.OptionalBool(t, p, "single_word", false), f.OptionalBool(t, p, "lstrip", false),
                        f.OptionalBool(t, p, "rstrip", false), f.OptionalBool(t, p, "normalized", !special), special));
                }
            }
            return new Tokenizer(sourceName, normalizer, pre, model, post, decoder, added, specialTokens);
        }
    }

    /// <summary>The same tokenizer with BOS/EOS/PAD/UNK taken from <paramref name="names"/> (e.g. <c>tokenizer_config.json</c>); shares the vocab.</summary>
    public Tokenizer WithSpecialTokens(SpecialTokenNames names)
    {
        ArgumentNullException.ThrowIfNull(names);
        return new Tokenizer(SourceName, _normalizer, _preTokenizer, _model, _postProcessor, _decoder, [.. AddedTokens], names);
    }

    /// <summary>
    /// The same tokenizer with extra added tokens, ids assigned as HF <c>AddedVocabulary::add_tokens</c> does (a content
    /// already known keeps its id; new ones get max(added id) + 1, or the model vocab size if that is larger). This is how
    /// HealthGPT appends <c>&lt;start_index&gt;</c>, <c>&lt;idx_0&gt;</c>…<c>&lt;idx_8191&gt;</c>, <c>&lt;end_index&gt;</c>, <c>&lt;pixel_newline&gt;</c>.
    /// </summary>
    public Tokenizer WithAddedTokens(IEnumerable<string> contents, bool special = true)
    {
        ArgumentNullException.ThrowIfNull(contents);
        var list = new List<AddedToken>(AddedTokens);
        var known = new Dictionary<string, int>(_addedByContent, StringComparer.Ordinal);
        int maxAdded = list.Count == 0 ? -1 : list.Max(t => t.Id);
        int next = maxAdded >= _model.VocabSize ? maxAdded + 1 : _model.VocabSize;
        foreach (var c in contents)
        {
            if (string.IsNullOrEmpty(c)) continue;
            if (known.ContainsKey(c)) continue;
            int id = _model.TokenToId(c) ?? next++;
            known[c] = id;
            list.Add(new AddedToken(id, c, SingleWord: false, LStrip: false, RStrip: false, Normalized: !special, Special: special));
        }
        var t = new Tokenizer(SourceName, _normalizer, _preTokenizer, _model, _postProcessor, _decoder, list, null);
        return t.WithSpecialIdsFrom(this);
    }

    private Tokenizer WithSpecialIdsFrom(Tokenizer other)
    {
        BosTokenId = other.BosTokenId; EosTokenId = other.EosTokenId;
        PadTokenId = other.PadTokenId; UnkTokenId = other.UnkTokenId;
        return this;
    }

    /// <summary>
    /// Loads <c>tokenizer.json</c> from a Hugging Face model directory, with special-token names from
    /// <c>tokenizer_config.json</c> when that file exists.
    /// </summary>
    public static Tokenizer FromDirectory(string directory, TokenizerLimits? limits = null)
    {
        // tokenizer.json, or a gzipped copy (FromFile detects gzip by its magic bytes)
        string json = Path.Combine(directory, "tokenizer.json");
        if (!File.Exists(json) && File.Exists(json + ".gz")) json += ".gz";
        string config = Path.Combine(directory, "tokenizer_config.json");
        var names = File.Exists(config) ? SpecialTokenNames.FromTokenizerConfig(config) : null;
        return FromFile(json, names, limits);
    }

    // ---------------------------------------------------------------- lookups

    public int? TokenToId(string token) => _addedByContent.TryGetValue(token, out int id) ? id : _model.TokenToId(token);

    public string? IdToToken(int id) => _addedById.TryGetValue(id, out var t) ? t.Content : _model.IdToToken(id);

    public bool IsSpecialToken(int id) => _addedById.TryGetValue(id, out var t) && t.Special;

    // ---------------------------------------------------------------- encoding

    /// <summary>Encodes <paramref name="text"/>; with <paramref name="addSpecialTokens"/> the post-processor adds BOS/EOS.</summary>
    public int[] Encode(string text, bool addSpecialTokens = true)
    {
        var ids = new List<int>(text.Length / 3 + 4);
        EncodeInto(text, addSpecialTokens, ids);
        return ids.ToArray();
    }

    /// <summary>Encodes into <paramref name="destination"/>; returns the count. Throws if it is too small (see <see cref="TryEncode"/>).</summary>
    public int Encode(string text, Span<int> destination, bool addSpecialTokens = true)
    {
        if (!TryEncode(text, destination, out int written, addSpecialTokens))
            throw new ArgumentException($"destination holds {destination.Length} ids but the encoding needs {written}", nameof(destination));
        return written;
    }

    /// <summary>Encodes into <paramref name="destination"/>; false (with the required count in <paramref name="written"/>) if it does not fit.</summary>
    public bool TryEncode(string text, Span<int> destination, out int written, bool addSpecialTokens = true)
    {
        var ids = new List<int>(text.Length / 3 + 4);
        EncodeInto(text, addSpecialTokens, ids);
        written = ids.Count;
        if (ids.Count > destination.Length) return false;
        System.Runtime.InteropServices.CollectionsMarshal.AsSpan(ids).CopyTo(destination);
        return true;
    }

    private void EncodeInto(string text, bool addSpecialTokens, List<int> ids)
    {
        ArgumentNullException.ThrowIfNull(text);
        text = ReplaceLoneSurrogates(text);
        var raw = new List<AddedVocabulary.Segment>();
        _addedVocabulary.SplitRaw(text, raw);
        var pieces = new List<Piece>();
        var normSegs = new List<AddedVocabulary.Segment>();
        foreach (var seg in raw)
        {
            if (seg.TokenId >= 0) { ids.Add(seg.TokenId); continue; }
            string normalized = _normalizer != null ? _normalizer.Normalize(seg.Text) : seg.Text;
            normSegs.Clear();
            _addedVocabulary.SplitNormalized(normalized, seg.AtOrigin, normSegs);
            foreach (var ns in normSegs)
            {
                if (ns.TokenId >= 0) { ids.Add(ns.TokenId); continue; }
                pieces.Clear();
                pieces.Add(new Piece(ns.Text, ns.AtOrigin));
                _preTokenizer?.PreTokenize(pieces);
                foreach (var p in pieces) _model.Tokenize(p.Text, ids);
            }
        }
        if (addSpecialTokens) _postProcessor?.Process(ids);
    }

    /// <summary>HF only sees UTF-8, where an unpaired UTF-16 surrogate can only arrive as U+FFFD; make that explicit.</summary>
    private static string ReplaceLoneSurrogates(string text)
    {
        int i = 0;
        for (; i < text.Length; i++)
        {
            char c = text[i];
            if (!char.IsSurrogate(c)) continue;
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { i++; continue; }
            break;
        }
        if (i >= text.Length) return text;
        var chars = text.ToCharArray();
        for (int k = i; k < chars.Length; k++)
        {
            if (!char.IsSurrogate(chars[k])) continue;
            if (char.IsHighSurrogate(chars[k]) && k + 1 < chars.Length && char.IsLowSurrogate(chars[k + 1])) { k++; continue; }
            chars[k] = '\uFFFD';
        }
        return new string(chars);
    }

    // ---------------------------------------------------------------- decoding

    /// <summary>Decodes ids to text (HF <c>decode</c>); unknown ids are skipped.</summary>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false)
    {
        var tokens = new List<string>(ids.Length);
        foreach (int id in ids)
        {
            string? tok;
            if (!_addedDecodeForm.TryGetValue(id, out tok)) tok = _model.IdToToken(id);
            if (tok == null) continue;
            // HF tests the decode form against the special-token contents (tokenizer/mod.rs decode).
            if (skipSpecialTokens && _specialContents.Contains(tok)) continue;
            tokens.Add(tok);
        }
        if (_decoder == null) return string.Join(' ', tokens);
        _decoder.DecodeChain(tokens);
        return string.Concat(tokens);
    }

    /// <summary>A per-stream incremental decoder (one per generation; not thread-safe).</summary>
    public StreamingDecoder CreateStreamingDecoder(bool skipSpecialTokens = false) => new(this, skipSpecialTokens);

    // ---------------------------------------------------------------- LLaVA

    /// <summary>
    /// LLaVA's <c>tokenizer_image_token</c> (llava/mm_utils.py): the prompt is split on <c>&lt;image&gt;</c>, every chunk is
    /// encoded with special tokens, and <see cref="ImageTokenIndex"/> is placed between chunks. If the first chunk starts
    /// with BOS, one BOS is kept and the first id of every later chunk is dropped (it is that chunk's BOS).
    /// </summary>
    public int[] TokenizeWithImage(string prompt, int imageTokenIndex = ImageTokenIndex)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        var chunks = prompt.Split(ImageToken).Select(c => Encode(c, addSpecialTokens: true)).ToList();
        var result = new List<int>();
        int offset = 0;
        if (chunks.Count > 0 && chunks[0].Length > 0 && BosTokenId is { } bos && chunks[0][0] == bos)
        {
            offset = 1;
            result.Add(chunks[0][0]);
        }
        for (int i = 0; i < chunks.Count; i++)
        {
            if (i > 0)
            {
                // The separator is [image] * (offset + 1) and also loses its first `offset` entries: one image id remains.
                for (int k = offset; k < offset + 1; k++) result.Add(imageTokenIndex);
            }
            var c = chunks[i];
            for (int k = offset; k < c.Length; k++) result.Add(c[k]);
        }
        return result.ToArray();
    }
}

/// <summary>Names of special tokens as given by <c>tokenizer_config.json</c> (<c>bos_token</c>, <c>eos_token</c>, ...).</summary>
public sealed record SpecialTokenNames(string? Bos = null, string? Eos = null, string? Pad = null, string? Unk = null)
{
    /// <summary>Reads <c>bos_token</c>/<c>eos_token</c>/<c>pad_token</c>/<c>unk_token</c> (string or <c>{"content": ...}</c>) from a <c>tokenizer_config.json</c>.</summary>
    public static SpecialTokenNames FromTokenizerConfig(string path)
    {
        var info = new FileInfo(path);
        if (info.Length > 64L << 20) throw new TokenizerFormatException(path, "$", "tokenizer_config.json larger than 64 MiB");
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { MaxDepth = 64 });
        var f = new JsonFields(path);
        var root = f.Object(doc.RootElement, "$");
        string? Read(string name)
        {
            if (f.Optional(root, name) is not { } v) return null;
            if (v.ValueKind == JsonValueKind.String) return v.GetString();
            if (v.ValueKind == JsonValueKind.Object) return f.RequiredString(v, $"$.{name}", "content", 4096);
            throw f.Error($"$.{name}", $"expected a string or {{\"content\": ...}}, found {v.ValueKind}");
        }
        return new SpecialTokenNames(Read("bos_token"), Read("eos_token"), Read("pad_token"), Read("unk_token"));
    }
}

/// <summary>Reads a byte prefix, then the rest of an inner stream.</summary>
internal sealed class ConcatStream(byte[] prefix, Stream rest) : Stream
{
    private int _pos;
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count)
    {
        if (_pos < prefix.Length)
        {
            int n = Math.Min(count, prefix.Length - _pos);
            Array.Copy(prefix, _pos, buffer, offset, n);
            _pos += n;
            return n;
        }
        return rest.Read(buffer, offset, count);
    }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
