using MedVL.Autograd;
using MedVL.Tensors;
using MedVL.Models.Blocks;

namespace MedVL.Adapters;

/// <summary>
/// A low-rank adapter on one nn.Linear: the extra term added to the frozen base output. Parameters are float32
/// tensors the adapter owns (trainable: <see cref="Tensor.RequiresGrad"/>), named with the suffixes the released
/// checkpoints use after the module path ("lora_A.weight", "lora_route.weight", …).
/// </summary>
public interface ILinearAdapter : IDisposable
{
    /// <summary>Adapter name (the key of <see cref="AdapterSelection.Names"/>).</summary>
    string Name { get; }
    /// <summary>Δy for inputs x [.., in] → [.., out]. <paramref name="dropoutMask"/> (tests) replaces the random dropout
    /// with a fixed inverted-dropout mask (kept / (1 − p)) of the dropped tensor's shape.</summary>
    Tensor Delta(Tensor x, AdapterSelection selection, Tensor? dropoutMask = null);
    /// <summary>(suffix, tensor) of every parameter, e.g. ("lora_B.weight", B).</summary>
    IReadOnlyList<(string Suffix, Tensor Tensor)> Parameters { get; }
}

/// <summary>
/// A frozen nn.Linear with named adapters attached (PEFT's LoraLayer wrapping a base layer). Forward adds the Δ of
/// every adapter named in the current <see cref="AdapterSelection"/>; with none selected it is the base layer exactly.
/// Adapters are attached at load time (<see cref="Attach"/>), never during requests, so reads need no lock.
/// </summary>
public sealed class AdaptedLinear : LinearLayer
{
    private volatile Dictionary<string, ILinearAdapter> _adapters = new(StringComparer.Ordinal);

    public AdaptedLinear(LinearLayer baseLayer, string modulePath) : base(baseLayer.Weight, baseLayer.Bias)
    {
        BaseLayer = baseLayer;
        ModulePath = modulePath;
    }

    public LinearLayer BaseLayer { get; }
    /// <summary>Hugging Face module path, e.g. model.layers.0.self_attn.qkv_proj.</summary>
    public string ModulePath { get; }
    public IReadOnlyDictionary<string, ILinearAdapter> Adapters => _adapters;

    /// <summary>Adds (or replaces) an adapter; copy-on-write so concurrent forwards see either the old or the new set.</summary>
    public void Attach(ILinearAdapter adapter)
    {
        var next = new Dictionary<string, ILinearAdapter>(_adapters, StringComparer.Ordinal);
        if (next.Remove(adapter.Name, out var old)) old.Dispose();
        next[adapter.Name] = adapter;
        _adapters = next;
    }

    public bool Detach(string name)
    {
        var next = new Dictionary<string, ILinearAdapter>(_adapters, StringComparer.Ordinal);
        if (!next.Remove(name, out var old)) return false;
        _adapters = next;
        old.Dispose();
        return true;
    }

    public override Tensor Forward(Tensor x)
    {
        var y = BaseLayer.Forward(x);
        var sel = AdapterSelection.Current;
        if (sel is null || sel.Names.Count == 0) return y;
        foreach (var (name, adapter) in _adapters)
        {
            if (!sel.IsActive(name)) continue;
            using var d = adapter.Delta(x, sel);
            var sum = Ops.Add(y, d);
            y.Dispose();
            y = sum;
        }
        return y;
    }
}

/// <summary>Shared helpers of the adapter layers.</summary>
internal static class AdapterMath
{
    /// <summary>Inverted dropout as torch.nn.Dropout in training mode; otherwise an alias of x (graph kept) that the
    /// caller disposes like any op output.</summary>
    public static Tensor Dropout(Tensor x, float p, AdapterSelection sel, Tensor? mask)
    {
        if (mask is not null) return Ops.Mul(x, mask);
        if (!sel.Training || p <= 0) return Ops.Reshape(x, x.ShapeArray());
        return Ops.Dropout(x, p, true, sel.DropoutRng!);
    }

    public static Tensor NewParameter(int rows, int cols)
    {
        var t = Tensor.Zeros(rows, cols);
        t.RequiresGrad = true;
        return t;
    }

    /// <summary>A float32 trainable copy of a checkpoint tensor (f16/bf16 widened exactly).</summary>
    public static Tensor Parameter(Tensor source, string name)
    {
        var t = source.DType == DType.F32 ? source.Clone() : source.To(DType.F32);
        t.RequiresGrad = true;
        t.Name = name;
        return t;
    }

