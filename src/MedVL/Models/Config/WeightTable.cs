namespace MedVL.Models.Config;

/// <summary>How a checkpoint tensor is treated by the checker.</summary>
public enum TensorRole
{
    /// <summary>Must be present with exactly this shape.</summary>
    Required,
    /// <summary>May be absent (e.g. lm_head.weight of a tied model, legacy rotary inv_freq buffers); checked if present.</summary>
    Optional,
    /// <summary>Known but not used by MedVL (CLIP text tower, vision-tower copies inside a LLaVA checkpoint); not an error.</summary>
    Skipped,
}

/// <summary>One expected tensor: HF state-dict name, PyTorch shape ([out, in] for Linear), role. A null shape means
/// "any shape" (only used for skipped tensors whose shape MedVL does not derive).</summary>
public sealed record TensorSpec(string Name, long[]? Shape, TensorRole Role = TensorRole.Required)
{
    public override string ToString() => $"{Name} [{(Shape is null ? "*" : string.Join(", ", Shape))}]";
}

/// <summary>
/// Expected tensor names and shapes per family, in the spirit of llama.cpp's create_tensor tables: what a faithful
/// HF checkpoint of a given config contains. Names follow the HF modeling files cited on <see cref="DecoderFamily"/>.
/// </summary>
public static class WeightTable
{
    /// <summary>The full table for a loaded config (decoder; CLIP; or LLaVA wrapper = decoder + projector [+ MoE]).</summary>
    public static IReadOnlyList<TensorSpec> For(ModelConfig config) => config.Kind switch
    {
        ModelKind.Decoder => Decoder(config.RequireDecoder()),
        ModelKind.ClipVision => Clip(config.RequireClip()),
        ModelKind.Llava => Llava(config),
        _ => throw new ArgumentOutOfRangeException(nameof(config)),
    };

    public static List<TensorSpec> Decoder(DecoderConfig c, string prefix = "", IReadOnlySet<int>? moeLayers = null, int[]? expertsPerMoeLayer = null)
    {
        long H = c.HiddenSize!.Value, V = c.VocabSize!.Value, I = c.IntermediateSize!.Value;
        long nh = c.NumAttentionHeads!.Value, nkv = c.NumKeyValueHeads, hd = c.HeadDim;
        var t = new List<TensorSpec> { new(prefix + "model.embed_tokens.weight", [V, H]) };
        int moeOrdinal = 0;
        for (int i = 0; i < c.NumHiddenLayers!.Value; i++)
        {
            string p = $"{prefix}model.layers.{i}.";
            // Legacy checkpoints (transformers < 4.31 Llama, some Phi/StableLM exports) saved the RoPE buffer.
            t.Add(new(p + "self_attn.rotary_emb.inv_freq", [c.RotaryDim / 2], TensorRole.Optional));
            switch (c.Family)
            {
                case DecoderFamily.Phi3:
                    t.Add(new(p + "self_attn.qkv_proj.weight", [(nh + 2 * nkv) * hd, H]));
                    t.Add(new(p + "self_attn.o_proj.weight", [H, nh * hd]));
                    break;
                default:
                    t.Add(new(p + "self_attn.q_proj.weight", [nh * hd, H]));
                    t.Add(new(p + "self_attn.k_proj.weight", [nkv * hd, H]));
                    t.Add(new(p + "self_attn.v_proj.weight", [nkv * hd, H]));
                    if (c.QkvBias)
                    {
                        t.Add(new(p + "self_attn.q_proj.bias", [nh * hd]));
                        t.Add(new(p + "self_attn.k_proj.bias", [nkv * hd]));
                        t.Add(new(p + "self_attn.v_proj.bias", [nkv * hd]));
                    }
                    string o = c.Family == DecoderFamily.Phi ? "dense" : "o_proj";
                    t.Add(new(p + $"self_attn.{o}.weight", [H, nh * hd]));
                    if (c.OutputBias) t.Add(new(p + $"self_attn.{o}.bias", [H]));
                    break;
            }
            if (c.QkLayernorm)
            {
                // StableLM: per-head LayerNorms (StableLmLayerNormPerHead, norms.{h}.weight); Phi: q_layernorm/k_layernorm over head_dim.
                if (c.Family == DecoderFamily.StableLm)
                {
                    for (int h = 0; h < nh; h++) t.Add(new(p + $"self_attn.q_layernorm.norms.{h}.weight", [hd]));
                    for (int h = 0; h < nkv; h++) t.Add(new(p + $"self_attn.k_layernorm.norms.{h}.weight", [hd]));
                }
                else if (c.Family == DecoderFamily.Phi)
                {
                    foreach (var n in new[] { "q_layernorm", "k_layernorm" })
                    {
                        t.Add(new(p + $"self_attn.{n}.weight", [hd]));
                        t.Add(new(p + $"self_attn.{n}.bias", [hd]));
                    }
                }
            }

            if (moeLayers is not null && moeLayers.Contains(i))
            {
                int experts = expertsPerMoeLayer![moeOrdinal++];
                AddMoeBlock(t, c, p + "mlp.", experts);
            }
            else
            {
                AddFfn(t, c, p + "mlp.", TensorRole.Required);
            }

            t.Add(new(p + "input_layernorm.weight", [H]));
            if (c.UsesLayerNorm) t.Add(new(p + "input_layernorm.bias", [H]));
            if (c.Family != DecoderFamily.Phi)
            {
                t.Add(new(p + "post_attention_layernorm.weight", [H]));
                if (c.UsesLayerNorm) t.Add(new(p + "post_attention_layernorm.bias", [H]));
            }
        }
        string norm = c.Family == DecoderFamily.Phi ? "model.final_layernorm" : "model.norm";
        t.Add(new(prefix + norm + ".weight", [H]));
        if (c.UsesLayerNorm) t.Add(new(prefix + norm + ".bias", [H]));
        // Tied: lm_head reuses embed_tokens; some exporters still write the copy, so it is optional then.
        t.Add(new(prefix + "lm_head.weight", [V, H], c.TieWordEmbeddings ? TensorRole.Optional : TensorRole.Required));
        if (c.LmHeadBias) t.Add(new(prefix + "lm_head.bias", [V]));
        return t;
    }

