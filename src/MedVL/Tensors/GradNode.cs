namespace MedVL.Tensors;

/// <summary>
/// A recorded op in the autograd graph (PyTorch's grad_fn). The graph lives on the tensors themselves, not on a
/// global tape, so two requests never share recording state.
/// </summary>
public abstract class GradNode
{
    protected GradNode(params Tensor[] inputs) => Inputs = inputs;

    /// <summary>The op's inputs; the engine sends gradients only to those that track gradients.</summary>
    public Tensor[] Inputs { get; }

    public virtual string Name => GetType().Name;

    /// <summary>
    /// Given dL/d(output) (float32, contiguous, the output's shape), return dL/d(input i) for each input: a new
    /// float32 contiguous tensor of the input's shape that the engine owns and disposes, or null where the input does
    /// not need one (check <see cref="NeedsGrad"/> to skip the work).
    /// </summary>
    public abstract Tensor?[] Backward(Tensor gradOutput);

    protected bool NeedsGrad(int i) => Inputs[i].TracksGrad;

    /// <summary>Release tensors saved for backward (called by the engine once the node has run, unless the graph is retained).</summary>
    public virtual void ReleaseSaved() { }
}

/// <summary>
/// Whether ops record the graph. Scoped per logical call (AsyncLocal), so a no-grad inference request never turns
/// recording off for a training loop running beside it.
/// </summary>
public static class GradMode
{
    private static readonly AsyncLocal<int> Disabled = new();

    public static bool IsEnabled => Disabled.Value == 0;

    /// <summary>Disable recording until the returned scope is disposed (torch.no_grad).</summary>
    public static Scope NoGrad()
    {
        Disabled.Value++;
        return new Scope(-1);
    }

    /// <summary>Re-enable recording inside a no-grad region (torch.enable_grad), used by activation checkpointing.</summary>
    public static Scope EnableGrad()
    {
        int saved = Disabled.Value;
        Disabled.Value = 0;
        return new Scope(saved);
    }

    public readonly struct Scope : IDisposable
    {
        private readonly int _restore; // -1: decrement; otherwise the value to restore
        internal Scope(int restore) => _restore = restore;

        public void Dispose()
        {
            if (_restore < 0) Disabled.Value--;
            else Disabled.Value = _restore;
        }
    }
}

/// <summary>Backward of any view: scatter-add the output gradient into the same view of a zero gradient of the source.</summary>
internal sealed class ViewBackward : GradNode
{
    private readonly int[] _sourceShape;
    private readonly Func<Tensor, Tensor> _reapply; // must return a new view (it is disposed here)

    public ViewBackward(Tensor source, Func<Tensor, Tensor> reapply) : base(source)
    {
        _sourceShape = source.ShapeArray();
        _reapply = reapply;
    }

    public override Tensor?[] Backward(Tensor gradOutput)
    {
        var g = Tensor.Zeros(_sourceShape);
        using (GradMode.NoGrad())
        using (var view = _reapply(g))
            StridedCopy.AddInto(view, gradOutput);
        return new Tensor?[] { g };
    }
}
