using System.Buffers.Binary;

namespace MedVL.Vision.Codecs;

/// <summary>
/// Decodes one frame of DICOM pixel data (PS3.3 C.7.6.3 Image Pixel module; PS3.5 §8 and Annex G RLE):
/// native (uncompressed) little/big endian data with any BitsAllocated in {1, 8, 16, 32}, BitsStored/HighBit
/// masking and two's-complement sign extension (PixelRepresentation = 1), planar configuration, multi-frame;
/// RLE Lossless; JPEG Baseline via <see cref="JpegDecoder"/>. Other compressed syntaxes (JPEG-LS, JPEG 2000,
/// JPEG lossless...) raise <see cref="InvalidImageException"/> naming the transfer syntax.
/// Stored values are returned as the file holds them (YBR stays YBR, MONOCHROME1 is not inverted, PALETTE COLOR
/// keeps indices); the rescale (0028,1052/1053) is applied to form <see cref="DecodedImage.RescaledValues"/>.
/// </summary>
public static class DicomDecoder
{
    public static DecodedImage Decode(byte[] data, string source = "<stream>", ImageLoadOptions? options = null)
    {
        options ??= new ImageLoadOptions();
        var ds = DicomDataset.Read(data, source, options);
        return Decode(ds, options);
    }

    public static DecodedImage Decode(DicomDataset ds, ImageLoadOptions? options = null)
    {
        options ??= new ImageLoadOptions();
        string src = ds.Source;
        if (ds.NativePixelData is null && ds.Fragments is null)
            throw new InvalidImageException(src, "DICOM: no Pixel Data (7FE0,0010) element");

        int rows = Req(ds, 0x00280010, "Rows (0028,0010)");
        int cols = Req(ds, 0x00280011, "Columns (0028,0011)");
        int bitsAllocated = Req(ds, 0x00280100, "BitsAllocated (0028,0100)");
        int bitsStored = ds.GetInt(0x00280101) ?? bitsAllocated;
        int highBit = ds.GetInt(0x00280102) ?? bitsStored - 1;
        int pixelRep = ds.GetInt(0x00280103) ?? 0;
        int spp = ds.GetInt(0x00280002) ?? 1;
        int planar = ds.GetInt(0x00280006) ?? 0;
        int frames = Math.Max(1, ds.GetInt(0x00280008) ?? 1);
        string photometric = ds.GetString(0x00280004) ?? (spp == 1 ? "MONOCHROME2" : "RGB");

        if (rows <= 0 || cols <= 0) throw new InvalidImageException(src, $"DICOM: Rows/Columns {rows}x{cols} must be positive");
        if (bitsAllocated is not (1 or 8 or 16 or 32))
            throw new InvalidImageException(src, $"DICOM: BitsAllocated (0028,0100) = {bitsAllocated}, expected 1, 8, 16 or 32");
        if (bitsStored < 1 || bitsStored > bitsAllocated)
            throw new InvalidImageException(src, $"DICOM: BitsStored (0028,0101) = {bitsStored} must be in 1..BitsAllocated ({bitsAllocated})");
        if (highBit < bitsStored - 1 || highBit >= bitsAllocated)
            throw new InvalidImageException(src, $"DICOM: HighBit (0028,0102) = {highBit} inconsistent with BitsStored {bitsStored} / BitsAllocated {bitsAllocated}");
        if (spp is not (1 or 3)) throw new InvalidImageException(src, $"DICOM: SamplesPerPixel (0028,0002) = {spp}, expected 1 or 3");
        if (pixelRep is not (0 or 1)) throw new InvalidImageException(src, $"DICOM: PixelRepresentation (0028,0103) = {pixelRep}, expected 0 or 1");
        if (options.Frame < 0 || options.Frame >= frames)
            throw new InvalidImageException(src, $"DICOM: frame {options.Frame} requested but NumberOfFrames (0028,0008) = {frames}");
        long samplesPerFrame = (long)rows * cols * spp;
        if (samplesPerFrame > options.MaxSamples)
            throw new InvalidImageException(src, $"DICOM: {cols}x{rows}x{spp} frame exceeds the limit of {options.MaxSamples} samples");

        string ts = ds.TransferSyntaxUid;
        uint[] raw; // one frame, interleaved samples, raw bit patterns in the low bitsAllocated bits
        int outBits = bitsAllocated;
        bool jpeg = false;
        if (ds.NativePixelData is not null)
        {
            raw = photometric == "YBR_FULL_422" && spp == 3 && bitsAllocated == 8 && cols % 2 == 0
                  && ds.NativePixelData.Length < samplesPerFrame * frames
                ? ReadYbr422Frame(ds, ds.NativePixelData, rows, cols, options.Frame)
                : ReadNativeFrame(ds, ds.NativePixelData, rows, cols, spp, bitsAllocated, planar, options.Frame);
        }
        else if (ts == DicomDataset.TransferSyntax.RleLossless)
        {
            raw = DecodeRleFrame(src, FrameBytes(ds, frames, options.Frame), rows, cols, spp, bitsAllocated);
        }
        else if (ts is DicomDataset.TransferSyntax.JpegBaseline or DicomDataset.TransferSyntax.JpegExtended)
        {
            var img = JpegDecoder.Decode(FrameBytes(ds, frames, options.Frame), src, options);
            if (img.Width != cols || img.Height != rows || img.Channels != spp)
                throw new InvalidImageException(src, $"DICOM: embedded JPEG is {img.Width}x{img.Height}x{img.Channels}, dataset says {cols}x{rows}x{spp}");
            raw = new uint[img.StoredValues.Length];
            for (int i = 0; i < raw.Length; i++) raw[i] = (uint)img.StoredValues[i];
            jpeg = true;
            outBits = 8;
            // The JPEG codec already converted YCbCr to RGB (as pydicom+Pillow do).
            if (spp == 3) photometric = "RGB";
        }
        else
        {
            throw new InvalidImageException(src, $"DICOM: transfer syntax {ts} ({DicomDataset.TransferSyntaxName(ts)}) is not supported; " +
                "supported: Implicit/Explicit VR Little Endian, Explicit VR Big Endian, Deflated, RLE Lossless, JPEG Baseline");
        }

        var stored = new double[raw.Length];
        if (jpeg)
        {
            for (int i = 0; i < raw.Length; i++) stored[i] = raw[i];
        }
        else
        {
            // PS3.5 §8.1.1: the stored bits occupy HighBit-BitsStored+1 .. HighBit; values are two's complement when signed.
            int shift = highBit + 1 - bitsStored;
            ulong mask = (1UL << bitsStored) - 1;
            long signBit = 1L << (bitsStored - 1);
            for (int i = 0; i < raw.Length; i++)
            {
                long v = (long)((raw[i] >> shift) & mask);
                if (pixelRep == 1 && (v & signBit) != 0) v -= 1L << bitsStored;
                stored[i] = v;
            }
        }

        double slope = ds.GetDouble(0x00281053) ?? 1.0, intercept = ds.GetDouble(0x00281052) ?? 0.0;
        if (slope == 0 && !ds.Contains(0x00281053)) slope = 1.0;
        double[]? rescaled = null;
        if (slope != 1.0 || intercept != 0.0)
        {
            rescaled = new double[stored.Length];
            for (int i = 0; i < stored.Length; i++) rescaled[i] = stored[i] * slope + intercept;
        }

        var meta = new ImageMetadata
        {
            Modality = ds.GetString(0x00080060),
            PhotometricInterpretation = photometric,
            RescaleSlope = slope,
            RescaleIntercept = intercept,
            WindowCenter = ds.GetDouble(0x00281050),
            WindowWidth = ds.GetDouble(0x00281051),
            TransferSyntaxUid = ts,
            NumberOfFrames = frames,
            FrameIndex = options.Frame,
            IsSigned = pixelRep == 1 && !jpeg,
        };
        return new DecodedImage(cols, rows, spp, jpeg ? 8 : bitsStored, ImageFormat.Dicom, stored, rescaled, meta);
    }

