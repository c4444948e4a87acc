using System.Buffers;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using MedVL.Tensors;

namespace MedVL.Formats;

/// <summary>
/// A copy-on-write memory mapping of a whole file. Owns the <see cref="MemoryMappedFile"/>, the view and the acquired
/// pointer; slices handed out as <see cref="ReadOnlyMemory{T}"/> point straight into the mapping (zero-copy) and
/// must not be used after <see cref="SharedMemoryOwner.Dispose"/> (<see cref="TensorEntry"/> checks
/// <see cref="SharedMemoryOwner.IsDisposed"/>). Tensors made from entries (<see cref="TensorEntry.ToTensor"/>) hold a
/// reference, so the mapping stays until the last of them is disposed. Copy-on-write: a write into such a tensor changes
/// private pages of this process, never the file, and never faults.
/// </summary>
internal sealed unsafe class MappedFile : SharedMemoryOwner
{
    private readonly MemoryMappedFile? _mmf;
    private readonly MemoryMappedViewAccessor? _view;
    private byte* _ptr;

    public string Path { get; }
    public long Length { get; }

    public MappedFile(string path)
    {
        Path = path;
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.None);
        Length = fs.Length;
        if (Length == 0) return; // a zero-length file cannot be mapped; callers see an empty span and report "truncated"
        _mmf = MemoryMappedFile.CreateFromFile(fs, null, 0, MemoryMappedFileAccess.CopyOnWrite, HandleInheritability.None, leaveOpen: false);
        _view = _mmf.CreateViewAccessor(0, 0, MemoryMappedFileAccess.CopyOnWrite);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _ptr = p + _view.PointerOffset;
    }

    public byte* Pointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(IsDisposed, this);
            return _ptr;
        }
    }

    /// <summary>Span over [offset, offset+length); caller has validated the range against <see cref="Length"/>.</summary>
    public ReadOnlySpan<byte> Span(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset > Length - length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"range [{offset}, {offset}+{length}) outside {Path} ({Length} bytes)");
        if (length == 0) return ReadOnlySpan<byte>.Empty;
        return new ReadOnlySpan<byte>(Pointer + offset, length);
    }

    public ReadOnlyMemory<byte> Memory(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset > Length - length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"range [{offset}, {offset}+{length}) outside {Path} ({Length} bytes)");
        if (length == 0) return ReadOnlyMemory<byte>.Empty;
        return new MappedSlice(this, offset, length).Memory;
    }

    protected override void ReleaseMemory()
    {
        if (_view != null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _mmf?.Dispose();
        _ptr = null;
    }

    /// <summary>A MemoryManager over a slice of the mapping, so mapped bytes can travel as ReadOnlyMemory.</summary>
    private sealed class MappedSlice(MappedFile owner, long offset, int length) : MemoryManager<byte>
    {
        public override Span<byte> GetSpan() => new(owner.Pointer + offset, length);
        public override MemoryHandle Pin(int elementIndex = 0) => new(owner.Pointer + offset + elementIndex);
        public override void Unpin() { }
        protected override void Dispose(bool disposing) { }
    }
}
