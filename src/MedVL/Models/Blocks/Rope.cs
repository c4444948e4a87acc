using MedVL.Kernels;
using MedVL.Models.Config;

namespace MedVL.Models.Blocks;

/// <summary>
/// The rotary embedding of a decoder for a given sequence length. Default RoPE is one table; Phi-3 LongRoPE
/// (modeling_phi3.Phi3LongRoPEScaledRotaryEmbedding in transformers 4.41, later modeling_rope_utils
/// _compute_longrope_parameters) uses the long factors once max(position_ids)+1 exceeds
/// original_max_position_embeddings, the short ones otherwise, chosen per forward call as HF does.
/// </summary>
public sealed class DecoderRope
{
    private readonly RotaryEmbedding _short;
    private readonly RotaryEmbedding? _long;
    private readonly int _switchLength;

    public DecoderRope(DecoderConfig c, string source)
    {
        int hd = c.HeadDim;
        var kind = c.RopeScaling?.Kind ?? "default";
        switch (kind)
        {
            case "default":
                _short = RotaryEmbedding.Default(hd, c.RopeTheta, c.PartialRotaryFactor);
                break;
            case "longrope":
            {
                var rs = c.RopeScaling!;
                if (rs.ShortFactor is null || rs.LongFactor is null)
                    throw new ModelConfigException(source, "rope_scaling", "longrope needs short_factor and long_factor");
                var sf = rs.ShortFactor.Select(x => (float)x).ToArray();
                var lf = rs.LongFactor.Select(x => (float)x).ToArray();
                int orig = c.OriginalMaxPositionEmbeddings;
                int max = c.MaxPositionEmbeddings ?? orig;
                float att = (float)c.RopeAttentionScaling;
                try
                {
                    _short = RotaryEmbedding.LongRope(hd, c.RopeTheta, sf, lf, max, orig, sequenceLength: orig, c.PartialRotaryFactor, att);
                    _long = RotaryEmbedding.LongRope(hd, c.RopeTheta, sf, lf, max, orig, sequenceLength: orig + 1, c.PartialRotaryFactor, att);
                }
                catch (ArgumentException e) { throw new ModelConfigException(source, "rope_scaling", e.Message, e); }
                _switchLength = orig;
                break;
            }
            default:
                throw new ModelConfigException(source, "rope_scaling", $"rope type '{kind}' is not supported (supported: default, longrope/su)");
        }
    }

    public int RotaryDim => _short.RotaryDim;

    /// <summary>The table for a forward whose largest position is <paramref name="sequenceLength"/> − 1.</summary>
    public RotaryEmbedding For(int sequenceLength) => _long is not null && sequenceLength > _switchLength ? _long : _short;
}
