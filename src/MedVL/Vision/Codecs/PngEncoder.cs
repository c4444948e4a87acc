using System.Buffers.Binary;
using System.IO.Compression;

namespace MedVL.Vision.Codecs;

/// <summary>
/// PNG encoder: 8- or 16-bit gray (1 channel), gray+alpha (2), RGB (3), RGBA (4), non-interlaced.
/// Each scanline gets the filter with the smallest sum of absolute signed residuals (the heuristic the PNG
/// spec §12.8 recommends); the filtered data is compressed with <see cref="ZLibStream"/>.
/// </summary>
public static class PngEncoder
{
    /// <summary>Encodes interleaved 8-bit samples (row-major, channel-last).</summary>
    public static byte[] Encode(ReadOnlySpan<byte> pixels, int width, int height, int channels,
        CompressionLevel level = CompressionLevel.Optimal)
    {
        Validate(pixels.Length, width, height, channels);
        return EncodeRows(pixels, width, height, channels, 8, level);
    }

    /// <summary>Encodes interleaved 16-bit samples (row-major, channel-last); written big-endian as PNG requires.</summary>
    public static byte[] Encode16(ReadOnlySpan<ushort> pixels, int width, int height, int channels,
        CompressionLevel level = CompressionLevel.Optimal)
    {
        Validate(pixels.Length, width, height, channels);
        var be = new byte[pixels.Length * 2];
        for (int i = 0; i < pixels.Length; i++) BinaryPrimitives.WriteUInt16BigEndian(be.AsSpan(2 * i), pixels[i]);
        return EncodeRows(be, width, height, channels, 16, level);
    }

    /// <summary>
    /// Encodes a decoded image's stored values: 16-bit when <see cref="DecodedImage.BitDepth"/> &gt; 8, else 8-bit.
    /// Values are rounded and clamped to the target range (sub-8-bit gray is scaled up to 0..255).
    /// </summary>
    public static byte[] Encode(DecodedImage image, CompressionLevel level = CompressionLevel.Optimal)
    {
        var v = image.StoredValues;
        if (image.BitDepth > 8)
        {
            var s = new ushort[v.Length];
            for (int i = 0; i < v.Length; i++) s[i] = (ushort)Math.Clamp(Math.Round(v[i]), 0, 65535);
            return Encode16(s, image.Width, image.Height, image.Channels, level);
        }
        double scale = image.BitDepth < 8 ? 255.0 / ((1 << image.BitDepth) - 1) : 1.0;
        var b = new byte[v.Length];
        for (int i = 0; i < v.Length; i++) b[i] = (byte)Math.Clamp(Math.Round(v[i] * scale), 0, 255);
        return Encode(b, image.Width, image.Height, image.Channels, level);
    }

    /// <summary>Encodes and writes atomically (temporary file, then rename): an interrupted save leaves no partial PNG.</summary>
    public static void Save(string path, ReadOnlySpan<byte> pixels, int width, int height, int channels)
    {
        var png = Encode(pixels, width, height, channels);
        MedVL.IO.AtomicFile.Write(path, s => s.Write(png));
    }

    private static void Validate(int length, int width, int height, int channels)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        if (channels is < 1 or > 4) throw new ArgumentOutOfRangeException(nameof(channels), "channels must be 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA)");
        if ((long)width * height * channels != length)
            throw new ArgumentException($"pixel buffer has {length} samples, expected {width}x{height}x{channels}");
    }

    /// <summary>Filters and compresses big-endian sample bytes.</summary>
    private static byte[] EncodeRows(ReadOnlySpan<byte> raw, int width, int height, int channels, int depth, CompressionLevel level)
    {
        int bpp = channels * depth / 8;
        int stride = width * bpp;
        var prev = new byte[stride];
        var cur = new byte[stride];
        var cand = new byte[5][];
        for (int f = 0; f < 5; f++) cand[f] = new byte[stride];

        var compressed = new MemoryStream();
        using (var z = new ZLibStream(compressed, level, leaveOpen: true))
        {
            for (int y = 0; y < height; y++)
            {
                raw.Slice(y * stride, stride).CopyTo(cur);
                int best = 0; long bestScore = long.MaxValue;
                for (int f = 0; f < 5; f++)
                {
                    var o = cand[f];
                    long score = 0;
                    for (int i = 0; i < stride; i++)
                    {
                        int a = i >= bpp ? cur[i - bpp] : 0, b = y > 0 ? prev[i] : 0, c = i >= bpp && y > 0 ? prev[i - bpp] : 0;
                        int pred = f switch { 0 => 0, 1 => a, 2 => b, 3 => (a + b) >> 1, _ => Paeth(a, b, c) };
                        byte r = (byte)(cur[i] - pred);
                        o[i] = r;
                        score += r < 128 ? r : 256 - r;
                    }
                    if (score < bestScore) { bestScore = score; best = f; }
                }
                z.WriteByte((byte)best);
                z.Write(cand[best], 0, stride);
                (prev, cur) = (cur, prev);
            }
        }

        var outMs = new MemoryStream();
        outMs.Write(PngDecoder.Signature);
        Span<byte> ihdr = stackalloc byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, (uint)width);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr[4..], (uint)height);
        ihdr[8] = (byte)depth;
        ihdr[9] = channels switch { 1 => 0, 2 => 4, 3 => 2, _ => 6 };
        ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
        WriteChunk(outMs, "IHDR"u8, ihdr);
        WriteChunk(outMs, "IDAT"u8, compressed.GetBuffer().AsSpan(0, (int)compressed.Length));
        WriteChunk(outMs, "IEND"u8, ReadOnlySpan<byte>.Empty);
        return outMs.ToArray();
    }

    private static void WriteChunk(Stream s, ReadOnlySpan<byte> type, ReadOnlySpan<byte> body)
    {
        Span<byte> hdr = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32BigEndian(hdr, (uint)body.Length);
        type.CopyTo(hdr[4..]);
        s.Write(hdr);
        s.Write(body);
        uint crc = Crc32.Update(0xFFFFFFFFu, type);
        crc = Crc32.Update(crc, body) ^ 0xFFFFFFFFu;
        Span<byte> c = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(c, crc);
        s.Write(c);
    }

    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c;
        int pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        if (pa <= pb && pa <= pc) return a;
        return pb <= pc ? b : c;
    }
}
