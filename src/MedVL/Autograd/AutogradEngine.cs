using System.Numerics.Tensors;
using MedVL.Tensors;

namespace MedVL.Autograd;

/// <summary>
/// Reverse-mode differentiation over the graph recorded on tensors (<see cref="Tensor.GradFn"/>): a topological
/// order from the root, then each node's backward once, with gradients summed per tensor. Leaf gradients accumulate
/// into <see cref="Tensor.Grad"/> across calls (gradient accumulation), so zeroing them is the optimizer's job.
/// </summary>
public static class AutogradEngine
{
    /// <summary>Backpropagate from <paramref name="root"/>; a scalar root gets gradient 1 when none is given.</summary>
    public static void Backward(this Tensor root, Tensor? gradOutput = null, bool retainGraph = false)
    {
        if (!root.TracksGrad)
            throw new InvalidOperationException($"backward on {root.Describe()}, which does not require grad (no trainable input, or recorded under NoGrad)");
        bool ownsSeed = gradOutput is null;
        if (gradOutput is null)
        {
            if (root.Numel != 1) throw new InvalidOperationException($"backward on non-scalar {root.Describe()} needs an explicit gradient");
            gradOutput = Tensor.Full(1f, root.ShapeArray());
        }
        else if (!gradOutput.Shape.SequenceEqual(root.Shape))
            throw new ArgumentException($"gradient {gradOutput.Describe()} does not match {root.Describe()}");

        var order = TopologicalOrder(root);
        var grads = new Dictionary<Tensor, Tensor>(ReferenceEqualityComparer.Instance);
        grads[root] = gradOutput.DType == DType.F32 && gradOutput.IsContiguous ? gradOutput.Detach() : gradOutput.To(DType.F32);
        if (ownsSeed) gradOutput.Dispose();

        using var _ = GradMode.NoGrad(); // backward itself is not recorded (no double backward)
        for (int i = order.Count - 1; i >= 0; i--)
        {
            var t = order[i];
            if (!grads.Remove(t, out var g)) continue; // no gradient reached this tensor
            try
            {
                if (t.RequiresGrad) Accumulate(t, g);
                var node = t.GradFn;
                if (node is null) continue;
                var inGrads = node.Backward(g);
                if (inGrads.Length != node.Inputs.Length)
                    throw new InvalidOperationException($"{node.Name}.Backward returned {inGrads.Length} gradients for {node.Inputs.Length} inputs");
                for (int k = 0; k < inGrads.Length; k++)
                {
                    var gi = inGrads[k];
                    if (gi is null) continue;
                    var input = node.Inputs[k];
                    if (!input.TracksGrad) { gi.Dispose(); continue; }
                    if (!gi.Shape.SequenceEqual(input.Shape))
                        throw new InvalidOperationException($"{node.Name} produced gradient {gi.Describe()} for input {input.Describe()}");
                    if (grads.TryGetValue(input, out var acc))
                    {
                        AddInPlace(acc, gi);
                        gi.Dispose();
                    }
                    else grads[input] = gi;
                }
                if (!retainGraph)
                {
                    node.ReleaseSaved();
                    if (!t.RequiresGrad) t.GradFn = null;
                }
            }
            finally
            {
                g.Dispose();
            }
        }
        foreach (var left in grads.Values) left.Dispose();
    }

    private static void Accumulate(Tensor leaf, Tensor g)
    {
        if (leaf.Grad is null)
        {
            leaf.Grad = g.Clone();
            return;
        }
        if (!leaf.Grad.Shape.SequenceEqual(g.Shape))
            throw new InvalidOperationException($"existing gradient {leaf.Grad.Describe()} does not match {leaf.Describe()}");
        AddInPlace(leaf.Grad, g);
    }

    private static void AddInPlace(Tensor acc, Tensor g)
    {
        var a = acc.Span<float>();
        TensorPrimitives.Add(a, g.Span<float>(), a);
    }

    /// <summary>Tensors reachable from root through GradFn inputs, each after all tensors it depends on.</summary>
    private static List<Tensor> TopologicalOrder(Tensor root)
    {
        var order = new List<Tensor>();
        var visited = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(Tensor t, int next)>();
        stack.Push((root, 0));
        visited.Add(root);
        while (stack.Count > 0)
        {
            var (t, next) = stack.Pop();
            var inputs = t.GradFn?.Inputs;
            if (inputs is not null && next < inputs.Length)
            {
                stack.Push((t, next + 1));
                var child = inputs[next];
                if (child.TracksGrad && visited.Add(child)) stack.Push((child, 0));
                continue;
            }
            order.Add(t); // post-order: dependencies first
        }
        return order;
    }
}
