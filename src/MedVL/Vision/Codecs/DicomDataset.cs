using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace MedVL.Vision.Codecs;

/// <summary>One data element of the top-level DICOM dataset (PS3.5 §7.1). Sequences keep only their tag/VR.</summary>
public sealed record DicomElement(uint Tag, string VR, byte[] Value, bool BigEndian)
{
    public ushort Group => (ushort)(Tag >> 16);
    public ushort ElementNumber => (ushort)Tag;
}

/// <summary>
/// A small, bounded DICOM Part 10 / raw dataset reader (PS3.10 §7, PS3.5 §7): preamble+"DICM" or no preamble,
/// implicit VR little endian, explicit VR little/big endian and deflated explicit VR little endian.
/// Undefined-length sequences and items are skipped by walking their items (nesting depth bounded);
/// encapsulated Pixel Data (PS3.5 §A.4) is split into its basic offset table and fragments.
/// Every length is checked against the bytes that remain before anything is allocated.
/// </summary>
public sealed class DicomDataset
{
    public const uint PixelDataTag = 0x7FE00010;
    private const int MaxSequenceDepth = 32;

    public static class TransferSyntax
    {
        public const string ImplicitVRLittleEndian = "1.2.840.10008.1.2";
        public const string ExplicitVRLittleEndian = "1.2.840.10008.1.2.1";
        public const string DeflatedExplicitVRLittleEndian = "1.2.840.10008.1.2.1.99";
        public const string ExplicitVRBigEndian = "1.2.840.10008.1.2.2";
        public const string JpegBaseline = "1.2.840.10008.1.2.4.50";
        public const string JpegExtended = "1.2.840.10008.1.2.4.51";
        public const string RleLossless = "1.2.840.10008.1.2.5";
    }

    /// <summary>Names of well-known transfer syntaxes (PS3.6 Table A-1), for error messages.</summary>
    public static string TransferSyntaxName(string uid) => uid switch
    {
        "1.2.840.10008.1.2" => "Implicit VR Little Endian",
        "1.2.840.10008.1.2.1" => "Explicit VR Little Endian",
        "1.2.840.10008.1.2.1.99" => "Deflated Explicit VR Little Endian",
        "1.2.840.10008.1.2.2" => "Explicit VR Big Endian (retired)",
        "1.2.840.10008.1.2.4.50" => "JPEG Baseline (Process 1)",
        "1.2.840.10008.1.2.4.51" => "JPEG Extended (Process 2 & 4)",
        "1.2.840.10008.1.2.4.57" => "JPEG Lossless, Non-Hierarchical (Process 14)",
        "1.2.840.10008.1.2.4.70" => "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])",
        "1.2.840.10008.1.2.4.80" => "JPEG-LS Lossless Image Compression",
        "1.2.840.10008.1.2.4.81" => "JPEG-LS Lossy (Near-Lossless) Image Compression",
        "1.2.840.10008.1.2.4.90" => "JPEG 2000 Image Compression (Lossless Only)",
        "1.2.840.10008.1.2.4.91" => "JPEG 2000 Image Compression",
        "1.2.840.10008.1.2.4.201" => "High-Throughput JPEG 2000 Image Compression (Lossless Only)",
        "1.2.840.10008.1.2.4.203" => "High-Throughput JPEG 2000 Image Compression",
        "1.2.840.10008.1.2.5" => "RLE Lossless",
        "1.2.840.10008.1.2.4.100" => "MPEG2 Main Profile / Main Level",
        "1.2.840.10008.1.2.4.102" => "MPEG-4 AVC/H.264 High Profile / Level 4.1",
        _ => "unknown transfer syntax",
    };

    private readonly Dictionary<uint, DicomElement> _elements = new();

