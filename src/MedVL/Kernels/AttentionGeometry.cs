namespace MedVL.Kernels;

/// <summary>
/// The sizes and masking of one scaled-dot-product attention call over [B, H, T, D] queries and [B, Hkv, S, D]
/// keys/values (Hugging Face's layout after the head transpose). Query i sits at absolute position S - T + i (the
/// KV-cache convention: the T new tokens are the last T of the S keys), so causal masking is bottom-right aligned as
/// in flash-attn and HF's cache masks (torch's SDPA is_causal is top-left aligned, which only agrees when T == S).
/// Key j is visible to query i when j &lt;= pos(i) (if <see cref="Causal"/>) and pos(i) - j &lt; window (if
/// <see cref="SlidingWindow"/> &gt; 0: HF masking_utils sliding_window_overlay, Mistral / Phi-3), plus an optional
/// additive float mask [T, S] per batch (or shared).
/// </summary>
public readonly record struct AttentionGeometry(
    int Batch, int Heads, int KvHeads, int QueryLength, int KeyLength, int HeadDim,
    float Scale, bool Causal, int SlidingWindow = 0, bool HasMask = false, bool MaskPerBatch = false, long KvPlaneStride = 0)
{
    /// <summary>Elements from one (batch, kv head) plane of K / V to the next: S·D when contiguous, larger for a view into
    /// a KV cache with spare capacity (forward only; rows stay D apart).</summary>
    public long KvStride => KvPlaneStride > 0 ? KvPlaneStride : (long)KeyLength * HeadDim;
    /// <summary>Elements K and V spans must hold: (B·Hkv − 1) planes apart plus the last plane's S·D.</summary>
    public long KvSpanElements => ((long)Batch * KvHeads - 1) * KvStride + (long)KeyLength * HeadDim;
    public int GroupSize => Heads / KvHeads;
    /// <summary>Absolute position of query row 0.</summary>
    public int QueryOffset => KeyLength - QueryLength;
    public long QueryElements => (long)Batch * Heads * QueryLength * HeadDim;
    public long KeyElements => (long)Batch * KvHeads * KeyLength * HeadDim;
    public long LseElements => (long)Batch * Heads * QueryLength;
    public long MaskElements => HasMask ? (MaskPerBatch ? (long)Batch : 1) * QueryLength * KeyLength : 0;

    /// <summary>First visible key of query row i (inclusive), ignoring the additive mask.</summary>
    public int KeyStart(int i) => SlidingWindow > 0 ? Math.Max(0, QueryOffset + i - SlidingWindow + 1) : 0;
    /// <summary>One past the last visible key of query row i.</summary>
    public int KeyEnd(int i) => Causal ? Math.Min(KeyLength, QueryOffset + i + 1) : KeyLength;

    public void Validate()
    {
        if (Batch <= 0 || Heads <= 0 || KvHeads <= 0 || QueryLength <= 0 || KeyLength <= 0 || HeadDim <= 0)
            throw new ArgumentException($"attention: sizes must be positive (B={Batch}, H={Heads}, Hkv={KvHeads}, T={QueryLength}, S={KeyLength}, D={HeadDim})");
        if (Heads % KvHeads != 0)
            throw new ArgumentException($"attention: query heads {Heads} are not a multiple of key/value heads {KvHeads}");
        if (QueryLength > KeyLength)
            throw new ArgumentException($"attention: {QueryLength} queries against {KeyLength} keys; queries must be the last T of the S positions (T <= S)");
        if (SlidingWindow < 0) throw new ArgumentException($"attention: sliding window {SlidingWindow} is negative");
        if (SlidingWindow > 0 && !Causal) throw new ArgumentException("attention: a sliding window needs causal attention (Mistral / Phi-3 semantics)");
        if (!float.IsFinite(Scale)) throw new ArgumentException($"attention: scale {Scale} is not finite");
        if (KvPlaneStride != 0 && KvPlaneStride < (long)KeyLength * HeadDim)
            throw new ArgumentException($"attention: K/V plane stride {KvPlaneStride} is smaller than S·D = {(long)KeyLength * HeadDim}");
    }
}
