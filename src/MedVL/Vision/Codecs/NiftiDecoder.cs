using System.Buffers.Binary;
using System.IO.Compression;

namespace MedVL.Vision.Codecs;

/// <summary>Parsed NIfTI-1 header fields we use (nifti1.h, NIfTI-1 Data Format).</summary>
public sealed record NiftiHeader(bool BigEndian, short[] Dim, short Datatype, short Bitpix, float[] Pixdim,
    float VoxOffset, float SclSlope, float SclInter, string Magic)
{
    /// <summary>Number of dimensions used (dim[0]).</summary>
    public int Rank => Dim[0];
    /// <summary>Size of dimension d (0-based; 1 when d &gt;= Rank).</summary>
    public int Size(int d) => d < Rank ? Dim[d + 1] : 1;
    /// <summary>nibabel semantics: scl_slope of 0 or non-finite means "no scaling" (and then scl_inter is ignored).</summary>
    public bool HasScaling => SclSlope != 0 && float.IsFinite(SclSlope);
}

/// <summary>
/// NIfTI-1 single-file (.nii) and gzipped (.nii.gz) reader. Returns one 2-D slice (axis + index) of a 3-D or
/// 4-D volume: for a slice perpendicular to axis a, the image columns run along the lower remaining voxel axis
/// and rows along the higher one, both in increasing voxel index (array order, NOT radiological display
/// orientation: the qform/sform affine is not applied; see docs/image-io.md).
/// </summary>
public static class NiftiDecoder
{
    public const int HeaderSize = 348;

    /// <summary>True for an uncompressed NIfTI-1 header (sizeof_hdr = 348 in either byte order).</summary>
    public static bool LooksLikeNifti(ReadOnlySpan<byte> d)
        => d.Length >= 348 && (BinaryPrimitives.ReadInt32LittleEndian(d) == 348 || BinaryPrimitives.ReadInt32BigEndian(d) == 348);

    public static bool IsGzip(ReadOnlySpan<byte> d) => d.Length >= 2 && d[0] == 0x1F && d[1] == 0x8B;

    public static NiftiHeader ReadHeader(ReadOnlySpan<byte> h, string source)
    {
        if (h.Length < HeaderSize) throw new InvalidImageException(source, $"NIfTI: file has {h.Length} bytes, shorter than the 348-byte header");
        bool be;
        if (BinaryPrimitives.ReadInt32LittleEndian(h) == 348) be = false;
        else if (BinaryPrimitives.ReadInt32BigEndian(h) == 348) be = true;
        else throw new InvalidImageException(source, $"NIfTI: sizeof_hdr is {BinaryPrimitives.ReadInt32LittleEndian(h)}, expected 348 (NIfTI-2 is not supported)");
        var dim = new short[8];
        for (int i = 0; i < 8; i++) dim[i] = I16(h, 40 + 2 * i, be);
        var pixdim = new float[8];
        for (int i = 0; i < 8; i++) pixdim[i] = F32(h, 76 + 4 * i, be);
        string magic = System.Text.Encoding.ASCII.GetString(h.Slice(344, 3));
        if (magic is not ("n+1" or "ni1"))
            throw new InvalidImageException(source, $"NIfTI: magic is '{magic}', expected 'n+1' (single file) or 'ni1'");
        if (dim[0] is < 1 or > 7) throw new InvalidImageException(source, $"NIfTI: dim[0] = {dim[0]}, expected 1..7");
        for (int i = 1; i <= dim[0]; i++)
            if (dim[i] < 1) throw new InvalidImageException(source, $"NIfTI: dim[{i}] = {dim[i]}, expected >= 1");
        return new NiftiHeader(be, dim, I16(h, 70, be), I16(h, 72, be), pixdim, F32(h, 108, be), F32(h, 112, be), F32(h, 116, be), magic);
    }

    private static short I16(ReadOnlySpan<byte> h, int o, bool be) => be ? BinaryPrimitives.ReadInt16BigEndian(h[o..]) : BinaryPrimitives.ReadInt16LittleEndian(h[o..]);
    private static float F32(ReadOnlySpan<byte> h, int o, bool be) => be ? BinaryPrimitives.ReadSingleBigEndian(h[o..]) : BinaryPrimitives.ReadSingleLittleEndian(h[o..]);

