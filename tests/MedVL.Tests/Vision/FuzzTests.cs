using System.Buffers.Binary;
using MedVL.Vision.Codecs;

namespace MedVL.Tests.Vision;

/// <summary>
/// Truncated and byte-flipped inputs (fixed seeds) must either decode or throw <see cref="InvalidImageException"/>
/// raised by the decoder itself - never IndexOutOfRange/NullReference/OOM/hangs (a wrapped internal exception fails too).
/// </summary>
public class FuzzTests
{
    private static readonly ImageLoadOptions Opts = new() { MaxSamples = 2L * 1024 * 1024, MaxFileBytes = 64L * 1024 * 1024 };

    public static IEnumerable<object[]> Files() => new[]
    {
        "png_rgb_8bit_adam7_37x23.png", "png_pal_4bit_plain_37x23.png", "png_gray_16bit_adam7_37x23.png", "skimage_microaneurysms.png",
        "jpeg_420_baseline.jpg", "jpeg_422_progressive.jpg", "jpeg_420_restart2.jpg", "jpeg_gray_progressive.jpg", "jpeg_adobe_rgb.jpg",
        "CT_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm", "image_dfl.dcm", "SC_rgb_rle_2frame.dcm",
        "SC_rgb_jpeg_dcmtk.dcm", "nested_priv_SQ.dcm",
        "anatomical.nii", "synthetic_int16_be.nii.gz", "synthetic_float64_le.nii",
    }.Select(f => new object[] { f });

    private static void Check(byte[] data, string what)
    {
        try
        {
            ImageLoader.Load(data, what + ".bin", Opts);
        }
        catch (InvalidImageException e)
        {
            Assert.True(e.InnerException is null or InvalidDataException or InvalidImageException,
                $"{what}: decoder bug surfaced as {e.InnerException?.GetType().Name}: {e.InnerException}");
            Assert.Contains(what + ".bin", e.Message);
        }
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void TruncatedFilesFailCleanly(string file)
    {
        var data = File.ReadAllBytes(TestNpy.FilePath(file));
        var cuts = Enumerable.Range(1, 40).Select(i => (int)((long)data.Length * i / 41)).Concat([0, 1, 2, 3, 8, 132, data.Length - 1]).Distinct();
        foreach (int n in cuts)
            if (n >= 0 && n < data.Length)
            {
                var t = data.AsSpan(0, n).ToArray();
                if (t.Length == 0) { Assert.Throws<InvalidImageException>(() => ImageLoader.Load(t, "empty", Opts)); continue; }
                try { ImageLoader.Load(t, $"{file}-cut{n}.bin", Opts); }
                catch (InvalidImageException e)
                {
                    Assert.True(e.InnerException is null or InvalidDataException or InvalidImageException, $"{file} cut at {n}: {e.InnerException}");
                }
            }
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void ByteFlippedFilesFailCleanly(string file)
    {
        var data = File.ReadAllBytes(TestNpy.FilePath(file));
        var rng = new Random(file.Length * 7919 + data.Length); // fixed seed per file
        for (int iter = 0; iter < 150; iter++)
        {
            var m = (byte[])data.Clone();
            int flips = 1 + rng.Next(4);
            for (int k = 0; k < flips; k++)
            {
                // Mostly hit headers (first 2 KB), where structure lives; sometimes anywhere.
                int pos = rng.Next(4) == 0 ? rng.Next(m.Length) : rng.Next(Math.Min(m.Length, 2048));
                m[pos] = rng.Next(3) == 0 ? (byte)rng.Next(256) : (byte)(m[pos] ^ (1 << rng.Next(8)));
            }
            if (PngDecoder.IsPng(m) && iter % 2 == 0) FixPngCrcs(m); // get past the CRC check to fuzz deeper
            Check(m, $"{file}-flip{iter}");
        }
    }

    private static void FixPngCrcs(byte[] d)
    {
        int p = 8;
        while (p + 12 <= d.Length)
        {
            uint len = BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(p));
            if (len > d.Length - p - 12) return;
            uint crc = Crc32.Compute(d.AsSpan(p + 4, (int)len + 4));
            BinaryPrimitives.WriteUInt32BigEndian(d.AsSpan(p + 8 + (int)len), crc);
            p += 12 + (int)len;
        }
    }

    [Fact]
    public void UnknownFormatIsNamed()
    {
        var e = Assert.Throws<InvalidImageException>(() => ImageLoader.Load("hello world, not an image"u8.ToArray(), "notes.txt"));
        Assert.Contains("notes.txt", e.Message);
        Assert.Contains("unrecognised image format", e.Message);
    }
}
