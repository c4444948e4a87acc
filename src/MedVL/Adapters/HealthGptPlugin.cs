using MedVL.Adapters.Config;
using MedVL.Autograd;
using MedVL.Formats;
using MedVL.Models;
using MedVL.Models.Blocks;
using MedVL.Tensors;

namespace MedVL.Adapters;

/// <summary>How to read a HealthGPT plugin file (the .bin files carry no config).</summary>
public sealed record HealthGptPluginOptions
{
    /// <summary>Adapter name, also the task: "comprehension" or "generation" by convention.</summary>
    public string Name { get; init; } = "comprehension";
    /// <summary>lora_alpha; default 2 · r_total, as every released HealthGPT script sets it (--hlora_alpha = 2 r).</summary>
    public double? Alpha { get; init; }
    /// <summary>The paper's Eq. 10 scaling α·k/(r/k) instead of the released code's α/r·k.</summary>
    public bool PaperScaling { get; init; }
    public float Dropout { get; init; }
    /// <summary>CLIP hidden state the task reads: −2 for comprehension, 1 for generation (healthgpt.md §2).</summary>
    public int VisionSelectLayer { get; init; } = -2;
    /// <summary>Vocabulary extension (add_special_tokens_and_resize_model): len(tokenizer) before the VQ tokens are added;
    /// null = no extension (HealthGPT-L14/XL32 comprehension).</summary>
    public int? TokenizerLength { get; init; }
    /// <summary>Number of &lt;idx_i&gt; tokens (the VQGAN codebook: 8192).</summary>
    public int VqIndexTokens { get; init; } = 8192;
    /// <summary>fusion_layer_weights.bin: the stage-2 embedding and output head replacing the extended ones.</summary>
    public string? FusionLayerPath { get; init; }
}

/// <summary>
/// One HealthGPT task plugin (healthgpt.md §1.6, §3): an H-LoRA set on every target Linear, its own mm_projector, its
/// ViT select layer, and (for the unified vocabulary) its own token embeddings and output head. Several plugins sit side
/// by side on one base model; a request picks one with <see cref="Selection"/> — nothing is reloaded or copied (the
/// official demo reloads the whole model to switch tasks).
/// </summary>
public sealed class HealthGptPlugin : IDisposable
{
    private const string Prefix = "base_model.model.";

    private HealthGptPlugin(string name, HLoraSettings settings, MultimodalProjector? projector, IReadOnlyList<Tensor> projectorTensors,
        int selectLayer, Tensor? embeddings, LinearLayer? lmHead)
    {
        Name = name; Settings = settings; Projector = projector; _projectorTensors = projectorTensors;
        VisionSelectLayer = selectLayer; TokenEmbeddings = embeddings; LmHead = lmHead;
    }

    private readonly IReadOnlyList<Tensor> _projectorTensors;

    public string Name { get; }
    public HLoraSettings Settings { get; }
    public MultimodalProjector? Projector { get; }
    public int VisionSelectLayer { get; }
    public Tensor? TokenEmbeddings { get; }
    public LinearLayer? LmHead { get; }
    /// <summary>Wrapped modules that got an H-LoRA adapter (HF paths).</summary>
    public IReadOnlyList<string> Modules { get; private init; } = [];

    /// <summary>The selection a request of this task runs with.</summary>
    public AdapterSelection Selection(bool training = false, Random? dropoutRng = null) =>
        new([Name], training, dropoutRng)
        {
            TokenEmbeddings = TokenEmbeddings, LmHead = LmHead, Projector = Projector, VisionSelectLayer = VisionSelectLayer,
        };

