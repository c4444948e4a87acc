namespace MedVL.Optim;

/// <summary>Hugging Face's scheduler names (transformers.SchedulerType) for the schedules implemented here.</summary>
public enum SchedulerType
{
    Linear,
    Cosine,
    CosineWithRestarts,
    Constant,
    ConstantWithWarmup,
}

/// <summary>
/// Learning-rate multipliers as pure functions of the step, computed exactly as Hugging Face transformers'
/// src/transformers/optimization.py lambdas (double precision, same operation order), to be applied as torch's
/// LambdaLR does: the lr used by optimizer step k (k = 0, 1, …) is base_lr * lambda(k) (<see cref="LambdaLR"/>).
/// </summary>
public static class LrSchedules
{
    /// <summary>get_constant_schedule: always 1.</summary>
    public static double Constant(long step) => 1.0;

    /// <summary>get_constant_schedule_with_warmup: step / warmup during warmup, then 1.</summary>
    public static double ConstantWithWarmup(long step, int numWarmupSteps)
    {
        if (step < numWarmupSteps) return step / Math.Max(1.0, numWarmupSteps);
        return 1.0;
    }

    /// <summary>get_linear_schedule_with_warmup: linear warmup 0→1, then linear decay to 0 at numTrainingSteps.</summary>
    public static double Linear(long step, int numWarmupSteps, int numTrainingSteps)
    {
        if (step < numWarmupSteps) return (double)step / Math.Max(1, numWarmupSteps);
        return Math.Max(0.0, (double)(numTrainingSteps - step) / Math.Max(1, numTrainingSteps - numWarmupSteps));
    }

    /// <summary>get_cosine_schedule_with_warmup: linear warmup, then 0.5*(1 + cos(π * numCycles * 2 * progress)), floored at 0.</summary>
    public static double Cosine(long step, int numWarmupSteps, int numTrainingSteps, double numCycles = 0.5)
    {
        if (step < numWarmupSteps) return (double)step / Math.Max(1, numWarmupSteps);
        double progress = (double)(step - numWarmupSteps) / Math.Max(1, numTrainingSteps - numWarmupSteps);
        // Same association as the Python expression: ((pi * cycles) * 2.0) * progress.
        return Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * numCycles * 2.0 * progress)));
    }

    /// <summary>get_cosine_with_hard_restarts_schedule_with_warmup: numCycles half-cosines that restart at 1; 0 after training.</summary>
    public static double CosineWithHardRestarts(long step, int numWarmupSteps, int numTrainingSteps, int numCycles = 1)
    {
        if (step < numWarmupSteps) return (double)step / Math.Max(1, numWarmupSteps);
        double progress = (double)(step - numWarmupSteps) / Math.Max(1, numTrainingSteps - numWarmupSteps);
        if (progress >= 1.0) return 0.0;
        // Python's float % equals IEEE fmod (C#'s %) for the non-negative operands here.
        return Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * ((numCycles * progress) % 1.0))));
    }

    /// <summary>
    /// The lambda for an HF scheduler type, as transformers.get_scheduler builds it (num_cycles at its defaults:
    /// 0.5 for cosine, 1 for cosine_with_restarts unless given). Schedules that decay need numTrainingSteps.
    /// </summary>
    public static Func<long, double> Get(SchedulerType type, int numWarmupSteps = 0, int? numTrainingSteps = null, double? numCycles = null)
    {
        if (numWarmupSteps < 0) throw new ArgumentOutOfRangeException(nameof(numWarmupSteps), $"{type} schedule: numWarmupSteps must be >= 0, got {numWarmupSteps}");
        int Total() => numTrainingSteps is { } t && t >= 0
            ? t
            : throw new ArgumentException($"{type} schedule requires numTrainingSteps >= 0 (got {(numTrainingSteps is null ? "none" : numTrainingSteps)})", nameof(numTrainingSteps));
        switch (type)
        {
            case SchedulerType.Constant: return Constant;
            case SchedulerType.ConstantWithWarmup: return s => ConstantWithWarmup(s, numWarmupSteps);
            case SchedulerType.Linear: { int t = Total(); return s => Linear(s, numWarmupSteps, t); }
            case SchedulerType.Cosine: { int t = Total(); double c = numCycles ?? 0.5; return s => Cosine(s, numWarmupSteps, t, c); }
            case SchedulerType.CosineWithRestarts:
                {
                    int t = Total();
                    double c = numCycles ?? 1;
                    if (c != Math.Floor(c) || c < 0) throw new ArgumentException($"cosine_with_restarts: numCycles must be a non-negative integer, got {c}", nameof(numCycles));
                    return s => CosineWithHardRestarts(s, numWarmupSteps, t, (int)c);
                }
            default: throw new ArgumentOutOfRangeException(nameof(type), type, "unknown scheduler type");
        }
    }

    /// <summary>Parse an HF scheduler name ("linear", "cosine", "cosine_with_restarts", "constant", "constant_with_warmup").</summary>
    public static SchedulerType Parse(string name) => name switch
    {
        "linear" => SchedulerType.Linear,
        "cosine" => SchedulerType.Cosine,
        "cosine_with_restarts" => SchedulerType.CosineWithRestarts,
        "constant" => SchedulerType.Constant,
        "constant_with_warmup" => SchedulerType.ConstantWithWarmup,
        _ => throw new ArgumentException($"unknown lr_scheduler_type '{name}'; expected one of linear, cosine, cosine_with_restarts, constant, constant_with_warmup", nameof(name)),
    };
}

