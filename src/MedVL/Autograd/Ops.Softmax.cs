using MedVL.Kernels;
using MedVL.Tensors;

namespace MedVL.Autograd;

/// <summary>Softmax and LogSoftmax over the last dim (torch.softmax(x, -1), torch.log_softmax(x, -1)).</summary>
public static partial class Ops
{
    public static Tensor Softmax(Tensor x) => SoftmaxLike(x, log: false);
    public static Tensor LogSoftmax(Tensor x) => SoftmaxLike(x, log: true);

    private static Tensor SoftmaxLike(Tensor x, bool log)
    {
        string name = log ? "LogSoftmax" : "Softmax";
        if (x.Rank == 0) throw new ArgumentException($"{name}: {x.Describe()} has no last dim");
        int n = x.Size(-1);
        int rows = n == 0 ? 0 : (int)(x.Numel / n);
        using var xc = ReadF32(x, name, "x");
        var y = NewLike(x);
        if (log) Kernels.Softmax.LogSoftmaxForward(xc.Span<float>(), y.Span<float>(), rows, n);
        else Kernels.Softmax.SoftmaxForward(xc.Span<float>(), y.Span<float>(), rows, n);
        if (ShouldRecord(x)) y.GradFn = new SoftmaxBackward(x, y.Detach(), rows, n, log);
        return y;
    }

    private sealed class SoftmaxBackward : GradNode
    {
        private Tensor? _y;
        private readonly int _rows, _n;
        private readonly bool _log;

        public SoftmaxBackward(Tensor x, Tensor y, int rows, int n, bool log) : base(x)
        {
            _y = y;
            (_rows, _n, _log) = (rows, n, log);
        }

        public override string Name => _log ? "LogSoftmaxBackward" : "SoftmaxBackward";

        public override Tensor?[] Backward(Tensor g)
        {
            var gx = Tensor.Empty(g.ShapeArray());
            if (_log) Kernels.Softmax.LogSoftmaxBackward(_y!.Span<float>(), g.Span<float>(), gx.Span<float>(), _rows, _n);
            else Kernels.Softmax.SoftmaxBackward(_y!.Span<float>(), g.Span<float>(), gx.Span<float>(), _rows, _n);
            return new Tensor?[] { gx };
        }

        public override void ReleaseSaved()
        {
            _y?.Dispose();
            _y = null;
        }
    }
}