    /// <summary>
    /// Reads com_hlora_weights.bin / gen_hlora_weights.bin (torch pickle or safetensors with the same keys) and attaches
    /// the H-LoRA adapters to <paramref name="model"/>. Rank and expert count come from the tensors' shapes. Every key must
    /// be an H-LoRA tensor of a Linear of the model or an mm_projector tensor: anything else is an error listing all of them.
    /// </summary>
    public static HealthGptPlugin Load(CausalLM model, string path, HealthGptPluginOptions? options = null)
    {
        options ??= new();
        using var src = MedVL.Formats.Checkpoint.Open(path);
        var slots = AdapterTargets.Enumerate(model).ToDictionary(s => s.ModulePath, StringComparer.Ordinal);
        var perModule = new SortedDictionary<string, Dictionary<string, TensorEntry>>(StringComparer.Ordinal);
        var projector = new SortedDictionary<string, TensorEntry>(StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (var (key, entry) in src.Tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (kv.Key, kv.Value)))
        {
            if (!key.StartsWith(Prefix, StringComparison.Ordinal)) { problems.Add($"{key}: expected keys under '{Prefix}'"); continue; }
            string rest = key[Prefix.Length..];
            if (rest.StartsWith("model.mm_projector.", StringComparison.Ordinal)) { projector[rest["model.mm_projector.".Length..]] = entry; continue; }
            string? kind = rest.EndsWith(".lora_A.weight") ? "lora_A" : rest.EndsWith(".lora_B.weight") ? "lora_B" : rest.EndsWith(".lora_route.weight") ? "lora_route" : null;
            if (kind is null) { problems.Add($"{key}: not an H-LoRA tensor (lora_A / lora_B / lora_route) or mm_projector tensor"); continue; }
            string module = rest[..^(kind.Length + ".weight".Length + 1)];
            if (!slots.ContainsKey(module)) { problems.Add($"{key}: the model has no Linear '{module}'"); continue; }
            if (!perModule.TryGetValue(module, out var d)) perModule[module] = d = new();
            d[kind] = entry;
        }
        HLoraSettings? settings = null;
        foreach (var (module, d) in perModule)
        {
            foreach (var need in new[] { "lora_A", "lora_B", "lora_route" })
                if (!d.ContainsKey(need)) problems.Add($"{Prefix}{module}.{need}.weight: missing (the other H-LoRA tensors of this module are present)");
            if (d.Count != 3) continue;
            var lin = slots[module].Get();
            int r = d["lora_A"].Shape[0], k = d["lora_route"].Shape[0];
            if (d["lora_A"].Shape is not [_, var ain] || ain != lin.InFeatures) problems.Add($"{Prefix}{module}.lora_A.weight: shape [{string.Join(", ", d["lora_A"].Shape)}], expected [r, {lin.InFeatures}]");
            if (d["lora_B"].Shape is not [var bo, var br] || bo != lin.OutFeatures || br != r) problems.Add($"{Prefix}{module}.lora_B.weight: shape [{string.Join(", ", d["lora_B"].Shape)}], expected [{lin.OutFeatures}, {r}]");
            if (d["lora_route"].Shape is not [_, var ri] || ri != lin.InFeatures) problems.Add($"{Prefix}{module}.lora_route.weight: shape [{string.Join(", ", d["lora_route"].Shape)}], expected [k, {lin.InFeatures}]");
            settings ??= new HLoraSettings(r, options.Alpha ?? 2.0 * r, k, options.Dropout);
            if (r != settings.RankTotal || k != settings.Experts)
                problems.Add($"{Prefix}{module}: rank {r} × {k} experts differs from the file's other modules ({settings.RankTotal} × {settings.Experts})");
        }
        if (settings is null && problems.Count == 0) problems.Add("no H-LoRA tensors in the file");
        if (problems.Count > 0) throw new AdapterFormatException(path, null, $"{problems.Count} key(s) cannot be used as a HealthGPT H-LoRA plugin", problems);
        settings!.Validate(path);

        var (proj, projTensors) = LoadProjector(projector, path);
        var (embed, head) = Vocabulary(model, options, path);
        double scaling = options.PaperScaling ? settings.PaperScaling : settings.Scaling;
        foreach (var (module, d) in perModule)
        {
            var adapted = AdapterTargets.Wrap(slots[module]);
            adapted.Attach(new HLoraAdapter(options.Name, Param(d["lora_route"]), Param(d["lora_A"]), Param(d["lora_B"]), scaling, options.Dropout));
        }
        return new HealthGptPlugin(options.Name, settings, proj, projTensors, options.VisionSelectLayer, embed, head)
        {
            Modules = perModule.Keys.ToArray(),
        };
    }

