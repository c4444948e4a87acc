using System.Buffers;
using System.Numerics.Tensors;

namespace MedVL.Optim;

/// <summary>
/// The point between backward and the optimizer step where gradients may be transformed before clipping and the
/// update: in data-parallel training, the all-reduce that averages gradients across processes (what torch's
/// DistributedDataParallel does during backward). <see cref="Optimizer.SynchronizeGradients"/> calls it once per step.
/// </summary>
public interface IGradientHook
{
    /// <summary>
    /// Called with every parameter of the optimizer, in group order (the same order on every process). Gradients are
    /// float32 contiguous <see cref="Tensor.Grad"/> tensors, or null for parameters that received none.
    /// </summary>
    void OnGradientsReady(IReadOnlyList<Tensor> parameters, CancellationToken cancellationToken);
}

/// <summary>
/// The collective a data-parallel run needs: an in-place element-wise sum of one buffer across all processes
/// (MPI_Allreduce with MPI_SUM on MPI_FLOAT, NCCL/Gloo allreduce). Every process calls it with buffers of the same
/// length in the same order. An MPI binding (or a socket ring) implements this; nothing here depends on MPI.
/// </summary>
public interface IAllReduce
{
    int WorldSize { get; }
    int Rank { get; }
    void AllReduceSum(Span<float> buffer, CancellationToken cancellationToken);
}

/// <summary>
/// Averages gradients across processes: packs gradients into buckets of at most <see cref="BucketElements"/> floats
/// (fewer, larger messages, as DDP's gradient buckets), all-reduces each bucket by sum, divides by the world size and
/// unpacks. A parameter with no gradient on this process contributes zeros (and gets a zero gradient), so every
/// process sends identical bucket layouts even when some parameters were unused on some ranks.
/// </summary>
public sealed class DataParallelGradientHook : IGradientHook
{
    private readonly IAllReduce _comm;

    public DataParallelGradientHook(IAllReduce communicator, int bucketElements = 1 << 22)
    {
        _comm = communicator ?? throw new ArgumentNullException(nameof(communicator));
        if (bucketElements <= 0) throw new ArgumentOutOfRangeException(nameof(bucketElements), $"bucket size must be positive, got {bucketElements}");
        if (communicator.WorldSize <= 0) throw new ArgumentException($"world size must be positive, got {communicator.WorldSize}", nameof(communicator));
        BucketElements = bucketElements;
    }

    public int BucketElements { get; }

    public void OnGradientsReady(IReadOnlyList<Tensor> parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (_comm.WorldSize == 1) return;
        long total = 0;
        foreach (var p in parameters) total += p.Numel;
        int bucketLength = (int)Math.Min(BucketElements, Math.Max(1, total));
        float[] bucket = ArrayPool<float>.Shared.Rent(bucketLength);
        var pending = new List<(Tensor Grad, int Start, int BucketOffset, int Length)>();
        int used = 0;
        try
        {
            foreach (var p in parameters)
            {
                cancellationToken.ThrowIfCancellationRequested();
                p.Grad ??= Tensor.Zeros(p.ShapeArray());
                var g = p.Grad;
                if (g.DType != Tensors.DType.F32 || !g.IsContiguous || !g.Shape.SequenceEqual(p.Shape))
                    throw new InvalidOperationException($"data-parallel all-reduce: gradient {g.Describe()} of {p.Describe()} must be contiguous float32 of the parameter's shape");
                int length = checked((int)g.Numel);
                for (int start = 0; start < length;)
                {
                    int len = Math.Min(length - start, bucketLength - used);
                    g.Span<float>().Slice(start, len).CopyTo(bucket.AsSpan(used, len));
                    pending.Add((g, start, used, len));
                    used += len;
                    start += len;
                    if (used == bucketLength) Flush(bucket, ref used, pending, cancellationToken);
                }
            }
            Flush(bucket, ref used, pending, cancellationToken);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(bucket);
        }
    }

    private void Flush(float[] bucket, ref int used, List<(Tensor Grad, int Start, int BucketOffset, int Length)> pending, CancellationToken cancellationToken)
    {
        if (used == 0) return;
        var span = bucket.AsSpan(0, used);
        _comm.AllReduceSum(span, cancellationToken);
        // Sum across processes, then divide by the world size: the mean of the per-process gradients.
        TensorPrimitives.Divide(span, (float)_comm.WorldSize, span);
        foreach (var (g, start, offset, length) in pending) span.Slice(offset, length).CopyTo(g.Span<float>().Slice(start, length));
        pending.Clear();
        used = 0;
    }
}
