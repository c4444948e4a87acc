using MedVL.Autograd;
using MedVL.Models.Blocks;
using MedVL.Models.Config;
using MedVL.Tensors;

namespace MedVL.Models;

/// <summary>
/// LLaVA's mm_projector (llava/model/multimodal_projector/builder.py): "linear" = Linear(mm_hidden, H);
/// "mlp{N}x_gelu" = Linear(mm_hidden, H) then (GELU (erf), Linear(H, H)) N−1 times; state-dict indices 0, 2, 4, ….
/// </summary>
public sealed class MultimodalProjector
{
    public MultimodalProjector(IReadOnlyList<LinearLayer> linears) => Linears = linears;

    public IReadOnlyList<LinearLayer> Linears { get; }

    public static MultimodalProjector Load(ModelWeights w, MultimodalConfig mm)
    {
        string p = mm.ProjectorPrefix;
        if (mm.ProjectorType == "linear") return new([LinearLayer.Load(w, p.TrimEnd('.'), bias: true)]);
        var l = new LinearLayer[mm.ProjectorDepth];
        for (int k = 0; k < l.Length; k++) l[k] = LinearLayer.Load(w, p + (2 * k), bias: true);
        return new(l);
    }

    public Tensor Forward(Tensor x)
    {
        var h = Linears[0].Forward(x);
        for (int k = 1; k < Linears.Count; k++)
        {
            using (var a = h) using (var g = Ops.Gelu(a)) h = Linears[k].Forward(g);
        }
        return h;
    }
}

/// <summary>The result of LLaVA's prepare_inputs_labels_for_multimodal for one sequence.</summary>
public sealed record MultimodalInputs(Tensor InputsEmbeds, int[]? Labels, int ImageTokenCount) : IDisposable
{
    /// <summary>Spliced length (text tokens + image rows).</summary>
    public int Length => InputsEmbeds.Size(1);
    public void Dispose() => InputsEmbeds.Dispose();
}

/// <summary>
/// A LLaVA-style vision-language model (HealthGPT's LlavaPhiForCausalLM / LlavaQwen2, Med-MoE's MoE-LLaVA): CLIP
/// vision tower → feature select (layer, patch / cls_patch) → projector → image rows spliced in place of each −200
/// token of the prompt → the language model over inputs_embeds.
/// </summary>
public sealed class LlavaForCausalLM : IDisposable
{
    /// <summary>llava/constants.py IMAGE_TOKEN_INDEX.</summary>
    public const int ImageTokenIndex = -200;
    /// <summary>llava/constants.py IGNORE_INDEX.</summary>
    public const int IgnoreIndex = -100;

    private LlavaForCausalLM(CausalLM lm, ClipVisionModel? vision, MultimodalProjector projector, MultimodalConfig mm)
    {
        LanguageModel = lm; VisionTower = vision; Projector = projector; Multimodal = mm;
    }

    public CausalLM LanguageModel { get; }
    /// <summary>Null when the folder names no reachable vision tower (text-only use, or image features given directly).</summary>
    public ClipVisionModel? VisionTower { get; }
    public MultimodalProjector Projector { get; }
    public MultimodalConfig Multimodal { get; }

    /// <summary>
    /// Loads the LLM + projector (+ MoE FFNs) from <paramref name="dir"/> and the CLIP tower from
    /// <paramref name="visionTowerDir"/>, else from mm_vision_tower / mm_image_tower when that is a folder (relative to
    /// <paramref name="dir"/> or absolute), else from dir/vision_tower. <paramref name="placement"/> applies to both.
    /// </summary>
    public static LlavaForCausalLM FromPretrained(string dir, string? visionTowerDir = null, bool requireVisionTower = true,
        WeightPlacement placement = WeightPlacement.Mapped)
    {
        var config = ModelConfigLoader.Load(dir);
        if (config.Kind != ModelKind.Llava)
            throw new ModelConfigException(config.SourcePath, "model_type", $"'{config.ModelType}' is not a LLaVA-style multimodal model");
        var mm = config.Multimodal!;
        string? towerDir = ResolveTower(dir, visionTowerDir, mm.VisionTower);
        if (towerDir is null && requireVisionTower)
            throw new ModelConfigException(config.SourcePath, "mm_vision_tower",
                $"vision tower '{mm.VisionTower}' is not a folder next to the model; download it and pass its folder (--vision-tower)");
        var weights = ModelWeights.Open(dir, WeightTable.For(config), WeightTable.SkippedLlavaPrefixes, placement);
        CausalLM? lm = null;
        ClipVisionModel? vision = null;
        try
        {
            lm = AutoModelForCausalLM.Create(config, weights, dir);
            var projector = MultimodalProjector.Load(weights, mm);
            if (towerDir is not null)
            {
                vision = ClipVisionModel.FromPretrained(towerDir, placement);
                if (mm.MmHiddenSize is { } mh && mh != vision.HiddenSize)
                    throw new ModelConfigException(config.SourcePath, "mm_hidden_size", $"{mh} does not match the vision tower's hidden_size {vision.HiddenSize} ({towerDir})");
            }
            return new LlavaForCausalLM(lm, vision, projector, mm);
        }
        catch
        {
            vision?.Dispose();
            if (lm is not null) lm.Dispose(); else weights.Dispose();
            throw;
        }
    }

