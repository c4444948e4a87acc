using MedVL.Models;
using MedVL.Models.Blocks;

namespace MedVL.Adapters;

/// <summary>One nn.Linear of a decoder that adapters can wrap, under its Hugging Face module path.</summary>
public sealed record LinearSlot(string ModulePath, Func<LinearLayer> Get, Action<LinearLayer> Set)
{
    /// <summary>Last path component (qkv_proj, o_proj, gate_up_proj, down_proj, q_proj, …, fc1, dense).</summary>
    public string Name => ModulePath[(ModulePath.LastIndexOf('.') + 1)..];
}

/// <summary>
/// The Linear layers of a decoder's blocks (never lm_head, as HealthGPT's find_all_linear_names and PEFT leave it out),
/// and attaching adapters to them. Wrapping replaces a block's LinearLayer by an <see cref="AdaptedLinear"/> over the same
/// weight (no copy); it is idempotent, so several adapter sets share one wrapper per layer.
/// </summary>
public static class AdapterTargets
{
    /// <summary>Every Linear of every decoder layer with its HF module path (model.layers.{i}.self_attn.q_proj …).</summary>
    public static IEnumerable<LinearSlot> Enumerate(CausalLM model)
    {
        for (int i = 0; i < model.Layers.Count; i++)
        {
            var layer = model.Layers[i];
            string a = $"model.layers.{i}.self_attn.", m = $"model.layers.{i}.mlp.";
            switch (layer.SelfAttn)
            {
                case Phi3Attention p3:
                    yield return new(a + "qkv_proj", () => p3.QkvProj, v => p3.QkvProj = v);
                    break;
                case SeparateQkvAttention s:
                    yield return new(a + "q_proj", () => s.QProj, v => s.QProj = v);
                    yield return new(a + "k_proj", () => s.KProj, v => s.KProj = v);
                    yield return new(a + "v_proj", () => s.VProj, v => s.VProj = v);
                    break;
            }
            var attn = layer.SelfAttn;
            yield return new(a + (model.Family == Models.Config.DecoderFamily.Phi ? "dense" : "o_proj"), () => attn.OProj, v => attn.OProj = v);
            switch (layer.Mlp)
            {
                case FusedGatedMlp f:
                    yield return new(m + "gate_up_proj", () => f.GateUpProj, v => f.GateUpProj = v);
                    yield return new(m + "down_proj", () => f.DownProj, v => f.DownProj = v);
                    break;
                case GatedMlp g:
                    yield return new(m + "gate_proj", () => g.GateProj, v => g.GateProj = v);
                    yield return new(m + "up_proj", () => g.UpProj, v => g.UpProj = v);
                    yield return new(m + "down_proj", () => g.DownProj, v => g.DownProj = v);
                    break;
                case FcMlp fc:
                    yield return new(m + "fc1", () => fc.Fc1, v => fc.Fc1 = v);
                    yield return new(m + "fc2", () => fc.Fc2, v => fc.Fc2 = v);
                    break;
            }
        }
    }

    /// <summary>HealthGPT find_all_linear_names: the distinct last components (Phi-3: down_proj, gate_up_proj, o_proj, qkv_proj).</summary>
    public static IReadOnlyList<string> AllLinearNames(CausalLM model) =>
        Enumerate(model).Select(s => s.Name).Distinct().Order(StringComparer.Ordinal).ToArray();

    /// <summary>The slot's layer as an <see cref="AdaptedLinear"/>, wrapping it in place the first time.</summary>
    public static AdaptedLinear Wrap(LinearSlot slot)
    {
        var current = slot.Get();
        if (current is AdaptedLinear adapted) return adapted;
        adapted = new AdaptedLinear(current, slot.ModulePath);
        slot.Set(adapted);
        return adapted;
    }

    /// <summary>Adapted layers by module path (only those already wrapped).</summary>
    public static Dictionary<string, AdaptedLinear> Adapted(CausalLM model) =>
        Enumerate(model).Select(s => s.Get()).OfType<AdaptedLinear>().ToDictionary(a => a.ModulePath, StringComparer.Ordinal);

    /// <summary>(HF-style name, tensor) of every parameter of adapter <paramref name="name"/>: {module}.{suffix}.</summary>
    public static IEnumerable<(string Name, Tensor Tensor)> Parameters(CausalLM model, string name)
    {
        foreach (var a in Adapted(model).Values.OrderBy(a => a.ModulePath, StringComparer.Ordinal))
            if (a.Adapters.TryGetValue(name, out var ad))
                foreach (var (suffix, t) in ad.Parameters)
                    yield return ($"{a.ModulePath}.{suffix}", t);
    }

    /// <summary>Removes adapter <paramref name="name"/> from every layer (disposing its tensors).</summary>
    public static int Detach(CausalLM model, string name) => Adapted(model).Values.Count(a => a.Detach(name));
}