    /// <summary>
    /// A new, untrained plugin for stage 3: H-LoRA on every Linear named in <paramref name="targetNames"/> (default
    /// HealthGPT's find_all_linear_names: all but lm_head), initialised as PEFT does (lora_A and lora_route with
    /// nn.Linear's kaiming-uniform, lora_B zero, so the model starts exactly at the base), plus an optional projector
    /// (trainable copy made by the caller) and vocabulary.
    /// </summary>
    public static HealthGptPlugin Create(CausalLM model, HLoraSettings settings, HealthGptPluginOptions? options = null,
        IEnumerable<string>? targetNames = null, MultimodalProjector? projector = null, IReadOnlyList<Tensor>? projectorTensors = null, int seed = 0)
    {
        options ??= new();
        settings.Validate("H-LoRA settings");
        var targets = new HashSet<string>(targetNames ?? AdapterTargets.AllLinearNames(model), StringComparer.Ordinal);
        var rng = new Random(seed);
        Tensor Uniform(int rows, int cols) => AdapterInit.Uniform(rows, cols, rng);
        double scaling = options.PaperScaling ? settings.PaperScaling : settings.Scaling;
        var modules = new List<string>();
        foreach (var slot in AdapterTargets.Enumerate(model).Where(s => targets.Contains(s.Name)))
        {
            var lin = slot.Get();
            var b = Tensor.Zeros(lin.OutFeatures, settings.RankTotal);
            b.RequiresGrad = true;
            AdapterTargets.Wrap(slot).Attach(new HLoraAdapter(options.Name, Uniform(settings.Experts, lin.InFeatures), Uniform(settings.RankTotal, lin.InFeatures), b, scaling, (float)settings.Dropout));
            modules.Add(slot.ModulePath);
        }
        if (modules.Count == 0) throw new ArgumentException($"no Linear of the model is named {string.Join(", ", targets)}");
        var (embed, head) = options.TokenizerLength is { } len
            ? VocabularyExtension.Extend(model, len, VocabularyExtension.VqTokens(options.VqIndexTokens).Count) : (null, null);
        return new HealthGptPlugin(options.Name, settings, projector, projectorTensors ?? [], options.VisionSelectLayer, embed,
            head is null ? null : new LinearLayer(head)) { Modules = modules };
    }

    /// <summary>
    /// Writes the plugin as HealthGPT's com/gen_hlora_weights.bin would hold it, in safetensors (atomic): H-LoRA tensors
    /// under base_model.model.{module}.lora_*.weight and the projector under base_model.model.model.mm_projector.{i}.*.
    /// <see cref="Load"/> reads it back.
    /// </summary>
    public void Save(CausalLM model, string path)
    {
        var list = AdapterTargets.Parameters(model, Name)
            .Select(p => SafetensorsTensor.FromFloat32(Prefix + p.Name, p.Tensor.ToFloatArray(), p.Tensor.ShapeArray())).ToList();
        if (Projector is not null)
            for (int i = 0; i < Projector.Linears.Count; i++)
            {
                var l = Projector.Linears[i];
                list.Add(SafetensorsTensor.FromFloat32($"{Prefix}model.mm_projector.{2 * i}.weight", l.Weight.ToFloatArray(), l.Weight.ShapeArray()));
                if (l.Bias is not null) list.Add(SafetensorsTensor.FromFloat32($"{Prefix}model.mm_projector.{2 * i}.bias", l.Bias.ToFloatArray(), l.Bias.ShapeArray()));
            }
        SafetensorsWriter.Write(path, list, new Dictionary<string, string> { ["format"] = "pt", ["medvl"] = "healthgpt-hlora" });
    }

    /// <summary>
    /// Writes the plugin's embedding and output head as HealthGPT's fusion_layer_weights.bin holds them (healthgpt.md §1.6:
    /// base_model.model.model.embed_tokens.weight, base_model.model.lm_head.weight), in safetensors (atomic);
    /// <see cref="HealthGptPluginOptions.FusionLayerPath"/> reads it back.
    /// </summary>
    public void SaveFusionLayer(string path)
    {
        if (TokenEmbeddings is null || LmHead is null) throw new InvalidOperationException($"plugin {Name} has no vocabulary of its own to save");
        SafetensorsWriter.Write(path,
        [
            SafetensorsTensor.FromFloat32($"{Prefix}model.embed_tokens.weight", TokenEmbeddings.ToFloatArray(), TokenEmbeddings.ShapeArray()),
            SafetensorsTensor.FromFloat32($"{Prefix}lm_head.weight", LmHead.Weight.ToFloatArray(), LmHead.Weight.ShapeArray()),
        ], new Dictionary<string, string> { ["format"] = "pt", ["medvl"] = "healthgpt-fusion-layer" });
    }

    private static Tensor Param(TensorEntry e)
    {
        using var t = e.ToTensor();
        return AdapterMath.Parameter(t, e.Name);
    }

    /// <summary>mm_projector.{0,2,…}.{weight,bias} → mlp{N}x_gelu (a single index 0 is the linear projector).</summary>
    private static (MultimodalProjector?, IReadOnlyList<Tensor>) LoadProjector(SortedDictionary<string, TensorEntry> p, string path)
    {
        if (p.Count == 0) return (null, []);
        var indices = p.Keys.Select(k => k.Split('.')[0]).Distinct().Select(s => int.TryParse(s, out int i) ? i : -1).Order().ToArray();
        if (indices.Any(i => i < 0 || i % 2 != 0) || indices.Where((v, j) => v != 2 * j).Any() || p.Count != 2 * indices.Length)
            throw new AdapterFormatException(path, "mm_projector", $"keys {string.Join(", ", p.Keys)}; expected {{0,2,4,…}}.{{weight,bias}} of an mlp·x_gelu projector");
        var tensors = new List<Tensor>();
        var linears = new List<LinearLayer>();
        foreach (int i in indices)
        {
            var w = Param(p[$"{i}.weight"]);
            var b = Param(p[$"{i}.bias"]);
            tensors.Add(w); tensors.Add(b);
            linears.Add(new LinearLayer(w, b));
        }
        return (new MultimodalProjector(linears), tensors);
    }

