using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using MedVL.Tensors;

namespace MedVL.Formats;

/// <summary>One tensor to write: C-order little-endian bytes plus dtype and shape.</summary>
public readonly record struct SafetensorsTensor(string Name, DType DType, int[] Shape, ReadOnlyMemory<byte> Data)
{
    /// <summary>Wraps a float array without copying (it must not change until the write returns).</summary>
    public static SafetensorsTensor FromFloat32(string name, float[] data, int[] shape) =>
        new(name, DType.F32, shape, new ByteView<float>(data).Memory);

    /// <summary>Raw element storage (e.g. bf16 bits as ushort) of any dtype, without copying.</summary>
    public static SafetensorsTensor FromArray<T>(string name, DType dtype, T[] data, int[] shape) where T : unmanaged =>
        new(name, dtype, shape, new ByteView<T>(data).Memory);

    /// <summary>
    /// A checkpoint entry to write: contiguous tensors are passed through without copying (their source must stay open
    /// until the write returns), non-contiguous views are gathered into C order.
    /// </summary>
    public static SafetensorsTensor From(TensorEntry e) =>
        new(e.Name, e.DType, (int[])e.Shape.Clone(), e.IsContiguous ? e.DataMemory : e.ToContiguousBytes());
}

/// <summary>Presents a T[] as bytes (little-endian host) so arrays travel as ReadOnlyMemory&lt;byte&gt; without a copy.</summary>
internal sealed class ByteView<T>(T[] array) : System.Buffers.MemoryManager<byte> where T : unmanaged
{
    public override Span<byte> GetSpan() => MemoryMarshal.AsBytes(array.AsSpan());
    public override unsafe System.Buffers.MemoryHandle Pin(int elementIndex = 0)
    {
        var h = System.Runtime.InteropServices.GCHandle.Alloc(array, System.Runtime.InteropServices.GCHandleType.Pinned);
        return new System.Buffers.MemoryHandle((byte*)h.AddrOfPinnedObject() + elementIndex, h, this);
    }
    public override void Unpin() { }
    protected override void Dispose(bool disposing) { }
}

/// <summary>
/// Writes safetensors files the way the reference writer does (huggingface/safetensors <c>prepare</c>/<c>serialize</c>):
/// tensors sorted by descending dtype alignment then by name, compact JSON with <c>__metadata__</c> first, header
/// padded with spaces to a multiple of 8. Writing is atomic: a temp file in the same directory is flushed to disk
/// and renamed over the destination, so readers never see a half-written checkpoint.
/// </summary>
public static class SafetensorsWriter
{
    public static void Write(string path, IEnumerable<SafetensorsTensor> tensors,
        IReadOnlyDictionary<string, string>? metadata = null, CancellationToken cancellationToken = default)
    {
        var list = tensors.ToList();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in list)
        {
            if (t.Name == "__metadata__") throw new ArgumentException("'__metadata__' is reserved and cannot be a tensor name");
            if (!names.Add(t.Name)) throw new ArgumentException($"duplicate tensor name '{t.Name}'");
            long numel = 1;
            foreach (int d in t.Shape)
            {
                if (d < 0) throw new ArgumentException($"tensor '{t.Name}': negative dimension {d}");
                numel = checked(numel * d);
            }
            long bytes = checked(numel * t.DType.SizeOf());
            if (bytes != t.Data.Length)
                throw new ArgumentException($"tensor '{t.Name}': {t.DType}[{string.Join(", ", t.Shape)}] needs {bytes} bytes, got {t.Data.Length}");
        }
        // Reference order: right.dtype.cmp(left.dtype).then(lname.cmp(rname)); Rust str order is UTF-8 byte order.
        list.Sort((a, b) =>
        {
            int c = SafetensorsDTypes.Rank(b.DType).CompareTo(SafetensorsDTypes.Rank(a.DType));
            return c != 0 ? c : CompareUtf8(a.Name, b.Name);
        });

        byte[] header = BuildHeader(list, metadata);
        string full = System.IO.Path.GetFullPath(path);
        string dir = System.IO.Path.GetDirectoryName(full)!;
        string tmp = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> n = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(n, (ulong)header.Length);
                fs.Write(n);
                fs.Write(header);
                foreach (var t in list)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    fs.Write(t.Data.Span);
                }
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    internal static byte[] BuildHeader(List<SafetensorsTensor> sorted, IReadOnlyDictionary<string, string>? metadata)
    {
        var sb = new StringBuilder("{");
        bool first = true;
        if (metadata is { Count: > 0 })
        {
            sb.Append("\"__metadata__\":{");
            bool mf = true;
            foreach (var kv in metadata.OrderBy(k => k.Key, StringComparer.Ordinal))
            {
                if (!mf) sb.Append(',');
                mf = false;
                AppendJsonString(sb, kv.Key); sb.Append(':'); AppendJsonString(sb, kv.Value);
            }
            sb.Append('}');
            first = false;
        }
        long offset = 0;
        foreach (var t in sorted)
        {
            if (!first) sb.Append(',');
            first = false;
            AppendJsonString(sb, t.Name);
            sb.Append(":{\"dtype\":\"").Append(SafetensorsDTypes.Name(t.DType)).Append("\",\"shape\":[");
            sb.Append(string.Join(",", t.Shape)).Append("],\"data_offsets\":[").Append(offset).Append(',');
            offset += t.Data.Length;
            sb.Append(offset).Append("]}");
        }
        sb.Append('}');
        int len = Encoding.UTF8.GetByteCount(sb.ToString());
        int padded = (len + 7) / 8 * 8;
        var bytes = new byte[padded];
        bytes.AsSpan().Fill((byte)' ');
        Encoding.UTF8.GetBytes(sb.ToString(), bytes);
        return bytes;
    }

    /// <summary>JSON string escaping as serde_json writes it: only '"', '\\' and control characters are escaped.</summary>
    private static void AppendJsonString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4"));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }

    private static int CompareUtf8(string a, string b) =>
        Encoding.UTF8.GetBytes(a).AsSpan().SequenceCompareTo(Encoding.UTF8.GetBytes(b));
}
