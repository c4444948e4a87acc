using System.Text.Json;
using System.Text.Json.Serialization;

namespace MedVL.Models.Config;

/// <summary>Decoder-only language-model families MedVL knows, named after their Hugging Face model_type.</summary>
public enum DecoderFamily
{
    /// <summary>transformers models/phi3/modeling_phi3.py (Phi-3, Phi-4): RMSNorm, fused qkv_proj and gate_up_proj.</summary>
    Phi3,
    /// <summary>models/llama/modeling_llama.py: RMSNorm, q/k/v/o_proj, SwiGLU gate/up/down_proj.</summary>
    Llama,
    /// <summary>models/qwen2/modeling_qwen2.py: Llama layout with q/k/v biases.</summary>
    Qwen2,
    /// <summary>models/stablelm/modeling_stablelm.py (also StableLMEpoch remote code): LayerNorm with bias, partial rotary.</summary>
    StableLm,
    /// <summary>models/phi/modeling_phi.py (Phi-2): parallel attention+MLP from one LayerNorm, fc1/fc2, dense, biases.</summary>
    Phi,
}

/// <summary>rope_scaling block. HF wrote the kind as "type" before 4.45 and "rope_type" after; both are read.</summary>
public sealed record RopeScalingConfig
{
    [JsonPropertyName("type")] public string? Type { get; init; }
    [JsonPropertyName("rope_type")] public string? RopeType { get; init; }
    [JsonPropertyName("factor")] public double? Factor { get; init; }
    [JsonPropertyName("short_factor")] public double[]? ShortFactor { get; init; }
    [JsonPropertyName("long_factor")] public double[]? LongFactor { get; init; }
    [JsonPropertyName("original_max_position_embeddings")] public int? OriginalMaxPositionEmbeddings { get; init; }
    [JsonPropertyName("low_freq_factor")] public double? LowFreqFactor { get; init; }
    [JsonPropertyName("high_freq_factor")] public double? HighFreqFactor { get; init; }

    /// <summary>The scheme, normalised: "su" (Phi-3 before transformers 4.42) is LongRoPE under its later name.</summary>
    public string Kind => (RopeType ?? Type ?? "default") switch { "su" => "longrope", var k => k };
}

/// <summary>
/// The text decoder's config.json, bound with HF's field names. One type covers every family; fields a family does
/// not have stay null and the derived properties apply that family's HF default (the values in its configuration_*.py).
/// </summary>
public sealed record DecoderConfig
{
    [JsonPropertyName("model_type")] public string? ModelType { get; init; }
    [JsonPropertyName("architectures")] public string[]? Architectures { get; init; }
    [JsonPropertyName("vocab_size")] public int? VocabSize { get; init; }
    [JsonPropertyName("hidden_size")] public int? HiddenSize { get; init; }
    [JsonPropertyName("intermediate_size")] public int? IntermediateSize { get; init; }
    [JsonPropertyName("num_hidden_layers")] public int? NumHiddenLayers { get; init; }
    [JsonPropertyName("num_attention_heads")] public int? NumAttentionHeads { get; init; }
    [JsonPropertyName("num_key_value_heads")] public int? NumKeyValueHeadsField { get; init; }
    [JsonPropertyName("head_dim")] public int? HeadDimField { get; init; }
    [JsonPropertyName("max_position_embeddings")] public int? MaxPositionEmbeddings { get; init; }
    [JsonPropertyName("original_max_position_embeddings")] public int? OriginalMaxPositionEmbeddingsField { get; init; }
    [JsonPropertyName("rope_theta")] public double? RopeThetaField { get; init; }
    [JsonPropertyName("rope_scaling")] public RopeScalingConfig? RopeScaling { get; init; }
    [JsonPropertyName("partial_rotary_factor")] public double? PartialRotaryFactorField { get; init; }
    /// <summary>StableLMEpoch (remote-code StableLM used by Med-MoE/MoE-LLaVA) name for partial_rotary_factor.</summary>
    [JsonPropertyName("rope_pct")] public double? RopePct { get; init; }
    [JsonPropertyName("rms_norm_eps")] public double? RmsNormEps { get; init; }
    [JsonPropertyName("layer_norm_eps")] public double? LayerNormEps { get; init; }
    /// <summary>StableLMEpoch name for layer_norm_eps.</summary>
    [JsonPropertyName("norm_eps")] public double? NormEpsField { get; init; }
    [JsonPropertyName("hidden_act")] public string? HiddenActField { get; init; }
    [JsonPropertyName("tie_word_embeddings")] public bool? TieWordEmbeddingsField { get; init; }
    [JsonPropertyName("attention_bias")] public bool? AttentionBiasField { get; init; }
    [JsonPropertyName("mlp_bias")] public bool? MlpBiasField { get; init; }
    [JsonPropertyName("use_qkv_bias")] public bool? UseQkvBiasField { get; init; }
    [JsonPropertyName("qk_layernorm")] public bool? QkLayernormField { get; init; }
    [JsonPropertyName("use_parallel_residual")] public bool? UseParallelResidualField { get; init; }
    [JsonPropertyName("sliding_window")] public int? SlidingWindowField { get; init; }
    [JsonPropertyName("use_sliding_window")] public bool? UseSlidingWindow { get; init; }
    [JsonPropertyName("max_window_layers")] public int? MaxWindowLayers { get; init; }
    [JsonPropertyName("bos_token_id")] public int? BosTokenId { get; init; }
    /// <summary>An int or a list of ints in HF configs; see <see cref="EosTokenIds"/>.</summary>
    [JsonPropertyName("eos_token_id")] public JsonElement? EosTokenIdRaw { get; init; }
    [JsonPropertyName("pad_token_id")] public int? PadTokenId { get; init; }
    [JsonPropertyName("torch_dtype")] public string? TorchDtype { get; init; }