    private static void AddFfn(List<TensorSpec> t, DecoderConfig c, string p, TensorRole role)
    {
        long H = c.HiddenSize!.Value, I = c.IntermediateSize!.Value;
        switch (c.Family)
        {
            case DecoderFamily.Phi3:
                t.Add(new(p + "gate_up_proj.weight", [2 * I, H], role));
                t.Add(new(p + "down_proj.weight", [H, I], role));
                break;
            case DecoderFamily.Phi:
                t.Add(new(p + "fc1.weight", [I, H], role));
                t.Add(new(p + "fc1.bias", [I], role));
                t.Add(new(p + "fc2.weight", [H, I], role));
                t.Add(new(p + "fc2.bias", [H], role));
                break;
            default:
                t.Add(new(p + "gate_proj.weight", [I, H], role));
                t.Add(new(p + "up_proj.weight", [I, H], role));
                t.Add(new(p + "down_proj.weight", [H, I], role));
                if (c.MlpBias)
                {
                    t.Add(new(p + "gate_proj.bias", [I], role));
                    t.Add(new(p + "up_proj.bias", [I], role));
                    t.Add(new(p + "down_proj.bias", [H], role));
                }
                break;
        }
    }

    /// <summary>MoE-LLaVA / Med-MoE block (DeepSpeed MoE naming): mlp.deepspeed_moe.gate.wg.weight [E, H] (+ bias in
    /// Med-MoE), experts.deepspeed_experts.{j}.* copies of the FFN, and Med-MoE's always-on meta expert mlp.meta_moe.*.
    /// Bias and meta expert are Optional because MoE-LLaVA checkpoints have neither.</summary>
    private static void AddMoeBlock(List<TensorSpec> t, DecoderConfig c, string p, int experts)
    {
        long H = c.HiddenSize!.Value;
        t.Add(new(p + "deepspeed_moe.gate.wg.weight", [experts, H]));
        t.Add(new(p + "deepspeed_moe.gate.wg.bias", [experts], TensorRole.Optional));
        for (int j = 0; j < experts; j++)
            AddFfn(t, c, p + $"deepspeed_moe.experts.deepspeed_experts.{j}.", TensorRole.Required);
        AddFfn(t, c, p + "meta_moe.", TensorRole.Optional);
    }