/// <summary>
/// torch.optim.lr_scheduler.LambdaLR: lr of group i = base_lr_i * lambda(last_epoch). Built with lastEpoch = -1 it
/// records each group's initial_lr and performs its initial step, so optimizer step 0 uses lambda(0); call
/// <see cref="Step"/> after every optimizer step. To resume, restore the optimizer (which holds initial_lr) and
/// build this with the saved <see cref="LastEpoch"/>, or call <see cref="LoadStateDict"/>.
/// </summary>
public sealed class LambdaLR
{
    private readonly Optimizer _optimizer;
    private readonly Func<long, double>[] _lambdas;
    private readonly double[] _baseLrs;

    public LambdaLR(Optimizer optimizer, Func<long, double> lrLambda, long lastEpoch = -1)
        : this(optimizer, Enumerable.Repeat(lrLambda ?? throw new ArgumentNullException(nameof(lrLambda)), optimizer.ParamGroups.Count).ToArray(), lastEpoch) { }

    /// <summary>One lambda per parameter group.</summary>
    public LambdaLR(Optimizer optimizer, IReadOnlyList<Func<long, double>> lrLambdas, long lastEpoch = -1)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(lrLambdas);
        var groups = optimizer.ParamGroups;
        if (lrLambdas.Count != groups.Count)
            throw new ArgumentException($"LambdaLR: expected {groups.Count} lr lambdas (one per param group), got {lrLambdas.Count}");
        if (lastEpoch < -1) throw new ArgumentOutOfRangeException(nameof(lastEpoch), $"LambdaLR: lastEpoch must be >= -1, got {lastEpoch}");
        _optimizer = optimizer;
        _lambdas = lrLambdas.ToArray();
        _baseLrs = new double[groups.Count];
        for (int g = 0; g < groups.Count; g++)
        {
            if (lastEpoch == -1) groups[g].InitialLr ??= groups[g].Lr;
            _baseLrs[g] = groups[g].InitialLr
                ?? throw new InvalidOperationException($"LambdaLR: {groups[g].Label(g)} has no initial_lr; it is needed when resuming (lastEpoch = {lastEpoch})");
        }
        LastEpoch = lastEpoch;
        Step(); // torch's _initial_step
    }

    /// <summary>How many times <see cref="Step"/> has run, minus one (torch's last_epoch: 0 after construction).</summary>
    public long LastEpoch { get; private set; }
    public IReadOnlyList<double> BaseLrs => _baseLrs;
    public double[] LastLr => _optimizer.ParamGroups.Select(g => g.Lr ?? 0).ToArray();

    /// <summary>Advance one step and set every group's lr to base_lr * lambda(step).</summary>
    public void Step()
    {
        LastEpoch++;
        var groups = _optimizer.ParamGroups;
        for (int g = 0; g < groups.Count; g++) groups[g].Lr = _baseLrs[g] * _lambdas[g](LastEpoch);
    }

    /// <summary>The scheduler's state: last_epoch (int64) and base_lrs (float64), caller-owned.</summary>
    public TensorStateDict StateDict()
    {
        var d = new TensorStateDict();
        d.AddScalar("last_epoch", LastEpoch);
        d.Add("base_lrs", Tensor.FromArray((double[])_baseLrs.Clone(), _baseLrs.Length));
        return d;
    }

    /// <summary>Restore last_epoch and base_lrs; group lrs are recomputed for the restored step (torch restores them with the optimizer).</summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (!state.ContainsKey("last_epoch") || !state.TryGetValue("base_lrs", out var baseLrs))
            throw new ArgumentException("LambdaLR state: expected keys 'last_epoch' and 'base_lrs'");
        foreach (var k in state.Keys)
            if (k is not ("last_epoch" or "base_lrs")) throw new ArgumentException($"LambdaLR state: unexpected key '{k}'");
        if (baseLrs.DType != Tensors.DType.F64 || baseLrs.Rank != 1 || baseLrs.Size(0) != _baseLrs.Length)
            throw new ArgumentException($"LambdaLR state 'base_lrs': expected F64[{_baseLrs.Length}], got {baseLrs.Describe()}");
        double last = TensorStateDict.ReadScalar(state, "last_epoch");
        if (last < -1 || last != Math.Floor(last)) throw new ArgumentException($"LambdaLR state 'last_epoch': expected an integer >= -1, got {last}");
        baseLrs.ToArray<double>().CopyTo(_baseLrs, 0);
        LastEpoch = (long)last;
        var groups = _optimizer.ParamGroups;
        for (int g = 0; g < groups.Count; g++) groups[g].Lr = _baseLrs[g] * _lambdas[g](LastEpoch);
    }
}
