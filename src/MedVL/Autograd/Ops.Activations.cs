using MedVL.Kernels;
using MedVL.Tensors;

namespace MedVL.Autograd;

/// <summary>Activations by their HF ACT2FN names, and SwiGLU (separate gate/up, or Phi-3's fused gate_up).</summary>
public static partial class Ops
{
    internal enum ActKind { Gelu, GeluTanh, QuickGelu, Silu }

    /// <summary>nn.GELU() / ACT2FN["gelu"]: 0.5 x (1 + erf(x/√2)).</summary>
    public static Tensor Gelu(Tensor x) => Act(ActKind.Gelu, x);
    /// <summary>ACT2FN["gelu_new"] = ["gelu_pytorch_tanh"] (NewGELUActivation): 0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³))).</summary>
    public static Tensor GeluTanh(Tensor x) => Act(ActKind.GeluTanh, x);
    /// <summary>CLIP's ACT2FN["quick_gelu"]: x σ(1.702 x).</summary>
    public static Tensor QuickGelu(Tensor x) => Act(ActKind.QuickGelu, x);
    /// <summary>ACT2FN["silu"] = ["swish"]: x σ(x).</summary>
    public static Tensor Silu(Tensor x) => Act(ActKind.Silu, x);

    /// <summary>The activation a HF config names in hidden_act / hidden_activation.</summary>
    public static Tensor Activation(string hfName, Tensor x) => hfName switch
    {
        "gelu" => Gelu(x),
        // gelu_fast is the same tanh approximation written as x·(1 + 0.044715x²)
        "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => GeluTanh(x),
        "quick_gelu" => QuickGelu(x),
        "silu" or "swish" => Silu(x),
        _ => throw new ArgumentException($"Activation: unsupported hidden_act \"{hfName}\" (expected gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, quick_gelu, silu or swish)"),
    };

    private static unsafe Tensor Act(ActKind kind, Tensor x)
    {
        using var xc = ReadF32(x, kind.ToString(), "x");
        var y = NewLike(x);
        ActParallel.Run(kind, backward: false, (float*)xc.DataPointer, null, (float*)y.DataPointer, y.Numel);
        if (ShouldRecord(x)) y.GradFn = new ActBackward(kind, x, xc.Detach());
        return y;
    }

    private sealed class ActBackward : GradNode
    {
        private readonly ActKind _kind;
        private Tensor? _x;

        public ActBackward(ActKind kind, Tensor x, Tensor saved) : base(x)
        {
            _kind = kind;
            _x = saved;
        }

        public override string Name => _kind + "Backward";

        public override unsafe Tensor?[] Backward(Tensor g)
        {
            var gx = Tensor.Empty(g.ShapeArray());
            ActParallel.Run(_kind, backward: true, (float*)_x!.DataPointer, (float*)g.DataPointer, (float*)gx.DataPointer, gx.Numel);
            return new Tensor?[] { gx };
        }

        public override void ReleaseSaved()
        {
            _x?.Dispose();
            _x = null;
        }
    }

    /// <summary>SwiGLU as in HF LlamaMLP: silu(gate) ⊙ up (same shapes).</summary>
    public static unsafe Tensor SwiGlu(Tensor gate, Tensor up)
    {
        if (!gate.Shape.SequenceEqual(up.Shape))
            throw new ArgumentException($"SwiGlu: gate {gate.Describe()} and up {up.Describe()} must have the same shape");
        if (gate.Rank == 0) throw new ArgumentException($"SwiGlu: gate {gate.Describe()} needs a last dim");
        int f = gate.Size(-1);
        int rows = f == 0 ? 0 : (int)(gate.Numel / f);
        using var gc = ReadF32(gate, "SwiGlu", "gate");
        using var uc = ReadF32(up, "SwiGlu", "up");
        var y = NewLike(gate);
        SwiGluParallel.Forward((float*)gc.DataPointer, (float*)uc.DataPointer, f, (float*)y.DataPointer, rows, f);
        if (ShouldRecord(gate, up)) y.GradFn = new SwiGluBackward(new[] { gate, up }, gc.Detach(), uc.Detach(), rows, f, fused: false);
        return y;
    }

    /// <summary>
    /// SwiGLU on Phi-3's fused gate_up_proj output [.., 2F]: HF Phi3MLP does gate, up = x.chunk(2, dim=-1), so the
    /// first half is the gate and the second the up projection; returns up ⊙ silu(gate) of shape [.., F].
    /// </summary>
    public static unsafe Tensor SwiGluFused(Tensor gateUp)
    {
        if (gateUp.Rank == 0 || gateUp.Size(-1) % 2 != 0)
            throw new ArgumentException($"SwiGluFused: gate_up {gateUp.Describe()} must have an even last dim (gate and up halves)");
        int f2 = gateUp.Size(-1), f = f2 / 2;
        int rows = f2 == 0 ? 0 : (int)(gateUp.Numel / f2);
        using var xc = ReadF32(gateUp, "SwiGluFused", "gate_up");
        var shape = gateUp.ShapeArray();
        shape[^1] = f;
        var y = Tensor.Empty(shape);
        SwiGluParallel.Forward((float*)xc.DataPointer, (float*)xc.DataPointer + f, f2, (float*)y.DataPointer, rows, f);
        if (ShouldRecord(gateUp)) y.GradFn = new SwiGluBackward(new[] { gateUp }, xc.Detach(), null, rows, f, fused: true);
        return y;
    }

