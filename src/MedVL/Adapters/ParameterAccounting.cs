using MedVL.Formats;
using MedVL.Models.Config;

namespace MedVL.Adapters;

/// <summary>One line of a parameter count: total parameters and those used for one token.</summary>
public sealed record ParameterRow(string Component, long Total, long Activated);

/// <summary>Parameter counts of a model configuration, by component.</summary>
public sealed record ParameterBreakdown(IReadOnlyList<ParameterRow> Rows)
{
    public long Total => Rows.Sum(r => r.Total);
    public long Activated => Rows.Sum(r => r.Activated);
    public long TotalOf(string component) => Rows.Where(r => r.Component == component).Sum(r => r.Total);
    public ParameterBreakdown With(IEnumerable<ParameterRow> more) => new([.. Rows, .. more]);
}

/// <summary>
/// Total and per-token activated parameters of base + adapter configurations, computed from the same tensor tables the
/// loaders check (<see cref="WeightTable"/>), so they are exact for any config: a sparse MoE layer activates top-k of
/// its E experts (+ the meta expert, + the router); everything else is dense. Reproduces Med-MoE's 2.06B (StableLM-2)
/// and 3.62B (Phi-2) activated LLM parameters (med-moe.md §2.3).
/// </summary>
public static class ParameterAccounting
{
    /// <param name="config">Decoder, CLIP or LLaVA-style config (with its moe block for Med-MoE).</param>
    /// <param name="vision">The CLIP tower's config, counted as "vision tower" (LLaVA configs name it, its weights live elsewhere).</param>
    /// <param name="metaExpert">Count Med-MoE's meta expert (optional tensors in the table).</param>
    /// <param name="routerBias">Count the router bias (Med-MoE has one; MoE-LLaVA does not).</param>
    public static ParameterBreakdown ForConfig(ModelConfig config, ClipConfig? vision = null, bool metaExpert = true, bool routerBias = true)
    {
        int topK = config.Moe is { MoeEnable: true } m ? m.TopKExperts : 0;
        var sums = new Dictionary<string, (long Total, long Active)>(StringComparer.Ordinal);
        void Add(string c, long total, long active)
        {
            sums.TryGetValue(c, out var s);
            sums[c] = (s.Total + total, s.Active + active);
        }
        var expertsPerLayer = new Dictionary<string, int>(StringComparer.Ordinal);
        var specs = WeightTable.For(config);
        foreach (var s in specs)
        {
            int at = s.Name.IndexOf(".deepspeed_experts.", StringComparison.Ordinal);
            if (at >= 0)
            {
                string layer = s.Name[..at];
                int j = int.Parse(s.Name[(at + ".deepspeed_experts.".Length)..].Split('.')[0], System.Globalization.CultureInfo.InvariantCulture);
                expertsPerLayer[layer] = Math.Max(expertsPerLayer.GetValueOrDefault(layer), j + 1);
            }
        }
        foreach (var s in specs)
        {
            if (s.Shape is null) continue;
            if (s.Role == TensorRole.Optional && !(metaExpert && s.Name.Contains(".meta_moe.")) && !(routerBias && s.Name.EndsWith("gate.wg.bias", StringComparison.Ordinal)))
                continue;
            long n = s.Shape.Aggregate(1L, (a, b) => a * b);
            int at = s.Name.IndexOf(".deepspeed_experts.", StringComparison.Ordinal);
            if (at >= 0) Add("moe experts", n, n * topK / expertsPerLayer[s.Name[..at]]);
            else if (s.Name.Contains(".meta_moe.")) Add("meta expert", n, n);
            else if (s.Name.Contains("deepspeed_moe.gate.wg")) Add("router", n, n);
            else if (s.Name.Contains("mm_projector")) Add("projector", n, n);
            else if (s.Name.Contains("vision_model.")) Add("vision tower", n, n);
            else if (s.Name.Contains("text_model.") || s.Name.Contains("_projection")) continue; // CLIP text tower: never loaded
            else if (s.Name.StartsWith("model.embed_tokens", StringComparison.Ordinal)) Add("embed_tokens", n, n);
            else if (s.Name.StartsWith("lm_head", StringComparison.Ordinal)) Add("lm_head", n, n);
            else if (s.Name.Contains(".mlp.")) Add("dense ffn", n, n);
            else Add("attention + norms", n, n);
        }
        if (vision is not null)
            foreach (var s in WeightTable.Clip(vision with { Text = null }))
                if (s.Shape is not null && s.Role != TensorRole.Optional) Add("vision tower", s.Shape.Aggregate(1L, (a, b) => a * b), s.Shape.Aggregate(1L, (a, b) => a * b));
        string[] order = ["embed_tokens", "attention + norms", "dense ffn", "moe experts", "meta expert", "router", "lm_head", "projector", "vision tower"];
        return new(order.Where(sums.ContainsKey).Select(c => new ParameterRow(c, sums[c].Total, sums[c].Active)).ToArray());
    }

    /// <summary>
    /// An adapter file's parameters (every tensor of the checkpoint, numel summed): LoRA / H-LoRA / MoELoRA are dense
    /// (every expert of H-LoRA and MoELoRA runs on every token), so activated = total. Projector tensors of a HealthGPT
    /// plugin are counted apart: they replace the base projector rather than add to it.
    /// </summary>
    public static IReadOnlyList<ParameterRow> ForAdapter(string path, string label)
    {
        string file = Directory.Exists(path) ? Path.Combine(path, "adapter_model.safetensors") : path;
        using var src = MedVL.Formats.Checkpoint.Open(file);
        long adapter = 0, projector = 0;
        foreach (var (name, e) in src.Tensors)
        {
            if (name.Contains("mm_projector", StringComparison.Ordinal)) projector += e.ElementCount;
            else adapter += e.ElementCount;
        }
        var rows = new List<ParameterRow> { new($"{label} adapter", adapter, adapter) };
        if (projector > 0) rows.Add(new($"{label} projector (replaces the base one)", projector, 0));
        return rows;
    }
}
