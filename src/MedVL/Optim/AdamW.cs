using MedVL.Kernels;

namespace MedVL.Optim;

/// <summary>
/// Adam with decoupled weight decay, exactly as torch.optim.AdamW (torch 1.13, foreach=False, maximize=False):
/// per step, step += 1; p *= 1 - lr*wd; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g²; [amsgrad: vmax = max(vmax, v)];
/// p -= (lr / (1 - b1^step)) * m / (sqrt(v or vmax) / sqrt(1 - b2^step) + eps)
/// (torch/optim/adamw.py, _single_tensor_adamw). With <c>decoupledWeightDecay: false</c> it is torch.optim.Adam, whose
/// weight decay is an L2 term added to the gradient (g += wd*p) instead. Buffers: exp_avg, exp_avg_sq, max_exp_avg_sq.
/// </summary>
public sealed class AdamW : Optimizer
{
    private readonly bool _decoupled;

    /// <param name="groups">Parameter groups; unset hyperparameters take the defaults below.</param>
    /// <param name="lr">Default learning rate (torch's default 1e-3).</param>
    /// <param name="weightDecay">Default weight decay (AdamW's torch default is 1e-2; Adam's is 0).</param>
    /// <param name="decoupledWeightDecay">True: AdamW. False: Adam with L2 weight decay.</param>
    public AdamW(IEnumerable<ParamGroup> groups, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weightDecay = 1e-2, bool amsGrad = false, bool decoupledWeightDecay = true)
        : base(groups)
    {
        _decoupled = decoupledWeightDecay;
        for (int g = 0; g < ParamGroups.Count; g++)
        {
            var group = ParamGroups[g];
            string label = group.Label(g);
            group.Lr ??= lr;
            group.Beta1 ??= beta1;
            group.Beta2 ??= beta2;
            group.Eps ??= eps;
            group.WeightDecay ??= weightDecay;
            group.AmsGrad ??= amsGrad;
            // Same checks as torch's constructor.
            Validate(group.Lr >= 0, label, $"invalid learning rate {group.Lr}");
            Validate(group.Eps >= 0, label, $"invalid epsilon {group.Eps}");
            Validate(group.Beta1 is >= 0 and < 1, label, $"invalid beta1 {group.Beta1} (expected 0 <= beta1 < 1)");
            Validate(group.Beta2 is >= 0 and < 1, label, $"invalid beta2 {group.Beta2} (expected 0 <= beta2 < 1)");
            Validate(group.WeightDecay >= 0, label, $"invalid weight decay {group.WeightDecay}");
        }
    }

    /// <summary>AdamW over one group of parameters.</summary>
    public AdamW(IEnumerable<Tensor> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weightDecay = 1e-2, bool amsGrad = false, bool decoupledWeightDecay = true)
        : this(new[] { new ParamGroup(parameters) }, lr, beta1, beta2, eps, weightDecay, amsGrad, decoupledWeightDecay) { }

    /// <summary>torch.optim.Adam (L2 weight decay added to the gradient; default weight decay 0).</summary>
    public static AdamW Adam(IEnumerable<ParamGroup> groups, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weightDecay = 0, bool amsGrad = false)
        => new(groups, lr, beta1, beta2, eps, weightDecay, amsGrad, decoupledWeightDecay: false);

    public bool DecoupledWeightDecay => _decoupled;

    protected override bool HasStepCount => true;

    protected override IEnumerable<string> BufferNames(ParamGroup group) =>
        group.AmsGrad == true ? ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"] : ["exp_avg", "exp_avg_sq"];

    protected override IEnumerable<(string Name, Func<ParamGroup, double?> Get, Action<ParamGroup, double> Set)> Hyperparameters =>
    [
        ("weight_decay", g => g.WeightDecay, (g, v) => g.WeightDecay = v),
        ("beta1", g => g.Beta1, (g, v) => g.Beta1 = v),
        ("beta2", g => g.Beta2, (g, v) => g.Beta2 = v),
        ("eps", g => g.Eps, (g, v) => g.Eps = v),
        ("amsgrad", g => g.AmsGrad is { } a ? (a ? 1 : 0) : null, (g, v) => g.AmsGrad = v != 0),
    ];

    protected override void UpdateParameter(ParamGroup group, string groupLabel, Tensor parameter, ParamState state,
        Span<float> values, ReadOnlySpan<float> grad)
    {
        double lr = ParamGroup.Required(group.Lr, "lr", groupLabel);
        bool ams = group.AmsGrad == true;
        var expAvg = state.GetOrCreate("exp_avg", parameter);
        var expAvgSq = state.GetOrCreate("exp_avg_sq", parameter);
        var maxExpAvgSq = ams ? state.GetOrCreate("max_exp_avg_sq", parameter) : null;
        state.Step++;
        var c = AdamCoefficients.For(lr, ParamGroup.Required(group.Beta1, "beta1", groupLabel), ParamGroup.Required(group.Beta2, "beta2", groupLabel),
            ParamGroup.Required(group.Eps, "eps", groupLabel), ParamGroup.Required(group.WeightDecay, "weight_decay", groupLabel), _decoupled, state.Step);
        var m = expAvg.Span<float>();
        var v = expAvgSq.Span<float>();
        var vmax = maxExpAvgSq is null ? default : maxExpAvgSq.Span<float>();
        if (!OptimParallel.ShouldSplit(values.Length))
        {
            OptimKernels.AdamStep(values, grad, m, v, vmax, c);
            return;
        }
        unsafe
        {
            fixed (float* pp = values, pg = grad, pm = m, pv = v, pvm = vmax)
            {
                var job = new OptimParallel.AdamJob { P = pp, G = pg, M = pm, V = pv, VMax = vmax.Length != 0 ? pvm : null, N = values.Length, C = c };
                ParallelRuntime.For(OptimParallel.Chunks(values.Length), ref job);
            }
        }
    }
}
