using System.Text.Json.Nodes;
using MedVL.Evaluation;
using MedVL.Vision.Preprocessing;

namespace MedVL.Tests.Evaluation;

/// <summary>Against scikit-image 0.19 (tools/eval/make_image_metric_fixture.py).</summary>
public class ImageMetricsTests
{
    [Fact]
    public void PsnrAndSsim_MatchScikitImage()
    {
        foreach (var c in JsonNode.Parse(File.ReadAllText(TestPaths.Fixture("eval", "image_metrics.json")))!.AsArray())
        {
            int w = (int)c!["width"]!, h = (int)c["height"]!;
            Rgb8Image Img(string k) => new(w, h, c[k]!.AsArray().Select(v => (byte)(int)v!).ToArray());
            var (a, b) = (Img("a"), Img("b"));
            Assert.Equal((double)c["psnr"]!, ImageMetrics.Psnr(a, b), 1e-9);
            Assert.Equal((double)c["ssim"]!, ImageMetrics.Ssim(a, b), 1e-9);
            Assert.Equal(1.0, ImageMetrics.Ssim(a, a), 1e-12);
            Assert.True(double.IsPositiveInfinity(ImageMetrics.Psnr(a, a)));
        }
        var e = Assert.Throws<ArgumentException>(() => ImageMetrics.Psnr(new Rgb8Image(4, 4), new Rgb8Image(4, 5)));
        Assert.Contains("4×4 vs 4×5", e.Message);
    }
}
