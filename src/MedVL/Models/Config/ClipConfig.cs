using System.Text.Json.Serialization;

namespace MedVL.Models.Config;

/// <summary>CLIPVisionConfig (transformers models/clip/configuration_clip.py), the vision_config of a CLIPModel or a
/// standalone clip_vision_model config. Defaults are CLIPVisionConfig's (ViT-B/32).</summary>
public sealed record ClipVisionConfig
{
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; } = 768;
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; } = 3072;
    [JsonPropertyName("num_hidden_layers")] public int NumHiddenLayers { get; init; } = 12;
    [JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; init; } = 12;
    [JsonPropertyName("image_size")] public int ImageSize { get; init; } = 224;
    [JsonPropertyName("patch_size")] public int PatchSize { get; init; } = 32;
    [JsonPropertyName("num_channels")] public int NumChannels { get; init; } = 3;
    [JsonPropertyName("hidden_act")] public string HiddenAct { get; init; } = "quick_gelu";
    [JsonPropertyName("layer_norm_eps")] public double LayerNormEps { get; init; } = 1e-5;
    [JsonPropertyName("projection_dim")] public int ProjectionDim { get; init; } = 512;

    public int HeadDim => HiddenSize / NumAttentionHeads;
    /// <summary>Patches per side (image_size / patch_size): 24 for ViT-L/14 at 336.</summary>
    public int GridSize => ImageSize / PatchSize;
    public int NumPatches => GridSize * GridSize;
    /// <summary>Patches plus the class token: rows of position_embedding.</summary>
    public int NumPositions => NumPatches + 1;
}

/// <summary>CLIPTextConfig: only what is needed to recognise (and skip) the text tower's tensors.</summary>
public sealed record ClipTextConfig
{
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; } = 512;
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; } = 2048;
    [JsonPropertyName("num_hidden_layers")] public int NumHiddenLayers { get; init; } = 12;
    [JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; init; } = 8;
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; } = 49408;
    [JsonPropertyName("max_position_embeddings")] public int MaxPositionEmbeddings { get; init; } = 77;
}

/// <summary>A CLIP checkpoint used as a vision tower: either a full CLIPModel (model_type "clip": text tower and
/// projections present but unused) or a CLIPVisionModel (model_type "clip_vision_model").</summary>
public sealed record ClipConfig(ClipVisionConfig Vision, ClipTextConfig? Text, int? ProjectionDim)
{
    public bool IsFullClipModel => Text is not null;
}
