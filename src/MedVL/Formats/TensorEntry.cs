using System.Buffers.Binary;
using System.Runtime.InteropServices;
using MedVL.Tensors;

namespace MedVL.Formats;

/// <summary>
/// One tensor as stored in a checkpoint: dtype, shape, element strides and offset into a storage whose bytes are
/// (where possible) a zero-copy slice of a memory-mapped file. Neutral on purpose: it does not depend on MedVL's
/// Tensor type; converters (<see cref="ToFloat32"/>, <see cref="CopyToFloat32"/>) honour strides, so a transposed
/// view saved by torch comes back in logical C order.
/// </summary>
public sealed class TensorEntry
{
    /// <summary>Hard cap on rank, so stride walks and shape products are bounded for hostile inputs.</summary>
    public const int MaxRank = 64;

    private readonly ReadOnlyMemory<byte> _storage;
    private readonly MappedFile? _owner;

    public string Name { get; }
    public DType DType { get; }
    public int[] Shape { get; }
    /// <summary>Strides in elements (not bytes), as torch reports them.</summary>
    public long[] Strides { get; }
    /// <summary>Offset of element [0,...,0] in the storage, in elements.</summary>
    public long StorageOffset { get; }
    public long ElementCount { get; }
    public bool IsContiguous { get; }
    /// <summary>The file it came from (for error messages and provenance).</summary>
    public string SourcePath { get; }
    /// <summary>torch storage key (zip record name / legacy root key); null for safetensors.</summary>
    public string? StorageKey { get; }
    /// <summary>True when the checkpoint stored an nn.Parameter (torch._utils._rebuild_parameter).</summary>
    public bool IsParameter { get; internal set; }
    public bool RequiresGrad { get; internal set; }
    /// <summary>True when the bytes are a view into a memory mapping rather than a managed copy.</summary>
    public bool IsMemoryMapped => _owner != null;

    public int Rank => Shape.Length;
    public long ByteLength => ElementCount * DType.SizeOf();

    internal TensorEntry(string name, DType dtype, int[] shape, long[] strides, long storageOffset,
        ReadOnlyMemory<byte> storage, MappedFile? owner, string sourcePath, string? storageKey)
    {
        Name = name; DType = dtype; Shape = shape; Strides = strides; StorageOffset = storageOffset;
        _storage = storage; _owner = owner; SourcePath = sourcePath; StorageKey = storageKey;
        if (shape.Length != strides.Length)
            throw new InvalidCheckpointException(sourcePath, $"tensor '{name}': shape has {shape.Length} dims but strides has {strides.Length}");
        if (shape.Length > MaxRank)
            throw new InvalidCheckpointException(sourcePath, $"tensor '{name}': rank {shape.Length} exceeds the limit of {MaxRank}");
        if (storageOffset < 0)
            throw new InvalidCheckpointException(sourcePath, $"tensor '{name}': negative storage offset {storageOffset}");
        int es = dtype.SizeOf();
        if (storage.Length % es != 0)
            throw new InvalidCheckpointException(sourcePath, $"tensor '{name}': storage of {storage.Length} bytes is not a multiple of the {dtype} element size {es}");
        long storageElems = storage.Length / es;
        long count = 1, maxIndex = storageOffset;
        try
        {
            checked
            {
                for (int i = 0; i < shape.Length; i++)
                {
                    if (shape[i] < 0) throw new InvalidCheckpointException(sourcePath, $"tensor '{name}': negative dimension {shape[i]} in shape [{string.Join(", ", shape)}]");
                    if (strides[i] < 0) throw new InvalidCheckpointException(sourcePath, $"tensor '{name}': negative stride {strides[i]} (not supported)");
                    count *= shape[i];
                }
                if (count > 0)
                    for (int i = 0; i < shape.Length; i++) maxIndex += (shape[i] - 1L) * strides[i];
            }
        }
        catch (OverflowException)
        {
            throw new InvalidCheckpointException(sourcePath, $"tensor '{name}': shape [{string.Join(", ", shape)}] / strides overflow 64-bit element counts");
        }
        if (count > 0 && maxIndex >= storageElems)
            throw new InvalidCheckpointException(sourcePath,
                $"tensor '{name}': shape [{string.Join(", ", shape)}], strides [{string.Join(", ", strides)}], offset {storageOffset} reach element {maxIndex} but the storage holds only {storageElems} {dtype} elements");
        ElementCount = count;
        IsContiguous = ComputeContiguous(shape, strides);
    }

