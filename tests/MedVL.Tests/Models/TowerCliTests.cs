using MedVL.Formats;
using MedVL.Generation;
using MedVL.Models;
using MedVL.Tensors;
using MedVL.Text;
using MedVL.Text.Templates;
using MedVL.Vision.Codecs;
using MedVL.Vision.Preprocessing;
using static MedVL.Tests.Models.DecoderParityTests;

namespace MedVL.Tests.Models;

/// <summary>`medvl logits / vision / generate / ask` run as a process on the tiny fixtures.</summary>
public class TowerCliTests
{
    private static string Tmp(string name) => Path.Combine(Path.GetTempPath(), $"medvl-{Guid.NewGuid():N}-{name}");
    internal static string PngFixture => TestPaths.Fixture("vision", "files", "jpeg_source.png");

    [Theory]
    [InlineData("phi3")]
    [InlineData("llama")]
    public void Logits_MatchTorch(string folder)
    {
        var outPath = Tmp("logits.npy");
        try
        {
            var (code, stdout, stderr) = CliRunner.Run("logits", "--model", Fx(folder), "--input-ids", string.Join(",", Ids(folder)), "--output", outPath);
            Assert.True(code == 0, stderr);
            Assert.Contains("[7, 300]", stdout);
            var a = Npy.Read(outPath);
            Assert.Equal([7, 300], a.Shape);
            AssertClose(Expected(folder, "expected_logits.npy"), a.ToFloat32(), 1e-4f, "cli logits");
        }
        finally { File.Delete(outPath); }
    }

    [Fact]
    public void Logits_WithImage_CountsSplicedRows_AndMatchesTheLibrary()
    {
        var outPath = Tmp("llava.npy");
        try
        {
            var ids = Ids("llava_phi3");
            var (code, _, stderr) = CliRunner.Run("logits", "--model", Fx("llava_phi3"), "--input-ids", string.Join(",", ids), "--image", PngFixture, "--output", outPath);
            Assert.True(code == 0, stderr);
            var a = Npy.Read(outPath);
            Assert.Equal([22, 300], a.Shape);
            using var model = LlavaForCausalLM.FromPretrained(Fx("llava_phi3"));
            var proc = ClipPreprocessorConfig.Load(Fx("clip", "preprocessor_config.json"), padToSquare: true);
            using var px = Tensor.FromArray(proc.Preprocess(ImageLoader.Load(PngFixture)), 1, 3, 28, 28);
            using var _ = GradMode.NoGrad();
            using var l = model.Forward(ids, px);
            AssertClose(l.ToFloatArray(), a.ToFloat32(), 1e-6f, "cli vs library logits with image");
        }
        finally { File.Delete(outPath); }
    }

    [Fact]
    public void Logits_BadIds_AndMissingImage_AreClearErrors()
    {
        var (code, _, stderr) = CliRunner.Run("logits", "--model", Fx("phi3"), "--input-ids", "1,x,3", "--output", Tmp("a.npy"));
        Assert.Equal(1, code);
        Assert.Contains("'x' (item 1) is not an integer", stderr);
        (code, _, stderr) = CliRunner.Run("logits", "--model", Fx("llava_phi3"), "--input-ids", "1,-200,3", "--output", Tmp("a.npy"));
        Assert.Equal(1, code);
        Assert.Contains("no --image", stderr);
        (code, _, stderr) = CliRunner.Run("logits", "--model", Fx("phi3"), "--input-ids", "1,300", "--output", Tmp("a.npy"));
        Assert.Equal(1, code);
        Assert.Contains("outside the vocabulary", stderr);
    }