    /// <summary>(bytes per voxel, signed/float kind) for supported datatype codes (nifti1.h DT_*).</summary>
    private static (int Bytes, string Name) TypeInfo(short code, string source) => code switch
    {
        2 => (1, "uint8"), 4 => (2, "int16"), 8 => (4, "int32"), 16 => (4, "float32"), 64 => (8, "float64"),
        256 => (1, "int8"), 512 => (2, "uint16"), 768 => (4, "uint32"), 1024 => (8, "int64"), 1280 => (8, "uint64"),
        128 => (3, "rgb24"),
        _ => throw new InvalidImageException(source, $"NIfTI: datatype {code} is not supported (supported: uint8/int8/int16/uint16/int32/uint32/int64/uint64/float32/float64/rgb24)"),
    };

    public static DecodedImage Decode(byte[] fileBytes, string source = "<stream>", ImageLoadOptions? options = null)
    {
        options ??= new ImageLoadOptions();
        byte[] data = fileBytes;
        if (IsGzip(fileBytes)) data = Gunzip(fileBytes, source, options);
        var h = ReadHeader(data, source);
        var (bytes, tname) = TypeInfo(h.Datatype, source);
        if (h.Bitpix != bytes * 8)
            throw new InvalidImageException(source, $"NIfTI: bitpix {h.Bitpix} does not match datatype {tname} ({bytes * 8} bits)");
        if (!float.IsFinite(h.VoxOffset) || h.VoxOffset < HeaderSize || h.VoxOffset > data.Length)
            throw new InvalidImageException(source, $"NIfTI: vox_offset {h.VoxOffset} outside 348..{data.Length}");
        long off = (long)h.VoxOffset;

        int axis = options.SliceAxis;
        if (axis is < 0 or > 2) throw new InvalidImageException(source, $"NIfTI: slice axis {axis}, expected 0, 1 or 2");
        int nx = h.Size(0), ny = h.Size(1), nz = h.Size(2), nt = h.Size(3);
        long higher = 1;
        for (int d = 4; d < h.Rank; d++) higher *= h.Size(d);
        int nAxis = axis switch { 0 => nx, 1 => ny, _ => nz };
        int index = options.SliceIndex ?? nAxis / 2;
        if (index < 0 || index >= nAxis) throw new InvalidImageException(source, $"NIfTI: slice index {index} outside 0..{nAxis - 1} along axis {axis}");
        if (options.Volume < 0 || options.Volume >= nt) throw new InvalidImageException(source, $"NIfTI: volume {options.Volume} outside 0..{nt - 1}");

        long volumeVoxels = (long)nx * ny * nz;
        long needed = off + volumeVoxels * nt * higher * bytes;
        if (needed > data.Length)
            throw new InvalidImageException(source, $"NIfTI: header promises {nx}x{ny}x{nz}x{nt} {tname} voxels ({needed - off} bytes from offset {off}) but only {data.Length - off} bytes follow");

        int width, height;
        switch (axis)
        {
            case 0: width = ny; height = nz; break;
            case 1: width = nx; height = nz; break;
            default: width = nx; height = ny; break;
        }
        int channels = h.Datatype == 128 ? 3 : 1;
        if ((long)width * height * channels > options.MaxSamples)
            throw new InvalidImageException(source, $"NIfTI: slice {width}x{height} exceeds {options.MaxSamples} samples");
        var stored = new double[(long)width * height * channels];
        long volBase = off + options.Volume * volumeVoxels * bytes;
        var span = data.AsSpan();
        for (int r = 0; r < height; r++)
        {
            for (int c = 0; c < width; c++)
            {
                long i, j, k;
                switch (axis)
                {
                    case 0: i = index; j = c; k = r; break;
                    case 1: i = c; j = index; k = r; break;
                    default: i = c; j = r; k = index; break;
                }
                long vox = i + nx * (j + (long)ny * k);
                long p = volBase + vox * bytes;
                long o = ((long)r * width + c) * channels;
                if (channels == 3)
                {
                    stored[o] = data[p]; stored[o + 1] = data[p + 1]; stored[o + 2] = data[p + 2];
                }
                else stored[o] = ReadVoxel(span.Slice((int)p, bytes), h.Datatype, h.BigEndian);
            }
        }

        double slope = 1, inter = 0;
        double[]? rescaled = null;
        if (h.HasScaling)
        {
            slope = h.SclSlope;
            inter = float.IsFinite(h.SclInter) ? h.SclInter : 0;
            if (slope != 1 || inter != 0)
            {
                rescaled = new double[stored.Length];
                for (int q = 0; q < stored.Length; q++) rescaled[q] = stored[q] * slope + inter;
            }
        }
        bool isFloat = h.Datatype is 16 or 64;
        var meta = new ImageMetadata
        {
            Modality = null,
            PhotometricInterpretation = channels == 3 ? "RGB" : "MONOCHROME2",
            RescaleSlope = slope,
            RescaleIntercept = inter,
            NumberOfFrames = nAxis,
            FrameIndex = index,
            IsSigned = h.Datatype is 4 or 8 or 256 or 1024 || isFloat,
        };
        return new DecodedImage(width, height, channels, channels == 3 ? 8 : bytes * 8, ImageFormat.Nifti, stored, rescaled, meta);
    }