    /// <summary>The plugin's embeddings and head: the fusion layer if given, else the vocabulary extension, else none.</summary>
    private static (Tensor?, LinearLayer?) Vocabulary(CausalLM model, HealthGptPluginOptions o, string path)
    {
        if (o.FusionLayerPath is { } fusionPath)
        {
            using var f = MedVL.Formats.Checkpoint.Open(fusionPath);
            var known = new[] { "base_model.model.model.embed_tokens.weight", "base_model.model.lm_head.weight" };
            var extra = f.Tensors.Keys.Except(known).Order(StringComparer.Ordinal).ToArray();
            var missing = known.Except(f.Tensors.Keys).ToArray();
            if (extra.Length + missing.Length > 0)
                throw new AdapterFormatException(fusionPath, null, "a fusion layer file holds exactly the embedding and the output head",
                    [.. extra.Select(k => $"{k}: unexpected"), .. missing.Select(k => $"{k}: missing")]);
            var e = Param(f.Tensors[known[0]]);
            var h = Param(f.Tensors[known[1]]);
            e.RequiresGrad = h.RequiresGrad = false;
            if (e.Size(1) != model.HiddenSize || h.Size(1) != model.HiddenSize || e.Size(0) != h.Size(0))
                throw new AdapterFormatException(fusionPath, null, $"embed_tokens {e.Describe()} / lm_head {h.Describe()} must be [V, {model.HiddenSize}] with the same V");
            return (e, new LinearLayer(h));
        }
        if (o.TokenizerLength is not { } len) return (null, null);
        var (emb, head) = VocabularyExtension.Extend(model, len, VocabularyExtension.VqTokens(o.VqIndexTokens).Count);
        return (emb, new LinearLayer(head));
    }

    public void Dispose()
    {
        foreach (var t in _projectorTensors) t.Dispose();
        TokenEmbeddings?.Dispose();
        LmHead?.Weight.Dispose();
    }
}

/// <summary>
/// HealthGPT's unified vocabulary (add_special_tokens_and_resize_model, healthgpt.md §3.2): &lt;start_index&gt;,
/// &lt;idx_0&gt; … &lt;idx_{N−1}&gt;, &lt;end_index&gt;, &lt;pixel_newline&gt; appended in that order after the tokenizer's
/// len(tokenizer) ids; embed_tokens and lm_head resized to len + n_new rows (HF resize keeps the first min(old, new)
/// rows) and the n_new new rows set to the mean of all rows before them.
/// </summary>
public static class VocabularyExtension
{
    public static IReadOnlyList<string> VqTokens(int indexTokens) =>
        ["<start_index>", .. Enumerable.Range(0, indexTokens).Select(i => $"<idx_{i}>"), "<end_index>", "<pixel_newline>"];

    /// <summary>New float32 embeddings and head [tokenizerLength + newTokens, H] (the base model is not changed).</summary>
    public static (Tensor Embeddings, Tensor LmHead) Extend(CausalLM model, int tokenizerLength, int newTokens)
    {
        if (tokenizerLength <= 0 || newTokens < 0) throw new ArgumentOutOfRangeException(nameof(tokenizerLength));
        return (Resize(model.EmbedTokensWeight, tokenizerLength, newTokens), Resize(model.LmHead.Weight, tokenizerLength, newTokens));
    }

    private static Tensor Resize(Tensor w, int tokenizerLength, int newTokens)
    {
        using var _ = GradMode.NoGrad();
        int h = w.Size(1), newLen = tokenizerLength + newTokens, keep = Math.Min(w.Size(0), newLen);
        var src = w.ToFloatArray();
        var dst = new float[(long)newLen * h];
        Array.Copy(src, dst, (long)keep * h);
        int meanRows = newLen - newTokens;
        var mean = new double[h];
        for (int r = 0; r < meanRows; r++)
            for (int c = 0; c < h; c++) mean[c] += dst[(long)r * h + c];
        for (int r = meanRows; r < newLen; r++)
            for (int c = 0; c < h; c++) dst[(long)r * h + c] = (float)(mean[c] / meanRows);
        return Tensor.FromArray(dst, newLen, h);
    }
}