    // ---- derived (valid after ModelConfigLoader validated the record) ----

    [JsonIgnore] public DecoderFamily Family { get; init; }
    public int NumKeyValueHeads => NumKeyValueHeadsField ?? NumAttentionHeads!.Value;
    /// <summary>head_dim if the config sets it (Llama 3.x, Qwen3), else hidden_size / num_attention_heads.</summary>
    public int HeadDim => HeadDimField ?? HiddenSize!.Value / NumAttentionHeads!.Value;
    /// <summary>GQA group size: query heads per key/value head (repeat_kv's n_rep).</summary>
    public int NRep => NumAttentionHeads!.Value / NumKeyValueHeads;
    public double RopeTheta => RopeThetaField ?? 10000.0;
    /// <summary>Fraction of head_dim that is rotated: StableLM and Phi default to 0.25 / 0.5 in HF; Med-MoE's
    /// StableLMEpoch calls it rope_pct.</summary>
    public double PartialRotaryFactor => PartialRotaryFactorField ?? RopePct ?? Family switch
    {
        DecoderFamily.StableLm => 0.25,
        DecoderFamily.Phi => 0.5,
        _ => 1.0,
    };
    /// <summary>Rotated channels per head: int(head_dim * partial_rotary_factor), as the HF attention modules compute it.</summary>
    public int RotaryDim => (int)(HeadDim * PartialRotaryFactor);
    public bool UsesLayerNorm => Family is DecoderFamily.StableLm or DecoderFamily.Phi;
    /// <summary>The epsilon of every norm in the decoder (rms_norm_eps or layer_norm_eps by family; HF defaults otherwise).</summary>
    public double NormEps => UsesLayerNorm
        ? LayerNormEps ?? NormEpsField ?? 1e-5
        : RmsNormEps ?? (Family == DecoderFamily.Qwen2 ? 1e-6 : Family == DecoderFamily.Llama ? 1e-6 : 1e-5);
    public string HiddenAct => HiddenActField ?? (Family == DecoderFamily.Phi ? "gelu_new" : "silu");
    public bool TieWordEmbeddings => TieWordEmbeddingsField ?? false;
    /// <summary>Bias on the q/k/v projections: Qwen2 always; StableLM use_qkv_bias; Llama attention_bias; Phi always.</summary>
    public bool QkvBias => Family switch
    {
        DecoderFamily.Qwen2 or DecoderFamily.Phi => true,
        DecoderFamily.StableLm => UseQkvBiasField ?? false,
        DecoderFamily.Llama => AttentionBiasField ?? false,
        _ => false,
    };
    /// <summary>Bias on the attention output projection (o_proj / Phi's dense).</summary>
    public bool OutputBias => Family == DecoderFamily.Phi || (Family == DecoderFamily.Llama && (AttentionBiasField ?? false));
    public bool MlpBias => Family == DecoderFamily.Phi || (Family == DecoderFamily.Llama && (MlpBiasField ?? false));
    public bool LmHeadBias => Family == DecoderFamily.Phi;
    public bool QkLayernorm => QkLayernormField ?? false;
    /// <summary>Phi always runs attention and MLP in parallel from one norm; StableLM only when use_parallel_residual.</summary>
    public bool ParallelResidual => Family == DecoderFamily.Phi || (Family == DecoderFamily.StableLm && (UseParallelResidualField ?? false));
    /// <summary>Sliding-window size in tokens, or null. Qwen2 applies it only when use_sliding_window is true.</summary>
    public int? SlidingWindow => Family == DecoderFamily.Qwen2 && UseSlidingWindow != true ? null : SlidingWindowField;
    public int OriginalMaxPositionEmbeddings =>
        OriginalMaxPositionEmbeddingsField ?? RopeScaling?.OriginalMaxPositionEmbeddings ?? MaxPositionEmbeddings ?? 0;

    /// <summary>LongRoPE attention scaling (modeling_rope_utils._compute_longrope_parameters / 4.41's
    /// Phi3LongRoPEScaledRotaryEmbedding): sqrt(1 + ln(s)/ln(original_max)) with s = max_pos / original_max, 1 if s &lt;= 1.</summary>
    public double RopeAttentionScaling
    {
        get
        {
            if (RopeScaling is null || RopeScaling.Kind != "longrope") return 1.0;
            double orig = OriginalMaxPositionEmbeddings;
            double scale = RopeScaling.Factor ?? (MaxPositionEmbeddings!.Value / orig);
            return scale <= 1.0 ? 1.0 : Math.Sqrt(1.0 + Math.Log(scale) / Math.Log(orig));
        }
    }

    public IReadOnlyList<int> EosTokenIds
    {
        get
        {
            if (EosTokenIdRaw is not { } e || e.ValueKind == JsonValueKind.Null) return [];
            if (e.ValueKind == JsonValueKind.Number) return [e.GetInt32()];
            return e.EnumerateArray().Select(x => x.GetInt32()).ToArray();
        }
    }
}
