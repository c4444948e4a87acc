using System.Text.RegularExpressions;

namespace MedVL.Optim;

/// <summary>
/// Hugging Face Trainer's convention for which parameters get weight decay (Trainer.get_decay_parameter_names):
/// none for biases and normalisation weights. A parameter is excluded when its lower-cased dotted name matches any of
/// "bias", "layernorm", "rmsnorm", "(^|.)norm($|.)", "_norm($|.)" (re.search), or when it belongs to a LayerNorm
/// module — HF checks the module type, which a name cannot tell (e.g. CLIP's "layer_norm1", "pre_layrnorm"), so the
/// caller passes <c>isInNormLayer</c> for those.
/// </summary>
public static partial class WeightDecayGroups
{
    [GeneratedRegex(@"bias|layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.)", RegexOptions.CultureInvariant)]
    private static partial Regex ForbiddenNamePattern();

    /// <summary>Whether HF Trainer would apply weight decay to the parameter called <paramref name="name"/>.</summary>
    public static bool IsDecayParameter(string name, Func<string, bool>? isInNormLayer = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (isInNormLayer?.Invoke(name) == true) return false;
        return !ForbiddenNamePattern().IsMatch(name.ToLowerInvariant());
    }

    /// <summary>
    /// The two groups HF Trainer.create_optimizer builds: trainable parameters that decay (weight decay
    /// <paramref name="weightDecay"/>) and those that do not (0). Parameters that do not require grad are left out.
    /// Empty groups are omitted. Both groups share the optimizer's default lr unless <paramref name="lr"/> is given.
    /// </summary>
    public static List<ParamGroup> Create(IEnumerable<(string Name, Tensor Parameter)> namedParameters, double weightDecay,
        double? lr = null, Func<string, bool>? isInNormLayer = null, string? namePrefix = null)
    {
        ArgumentNullException.ThrowIfNull(namedParameters);
        var decay = new List<Tensor>();
        var noDecay = new List<Tensor>();
        foreach (var (name, p) in namedParameters)
        {
            if (!p.RequiresGrad) continue;
            (IsDecayParameter(name, isInNormLayer) ? decay : noDecay).Add(p);
        }
        var groups = new List<ParamGroup>();
        if (decay.Count > 0) groups.Add(new ParamGroup(decay) { Name = (namePrefix ?? "") + "decay", WeightDecay = weightDecay, Lr = lr });
        if (noDecay.Count > 0) groups.Add(new ParamGroup(noDecay) { Name = (namePrefix ?? "") + "no_decay", WeightDecay = 0.0, Lr = lr });
        return groups;
    }
}
