using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace MedVL.Tensors;

/// <summary>
/// An n-dimensional view over a <see cref="TensorStorage"/>: shape, element strides and an element offset, as
/// ggml's ne/nb and PyTorch's size/stride/storage_offset. Views (slice, transpose, permute, reshape of a contiguous
/// tensor, expand) share storage and copy nothing. Every Tensor holds one storage reference: dispose it when done.
/// Autograd: a tensor takes part in the graph when it is a leaf with <see cref="RequiresGrad"/> or the output of a
/// recorded op (<see cref="GradFn"/>). Nothing is recorded when no input takes part or under <see cref="GradMode.NoGrad"/>.
/// </summary>
public sealed unsafe class Tensor : IDisposable
{
    private readonly int[] _shape;
    private readonly long[] _strides;
    private int _disposed;

    internal Tensor(TensorStorage storage, int[] shape, long[] strides, long offset, bool addRef)
    {
        if (shape.Length != strides.Length) throw new ArgumentException("shape and strides differ in rank");
        if (addRef) storage.AddRef();
        Storage = storage;
        _shape = shape;
        _strides = strides;
        Offset = offset;
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape {FormatShape(shape)}");
            n = checked(n * d);
        }
        Numel = n;
        IsContiguous = ComputeContiguous(shape, strides);
    }

    public TensorStorage Storage { get; }
    public DType DType => Storage.DType;
    public ReadOnlySpan<int> Shape => _shape;
    public ReadOnlySpan<long> Strides => _strides;
    /// <summary>Offset of element [0,…,0] in storage elements.</summary>
    public long Offset { get; }
    public int Rank => _shape.Length;
    public long Numel { get; }
    /// <summary>Row-major contiguous (the strides of a fresh tensor of this shape; size-1 dims may have any stride).</summary>
    public bool IsContiguous { get; }
    public string? Name { get; set; }

    // ---- autograd ----
    /// <summary>Leaf flag: gradients are accumulated into <see cref="Grad"/> by backward.</summary>
    public bool RequiresGrad { get; set; }
    /// <summary>Accumulated gradient of a leaf (float32, contiguous, same shape).</summary>
    public Tensor? Grad { get; set; }
    /// <summary>The recorded op that produced this tensor, if any.</summary>
    public GradNode? GradFn { get; internal set; }
    /// <summary>True when gradients flow through this tensor.</summary>
    public bool TracksGrad => RequiresGrad || GradFn is not null;

    public int Size(int dim) => _shape[NormalizeDim(dim, Rank)];
    public long Stride(int dim) => _strides[NormalizeDim(dim, Rank)];
    public int[] ShapeArray() => (int[])_shape.Clone();

    // ---- creation ----
    public static Tensor Empty(DType dtype, params int[] shape) => Create(dtype, shape, zero: false);
    public static Tensor Empty(params int[] shape) => Create(DType.F32, shape, zero: false);
    public static Tensor Zeros(DType dtype, params int[] shape) => Create(dtype, shape, zero: true);
    public static Tensor Zeros(params int[] shape) => Create(DType.F32, shape, zero: true);

    public static Tensor Full(float value, params int[] shape)
    {
        var t = Empty(shape);
        t.Span<float>().Fill(value);
        return t;
    }

    public static Tensor FromArray<T>(ReadOnlySpan<T> data, params int[] shape) where T : unmanaged
    {
        var dtype = DTypeOf<T>();
        var t = Create(dtype, shape, zero: false);
        if (data.Length != t.Numel)
        {
            t.Dispose();
            throw new ArgumentException($"{data.Length} values do not fill shape {FormatShape(shape)} ({t.Numel} elements)");
        }
        data.CopyTo(t.Span<T>());
        return t;
    }

    public static Tensor FromArray<T>(T[] data, params int[] shape) where T : unmanaged => FromArray((ReadOnlySpan<T>)data, shape);

    public static Tensor Scalar(float value) => FromArray(new[] { value });

    /// <summary>Wrap existing storage (e.g. a mapped checkpoint tensor) as a contiguous tensor; takes a new reference.</summary>
    public static Tensor FromStorage(TensorStorage storage, int[] shape, long offset = 0)
    {
        var t = new Tensor(storage, (int[])shape.Clone(), ContiguousStrides(shape), offset, addRef: true);
        if (offset < 0 || offset + t.Numel > storage.ElementCount)
        {
            t.Dispose();
            throw new ArgumentException($"shape {FormatShape(shape)} at offset {offset} exceeds storage of {storage.ElementCount} elements");
        }
        return t;
    }

    private static Tensor Create(DType dtype, int[] shape, bool zero)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape {FormatShape(shape)}");
            n = checked(n * d);
        }
        var s = StoragePool.Shared.Rent(dtype, n, zero);
        return new Tensor(s, (int[])shape.Clone(), ContiguousStrides(shape), 0, addRef: false);
    }

    public static DType DTypeOf<T>() where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return DType.F32;
        if (typeof(T) == typeof(double)) return DType.F64;
        if (typeof(T) == typeof(int)) return DType.I32;
        if (typeof(T) == typeof(long)) return DType.I64;
        if (typeof(T) == typeof(Half)) return DType.F16;
        if (typeof(T) == typeof(byte)) return DType.U8;
        if (typeof(T) == typeof(sbyte)) return DType.I8;
        if (typeof(T) == typeof(short)) return DType.I16;
        if (typeof(T) == typeof(bool)) return DType.Bool;
        throw new NotSupportedException($"no DType for {typeof(T).Name}; use Empty(DType.BF16, ...) and Span<ushort>() for bf16");
    }

    // ---- element access ----
    /// <summary>The elements of a contiguous tensor. T's size must match the dtype (ushort for bf16/f16).</summary>
    public Span<T> Span<T>() where T : unmanaged
    {
        ThrowIfDisposed();
        if (!IsContiguous) throw new InvalidOperationException($"tensor {Describe()} is not contiguous; call Contiguous() first");
        if (Unsafe.SizeOf<T>() != DType.SizeOf())
            throw new InvalidOperationException($"cannot view {DType} elements as {typeof(T).Name}");
        return new Span<T>(Storage.Pointer + Offset * DType.SizeOf(), checked((int)Numel));
    }

    /// <summary>Address of element [0,…,0].</summary>
    public byte* DataPointer
    {
        get { ThrowIfDisposed(); return Storage.Pointer + Offset * DType.SizeOf(); }
    }

    /// <summary>Slow indexed read of any float-like dtype, for tests and debugging.</summary>
    public float this[params int[] index]
    {
        get
        {
            long e = ElementOffset(index);
            byte* p = Storage.Pointer + e * DType.SizeOf();
            return DType switch
            {
                DType.F32 => *(float*)p,
                DType.BF16 => FloatConvert.BF16ToF32(*(ushort*)p),
                DType.F16 => FloatConvert.F16ToF32(*(ushort*)p),
                DType.F64 => (float)*(double*)p,
                DType.I32 => *(int*)p,
                DType.I64 => *(long*)p,
                _ => throw new NotSupportedException($"indexer for {DType}"),
            };
        }
        set
        {
            long e = ElementOffset(index);
            byte* p = Storage.Pointer + e * DType.SizeOf();
            switch (DType)
            {
                case DType.F32: *(float*)p = value; break;
                case DType.BF16: *(ushort*)p = FloatConvert.F32ToBF16(value); break;
                case DType.F16: *(ushort*)p = FloatConvert.F32ToF16(value); break;
                case DType.F64: *(double*)p = value; break;
                default: throw new NotSupportedException($"indexer for {DType}");
            }
        }
    }

    private long ElementOffset(int[] index)
    {
        ThrowIfDisposed();
        if (index.Length != Rank) throw new ArgumentException($"index of rank {index.Length} for tensor of rank {Rank}");
        long e = Offset;
        for (int i = 0; i < Rank; i++)
        {
            if ((uint)index[i] >= (uint)_shape[i]) throw new IndexOutOfRangeException($"index {index[i]} out of range for dim {i} of size {_shape[i]}");
            e += index[i] * _strides[i];
        }
        return e;
    }

    // ---- views (no copy; autograd-aware) ----
    /// <summary>Elements [start, start+length) along <paramref name="dim"/>.</summary>
    public Tensor Slice(int dim, int start, int length)
    {
        dim = NormalizeDim(dim, Rank);
        if (start < 0 || length < 0 || start + length > _shape[dim])
            throw new ArgumentOutOfRangeException(nameof(start), $"slice [{start}, {start + length}) of dim {dim} with size {_shape[dim]}");
        var shape = ShapeArray();
        shape[dim] = length;
        return MakeView(shape, (long[])_strides.Clone(), Offset + start * _strides[dim], t => t.Slice(dim, start, length));
    }

    /// <summary>Index <paramref name="index"/> along <paramref name="dim"/>, removing that dimension.</summary>
    public Tensor Select(int dim, int index)
    {
        dim = NormalizeDim(dim, Rank);
        if ((uint)index >= (uint)_shape[dim]) throw new ArgumentOutOfRangeException(nameof(index), $"index {index} for dim {dim} of size {_shape[dim]}");
        var shape = new List<int>(_shape);
        var strides = new List<long>(_strides);
        shape.RemoveAt(dim);
        strides.RemoveAt(dim);
        return MakeView(shape.ToArray(), strides.ToArray(), Offset + index * _strides[dim], t => t.Select(dim, index));
    }

    public Tensor Transpose(int dim0, int dim1)
    {
        dim0 = NormalizeDim(dim0, Rank);
        dim1 = NormalizeDim(dim1, Rank);
        var shape = ShapeArray();
        var strides = (long[])_strides.Clone();
        (shape[dim0], shape[dim1]) = (shape[dim1], shape[dim0]);
        (strides[dim0], strides[dim1]) = (strides[dim1], strides[dim0]);
        return MakeView(shape, strides, Offset, t => t.Transpose(dim0, dim1));
    }

    public Tensor Permute(params int[] dims)
    {
        if (dims.Length != Rank) throw new ArgumentException($"permute needs {Rank} dims, got {dims.Length}");
        var seen = new bool[Rank];
        var shape = new int[Rank];
        var strides = new long[Rank];
        for (int i = 0; i < Rank; i++)
        {
            int d = NormalizeDim(dims[i], Rank);
            if (seen[d]) throw new ArgumentException($"dimension {d} repeated in permute");
            seen[d] = true;
            shape[i] = _shape[d];
            strides[i] = _strides[d];
        }
        var fixedDims = (int[])dims.Clone();
        return MakeView(shape, strides, Offset, t => t.Permute(fixedDims));
    }

    /// <summary>Reshape without copying; the tensor must be contiguous. One dimension may be -1.</summary>
    public Tensor Reshape(params int[] shape)
    {
        var resolved = ResolveShape(shape, Numel);
        if (!IsContiguous)
            throw new InvalidOperationException($"reshape of non-contiguous tensor {Describe()} to {FormatShape(resolved)} needs a copy: call Contiguous() first");
        return MakeView(resolved, ContiguousStrides(resolved), Offset, t => t.Reshape(resolved));
    }

    public Tensor Unsqueeze(int dim)
    {
        dim = NormalizeDim(dim, Rank + 1);
        var shape = new List<int>(_shape);
        var strides = new List<long>(_strides);
        shape.Insert(dim, 1);
        strides.Insert(dim, dim < Rank ? _strides[dim] * _shape[dim] : 1);
        return MakeView(shape.ToArray(), strides.ToArray(), Offset, t => t.Unsqueeze(dim));
    }

    public Tensor Squeeze(int dim)
    {
        dim = NormalizeDim(dim, Rank);
        if (_shape[dim] != 1) throw new ArgumentException($"cannot squeeze dim {dim} of size {_shape[dim]}");
        return Select(dim, 0);
    }

    /// <summary>Broadcast size-1 dimensions to <paramref name="shape"/> with stride 0 (no copy), as torch.expand.</summary>
    public Tensor Expand(params int[] shape)
    {
        if (shape.Length < Rank) throw new ArgumentException($"expand to {FormatShape(shape)} has fewer dims than {Describe()}");
        int lead = shape.Length - Rank;
        var strides = new long[shape.Length];
        var newShape = (int[])shape.Clone();
        for (int i = 0; i < shape.Length; i++)
        {
            if (i < lead) { strides[i] = 0; continue; }
            int own = _shape[i - lead];
            if (newShape[i] == -1) newShape[i] = own;
            if (own == newShape[i]) strides[i] = _strides[i - lead];
            else if (own == 1) strides[i] = 0;
            else throw new ArgumentException($"cannot expand {Describe()} to {FormatShape(shape)}");
        }
        return MakeView(newShape, strides, Offset, t => t.Expand(newShape));
    }

    /// <summary>A view that shares storage but is cut from the autograd graph.</summary>
    public Tensor Detach() => new(Storage, ShapeArray(), (long[])_strides.Clone(), Offset, addRef: true);

    private Tensor MakeView(int[] shape, long[] strides, long offset, Func<Tensor, Tensor> reapply)
    {
        ThrowIfDisposed();
        var v = new Tensor(Storage, shape, strides, offset, addRef: true);
        if (TracksGrad && GradMode.IsEnabled) v.GradFn = new ViewBackward(this, reapply);
        return v;
    }

    // ---- copies ----
    /// <summary>This tensor if contiguous (a new reference), else a contiguous copy.</summary>
    public Tensor Contiguous()
    {
        if (IsContiguous) return MakeView(ShapeArray(), (long[])_strides.Clone(), Offset, t => t.Detach());
        var c = Empty(DType, _shape);
        StridedCopy.Copy(this, c);
        if (TracksGrad && GradMode.IsEnabled) c.GradFn = new ViewBackward(this, t => t.Detach());
        return c;
    }

    /// <summary>A contiguous copy with its own storage (no graph link).</summary>
    public Tensor Clone()
    {
        var c = Empty(DType, _shape);
        StridedCopy.Copy(this, c);
        return c;
    }

    /// <summary>A contiguous copy converted to <paramref name="dtype"/> (float types round as PyTorch: nearest even).</summary>
    public Tensor To(DType dtype)
    {
        if (dtype == DType) return Clone();
        using var src = IsContiguous ? Detach() : Clone();
        var dst = Empty(dtype, _shape);
        StridedCopy.Convert(src, dst);
        return dst;
    }

    /// <summary>Copy the values out as float32 (any float or integer dtype, any strides).</summary>
    public float[] ToFloatArray()
    {
        using var f = DType == DType.F32 ? (IsContiguous ? Detach() : Clone()) : To(DType.F32);
        return f.Span<float>().ToArray();
    }

    public T[] ToArray<T>() where T : unmanaged
    {
        using var c = IsContiguous ? Detach() : Clone();
        return c.Span<T>().ToArray();
    }

    /// <summary>Copy <paramref name="src"/>'s values into this tensor (same shape; dtypes may differ; any strides).</summary>
    public void CopyFrom(Tensor src)
    {
        if (!src.Shape.SequenceEqual(Shape)) throw new ArgumentException($"copy from {src.Describe()} into {Describe()}: shapes differ");
        if (Storage.IsReadOnly) throw new InvalidOperationException($"tensor {Describe()} is read-only (mapped from a file)");
        if (src.DType == DType) StridedCopy.Copy(src, this);
        else
        {
            using var tmp = src.To(DType);
            StridedCopy.Copy(tmp, this);
        }
    }

    // ---- helpers ----
    public static long[] ContiguousStrides(ReadOnlySpan<int> shape)
    {
        var s = new long[shape.Length];
        long acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            s[i] = acc;
            acc *= shape[i];
        }
        return s;
    }

    private static bool ComputeContiguous(int[] shape, long[] strides)
    {
        long acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            if (shape[i] == 1) continue;
            if (strides[i] != acc) return false;
            acc *= shape[i];
        }
        return true;
    }

    public static int NormalizeDim(int dim, int rank)
    {
        int d = dim < 0 ? dim + rank : dim;
        if ((uint)d >= (uint)Math.Max(rank, 1) && !(rank == 0 && d == 0))
            throw new ArgumentOutOfRangeException(nameof(dim), $"dimension {dim} out of range for rank {rank}");
        return d;
    }

    private static int[] ResolveShape(int[] shape, long numel)
    {
        var r = (int[])shape.Clone();
        int infer = -1;
        long known = 1;
        for (int i = 0; i < r.Length; i++)
        {
            if (r[i] == -1)
            {
                if (infer >= 0) throw new ArgumentException("only one dimension can be -1");
                infer = i;
            }
            else known = checked(known * r[i]);
        }
        if (infer >= 0)
        {
            if (known == 0 || numel % known != 0) throw new ArgumentException($"cannot reshape {numel} elements to {FormatShape(shape)}");
            r[infer] = checked((int)(numel / known));
        }
        else if (known != numel) throw new ArgumentException($"cannot reshape {numel} elements to {FormatShape(shape)}");
        return r;
    }

    public static string FormatShape(ReadOnlySpan<int> shape)
    {
        var sb = new StringBuilder("[");
        for (int i = 0; i < shape.Length; i++)
        {
            if (i > 0) sb.Append(", ");
            sb.Append(shape[i]);
        }
        return sb.Append(']').ToString();
    }

    public string Describe() => $"{(Name is null ? "" : Name + " ")}{DType}{FormatShape(_shape)}";
    public override string ToString() => Describe();

    private void ThrowIfDisposed()
    {
        if (Volatile.Read(ref _disposed) != 0) throw new ObjectDisposedException($"Tensor {Describe()}");
    }

    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        Storage.Release();
    }
}
