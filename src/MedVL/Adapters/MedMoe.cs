using MedVL.Autograd;
using MedVL.Models;
using MedVL.Models.Blocks;
using MedVL.Optim;
using MedVL.Tensors;

namespace MedVL.Adapters;

/// <summary>How Med-MoE's stage 3 turns the dense stage-2 model into the sparse one (med-moe.md §1, §3).</summary>
public sealed record MedMoeUpcycleOptions
{
    public int Experts { get; init; } = 4;
    /// <summary>MoE layers; default every other layer from 0 (moe_mode "sparse": 0, 2, 4, …).</summary>
    public int[]? Layers { get; init; }
    public MoeGating Gating { get; init; } = new();
    /// <summary>Keep the original FFN as the always-on meta expert (Med-MoE); false = plain MoE-LLaVA.</summary>
    public bool MetaExpert { get; init; } = true;
    /// <summary>Seed of the router's nn.Linear default initialisation (used when no pre-trained router is loaded).</summary>
    public int Seed { get; init; } = 0;
}

/// <summary>
/// Upcycling (Med-MoE initialize_moe_modules): each MoE layer's dense FFN is copied into E experts and kept itself as
/// the meta expert; a router Linear(H, E) with bias is added. The copies are float32 and trainable; the caller owns the
/// returned tensors (they are what stage 3 trains: experts, meta expert, and the router unless it is frozen).
/// </summary>
public static class MedMoeUpcycling
{
    public static IReadOnlyList<(string Name, Tensor Tensor)> Upcycle(CausalLM model, MedMoeUpcycleOptions? options = null)
    {
        options ??= new();
        var layers = options.Layers ?? Enumerable.Range(0, model.NumLayers).Where(i => i % 2 == 0).ToArray();
        var rng = new Random(options.Seed);
        var list = new List<(string, Tensor)>();
        foreach (int l in layers)
        {
            if ((uint)l >= (uint)model.NumLayers) throw new ArgumentOutOfRangeException(nameof(options), l, $"MoE layer outside [0, {model.NumLayers})");
            var dense = model.Layers[l].Mlp;
            if (dense is MoeMlp) throw new InvalidOperationException($"layer {l} is already an MoE layer");
            string p = $"model.layers.{l}.mlp.";
            var experts = new DecoderMlp[options.Experts];
            for (int j = 0; j < experts.Length; j++) experts[j] = Copy(dense, p + $"deepspeed_moe.experts.deepspeed_experts.{j}.", list);
            var meta = options.MetaExpert ? Copy(dense, p + "meta_moe.", list) : null;
            var router = NewRouter(model.HiddenSize, options.Experts, rng, p + "deepspeed_moe.gate.wg", list);
            model.Layers[l].Mlp = new MoeMlp(l, router, experts, meta, options.Gating);
        }
        return list;
    }

    /// <summary>A trainable float32 copy of a dense FFN with the same forward.</summary>
    private static DecoderMlp Copy(DecoderMlp m, string prefix, List<(string, Tensor)> list)
    {
        LinearLayer C(LinearLayer l, string name)
        {
            var c = l.TrainableCopy(prefix + name);
            list.Add((prefix + name + ".weight", c.Weight));
            if (c.Bias is not null) list.Add((prefix + name + ".bias", c.Bias));
            return c;
        }
        return m switch
        {
            FusedGatedMlp f => new FusedGatedMlp(C(f.GateUpProj, "gate_up_proj"), C(f.DownProj, "down_proj"), f.HiddenAct),
            GatedMlp g => new GatedMlp(C(g.GateProj, "gate_proj"), C(g.UpProj, "up_proj"), C(g.DownProj, "down_proj"), g.HiddenAct),
            FcMlp fc => new FcMlp(C(fc.Fc1, "fc1"), C(fc.Fc2, "fc2"), fc.HiddenAct),
            _ => throw new NotSupportedException($"cannot upcycle a {m.GetType().Name}"),
        };
    }

    /// <summary>torch.nn.Linear(H, E) default init: U(−1/√H, 1/√H) for weight and bias.</summary>
    private static LinearLayer NewRouter(int h, int e, Random rng, string name, List<(string, Tensor)> list)
    {
        var w = AdapterInit.Uniform(e, h, rng);
        var b = AdapterInit.Uniform(e, h, rng, bias: true);
        w.Name = name + ".weight"; b.Name = name + ".bias";
        list.Add((w.Name, w)); list.Add((b.Name, b));
        return new LinearLayer(w, b);
    }
}

/// <summary>Options of <see cref="RouterPretraining.Train"/> (Router_Train.ipynb: Adam lr 1e-3, 32-sample steps, 10 epochs).</summary>
public sealed record RouterTrainingOptions
{
    public int Epochs { get; init; } = 10;
    public double LearningRate { get; init; } = 1e-3;
    public int BatchSize { get; init; } = 32;
    public int Seed { get; init; } = 0;
}

