using System.Runtime.Intrinsics;

namespace MedVL.Kernels;

/// <summary>
/// Rotary position embedding in Hugging Face's "rotate_half" (GPT-NeoX) layout: the rotary part of a head is split
/// into halves x1 = x[:r/2], x2 = x[r/2:r] and y = x·cos + rotate_half(x)·sin with rotate_half(x) = [−x2, x1]
/// (transformers modeling_llama.apply_rotary_pos_emb), i.e. y1 = x1·c − x2·s, y2 = x2·c + x1·s. Dims past the rotary
/// dim pass through (partial rotary: StableLM-2, Phi-2). The backward is the transposed rotation, which is the same
/// formula with −sin (<paramref name="inverse"/>). Scalar twin: <see cref="Scalar.RopeScalar"/>.
/// </summary>
public static class RopeKernels
{
    /// <summary>
    /// Rotate <paramref name="rows"/> consecutive heads of one token: x, y are [rows, headDim] (y may alias x);
    /// cos, sin are the token's half tables [rotaryDim/2].
    /// </summary>
    public static unsafe void Apply(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin,
        int rows, int headDim, int rotaryDim, bool inverse)
    {
        int half = rotaryDim / 2;
        if ((rotaryDim & 1) != 0 || rotaryDim > headDim || rotaryDim <= 0)
            throw new ArgumentException($"rope: rotary dim {rotaryDim} must be even and in (0, head dim {headDim}]");
        if (x.Length < rows * headDim || y.Length < rows * headDim) throw new ArgumentException($"rope: buffers hold fewer than {rows}×{headDim} values");
        if (cos.Length < half || sin.Length < half) throw new ArgumentException($"rope: cos/sin tables need {half} values");
        fixed (float* xp0 = x, yp0 = y, cp = cos, sp = sin)
        {
            for (int r = 0; r < rows; r++)
            {
                float* xp = xp0 + (long)r * headDim, yp = yp0 + (long)r * headDim;
                int i = 0;
                if (Vector512.IsHardwareAccelerated)
                {
                    for (; i + 16 <= half; i += 16)
                    {
                        var c = Vector512.Load(cp + i);
                        var s = Vector512.Load(sp + i);
                        if (inverse) s = -s;
                        var x1 = Vector512.Load(xp + i);
                        var x2 = Vector512.Load(xp + half + i);
                        Vector512.FusedMultiplyAdd(x1, c, -(x2 * s)).Store(yp + i);
                        Vector512.FusedMultiplyAdd(x2, c, x1 * s).Store(yp + half + i);
                    }
                }
                if (Vector256.IsHardwareAccelerated)
                {
                    for (; i + 8 <= half; i += 8)
                    {
                        var c = Vector256.Load(cp + i);
                        var s = Vector256.Load(sp + i);
                        if (inverse) s = -s;
                        var x1 = Vector256.Load(xp + i);
                        var x2 = Vector256.Load(xp + half + i);
                        Vector256.FusedMultiplyAdd(x1, c, -(x2 * s)).Store(yp + i);
                        Vector256.FusedMultiplyAdd(x2, c, x1 * s).Store(yp + half + i);
                    }
                }
                for (; i < half; i++)
                {
                    float c = cp[i], s = inverse ? -sp[i] : sp[i];
                    float x1 = xp[i], x2 = xp[half + i];
                    yp[i] = MathF.FusedMultiplyAdd(x1, c, -(x2 * s));
                    yp[half + i] = MathF.FusedMultiplyAdd(x2, c, x1 * s);
                }
                if (xp != yp && rotaryDim < headDim)
                    new ReadOnlySpan<float>(xp + rotaryDim, headDim - rotaryDim).CopyTo(new Span<float>(yp + rotaryDim, headDim - rotaryDim));
            }
        }
    }
}

/// <summary>
/// The frequencies of a rotary embedding: inverse frequencies for the rotary dims (default 1/θ^(2i/r), as HF's
/// _compute_default_rope_parameters, or any custom / rescaled set) and an attention scaling that multiplies cos and
/// sin (HF's attention_scaling; 1 except for long-context variants). Immutable and shareable across threads.
/// </summary>
public sealed class RotaryEmbedding
{
    private readonly float[] _invFreq;

    public RotaryEmbedding(int headDim, int rotaryDim, ReadOnlySpan<float> invFreq, float attentionScaling = 1f)
    {
        if (headDim <= 0) throw new ArgumentException($"rope: head dim {headDim} must be positive");
        if (rotaryDim <= 0 || rotaryDim > headDim || (rotaryDim & 1) != 0)
            throw new ArgumentException($"rope: rotary dim {rotaryDim} must be even and in (0, head dim {headDim}]");
        if (invFreq.Length != rotaryDim / 2)
            throw new ArgumentException($"rope: {invFreq.Length} inverse frequencies given, expected rotary dim / 2 = {rotaryDim / 2}");
        if (!float.IsFinite(attentionScaling)) throw new ArgumentException($"rope: attention scaling {attentionScaling} is not finite");
        foreach (var f in invFreq)
            if (!float.IsFinite(f)) throw new ArgumentException($"rope: inverse frequency {f} is not finite");
        HeadDim = headDim;
        RotaryDim = rotaryDim;
        _invFreq = invFreq.ToArray();
        AttentionScaling = attentionScaling;
    }