    public static Tensor Flatten2D(Tensor x)
    {
        int d = x.Size(-1);
        return Ops.Reshape(x, (int)(x.Numel / d), d);
    }
}

/// <summary>
/// PEFT LoRA (peft/tuners/lora/layer.py Linear.forward): Δy = s · B(A(dropout(x))), A [r, in], B [out, r],
/// s = α / r, or α / √r with rsLoRA. Merging adds s·B·A to a float32 copy of the base weight.
/// </summary>
public sealed class LoraAdapter : ILinearAdapter
{
    public LoraAdapter(string name, Tensor a, Tensor b, double scaling, float dropout)
    {
        if (a.Rank != 2 || b.Rank != 2 || b.Size(1) != a.Size(0))
            throw new ArgumentException($"LoRA {name}: lora_A {a.Describe()} / lora_B {b.Describe()} must be [r, in] / [out, r]");
        Name = name; A = a; B = b; Scaling = scaling; DropoutP = dropout;
    }

    public string Name { get; }
    public Tensor A { get; }
    public Tensor B { get; }
    public int Rank => A.Size(0);
    public double Scaling { get; }
    public float DropoutP { get; }
    public IReadOnlyList<(string Suffix, Tensor Tensor)> Parameters => [("lora_A.weight", A), ("lora_B.weight", B)];

    public Tensor Delta(Tensor x, AdapterSelection selection, Tensor? dropoutMask = null)
    {
        using var xd = AdapterMath.Dropout(x, DropoutP, selection, dropoutMask);
        using var a = Ops.Linear(xd, A);
        using var b = Ops.Linear(a, B);
        return Ops.Scale(b, (float)Scaling);
    }

    /// <summary>s · B · A as a float32 [out, in] tensor (PEFT get_delta_weight).</summary>
    public Tensor DeltaWeight()
    {
        using var _ = GradMode.NoGrad();
        using var ba = Ops.MatMul(B, A);
        return Ops.Scale(ba, (float)Scaling);
    }

    public void Dispose() { A.Dispose(); B.Dispose(); }
}

/// <summary>
/// HealthGPT H-LoRA as released (llava/peft/tuners/lora.py, HealthGPT's Linear; healthgpt.md §1): k experts share one
/// A [r, in] and one B [out, r], expert i owning the contiguous rank slots [i·r/k, (i+1)·r/k). A dense per-token router
/// route = softmax(x·Wrᵀ) [.., k] (Wr [k, in], no bias) gates each expert's block (repeat_interleave over r/k):
/// Δy = ((route ⊗ 1_{r/k}) ⊙ dropout(s · x·Aᵀ)) · Bᵀ. One A and one B matmul whatever k is. s = α / r · k in the
/// released code (r = total rank); the paper's Eq. 10 uses α·k / (r/k) — k times larger — as an option.
/// </summary>
public sealed class HLoraAdapter : ILinearAdapter
{
    public HLoraAdapter(string name, Tensor route, Tensor a, Tensor b, double scaling, float dropout)
    {
        if (route.Rank != 2 || a.Rank != 2 || b.Rank != 2 || b.Size(1) != a.Size(0) || route.Size(1) != a.Size(1))
            throw new ArgumentException($"H-LoRA {name}: lora_route {route.Describe()} / lora_A {a.Describe()} / lora_B {b.Describe()} must be [k, in] / [r, in] / [out, r]");
        if (a.Size(0) % route.Size(0) != 0)
            throw new ArgumentException($"H-LoRA {name}: total rank {a.Size(0)} is not a multiple of the expert count {route.Size(0)}");
        Name = name; Route = route; A = a; B = b; Scaling = scaling; DropoutP = dropout;
    }

    public string Name { get; }
    public Tensor Route { get; }
    public Tensor A { get; }
    public Tensor B { get; }
    public int Experts => Route.Size(0);
    public int RankTotal => A.Size(0);
    public double Scaling { get; }
    public float DropoutP { get; }
    public IReadOnlyList<(string Suffix, Tensor Tensor)> Parameters => [("lora_route.weight", Route), ("lora_A.weight", A), ("lora_B.weight", B)];

