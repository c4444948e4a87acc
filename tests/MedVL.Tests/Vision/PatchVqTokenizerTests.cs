using System.Text.Json;
using MedVL.Vision.ImageTokenizers;
using MedVL.Vision.Preprocessing;

namespace MedVL.Tests.Vision;

public class PatchVqTokenizerTests
{
    private sealed record Case(int[] Pixels, int[] Indices, int[] Decoded);
    private sealed record Fixture(int ImageSize, int PatchSize, float[] Codebook, Case[] Cases);

    private static Fixture Load()
    {
        var o = new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
        return JsonSerializer.Deserialize<Fixture>(File.ReadAllText(TestPaths.Fixture("vision", "vq", "patch_vq.json")), o)!;
    }

    private static Rgb8Image Image(int size, int[] px) => new(size, size, px.Select(v => (byte)v).ToArray());

    [Fact]
    public void EncodeAndDecode_MatchTheTorchReference()
    {
        // tools/vision/make_patch_vq_fixture.py: taming's pixel scaling, argmin of the squared distance, custom_to_pil decoding.
        var f = Load();
        var vq = new PatchVqTokenizer(f.ImageSize, f.PatchSize, f.Codebook);
        Assert.Equal(12, vq.CodebookSize);
        Assert.Equal(4, vq.GridSize);
        foreach (var c in f.Cases)
        {
            var idx = vq.Encode(Image(f.ImageSize, c.Pixels));
            Assert.Equal(c.Indices, idx);
            Assert.Equal(c.Decoded, vq.Decode(idx).Pixels.Select(b => (int)b).ToArray());
        }
        // The third case is built from codebook entries: decoding its indices gives back the image exactly.
        var built = f.Cases[2];
        Assert.Equal(built.Pixels, built.Decoded);
    }

    [Fact]
    public void Decode_RejectsAWrongCountOrAnIndexOutsideTheCodebook()
    {
        var f = Load();
        var vq = new PatchVqTokenizer(f.ImageSize, f.PatchSize, f.Codebook);
        var e = Assert.Throws<ArgumentException>(() => vq.Decode(new int[15]));
        Assert.Contains("15 image tokens", e.Message);
        Assert.Contains("4×4 = 16", e.Message);
        var bad = new int[16];
        bad[5] = 12;
        var r = Assert.Throws<ArgumentOutOfRangeException>(() => vq.Decode(bad));
        Assert.Contains("index 12 at position 5", r.Message);
    }

    [Fact]
    public void Fit_RecoversACodebookThatExplainsTheImages_AndIsSeeded()
    {
        // Images tiled from four flat 4×4 patches: a four-entry codebook must reproduce them exactly.
        var colours = new[] { (10, 20, 30), (200, 180, 160), (90, 90, 90), (255, 0, 128) };
        var rng = new Random(5);
        var images = Enumerable.Range(0, 6).Select(_ =>
        {
            var img = new Rgb8Image(16, 16);
            for (int gy = 0; gy < 4; gy++)
                for (int gx = 0; gx < 4; gx++)
                {
                    var (r, g, b) = colours[rng.Next(4)];
                    for (int y = 0; y < 4; y++)
                        for (int x = 0; x < 4; x++)
                        {
                            int o = ((gy * 4 + y) * 16 + gx * 4 + x) * 3;
                            img.Pixels[o] = (byte)r; img.Pixels[o + 1] = (byte)g; img.Pixels[o + 2] = (byte)b;
                        }
                }
            return img;
        }).ToList();
        var vq = PatchVqTokenizer.Fit(images, 16, 4, 4, iterations: 5, seed: 9);
        foreach (var img in images)
        {
            var back = vq.Decode(vq.Encode(img)).Pixels;
            // x/255·2−1 and back through (x+1)/2·255 truncated: at most one grey level lost.
            Assert.All(back.Zip(img.Pixels), p => Assert.InRange(p.Second - p.First, 0, 1));
        }
        var again = PatchVqTokenizer.Fit(images, 16, 4, 4, iterations: 5, seed: 9);
        Assert.Equal(vq.Codebook.ToArray(), again.Codebook.ToArray());
        var e = Assert.Throws<ArgumentException>(() => PatchVqTokenizer.Fit(images.Take(1), 16, 4, 17));
        Assert.Contains("16 patches cannot fit a codebook of 17", e.Message);
    }

    [Fact]
    public void SaveAndLoad_RoundTrip_AndBadFoldersNameTheFileAndField()
    {
        var f = Load();
        var vq = new PatchVqTokenizer(f.ImageSize, f.PatchSize, f.Codebook);
        string dir = Path.Combine(Path.GetTempPath(), $"medvl-vq-{Guid.NewGuid():N}");
        try
        {
            vq.Save(dir);
            var back = PatchVqTokenizer.Load(dir);
            Assert.Equal(f.Codebook, back.Codebook.ToArray());
            Assert.Equal(f.Cases[0].Indices, back.Encode(Image(f.ImageSize, f.Cases[0].Pixels)));

            string cfg = Path.Combine(dir, "config.json");
            File.WriteAllText(cfg, File.ReadAllText(cfg).Replace("\"n_embed\": 12", "\"n_embed\": 13"));
            var e = Assert.Throws<InvalidDataException>(() => PatchVqTokenizer.Load(dir));
            Assert.Contains("model.safetensors", e.Message);
            Assert.Contains("expected [13, 48]", e.Message);
            File.WriteAllText(cfg, File.ReadAllText(cfg).Replace("\"patch_size\": 4", "\"patch_size\": -4"));
            e = Assert.Throws<InvalidDataException>(() => PatchVqTokenizer.Load(dir));
            Assert.Contains("config.json: field 'patch_size' must be a positive integer", e.Message);
            File.WriteAllText(cfg, "{\"model_type\": \"vqgan\"}");
            e = Assert.Throws<InvalidDataException>(() => PatchVqTokenizer.Load(dir));
            Assert.Contains("field 'model_type' is 'vqgan'", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
