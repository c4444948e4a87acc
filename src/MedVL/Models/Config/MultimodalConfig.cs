using System.Text.Json.Serialization;

namespace MedVL.Models.Config;

/// <summary>
/// LLaVA-style multimodal fields stored in the LLM's config.json by LLaVA's initialize_vision_modules
/// (llava/model/llava_arch.py). HealthGPT uses LLaVA's names (mm_vision_tower, mm_projector_type); Med-MoE (MoE-LLaVA)
/// renamed two of them (mm_image_tower, image_projector_type) and nests the projector under image_spatial_proj.
/// </summary>
public sealed record MultimodalConfig
{
    [JsonPropertyName("mm_vision_tower")] public string? MmVisionTower { get; init; }
    [JsonPropertyName("mm_image_tower")] public string? MmImageTower { get; init; }
    [JsonPropertyName("mm_projector_type")] public string? MmProjectorType { get; init; }
    [JsonPropertyName("image_projector_type")] public string? ImageProjectorType { get; init; }
    [JsonPropertyName("mm_hidden_size")] public int? MmHiddenSize { get; init; }
    [JsonPropertyName("mm_vision_select_layer")] public int? MmVisionSelectLayer { get; init; }
    [JsonPropertyName("mm_vision_select_feature")] public string? MmVisionSelectFeature { get; init; }
    [JsonPropertyName("mm_patch_merge_type")] public string? MmPatchMergeType { get; init; }
    [JsonPropertyName("mm_use_im_start_end")] public bool? MmUseImStartEnd { get; init; }
    [JsonPropertyName("mm_use_im_patch_token")] public bool? MmUseImPatchToken { get; init; }
    [JsonPropertyName("image_aspect_ratio")] public string? ImageAspectRatio { get; init; }

    public string? VisionTower => MmVisionTower ?? MmImageTower;
    /// <summary>linear, or mlp{N}x_gelu (builder.py: Linear then (GELU, Linear) N-1 times). LLaVA's default is linear.</summary>
    public string ProjectorType => MmProjectorType ?? ImageProjectorType ?? "linear";
    /// <summary>LLaVA default -1 when absent; HealthGPT comprehension and Med-MoE use -2.</summary>
    public int SelectLayer => MmVisionSelectLayer ?? -1;
    /// <summary>"patch" drops the CLS token, "cls_patch" keeps it (clip_encoder.feature_select).</summary>
    public string SelectFeature => MmVisionSelectFeature ?? "patch";
    /// <summary>Number of Linear layers in the projector (1 for linear).</summary>
    public int ProjectorDepth => ProjectorType == "linear" ? 1 : ParseMlpDepth(ProjectorType);

    /// <summary>State-dict prefix of the projector: LLaVA "model.mm_projector."; MoE-LLaVA/Med-MoE wrap it in
    /// build_projector's image_spatial_proj.</summary>
    public string ProjectorPrefix { get; init; } = "model.mm_projector.";

    internal static int ParseMlpDepth(string kind)
    {
        if (kind.StartsWith("mlp", StringComparison.Ordinal) && kind.EndsWith("x_gelu", StringComparison.Ordinal)
            && int.TryParse(kind.AsSpan(3, kind.Length - 9), out int d) && d >= 1)
            return d;
        return -1;
    }
}

/// <summary>The "moe" block MoE-LLaVA / Med-MoE save in config.json (moellava/train/train.py).</summary>
public sealed record MoeConfig
{
    [JsonPropertyName("moe_enable")] public bool MoeEnable { get; init; } = true;
    [JsonPropertyName("moe_mode")] public string? MoeMode { get; init; }
    [JsonPropertyName("moe_layers_idx")] public int[]? MoeLayersIdx { get; init; }
    [JsonPropertyName("num_experts")] public int[]? NumExperts { get; init; }
    [JsonPropertyName("top_k_experts")] public int TopKExperts { get; init; } = 2;
    [JsonPropertyName("capacity_factor")] public double CapacityFactor { get; init; } = 1.0;
    [JsonPropertyName("eval_capacity_factor")] public double EvalCapacityFactor { get; init; } = 1.0;
    [JsonPropertyName("min_capacity")] public int MinCapacity { get; init; }
    [JsonPropertyName("use_residual")] public bool UseResidual { get; init; }
    [JsonPropertyName("router_aux_loss_coef")] public double RouterAuxLossCoef { get; init; }
    [JsonPropertyName("ep_size")] public int EpSize { get; init; } = 1;
    [JsonPropertyName("train_modules")] public string[]? TrainModules { get; init; }
}
