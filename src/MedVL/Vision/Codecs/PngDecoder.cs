using System.Buffers.Binary;
using System.IO.Compression;

namespace MedVL.Vision.Codecs;

/// <summary>
/// PNG decoder written from the PNG specification (W3C 2nd ed. / RFC 2083): all colour types and bit depths,
/// PLTE + tRNS, Adam7 interlace, the five filter types, CRC-32 on every chunk, zlib via <see cref="ZLibStream"/>
/// with the inflated size bounded by what IHDR implies.
/// Output channels: gray 1, gray+alpha 2, RGB 3, RGBA 4; palette images are expanded to RGB (RGBA when tRNS is
/// present); a tRNS colour key on gray/RGB images becomes an alpha channel (like libpng's png_set_tRNS_to_alpha).
/// Stored values are the raw samples (0..2^bitDepth-1); BitDepth is 8 for palette images.
/// </summary>
public static class PngDecoder
{
    public static ReadOnlySpan<byte> Signature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    public static bool IsPng(ReadOnlySpan<byte> data) => data.Length >= 8 && data[..8].SequenceEqual(Signature);

    public static DecodedImage Decode(byte[] data, string source = "<stream>", ImageLoadOptions? options = null)
    {
        options ??= new ImageLoadOptions();
        try { return DecodeCore(data, source, options); }
        catch (InvalidImageException) { throw; }
        catch (InvalidDataException e) { throw new InvalidImageException(source, $"PNG: corrupt zlib stream in IDAT ({e.Message})", e); }
    }

    private static DecodedImage DecodeCore(byte[] data, string source, ImageLoadOptions options)
    {
        if (!IsPng(data)) throw new InvalidImageException(source, "PNG: missing 8-byte PNG signature");
        int pos = 8;
        int width = 0, height = 0, bitDepth = 0, colorType = -1, interlace = 0;
        byte[]? palette = null; // RGB triples
        byte[]? paletteAlpha = null;
        int[]? transKey = null; // gray: [g], rgb: [r,g,b]
        var idat = new MemoryStream();
        bool seenIhdr = false, seenIend = false;

        while (!seenIend)
        {
            if (pos + 8 > data.Length) throw new InvalidImageException(source, $"PNG: truncated at byte {pos}: expected a chunk header (IEND missing)");
            uint lenU = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(pos));
            if (lenU > int.MaxValue) throw new InvalidImageException(source, $"PNG: chunk length {lenU} at byte {pos} exceeds 2^31-1");
            int len = (int)lenU;
            var typeSpan = data.AsSpan(pos + 4, 4);
            string type = System.Text.Encoding.ASCII.GetString(typeSpan);
            if ((long)pos + 12 + len > data.Length)
                throw new InvalidImageException(source, $"PNG: chunk '{Printable(type)}' at byte {pos} declares {len} bytes but the file ends at {data.Length}");
            var body = data.AsSpan(pos + 8, len);
            uint crcStored = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(pos + 8 + len));
            uint crc = Crc32.Compute(data.AsSpan(pos + 4, len + 4));
            if (crc != crcStored)
                throw new InvalidImageException(source, $"PNG: CRC mismatch in chunk '{Printable(type)}' at byte {pos} (stored 0x{crcStored:X8}, computed 0x{crc:X8})");
            pos += 12 + len;