    private static int Req(DicomDataset ds, uint tag, string name)
        => ds.GetInt(tag) ?? throw new InvalidImageException(ds.Source, $"DICOM: required attribute {name} is missing");

    private static uint[] ReadNativeFrame(DicomDataset ds, byte[] px, int rows, int cols, int spp, int bitsAllocated, int planar, int frame)
    {
        long n = (long)rows * cols * spp;
        long frameBits = n * bitsAllocated;
        // PS3.5 §8.1.1: BitsAllocated = 1 frames are packed contiguously, not byte-aligned per frame.
        long startBit = frameBits * frame;
        if ((startBit + frameBits + 7) / 8 > px.Length)
            throw new InvalidImageException(ds.Source, $"DICOM: Pixel Data has {px.Length} bytes, frame {frame} needs bytes up to {(startBit + frameBits + 7) / 8} ({cols}x{rows}x{spp}, {bitsAllocated} bits)");
        var outv = new uint[n];
        bool be = ds.BigEndian;
        long byteStart = startBit / 8;
        for (long i = 0; i < n; i++)
        {
            uint v;
            switch (bitsAllocated)
            {
                case 1:
                    long b = startBit + i;
                    v = (uint)(px[b >> 3] >> (int)(b & 7)) & 1; // LSB first
                    break;
                case 8: v = px[byteStart + i]; break;
                case 16:
                    v = be ? BinaryPrimitives.ReadUInt16BigEndian(px.AsSpan((int)(byteStart + 2 * i))) : BinaryPrimitives.ReadUInt16LittleEndian(px.AsSpan((int)(byteStart + 2 * i)));
                    break;
                default:
                    v = be ? BinaryPrimitives.ReadUInt32BigEndian(px.AsSpan((int)(byteStart + 4 * i))) : BinaryPrimitives.ReadUInt32LittleEndian(px.AsSpan((int)(byteStart + 4 * i)));
                    break;
            }
            outv[i] = v;
        }
        return planar == 1 && spp > 1 ? PlanarToInterleaved(outv, rows * cols, spp) : outv;
    }

