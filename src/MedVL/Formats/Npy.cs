using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;
using MedVL.Tensors;

namespace MedVL.Formats;

/// <summary>An array read from a .npy file: C-order, little-endian bytes (big-endian and Fortran-order files are converted on read).</summary>
public sealed class NpyArray
{
    public DType DType { get; }
    public int[] Shape { get; }
    /// <summary>Raw little-endian element bytes in C order.</summary>
    public byte[] Data { get; }
    public long ElementCount { get; }

    public NpyArray(DType dtype, int[] shape, byte[] data)
    {
        long n = 1;
        foreach (int d in shape) n = checked(n * d);
        if (n * dtype.SizeOf() != data.Length)
            throw new ArgumentException($"{dtype}[{string.Join(", ", shape)}] needs {n * dtype.SizeOf()} bytes, got {data.Length}");
        DType = dtype; Shape = shape; Data = data; ElementCount = n;
    }

    public float[] ToFloat32()
    {
        var r = new float[ElementCount];
        ElementConvert.ToFloat32(DType, Data, r);
        return r;
    }

    /// <summary>Integer/bool arrays as int64 (float arrays are rejected rather than truncated).</summary>
    public long[] ToInt64()
    {
        if (DType.IsFloatingPoint()) throw new InvalidOperationException($"array is {DType}; ToInt64 needs an integer or bool dtype");
        return ElementConvert.ToInt64(DType, Data, ElementCount);
    }

    public double[] ToFloat64()
    {
        if (DType == DType.F64) return MemoryMarshal.Cast<byte, double>(Data).ToArray();
        if (DType is DType.I64 or DType.U64 or DType.I32 or DType.U32 or DType.I16 or DType.U16 or DType.I8 or DType.U8 or DType.Bool)
            return ToInt64().Select(x => (double)x).ToArray();
        return ToFloat32().Select(x => (double)x).ToArray();
    }
}

/// <summary>
/// NumPy's .npy format (numpy/lib/format.py, NEP 1): magic "\x93NUMPY", version 1.0 (u16 header length), 2.0 (u32)
/// or 3.0 (u32, UTF-8 header), a Python-literal dict {'descr','fortran_order','shape'} padded so data starts at a
/// multiple of 64, then the raw elements. The writer reproduces numpy's header byte for byte.
/// </summary>
public static class Npy
{
    /// <summary>numpy's own default max_header_size is 10,000; this is a generous bound against hostile files.</summary>
    public const int MaxHeaderLength = 1 << 20;

    private static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    public static void Write(string path, ReadOnlySpan<float> data, ReadOnlySpan<int> shape) => WriteRaw(path, DType.F32, MemoryMarshal.AsBytes(data), shape);
    public static void Write(string path, ReadOnlySpan<double> data, ReadOnlySpan<int> shape) => WriteRaw(path, DType.F64, MemoryMarshal.AsBytes(data), shape);
    public static void Write(string path, ReadOnlySpan<int> data, ReadOnlySpan<int> shape) => WriteRaw(path, DType.I32, MemoryMarshal.AsBytes(data), shape);
    public static void Write(string path, ReadOnlySpan<long> data, ReadOnlySpan<int> shape) => WriteRaw(path, DType.I64, MemoryMarshal.AsBytes(data), shape);
    public static void Write(string path, ReadOnlySpan<byte> data, ReadOnlySpan<int> shape) => WriteRaw(path, DType.U8, data, shape);
    public static void Write(string path, ReadOnlySpan<bool> data, ReadOnlySpan<int> shape) => WriteRaw(path, DType.Bool, MemoryMarshal.AsBytes(data), shape);

    /// <summary>Writes little-endian C-order bytes of any dtype numpy has (not BF16/F8).</summary>
    public static void WriteRaw(string path, DType dtype, ReadOnlySpan<byte> data, ReadOnlySpan<int> shape)
    {
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        WriteRaw(fs, dtype, data, shape);
    }

