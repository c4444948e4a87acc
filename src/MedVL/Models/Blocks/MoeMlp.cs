using MedVL.Autograd;
using MedVL.Models.Config;
using MedVL.Tensors;

namespace MedVL.Models.Blocks;

/// <summary>
/// Routing of a sparse MoE FFN (DeepSpeed sharded_moe top1gating / top2gating as Med-MoE uses them, med-moe.md §7).
/// Deterministic by default: no random token selection and no Gumbel noise (the released top-2 gate adds Gumbel noise
/// to the logits even at eval; <see cref="GumbelSeed"/> turns that on, seeded).
/// </summary>
public sealed record MoeGating
{
    /// <summary>1 = Med-MoE as released (unrenormalised probability of the chosen expert); 2 = the paper / MoE-LLaVA
    /// (renormalised over the two kept choices).</summary>
    public int TopK { get; init; } = 1;
    /// <summary>capacity = max(ceil(S / E · cf), min_capacity) tokens per expert (top-2: cf doubled). Med-MoE hard-codes 4.</summary>
    public double CapacityFactor { get; init; } = 4.0;
    public int MinCapacity { get; init; }
    /// <summary>Drop tokens beyond an expert's capacity (first come, first served). Released top-1 Med-MoE: false.</summary>
    public bool DropTokens { get; init; }
    /// <summary>When set, the second choice of top-2 is taken on logits + Gumbel noise drawn from this seed.</summary>
    public int? GumbelSeed { get; init; }

    /// <summary>The released Med-MoE behaviour for a config's moe block (top_k_experts; top-1 never drops).</summary>
    public static MoeGating FromConfig(MoeConfig moe) => new()
    {
        TopK = moe.TopKExperts, MinCapacity = moe.MinCapacity, DropTokens = moe.TopKExperts == 2,
    };

    public int Capacity(int tokens, int experts) =>
        Math.Max((int)Math.Ceiling(tokens / (double)experts * (TopK == 2 ? 2 * CapacityFactor : CapacityFactor)), MinCapacity);
}

/// <summary>What one MoE layer did with the tokens of one forward.</summary>
public sealed record MoeLayerRouting(int Layer, int Tokens, int Experts, int TopK, int[] Routes, float[] Weights, float[] GateProbs)
{
    /// <summary>Expert of token t's c-th choice, −1 when dropped by capacity.</summary>
    public int Route(int t, int c) => Routes[t * TopK + c];
    public float Weight(int t, int c) => Weights[t * TopK + c];
}

/// <summary>
/// Per-call collector of MoE routing and load-balancing losses (pass it in <see cref="DecoderForwardOptions.Routing"/>).
/// It is the caller's: nothing is stored on the shared model, so concurrent requests keep their traces apart.
/// </summary>
public sealed class MoeRoutingTrace : IDisposable
{
    private static readonly CallContext<MoeRoutingTrace> s_current = new();
    private readonly List<Tensor> _aux = new();

    public List<MoeLayerRouting> Layers { get; } = new();
    /// <summary>l_aux of every MoE layer of the call, in layer order, connected to the graph when training.</summary>
    public IReadOnlyList<Tensor> AuxLosses => _aux;

    internal void Add(MoeLayerRouting routing, Tensor auxLoss)
    {
        lock (_aux) { Layers.Add(routing); _aux.Add(auxLoss); }
    }

    /// <summary>Σ over layers of l_aux (MoELLaVA*ForCausalLM adds router_aux_loss_coef × this to the LM loss).</summary>
    public Tensor AuxLossSum()
    {
        if (_aux.Count == 0) return Tensor.Zeros(1);
        var s = Ops.Reshape(_aux[0], 1);
        for (int i = 1; i < _aux.Count; i++)
        {
            using var a = Ops.Reshape(_aux[i], 1);
            var n = Ops.Add(s, a);
            s.Dispose();
            s = n;
        }
        return s;
    }

    public static MoeRoutingTrace? Current => s_current.Current;

    public static CallContext<MoeRoutingTrace>.Scope Use(MoeRoutingTrace? trace) => s_current.Use(trace);

