using MedVL.Formats;
using MedVL.Tensors;

namespace MedVL.Optim;

/// <summary>
/// Optimizer + scheduler state in one safetensors file (keys "optimizer.*" and "scheduler.*"), so training resumes
/// bit-exactly: the values are stored in their own dtypes (f32 buffers, i64 step counts, f64 hyperparameters).
/// </summary>
public static class OptimizerCheckpoint
{
    private const string OptimizerPrefix = "optimizer.";
    private const string SchedulerPrefix = "scheduler.";

    public static void Save(string path, Optimizer optimizer, LambdaLR? scheduler = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        using var opt = optimizer.StateDict();
        using var sched = scheduler?.StateDict();
        var tensors = new List<SafetensorsTensor>();
        foreach (var (k, t) in opt) tensors.Add(ToEntry(OptimizerPrefix + k, t));
        if (sched is not null) foreach (var (k, t) in sched) tensors.Add(ToEntry(SchedulerPrefix + k, t));
        SafetensorsWriter.Write(path, tensors, new Dictionary<string, string> { ["format"] = "medvl-optimizer", ["optimizer"] = optimizer.GetType().Name }, cancellationToken);
    }

    /// <summary>Load a file written by <see cref="Save"/> into <paramref name="optimizer"/> (and <paramref name="scheduler"/>).</summary>
    public static void Load(string path, Optimizer optimizer, LambdaLR? scheduler = null)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        using var file = SafetensorsFile.Open(path);
        using var opt = new TensorStateDict();
        using var sched = new TensorStateDict();
        foreach (var name in file.Names)
        {
            var e = file[name];
            if (name.StartsWith(OptimizerPrefix, StringComparison.Ordinal)) opt.Add(name[OptimizerPrefix.Length..], ToTensor(e));
            else if (name.StartsWith(SchedulerPrefix, StringComparison.Ordinal)) sched.Add(name[SchedulerPrefix.Length..], ToTensor(e));
            else throw new InvalidDataException($"{path}: tensor '{name}' is neither optimizer.* nor scheduler.* state");
        }
        optimizer.LoadStateDict(opt);
        if (scheduler is not null)
        {
            if (sched.Count == 0) throw new InvalidDataException($"{path}: no scheduler.* state, but a scheduler was given to restore");
            scheduler.LoadStateDict(sched);
        }
    }

    private static unsafe SafetensorsTensor ToEntry(string name, Tensor t)
    {
        var bytes = new ReadOnlySpan<byte>(t.DataPointer, checked((int)(t.Numel * t.DType.SizeOf()))).ToArray();
        return new SafetensorsTensor(name, t.DType, t.ShapeArray(), bytes);
    }

    private static unsafe Tensor ToTensor(TensorEntry e)
    {
        var t = Tensor.Empty(e.DType, e.Shape);
        var dst = new Span<byte>(t.DataPointer, checked((int)e.ByteLength));
        if (e.IsContiguous) e.Data.CopyTo(dst);
        else e.ToContiguousBytes().CopyTo(dst);
        return t;
    }
}
