using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using MedVL.Adapters;
using MedVL.Adapters.Config;
using MedVL.Formats;
using MedVL.Tensors;
using MedVL.IO;
using MedVL.Models;
using MedVL.Models.Blocks;
using MedVL.Text;
using MedVL.Text.Templates;
using MedVL.Vision.Codecs;
using MedVL.Vision.ImageTokenizers;
using MedVL.Vision.Preprocessing;

namespace MedVL.Training;

/// <summary>One stage of a pipeline config (JSON).</summary>
public sealed record StageConfig
{
    [JsonPropertyName("name")] public required string Name { get; init; }
    /// <summary>Conversation JSON, relative to the data folder (llava_train.json, caption_train.json, vqa_train.json).</summary>
    [JsonPropertyName("data")] public required string Data { get; init; }
    /// <summary>What to train: llm, vision, projector (the task plugin's own projector if it has one, else mm_projector),
    /// embed_tokens, lm_head, vocab (the generation plugin's extended embedding and output head), hlora, moe (experts +
    /// meta expert), router.</summary>
    [JsonPropertyName("train")] public required string[] Train { get; init; }
    /// <summary>Run before the stage: attach-hlora (HealthGPT stage 3), upcycle-moe (Med-MoE step 3).</summary>
    [JsonPropertyName("before")] public string? Before { get; init; }
    /// <summary>Run after the stage: pretrain-router (Med-MoE step 2, on the data's modality labels).</summary>
    [JsonPropertyName("after")] public string? After { get; init; }
    /// <summary>"lm" (default): the language-modelling loss on conversation data; "findings": pretrain the vision tower on
    /// segmentation items (seg_train.json: image, lesion mask, modality) — the tiny presets' stand-in for CLIP's
    /// pretraining (<see cref="VisionFindingsObjective"/>).</summary>
    [JsonPropertyName("objective")] public string Objective { get; init; } = "lm";
    [JsonPropertyName("limit")] public int? Limit { get; init; }
    [JsonPropertyName("epochs")] public int Epochs { get; init; } = 1;
    [JsonPropertyName("max_steps")] public int? MaxSteps { get; init; }
    [JsonPropertyName("batch_size")] public int BatchSize { get; init; } = 8;
    [JsonPropertyName("micro_batch_size")] public int MicroBatchSize { get; init; } = 8;
    [JsonPropertyName("learning_rate")] public double LearningRate { get; init; } = 2e-5;
    /// <summary>Per-target learning rates overriding <see cref="LearningRate"/>, e.g. {"hlora": 2e-4} (HealthGPT Table 7).</summary>
    [JsonPropertyName("learning_rates")] public Dictionary<string, double>? LearningRates { get; init; }
    [JsonPropertyName("warmup_ratio")] public double WarmupRatio { get; init; } = 0.03;
    [JsonPropertyName("weight_decay")] public double WeightDecay { get; init; }
    [JsonPropertyName("max_grad_norm")] public double MaxGradNorm { get; init; } = 1.0;
    [JsonPropertyName("lr_scheduler_type")] public string Schedule { get; init; } = "cosine";
    [JsonPropertyName("router_aux_loss_coef")] public double RouterAuxLossCoef { get; init; }
    [JsonPropertyName("hlora_r")] public int HLoraRank { get; init; } = 64;
    [JsonPropertyName("hlora_alpha")] public double? HLoraAlpha { get; init; }
    [JsonPropertyName("hlora_nums")] public int HLoraExperts { get; init; } = 4;
    [JsonPropertyName("hlora_dropout")] public double HLoraDropout { get; init; } = 0.05;
    /// <summary>HealthGPT task: "comprehension" (conversation data) or "generation" (<see cref="GenerationData"/>: the
    /// answer is the output image's VQ tokens; trained through the generation plugin made by attach-hlora, with its own
    /// projector, ViT select layer and extended vocabulary).</summary>
    [JsonPropertyName("task")] public string Task { get; init; } = "comprehension";
    /// <summary>Generation stage 1: the data's images are their own targets ("Reconstruct the image.").</summary>
    [JsonPropertyName("reconstruct")] public bool Reconstruct { get; init; }
    /// <summary>ViT hidden state the plugin made by attach-hlora reads (default: 1 for generation, the model's for comprehension).</summary>
    [JsonPropertyName("vision_select_layer")] public int? VisionSelectLayer { get; init; }
    [JsonPropertyName("num_experts")] public int Experts { get; init; } = 4;
    [JsonPropertyName("top_k_experts")] public int TopK { get; init; } = 1;
}

