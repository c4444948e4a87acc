namespace MedVL.Optim;

/// <summary>
/// A set of parameters that share hyperparameters, as a torch.optim param_group dict. Hyperparameters left null take
/// the optimizer's defaults when the optimizer is built (torch's setdefault), after which they are all set; the
/// learning-rate scheduler rewrites <see cref="Lr"/> every step from <see cref="InitialLr"/>.
/// Typical use: the multimodal projector and the LoRA/H-LoRA adapters at different rates, and no weight decay for
/// biases and norm weights (<see cref="WeightDecayGroups"/>).
/// </summary>
public sealed class ParamGroup
{
    public ParamGroup(IEnumerable<Tensor> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Parameters = parameters.ToArray();
        for (int i = 0; i < Parameters.Count; i++)
            if (Parameters[i] is null) throw new ArgumentException($"parameter group: parameter {i} is null", nameof(parameters));
    }

    public ParamGroup(params Tensor[] parameters) : this((IEnumerable<Tensor>)parameters) { }

    public IReadOnlyList<Tensor> Parameters { get; }
    /// <summary>Optional label (e.g. "projector", "lora") used in error messages.</summary>
    public string? Name { get; init; }

    public double? Lr { get; set; }
    /// <summary>The lr the scheduler scales (torch's 'initial_lr'), set by <see cref="LambdaLR"/> on first use.</summary>
    public double? InitialLr { get; set; }
    public double? WeightDecay { get; set; }
    // Adam / AdamW
    public double? Beta1 { get; set; }
    public double? Beta2 { get; set; }
    public double? Eps { get; set; }
    public bool? AmsGrad { get; set; }
    // SGD
    public double? Momentum { get; set; }
    public double? Dampening { get; set; }
    public bool? Nesterov { get; set; }

    internal string Label(int index) => Name is null ? $"param group {index}" : $"param group {index} ('{Name}')";

    internal static double Required(double? v, string what, string group) =>
        v ?? throw new InvalidOperationException($"{group}: hyperparameter '{what}' is not set");
}
