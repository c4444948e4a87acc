namespace MedVL.Models.Config;

public enum ModelKind
{
    /// <summary>A text-only decoder checkpoint (phi3, llama, qwen2, stablelm, phi).</summary>
    Decoder,
    /// <summary>A CLIP checkpoint used as vision tower (clip or clip_vision_model).</summary>
    ClipVision,
    /// <summary>A LLaVA-style wrapper: decoder config plus mm_* fields (llava_phi, llava_qwen2, moe_llava_stablelm, ...).</summary>
    Llava,
}

/// <summary>What <see cref="ModelConfigLoader"/> read from one config.json.</summary>
public sealed record ModelConfig
{
    public required ModelKind Kind { get; init; }
    /// <summary>model_type exactly as written in the file.</summary>
    public required string ModelType { get; init; }
    /// <summary>The config.json this came from (used in error messages).</summary>
    public required string SourcePath { get; init; }
    public DecoderConfig? Decoder { get; init; }
    public ClipConfig? Clip { get; init; }
    public MultimodalConfig? Multimodal { get; init; }
    /// <summary>MoE-LLaVA / Med-MoE expert settings, when the config has a "moe" block.</summary>
    public MoeConfig? Moe { get; init; }

    public DecoderConfig RequireDecoder() =>
        Decoder ?? throw new ModelConfigException(SourcePath, "model_type", $"'{ModelType}' is not a language model");
    public ClipConfig RequireClip() =>
        Clip ?? throw new ModelConfigException(SourcePath, "model_type", $"'{ModelType}' is not a CLIP vision tower");
}