    /// <summary>CLIP vision tower (modeling_clip.CLIPVisionTransformer under vision_model.*); for a full CLIPModel the
    /// text tower, the two projections and logit_scale are listed as <see cref="TensorRole.Skipped"/>.</summary>
    public static List<TensorSpec> Clip(ClipConfig clip, string prefix = "")
    {
        var v = clip.Vision;
        long D = v.HiddenSize, I = v.IntermediateSize;
        string vp = prefix + "vision_model.";
        var t = new List<TensorSpec>
        {
            new(vp + "embeddings.class_embedding", [D]),
            new(vp + "embeddings.patch_embedding.weight", [D, v.NumChannels, v.PatchSize, v.PatchSize]),
            new(vp + "embeddings.position_embedding.weight", [v.NumPositions, D]),
            new(vp + "embeddings.position_ids", [1, v.NumPositions], TensorRole.Optional), // buffer saved by transformers < 4.31
            new(vp + "pre_layrnorm.weight", [D]),
            new(vp + "pre_layrnorm.bias", [D]),
        };
        AddClipEncoder(t, vp + "encoder.layers.", v.NumHiddenLayers, D, I, TensorRole.Required);
        t.Add(new(vp + "post_layernorm.weight", [D]));
        t.Add(new(vp + "post_layernorm.bias", [D]));
        if (clip.Text is { } tc)
        {
            const TensorRole S = TensorRole.Skipped;
            string tp = prefix + "text_model.";
            long TD = tc.HiddenSize;
            t.Add(new(tp + "embeddings.token_embedding.weight", [tc.VocabSize, TD], S));
            t.Add(new(tp + "embeddings.position_embedding.weight", [tc.MaxPositionEmbeddings, TD], S));
            t.Add(new(tp + "embeddings.position_ids", [1, tc.MaxPositionEmbeddings], S));
            AddClipEncoder(t, tp + "encoder.layers.", tc.NumHiddenLayers, TD, tc.IntermediateSize, S);
            t.Add(new(tp + "final_layer_norm.weight", [TD], S));
            t.Add(new(tp + "final_layer_norm.bias", [TD], S));
            long P = clip.ProjectionDim ?? 512;
            t.Add(new(prefix + "text_projection.weight", [P, TD], S));
            t.Add(new(prefix + "visual_projection.weight", [P, D], S));
            t.Add(new(prefix + "logit_scale", [], S));
        }
        return t;
    }

    private static void AddClipEncoder(List<TensorSpec> t, string lp, int layers, long D, long I, TensorRole role)
    {
        for (int i = 0; i < layers; i++)
        {
            string p = $"{lp}{i}.";
            foreach (var n in new[] { "k_proj", "v_proj", "q_proj", "out_proj" })
            {
                t.Add(new(p + $"self_attn.{n}.weight", [D, D], role));
                t.Add(new(p + $"self_attn.{n}.bias", [D], role));
            }
            t.Add(new(p + "layer_norm1.weight", [D], role));
            t.Add(new(p + "layer_norm1.bias", [D], role));
            t.Add(new(p + "mlp.fc1.weight", [I, D], role));
            t.Add(new(p + "mlp.fc1.bias", [I], role));
            t.Add(new(p + "mlp.fc2.weight", [D, I], role));
            t.Add(new(p + "mlp.fc2.bias", [D], role));
            t.Add(new(p + "layer_norm2.weight", [D], role));
            t.Add(new(p + "layer_norm2.bias", [D], role));
        }
    }

    /// <summary>LLaVA projector (builder.py): linear -> {prefix}weight/bias; mlpNx_gelu -> Sequential indices 0, 2, 4, ...
    /// (the GELUs at odd indices have no parameters).</summary>
    public static List<TensorSpec> Projector(MultimodalConfig mm, long llmHidden)
    {
        long mmH = mm.MmHiddenSize!.Value;
        string p = mm.ProjectorPrefix;
        var t = new List<TensorSpec>();
        if (mm.ProjectorType == "linear")
        {
            t.Add(new(p + "weight", [llmHidden, mmH]));
            t.Add(new(p + "bias", [llmHidden]));
            return t;
        }
        for (int k = 0; k < mm.ProjectorDepth; k++)
        {
            t.Add(new(p + $"{2 * k}.weight", [llmHidden, k == 0 ? mmH : llmHidden]));
            t.Add(new(p + $"{2 * k}.bias", [llmHidden]));
        }
        return t;
    }

    /// <summary>Prefixes of vision-tower copies that LLaVA-family trainers may leave in the LLM checkpoint; the tower is
    /// re-loaded from its own folder, so these are skipped (llava: model.vision_tower.*, MoE-LLaVA: model.image_tower.*).</summary>
    public static readonly string[] SkippedLlavaPrefixes = ["model.vision_tower.", "model.image_tower."];

    private static List<TensorSpec> Llava(ModelConfig config)
    {
        var dec = config.RequireDecoder();
        IReadOnlySet<int>? moeLayers = null;
        int[]? experts = null;
        if (config.Moe is { MoeEnable: true } moe)
        {
            moeLayers = moe.MoeLayersIdx!.ToHashSet();
            // num_experts is parallel to moe_layers_idx; order the counts by layer index as the table walks layers.
            experts = moe.MoeLayersIdx!.Zip(moe.NumExperts!).OrderBy(x => x.First).Select(x => x.Second).ToArray();
        }
        var t = Decoder(dec, "", moeLayers, experts);
        t.AddRange(Projector(config.Multimodal!, dec.HiddenSize!.Value));
        return t;
    }
}
