using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;

namespace MedVL.Text;

/// <summary>
/// Byte-pair-encoding model (HF tokenizers/src/models/bpe/model.rs + word.rs): the pre-token is split into code points,
/// unknown ones become <c>&lt;0xXX&gt;</c> byte tokens (byte_fallback) or the unk token (optionally fused), then
/// adjacent pairs merge lowest rank first, leftmost first on ties.
/// </summary>
internal sealed class BpeModel
{
    private const int MaxCachedLength = 256;   // HF MAX_LENGTH for cached words
    private const int CacheCapacity = 10_000;  // HF DEFAULT_CACHE_CAPACITY

    private readonly Dictionary<string, int> _vocab;
    private readonly string?[] _vocabR;
    private readonly Dictionary<long, (int Rank, int NewId)> _merges;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private int _cacheCount; // ConcurrentDictionary.Count takes every lock; keep our own approximate count
    private readonly int[] _byteTokenIds; // id of "<0xXX>" per byte, -1 if absent

    public string? UnkToken { get; }
    public string? ContinuingSubwordPrefix { get; }
    public string? EndOfWordSuffix { get; }
    public bool FuseUnk { get; }
    public bool ByteFallback { get; }
    public bool IgnoreMerges { get; }
    public int VocabSize => _vocab.Count;
    public IReadOnlyDictionary<string, int> Vocab => _vocab;

    private BpeModel(Dictionary<string, int> vocab, List<(string A, string B)> merges, string? unk, string? prefix,
        string? suffix, bool fuseUnk, bool byteFallback, bool ignoreMerges, JsonFields f, string path)
    {
        _vocab = vocab;
        UnkToken = unk;
        ContinuingSubwordPrefix = prefix;
        EndOfWordSuffix = suffix;
        FuseUnk = fuseUnk;
        ByteFallback = byteFallback;
        IgnoreMerges = ignoreMerges;
        int maxId = -1;
        foreach (var id in vocab.Values) maxId = Math.Max(maxId, id);
        _vocabR = new string?[maxId + 1];
        foreach (var (k, v) in vocab) _vocabR[v] = k;
        _byteTokenIds = new int[256];
        for (int b = 0; b < 256; b++) _byteTokenIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out int id) ? id : -1;