    private sealed class SwiGluBackward : GradNode
    {
        private Tensor? _gate, _up; // fused: _gate holds gate_up
        private readonly int _rows, _f;
        private readonly bool _fused;

        public SwiGluBackward(Tensor[] inputs, Tensor gate, Tensor? up, int rows, int f, bool fused) : base(inputs)
        {
            _gate = gate;
            _up = up;
            (_rows, _f, _fused) = (rows, f, fused);
        }

        public override unsafe Tensor?[] Backward(Tensor g)
        {
            if (_fused)
            {
                var gx = Tensor.Empty(Inputs[0].ShapeArray());
                float* x = (float*)_gate!.DataPointer, gxp = (float*)gx.DataPointer;
                SwiGluParallel.Backward(x, x + _f, 2 * _f, (float*)g.DataPointer, gxp, gxp + _f, _rows, _f);
                return new Tensor?[] { gx };
            }
            Tensor? gg = NeedsGrad(0) ? Tensor.Empty(Inputs[0].ShapeArray()) : null;
            Tensor? gu = NeedsGrad(1) ? Tensor.Empty(Inputs[1].ShapeArray()) : null;
            SwiGluParallel.Backward((float*)_gate!.DataPointer, (float*)_up!.DataPointer, _f, (float*)g.DataPointer,
                gg is null ? null : (float*)gg.DataPointer, gu is null ? null : (float*)gu.DataPointer, _rows, _f);
            return new[] { gg, gu };
        }

        public override void ReleaseSaved()
        {
            _gate?.Dispose(); _gate = null;
            _up?.Dispose(); _up = null;
        }
    }
}

/// <summary>
/// Activations forward and backward spread over threads in contiguous chunks: elements are independent, so the result
/// equals the one-thread kernel bit for bit. Small tensors stay on the calling thread.
/// </summary>
internal static unsafe class ActParallel
{
    private struct Elements : IRowChunk
    {
        public Ops.ActKind Kind;
        public bool Backward;
        public float* X, G, Y;

        public void Run(int off, int len)
        {
            var x = new ReadOnlySpan<float>(X + off, len);
            var y = new Span<float>(Y + off, len);
            if (!Backward)
            {
                switch (Kind)
                {
                    case Ops.ActKind.Gelu: Activations.GeluForward(x, y); break;
                    case Ops.ActKind.GeluTanh: Activations.GeluTanhForward(x, y); break;
                    case Ops.ActKind.QuickGelu: Activations.QuickGeluForward(x, y); break;
                    default: Activations.SiluForward(x, y); break;
                }
                return;
            }
            var g = new ReadOnlySpan<float>(G + off, len);
            switch (Kind)
            {
                case Ops.ActKind.Gelu: Activations.GeluBackward(x, g, y); break;
                case Ops.ActKind.GeluTanh: Activations.GeluTanhBackward(x, g, y); break;
                case Ops.ActKind.QuickGelu: Activations.QuickGeluBackward(x, g, y); break;
                default: Activations.SiluBackward(x, g, y); break;
            }
        }
    }

    public static void Run(Ops.ActKind kind, bool backward, float* x, float* g, float* y, long n)
    {
        var body = new Elements { Kind = kind, Backward = backward, X = x, G = g, Y = y };
        WorkSplit.ForRows(checked((int)n), n, ref body);
    }
}

/// <summary>SwiGLU forward and backward over row chunks (rows independent; the same kernel per row, so bit-identical to one call).</summary>
internal static unsafe class SwiGluParallel
{
    private struct Rows : IRowChunk
    {
        public bool Backward;
        public float* Gate, Up, Y, GGate, GUp; // backward: Y = the output gradient
        public int Pitch, F;

        public void Run(int r0, int rc)
        {
            int inLen = checked((rc - 1) * Pitch + F);
            long inOff = (long)r0 * Pitch;
            var gate = new ReadOnlySpan<float>(Gate + inOff, inLen);
            var up = new ReadOnlySpan<float>(Up + inOff, inLen);
            var y = new Span<float>(Y + (long)r0 * F, checked(rc * F));
            if (!Backward) { Activations.SwiGluForward(gate, up, Pitch, y, rc, F); return; }
            Activations.SwiGluBackward(gate, up, Pitch, y, GGate == null ? default : new Span<float>(GGate + inOff, inLen),
                GUp == null ? default : new Span<float>(GUp + inOff, inLen), rc, F);
        }
    }

    public static void Forward(float* gate, float* up, int pitch, float* y, int rows, int f)
    {
        var body = new Rows { Gate = gate, Up = up, Y = y, Pitch = pitch, F = f };
        if (f > 0) WorkSplit.ForRows(rows, (long)rows * f, ref body);
    }

    /// <summary>gGate/gUp (either may be null) with the inputs' pitch; gy is [rows, f].</summary>
    public static void Backward(float* gate, float* up, int pitch, float* gy, float* gGate, float* gUp, int rows, int f)
    {
        var body = new Rows { Backward = true, Gate = gate, Up = up, Y = gy, GGate = gGate, GUp = gUp, Pitch = pitch, F = f };
        if (f > 0) WorkSplit.ForRows(rows, (long)rows * f, ref body);
    }
}
