using MedVL.Autograd;

namespace MedVL.Models.Blocks;

/// <summary>The feed-forward half of a decoder block.</summary>
public abstract class DecoderMlp
{
    public abstract Tensor Forward(Tensor x);

    /// <summary>The FFN's Linear layers by HF name (gate_proj, up_proj, down_proj / gate_up_proj / fc1, fc2), settable so
    /// adapters or trainable copies can replace them.</summary>
    public virtual IEnumerable<(string Name, Func<LinearLayer> Get, Action<LinearLayer> Set)> Linears() => [];
}

/// <summary>LlamaMLP: down_proj(act(gate_proj(x)) ⊙ up_proj(x)) (Llama, Qwen2, StableLM).</summary>
public class GatedMlp(LinearLayer gate, LinearLayer up, LinearLayer down, string hiddenAct) : DecoderMlp
{
    public LinearLayer GateProj { get; set; } = gate;
    public LinearLayer UpProj { get; set; } = up;
    public LinearLayer DownProj { get; set; } = down;
    public string HiddenAct { get; } = hiddenAct;

    public override IEnumerable<(string Name, Func<LinearLayer> Get, Action<LinearLayer> Set)> Linears() =>
        [("gate_proj", () => GateProj, v => GateProj = v), ("up_proj", () => UpProj, v => UpProj = v), ("down_proj", () => DownProj, v => DownProj = v)];

    public override Tensor Forward(Tensor x)
    {
        using var g = GateProj.Forward(x);
        using var u = UpProj.Forward(x);
        using var h = HiddenAct is "silu" or "swish" ? Ops.SwiGlu(g, u) : MulAct(g, u);
        return DownProj.Forward(h);
    }

    private Tensor MulAct(Tensor g, Tensor u)
    {
        using var a = Ops.Activation(HiddenAct, g);
        return Ops.Mul(a, u);
    }
}

/// <summary>Phi3MLP: gate, up = gate_up_proj(x).chunk(2, −1); down_proj(up ⊙ act(gate)).</summary>
public class FusedGatedMlp(LinearLayer gateUp, LinearLayer down, string hiddenAct) : DecoderMlp
{
    public LinearLayer GateUpProj { get; set; } = gateUp;
    public LinearLayer DownProj { get; set; } = down;
    public string HiddenAct { get; } = hiddenAct;

    public override IEnumerable<(string Name, Func<LinearLayer> Get, Action<LinearLayer> Set)> Linears() =>
        [("gate_up_proj", () => GateUpProj, v => GateUpProj = v), ("down_proj", () => DownProj, v => DownProj = v)];

    public override Tensor Forward(Tensor x)
    {
        using var gu = GateUpProj.Forward(x);
        Tensor h;
        if (HiddenAct is "silu" or "swish") h = Ops.SwiGluFused(gu);
        else
        {
            var parts = Ops.Chunk(gu, 2, -1);
            using var gate = parts[0];
            using var up = parts[1];
            using var a = Ops.Activation(HiddenAct, gate);
            h = Ops.Mul(up, a);
        }
        using (h) return DownProj.Forward(h);
    }
}

/// <summary>PhiMLP / CLIPMLP: fc2(act(fc1(x))).</summary>
public class FcMlp(LinearLayer fc1, LinearLayer fc2, string hiddenAct) : DecoderMlp
{
    public LinearLayer Fc1 { get; set; } = fc1;
    public LinearLayer Fc2 { get; set; } = fc2;
    public string HiddenAct { get; } = hiddenAct;

    public override IEnumerable<(string Name, Func<LinearLayer> Get, Action<LinearLayer> Set)> Linears() =>
        [("fc1", () => Fc1, v => Fc1 = v), ("fc2", () => Fc2, v => Fc2 = v)];

    public override Tensor Forward(Tensor x)
    {
        using var h = Fc1.Forward(x);
        using var a = Ops.Activation(HiddenAct, h);
        return Fc2.Forward(a);
    }
}
