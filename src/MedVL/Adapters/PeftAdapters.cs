using System.Text.Json;
using System.Text.Json.Nodes;
using MedVL.Adapters.Config;
using MedVL.Autograd;
using MedVL.Formats;
using MedVL.IO;
using MedVL.Models;
using MedVL.Tensors;

namespace MedVL.Adapters;

/// <summary>
/// PEFT adapter folders (adapter_config.json + adapter_model.safetensors, as LoraConfig / save_pretrained write them):
/// plain LoRA (rank_pattern, alpha_pattern, rsLoRA) and MedVL's MoELoRA files in the same layout (peft_type "MOELORA",
/// lora_nums experts, keys lora_gate.weight, lora_A.{i}.weight, lora_B.{i}.weight). Keys are
/// base_model.model.{module}.{suffix}; every key must belong to a targeted Linear of the model and every targeted Linear
/// must have its tensors — all mismatches are reported together.
/// </summary>
public static class PeftAdapters
{
    private const string Prefix = "base_model.model.";
    private const string WeightsFile = "adapter_model.safetensors";
    private const string ConfigFile = "adapter_config.json";

    /// <summary>Attaches the folder's adapter to <paramref name="model"/> under <paramref name="name"/>; returns its config.</summary>
    public static PeftLoraConfig Load(CausalLM model, string dir, string name)
    {
        var config = PeftLoraConfig.Load(dir);
        string weights = Directory.Exists(dir) ? Path.Combine(dir, WeightsFile) : Path.Combine(Path.GetDirectoryName(dir)!, WeightsFile);
        using var src = MedVL.Formats.Checkpoint.Open(weights);
        var slots = AdapterTargets.Enumerate(model).Where(s => config.IsTarget(s.ModulePath)).ToDictionary(s => s.ModulePath, StringComparer.Ordinal);
        var byModule = new SortedDictionary<string, Dictionary<string, TensorEntry>>(StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (var (key, entry) in src.Tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (kv.Key, kv.Value)))
        {
            int at = key.IndexOf(".lora_", StringComparison.Ordinal);
            if (!key.StartsWith(Prefix, StringComparison.Ordinal) || at < 0) { problems.Add($"{key}: not a {Prefix}<module>.lora_* tensor"); continue; }
            string module = key[Prefix.Length..at], suffix = key[(at + 1)..];
            if (!slots.ContainsKey(module)) { problems.Add($"{key}: '{module}' is not a Linear of the model matched by target_modules"); continue; }
            if (!byModule.TryGetValue(module, out var d)) byModule[module] = d = new(StringComparer.Ordinal);
            d[suffix] = entry;
        }
        foreach (var m in slots.Keys.Where(m => !byModule.ContainsKey(m))) problems.Add($"{Prefix}{m}.lora_A.weight: missing (the module is a target)");
        var adapters = new List<(string Module, ILinearAdapter Adapter)>();
        if (problems.Count == 0)
            foreach (var (module, d) in byModule)
            {
                try { adapters.Add((module, Build(config, name, module, slots[module].Get(), d, problems))); }
                catch (ArgumentException e) { problems.Add($"{Prefix}{module}: {e.Message}"); }
            }
        if (problems.Count > 0)
        {
            foreach (var (_, a) in adapters) a.Dispose();
            throw new AdapterFormatException(weights, null, $"{problems.Count} problem(s) loading the adapter", problems);
        }
        foreach (var (module, adapter) in adapters) AdapterTargets.Wrap(slots[module]).Attach(adapter);
        return config;
    }

    private static ILinearAdapter Build(PeftLoraConfig c, string name, string module, Models.Blocks.LinearLayer lin, Dictionary<string, TensorEntry> d, List<string> problems)
    {
        int r = c.RankFor(module);
        double scaling = c.ScalingFor(module);
        float p = (float)c.LoraDropout;
        Tensor Get(string suffix, int rows, int cols)
        {
            if (!d.Remove(suffix, out var e)) throw new ArgumentException($"{suffix} is missing");
            if (e.Shape is not [var a, var b] || a != rows || b != cols)
                throw new ArgumentException($"{suffix} has shape [{string.Join(", ", e.Shape)}], expected [{rows}, {cols}] (r = {r})");
            using var t = e.ToTensor();
            return AdapterMath.Parameter(t, $"{Prefix}{module}.{suffix}");
        }
        ILinearAdapter adapter;
        if (c.Kind == AdapterKind.MoELora)
        {
            var gate = Get("lora_gate.weight", c.Experts, lin.InFeatures);
            var a = Enumerable.Range(0, c.Experts).Select(i => Get($"lora_A.{i}.weight", r, lin.InFeatures)).ToArray();
            var b = Enumerable.Range(0, c.Experts).Select(i => Get($"lora_B.{i}.weight", lin.OutFeatures, r)).ToArray();
            adapter = new MoeLoraAdapter(name, gate, a, b, c.LoraAlpha / r, p);
        }
        else adapter = new LoraAdapter(name, Get("lora_A.weight", r, lin.InFeatures), Get("lora_B.weight", lin.OutFeatures, r), scaling, p);
        if (d.Count > 0)
        {
            adapter.Dispose();
            throw new ArgumentException($"unexpected tensors {string.Join(", ", d.Keys)}");
        }
        return adapter;
    }