    private static double ReadVoxel(ReadOnlySpan<byte> s, short type, bool be) => type switch
    {
        2 => s[0],
        256 => (sbyte)s[0],
        4 => be ? BinaryPrimitives.ReadInt16BigEndian(s) : BinaryPrimitives.ReadInt16LittleEndian(s),
        512 => be ? BinaryPrimitives.ReadUInt16BigEndian(s) : BinaryPrimitives.ReadUInt16LittleEndian(s),
        8 => be ? BinaryPrimitives.ReadInt32BigEndian(s) : BinaryPrimitives.ReadInt32LittleEndian(s),
        768 => be ? BinaryPrimitives.ReadUInt32BigEndian(s) : BinaryPrimitives.ReadUInt32LittleEndian(s),
        1024 => be ? BinaryPrimitives.ReadInt64BigEndian(s) : BinaryPrimitives.ReadInt64LittleEndian(s),
        1280 => be ? BinaryPrimitives.ReadUInt64BigEndian(s) : BinaryPrimitives.ReadUInt64LittleEndian(s),
        16 => be ? BinaryPrimitives.ReadSingleBigEndian(s) : BinaryPrimitives.ReadSingleLittleEndian(s),
        _ => be ? BinaryPrimitives.ReadDoubleBigEndian(s) : BinaryPrimitives.ReadDoubleLittleEndian(s),
    };

    /// <summary>
    /// Inflates a .nii.gz: first the header, then only the bytes the header says the image needs
    /// (vox_offset + all voxels), never more than <see cref="ImageLoadOptions.MaxFileBytes"/> - a gzip bomb cannot
    /// make us allocate beyond what a well-formed header of that size implies.
    /// </summary>
    private static byte[] Gunzip(byte[] gz, string source, ImageLoadOptions options)
    {
        try
        {
            using var z = new GZipStream(new MemoryStream(gz), CompressionMode.Decompress);
            var head = new byte[HeaderSize];
            int got = ReadFully(z, head, 0, HeaderSize);
            var h = ReadHeader(head.AsSpan(0, got), source);
            var (bytes, _) = TypeInfo(h.Datatype, source);
            long voxels = 1;
            for (int d = 0; d < h.Rank; d++)
            {
                voxels *= h.Size(d);
                if (voxels > options.MaxFileBytes) break;
            }
            if (!float.IsFinite(h.VoxOffset) || h.VoxOffset < HeaderSize) throw new InvalidImageException(source, $"NIfTI: vox_offset {h.VoxOffset} is below 348");
            long needed = (long)h.VoxOffset + voxels * bytes;
            if (needed > options.MaxFileBytes || needed > int.MaxValue)
                throw new InvalidImageException(source, $"NIfTI: header promises {needed} bytes, above the {Math.Min(options.MaxFileBytes, int.MaxValue)}-byte limit");
            var all = new byte[needed];
            head.AsSpan(0, got).CopyTo(all);
            int total = got + ReadFully(z, all, got, (int)needed - got);
            if (total < needed)
                throw new InvalidImageException(source, $"NIfTI: gzip stream holds {total} bytes but the header needs {needed} (vox_offset {h.VoxOffset} + {voxels} voxels x {bytes} bytes)");
            return all;
        }
        catch (InvalidDataException e)
        {
            throw new InvalidImageException(source, $"NIfTI: corrupt gzip stream ({e.Message})", e);
        }
    }

    private static int ReadFully(Stream s, byte[] buf, int offset, int count)
    {
        int got = 0;
        while (got < count)
        {
            int n = s.Read(buf, offset + got, count - got);
            if (n == 0) break;
            got += n;
        }
        return got;
    }
}