        int prefixLen = prefix?.Length ?? 0;
        _merges = new Dictionary<long, (int, int)>(merges.Count);
        for (int i = 0; i < merges.Count; i++)
        {
            var (a, b) = merges[i];
            if (!vocab.TryGetValue(a, out int aId)) throw f.Error($"{path}.merges[{i}]", $"merge token \"{a}\" is not in the vocab");
            if (!vocab.TryGetValue(b, out int bId)) throw f.Error($"{path}.merges[{i}]", $"merge token \"{b}\" is not in the vocab");
            if (b.Length < prefixLen) throw f.Error($"{path}.merges[{i}]", $"merge token \"{b}\" is shorter than continuing_subword_prefix");
            string merged = a + b[prefixLen..];
            if (!vocab.TryGetValue(merged, out int newId)) throw f.Error($"{path}.merges[{i}]", $"merged token \"{merged}\" is not in the vocab");
            _merges[Key(aId, bId)] = (i, newId); // later duplicates overwrite, like HF's collect into a HashMap
        }
        if (unk != null && !vocab.ContainsKey(unk)) { /* HF only fails when unk is needed; we check lazily too */ }
    }

    private static long Key(int a, int b) => ((long)a << 32) | (uint)b;

    public int? TokenToId(string token) => _vocab.TryGetValue(token, out int id) ? id : null;
    public string? IdToToken(int id) => (uint)id < (uint)_vocabR.Length ? _vocabR[id] : null;

    public static BpeModel Parse(JsonFields f, JsonElement e, string path, TokenizerLimits limits)
    {
        string type = f.OptionalString(e, path, "type", 32) ?? "BPE";
        if (type != "BPE")
            throw f.Error($"{path}.type", $"unsupported model \"{type}\" (only BPE is implemented; Unigram/WordPiece are not)");
        if (f.Optional(e, "dropout") is { } d && d.ValueKind == JsonValueKind.Number && d.GetDouble() != 0)
            throw f.Error($"{path}.dropout", "BPE dropout is a training-time feature and is not supported for inference");

        var vocabEl = f.Required(e, path, "vocab");
        if (vocabEl.ValueKind != JsonValueKind.Object) throw f.Error($"{path}.vocab", $"expected an object {{token: id}}, found {vocabEl.ValueKind}");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var prop in vocabEl.EnumerateObject())
        {
            if (vocab.Count >= limits.MaxVocab) throw f.Error($"{path}.vocab", $"more than {limits.MaxVocab} entries");
            if (prop.Name.Length > limits.MaxTokenLength) throw f.Error($"{path}.vocab", $"token of length {prop.Name.Length} exceeds {limits.MaxTokenLength}");
            // Fast path without building the JSON path string; fall back to the checked accessor for the error message.
            if (prop.Value.ValueKind == JsonValueKind.Number && prop.Value.TryGetInt32(out int vid) && vid >= 0 && vid <= limits.MaxId) vocab[prop.Name] = vid;
            else f.Int(prop.Value, $"{path}.vocab[\"{JsonFields.Truncate(prop.Name)}\"]", 0, limits.MaxId);
        }

        var merges = new List<(string, string)>();
        if (f.Optional(e, "merges") is { } mEl)
        {
            f.Array(mEl, $"{path}.merges", limits.MaxMerges);
            int i = 0;
            foreach (var m in mEl.EnumerateArray())
            {
                if (m.ValueKind == JsonValueKind.String)
                {
                    // Legacy "a b" form: exactly two parts separated by one space (models/bpe/model.rs convert_merges_to_hashmap).
                    string s = m.GetString()!;
                    int sp = s.IndexOf(' ');
                    if (sp < 0 || s.IndexOf(' ', sp + 1) >= 0) throw f.Error($"{path}.merges[{i}]", $"expected \"a b\" with exactly one space, found \"{JsonFields.Truncate(s)}\"");
                    merges.Add((s[..sp], s[(sp + 1)..]));
                }
                else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2 && m[0].ValueKind == JsonValueKind.String && m[1].ValueKind == JsonValueKind.String)
                {
                    string a = m[0].GetString()!, b = m[1].GetString()!;
                    if (a.Length > limits.MaxTokenLength || b.Length > limits.MaxTokenLength)
                        throw f.Error($"{path}.merges[{i}]", $"token longer than {limits.MaxTokenLength}");
                    merges.Add((a, b));
                }
                else throw f.Error($"{path}.merges[{i}]", $"expected \"a b\" or [\"a\", \"b\"], found {JsonFields.Truncate(m.GetRawText())}");
                i++;
            }
        }
        string? unk = f.OptionalString(e, path, "unk_token", limits.MaxTokenLength);
        string? prefix = f.OptionalString(e, path, "continuing_subword_prefix", 64);
        string? suffix = f.OptionalString(e, path, "end_of_word_suffix", 64);
        // HF serialises "no prefix" as "" in some files; an empty affix is a no-op either way.
        if (prefix?.Length == 0) prefix = null;
        if (suffix?.Length == 0) suffix = null;
        return new BpeModel(vocab, merges, unk, prefix, suffix, f.OptionalBool(e, path, "fuse_unk", false),
            f.OptionalBool(e, path, "byte_fallback", false), f.OptionalBool(e, path, "ignore_merges", false), f, path);
    }

    /// <summary>Appends the ids of one pre-token.</summary>
    public void Tokenize(string sequence, List<int> output)
    {
        if (sequence.Length == 0) return;
        if (IgnoreMerges && _vocab.TryGetValue(sequence, out int whole)) { output.Add(whole); return; }
        if (_cache.TryGetValue(sequence, out var cached)) { output.AddRange(cached); return; }
        var ids = MergeWord(sequence);
        if (sequence.Length < MaxCachedLength && Volatile.Read(ref _cacheCount) < CacheCapacity && _cache.TryAdd(sequence, ids))
            Interlocked.Increment(ref _cacheCount);
        output.AddRange(ids);
    }

    private struct Symbol
    {
        public int Id, Prev, Next;
        public bool Removed;
    }

    private int[] MergeWord(string w)
    {
        var symbols = new List<Symbol>(w.Length);
        int unkId = -1; bool haveUnk = false;
        void Add(int id) => symbols.Add(new Symbol { Id = id, Prev = symbols.Count - 1, Next = symbols.Count + 1 });

        int i = 0;
        Span<byte> utf8 = stackalloc byte[256];
        while (i < w.Length)
        {
            int len = char.IsHighSurrogate(w[i]) && i + 1 < w.Length && char.IsLowSurrogate(w[i + 1]) ? 2 : 1;
            bool isFirst = i == 0, isLast = i + len >= w.Length;
            string s = w.Substring(i, len);
            i += len;
            if (!isFirst && ContinuingSubwordPrefix != null) s = ContinuingSubwordPrefix + s;
            if (isLast && EndOfWordSuffix != null) s += EndOfWordSuffix;

            if (_vocab.TryGetValue(s, out int id))
            {
                if (haveUnk) { Add(unkId); haveUnk = false; }
                Add(id);
                continue;
            }
            if (ByteFallback)
            {
                int n = Encoding.UTF8.GetByteCount(s);
                Span<byte> bytes = n <= utf8.Length ? utf8[..n] : new byte[n];
                Encoding.UTF8.GetBytes(s, bytes);
                bool all = true;
                foreach (byte b in bytes) if (_byteTokenIds[b] < 0) { all = false; break; }
                if (all)
                {
                    // HF pushes these without flushing a pending unk first (model.rs merge_word).
                    foreach (byte b in bytes) Add(_byteTokenIds[b]);
                    continue;
                }
            }
            if (UnkToken != null)
            {
                if (!_vocab.TryGetValue(UnkToken, out int u))
                    throw new InvalidOperationException($"BPE unk_token \"{UnkToken}\" is not in the vocab");
                if (haveUnk && !FuseUnk) Add(unkId);
                if (!(haveUnk && FuseUnk)) { unkId = u; haveUnk = true; }
            }
        }
        if (haveUnk) Add(unkId);
        if (symbols.Count == 0) return [];
        var sym = symbols.ToArray();
        sym[^1].Next = -1;

        var queue = new PriorityQueue<(int Pos, int NewId), long>();
        for (int p = 0; p + 1 < sym.Length; p++)
            if (_merges.TryGetValue(Key(sym[p].Id, sym[p + 1].Id), out var m)) queue.Enqueue((p, m.NewId), Prio(m.Rank, p));

        while (queue.TryDequeue(out var top, out _))
        {
            ref var cur = ref sym[top.Pos];
            if (cur.Removed || cur.Next == -1) continue;
            int nextPos = cur.Next;
            if (!_merges.TryGetValue(Key(cur.Id, sym[nextPos].Id), out var mm) || mm.NewId != top.NewId) continue;
            cur.Id = top.NewId;
            cur.Next = sym[nextPos].Next;
            sym[nextPos].Removed = true;
            if (cur.Next >= 0) sym[cur.Next].Prev = top.Pos;
            if (cur.Prev >= 0 && _merges.TryGetValue(Key(sym[cur.Prev].Id, cur.Id), out var pm))
                queue.Enqueue((cur.Prev, pm.NewId), Prio(pm.Rank, cur.Prev));
            if (cur.Next >= 0 && _merges.TryGetValue(Key(cur.Id, sym[cur.Next].Id), out var nm))
                queue.Enqueue((top.Pos, nm.NewId), Prio(nm.Rank, top.Pos));
        }
        var result = new List<int>(sym.Length);
        foreach (var s in sym) if (!s.Removed) result.Add(s.Id);
        return result.ToArray();
    }

    private static long Prio(int rank, int pos) => ((long)rank << 32) | (uint)pos;
}

/// <summary>Bounds applied while loading untrusted tokenizer files.</summary>
public sealed record TokenizerLimits
{
    public long MaxFileBytes { get; init; } = 256L << 20;
    public int MaxVocab { get; init; } = 4_000_000;
    public int MaxMerges { get; init; } = 4_000_000;
    public int MaxAddedTokens { get; init; } = 1_000_000;
    public int MaxTokenLength { get; init; } = 4096;
    public int MaxId { get; init; } = 16_000_000;
    public static TokenizerLimits Default { get; } = new();
}