    public string Source { get; }
    public string TransferSyntaxUid { get; private set; } = TransferSyntax.ImplicitVRLittleEndian;
    public bool HasPreamble { get; private set; }
    public bool BigEndian { get; private set; }
    public bool ExplicitVR { get; private set; }
    /// <summary>Top-level elements in file order (file meta group 0002 included).</summary>
    public IReadOnlyCollection<DicomElement> Elements => _elements.Values;
    /// <summary>Native pixel data bytes, or null when encapsulated or absent.</summary>
    public byte[]? NativePixelData { get; private set; }
    /// <summary>Encapsulated pixel data: basic offset table (may be empty) and fragments, or null.</summary>
    public uint[]? BasicOffsetTable { get; private set; }
    public List<(long Offset, byte[] Data)>? Fragments { get; private set; }

    private DicomDataset(string source) => Source = source;

    public bool Contains(uint tag) => _elements.ContainsKey(tag);
    public DicomElement? Get(uint tag) => _elements.GetValueOrDefault(tag);

    /// <summary>The value of a string element (trailing spaces/NULs trimmed), or null.</summary>
    public string? GetString(uint tag)
    {
        if (!_elements.TryGetValue(tag, out var e)) return null;
        return Encoding.Latin1.GetString(e.Value).TrimEnd(' ', '\0').TrimStart(' ');
    }

    /// <summary>The i-th backslash-separated value of a string element, or null.</summary>
    public string? GetString(uint tag, int index)
    {
        var s = GetString(tag);
        if (s is null) return null;
        var parts = s.Split('\\');
        return index < parts.Length ? parts[index].Trim() : null;
    }

    /// <summary>An integer from US/SS/UL/SL (binary) or IS (text) elements; the first value when multi-valued.</summary>
    public int? GetInt(uint tag)
    {
        if (!_elements.TryGetValue(tag, out var e) || e.Value.Length == 0) return null;
        var v = e.Value.AsSpan();
        switch (e.VR)
        {
            case "US" when v.Length >= 2: return e.BigEndian ? BinaryPrimitives.ReadUInt16BigEndian(v) : BinaryPrimitives.ReadUInt16LittleEndian(v);
            case "SS" when v.Length >= 2: return e.BigEndian ? BinaryPrimitives.ReadInt16BigEndian(v) : BinaryPrimitives.ReadInt16LittleEndian(v);
            case "UL" when v.Length >= 4: return (int)Math.Min(int.MaxValue, e.BigEndian ? BinaryPrimitives.ReadUInt32BigEndian(v) : BinaryPrimitives.ReadUInt32LittleEndian(v));
            case "SL" when v.Length >= 4: return e.BigEndian ? BinaryPrimitives.ReadInt32BigEndian(v) : BinaryPrimitives.ReadInt32LittleEndian(v);
            case "IS" or "DS":
                var s = GetString(tag, 0);
                return s is not null && double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? (int)d : null;
            default: return null;
        }
    }

    /// <summary>A decimal from DS/IS (first value) or binary FL/FD/US/SS elements, or null.</summary>
    public double? GetDouble(uint tag)
    {
        if (!_elements.TryGetValue(tag, out var e) || e.Value.Length == 0) return null;
        var v = e.Value.AsSpan();
        switch (e.VR)
        {
            case "FD" when v.Length >= 8: return e.BigEndian ? BinaryPrimitives.ReadDoubleBigEndian(v) : BinaryPrimitives.ReadDoubleLittleEndian(v);
            case "FL" when v.Length >= 4: return e.BigEndian ? BinaryPrimitives.ReadSingleBigEndian(v) : BinaryPrimitives.ReadSingleLittleEndian(v);
            case "US" or "SS" or "UL" or "SL": return GetInt(tag);
            default:
                var s = GetString(tag, 0);
                return s is not null && s.Length > 0 && double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null;
        }
    }

    public static DicomDataset Read(byte[] data, string source = "<stream>", ImageLoadOptions? options = null)
    {
        options ??= new ImageLoadOptions();
        var ds = new DicomDataset(source);
        try { ds.Parse(data, options); }
        catch (InvalidImageException) { throw; }
        catch (InvalidDataException e) { throw new InvalidImageException(source, $"DICOM: corrupt deflated dataset ({e.Message})", e); }
        return ds;
    }