    /// <summary>
    /// Native YBR_FULL_422 (PS3.3 C.7.6.3.1.2): each horizontal pixel pair is stored as Y1 Y2 Cb Cr; expanded to
    /// one Y Cb Cr triple per pixel (chroma repeated), as pydicom's numpy handler does. Values stay YBR.
    /// </summary>
    private static uint[] ReadYbr422Frame(DicomDataset ds, byte[] px, int rows, int cols, int frame)
    {
        long frameBytes = (long)rows * cols * 2, start = frameBytes * frame;
        if (start + frameBytes > px.Length)
            throw new InvalidImageException(ds.Source, $"DICOM: YBR_FULL_422 Pixel Data has {px.Length} bytes, frame {frame} needs bytes up to {start + frameBytes}");
        var o = new uint[(long)rows * cols * 3];
        for (long pair = 0; pair < (long)rows * cols / 2; pair++)
        {
            long s = start + pair * 4;
            uint y1 = px[s], y2 = px[s + 1], cb = px[s + 2], cr = px[s + 3];
            long d = pair * 6;
            o[d] = y1; o[d + 1] = cb; o[d + 2] = cr; o[d + 3] = y2; o[d + 4] = cb; o[d + 5] = cr;
        }
        return o;
    }

    private static uint[] PlanarToInterleaved(uint[] planes, int pixels, int spp)
    {
        var o = new uint[planes.Length];
        for (int s = 0; s < spp; s++)
            for (int p = 0; p < pixels; p++) o[p * spp + s] = planes[s * pixels + p];
        return o;
    }

    /// <summary>The compressed bytes of one frame of encapsulated pixel data (PS3.5 §A.4).</summary>
    internal static byte[] FrameBytes(DicomDataset ds, int frames, int frame)
    {
        var frags = ds.Fragments!;
        if (frags.Count == 0) throw new InvalidImageException(ds.Source, "DICOM: encapsulated Pixel Data has no fragments");
        if (frames == 1) return Concat(frags, 0, frags.Count);
        if (frags.Count == frames) return frags[frame].Data;
        var bot = ds.BasicOffsetTable!;
        if (bot.Length == frames)
        {
            // Offsets are measured from the first byte of the first fragment's item tag.
            long baseOff = frags[0].Offset;
            long start = baseOff + bot[frame], end = frame + 1 < frames ? baseOff + bot[frame + 1] : long.MaxValue;
            int a = frags.FindIndex(f => f.Offset == start);
            if (a < 0) throw new InvalidImageException(ds.Source, $"DICOM: Basic Offset Table entry {frame} ({bot[frame]}) does not point at a fragment");
            int b = a;
            while (b < frags.Count && frags[b].Offset < end) b++;
            return Concat(frags, a, b);
        }
        throw new InvalidImageException(ds.Source, $"DICOM: cannot split {frags.Count} fragments into {frames} frames without a Basic Offset Table");
    }

