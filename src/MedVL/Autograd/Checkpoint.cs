using MedVL.Tensors;

namespace MedVL.Autograd;

/// <summary>
/// Activation checkpointing (torch.utils.checkpoint): run a block without keeping its intermediate activations and
/// recompute them during backward. Memory for long sequences then grows with the number of blocks, not their insides.
/// </summary>
public static class Checkpoint
{
    public static Tensor Run(Func<Tensor[], Tensor> block, params Tensor[] inputs)
    {
        if (!GradMode.IsEnabled) return block(inputs);
        Tensor output;
        using (GradMode.NoGrad())
        {
            output = block(inputs);
        }
        var detached = output.Detach();
        output.Dispose();
        detached.GradFn = new CheckpointBackward(block, inputs);
        return detached;
    }

    private sealed class CheckpointBackward : GradNode
    {
        private readonly Func<Tensor[], Tensor> _block;

        public CheckpointBackward(Func<Tensor[], Tensor> block, Tensor[] inputs) : base(inputs) => _block = block;

        public override Tensor?[] Backward(Tensor gradOutput)
        {
            // Recompute with recording on, starting from fresh leaves so the outer graph is not re-entered;
            // parameters inside the block are leaves already and receive their gradients directly.
            var leaves = new Tensor[Inputs.Length];
            for (int i = 0; i < leaves.Length; i++)
            {
                leaves[i] = Inputs[i].Detach();
                leaves[i].RequiresGrad = Inputs[i].TracksGrad;
            }
            try
            {
                using (GradMode.EnableGrad())
                {
                    using var recomputed = _block(leaves);
                    if (recomputed.TracksGrad) recomputed.Backward(gradOutput.Clone());
                }
                var result = new Tensor?[leaves.Length];
                for (int i = 0; i < leaves.Length; i++)
                {
                    result[i] = leaves[i].Grad;
                    leaves[i].Grad = null;
                }
                return result;
            }
            finally
            {
                foreach (var l in leaves) l.Dispose();
            }
        }
    }
}
