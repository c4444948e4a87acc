using MedVL.Tensors;
using MedVL.Formats;
using MedVL.Models.Config;

namespace MedVL.Models.Blocks;

/// <summary>Where a model's weights live while it runs.</summary>
public enum WeightPlacement
{
    /// <summary>Views over the copy-on-write file mapping: nothing copied, pages shared with the page cache (default).</summary>
    Mapped,
    /// <summary>Copied at load into anonymous transparent-huge-page memory (llama.cpp's --no-mmap): slower to load and
    /// private memory, but decode streams weights markedly faster (see <see cref="HugePageArena"/>).</summary>
    HugePages,
}

/// <summary>
/// The tensors of one checkpoint folder (single file or sharded index), handed out as zero-copy views over the file
/// mapping (<see cref="TensorEntry.ToTensor"/>). The model keeps every tensor it took and disposes them, then the
/// mapping, when it is disposed. Names are checked against <see cref="WeightTable"/> before anything is taken, so a
/// bad checkpoint reports every missing / unexpected / mis-shaped tensor at once. With <see cref="WeightPlacement.HugePages"/>
/// the tensors are copies in a <see cref="HugePageArena"/> instead.
/// </summary>
public sealed class ModelWeights : IDisposable
{
    private readonly SafetensorsCollection _checkpoint;
    private readonly List<Tensor> _taken = new();
    private readonly HugePageArena? _arena;
    private bool _disposed;

    private ModelWeights(SafetensorsCollection checkpoint, string prefix, WeightPlacement placement)
    {
        _checkpoint = checkpoint;
        Prefix = prefix;
        Placement = placement;
        if (placement == WeightPlacement.HugePages) _arena = new HugePageArena();
    }

    public WeightPlacement Placement { get; }

    /// <summary>Prefix prepended to every name asked for (e.g. "vision_model." is part of the names, "" here).</summary>
    public string Prefix { get; }
    public string Source => _checkpoint.Path;

    /// <summary>Opens the folder's safetensors and checks them against <paramref name="expected"/>.</summary>
    public static ModelWeights Open(string dir, IReadOnlyList<TensorSpec> expected, IEnumerable<string>? skippedPrefixes = null,
        WeightPlacement placement = WeightPlacement.Mapped)
    {
        SafetensorsCollection st;
        try { st = SafetensorsCollection.Open(dir); }
        catch (FileNotFoundException e)
        {
            throw new ModelConfigException(dir, null, $"no safetensors checkpoint ({e.Message}); convert .bin checkpoints to safetensors first");
        }
        try
        {
            var listing = st.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value.Shape.Select(d => (long)d).ToArray(), StringComparer.Ordinal);
            WeightChecker.Ensure(expected, listing, st.Path, skippedPrefixes);
            return new ModelWeights(st, "", placement);
        }
        catch
        {
            st.Dispose();
            throw;
        }
    }

    public bool Contains(string name) => _checkpoint.TryGet(Prefix + name, out _);

    /// <summary>Every tensor handed out so far, named with its checkpoint name (what a trainer makes trainable and saves).</summary>
    public IReadOnlyList<Tensor> Taken => _taken;

    /// <summary>A zero-copy tensor for a required weight (its dtype kept: f32, bf16 or f16).</summary>
    public Tensor Get(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_checkpoint.TryGet(Prefix + name, out var entry))
            throw new ModelConfigException(_checkpoint.Path, name, "tensor is missing from the checkpoint");
        if (entry.DType is not (DType.F32 or DType.BF16 or DType.F16))
            throw new ModelConfigException(_checkpoint.Path, name, $"dtype {entry.DType} is not supported for weights; expected float32, bfloat16 or float16");
        var t = _arena is not null && entry.IsContiguous ? _arena.Copy(entry.Data, entry.DType, entry.Shape) : entry.ToTensor();
        t.Name = name;
        _taken.Add(t);
        return t;
    }

    public Tensor? GetOptional(string name) => Contains(name) ? Get(name) : null;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var t in _taken) t.Dispose();
        _taken.Clear();
        _arena?.Dispose();
        _checkpoint.Dispose();
    }
}