    private static byte[] Concat(List<(long Offset, byte[] Data)> frags, int a, int b)
    {
        if (b - a == 1) return frags[a].Data;
        long total = 0;
        for (int i = a; i < b; i++) total += frags[i].Data.Length;
        var o = new byte[total];
        int p = 0;
        for (int i = a; i < b; i++) { frags[i].Data.CopyTo(o, p); p += frags[i].Data.Length; }
        return o;
    }

    /// <summary>
    /// RLE Lossless (PS3.5 Annex G): a 64-byte header with the segment count and up to 15 offsets, then one
    /// PackBits segment per byte plane, most significant byte of each sample first, samples in order.
    /// </summary>
    internal static uint[] DecodeRleFrame(string src, byte[] frame, int rows, int cols, int spp, int bitsAllocated)
    {
        if (frame.Length < 64) throw new InvalidImageException(src, $"DICOM RLE: frame of {frame.Length} bytes is shorter than the 64-byte RLE header");
        int bytesPerSample = bitsAllocated / 8;
        if (bitsAllocated % 8 != 0) throw new InvalidImageException(src, $"DICOM RLE: BitsAllocated {bitsAllocated} is not a multiple of 8");
        uint nseg = BinaryPrimitives.ReadUInt32LittleEndian(frame);
        int expected = bytesPerSample * spp;
        if (nseg != expected || nseg > 15)
            throw new InvalidImageException(src, $"DICOM RLE: header declares {nseg} segments, expected {expected} (SamplesPerPixel {spp} x {bytesPerSample} bytes)");
        int pixels = rows * cols;
        // PackBits expands at most 128 bytes per 2 input bytes: a frame this short cannot hold the image.
        if ((long)pixels * nseg > 64L * frame.Length + 128)
            throw new InvalidImageException(src, $"DICOM RLE: {frame.Length}-byte frame is too short for {cols}x{rows}x{spp} samples");
        var outv = new uint[pixels * spp];
        var seg = new byte[pixels];
        for (int s = 0; s < nseg; s++)
        {
            uint start = BinaryPrimitives.ReadUInt32LittleEndian(frame.AsSpan(4 + 4 * s));
            uint end = s + 1 < nseg ? BinaryPrimitives.ReadUInt32LittleEndian(frame.AsSpan(8 + 4 * s)) : (uint)frame.Length;
            if (start < 64 || start > end || end > frame.Length)
                throw new InvalidImageException(src, $"DICOM RLE: segment {s} offsets {start}..{end} are outside the {frame.Length}-byte frame");
            PackBits(src, frame.AsSpan((int)start, (int)(end - start)), seg, s);
            int sample = s / bytesPerSample;
            int shift = 8 * (bytesPerSample - 1 - s % bytesPerSample);
            for (int p = 0; p < pixels; p++) outv[p * spp + sample] |= (uint)seg[p] << shift;
        }
        return outv;
    }

    private static void PackBits(string src, ReadOnlySpan<byte> input, byte[] output, int segment)
    {
        int i = 0, o = 0;
        while (o < output.Length)
        {
            if (i >= input.Length)
                throw new InvalidImageException(src, $"DICOM RLE: segment {segment} ends after {o} of {output.Length} bytes");
            sbyte h = (sbyte)input[i++];
            if (h >= 0)
            {
                int count = h + 1;
                if (i + count > input.Length || o + count > output.Length)
                    throw new InvalidImageException(src, $"DICOM RLE: literal run in segment {segment} overruns the segment or the frame");
                input.Slice(i, count).CopyTo(output.AsSpan(o));
                i += count; o += count;
            }
            else if (h != -128)
            {
                int count = 1 - h;
                if (i >= input.Length || o + count > output.Length)
                    throw new InvalidImageException(src, $"DICOM RLE: replicate run in segment {segment} overruns the segment or the frame");
                output.AsSpan(o, count).Fill(input[i++]);
                o += count;
            }
        }
    }
}