    private static string? ResolveTower(string dir, string? explicitDir, string? named)
    {
        if (explicitDir is not null)
            return Directory.Exists(explicitDir) ? explicitDir : throw new DirectoryNotFoundException($"vision tower folder {explicitDir} does not exist");
        if (!string.IsNullOrEmpty(named))
        {
            var rel = Path.GetFullPath(Path.Combine(dir, named));
            if (File.Exists(Path.Combine(rel, "config.json"))) return rel;
        }
        var local = Path.Combine(dir, "vision_tower");
        return File.Exists(Path.Combine(local, "config.json")) ? local : null;
    }

    /// <summary>LLaVA encode_images: pixel_values [B, C, S, S] → projected features [B, N, H] (N = patches, +1 with cls_patch).</summary>
    public Tensor EncodeImages(Tensor pixelValues, CancellationToken cancellationToken = default)
    {
        var tower = VisionTower ?? throw new InvalidOperationException("this model was loaded without a vision tower");
        var sel = AdapterSelection.Current;
        using var f = tower.SelectFeatures(pixelValues, sel?.VisionSelectLayer ?? Multimodal.SelectLayer, Multimodal.SelectFeature == "cls_patch", cancellationToken);
        return (sel?.Projector ?? Projector).Forward(f);
    }

    /// <summary>
    /// prepare_inputs_labels_for_multimodal for one sequence: text chunks embedded with embed_tokens, image i's rows
    /// [N, H] (from <paramref name="imageFeatures"/> [images, N, H]) in place of the i-th −200; labels (if given, aligned
    /// with <paramref name="inputIds"/>) get −100 on the image rows.
    /// </summary>
    public MultimodalInputs PrepareInputsLabelsForMultimodal(ReadOnlySpan<int> inputIds, Tensor? imageFeatures, ReadOnlySpan<int> labels = default)
    {
        if (!labels.IsEmpty && labels.Length != inputIds.Length)
            throw new ArgumentException($"labels has {labels.Length} entries, input_ids {inputIds.Length}");
        int images = 0;
        foreach (var id in inputIds) if (id == ImageTokenIndex) images++;
        int available = imageFeatures is null ? 0 : imageFeatures.Size(0);
        if (images != available)
            throw new ArgumentException($"the prompt has {images} image token(s) ({ImageTokenIndex}) but {available} image(s) were given");
        if (imageFeatures is not null && (imageFeatures.Rank != 3 || imageFeatures.Size(2) != LanguageModel.HiddenSize))
            throw new ArgumentException($"image features {imageFeatures.Describe()} must be [images, N, hidden_size={LanguageModel.HiddenSize}]");
        int n = imageFeatures?.Size(1) ?? 0;
        var parts = new List<Tensor>();
        var outLabels = labels.IsEmpty ? null : new List<int>();
        try
        {
            int start = 0, img = 0;
            for (int i = 0; i <= inputIds.Length; i++)
            {
                if (i < inputIds.Length && inputIds[i] != ImageTokenIndex) continue;
                if (i > start)
                {
                    using var ids = Tensor.FromArray(inputIds[start..i], 1, i - start);
                    parts.Add(LanguageModel.EmbedTokens(ids));
                    if (outLabels is not null) foreach (var l in labels[start..i]) outLabels.Add(l);
                }
                if (i < inputIds.Length)
                {
                    parts.Add(imageFeatures!.Slice(0, img++, 1));
                    if (outLabels is not null) for (int k = 0; k < n; k++) outLabels.Add(IgnoreIndex);
                }
                start = i + 1;
            }
            var embeds = parts.Count == 1 ? parts[0].Contiguous() : Ops.Concat(parts, 1);
            return new MultimodalInputs(embeds, outLabels?.ToArray(), images * n);
        }
        finally
        {
            foreach (var p in parts) p.Dispose();
        }
    }

    /// <summary>Logits [1, L, V] over the spliced sequence of <paramref name="inputIds"/> with the images of
    /// <paramref name="pixelValues"/> [images, C, S, S] (null for a text-only prompt).</summary>
    public Tensor Forward(ReadOnlySpan<int> inputIds, Tensor? pixelValues, KvCache? cache = null, DecoderForwardOptions? options = null)
    {
        using var scope = AdapterSelection.UseIfSet(options?.Adapters);
        using var features = pixelValues is null ? null : EncodeImages(pixelValues, options?.CancellationToken ?? default);
        using var inputs = PrepareInputsLabelsForMultimodal(inputIds, features);
        return LanguageModel.ForwardEmbeds(inputs.InputsEmbeds, cache, options);
    }

    public void Dispose()
    {
        VisionTower?.Dispose();
        LanguageModel.Dispose();
    }
}