    /// <summary>True when the bytes look like DICOM: "DICM" at offset 128, or a raw dataset starting in group 0002 or 0008.</summary>
    public static bool LooksLikeDicom(ReadOnlySpan<byte> d)
    {
        if (d.Length >= 132 && d.Slice(128, 4).SequenceEqual("DICM"u8)) return true;
        if (d.Length < 8) return false;
        ushort gLe = BinaryPrimitives.ReadUInt16LittleEndian(d), gBe = BinaryPrimitives.ReadUInt16BigEndian(d);
        ushort eLe = BinaryPrimitives.ReadUInt16LittleEndian(d[2..]);
        if ((gLe == 0x0002 || gLe == 0x0008) && eLe < 0x0100) return true;
        return gBe == 0x0008 && BinaryPrimitives.ReadUInt16BigEndian(d[2..]) < 0x0100 && IsVR(d[4], d[5]);
    }

    private static bool IsVR(byte a, byte b) => a is >= (byte)'A' and <= (byte)'Z' && b is >= (byte)'A' and <= (byte)'Z';

    private static bool IsLongVR(string vr) => vr is "OB" or "OD" or "OF" or "OL" or "OV" or "OW" or "SQ" or "SV" or "UC" or "UN" or "UR" or "UT" or "UV";

    private void Parse(byte[] data, ImageLoadOptions options)
    {
        int pos = 0;
        if (data.Length >= 132 && data.AsSpan(128, 4).SequenceEqual("DICM"u8)) { HasPreamble = true; pos = 132; }

        // File meta information (group 0002) is always explicit VR little endian (PS3.10 §7.1).
        bool sawMeta = false;
        while (pos + 6 <= data.Length && BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(pos)) == 0x0002)
        {
            if (!IsVR(data[pos + 4], data[pos + 5]))
            {
                // Some writers put group 0002 in implicit VR; accept it the same way pydicom does.
                var e = ReadElement(data, ref pos, explicitVr: false, bigEndian: false, depth: 0, out _);
                if (e is not null) _elements[e.Tag] = e;
            }
            else
            {
                var e = ReadElement(data, ref pos, explicitVr: true, bigEndian: false, depth: 0, out _);
                if (e is not null) _elements[e.Tag] = e;
            }
            sawMeta = true;
        }

