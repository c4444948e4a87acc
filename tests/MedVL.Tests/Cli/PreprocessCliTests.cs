using MedVL.Formats;
using MedVL.Vision.Codecs;
using MedVL.Vision.Preprocessing;

namespace MedVL.Tests.Cli;

public class PreprocessCliTests
{
    [Fact]
    public void ReadsTheModelsPreprocessorConfigAndWritesChw()
    {
        // tests/fixtures/models/clip: crop 28, size 28, OpenAI mean/std (a real CLIPImageProcessor config, shrunk)
        var outPath = Path.Combine(Path.GetTempPath(), $"medvl-{Guid.NewGuid():N}.npy");
        var image = TestPaths.Fixture("vision", "files", "jpeg_420_baseline.jpg");
        var (code, _, err) = CliRunner.Run("preprocess", "--model", TestPaths.Fixture("models", "clip"), "--image", image, "--output", outPath, "--pad");
        Assert.True(code == 0, err);
        var npy = Npy.Read(outPath);
        Assert.Equal(new[] { 3, 28, 28 }, npy.Shape);
        // the in-process processor is checked pixel-for-pixel against Pillow in Vision/ClipPreprocessingTests
        var expected = new ClipImageProcessor { ShortestEdge = 28, CropHeight = 28, CropWidth = 28, PadToSquare = true }.Preprocess(ImageLoader.Load(image));
        Assert.Equal(expected, npy.ToFloat32());
        File.Delete(outPath);
    }

    [Fact]
    public void MissingConfigIsAClearError()
    {
        var dir = Directory.CreateTempSubdirectory("medvl-pp");
        var (code, _, err) = CliRunner.Run("preprocess", "--model", dir.FullName, "--image", "x.png", "--output", "y.npy");
        Assert.Equal(1, code);
        Assert.Contains("preprocessor_config.json", err);
        dir.Delete();
    }
}