/// <summary>A training pipeline (JSON): the model (a preset or a folder), the data folder, the template and the stages.</summary>
public sealed record PipelineConfig
{
    /// <summary>tiny-healthgpt | tiny-medmoe (written fresh into the run folder), or null with <see cref="Model"/>.</summary>
    [JsonPropertyName("preset")] public string? Preset { get; init; }
    /// <summary>A LLaVA-style model folder to start from (released checkpoints; float32 weights are trained in place).</summary>
    [JsonPropertyName("model")] public string? Model { get; init; }
    [JsonPropertyName("data")] public required string Data { get; init; }
    /// <summary>A CLIP vision folder to use instead of the model's own (mm_vision_tower / the preset's random one), e.g.
    /// a tower another pipeline pretrained — HealthGPT and Med-MoE both start from the same CLIP.</summary>
    [JsonPropertyName("vision_tower")] public string? VisionTower { get; init; }
    [JsonPropertyName("template")] public required string Template { get; init; }
    /// <summary>Image tokenizer folder for generation stages (<see cref="PatchVqTokenizer"/>); null: one is fitted on the
    /// training images of the first generation stage (k-means, <see cref="VqIndexTokens"/> entries of
    /// <see cref="VqPatchSize"/>² patches) and saved with the model.</summary>
    [JsonPropertyName("image_tokenizer")] public string? ImageTokenizer { get; init; }
    /// <summary>HealthGPT's vq_idx_nums: the number of &lt;idx_i&gt; tokens (8192 for the released VQGAN).</summary>
    [JsonPropertyName("vq_idx_nums")] public int VqIndexTokens { get; init; } = 8192;
    [JsonPropertyName("vq_patch_size")] public int VqPatchSize { get; init; } = 8;
    [JsonPropertyName("vq_image_size")] public int VqImageSize { get; init; } = 64;
    [JsonPropertyName("seed")] public int Seed { get; init; } = 42;
    [JsonPropertyName("checkpoint_every")] public int CheckpointEvery { get; init; } = 50;
    [JsonPropertyName("stages")] public required StageConfig[] Stages { get; init; }

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static PipelineConfig Load(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<PipelineConfig>(File.ReadAllText(path), Json)
                ?? throw new InvalidDataException($"{path}: empty pipeline config");
        }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a valid pipeline config: {e.Message}", e); }
    }

    /// <summary>
    /// The tiny presets' stage 0, before the papers' stages: no pretrained Phi-3 / StableLM / CLIP exists at the tiny
    /// size. First the vision tower is pretrained on MedSynth's ground truth (lesion masks, image class, lesion sides:
    /// <see cref="VisionFindingsObjective"/>) — the stand-in for CLIP's pretraining — and then frozen, as the papers
    /// freeze CLIP; then the decoder and projector are pretrained on the multi-turn conversations (every question about
    /// an image in one sequence, so each image is encoded once per pass). Sized for the demo's 1,000 MedSynth subjects
    /// (docs/training.md gives the measurements behind these choices). With <paramref name="visionTower"/> (a tower
    /// pretrained before) the vision stage is skipped.
    /// </summary>
    public static StageConfig[] TinyStage0(double scale, string? visionTower) => visionTower is not null
        ? [Stage0Language(scale)]
        : [new() { Name = "stage0-vision", Data = "seg_train.json", Objective = "findings", Train = ["vision"], Epochs = Epochs(30, scale), BatchSize = 16, MicroBatchSize = 16, LearningRate = 1e-3, WarmupRatio = 0.05 },
           Stage0Language(scale)];

    private static StageConfig Stage0Language(double scale) =>
        new() { Name = "stage0-pretrain", Data = "llava_train.json", Train = ["llm", "projector"], Epochs = Epochs(9, scale), BatchSize = 8, LearningRate = 2e-3, WarmupRatio = 0.05 };

    /// <summary>
    /// HealthGPT's three stages (healthgpt.md §4) for the tiny Phi-3-style preset, after <see cref="TinyStage0"/>.
    /// Papers' hyper-parameters where they apply (H-LoRA r / α = 2r / 4 experts); the tiny model needs larger learning
    /// rates.
    /// </summary>
    public static PipelineConfig TinyHealthGpt(string data, double scale = 1.0, string? visionTower = null, bool generation = true) => new()
    {
        Preset = "tiny-healthgpt", Data = data, Template = "phi3_instruct", VisionTower = visionTower,
        // 64 × 64 MedSynth images as 8 × 8 = 64 codes of a 256-entry patch codebook (the released VQGAN: 32 × 32 of 8192).
        VqIndexTokens = 256, VqPatchSize = 8, VqImageSize = 64,
        Stages =
        [
            .. TinyStage0(scale, visionTower),
            new() { Name = "stage1-alignment", Data = "caption_train.json", Train = ["projector"], Epochs = Epochs(1, scale), BatchSize = 8, LearningRate = 1e-3 },
            // Generation stage 1: extended vocabulary, the generation plugin and its layer-1 projector on image
            // reconstruction; the decoder stays frozen. The generation rank is 4× comprehension's, as M3's 256 vs 64.
            .. (generation ? new StageConfig[]
            {
                new() { Name = "stage1-generation", Data = "caption_train.json", Task = "generation", Reconstruct = true, Before = "attach-hlora",
                        Train = ["hlora", "projector", "vocab"], Epochs = Epochs(2, scale), BatchSize = 8, LearningRate = 2e-3,
                        HLoraRank = 64, HLoraAlpha = 128, HLoraExperts = 4, HLoraDropout = 0.05 },
            } : []),
            new() { Name = "stage2-fusion", Data = "llava_train.json", Train = ["embed_tokens", "lm_head"], Epochs = Epochs(1, scale), BatchSize = 8, LearningRate = 5e-4 },
            new() { Name = "stage3-hlora", Data = "vqa_train.json", Before = "attach-hlora", Train = ["hlora", "projector"], Epochs = Epochs(1, scale), BatchSize = 8,
                    LearningRate = 1e-3, HLoraRank = 16, HLoraAlpha = 32, HLoraExperts = 4, HLoraDropout = 0.05, Task = "comprehension" },
            .. (generation ? new StageConfig[]
            {
                new() { Name = "stage3-generation", Data = "gen_train.json", Task = "generation", Train = ["hlora", "projector"],
                        Epochs = Epochs(2, scale), BatchSize = 8, LearningRate = 1e-3 },
            } : []),
        ],
    };

    /// <summary>Med-MoE's three steps (med-moe.md §3) for the tiny StableLM-style preset, after <see cref="TinyStage0"/>.</summary>
    public static PipelineConfig TinyMedMoe(string data, double scale = 1.0, string? visionTower = null) => new()
    {
        Preset = "tiny-medmoe", Data = data, Template = "stablelm", VisionTower = visionTower,
        Stages =
        [
            .. TinyStage0(scale, visionTower),
            new() { Name = "step1-alignment", Data = "caption_train.json", Train = ["projector"], Epochs = Epochs(1, scale), BatchSize = 8, LearningRate = 1e-3 },
            new() { Name = "step2-instruct", Data = "llava_train.json", Train = ["llm", "projector"], After = "pretrain-router", Epochs = Epochs(1, scale), BatchSize = 8, LearningRate = 5e-4 },
            new() { Name = "step3-moe", Data = "vqa_train.json", Before = "upcycle-moe", Train = ["moe"], Epochs = Epochs(1, scale), BatchSize = 8, LearningRate = 1e-3,
                    Experts = 4, TopK = 1 },
        ],
    };

    private static int Epochs(int e, double scale) => Math.Max(1, (int)Math.Round(e * scale));
}