    /// <summary>As <see cref="Use"/> when <paramref name="trace"/> is set, else keeps the caller's trace.</summary>
    public static CallContext<MoeRoutingTrace>.Scope UseIfSet(MoeRoutingTrace? trace) => s_current.UseIfSet(trace);

    public void Dispose()
    {
        foreach (var t in _aux) t.Dispose();
        _aux.Clear();
    }
}

/// <summary>
/// Med-MoE / MoE-LLaVA sparse FFN (moe/layer.py MoE with Med-MoE's meta expert; DeepSpeed sharded_moe gating):
/// router wg = Linear(H, E) with bias, in float32 → gates = softmax; top-1 (released): y = p(e*)·E_e*(x) + E_meta(x);
/// top-2 (paper): y = Σ_{c∈{1,2}} w_c·E_{e_c}(x) + E_meta(x), w renormalised over the kept choices; tokens beyond an
/// expert's capacity dropped when <see cref="MoeGating.DropTokens"/>. l_aux = E · Σ_e mean_s(gates[s, e]) · frac_s(e*=e)
/// (top-1 choices before capacity). Each expert runs only on its tokens (gather → FFN → weighted scatter-add), so
/// compute is top-k FFNs per token plus the meta expert; gradients flow to the router, the experts and the meta expert.
/// </summary>
public sealed class MoeMlp : DecoderMlp
{
    public MoeMlp(int layer, LinearLayer router, IReadOnlyList<DecoderMlp> experts, DecoderMlp? metaExpert, MoeGating gating)
    {
        if (router.OutFeatures != experts.Count) throw new ArgumentException($"router has {router.OutFeatures} outputs for {experts.Count} experts");
        Layer = layer; Router = router; Experts = experts; MetaExpert = metaExpert; Gating = gating;
    }

    public int Layer { get; }
    /// <summary>deepspeed_moe.gate.wg.</summary>
    public LinearLayer Router { get; set; }
    public IReadOnlyList<DecoderMlp> Experts { get; }
    /// <summary>meta_moe: always on with weight 1 (Med-MoE); null for plain MoE-LLaVA.</summary>
    public DecoderMlp? MetaExpert { get; }
    /// <summary>Routing rule (set when the model is configured, not per request).</summary>
    public MoeGating Gating { get; set; }

    /// <summary>The MoE FFN of decoder layer <paramref name="layer"/> when the config's moe block lists it, else null.</summary>
    public static MoeMlp? Load(ModelWeights w, ModelConfig config, int layer)
    {
        if (config.Moe is not { MoeEnable: true } moe || moe.MoeLayersIdx is null) return null;
        int n = Array.IndexOf(moe.MoeLayersIdx, layer);
        if (n < 0) return null;
        if (moe.TopKExperts is not (1 or 2))
            throw new ModelConfigException(config.SourcePath, "moe.top_k_experts", $"{moe.TopKExperts}: expected 1 (Med-MoE) or 2 (MoE-LLaVA)");
        var d = config.RequireDecoder();
        string p = $"model.layers.{layer}.mlp.";
        var experts = new DecoderMlp[moe.NumExperts![n]];
        for (int j = 0; j < experts.Length; j++) experts[j] = LoadFfn(w, d, p + $"deepspeed_moe.experts.deepspeed_experts.{j}.");
        var meta = w.Contains(p + "meta_moe.down_proj.weight") || w.Contains(p + "meta_moe.fc2.weight") ? LoadFfn(w, d, p + "meta_moe.") : null;
        return new MoeMlp(layer, LinearLayer.Load(w, p + "deepspeed_moe.gate.wg", w.Contains(p + "deepspeed_moe.gate.wg.bias")), experts, meta,
            MoeGating.FromConfig(moe));
    }

    private static DecoderMlp LoadFfn(ModelWeights w, DecoderConfig c, string p) => c.Family switch
    {
        DecoderFamily.Phi => new FcMlp(LinearLayer.Load(w, p + "fc1", true), LinearLayer.Load(w, p + "fc2", true), c.HiddenAct),
        DecoderFamily.Phi3 => new FusedGatedMlp(LinearLayer.Load(w, p + "gate_up_proj", false), LinearLayer.Load(w, p + "down_proj", false), c.HiddenAct),
        _ => new GatedMlp(LinearLayer.Load(w, p + "gate_proj", c.MlpBias), LinearLayer.Load(w, p + "up_proj", c.MlpBias), LinearLayer.Load(w, p + "down_proj", c.MlpBias), c.HiddenAct),
    };