        string? ts = sawMeta ? GetString(0x00020010) : null;
        if (string.IsNullOrEmpty(ts))
        {
            // No meta (or meta without a transfer syntax): guess from the first element, like pydicom/dcmtk do.
            if (pos + 6 > data.Length) throw new InvalidImageException(Source, "DICOM: file too short for a dataset");
            bool explicitGuess = IsVR(data[pos + 4], data[pos + 5]);
            bool beGuess = explicitGuess && BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(pos)) == 0x0008 && BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(pos)) != 0x0008;
            ts = beGuess ? TransferSyntax.ExplicitVRBigEndian : explicitGuess ? TransferSyntax.ExplicitVRLittleEndian : TransferSyntax.ImplicitVRLittleEndian;
        }
        TransferSyntaxUid = ts;
        BigEndian = ts == TransferSyntax.ExplicitVRBigEndian;
        ExplicitVR = ts != TransferSyntax.ImplicitVRLittleEndian;

        if (ts == TransferSyntax.DeflatedExplicitVRLittleEndian)
        {
            // PS3.5 §A.5: the dataset after the meta group is a raw deflate (RFC 1951) stream.
            using var inflater = new DeflateStream(new MemoryStream(data, pos, data.Length - pos), CompressionMode.Decompress);
            var ms = new MemoryStream();
            var buf = new byte[81920];
            int n;
            long limit = Math.Min(options.MaxFileBytes, 1032L * (data.Length - pos) + 65536); // deflate's max ratio
            while ((n = inflater.Read(buf)) > 0)
            {
                ms.Write(buf, 0, n);
                if (ms.Length > limit) throw new InvalidImageException(Source, $"DICOM: deflated dataset inflates beyond {limit} bytes");
            }
            data = ms.ToArray();
            pos = 0;
        }

        while (pos < data.Length)
        {
            if (data.Length - pos < 8)
            {
                // Trailing padding bytes shorter than an element header are tolerated (as pydicom does).
                break;
            }
            var e = ReadElement(data, ref pos, ExplicitVR, BigEndian, 0, out bool stop);
            if (e is not null) _elements[e.Tag] = e;
            if (stop) break;
        }
    }

    private (ushort g, ushort e) ReadTag(byte[] d, int pos, bool be) => be
        ? (BinaryPrimitives.ReadUInt16BigEndian(d.AsSpan(pos)), BinaryPrimitives.ReadUInt16BigEndian(d.AsSpan(pos + 2)))
        : (BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(pos)), BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(pos + 2)));

    private uint ReadU32(byte[] d, int pos, bool be) => be ? BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(pos)) : BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(pos));

    private void Need(byte[] d, int pos, long count, string what)
    {
        if (count < 0 || pos + count > d.Length)
            throw new InvalidImageException(Source, $"DICOM: {what} at byte {pos} needs {count} bytes but only {Math.Max(0, d.Length - pos)} remain (truncated file?)");
    }

    /// <summary>Reads one element header+value; returns null for elements inside skipped sequences.</summary>
    private DicomElement? ReadElement(byte[] d, ref int pos, bool explicitVr, bool bigEndian, int depth, out bool stop)
    {
        stop = false;
        int start = pos;
        Need(d, pos, 8, "element header");
        var (g, el) = ReadTag(d, pos, bigEndian);
        uint tag = ((uint)g << 16) | el;
        string vr;
        uint len;
        if (explicitVr && g != 0xFFFE)
        {
            vr = Encoding.ASCII.GetString(d, pos + 4, 2);
            if (!IsVR(d[pos + 4], d[pos + 5]))
                throw new InvalidImageException(Source, $"DICOM: element ({g:X4},{el:X4}) at byte {start} has invalid VR bytes 0x{d[pos + 4]:X2}{d[pos + 5]:X2} in an explicit VR dataset");
            if (IsLongVR(vr))
            {
                Need(d, pos, 12, $"element ({g:X4},{el:X4}) header");
                len = ReadU32(d, pos + 8, bigEndian);
                pos += 12;
            }
            else
            {
                len = bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(d.AsSpan(pos + 6)) : BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(pos + 6));
                pos += 8;
            }
        }
        else
        {
            vr = ImplicitVR(tag);
            len = ReadU32(d, pos + 4, bigEndian);
            pos += 8;
        }

        if (tag == PixelDataTag && depth == 0)
        {
            if (len == 0xFFFFFFFF) ReadEncapsulated(d, ref pos);
            else
            {
                Need(d, pos, len, "Pixel Data (7FE0,0010) value");
                NativePixelData = d.AsSpan(pos, (int)len).ToArray();
                pos += (int)len;
            }
            stop = true;
            return new DicomElement(tag, vr == "UN" ? "OW" : vr, [], bigEndian);
        }

        if (len == 0xFFFFFFFF)
        {
            // Undefined length: a sequence (SQ, or UN/implicit holding one) - walk its items to find the end.
            SkipUndefinedSequence(d, ref pos, explicitVr && vr != "UN", bigEndian, depth + 1, tag);
            return depth == 0 ? new DicomElement(tag, "SQ", [], bigEndian) : null;
        }

        Need(d, pos, len, $"element ({g:X4},{el:X4}) value of {len} bytes");
        if (vr == "SQ" && depth + 1 > MaxSequenceDepth)
            throw new InvalidImageException(Source, $"DICOM: sequences nested deeper than {MaxSequenceDepth}");
        DicomElement? result = null;
        if (depth == 0) result = new DicomElement(tag, vr, vr == "SQ" ? [] : d.AsSpan(pos, (int)len).ToArray(), bigEndian);
        pos += (int)len;
        return result;
    }

    /// <summary>Skips items of an undefined-length sequence up to its Sequence Delimitation Item (FFFE,E0DD).</summary>
    private void SkipUndefinedSequence(byte[] d, ref int pos, bool explicitVr, bool bigEndian, int depth, uint seqTag)
    {
        if (depth > MaxSequenceDepth) throw new InvalidImageException(Source, $"DICOM: sequences nested deeper than {MaxSequenceDepth}");
        while (true)
        {
            Need(d, pos, 8, $"item header in sequence ({seqTag >> 16:X4},{seqTag & 0xFFFF:X4})");
            var (g, e) = ReadTag(d, pos, bigEndian);
            uint len = ReadU32(d, pos + 4, bigEndian);
            pos += 8;
            if (g == 0xFFFE && e == 0xE0DD) return; // sequence delimitation
            if (g != 0xFFFE || e != 0xE000)
                throw new InvalidImageException(Source, $"DICOM: expected an Item (FFFE,E000) in sequence ({seqTag >> 16:X4},{seqTag & 0xFFFF:X4}) at byte {pos - 8}, found ({g:X4},{e:X4})");
            if (len != 0xFFFFFFFF)
            {
                Need(d, pos, len, "sequence item");
                pos += (int)len;
                continue;
            }
            // Undefined-length item: read nested elements until Item Delimitation (FFFE,E00D).
            while (true)
            {
                Need(d, pos, 8, "element header inside an item");
                var (ig, ie) = ReadTag(d, pos, bigEndian);
                if (ig == 0xFFFE && ie == 0xE00D) { pos += 8; break; }
                ReadElement(d, ref pos, explicitVr, bigEndian, depth, out _);
            }
        }
    }

    private void ReadEncapsulated(byte[] d, ref int pos)
    {
        var frags = new List<(long, byte[])>();
        bool first = true;
        while (true)
        {
            Need(d, pos, 8, "encapsulated Pixel Data item header");
            var (g, e) = ReadTag(d, pos, BigEndian);
            uint len = ReadU32(d, pos + 4, BigEndian);
            int itemStart = pos;
            pos += 8;
            if (g == 0xFFFE && e == 0xE0DD) break;
            if (g != 0xFFFE || e != 0xE000)
                throw new InvalidImageException(Source, $"DICOM: expected an Item (FFFE,E000) in encapsulated Pixel Data at byte {itemStart}, found ({g:X4},{e:X4})");
            if (len == 0xFFFFFFFF) throw new InvalidImageException(Source, "DICOM: encapsulated Pixel Data fragment with undefined length");
            Need(d, pos, len, "encapsulated Pixel Data fragment");
            if (first)
            {
                // PS3.5 §A.4: the first item is the Basic Offset Table (possibly empty), uint32 offsets.
                if (len % 4 != 0) throw new InvalidImageException(Source, $"DICOM: Basic Offset Table length {len} is not a multiple of 4");
                var bot = new uint[len / 4];
                for (int i = 0; i < bot.Length; i++) bot[i] = ReadU32(d, pos + 4 * i, BigEndian);
                BasicOffsetTable = bot;
                first = false;
            }
            else frags.Add((itemStart, d.AsSpan(pos, (int)len).ToArray()));
            pos += (int)len;
        }
        Fragments = frags;
        BasicOffsetTable ??= [];
    }

    /// <summary>VRs needed to interpret implicit-VR datasets (PS3.6 data dictionary, only the tags we read).</summary>
    private static string ImplicitVR(uint tag) => tag switch
    {
        0x00280002 or 0x00280010 or 0x00280011 or 0x00280100 or 0x00280101 or 0x00280102 or 0x00280103 or 0x00280006 => "US",
        0x00280008 => "IS",
        0x00280004 or 0x00080060 => "CS",
        0x00281050 or 0x00281051 or 0x00281052 or 0x00281053 => "DS",
        0x00020010 or 0x00020002 or 0x00020003 or 0x00080016 or 0x00080018 => "UI",
        0x00020000 => "UL",
        PixelDataTag => "OW",
        _ when (tag & 0xFFFF) == 0x0000 => "UL", // group length
        _ => "UN",
    };
}