/// <summary>What a finished pipeline produced.</summary>
public sealed record PipelineResult(string ModelDir, string? AdapterPath, string? Task, IReadOnlyDictionary<string, IReadOnlyList<double>> Losses)
{
    /// <summary>The generation plugin (hlora_generation.safetensors with its projector), its extended embedding and head
    /// (fusion_layer_weights.safetensors) and the image tokenizer folder, when the pipeline had generation stages.</summary>
    public GenerationArtifacts? Generation { get; init; }
}

/// <summary>What HealthGPT's generation needs besides the model folder (gen_infer.sh: --hlora_path, --fusion_layer_path, the VQGAN).</summary>
public sealed record GenerationArtifacts(string AdapterPath, double Alpha, string FusionLayerPath, string ImageTokenizerDir, int VisionSelectLayer, int VqIndexTokens);

/// <summary>
/// Runs a <see cref="PipelineConfig"/>: writes the preset (or opens the model), then each stage — choose the trainable
/// tensors, run its hook, train — and finally writes the trained model as a loadable folder (run/model: config with the
/// moe block when upcycled, model.safetensors, tokenizer, vision_tower/) and the H-LoRA plugin (run/model/hlora_{task}.safetensors).
/// </summary>
public sealed class PipelineRunner
{
    public Action<string>? Log { get; init; }
    public Action<StepMetrics>? OnStep { get; init; }