    public static void WriteRaw(Stream stream, DType dtype, ReadOnlySpan<byte> data, ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension {d}", nameof(shape));
            n = checked(n * d);
        }
        if (checked(n * dtype.SizeOf()) != data.Length)
            throw new ArgumentException($"{dtype}[{string.Join(", ", shape.ToArray())}] needs {n * dtype.SizeOf()} bytes, got {data.Length}", nameof(data));
        stream.Write(BuildHeader(dtype, shape));
        stream.Write(data);
    }

    /// <summary>numpy's _write_array_header: sorted keys, repr values, 21-digit growth room, '\n' ending, 64-byte alignment.</summary>
    internal static byte[] BuildHeader(DType dtype, ReadOnlySpan<int> shape)
    {
        string shapeRepr = shape.Length switch
        {
            0 => "()",
            1 => $"({shape[0]},)",
            _ => "(" + string.Join(", ", shape.ToArray()) + ")",
        };
        string dict = $"{{'descr': '{Descr(dtype)}', 'fortran_order': False, 'shape': {shapeRepr}, }}";
        if (shape.Length > 0) dict += new string(' ', Math.Max(0, 21 - shape[0].ToString().Length));
        int hlen = dict.Length + 1;
        bool v1 = true;
        int prefix = 6 + 2 + 2;
        int pad = 64 - (prefix + hlen) % 64;
        if (hlen + pad > ushort.MaxValue) { v1 = false; prefix = 6 + 2 + 4; pad = 64 - (prefix + hlen) % 64; }
        var buf = new byte[prefix + hlen + pad];
        Magic.CopyTo(buf);
        buf[6] = (byte)(v1 ? 1 : 2); buf[7] = 0;
        if (v1) BinaryPrimitives.WriteUInt16LittleEndian(buf.AsSpan(8), (ushort)(hlen + pad));
        else BinaryPrimitives.WriteUInt32LittleEndian(buf.AsSpan(8), (uint)(hlen + pad));
        Encoding.Latin1.GetBytes(dict, buf.AsSpan(prefix));
        buf.AsSpan(prefix + dict.Length, pad).Fill((byte)' ');
        buf[^1] = (byte)'\n';
        return buf;
    }

    private static string Descr(DType t) => t switch
    {
        DType.F32 => "<f4", DType.F64 => "<f8", DType.F16 => "<f2",
        DType.I8 => "|i1", DType.U8 => "|u1", DType.Bool => "|b1",
        DType.I16 => "<i2", DType.U16 => "<u2", DType.I32 => "<i4", DType.U32 => "<u4", DType.I64 => "<i8", DType.U64 => "<u8",
        _ => throw new NotSupportedException($"dtype {t} has no numpy equivalent (numpy has no bfloat16/float8)"),
    };

    public static NpyArray Read(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Read(fs, path);
    }

    /// <summary>Reads one array from a stream; <paramref name="name"/> is used in error messages.</summary>
    public static NpyArray Read(Stream stream, string name)
    {
        Span<byte> pre = stackalloc byte[12];
        ReadExactly(stream, pre[..8], name, "magic and version");
        if (!pre[..6].SequenceEqual(Magic)) throw new InvalidCheckpointException(name, "not a .npy file (missing \\x93NUMPY magic)");
        byte major = pre[6], minor = pre[7];
        if (major is not (1 or 2 or 3) || minor != 0)
            throw new InvalidCheckpointException(name, $"unsupported .npy format version {major}.{minor} (expected 1.0, 2.0 or 3.0)");
        long hlen;
        if (major == 1) { ReadExactly(stream, pre.Slice(8, 2), name, "header length"); hlen = BinaryPrimitives.ReadUInt16LittleEndian(pre[8..]); }
        else { ReadExactly(stream, pre.Slice(8, 4), name, "header length"); hlen = BinaryPrimitives.ReadUInt32LittleEndian(pre[8..]); }
        if (hlen > MaxHeaderLength) throw new InvalidCheckpointException(name, $"header length {hlen} exceeds the limit of {MaxHeaderLength}");
        if (stream.CanSeek && hlen > stream.Length - stream.Position)
            throw new InvalidCheckpointException(name, $"header length {hlen} runs past the end of the file");
        var hbytes = new byte[hlen];
        ReadExactly(stream, hbytes, name, "header");
        string header;
        try
        {
            header = major == 3 ? new UTF8Encoding(false, true).GetString(hbytes) : Encoding.Latin1.GetString(hbytes);
        }
        catch (DecoderFallbackException e) { throw new InvalidCheckpointException(name, "header is not valid UTF-8", e); }

        var (descr, fortran, shape) = ParseHeader(header, name);
        var (dtype, bigEndian) = ParseDescr(descr, name);
        long count = 1;
        try { checked { foreach (int d in shape) count *= d; count *= dtype.SizeOf(); } }
        catch (OverflowException) { throw new InvalidCheckpointException(name, $"shape ({string.Join(", ", shape)}) overflows"); }
        if (count > Array.MaxLength) throw new InvalidCheckpointException(name, $"array of {count} bytes is too large to read into memory");
        if (stream.CanSeek && count > stream.Length - stream.Position)
            throw new InvalidCheckpointException(name, $"shape ({string.Join(", ", shape)}) with descr '{descr}' needs {count} data bytes but only {stream.Length - stream.Position} remain");
        byte[] data;
        if (stream.CanSeek || count <= 1 << 24) { data = new byte[count]; ReadExactly(stream, data, name, "array data"); }
        else data = ReadGrowing(stream, count, name); // unknown length: don't trust the header with a huge allocation up front
        int es = dtype.SizeOf();
        if (bigEndian && es > 1)
            for (int i = 0; i < data.Length; i += es) data.AsSpan(i, es).Reverse();
        if (fortran && shape.Length > 1) data = FortranToC(data, shape, es);
        return new NpyArray(dtype, shape, data);
    }

    /// <summary>Reads every array of an .npz (a zip of .npy files, stored or deflated); keys drop the ".npy" suffix as numpy does.</summary>
    public static Dictionary<string, NpyArray> ReadNpz(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        return ReadNpz(fs, path);
    }

    /// <summary>Reads an .npz from a seekable stream; <paramref name="path"/> names it in errors.</summary>
    public static Dictionary<string, NpyArray> ReadNpz(Stream stream, string path)
    {
        var result = new Dictionary<string, NpyArray>(StringComparer.Ordinal);
        try
        {
            using var zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
            foreach (var e in zip.Entries)
            {
                if (e.FullName.EndsWith('/')) continue;
                string key = e.FullName.EndsWith(".npy", StringComparison.Ordinal) ? e.FullName[..^4] : e.FullName;
                using var s = e.Open();
                // Entry streams don't seek; bound reads by the declared size through a length-limited copy.
                if (e.Length > Array.MaxLength) throw new InvalidCheckpointException(path, $"entry '{e.FullName}' is too large");
                var ms = new MemoryStream((int)Math.Min(e.Length, 1 << 20));
                CopyBounded(s, ms, e.Length, path, e.FullName);
                ms.Position = 0;
                result[key] = Read(ms, $"{path}[{e.FullName}]");
            }
        }
        catch (InvalidDataException e) { throw new InvalidCheckpointException(path, $"corrupt .npz (zip): {e.Message}", e); }
        return result;
    }

    private static void CopyBounded(Stream s, MemoryStream ms, long declared, string path, string entry)
    {
        var buf = new byte[81920];
        long total = 0;
        int n;
        while ((n = s.Read(buf)) > 0)
        {
            total += n;
            if (total > declared) throw new InvalidCheckpointException(path, $"entry '{entry}' inflates past its declared size {declared}");
            ms.Write(buf, 0, n);
        }
    }

    private static byte[] ReadGrowing(Stream s, long count, string name)
    {
        var ms = new MemoryStream();
        var buf = new byte[1 << 20];
        while (ms.Length < count)
        {
            int n = s.Read(buf, 0, (int)Math.Min(buf.Length, count - ms.Length));
            if (n == 0) throw new InvalidCheckpointException(name, "file is truncated while reading the array data");
            ms.Write(buf, 0, n);
        }
        return ms.ToArray();
    }

    private static void ReadExactly(Stream s, Span<byte> dst, string name, string what)
    {
        try { s.ReadExactly(dst); }
        catch (EndOfStreamException e) { throw new InvalidCheckpointException(name, $"file is truncated while reading the {what}", e); }
    }

    private static (DType, bool BigEndian) ParseDescr(string descr, string name)
    {
        if (descr.Length < 2) throw new InvalidCheckpointException(name, $"descr '{descr}' is not a simple dtype");
        char order = descr[0];
        string code = descr[1..];
        if (order is not ('<' or '>' or '|' or '='))
        {
            order = '|';
            code = descr;
        }
        DType t = code switch
        {
            "f4" => DType.F32, "f8" => DType.F64, "f2" => DType.F16,
            "i1" => DType.I8, "u1" => DType.U8, "b1" => DType.Bool,
            "i2" => DType.I16, "u2" => DType.U16, "i4" => DType.I32, "u4" => DType.U32, "i8" => DType.I64, "u8" => DType.U64,
            _ => throw new InvalidCheckpointException(name, $"unsupported descr '{descr}' (supported: f2/f4/f8, i1/i2/i4/i8, u1/u2/u4/u8, b1 with '<', '>', '|' or '=')"),
        };
        if (order == '|' && t.SizeOf() > 1 && descr[0] == '|')
            throw new InvalidCheckpointException(name, $"descr '{descr}' has no byte order for a multi-byte type");
        return (t, order == '>'); // '=' is native, and MedVL runs on little-endian hosts only
    }

    private static byte[] FortranToC(byte[] src, int[] shape, int es)
    {
        // Fortran order: element (i0..ik) lives at Σ i_j * Π_{m<j} shape_m. Walk C order with an odometer.
        int rank = shape.Length;
        var fstride = new long[rank];
        long acc = 1;
        for (int j = 0; j < rank; j++) { fstride[j] = acc; acc *= shape[j]; }
        var dst = new byte[src.Length];
        if (src.Length == 0) return dst;
        var idx = new int[rank];
        for (long c = 0; c < src.Length / es; c++)
        {
            long f = 0;
            for (int j = 0; j < rank; j++) f += idx[j] * fstride[j];
            src.AsSpan((int)(f * es), es).CopyTo(dst.AsSpan((int)(c * es), es));
            for (int j = rank - 1; j >= 0; j--)
            {
                if (++idx[j] < shape[j]) break;
                idx[j] = 0;
            }
        }
        return dst;
    }

    /// <summary>Parses the header dict literal. A tiny bounded tokenizer, not an evaluator: only str/bool/int-tuple values.</summary>
    private static (string Descr, bool Fortran, int[] Shape) ParseHeader(string h, string name)
    {
        int i = 0;
        InvalidCheckpointException Bad(string msg) => new(name, $"malformed .npy header ({msg}): {Trunc(h)}");
        void Ws() { while (i < h.Length && char.IsWhiteSpace(h[i])) i++; }
        bool Eat(char c) { Ws(); if (i < h.Length && h[i] == c) { i++; return true; } return false; }
        string Str()
        {
            Ws();
            if (i >= h.Length || (h[i] != '\'' && h[i] != '"')) throw Bad("expected a string");
            char q = h[i++];
            int s = i;
            while (i < h.Length && h[i] != q) { if (h[i] == '\\') throw Bad("escapes are not supported"); i++; }
            if (i >= h.Length) throw Bad("unterminated string");
            return h[s..i++];
        }
        string? descr = null; bool? fortran = null; int[]? shape = null;
        if (!Eat('{')) throw Bad("expected '{'");
        while (!Eat('}'))
        {
            string key = Str();
            if (!Eat(':')) throw Bad("expected ':'");
            Ws();
            switch (key)
            {
                case "descr":
                    if (i < h.Length && h[i] == '[') throw new InvalidCheckpointException(name, "structured (record) dtypes are not supported");
                    descr = Str();
                    break;
                case "fortran_order":
                    if (h.AsSpan(i).StartsWith("True")) { fortran = true; i += 4; }
                    else if (h.AsSpan(i).StartsWith("False")) { fortran = false; i += 5; }
                    else throw Bad("fortran_order must be True or False");
                    break;
                case "shape":
                    if (!Eat('(')) throw Bad("shape must be a tuple");
                    var dims = new List<int>();
                    while (!Eat(')'))
                    {
                        Ws();
                        int s = i;
                        while (i < h.Length && char.IsAsciiDigit(h[i])) i++;
                        if (s == i) throw Bad("shape entries must be non-negative integers");
                        if (!int.TryParse(h.AsSpan(s, i - s), out int d)) throw Bad($"dimension {h[s..i]} is too large");
                        if (i < h.Length && h[i] == 'L') i++; // Python 2 long literal
                        if (dims.Count >= TensorEntry.MaxRank) throw Bad($"rank exceeds {TensorEntry.MaxRank}");
                        dims.Add(d);
                        if (!Eat(',')) { if (!Eat(')')) throw Bad("expected ',' or ')' in shape"); break; }
                    }
                    shape = dims.ToArray();
                    break;
                default:
                    throw Bad($"unexpected key '{key}'");
            }
            if (!Eat(',')) { if (!Eat('}')) throw Bad("expected ',' or '}'"); break; }
        }
        if (descr is null || fortran is null || shape is null) throw Bad("missing one of 'descr', 'fortran_order', 'shape'");
        return (descr, fortran.Value, shape);
    }

    private static string Trunc(string s) => s.Length > 200 ? s[..200] + "..." : s;
}