    /// <summary>
    /// Replaces the router, every expert's and the meta expert's Linear layers by float32 trainable copies and returns
    /// them under their Med-MoE checkpoint names (model.layers.{l}.mlp.deepspeed_moe.gate.wg.weight, …
    /// .deepspeed_experts.{j}.gate_proj.weight, … meta_moe.…). The caller owns the returned tensors.
    /// </summary>
    public IReadOnlyList<(string Name, Tensor Tensor)> MakeTrainable()
    {
        var list = new List<(string, Tensor)>();
        string p = $"model.layers.{Layer}.mlp.";
        LinearLayer Copy(LinearLayer l, string name)
        {
            var c = l.TrainableCopy(name);
            list.Add((name + ".weight", c.Weight));
            if (c.Bias is not null) list.Add((name + ".bias", c.Bias));
            return c;
        }
        Router = Copy(Router, p + "deepspeed_moe.gate.wg");
        for (int j = 0; j < Experts.Count; j++)
            foreach (var (n, get, set) in Experts[j].Linears()) set(Copy(get(), p + $"deepspeed_moe.experts.deepspeed_experts.{j}.{n}"));
        if (MetaExpert is not null)
            foreach (var (n, get, set) in MetaExpert.Linears()) set(Copy(get(), p + $"meta_moe.{n}"));
        return list;
    }

