using MedVL.Kernels;
using MedVL.Tensors;

namespace MedVL.Autograd;

public static partial class Ops
{
    /// <summary>torch.nn.functional.conv2d(x, weight, bias, stride, padding) with dilation 1 and groups 1: x [N, C, H, W], weight [O, C, kh, kw], bias [O].</summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, CancellationToken cancellationToken = default) =>
        Conv2d(x, weight, bias, (stride, stride), (padding, padding), cancellationToken);

    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias, (int H, int W) stride, (int H, int W) padding, CancellationToken cancellationToken = default)
    {
        const string op = "conv2d";
        if (x.Rank != 4 || weight.Rank != 4)
            throw new ArgumentException($"{op}: input must be [N, C, H, W] and weight [O, C, kh, kw]; got {x.Describe()} and {weight.Describe()}");
        if (weight.Size(1) != x.Size(1))
            throw new ArgumentException($"{op}: weight {weight.Describe()} expects {weight.Size(1)} input channels, input {x.Describe()} has {x.Size(1)}");
        if (bias is not null && (bias.Rank != 1 || bias.Size(0) != weight.Size(0)))
            throw new ArgumentException($"{op}: bias {bias.Describe()} must be [{weight.Size(0)}]");
        var g = new Conv2dGeometry(x.Size(0), x.Size(1), x.Size(2), x.Size(3), weight.Size(0), weight.Size(2), weight.Size(3),
            stride.H, stride.W, padding.H, padding.W);
        try { g.Validate(); }
        catch (ArgumentException e) { throw new ArgumentException($"{e.Message} (input {x.Describe()}, weight {weight.Describe()})", e); }

        var xc = OpsBInputs.F32Contiguous(x);
        var wc = OpsBInputs.F32Contiguous(weight);
        using var bc = bias is null ? null : OpsBInputs.F32Contiguous(bias);
        var y = Tensor.Empty(g.Batch, g.OutChannels, g.OutH, g.OutW);
        try
        {
            ConvKernels.Forward(xc.Span<float>(), wc.Span<float>(), bc is null ? default : bc.Span<float>(), y.Span<float>(), g, cancellationToken);
        }
        catch
        {
            y.Dispose(); xc.Dispose(); wc.Dispose();
            throw;
        }
        bool record = GradMode.IsEnabled && (x.TracksGrad || weight.TracksGrad || (bias?.TracksGrad ?? false));
        if (record) y.GradFn = new Conv2dBackward(x, weight, bias, xc, wc, g);
        else { xc.Dispose(); wc.Dispose(); }
        return y;
    }

    /// <summary>F.interpolate(x, scale_factor=s, mode="nearest") for x [N, C, H, W] and an integer factor (VQGAN decoder: 2).</summary>
    public static Tensor UpsampleNearest2d(Tensor x, int scaleFactor = 2)
    {
        if (x.Rank != 4) throw new ArgumentException($"upsample_nearest2d: input must be [N, C, H, W], got {x.Describe()}");
        if (scaleFactor < 1) throw new ArgumentException($"upsample_nearest2d: scale factor {scaleFactor} must be a positive integer");
        int N = x.Size(0), C = x.Size(1), H = x.Size(2), W = x.Size(3);
        using var xc = OpsBInputs.F32Contiguous(x);
        var y = Tensor.Empty(N, C, checked(H * scaleFactor), checked(W * scaleFactor));
        UpsampleKernels.NearestForward(xc.Span<float>(), y.Span<float>(), N * C, H, W, scaleFactor, scaleFactor);
        if (GradMode.IsEnabled && x.TracksGrad) y.GradFn = new UpsampleNearestBackward(x, scaleFactor);
        return y;
    }
}

internal sealed class Conv2dBackward : GradNode
{
    private Tensor? _x, _w;
    private readonly Conv2dGeometry _g;
    private readonly bool _hasBias;

    public Conv2dBackward(Tensor x, Tensor weight, Tensor? bias, Tensor xc, Tensor wc, Conv2dGeometry g)
        : base(bias is null ? new[] { x, weight } : new[] { x, weight, bias })
    {
        _x = xc; _w = wc; _g = g; _hasBias = bias is not null;
    }

    public override Tensor?[] Backward(Tensor gradOutput)
    {
        if (_x is null) throw new InvalidOperationException("conv2d backward ran after its saved tensors were released");
        var dx = NeedsGrad(0) ? Tensor.Empty(_x.ShapeArray()) : null;
        var dw = NeedsGrad(1) ? Tensor.Empty(_w!.ShapeArray()) : null;
        var db = _hasBias && NeedsGrad(2) ? Tensor.Empty(_g.OutChannels) : null;
        ConvKernels.Backward(_x.Span<float>(), _w!.Span<float>(), gradOutput.Span<float>(),
            dx is null ? default : dx.Span<float>(), dw is null ? default : dw.Span<float>(), db is null ? default : db.Span<float>(), _g);
        return _hasBias ? new[] { dx, dw, db } : new[] { dx, dw };
    }

    public override void ReleaseSaved()
    {
        _x?.Dispose(); _w?.Dispose();
        _x = _w = null;
    }
}

internal sealed class UpsampleNearestBackward : GradNode
{
    private readonly int _scale;
    public UpsampleNearestBackward(Tensor x, int scale) : base(x) => _scale = scale;

    public override Tensor?[] Backward(Tensor gradOutput)
    {
        var s = Inputs[0].Shape;
        var dx = Tensor.Empty(s.ToArray());
        UpsampleKernels.NearestBackward(gradOutput.Span<float>(), dx.Span<float>(), s[0] * s[1], s[2], s[3], _scale, _scale);
        return new Tensor?[] { dx };
    }
}
