namespace MedVL.Models.Blocks;

/// <summary>
/// Keys and values of the tokens seen so far, one pair of [B, Hkv, capacity, D] float32 buffers per layer (HF's
/// DynamicCache, after RoPE). One cache per request: nothing is shared between caches, so two requests can run on one
/// model at the same time. Capacity doubles when full (amortised O(1) per token).
/// </summary>
public sealed class KvCache : IDisposable
{
    private readonly Tensor?[] _keys, _values;
    private int _capacity;
    private bool _disposed;

    public KvCache(int layers, int batch, int kvHeads, int headDim, int initialCapacity = 64)
    {
        if (layers <= 0 || batch <= 0 || kvHeads <= 0 || headDim <= 0)
            throw new ArgumentException($"KV cache: layers {layers}, batch {batch}, kv heads {kvHeads}, head dim {headDim} must be positive");
        Layers = layers; Batch = batch; KvHeads = kvHeads; HeadDim = headDim;
        _keys = new Tensor?[layers];
        _values = new Tensor?[layers];
        _capacity = Math.Max(1, initialCapacity);
    }

    public int Layers { get; }
    public int Batch { get; }
    public int KvHeads { get; }
    public int HeadDim { get; }
    /// <summary>Tokens cached in every layer (the position of the next token).</summary>
    public int Length { get; private set; }

    /// <summary>
    /// Stores the new keys/values [B, Hkv, T, D] of <paramref name="layer"/> at positions Length..Length+T−1 and returns
    /// views [B, Hkv, Length+T, D] of everything cached for that layer (owned by the caller: dispose them).
    /// </summary>
    public (Tensor Keys, Tensor Values) Append(int layer, Tensor k, Tensor v)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if ((uint)layer >= (uint)Layers) throw new ArgumentOutOfRangeException(nameof(layer), layer, $"cache has {Layers} layers");
        if (k.Rank != 4 || k.Size(0) != Batch || k.Size(1) != KvHeads || k.Size(3) != HeadDim || !k.Shape.SequenceEqual(v.Shape))
            throw new ArgumentException($"KV cache: keys {k.Describe()} / values {v.Describe()} must be [B={Batch}, Hkv={KvHeads}, T, D={HeadDim}]");
        int t = k.Size(2), end = Length + t;
        if (end > _capacity) Grow(Math.Max(end, _capacity * 2));
        _keys[layer] ??= Tensor.Zeros(Batch, KvHeads, _capacity, HeadDim);
        _values[layer] ??= Tensor.Zeros(Batch, KvHeads, _capacity, HeadDim);
        using (var dk = _keys[layer]!.Slice(2, Length, t)) dk.CopyFrom(k);
        using (var dv = _values[layer]!.Slice(2, Length, t)) dv.CopyFrom(v);
        return (_keys[layer]!.Slice(2, 0, end), _values[layer]!.Slice(2, 0, end));
    }

    /// <summary>Marks <paramref name="tokens"/> more positions as cached (after every layer appended them).</summary>
    public void Advance(int tokens)
    {
        if (tokens < 0 || Length + tokens > _capacity) throw new ArgumentOutOfRangeException(nameof(tokens));
        Length += tokens;
    }

    /// <summary>Forgets everything after <paramref name="length"/> tokens (e.g. to reuse a shared prompt prefix).</summary>
    public void Truncate(int length)
    {
        if (length < 0 || length > Length) throw new ArgumentOutOfRangeException(nameof(length), length, $"cache holds {Length} tokens");
        Length = length;
    }

    private void Grow(int capacity)
    {
        for (int l = 0; l < Layers; l++)
        {
            _keys[l] = Regrow(_keys[l], capacity);
            _values[l] = Regrow(_values[l], capacity);
        }
        _capacity = capacity;
    }

    private Tensor? Regrow(Tensor? old, int capacity)
    {
        if (old is null) return null;
        var n = Tensor.Zeros(Batch, KvHeads, capacity, HeadDim);
        if (Length > 0)
        {
            using var src = old.Slice(2, 0, Length);
            using var dst = n.Slice(2, 0, Length);
            dst.CopyFrom(src);
        }
        old.Dispose();
        return n;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        for (int l = 0; l < Layers; l++)
        {
            _keys[l]?.Dispose(); _keys[l] = null;
            _values[l]?.Dispose(); _values[l] = null;
        }
    }
}