    /// <summary>The same view under another name (a tensor reachable by two paths of a checkpoint).</summary>
    internal TensorEntry WithName(string name) =>
        new(name, DType, Shape, Strides, StorageOffset, _storage, _owner, SourcePath, StorageKey) { IsParameter = IsParameter, RequiresGrad = RequiresGrad };

    /// <summary>C-order (row-major) strides for a shape.</summary>
    public static long[] ContiguousStrides(ReadOnlySpan<int> shape)
    {
        var s = new long[shape.Length];
        long acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { s[i] = acc; acc *= Math.Max(shape[i], 1); }
        return s;
    }

    private static bool ComputeContiguous(int[] shape, long[] strides)
    {
        long expected = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            if (shape[i] == 0) return true;
            if (shape[i] != 1 && strides[i] != expected) return false;
            expected *= shape[i];
        }
        return true;
    }

    private void ThrowIfDisposed()
    {
        if (_owner is { IsDisposed: true })
            throw new ObjectDisposedException(Name, $"tensor '{Name}' belongs to {SourcePath}, which has been disposed");
    }

    /// <summary>The whole underlying storage (may be shared with other tensors).</summary>
    public ReadOnlySpan<byte> StorageBytes { get { ThrowIfDisposed(); return _storage.Span; } }

    /// <summary>The tensor's own bytes in C order (zero-copy). Only for contiguous tensors; use <see cref="ToContiguousBytes"/> otherwise.</summary>
    public ReadOnlySpan<byte> Data => DataMemory.Span;

    public ReadOnlyMemory<byte> DataMemory
    {
        get
        {
            ThrowIfDisposed();
            if (!IsContiguous)
                throw new InvalidOperationException($"tensor '{Name}' in {SourcePath} is not contiguous (strides [{string.Join(", ", Strides)}]); use ToContiguousBytes/ToFloat32");
            if (ElementCount == 0) return ReadOnlyMemory<byte>.Empty;
            long len = ByteLength;
            if (len > int.MaxValue)
                throw new NotSupportedException($"tensor '{Name}' in {SourcePath} has {len} bytes; spans are limited to 2 GiB");
            return _storage.Slice((int)(StorageOffset * DType.SizeOf()), (int)len);
        }
    }

    /// <summary>
    /// This entry as a <see cref="Tensor"/>: zero-copy over the file mapping for a contiguous mapped entry (the tensor
    /// keeps the mapping alive until it is disposed, even after the checkpoint is), otherwise a contiguous copy in
    /// pooled memory. The dtype is kept (bf16 weights stay bf16).
    /// </summary>
    public unsafe Tensor ToTensor()
    {
        ThrowIfDisposed();
        if (_owner is not null && IsContiguous && ElementCount > 0)
        {
            using var pin = DataMemory.Pin();
            var storage = new ExternalStorage(_owner, (byte*)pin.Pointer, DType, ElementCount, readOnly: false);
            try { return Tensor.FromStorage(storage, Shape); }
            finally { storage.Release(); } // the tensor holds its own reference
        }
        var t = Tensor.Empty(DType, Shape);
        var bytes = ToContiguousBytes();
        bytes.CopyTo(new Span<byte>(t.DataPointer, bytes.Length));
        return t;
    }

    /// <summary>Bytes of the tensor in logical C order (copies; gathers non-contiguous views).</summary>
    public byte[] ToContiguousBytes()
    {
        ThrowIfDisposed();
        long len = ByteLength;
        if (len > Array.MaxLength) throw new NotSupportedException($"tensor '{Name}' in {SourcePath} is too large ({len} bytes) for one array");
        var dst = new byte[len];
        if (IsContiguous) { Data.CopyTo(dst); return dst; }
        int es = DType.SizeOf();
        var src = _storage.Span;
        long d = 0;
        foreach (var (start, n, stride) in Runs())
            for (int j = 0; j < n; j++, d += es)
                src.Slice((int)((start + j * stride) * es), es).CopyTo(dst.AsSpan((int)d, es));
        return dst;
    }

    public float[] ToFloat32()
    {
        if (ElementCount > Array.MaxLength) throw new NotSupportedException($"tensor '{Name}' in {SourcePath} has too many elements ({ElementCount}) for one array");
        var dst = new float[ElementCount];
        CopyToFloat32(dst);
        return dst;
    }

    /// <summary>Converts into <paramref name="destination"/> (length ≥ ElementCount) in logical C order. Every dtype except none is supported.</summary>
    public void CopyToFloat32(Span<float> destination)
    {
        ThrowIfDisposed();
        if (destination.Length < ElementCount)
            throw new ArgumentException($"destination has {destination.Length} elements, tensor '{Name}' needs {ElementCount}", nameof(destination));
        if (ElementCount == 0) return;
        var src = _storage.Span;
        int es = DType.SizeOf();
        if (IsContiguous)
        {
            ElementConvert.ToFloat32(DType, src.Slice((int)(StorageOffset * es), (int)ByteLength), destination[..(int)ElementCount]);
            return;
        }
        int d = 0;
        foreach (var (start, n, stride) in Runs())
        {
            if (stride == 1) ElementConvert.ToFloat32(DType, src.Slice((int)(start * es), n * es), destination.Slice(d, n));
            else
                for (int j = 0; j < n; j++)
                    destination[d + j] = ElementConvert.ToFloat32(DType, src.Slice((int)((start + j * stride) * es), es));
            d += n;
        }
    }

    /// <summary>Integer (and bool) tensors as int64 in logical C order. Float tensors are rejected (no silent truncation).</summary>
    public long[] ToInt64()
    {
        ThrowIfDisposed();
        if (DType.IsFloatingPoint())
            throw new InvalidOperationException($"tensor '{Name}' in {SourcePath} is {DType}; ToInt64 needs an integer or bool dtype");
        var bytes = ToContiguousBytes();
        return ElementConvert.ToInt64(DType, bytes, ElementCount);
    }

    /// <summary>
    /// Iterates the tensor as runs along the last dimension: (start element, run length, element stride). Bounded by
    /// ElementCount; the odometer is iterative (no recursion), and rank is capped by <see cref="MaxRank"/>.
    /// </summary>
    private IEnumerable<(long Start, int Count, long Stride)> Runs()
    {
        if (ElementCount == 0) yield break;
        int rank = Shape.Length;
        if (rank == 0) { yield return (StorageOffset, 1, 1); yield break; }
        int last = rank - 1;
        var idx = new int[rank];
        while (true)
        {
            long start = StorageOffset;
            for (int i = 0; i < last; i++) start += idx[i] * Strides[i];
            yield return (start, Shape[last], Strides[last]);
            int k = last - 1;
            while (k >= 0)
            {
                if (++idx[k] < Shape[k]) break;
                idx[k] = 0; k--;
            }
            if (k < 0) yield break;
        }
    }

    public override string ToString() => $"{Name}: {DType}[{string.Join(", ", Shape)}]" + (IsContiguous ? "" : $" strides [{string.Join(", ", Strides)}]");
}