            if (!seenIhdr && type != "IHDR") throw new InvalidImageException(source, $"PNG: first chunk is '{Printable(type)}', expected IHDR");
            switch (type)
            {
                case "IHDR":
                    if (seenIhdr) throw new InvalidImageException(source, "PNG: duplicate IHDR");
                    if (len != 13) throw new InvalidImageException(source, $"PNG: IHDR length {len}, expected 13");
                    seenIhdr = true;
                    uint w = BinaryPrimitives.ReadUInt32BigEndian(body), h = BinaryPrimitives.ReadUInt32BigEndian(body[4..]);
                    if (w == 0 || h == 0 || w > int.MaxValue || h > int.MaxValue)
                        throw new InvalidImageException(source, $"PNG: IHDR width/height {w}x{h} must be in 1..2^31-1");
                    width = (int)w; height = (int)h;
                    bitDepth = body[8]; colorType = body[9];
                    if (body[10] != 0) throw new InvalidImageException(source, $"PNG: IHDR compression method {body[10]}, expected 0");
                    if (body[11] != 0) throw new InvalidImageException(source, $"PNG: IHDR filter method {body[11]}, expected 0");
                    interlace = body[12];
                    if (interlace > 1) throw new InvalidImageException(source, $"PNG: IHDR interlace method {interlace}, expected 0 or 1");
                    bool ok = colorType switch
                    {
                        0 => bitDepth is 1 or 2 or 4 or 8 or 16,
                        3 => bitDepth is 1 or 2 or 4 or 8,
                        2 or 4 or 6 => bitDepth is 8 or 16,
                        _ => false,
                    };
                    if (!ok) throw new InvalidImageException(source, $"PNG: IHDR colour type {colorType} with bit depth {bitDepth} is not a valid combination");
                    long sampleCount = (long)width * height * 4;
                    if (sampleCount > options.MaxSamples)
                        throw new InvalidImageException(source, $"PNG: {width}x{height} image exceeds the limit of {options.MaxSamples} samples");
                    break;
                case "PLTE":
                    if (len % 3 != 0 || len == 0 || len > 768) throw new InvalidImageException(source, $"PNG: PLTE length {len} must be a multiple of 3 in 3..768");
                    if (colorType == 3 && len / 3 > (1 << bitDepth))
                        throw new InvalidImageException(source, $"PNG: PLTE has {len / 3} entries, more than 2^{bitDepth}");
                    palette = body.ToArray();
                    break;
                case "tRNS":
                    if (colorType == 3)
                    {
                        if (palette is null) throw new InvalidImageException(source, "PNG: tRNS before PLTE");
                        if (len > palette.Length / 3) throw new InvalidImageException(source, $"PNG: tRNS has {len} entries but PLTE only {palette.Length / 3}");
                        paletteAlpha = body.ToArray();
                    }
                    else if (colorType == 0)
                    {
                        if (len != 2) throw new InvalidImageException(source, $"PNG: tRNS length {len} for grayscale, expected 2");
                        transKey = [BinaryPrimitives.ReadUInt16BigEndian(body)];
                    }
                    else if (colorType == 2)
                    {
                        if (len != 6) throw new InvalidImageException(source, $"PNG: tRNS length {len} for RGB, expected 6");
                        transKey = [BinaryPrimitives.ReadUInt16BigEndian(body), BinaryPrimitives.ReadUInt16BigEndian(body[2..]), BinaryPrimitives.ReadUInt16BigEndian(body[4..])];
                    }
                    else throw new InvalidImageException(source, $"PNG: tRNS is not allowed for colour type {colorType}");
                    break;
                case "IDAT":
                    idat.Write(body);
                    break;
                case "IEND":
                    seenIend = true;
                    break;
                default:
                    // Critical chunks (uppercase first letter) we don't know must not be ignored (PNG spec §5.4).
                    if ((typeSpan[0] & 0x20) == 0)
                        throw new InvalidImageException(source, $"PNG: unknown critical chunk '{Printable(type)}'");
                    break;
            }
        }
        if (colorType == 3 && palette is null) throw new InvalidImageException(source, "PNG: palette image without PLTE chunk");
        if (idat.Length == 0) throw new InvalidImageException(source, "PNG: no IDAT chunk");

        int channelsIn = colorType switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, 6 => 4, _ => 0 };
        int bitsPerPixel = channelsIn * bitDepth;
        int bpp = Math.Max(1, bitsPerPixel / 8); // filter byte distance, PNG spec §9.2

        // Pass geometry (Adam7: PNG spec §8.2) and total inflated size.
        ReadOnlySpan<int> x0 = interlace == 1 ? [0, 4, 0, 2, 0, 1, 0] : [0];
        ReadOnlySpan<int> y0 = interlace == 1 ? [0, 0, 4, 0, 2, 0, 1] : [0];
        ReadOnlySpan<int> dx = interlace == 1 ? [8, 8, 4, 4, 2, 2, 1] : [1];
        ReadOnlySpan<int> dy = interlace == 1 ? [8, 8, 8, 4, 4, 2, 2] : [1];
        long total = 0;
        for (int p = 0; p < x0.Length; p++)
        {
            long pw = (width - x0[p] + dx[p] - 1) / dx[p], ph = (height - y0[p] + dy[p] - 1) / dy[p];
            if (pw > 0 && ph > 0) total += ph * (1 + (pw * bitsPerPixel + 7) / 8);
        }
        if (total > int.MaxValue) throw new InvalidImageException(source, $"PNG: {width}x{height} image is too large to decode ({total} filtered bytes)");
        // Deflate cannot expand more than ~1032:1 (RFC 1951 max match 258 per ~2 bits); refuse before allocating.
        if (total > idat.Length * 1032L + 1024)
            throw new InvalidImageException(source, $"PNG: IDAT holds {idat.Length} compressed bytes, too few for a {width}x{height} image ({total} bytes)");

        var raw = new byte[total];
        idat.Position = 0;
        using (var z = new ZLibStream(idat, CompressionMode.Decompress))
        {
            int got = 0;
            while (got < raw.Length)
            {
                int n = z.Read(raw, got, raw.Length - got);
                if (n == 0) throw new InvalidImageException(source, $"PNG: IDAT data inflates to {got} bytes, expected {total}");
                got += n;
            }
        }

        int outChannels = colorType switch
        {
            3 => paletteAlpha is not null ? 4 : 3,
            0 => transKey is not null ? 2 : 1,
            2 => transKey is not null ? 4 : 3,
            _ => channelsIn,
        };
        int outDepth = colorType == 3 ? 8 : bitDepth;
        var values = new double[(long)width * height * outChannels];
        int maxVal = (1 << bitDepth) - 1;

        int offset = 0;
        var samples = new int[channelsIn];
        for (int p = 0; p < x0.Length; p++)
        {
            int pw = (width - x0[p] + dx[p] - 1) / dx[p], ph = (height - y0[p] + dy[p] - 1) / dy[p];
            if (pw <= 0 || ph <= 0) continue;
            int stride = (int)(((long)pw * bitsPerPixel + 7) / 8);
            Span<byte> prev = Span<byte>.Empty;
            for (int r = 0; r < ph; r++)
            {
                byte filter = raw[offset];
                var line = raw.AsSpan(offset + 1, stride);
                Unfilter(filter, line, prev, bpp, source, r);
                prev = line;
                offset += 1 + stride;
                int y = y0[p] + r * dy[p];
                for (int c = 0; c < pw; c++)
                {
                    int x = x0[p] + c * dx[p];
                    ReadSamples(line, c, channelsIn, bitDepth, samples);
                    long o = ((long)y * width + x) * outChannels;
                    switch (colorType)
                    {
                        case 3:
                            int idx = samples[0];
                            if (idx * 3 + 2 >= palette!.Length)
                                throw new InvalidImageException(source, $"PNG: palette index {idx} out of range (PLTE has {palette.Length / 3} entries)");
                            values[o] = palette[idx * 3]; values[o + 1] = palette[idx * 3 + 1]; values[o + 2] = palette[idx * 3 + 2];
                            if (paletteAlpha is not null) values[o + 3] = idx < paletteAlpha.Length ? paletteAlpha[idx] : 255;
                            break;
                        case 0 when transKey is not null:
                            values[o] = samples[0];
                            values[o + 1] = samples[0] == transKey[0] ? 0 : maxVal;
                            break;
                        case 2 when transKey is not null:
                            values[o] = samples[0]; values[o + 1] = samples[1]; values[o + 2] = samples[2];
                            values[o + 3] = samples[0] == transKey[0] && samples[1] == transKey[1] && samples[2] == transKey[2] ? 0 : maxVal;
                            break;
                        default:
                            for (int k = 0; k < channelsIn; k++) values[o + k] = samples[k];
                            break;
                    }
                }
            }
        }

        string photometric = outChannels <= 2 ? "MONOCHROME2" : "RGB";
        return new DecodedImage(width, height, outChannels, outDepth, ImageFormat.Png, values,
            metadata: new ImageMetadata { PhotometricInterpretation = photometric });
    }

    private static void ReadSamples(ReadOnlySpan<byte> line, int pixel, int channels, int bitDepth, int[] dst)
    {
        switch (bitDepth)
        {
            case 8:
                for (int k = 0; k < channels; k++) dst[k] = line[pixel * channels + k];
                break;
            case 16:
                for (int k = 0; k < channels; k++)
                {
                    int i = (pixel * channels + k) * 2;
                    dst[k] = (line[i] << 8) | line[i + 1];
                }
                break;
            default: // 1, 2, 4 bits: single channel, packed MSB first (PNG spec §7.2)
                int bit = pixel * bitDepth;
                int shift = 8 - bitDepth - (bit & 7);
                dst[0] = (line[bit >> 3] >> shift) & ((1 << bitDepth) - 1);
                break;
        }
    }

    /// <summary>Reverses one scanline's filter in place (PNG spec §9.2); <paramref name="prev"/> is empty on a pass's first row.</summary>
    internal static void Unfilter(byte filter, Span<byte> line, ReadOnlySpan<byte> prev, int bpp, string source, int row)
    {
        int n = line.Length;
        switch (filter)
        {
            case 0: break;
            case 1:
                for (int i = bpp; i < n; i++) line[i] += line[i - bpp];
                break;
            case 2:
                if (prev.IsEmpty) break;
                for (int i = 0; i < n; i++) line[i] += prev[i];
                break;
            case 3:
                for (int i = 0; i < n; i++)
                {
                    int a = i >= bpp ? line[i - bpp] : 0, b = prev.IsEmpty ? 0 : prev[i];
                    line[i] += (byte)((a + b) >> 1);
                }
                break;
            case 4:
                for (int i = 0; i < n; i++)
                {
                    int a = i >= bpp ? line[i - bpp] : 0, b = prev.IsEmpty ? 0 : prev[i], c = i >= bpp && !prev.IsEmpty ? prev[i - bpp] : 0;
                    line[i] += (byte)Paeth(a, b, c);
                }
                break;
            default:
                throw new InvalidImageException(source, $"PNG: invalid filter type {filter} on scanline {row} (expected 0..4)");
        }
    }

    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c;
        int pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        if (pa <= pb && pa <= pc) return a;
        return pb <= pc ? b : c;
    }

    private static string Printable(string s) => new(s.Select(ch => ch is >= ' ' and <= '~' ? ch : '?').ToArray());
}
