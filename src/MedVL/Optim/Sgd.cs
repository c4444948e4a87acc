using MedVL.Kernels;

namespace MedVL.Optim;

/// <summary>
/// Stochastic gradient descent exactly as torch.optim.SGD (torch 1.13, _single_tensor_sgd, maximize=False):
/// d = g + wd*p; with momentum μ: buf = d on the first step, else buf = μ*buf + (1 - dampening)*d, and
/// d = nesterov ? d + μ*buf : buf; then p -= lr*d. Buffer: momentum_buffer (only when momentum != 0). No step count.
/// </summary>
public sealed class Sgd : Optimizer
{
    public Sgd(IEnumerable<ParamGroup> groups, double lr = 1e-3, double momentum = 0, double dampening = 0,
        double weightDecay = 0, bool nesterov = false) : base(groups)
    {
        for (int g = 0; g < ParamGroups.Count; g++)
        {
            var group = ParamGroups[g];
            string label = group.Label(g);
            group.Lr ??= lr;
            group.Momentum ??= momentum;
            group.Dampening ??= dampening;
            group.WeightDecay ??= weightDecay;
            group.Nesterov ??= nesterov;
            Validate(group.Lr >= 0, label, $"invalid learning rate {group.Lr}");
            Validate(group.Momentum >= 0, label, $"invalid momentum {group.Momentum}");
            Validate(group.WeightDecay >= 0, label, $"invalid weight decay {group.WeightDecay}");
            Validate(group.Nesterov != true || (group.Momentum > 0 && group.Dampening == 0), label,
                $"Nesterov momentum requires a momentum > 0 and zero dampening (momentum {group.Momentum}, dampening {group.Dampening})");
        }
    }

    public Sgd(IEnumerable<Tensor> parameters, double lr = 1e-3, double momentum = 0, double dampening = 0,
        double weightDecay = 0, bool nesterov = false)
        : this(new[] { new ParamGroup(parameters) }, lr, momentum, dampening, weightDecay, nesterov) { }

    protected override bool HasStepCount => false;

    protected override IEnumerable<string> BufferNames(ParamGroup group) =>
        group.Momentum is > 0 ? ["momentum_buffer"] : [];

    protected override IEnumerable<(string Name, Func<ParamGroup, double?> Get, Action<ParamGroup, double> Set)> Hyperparameters =>
    [
        ("momentum", g => g.Momentum, (g, v) => g.Momentum = v),
        ("dampening", g => g.Dampening, (g, v) => g.Dampening = v),
        ("weight_decay", g => g.WeightDecay, (g, v) => g.WeightDecay = v),
        ("nesterov", g => g.Nesterov is { } n ? (n ? 1 : 0) : null, (g, v) => g.Nesterov = v != 0),
    ];

    protected override void UpdateParameter(ParamGroup group, string groupLabel, Tensor parameter, ParamState state,
        Span<float> values, ReadOnlySpan<float> grad)
    {
        double lr = ParamGroup.Required(group.Lr, "lr", groupLabel);
        double momentum = ParamGroup.Required(group.Momentum, "momentum", groupLabel);
        double dampening = ParamGroup.Required(group.Dampening, "dampening", groupLabel);
        double wd = ParamGroup.Required(group.WeightDecay, "weight_decay", groupLabel);
        bool nesterov = group.Nesterov == true;
        Span<float> buf = default;
        bool first = false;
        if (momentum != 0)
        {
            first = !state.Buffers.ContainsKey("momentum_buffer");
            buf = state.GetOrCreate("momentum_buffer", parameter, zero: false).Span<float>();
        }
        // Scalars cast to float32 as ATen casts a Python scalar operand (the 1 - dampening is computed in double first).
        float fwd = (float)wd, fmom = (float)momentum, fdamp = (float)(1 - dampening), fneg = (float)-lr;
        if (!OptimParallel.ShouldSplit(values.Length))
        {
            OptimKernels.SgdStep(values, grad, buf, first, fwd, fmom, fdamp, nesterov, fneg);
            return;
        }
        unsafe
        {
            fixed (float* pp = values, pg = grad, pb = buf)
            {
                var job = new OptimParallel.SgdJob
                {
                    P = pp, G = pg, Buf = buf.Length != 0 ? pb : null, N = values.Length, First = first, Nesterov = nesterov,
                    WeightDecay = fwd, Momentum = fmom, OneMinusDampening = fdamp, NegLr = fneg,
                };
                ParallelRuntime.For(OptimParallel.Chunks(values.Length), ref job);
            }
        }
    }
}