    public override Tensor Forward(Tensor x)
    {
        int h = x.Size(-1), s = (int)(x.Numel / h), e = Experts.Count;
        var g = Gating;
        using var x2 = Ops.Reshape(x, s, h);
        using var logits = Router.Forward(x2);      // float32 activations: the router runs in float32
        using var gates = Ops.Softmax(logits);      // [S, E]
        var p = gates.ToFloatArray();

        // First choice (argmax, first index on ties as torch) and, for top-2, the second (first masked out).
        var idx1 = new int[s];
        var idx2 = new int[s];
        float[]? noisy = g.TopK == 2 && g.GumbelSeed is { } seed ? GumbelLogits(logits.ToFloatArray(), seed) : null;
        for (int t = 0; t < s; t++)
        {
            idx1[t] = ArgMax(p.AsSpan(t * e, e), -1);
            if (g.TopK == 2) idx2[t] = ArgMax((noisy ?? p).AsSpan(t * e, e), idx1[t]);
        }
        // Capacity slots in token order: first choices first, then second choices after all first choices of that expert.
        int capacity = g.Capacity(s, e);
        var count1 = new int[e];
        foreach (int i in idx1) count1[i]++;
        if (g.TopK == 1 && !g.DropTokens) capacity = Math.Min(Math.Max(count1.Max(), 0), s);
        var keep1 = new bool[s];
        var keep2 = new bool[s];
        var used = new int[e];
        for (int t = 0; t < s; t++) keep1[t] = used[idx1[t]]++ < capacity;
        if (g.TopK == 2)
        {
            var used2 = (int[])count1.Clone();
            for (int t = 0; t < s; t++) keep2[t] = used2[idx2[t]]++ < capacity;
        }

        // l_aux (sharded_moe): E · Σ_e me_e · ce_e; me = mean gate, ce = fraction of first choices (before capacity).
        Tensor aux;
        using (var me = Ops.Mean(gates, [0]))
        using (var ce = Tensor.FromArray(count1.Select(c => c / (float)s).ToArray(), e))
        using (var prod = Ops.Mul(me, ce))
        using (var sum = Ops.Sum(prod))
            aux = Ops.Scale(sum, e);

        // combine [S, E]: top-1 = gates ⊙ M1; top-2 = (g1 / max(g1 + g2, eps)) M1 + (g2 / …) M2.
        var m1 = new float[s * e];
        var m2 = new float[s * e];
        for (int t = 0; t < s; t++)
        {
            if (keep1[t]) m1[t * e + idx1[t]] = 1;
            if (g.TopK == 2 && keep2[t]) m2[t * e + idx2[t]] = 1;
        }
        Tensor combine;
        using (var mask1 = Tensor.FromArray(m1, s, e))
        {
            if (g.TopK == 1) combine = Ops.Mul(gates, mask1);
            else
            {
                using var mask2 = Tensor.FromArray(m2, s, e);
                using var gm1 = Ops.Mul(gates, mask1);
                using var gm2 = Ops.Mul(gates, mask2);
                using var g1 = Ops.Sum(gm1, [1], keepDim: true);
                using var g2 = Ops.Sum(gm2, [1], keepDim: true);
                using var gsum = Ops.Add(g1, g2);
                var epsRows = new float[s];
                for (int t = 0; t < s; t++) if (!keep1[t] && !keep2[t]) epsRows[t] = 1.1920929e-07f; // clamp(min = torch.finfo(f32).eps) when both choices were dropped
                using var eps = Tensor.FromArray(epsRows, s, 1);
                using var denom = Ops.Add(gsum, eps);
                using var w1 = Ops.Div(g1, denom);
                using var w2 = Ops.Div(g2, denom);
                using var c1 = Ops.Mul(w1, mask1);
                using var c2 = Ops.Mul(w2, mask2);
                combine = Ops.Add(c1, c2);
            }
        }

        Tensor y;
        using (combine)
        {
            y = MetaExpert is null ? Tensor.Zeros(s, h) : MetaExpert.Forward(x2);
            for (int j = 0; j < e; j++)
            {
                var rows = Enumerable.Range(0, s).Where(t => (keep1[t] && idx1[t] == j) || (g.TopK == 2 && keep2[t] && idx2[t] == j)).ToArray();
                if (rows.Length == 0) continue;
                using var sub = Ops.IndexSelectRows(x2, rows);
                using var outJ = Experts[j].Forward(sub);
                using var cRows = Ops.IndexSelectRows(combine, rows);
                var cols = Ops.Split(cRows, Enumerable.Repeat(1, e).ToArray(), -1);
                Tensor weighted;
                try { weighted = Ops.Mul(outJ, cols[j]); }
                finally { foreach (var c in cols) c.Dispose(); }
                using (weighted)
                using (var scattered = Ops.ScatterAddRows(weighted, rows, s))
                {
                    var next = Ops.Add(y, scattered);
                    y.Dispose();
                    y = next;
                }
            }
        }

        var trace = MoeRoutingTrace.Current;
        if (trace is not null)
        {
            int k = g.TopK;
            var routes = new int[s * k];
            var weights = new float[s * k];
            for (int t = 0; t < s; t++)
            {
                float p1 = keep1[t] ? p[t * e + idx1[t]] : 0, p2 = k == 2 && keep2[t] ? p[t * e + idx2[t]] : 0;
                float denom = k == 1 ? 1 : Math.Max(p1 + p2, 1.1920929e-07f);
                routes[t * k] = keep1[t] ? idx1[t] : -1;
                weights[t * k] = k == 1 ? p1 : p1 / denom;
                if (k == 2)
                {
                    routes[t * k + 1] = keep2[t] ? idx2[t] : -1;
                    weights[t * k + 1] = p2 / denom;
                }
            }
            trace.Add(new MoeLayerRouting(Layer, s, e, k, routes, weights, p), aux);
        }
        else aux.Dispose();
        using (y) return Ops.Reshape(y, x.ShapeArray());
    }

    private static int ArgMax(ReadOnlySpan<float> v, int exclude)
    {
        int best = -1;
        for (int j = 0; j < v.Length; j++)
            if (j != exclude && (best < 0 || v[j] > v[best])) best = j;
        return best;
    }

    /// <summary>logits + Gumbel(0, 1) noise (sharded_moe.gumbel_rsample), from a seeded generator.</summary>
    private static float[] GumbelLogits(float[] logits, int seed)
    {
        var rng = new Random(seed);
        var r = new float[logits.Length];
        for (int i = 0; i < r.Length; i++)
        {
            double u = Math.Max(rng.NextDouble(), 1e-20);
            r[i] = logits[i] - (float)Math.Log(-Math.Log(u));
        }
        return r;
    }
}