    public int HeadDim { get; }
    /// <summary>Dims rotated at the start of each head (head_dim · partial_rotary_factor); the rest pass through.</summary>
    public int RotaryDim { get; }
    public ReadOnlySpan<float> InvFreq => _invFreq;
    /// <summary>Multiplies cos and sin (Phi-3 longrope's sqrt(1 + ln(factor)/ln(original max positions))).</summary>
    public float AttentionScaling { get; }

    /// <summary>HF: int(head_dim · partial_rotary_factor) (Phi-2: 80·0.4 = 32, StableLM-2: 64·0.25 = 16).</summary>
    public static int RotaryDimFor(int headDim, double partialRotaryFactor)
    {
        if (!(partialRotaryFactor > 0 && partialRotaryFactor <= 1)) throw new ArgumentException($"rope: partial_rotary_factor {partialRotaryFactor} must be in (0, 1]");
        return (int)(headDim * partialRotaryFactor);
    }

    /// <summary>inv_freq = 1 / θ^(2i/r) computed in float32 step by step as torch does (arange(0, r, 2).float() / r, then pow, then reciprocal).</summary>
    public static float[] DefaultInvFreq(int rotaryDim, double theta)
    {
        if (!(theta > 1)) throw new ArgumentException($"rope: rope_theta {theta} must be > 1");
        var f = new float[rotaryDim / 2];
        for (int i = 0; i < f.Length; i++)
        {
            float e = (float)(2 * i) / rotaryDim;
            f[i] = 1f / (float)Math.Pow((float)theta, e);
        }
        return f;
    }

    public static RotaryEmbedding Default(int headDim, double theta = 10000, double partialRotaryFactor = 1.0)
    {
        int r = RotaryDimFor(headDim, partialRotaryFactor);
        return new RotaryEmbedding(headDim, r, DefaultInvFreq(r, theta));
    }

    /// <summary>
    /// Phi-3 "longrope" (earlier "su") scaling, as HF modeling_rope_utils._compute_longrope_parameters:
    /// inv_freq = 1 / (ext_factor_i · θ^(2i/r)) with the long factors when the sequence is longer than
    /// original_max_position_embeddings, else the short ones; attention_factor (when not given) =
    /// sqrt(1 + ln(max/original) / ln(original)) if max &gt; original, else 1.
    /// </summary>
    public static RotaryEmbedding LongRope(int headDim, double theta, ReadOnlySpan<float> shortFactor, ReadOnlySpan<float> longFactor,
        int maxPositionEmbeddings, int originalMaxPositionEmbeddings, int sequenceLength,
        double partialRotaryFactor = 1.0, float? attentionFactor = null)
    {
        int r = RotaryDimFor(headDim, partialRotaryFactor);
        if (shortFactor.Length != r / 2 || longFactor.Length != r / 2)
            throw new ArgumentException($"rope longrope: short_factor has {shortFactor.Length} and long_factor {longFactor.Length} values, expected rotary dim / 2 = {r / 2}");
        if (originalMaxPositionEmbeddings <= 1 || maxPositionEmbeddings <= 0)
            throw new ArgumentException($"rope longrope: max_position_embeddings {maxPositionEmbeddings} / original_max_position_embeddings {originalMaxPositionEmbeddings} must be positive (original > 1)");
        var ext = sequenceLength > originalMaxPositionEmbeddings ? longFactor : shortFactor;
        var inv = DefaultInvFreq(r, theta);
        for (int i = 0; i < inv.Length; i++)
        {
            float e = (float)(2 * i) / r;
            inv[i] = 1f / (ext[i] * (float)Math.Pow((float)theta, e));
        }
        float scaling = attentionFactor ?? LongRopeAttentionFactor(maxPositionEmbeddings, originalMaxPositionEmbeddings);
        return new RotaryEmbedding(headDim, r, inv, scaling);
    }

    public static float LongRopeAttentionFactor(int maxPositionEmbeddings, int originalMaxPositionEmbeddings)
    {
        double factor = (double)maxPositionEmbeddings / originalMaxPositionEmbeddings;
        return factor <= 1.0 ? 1f : (float)Math.Sqrt(1 + Math.Log(factor) / Math.Log(originalMaxPositionEmbeddings));
    }

    /// <summary>
    /// Half tables cos/sin [positions, RotaryDim/2] (HF's emb = cat(freqs, freqs) repeats them for the second half):
    /// angle = float32(position · inv_freq), then cos/sin in float32 times the attention scaling, as HF computes them.
    /// </summary>
    public void CosSin(ReadOnlySpan<int> positions, Span<float> cos, Span<float> sin)
    {
        int half = RotaryDim / 2;
        if (cos.Length < positions.Length * half || sin.Length < positions.Length * half)
            throw new ArgumentException($"rope: cos/sin tables need {positions.Length}×{half} values");
        for (int t = 0; t < positions.Length; t++)
        {
            if (positions[t] < 0) throw new ArgumentException($"rope: position id {positions[t]} at index {t} is negative");
            float p = positions[t];
            for (int i = 0; i < half; i++)
            {
                float a = p * _invFreq[i];
                cos[t * half + i] = MathF.Cos(a) * AttentionScaling;
                sin[t * half + i] = MathF.Sin(a) * AttentionScaling;
            }
        }
    }
}