/// <summary>Scalar reference conversions of every stored dtype to float32 / int64 (little-endian storage).</summary>
public static class ElementConvert
{
    public static float ToFloat32(DType t, ReadOnlySpan<byte> e) => t switch
    {
        DType.F32 => BinaryPrimitives.ReadSingleLittleEndian(e),
        DType.F16 => FloatConvert.F16ToF32(BinaryPrimitives.ReadUInt16LittleEndian(e)),
        DType.BF16 => FloatConvert.BF16ToF32(BinaryPrimitives.ReadUInt16LittleEndian(e)),
        DType.F64 => (float)BinaryPrimitives.ReadDoubleLittleEndian(e),
        DType.I8 => (sbyte)e[0],
        DType.U8 => e[0],
        DType.Bool => e[0] != 0 ? 1f : 0f,
        DType.I16 => BinaryPrimitives.ReadInt16LittleEndian(e),
        DType.U16 => BinaryPrimitives.ReadUInt16LittleEndian(e),
        DType.I32 => BinaryPrimitives.ReadInt32LittleEndian(e),
        DType.U32 => BinaryPrimitives.ReadUInt32LittleEndian(e),
        DType.I64 => BinaryPrimitives.ReadInt64LittleEndian(e),
        DType.U64 => BinaryPrimitives.ReadUInt64LittleEndian(e),
        DType.F8_E4M3 => F8E4M3ToF32(e[0]),
        DType.F8_E5M2 => FloatConvert.F16ToF32((ushort)(e[0] << 8)), // E5M2 is the high byte of an IEEE half
        _ => throw new NotSupportedException($"dtype {t} cannot be converted to float32"),
    };

