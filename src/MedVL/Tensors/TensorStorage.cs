using System.Collections.Concurrent;
using System.Numerics;
using System.Runtime.InteropServices;

namespace MedVL.Tensors;

/// <summary>
/// A block of tensor memory at a stable address: native memory from <see cref="StoragePool"/> or memory owned by
/// someone else (a memory-mapped checkpoint). Reference-counted: every <see cref="Tensor"/> view holds one reference,
/// and the memory is returned when the last one is disposed.
/// </summary>
public abstract unsafe class TensorStorage
{
    private int _refs = 1;

    protected TensorStorage(DType dtype, long elementCount)
    {
        if (elementCount < 0) throw new ArgumentOutOfRangeException(nameof(elementCount));
        DType = dtype;
        ElementCount = elementCount;
    }

    public DType DType { get; }
    public long ElementCount { get; }
    public long ByteLength => ElementCount * DType.SizeOf();

    /// <summary>Address of element 0. Valid while at least one reference is held.</summary>
    public abstract byte* Pointer { get; }

    public bool IsReadOnly { get; protected init; }

    internal void AddRef()
    {
        if (Interlocked.Increment(ref _refs) <= 1)
            throw new ObjectDisposedException(GetType().Name, "storage was already released");
    }

    internal void Release()
    {
        int r = Interlocked.Decrement(ref _refs);
        if (r == 0) Free();
        else if (r < 0) throw new ObjectDisposedException(GetType().Name, "storage released twice");
    }

    internal bool IsAlive => Volatile.Read(ref _refs) > 0;

    protected abstract void Free();
}

/// <summary>64-byte aligned native memory (one cache line, one Vector512), recycled through <see cref="StoragePool"/>.</summary>
public sealed unsafe class NativeStorage : TensorStorage
{
    private byte* _ptr;
    private readonly long _capacity;

    internal NativeStorage(DType dtype, long elementCount, byte* ptr, long capacity) : base(dtype, elementCount)
    {
        _ptr = ptr;
        _capacity = capacity;
    }

    public override byte* Pointer => _ptr;

    protected override void Free()
    {
        var p = _ptr;
        _ptr = null;
        StoragePool.Shared.Return(p, _capacity);
    }
}

/// <summary>
/// Memory owned elsewhere (e.g. a read-only memory-mapped safetensors file). The owner is kept alive by reference
/// counting through <see cref="SharedMemoryOwner"/>, so disposing the checkpoint while a weight is in use cannot
/// unmap memory under it.
/// </summary>
public sealed unsafe class ExternalStorage : TensorStorage
{
    private readonly SharedMemoryOwner _owner;
    private readonly byte* _ptr;

    public ExternalStorage(SharedMemoryOwner owner, byte* ptr, DType dtype, long elementCount, bool readOnly = true)
        : base(dtype, elementCount)
    {
        ArgumentNullException.ThrowIfNull(owner);
        owner.AddRef();
        _owner = owner;
        _ptr = ptr;
        IsReadOnly = readOnly;
    }

    public override byte* Pointer => _ptr;

    protected override void Free() => _owner.Release();
}

/// <summary>
/// Reference-counted owner of a memory region (a file mapping). The creator holds the first reference and releases it
/// with Dispose; every tensor that points into the region holds one more.
/// </summary>
public abstract class SharedMemoryOwner : IDisposable
{
    private int _refs = 1;
    private int _disposed;

    /// <summary>True once the creator has disposed it (the memory may live on while tensors still reference it).</summary>
    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    internal void AddRef()
    {
        if (Interlocked.Increment(ref _refs) <= 1)
            throw new ObjectDisposedException(GetType().Name);
    }

    internal void Release()
    {
        if (Interlocked.Decrement(ref _refs) == 0) ReleaseMemory();
    }

    /// <summary>Unmap / free. Called once, when the owner and every tensor using it are disposed.</summary>
    protected abstract void ReleaseMemory();

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0) Release();
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// Recycles aligned native blocks by power-of-two size class, so repeated forward passes allocate nothing new
/// (the role of ggml-alloc's reuse of intermediate memory). Like ArrayPool.Shared it is a cache, not semantic state;
/// it retains at most <see cref="MaxRetainedBytes"/>.
/// </summary>
public sealed unsafe class StoragePool
{
    public static StoragePool Shared { get; } = new(maxRetainedBytes: 2L << 30);

    private const int Alignment = 64;
    private const int MinClassLog2 = 6; // 64 bytes
    private readonly ConcurrentBag<nint>[] _free = new ConcurrentBag<nint>[64];
    private long _retained;

    public StoragePool(long maxRetainedBytes)
    {
        MaxRetainedBytes = maxRetainedBytes;
        for (int i = 0; i < _free.Length; i++) _free[i] = new ConcurrentBag<nint>();
    }

    public long MaxRetainedBytes { get; }
    public long RetainedBytes => Interlocked.Read(ref _retained);

    public NativeStorage Rent(DType dtype, long elementCount, bool zero)
    {
        long bytes = checked(elementCount * dtype.SizeOf());
        int cls = SizeClass(bytes);
        long capacity = 1L << cls;
        byte* p = null;
        if (_free[cls].TryTake(out nint q))
        {
            Interlocked.Add(ref _retained, -capacity);
            p = (byte*)q;
        }
        else
        {
            p = (byte*)NativeMemory.AlignedAlloc((nuint)capacity, Alignment);
        }
        if (zero) NativeMemory.Clear(p, (nuint)bytes);
        return new NativeStorage(dtype, elementCount, p, capacity);
    }

    internal void Return(byte* p, long capacity)
    {
        if (p == null) return;
        if (Interlocked.Add(ref _retained, capacity) > MaxRetainedBytes)
        {
            Interlocked.Add(ref _retained, -capacity);
            NativeMemory.AlignedFree(p);
            return;
        }
        _free[BitOperations.Log2((ulong)capacity)].Add((nint)p);
    }

    private static int SizeClass(long bytes)
    {
        if (bytes <= 1L << MinClassLog2) return MinClassLog2;
        return 64 - BitOperations.LeadingZeroCount((ulong)(bytes - 1));
    }
}