    public PipelineResult Run(PipelineConfig p, string runDir, bool resume, CancellationToken ct = default)
    {
        Directory.CreateDirectory(runDir);
        AtomicFile.WriteAllText(Path.Combine(runDir, "pipeline.json"), p.ToJson());
        string baseDir = Path.Combine(runDir, "base");
        if (p.Preset is { } preset)
        {
            if (!(resume && File.Exists(Path.Combine(baseDir, "config.json"))))
            {
                if (Directory.Exists(baseDir)) Directory.Delete(baseDir, true);
                TinyPresets.Write(baseDir, TinyArchitecture.ByName(preset), Corpus(p.Data));
            }
        }
        else baseDir = p.Model ?? throw new InvalidDataException("pipeline config: set \"preset\" or \"model\"");
        var tok = Tokenizer.FromDirectory(baseDir);
        var tpl = ConversationTemplates.Get(p.Template);
        using var model = LlavaForCausalLM.FromPretrained(baseDir, visionTowerDir: p.VisionTower, placement: WeightPlacement.HugePages);
        var proc = ClipPreprocessorConfig.Load(Path.Combine(model.VisionTower!.Directory, "preprocessor_config.json"), padToSquare: true);
        var pixels = new PixelCache(proc);
        var trainer = new Trainer(model, pixels) { OnStep = OnStep };
        var all = Named(model).ToList();
        foreach (var (n, t) in all)
            if (t.DType != DType.F32) throw new NotSupportedException($"{n} is {t.DType}: training updates float32 weights in place (convert the checkpoint to float32)");
        var losses = new Dictionary<string, IReadOnlyList<double>>();
        var plugins = new Dictionary<string, HealthGptPlugin>(StringComparer.Ordinal);
        var pluginStage = new Dictionary<string, StageConfig>(StringComparer.Ordinal);
        PatchVqTokenizer? vq = null;
        Tokenizer? genTok = null;
        IReadOnlyList<(string Name, Tensor Tensor)> moeParams = [];
        var owned = new List<Tensor>();
        (float[] W, float[] B)? router = null;
        try
        {
            foreach (var s in p.Stages)
            {
                ct.ThrowIfCancellationRequested();
                bool findings = s.Objective switch
                {
                    "lm" => false, "findings" => true,
                    _ => throw new InvalidDataException($"stage {s.Name}: unknown objective '{s.Objective}'; expected lm or findings"),
                };
                bool generation = s.Task switch
                {
                    "comprehension" => false, "generation" => true,
                    _ => throw new InvalidDataException($"stage {s.Name}: unknown task '{s.Task}'; expected comprehension or generation"),
                };
                if (generation && findings) throw new InvalidDataException($"stage {s.Name}: the findings objective trains the vision tower; it has no generation task");
                if (generation)
                {
                    vq ??= ImageTokenizerFor(p, s, ct);
                    genTok ??= GenerationData.WithVqTokens(tok, vq.CodebookSize);
                }
                var data = findings ? FindingsData.Load(Path.Combine(p.Data, s.Data), s.Limit)
                    : generation ? GenerationData.Load(Path.Combine(p.Data, s.Data), genTok!, tpl, vq!, s.Reconstruct, s.Limit, ct)
                    : ConversationData.Load(Path.Combine(p.Data, s.Data), tok, tpl, s.Limit);
                Log?.Invoke($"{s.Name}: {data.Count} sequences from {s.Data}, training {string.Join(" + ", s.Train)}");
                if (s.Before == "attach-hlora" && !plugins.ContainsKey(s.Task))
                {
                    var settings = new HLoraSettings(s.HLoraRank, s.HLoraAlpha ?? 2.0 * s.HLoraRank, s.HLoraExperts, s.HLoraDropout);
                    var options = new HealthGptPluginOptions
                    {
                        Name = s.Task, Dropout = (float)s.HLoraDropout,
                        VisionSelectLayer = s.VisionSelectLayer ?? (generation ? 1 : model.Multimodal.SelectLayer),
                        TokenizerLength = generation ? GenerationData.FirstVqTokenId(genTok!) : null, VqIndexTokens = vq?.CodebookSize ?? 0,
                    };
                    // HealthGPT's hierarchical visual perception: the generation task reads a shallow ViT layer through its
                    // own projector (healthgpt.md §2), trained from a fresh nn.Linear initialisation.
                    var (proj, projTensors) = generation ? FreshProjector(model.Projector, p.Seed) : (null, []);
                    plugins[s.Task] = HealthGptPlugin.Create(model.LanguageModel, settings, options, projector: proj, projectorTensors: projTensors, seed: p.Seed);
                    pluginStage[s.Task] = s;
                }
                if (generation && !plugins.ContainsKey("generation"))
                    throw new InvalidDataException($"stage {s.Name}: a generation stage needs the generation plugin (\"before\": \"attach-hlora\" on this or an earlier generation stage)");
                var plugin = plugins.GetValueOrDefault(s.Task);
                if (s.Before == "upcycle-moe" && moeParams.Count == 0)
                {
                    moeParams = MedMoeUpcycling.Upcycle(model.LanguageModel, new MedMoeUpcycleOptions
                    {
                        Experts = s.Experts, Gating = new MoeGating { TopK = s.TopK, DropTokens = false }, Seed = p.Seed,
                    });
                    if (router is { } r) owned.AddRange(RouterPretraining.LoadIntoRouters(model.LanguageModel, r.W, r.B));
                }
                foreach (var (_, t) in all) t.RequiresGrad = false;
                foreach (var pl in plugins.Values)
                    foreach (var t in PluginTensors(model, pl)) t.RequiresGrad = false;
                var trainable = Select(s, all, model, plugin, moeParams, routerPretrained: router is not null, out var targetOf);
                using var objective = findings ? new VisionFindingsObjective(model, pixels, data.Select(d => d.Modality!).Distinct().Order(StringComparer.Ordinal).ToList(), p.Seed) : null;
                if (objective is not null)
                    foreach (var (n, t) in objective.Parameters) { trainable.Add((n, t)); targetOf[n] = "vision"; }
                foreach (var (_, t) in trainable) t.RequiresGrad = true;
                var o = new StageOptions
                {
                    Epochs = s.Epochs, MaxSteps = s.MaxSteps, BatchSize = s.BatchSize, MicroBatchSize = s.MicroBatchSize, LearningRate = s.LearningRate, WarmupRatio = s.WarmupRatio,
                    LearningRateFor = s.LearningRates is { Count: > 0 } lrs ? name => lrs.TryGetValue(targetOf[name], out var lr) ? lr : s.LearningRate : null,
                    WeightDecay = s.WeightDecay, MaxGradNorm = s.MaxGradNorm, Schedule = s.Schedule, CheckpointEvery = p.CheckpointEvery,
                    RouterAuxLossCoef = s.RouterAuxLossCoef, Seed = p.Seed,
                };
                var sel = plugin;
                if (sel is not null) Log?.Invoke($"{s.Name}: through the {sel.Name} plugin (ViT layer {sel.VisionSelectLayer})");
                losses[s.Name] = trainer.Run(s.Name, trainable, data, o, runDir, resume,
                    sel is null ? null : rng => sel.Selection(training: true, dropoutRng: rng), ct, objective);
                foreach (var (_, t) in trainable) t.RequiresGrad = false;
                if (objective is not null)
                {
                    string test = Path.Combine(p.Data, s.Data.Replace("_train", "_test", StringComparison.Ordinal));
                    if (test != Path.Combine(p.Data, s.Data) && File.Exists(test))
                    {
                        var acc = objective.Evaluate(FindingsData.Load(test), ct: ct);
                        Log?.Invoke($"{s.Name}: held-out {acc.Images} images: lesion patches {acc.BalancedPatchAccuracy:F1} % (balanced), lesion presence {acc.PresenceAccuracy:F1} %, image class {acc.ClassAccuracy:F1} %, lesion sides {acc.SidesAccuracy:F1} %; "
                            + "presence by class: " + string.Join(", ", acc.PresenceAccuracyByClass.Select(kv => $"{kv.Key} {kv.Value:F0} %")));
                    }
                }
                if (s.After == "pretrain-router")
                {
                    router = PretrainRouter(model, data, pixels, s.Experts, p.Seed, ct);
                    Log?.Invoke($"{s.Name}: router pre-trained on modality labels");
                }
            }
            string outDir = Path.Combine(runDir, "model");
            SaveModel(model, baseDir, outDir, moeParams.Count > 0 ? p.Stages.First(x => x.Before == "upcycle-moe") : null);
            string? adapterPath = null, adapterTask = null;
            GenerationArtifacts? gen = null;
            foreach (var (task, plugin) in plugins)
            {
                string path = Path.Combine(outDir, $"hlora_{task}.safetensors");
                plugin.Save(model.LanguageModel, path);
                if (task != "generation" || adapterPath is null) (adapterPath, adapterTask) = (path, task);
                if (task != "generation") continue;
                string fusion = Path.Combine(outDir, "fusion_layer_weights.safetensors"), vqDir = Path.Combine(outDir, "image_tokenizer");
                plugin.SaveFusionLayer(fusion);
                vq!.Save(vqDir);
                var st = pluginStage[task];
                gen = new GenerationArtifacts(path, st.HLoraAlpha ?? 2.0 * st.HLoraRank, fusion, vqDir, plugin.VisionSelectLayer, vq.CodebookSize);
            }
            return new PipelineResult(outDir, adapterPath, adapterTask, losses) { Generation = gen };
        }
        finally
        {
            foreach (var pl in plugins.Values) pl.Dispose();
            foreach (var (_, t) in moeParams) t.Dispose();
            foreach (var t in owned) t.Dispose();
        }
    }