    /// <summary>
    /// Writes adapter <paramref name="name"/> of <paramref name="model"/> as a PEFT folder: the tensors (float32) under
    /// base_model.model.{module}.{suffix}, and adapter_config.json with <paramref name="config"/>'s fields. Both files
    /// are written atomically (temp file, flush, rename).
    /// </summary>
    public static void Save(CausalLM model, string name, string dir, PeftLoraConfig config)
    {
        var tensors = AdapterTargets.Parameters(model, name)
            .Select(p => SafetensorsTensor.FromFloat32(Prefix + p.Name, p.Tensor.ToFloatArray(), p.Tensor.ShapeArray())).ToList();
        if (tensors.Count == 0) throw new ArgumentException($"the model has no adapter named '{name}'");
        Directory.CreateDirectory(dir);
        SafetensorsWriter.Write(Path.Combine(dir, WeightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        AtomicFile.WriteAllText(Path.Combine(dir, ConfigFile), ConfigJson(config));
    }

    /// <summary>adapter_config.json with PEFT's field names (the subset that defines the weights; others at PEFT's defaults).</summary>
    public static string ConfigJson(PeftLoraConfig c)
    {
        var o = new JsonObject
        {
            ["alpha_pattern"] = new JsonObject(c.AlphaPattern.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["base_model_name_or_path"] = c.BaseModelNameOrPath,
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["inference_mode"] = true,
            ["layers_to_transform"] = c.LayersToTransform is null ? null : new JsonArray(c.LayersToTransform.Select(i => (JsonNode?)i).ToArray()),
            ["lora_alpha"] = c.LoraAlpha,
            ["lora_dropout"] = c.LoraDropout,
            ["peft_type"] = c.Kind == AdapterKind.MoELora ? "MOELORA" : "LORA",
            ["r"] = c.R,
            ["rank_pattern"] = new JsonObject(c.RankPattern.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["target_modules"] = c.TargetModuleRegex is { } re ? re : new JsonArray(c.TargetModuleList!.Select(t => (JsonNode?)t).ToArray()),
            ["task_type"] = c.TaskType ?? "CAUSAL_LM",
            ["use_dora"] = false,
            ["use_rslora"] = c.UseRsLora,
        };
        if (c.Kind == AdapterKind.MoELora) o["lora_nums"] = c.Experts;
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>
    /// PEFT merge_and_unload for plain LoRA: W' = W + s·B·A per adapted Linear, as new float32 weights keyed by
    /// {module}.weight. The base weights (mapped from the checkpoint) are never written.
    /// </summary>
    public static Dictionary<string, Tensor> MergedWeights(CausalLM model, string name)
    {
        using var _ = GradMode.NoGrad();
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (path, layer) in AdapterTargets.Adapted(model))
        {
            if (!layer.Adapters.TryGetValue(name, out var a)) continue;
            if (a is not LoraAdapter lora) throw new NotSupportedException($"{path}: only plain LoRA merges into the weight (H-LoRA and MoELoRA gates depend on the input)");
            using var delta = lora.DeltaWeight();
            using var w = layer.BaseLayer.Weight.DType == DType.F32 ? layer.BaseLayer.Weight.Clone() : layer.BaseLayer.Weight.To(DType.F32);
            result[path + ".weight"] = Ops.Add(w, delta);
        }
        return result;
    }

    /// <summary>
    /// Merges LoRA adapter <paramref name="name"/> into the model for single-tenant inference (PEFT merge_adapter):
    /// every adapted Linear is replaced by a plain Linear over W + s·B·A, so a forward costs what the base model costs.
    /// Disposing the handle unmerges (restores the adapted layers). This changes the shared model: do not run requests
    /// with other adapters while merged.
    /// </summary>
    public static IDisposable Merge(CausalLM model, string name)
    {
        var merged = MergedWeights(model, name);
        var restore = new List<(LinearSlot Slot, Models.Blocks.LinearLayer Layer)>();
        foreach (var slot in AdapterTargets.Enumerate(model))
            if (slot.Get() is AdaptedLinear a && merged.TryGetValue(a.ModulePath + ".weight", out var w))
            {
                restore.Add((slot, a));
                slot.Set(new Models.Blocks.LinearLayer(w, a.BaseLayer.Bias));
            }
        return new MergeHandle(restore, merged.Values.ToList());
    }

    private sealed class MergeHandle(List<(LinearSlot Slot, Models.Blocks.LinearLayer Layer)> restore, List<Tensor> tensors) : IDisposable
    {
        private bool _done;
        public void Dispose()
        {
            if (_done) return;
            _done = true;
            foreach (var (slot, layer) in restore) slot.Set(layer);
            foreach (var t in tensors) t.Dispose();
        }
    }
}
