using System.Text.Json;
using System.Text.Json.Nodes;

namespace MedVL.Models.Config;

/// <summary>
/// Reads a Hugging Face config.json and dispatches on model_type. Unknown fields are ignored; fields that shape the
/// network (sizes, layer and head counts) are required; every other field falls back to the HF default of its
/// family's configuration_*.py. All problems are reported as <see cref="ModelConfigException"/> naming file and field.
/// </summary>
public static class ModelConfigLoader
{
    /// <summary>Hard cap on config.json size: real ones are a few KB (CLIPModel ~5 KB); refuse anything absurd before reading.</summary>
    public const long MaxConfigBytes = 4 << 20;

    private static readonly JsonSerializerOptions Options = new()
    {
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        MaxDepth = 32,
        // HF writes NaN/Infinity for some float fields (e.g. layer_norm_eps never, but initializer ranges sometimes).
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private static readonly Dictionary<string, DecoderFamily> DecoderTypes = new(StringComparer.Ordinal)
    {
        ["phi3"] = DecoderFamily.Phi3,
        ["llama"] = DecoderFamily.Llama,
        ["qwen2"] = DecoderFamily.Qwen2,
        ["stablelm"] = DecoderFamily.StableLm,
        ["stablelm_epoch"] = DecoderFamily.StableLm,
        ["phi"] = DecoderFamily.Phi,
    };

    /// <summary>LLaVA-style wrappers as the released code names them: HealthGPT LlavaPhiConfig(Phi3Config) "llava_phi"
    /// and LlavaQwen2 "llava_qwen2"; LLaVA "llava_llama"; MoE-LLaVA / Med-MoE "llava_stablelm", "moe_llava_stablelm",
    /// "moe_llava_phi", "llava_phi" (the last collides with HealthGPT's: resolved by the norm field, see below).</summary>
    private static readonly Dictionary<string, DecoderFamily?> WrapperTypes = new(StringComparer.Ordinal)
    {
        ["llava_phi"] = null, // Phi-3 based in HealthGPT, Phi-2 based in MoE-LLaVA
        ["llava_phi3"] = DecoderFamily.Phi3,
        ["llava_qwen2"] = DecoderFamily.Qwen2,
        ["llava_qwen"] = DecoderFamily.Qwen2,
        ["llava_llama"] = DecoderFamily.Llama,
        ["llava_stablelm"] = DecoderFamily.StableLm,
        ["moe_llava_stablelm"] = DecoderFamily.StableLm,
        ["moe_llava_phi"] = DecoderFamily.Phi,
        ["moe_llava_qwen2"] = DecoderFamily.Qwen2,
        ["llava_phi_moe"] = DecoderFamily.Phi,
    };

    /// <summary>Loads dir/config.json (or the file itself when a file path is given).</summary>
    public static ModelConfig Load(string dirOrFile)
    {
        string path = Directory.Exists(dirOrFile) ? Path.Combine(dirOrFile, "config.json") : dirOrFile;
        if (!File.Exists(path))
            throw new ModelConfigException(path, null, "config.json not found");
        long len = new FileInfo(path).Length;
        if (len > MaxConfigBytes)
            throw new ModelConfigException(path, null, $"file is {len} bytes; a config.json is expected to be under {MaxConfigBytes} bytes");
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses config.json text; <paramref name="sourcePath"/> only labels errors.</summary>
    public static ModelConfig Parse(string json, string sourcePath)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip, MaxDepth = 32 }) as JsonObject
                ?? throw new ModelConfigException(sourcePath, null, "expected a JSON object at the top level");
        }
        catch (JsonException e)
        {
            throw new ModelConfigException(sourcePath, null, $"not valid JSON ({e.Message})", e);
        }

        string modelType = RequiredString(root, "model_type", sourcePath);
        if (modelType is "clip" or "clip_vision_model")
        {
            return new ModelConfig
            {
                Kind = ModelKind.ClipVision, ModelType = modelType, SourcePath = sourcePath,
                Clip = ReadClip(root, modelType, sourcePath),
            };
        }
        if (DecoderTypes.TryGetValue(modelType, out var family))
        {
            return new ModelConfig
            {
                Kind = ModelKind.Decoder, ModelType = modelType, SourcePath = sourcePath,
                Decoder = ReadDecoder(root, family, sourcePath),
            };
        }
        if (WrapperTypes.TryGetValue(modelType, out var wrapped))
        {
            // "llava_phi" means a Phi3Config subclass in HealthGPT (rms_norm_eps) and a PhiConfig subclass in
            // MoE-LLaVA (layer_norm_eps, partial_rotary_factor): the norm field tells them apart.
            DecoderFamily fam = wrapped ?? (root.ContainsKey("rms_norm_eps") ? DecoderFamily.Phi3 : DecoderFamily.Phi);
            var mm = Bind<MultimodalConfig>(root, sourcePath);
            if (modelType.StartsWith("moe_", StringComparison.Ordinal) || root.ContainsKey("image_projector_type"))
                mm = mm with { ProjectorPrefix = "model.mm_projector.image_spatial_proj." };
            ValidateMultimodal(mm, sourcePath);
            MoeConfig? moe = root["moe"] is JsonObject moeNode ? BindNode<MoeConfig>(moeNode, sourcePath, "moe") : null;
            var dec = ReadDecoder(root, fam, sourcePath);
            if (moe is not null) ValidateMoe(moe, dec, sourcePath);
            return new ModelConfig
            {
                Kind = ModelKind.Llava, ModelType = modelType, SourcePath = sourcePath,
                Decoder = dec, Multimodal = mm, Moe = moe,
            };
        }
        throw new ModelConfigException(sourcePath, "model_type",
            $"unsupported value '{modelType}'; expected one of {string.Join(", ", DecoderTypes.Keys.Concat(WrapperTypes.Keys).Append("clip").Append("clip_vision_model"))}");
    }

    private static DecoderConfig ReadDecoder(JsonObject root, DecoderFamily family, string src)
    {
        var c = Bind<DecoderConfig>(root, src) with { Family = family };
        int vocab = Required(c.VocabSize, "vocab_size", src);
        int hidden = Required(c.HiddenSize, "hidden_size", src);
        int inter = Required(c.IntermediateSize, "intermediate_size", src);
        int layers = Required(c.NumHiddenLayers, "num_hidden_layers", src);
        int heads = Required(c.NumAttentionHeads, "num_attention_heads", src);
        Positive(vocab, "vocab_size", src);
        Positive(hidden, "hidden_size", src);
        Positive(inter, "intermediate_size", src);
        Positive(layers, "num_hidden_layers", src);
        Positive(heads, "num_attention_heads", src);
        int kv = c.NumKeyValueHeads;
        Positive(kv, "num_key_value_heads", src);
        if (heads % kv != 0)
            throw new ModelConfigException(src, "num_key_value_heads", $"{kv} does not divide num_attention_heads {heads} (grouped-query attention needs whole groups)");
        if (c.HeadDimField is int hd)
        {
            Positive(hd, "head_dim", src);
        }
        else if (hidden % heads != 0)
        {
            throw new ModelConfigException(src, "num_attention_heads", $"{heads} does not divide hidden_size {hidden} and no head_dim is given");
        }
        // Phi-3, StableLM and Phi compute the output projection as [hidden, heads*head_dim] with head_dim = hidden/heads:
        // they have no head_dim field, so a mismatch can only come from one being added by hand.
        if (family is DecoderFamily.Phi3 or DecoderFamily.StableLm or DecoderFamily.Phi && c.HeadDim * heads != hidden)
            throw new ModelConfigException(src, "head_dim", $"{c.HeadDim} x {heads} heads != hidden_size {hidden}; {family} requires hidden_size = heads x head_dim");
        double prf = c.PartialRotaryFactor;
        if (!(prf > 0 && prf <= 1))
            throw new ModelConfigException(src, c.RopePct is not null && c.PartialRotaryFactorField is null ? "rope_pct" : "partial_rotary_factor", $"{prf} is outside (0, 1]");
        if (c.RotaryDim % 2 != 0 || c.RotaryDim == 0)
            throw new ModelConfigException(src, "partial_rotary_factor", $"rotary dimension int({c.HeadDim} x {prf}) = {c.RotaryDim} must be even and positive (RoPE rotates channel pairs)");
        if (c.RopeThetaField is double th && !(th > 0))
            throw new ModelConfigException(src, "rope_theta", $"{th} must be positive");
        if (c.NormEps is var eps && !(eps > 0 && eps < 1))
            throw new ModelConfigException(src, c.UsesLayerNorm ? "layer_norm_eps" : "rms_norm_eps", $"{eps} must be in (0, 1)");
        if (c.HiddenAct is not ("silu" or "gelu_new" or "gelu" or "gelu_pytorch_tanh" or "relu" or "quick_gelu"))
            throw new ModelConfigException(src, "hidden_act", $"unsupported activation '{c.HiddenAct}'");
        if (c.SlidingWindowField is int sw && sw <= 0)
            throw new ModelConfigException(src, "sliding_window", $"{sw} must be positive or null");
        if (c.EosTokenIdRaw is { } eos && eos.ValueKind is not (JsonValueKind.Number or JsonValueKind.Array or JsonValueKind.Null))
            throw new ModelConfigException(src, "eos_token_id", "expected an integer or a list of integers");
        ValidateRopeScaling(c, src);
        return c;
    }

    private static void ValidateRopeScaling(DecoderConfig c, string src)
    {
        if (c.RopeScaling is not { } rs) return;
        switch (rs.Kind)
        {
            case "default":
                return;
            case "longrope":
                int half = c.RotaryDim / 2;
                if (rs.ShortFactor is null || rs.ShortFactor.Length != half)
                    throw new ModelConfigException(src, "rope_scaling.short_factor", $"expected {half} values (rotary_dim / 2), got {rs.ShortFactor?.Length.ToString() ?? "none"}");
                if (rs.LongFactor is null || rs.LongFactor.Length != half)
                    throw new ModelConfigException(src, "rope_scaling.long_factor", $"expected {half} values (rotary_dim / 2), got {rs.LongFactor?.Length.ToString() ?? "none"}");
                if (c.OriginalMaxPositionEmbeddings <= 0)
                    throw new ModelConfigException(src, "original_max_position_embeddings", "LongRoPE needs original_max_position_embeddings (top level or in rope_scaling)");
                if (c.MaxPositionEmbeddings is null)
                    throw new ModelConfigException(src, "max_position_embeddings", "LongRoPE needs max_position_embeddings to compute its attention scaling");
                return;
            case "linear" or "dynamic" or "llama3" or "yarn":
                if (rs.Factor is not > 0)
                    throw new ModelConfigException(src, "rope_scaling.factor", $"rope type '{rs.Kind}' needs a positive factor");
                return;
            default:
                throw new ModelConfigException(src, "rope_scaling.type", $"unsupported rope scaling '{rs.Kind}'; expected default, longrope (su), linear, dynamic, llama3 or yarn");
        }
    }

    private static ClipConfig ReadClip(JsonObject root, string modelType, string src)
    {
        if (modelType == "clip_vision_model")
            return new ClipConfig(ValidateVision(Bind<ClipVisionConfig>(root, src), src, ""), null, null);
        // CLIPModel: vision_config / text_config; very old exports used *_config_dict (configuration_clip.py still
        // accepts them) — read whichever is present, *_config winning like HF.
        var vNode = (root["vision_config"] ?? root["vision_config_dict"]) as JsonObject
            ?? throw new ModelConfigException(src, "vision_config", "a CLIPModel config needs a vision_config object");
        string vField = root["vision_config"] is not null ? "vision_config" : "vision_config_dict";
        var vision = ValidateVision(BindNode<ClipVisionConfig>(vNode, src, vField), src, vField + ".");
        var tNode = (root["text_config"] ?? root["text_config_dict"]) as JsonObject;
        var text = tNode is null ? new ClipTextConfig() : BindNode<ClipTextConfig>(tNode, src, "text_config");
        int proj = root["projection_dim"] is JsonValue pv && pv.TryGetValue(out int p) ? p : 512;
        return new ClipConfig(vision, text, proj);
    }

    private static ClipVisionConfig ValidateVision(ClipVisionConfig v, string src, string prefix)
    {
        Positive(v.HiddenSize, prefix + "hidden_size", src);
        Positive(v.NumAttentionHeads, prefix + "num_attention_heads", src);
        Positive(v.NumHiddenLayers, prefix + "num_hidden_layers", src);
        Positive(v.IntermediateSize, prefix + "intermediate_size", src);
        Positive(v.PatchSize, prefix + "patch_size", src);
        Positive(v.NumChannels, prefix + "num_channels", src);
        if (v.HiddenSize % v.NumAttentionHeads != 0)
            throw new ModelConfigException(src, prefix + "num_attention_heads", $"{v.NumAttentionHeads} does not divide hidden_size {v.HiddenSize}");
        if (v.ImageSize <= 0 || v.ImageSize % v.PatchSize != 0)
            throw new ModelConfigException(src, prefix + "image_size", $"{v.ImageSize} must be a positive multiple of patch_size {v.PatchSize}");
        if (v.HiddenAct is not ("quick_gelu" or "gelu" or "gelu_new"))
            throw new ModelConfigException(src, prefix + "hidden_act", $"unsupported activation '{v.HiddenAct}'");
        return v;
    }

    private static void ValidateMultimodal(MultimodalConfig mm, string src)
    {
        string field = mm.MmProjectorType is not null ? "mm_projector_type" : "image_projector_type";
        if (mm.ProjectorType != "linear" && MultimodalConfig.ParseMlpDepth(mm.ProjectorType) < 1)
            throw new ModelConfigException(src, field, $"unsupported projector '{mm.ProjectorType}'; expected linear or mlp<N>x_gelu");
        if (mm.MmHiddenSize is null)
            throw new ModelConfigException(src, "mm_hidden_size", "required for a multimodal config (the vision tower's width)");
        if (mm.MmHiddenSize <= 0)
            throw new ModelConfigException(src, "mm_hidden_size", $"{mm.MmHiddenSize} must be positive");
        if (mm.SelectFeature is not ("patch" or "cls_patch"))
            throw new ModelConfigException(src, "mm_vision_select_feature", $"'{mm.SelectFeature}' is not patch or cls_patch");
    }

    private static void ValidateMoe(MoeConfig moe, DecoderConfig dec, string src)
    {
        if (!moe.MoeEnable) return;
        int layers = dec.NumHiddenLayers!.Value;
        var idx = moe.MoeLayersIdx ?? throw new ModelConfigException(src, "moe.moe_layers_idx", "required when moe.moe_enable is true");
        foreach (int l in idx)
            if (l < 0 || l >= layers)
                throw new ModelConfigException(src, "moe.moe_layers_idx", $"layer {l} is outside 0..{layers - 1}");
        if (moe.NumExperts is null || moe.NumExperts.Length != idx.Length || moe.NumExperts.Any(n => n <= 0))
            throw new ModelConfigException(src, "moe.num_experts", $"expected {idx.Length} positive expert counts (one per moe_layers_idx entry)");
        if (moe.TopKExperts < 1 || moe.NumExperts.Any(n => n < moe.TopKExperts))
            throw new ModelConfigException(src, "moe.top_k_experts", $"{moe.TopKExperts} must be between 1 and the number of experts");
    }

    // ---- binding helpers ----

    private static T Bind<T>(JsonObject root, string src) => BindNode<T>(root, src, null);

    private static T BindNode<T>(JsonObject node, string src, string? fieldPrefix)
    {
        try
        {
            return node.Deserialize<T>(Options) ?? throw new ModelConfigException(src, fieldPrefix, "expected an object");
        }
        catch (JsonException e)
        {
            // e.Path is "$.field" or "$.rope_scaling.long_factor[3]": report it as the field name.
            string field = (e.Path ?? "$").TrimStart('$').TrimStart('.');
            if (fieldPrefix is not null) field = field.Length == 0 ? fieldPrefix : fieldPrefix + "." + field;
            throw new ModelConfigException(src, field.Length == 0 ? null : field, $"wrong JSON type ({e.Message})", e);
        }
    }

    private static string RequiredString(JsonObject root, string field, string src)
    {
        if (root[field] is not JsonValue v || !v.TryGetValue(out string? s) || string.IsNullOrEmpty(s))
            throw new ModelConfigException(src, field, "required string is missing");
        return s;
    }

    private static int Required(int? value, string field, string src) =>
        value ?? throw new ModelConfigException(src, field, "required field is missing");

    private static void Positive(int value, string field, string src)
    {
        if (value <= 0) throw new ModelConfigException(src, field, $"{value} must be positive");
    }
}