    public Tensor Delta(Tensor x, AdapterSelection selection, Tensor? dropoutMask = null)
    {
        int k = Experts, r = RankTotal, n = (int)(x.Numel / x.Size(-1));
        using var x2 = AdapterMath.Flatten2D(x);
        using var logits = Ops.Linear(x2, Route);
        using var route = Ops.Softmax(logits);                 // [n, k]
        using var ax = Ops.Linear(x2, A);
        using var scaled = Ops.Scale(ax, (float)Scaling);      // [n, r]
        using var mask2 = dropoutMask is null ? null : AdapterMath.Flatten2D(dropoutMask);
        using var dropped = AdapterMath.Dropout(scaled, DropoutP, selection, mask2);
        // repeat_interleave(route, r/k) ⊙ a  ==  (route [n, k, 1] ⊙ a [n, k, r/k]) reshaped to [n, r]
        using var a3 = Ops.Reshape(dropped, n, k, r / k);
        using var g3 = Ops.Reshape(route, n, k, 1);
        using var gated3 = Ops.Mul(a3, g3);
        using var gated = Ops.Reshape(gated3, n, r);
        using var y = Ops.Linear(gated, B);                    // [n, out]
        var shape = x.ShapeArray();
        shape[^1] = B.Size(0);
        return Ops.Reshape(y, shape);
    }

    public void Dispose() { Route.Dispose(); A.Dispose(); B.Dispose(); }
}

/// <summary>
/// MoELoRA, the papers' baseline (HealthGPT Table 6): k separate LoRA experts (A_i [r, in], B_i [out, r]) and a dense
/// per-token softmax gate Wg [k, in]: Δy = Σ_i g_i(x) · s · B_i A_i dropout(x), s = α / r — k A and k B matmuls.
/// </summary>
public sealed class MoeLoraAdapter : ILinearAdapter
{
    public MoeLoraAdapter(string name, Tensor gate, IReadOnlyList<Tensor> a, IReadOnlyList<Tensor> b, double scaling, float dropout)
    {
        if (gate.Rank != 2 || a.Count != gate.Size(0) || b.Count != a.Count)
            throw new ArgumentException($"MoELoRA {name}: lora_gate {gate.Describe()} must be [k, in] with k = {a.Count} A and B matrices");
        Name = name; Gate = gate; A = a; B = b; Scaling = scaling; DropoutP = dropout;
    }

    public string Name { get; }
    public Tensor Gate { get; }
    public IReadOnlyList<Tensor> A { get; }
    public IReadOnlyList<Tensor> B { get; }
    public int Experts => A.Count;
    public double Scaling { get; }
    public float DropoutP { get; }

    public IReadOnlyList<(string Suffix, Tensor Tensor)> Parameters =>
        [("lora_gate.weight", Gate), .. A.Select((t, i) => ($"lora_A.{i}.weight", t)), .. B.Select((t, i) => ($"lora_B.{i}.weight", t))];

    public Tensor Delta(Tensor x, AdapterSelection selection, Tensor? dropoutMask = null)
    {
        using var x2 = AdapterMath.Flatten2D(x);
        using var logits = Ops.Linear(x2, Gate);
        using var g = Ops.Softmax(logits);
        using var mask2 = dropoutMask is null ? null : AdapterMath.Flatten2D(dropoutMask);
        using var xd = AdapterMath.Dropout(x2, DropoutP, selection, mask2);
        var gs = Ops.Split(g, Enumerable.Repeat(1, Experts).ToArray(), -1);
        Tensor? sum = null;
        try
        {
            for (int i = 0; i < Experts; i++)
            {
                using var a = Ops.Linear(xd, A[i]);
                using var b = Ops.Linear(a, B[i]);
                using var s = Ops.Scale(b, (float)Scaling);
                using var term = Ops.Mul(s, gs[i]);
                if (sum is null) sum = Ops.Reshape(term, term.ShapeArray());
                else { var next = Ops.Add(sum, term); sum.Dispose(); sum = next; }
            }
        }
        finally { foreach (var t in gs) t.Dispose(); }
        using (sum)
        {
            var shape = x.ShapeArray();
            shape[^1] = B[0].Size(0);
            return Ops.Reshape(sum!, shape);
        }
    }

    public void Dispose()
    {
        Gate.Dispose();
        foreach (var t in A) t.Dispose();
        foreach (var t in B) t.Dispose();
    }
}