    [Theory]
    [InlineData("clip", -2, true)]
    [InlineData("llava_phi3", 0, false)]
    public void Vision_Pixels_MatchTorchHiddenStates(string folder, int layer, bool noCls)
    {
        var outPath = Tmp("vision.npy");
        try
        {
            var args = new List<string> { "vision", "--model", Fx(folder), "--pixels", Fx("clip", "pixel_values.npy"), "--layer", layer.ToString(), "--output", outPath };
            if (noCls) args.Add("--no-cls");
            var (code, _, stderr) = CliRunner.Run(args.ToArray());
            Assert.True(code == 0, stderr);
            var a = Npy.Read(outPath);
            int idx = layer < 0 ? 4 + layer : layer, tokens = noCls ? 16 : 17;
            Assert.Equal([tokens, 48], a.Shape);
            var hs = Expected("clip", "expected_hidden_states.npy");
            AssertClose(hs.AsSpan(idx * 17 * 48 + (noCls ? 48 : 0), tokens * 48), a.ToFloat32(), 1e-4f, "cli vision");
        }
        finally { File.Delete(outPath); }
    }

    [Fact]
    public void Generate_Greedy_PrintsTheLibraryAnswer()
    {
        using var tiny = new TinyModelFolder("phi3");
        var (code, stdout, stderr) = CliRunner.Run("generate", "--model", tiny.Dir, "--prompt", "Hello there", "--max-new-tokens", "8");
        Assert.True(code == 0, stderr);
        using var model = AutoModelForCausalLM.FromPretrained(tiny.Dir);
        var tok = Tokenizer.FromDirectory(tiny.Dir);
        var r = new TextGenerator(model, tok).Generate(new GenerationRequest(tok.Encode("Hello there"),
            new SamplingOptions { MaxNewTokens = 8, StopTokenIds = GenerationConfig.Load(tiny.Dir).EosTokenIds }));
        Assert.Equal(r.Text + Environment.NewLine, stdout);
        Assert.Contains("tokens", stderr);
    }

    [Fact]
    public void Ask_StreamsTheTemplatedAnswer()
    {
        using var tiny = new TinyModelFolder("llava_phi3", withClip: true);
        var (code, stdout, stderr) = CliRunner.Run("ask", "--model", tiny.Dir, "--image", PngFixture, "--question", "What is shown?", "--max-new-tokens", "6");
        Assert.True(code == 0, stderr);
        using var model = LlavaForCausalLM.FromPretrained(tiny.Dir);
        var tok = Tokenizer.FromDirectory(tiny.Dir);
        var tpl = ConversationTemplates.Get("phi3_instruct");
        var ids = tok.TokenizeWithImage(tpl.RenderQuestion("What is shown?"));
        var proc = ClipPreprocessorConfig.Load(Path.Combine(tiny.Root, "clip", "preprocessor_config.json"), padToSquare: true);
        using var px = Tensor.FromArray(proc.Preprocess(ImageLoader.Load(PngFixture)), 1, 3, 28, 28);
        var opts = new SamplingOptions
        {
            MaxNewTokens = 6, StopStrings = tpl.StopStrings,
            StopTokenIds = GenerationConfig.Load(tiny.Dir).EosTokenIds.Concat(tpl.StopTokenIds(tok)).Distinct().ToArray(),
        };
        var r = new TextGenerator(model, tok).Generate(new GenerationRequest(ids, opts, px));
        Assert.Equal(r.Text + Environment.NewLine, stdout);
    }
}

public class ModelBenchCliTests
{
    [Fact]
    public void BenchModel_Json_ReportsPrefillAndDecode()
    {
        var (code, stdout, stderr) = CliRunner.Run("bench", "model", "--model", DecoderParityTests.Fx("phi2"), "--prompt", "8", "--gen", "3", "--runs", "2", "--json");
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        using var pp = System.Text.Json.JsonDocument.Parse(lines[0]);
        using var tg = System.Text.Json.JsonDocument.Parse(lines[1]);
        Assert.Equal("pp8", pp.RootElement.GetProperty("test").GetString());
        Assert.Equal("tg3", tg.RootElement.GetProperty("test").GetString());
        Assert.True(pp.RootElement.GetProperty("tps").GetDouble() > 0);
        Assert.True(tg.RootElement.GetProperty("sd").GetDouble() >= 0);
        Assert.Equal(2, tg.RootElement.GetProperty("runs").GetInt32());
    }
}