    private static IEnumerable<string> Corpus(string dataDir)
    {
        foreach (var f in new[] { "vqa_train.json", "caption_train.json", "llava_train.json", "vqa_test.json", "gen_train.json", "gen_test.json" })
        {
            string path = Path.Combine(dataDir, f);
            if (!File.Exists(path)) continue;
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            foreach (var item in doc.RootElement.EnumerateArray())
                if (item.TryGetProperty("conversations", out var c))
                    foreach (var t in c.EnumerateArray()) yield return t.GetProperty("value").GetString() ?? "";
        }
        yield return GenerationData.ReconstructionPrompt;
        // The templates' fixed text (system prompts, role names).
        foreach (var t in ConversationTemplates.All) yield return t.RenderQuestion("x", hasImage: false) + " x";
    }

    /// <summary>Every float32 checkpoint tensor of the LLaVA model: language model + projector, and the vision tower (vision_tower.…).</summary>
    private static IEnumerable<(string Name, Tensor Tensor)> Named(LlavaForCausalLM m) =>
        m.LanguageModel.NamedWeights().Concat(m.VisionTower!.NamedWeights().Select(v => ("vision_tower." + v.Name, v.Tensor)));

    private static List<(string Name, Tensor Tensor)> Select(StageConfig s, List<(string Name, Tensor Tensor)> all, LlavaForCausalLM model,
        HealthGptPlugin? plugin, IReadOnlyList<(string Name, Tensor Tensor)> moe, bool routerPretrained, out Dictionary<string, string> targetOf)
    {
        var list = new List<(string, Tensor)>();
        targetOf = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var what in s.Train)
        {
            IEnumerable<(string Name, Tensor Tensor)> add = what switch
            {
                "llm" => all.Where(x => !x.Name.StartsWith("vision_tower.", StringComparison.Ordinal) && !x.Name.Contains("mm_projector")),
                "vision" => all.Where(x => x.Name.StartsWith("vision_tower.", StringComparison.Ordinal)),
                "projector" => plugin?.Projector is { } own
                    ? own.Linears.SelectMany((l, i) => new[] { ($"{plugin.Name}.mm_projector.{2 * i}.weight", l.Weight), ($"{plugin.Name}.mm_projector.{2 * i}.bias", l.Bias!) })
                    : all.Where(x => x.Name.Contains("mm_projector")),
                "vocab" => plugin?.TokenEmbeddings is { } emb && plugin.LmHead is { } head
                    ? [($"{plugin.Name}.embed_tokens.weight", emb), ($"{plugin.Name}.lm_head.weight", head.Weight)]
                    : throw new InvalidDataException($"stage {s.Name}: 'vocab' trains the generation plugin's extended vocabulary; this stage's task has none"),
                "embed_tokens" => all.Where(x => x.Name == "model.embed_tokens.weight"),
                "lm_head" => all.Where(x => x.Name == "lm_head.weight"),
                "hlora" => plugin is null ? throw new InvalidDataException($"stage {s.Name}: 'hlora' needs \"before\": \"attach-hlora\"")
                    : AdapterTargets.Parameters(model.LanguageModel, plugin.Name),
                // Med-MoE step 3 trains the experts and the meta expert; the pre-trained router stays frozen.
                "moe" => moe.Count == 0 ? throw new InvalidDataException($"stage {s.Name}: 'moe' needs \"before\": \"upcycle-moe\"")
                    : moe.Where(x => !(routerPretrained && x.Name.Contains("gate.wg"))),
                "router" => moe.Where(x => x.Name.Contains("gate.wg")),
                _ => throw new InvalidDataException($"stage {s.Name}: unknown train target '{what}'; expected llm, vision, projector, embed_tokens, lm_head, vocab, hlora, moe or router"),
            };
            foreach (var x in add)
                if (!list.Any(y => ReferenceEquals(y.Item2, x.Tensor)))
                {
                    list.Add((x.Name, x.Tensor));
                    targetOf[x.Name] = what;
                }
        }
        return list;
    }

    /// <summary>Every tensor a plugin owns: its H-LoRA matrices, projector and vocabulary.</summary>
    private static IEnumerable<Tensor> PluginTensors(LlavaForCausalLM model, HealthGptPlugin p) =>
        AdapterTargets.Parameters(model.LanguageModel, p.Name).Select(x => x.Tensor)
            .Concat(p.Projector?.Linears.SelectMany(l => l.Bias is null ? [l.Weight] : new[] { l.Weight, l.Bias }) ?? [])
            .Concat(p.TokenEmbeddings is { } e ? [e] : []).Concat(p.LmHead is { } h ? [h.Weight] : []);

    /// <summary>The pipeline's image tokenizer: the configured folder, or a codebook fitted on the stage's training images.</summary>
    private PatchVqTokenizer ImageTokenizerFor(PipelineConfig p, StageConfig s, CancellationToken ct)
    {
        if (p.ImageTokenizer is { } dir) return PatchVqTokenizer.Load(dir);
        string path = Path.Combine(p.Data, s.Data);
        using var doc = ConversationData.OpenList(path, "items with images");
        string root = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var files = new List<string>();
        foreach (var item in doc.RootElement.EnumerateArray())
            foreach (var key in new[] { "image", "output_image" })
                if (item.TryGetProperty(key, out var e) && e.ValueKind == JsonValueKind.String) files.Add(Path.Combine(root, e.GetString()!));
        files = files.Distinct(StringComparer.Ordinal).ToList();
        Log?.Invoke($"image tokenizer: fitting {p.VqIndexTokens} codes of {p.VqPatchSize}×{p.VqPatchSize} patches on {files.Count} images of {s.Data}");
        return PatchVqTokenizer.Fit(files.Select(f => ImageConversion.ToRgb8(ImageLoader.Load(f))), p.VqImageSize, p.VqPatchSize, p.VqIndexTokens, seed: (ulong)p.Seed, ct: ct);
    }

    /// <summary>A projector shaped as <paramref name="shape"/>, freshly initialised (nn.Linear weights, zero biases), trainable.</summary>
    private static (MultimodalProjector, IReadOnlyList<Tensor>) FreshProjector(MultimodalProjector shape, int seed)
    {
        var rng = new Random(seed ^ 0x6E6);
        var tensors = new List<Tensor>();
        var linears = new List<LinearLayer>();
        foreach (var l in shape.Linears)
        {
            var w = AdapterInit.Uniform(l.OutFeatures, l.InFeatures, rng);
            var b = Tensor.Zeros(l.OutFeatures);
            b.RequiresGrad = true;
            tensors.Add(w); tensors.Add(b);
            linears.Add(new LinearLayer(w, b));
        }
        return (new MultimodalProjector(linears), tensors);
    }

    /// <summary>Router_Train.ipynb on the stage's data: one embedding per sequence (image + first question), modality labels.</summary>
    private static (float[] W, float[] B) PretrainRouter(LlavaForCausalLM model, IReadOnlyList<TrainingExample> data, PixelCache pixels, int experts, int seed, CancellationToken ct)
    {
        var labelled = data.Where(d => d.Modality is not null && d.ImagePath is not null).ToList();
        var names = labelled.Select(d => d.Modality!).Distinct().Order(StringComparer.Ordinal).ToList();
        if (names.Count == 0) throw new InvalidDataException("pretrain-router: the stage's data has no 'modality' labels");
        if (names.Count > experts) throw new InvalidDataException($"pretrain-router: {names.Count} modalities ({string.Join(", ", names)}) for {experts} experts");
        var emb = new List<float[]>();
        var labels = new List<int>();
        foreach (var d in labelled)
        {
            using var _ = GradMode.NoGrad();
            using var px = pixels.Tensor(d.ImagePath!);
            using var f = model.EncodeImages(px, ct);
            using var inputs = model.PrepareInputsLabelsForMultimodal(d.InputIds, f);
            emb.Add(RouterPretraining.Embedding(model.LanguageModel, inputs.InputsEmbeds, ct));
            labels.Add(names.IndexOf(d.Modality!));
        }
        return RouterPretraining.Train(emb, labels, experts, new RouterTrainingOptions { Seed = seed }, ct);
    }

    /// <summary>Writes the trained model as a folder the loaders read back (with the moe block when upcycled).</summary>
    private static void SaveModel(LlavaForCausalLM model, string baseDir, string outDir, StageConfig? moe)
    {
        Directory.CreateDirectory(outDir);
        var lmTensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (n, t) in model.LanguageModel.NamedWeights()) lmTensors[n] = t;
        var moeLayers = model.LanguageModel.Layers.Select((l, i) => (l, i)).Where(x => x.l.Mlp is MoeMlp).Select(x => x.i).ToArray();
        foreach (int l in moeLayers)
        {
            foreach (var k in lmTensors.Keys.Where(k => k.StartsWith($"model.layers.{l}.mlp.", StringComparison.Ordinal)).ToList()) lmTensors.Remove(k);
            var m = (MoeMlp)model.LanguageModel.Layers[l].Mlp;
            string p = $"model.layers.{l}.mlp.";
            lmTensors[p + "deepspeed_moe.gate.wg.weight"] = m.Router.Weight;
            if (m.Router.Bias is not null) lmTensors[p + "deepspeed_moe.gate.wg.bias"] = m.Router.Bias;
            for (int j = 0; j < m.Experts.Count; j++)
                foreach (var (n, get, _) in m.Experts[j].Linears()) AddLinear(lmTensors, p + $"deepspeed_moe.experts.deepspeed_experts.{j}.{n}", get());
            if (m.MetaExpert is not null)
                foreach (var (n, get, _) in m.MetaExpert.Linears()) AddLinear(lmTensors, p + $"meta_moe.{n}", get());
        }
        // MoE-LLaVA / Med-MoE folders nest the projector under image_spatial_proj (the loader expects it for moe_* types).
        string Key(string k) => moeLayers.Length > 0 && k.StartsWith("model.mm_projector.", StringComparison.Ordinal)
            ? "model.mm_projector.image_spatial_proj." + k["model.mm_projector.".Length..] : k;
        SafetensorsWriter.Write(Path.Combine(outDir, "model.safetensors"),
            lmTensors.Select(kv => SafetensorsTensor.FromFloat32(Key(kv.Key), kv.Value.ToFloatArray(), kv.Value.ShapeArray())));
        var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(baseDir, "config.json")))!.AsObject();
        if (moeLayers.Length > 0)
        {
            cfg["model_type"] = cfg["model_type"]!.GetValue<string>() == "llava_stablelm" ? "moe_llava_stablelm" : "moe_llava_phi";
            var m0 = (MoeMlp)model.LanguageModel.Layers[moeLayers[0]].Mlp;
            cfg["moe"] = new JsonObject
            {
                ["moe_enable"] = true, ["moe_mode"] = "sparse", ["moe_layers_idx"] = new JsonArray(moeLayers.Select(i => (JsonNode?)i).ToArray()),
                ["num_experts"] = new JsonArray(moeLayers.Select(_ => (JsonNode?)m0.Experts.Count).ToArray()), ["top_k_experts"] = m0.Gating.TopK,
                ["capacity_factor"] = 1.5, ["eval_capacity_factor"] = 2.0, ["min_capacity"] = 0, ["use_residual"] = false,
                ["router_aux_loss_coef"] = moe?.RouterAuxLossCoef ?? 0, ["ep_size"] = 1,
            };
        }
        AtomicFile.WriteAllText(Path.Combine(outDir, "config.json"), cfg.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        foreach (var f in new[] { "tokenizer.json", "generation_config.json" })
            if (File.Exists(Path.Combine(baseDir, f))) File.Copy(Path.Combine(baseDir, f), Path.Combine(outDir, f), overwrite: true);
        string vt = Path.Combine(outDir, "vision_tower");
        Directory.CreateDirectory(vt);
        string srcVt = model.VisionTower!.Directory;
        foreach (var f in new[] { "config.json", "preprocessor_config.json" }) File.Copy(Path.Combine(srcVt, f), Path.Combine(vt, f), overwrite: true);
        SafetensorsWriter.Write(Path.Combine(vt, "model.safetensors"),
            model.VisionTower.NamedWeights().Select(kv => SafetensorsTensor.FromFloat32(kv.Name, kv.Tensor.ToFloatArray(), kv.Tensor.ShapeArray())));
    }

    private static void AddLinear(Dictionary<string, Tensor> d, string name, LinearLayer l)
    {
        d[name + ".weight"] = l.Weight;
        if (l.Bias is not null) d[name + ".bias"] = l.Bias;
    }
}