    /// <summary>OCP FP8 E4M3FN (torch.float8_e4m3fn): bias 7, no infinities, S.1111.111 is NaN.</summary>
    public static float F8E4M3ToF32(byte b)
    {
        int sign = b >> 7, exp = (b >> 3) & 0xF, man = b & 7;
        float v;
        if (exp == 0xF && man == 7) v = float.NaN;
        else if (exp == 0) v = man / 8f * (1f / 64f); // subnormal: m/8 * 2^-6
        else v = (1f + man / 8f) * MathF.ScaleB(1f, exp - 7);
        return sign != 0 ? -v : v;
    }

    /// <summary>Bulk conversion of contiguous little-endian elements (vectorised for F32/F16/BF16).</summary>
    public static void ToFloat32(DType t, ReadOnlySpan<byte> src, Span<float> dst)
    {
        int es = t.SizeOf();
        int n = src.Length / es;
        switch (t)
        {
            case DType.F32: MemoryMarshal.Cast<byte, float>(src).CopyTo(dst); return; // unaligned-safe on x86/ARM64
            case DType.BF16: FloatConvert.BF16ToF32(MemoryMarshal.Cast<byte, ushort>(src), dst); return;
            case DType.F16: FloatConvert.F16ToF32(MemoryMarshal.Cast<byte, ushort>(src), dst); return;
            default:
                for (int i = 0; i < n; i++) dst[i] = ToFloat32(t, src.Slice(i * es, es));
                return;
        }
    }

    public static long ToInt64(DType t, ReadOnlySpan<byte> e) => t switch
    {
        DType.I8 => (sbyte)e[0],
        DType.U8 => e[0],
        DType.Bool => e[0] != 0 ? 1 : 0,
        DType.I16 => BinaryPrimitives.ReadInt16LittleEndian(e),
        DType.U16 => BinaryPrimitives.ReadUInt16LittleEndian(e),
        DType.I32 => BinaryPrimitives.ReadInt32LittleEndian(e),
        DType.U32 => BinaryPrimitives.ReadUInt32LittleEndian(e),
        DType.I64 => BinaryPrimitives.ReadInt64LittleEndian(e),
        DType.U64 => checked((long)BinaryPrimitives.ReadUInt64LittleEndian(e)),
        _ => throw new NotSupportedException($"dtype {t} cannot be converted to int64"),
    };

    public static long[] ToInt64(DType t, ReadOnlySpan<byte> src, long count)
    {
        int es = t.SizeOf();
        var r = new long[count];
        for (int i = 0; i < r.Length; i++) r[i] = ToInt64(t, src.Slice(i * es, es));
        return r;
    }
}