/// <summary>
/// Med-MoE's domain-specific router (med-moe.md §1.6, Router_Train.ipynb): a linear modality classifier Linear(H, C)
/// trained with cross-entropy on one embedding per sample — the mean over all of the dense stage-2 model's hidden
/// states (embeddings, every layer output, the last one after the final norm, as HF output_hidden_states) and over all
/// positions — then loaded, the same weights, into every MoE layer's router (and frozen). At inference it is applied
/// per token, a train/inference mismatch the release has and MedVL keeps.
/// </summary>
public static class RouterPretraining
{
    /// <summary>The sample's embedding [H] from inputs_embeds [1, T, H] (a spliced LLaVA prompt or text).</summary>
    public static float[] Embedding(CausalLM model, Tensor inputsEmbeds, CancellationToken ct = default)
    {
        using var _ = GradMode.NoGrad();
        var states = new List<Tensor>();
        try
        {
            using var last = model.ForwardHidden(inputsEmbeds, options: new DecoderForwardOptions { HiddenStates = states, CancellationToken = ct });
            int h = model.HiddenSize, t = inputsEmbeds.Size(1);
            var sum = new double[h];
            // HF: hidden_states = (embeddings, layer 1 … layer L−1 outputs, final-norm(layer L output)).
            var all = states.Take(states.Count - 1).Append(last).ToList();
            foreach (var s in all)
            {
                var v = s.ToFloatArray();
                for (int i = 0; i < t; i++)
                    for (int c = 0; c < h; c++) sum[c] += v[i * h + c];
            }
            return sum.Select(x => (float)(x / (all.Count * (double)t))).ToArray();
        }
        finally { foreach (var s in states) s.Dispose(); }
    }

    /// <summary>Trains Linear(H, classes) on (embedding, label) pairs; returns weight [classes, H] and bias [classes].</summary>
    public static (float[] Weight, float[] Bias) Train(IReadOnlyList<float[]> embeddings, IReadOnlyList<int> labels, int classes,
        RouterTrainingOptions? options = null, CancellationToken ct = default)
    {
        options ??= new();
        if (embeddings.Count == 0 || embeddings.Count != labels.Count) throw new ArgumentException($"{embeddings.Count} embeddings for {labels.Count} labels");
        int h = embeddings[0].Length;
        if (labels.Any(l => (uint)l >= (uint)classes)) throw new ArgumentException($"labels must be in [0, {classes})");
        var rng = new Random(options.Seed);
        using var w = AdapterInit.Uniform(classes, h, rng);
        using var b = AdapterInit.Uniform(classes, h, rng, bias: true);
        using var opt = AdamW.Adam([new ParamGroup(w, b)], lr: options.LearningRate);
        var order = Enumerable.Range(0, embeddings.Count).ToArray();
        for (int epoch = 0; epoch < options.Epochs; epoch++)
        {
            rng.Shuffle(order);
            for (int s = 0; s < order.Length; s += options.BatchSize)
            {
                ct.ThrowIfCancellationRequested();
                var batch = order.Skip(s).Take(options.BatchSize).ToArray();
                using var x = Tensor.FromArray(batch.SelectMany(i => embeddings[i]).ToArray(), batch.Length, h);
                using var y = Tensor.FromArray(batch.Select(i => (long)labels[i]).ToArray(), batch.Length);
                using var logits = Ops.Linear(x, w, b);
                using var loss = Ops.CrossEntropy(logits, y);
                opt.ZeroGrad();
                loss.Backward();
                opt.Step();
            }
        }
        return (w.ToFloatArray(), b.ToFloatArray());
    }

    /// <summary>Classifier accuracy on (embedding, label) pairs.</summary>
    public static double Accuracy(float[] weight, float[] bias, IReadOnlyList<float[]> embeddings, IReadOnlyList<int> labels)
    {
        int classes = bias.Length, h = embeddings[0].Length, right = 0;
        for (int n = 0; n < embeddings.Count; n++)
        {
            int best = 0; double bestV = double.NegativeInfinity;
            for (int c = 0; c < classes; c++)
            {
                double v = bias[c];
                for (int i = 0; i < h; i++) v += weight[c * h + i] * embeddings[n][i];
                if (v > bestV) { bestV = v; best = c; }
            }
            if (best == labels[n]) right++;
        }
        return right / (double)embeddings.Count;
    }

    /// <summary>Loads the classifier as the (frozen) router of every MoE layer; returns how many layers got it. The
    /// model's MoE layers then hold float32 copies owned by the returned tensors.</summary>
    public static IReadOnlyList<Tensor> LoadIntoRouters(CausalLM model, float[] weight, float[] bias)
    {
        var owned = new List<Tensor>();
        foreach (var moe in model.Layers.Select(l => l.Mlp).OfType<MoeMlp>())
        {
            if (moe.Experts.Count != bias.Length || weight.Length != bias.Length * model.HiddenSize)
                throw new ArgumentException($"router [{bias.Length}, {weight.Length / Math.Max(bias.Length, 1)}] does not fit layer {moe.Layer}: {moe.Experts.Count} experts, hidden {model.HiddenSize}");
            var w = Tensor.FromArray(weight, bias.Length, model.HiddenSize);
            var b = Tensor.FromArray(bias, bias.Length);
            owned.Add(w); owned.Add(b);
            moe.Router = new LinearLayer(w, b);
        }
        if (owned.Count == 0) throw new InvalidOperationException("the model has no MoE layer to load a router into");
        return owned;
    }
}
