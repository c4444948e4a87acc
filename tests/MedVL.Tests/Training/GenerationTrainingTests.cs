using System.Text.Json;
using MedVL.Adapters;
using MedVL.Formats;
using MedVL.Generation;
using MedVL.Models;
using MedVL.Text;
using MedVL.Text.Templates;
using MedVL.Training;
using MedVL.Vision.Codecs;
using MedVL.Vision.ImageTokenizers;
using MedVL.Vision.Preprocessing;

namespace MedVL.Tests.Training;

public class GenerationTrainingTests(TinyData data) : IClassFixture<TinyData>
{
    private static Tokenizer CorpusTok(string dir, IEnumerable<string> corpus)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), CorpusTokenizer.Build(corpus, out _));
        return Tokenizer.FromDirectory(dir);
    }

    [Fact]
    public void GenerationData_LearnsTheOutputImagesVqTokens_AndNamesBadItems()
    {
        var tpl = ConversationTemplates.Get("phi3_instruct");
        var items = JsonDocument.Parse(File.ReadAllText(Path.Combine(data.Data, "gen_train.json"))).RootElement.EnumerateArray().ToList();
        Assert.NotEmpty(items);
        var baseTok = CorpusTok(Path.Combine(data.Dir, "gentok"), items.Select(i => i.GetProperty("conversations")[0].GetProperty("value").GetString()!)
            .Append(tpl.RenderQuestion("x", hasImage: false)).Append(GenerationData.ReconstructionPrompt));
        var tok = GenerationData.WithVqTokens(baseTok, 16);
        int start = GenerationData.FirstVqTokenId(tok);
        Assert.True(start >= baseTok.Encode("Reconstruct the image.", addSpecialTokens: false).Max() + 1);
        Assert.Equal(start + 1 + 15, tok.TokenToId("<idx_15>"));
        Assert.Equal(start + 17, tok.TokenToId("<end_index>"));
        var images = items.Select(i => ImageConversion.ToRgb8(ImageLoader.Load(Path.Combine(data.Data, i.GetProperty("output_image").GetString()!)))).ToList();
        var vq = PatchVqTokenizer.Fit(images, 32, 8, 16, iterations: 3, seed: 1);
        var ex = GenerationData.Load(Path.Combine(data.Data, "gen_train.json"), tok, tpl, vq);
        Assert.Equal(items.Count, ex.Count);
        for (int k = 0; k < ex.Count; k++)
        {
            var learned = ex[k].InputIds.Zip(ex[k].Labels).Where(p => p.Second != -100).Select(p => p.First).ToArray();
            int idx0 = tok.TokenToId("<idx_0>")!.Value;
            Assert.Equal(tok.TokenToId("<start_index>"), learned[0]);
            Assert.Equal(vq.Encode(images[k]), learned[1..17].Select(t => t - idx0).ToArray());
            Assert.Equal(tok.TokenToId("<end_index>"), learned[17]);
            Assert.Equal("<|end|>\n", tok.Decode(learned[18..]));
            Assert.Equal(Path.Combine(data.Data, items[k].GetProperty("image").GetString()!), ex[k].ImagePath);
        }
        // Reconstruction: any list with images, "Reconstruct the image." → the image's own tokens.
        var rec = GenerationData.Load(Path.Combine(data.Data, "caption_train.json"), tok, tpl, vq, reconstruct: true, limit: 2);
        Assert.Equal(2, rec.Count);
        Assert.Contains(GenerationData.ReconstructionPrompt, tok.Decode(rec[0].InputIds.Where(t => t >= 0).ToArray()));

        string bad = Path.Combine(data.Dir, "gen_bad.json");
        File.WriteAllText(bad, "[{\"id\": \"x1\", \"image\": \"images/a.png\", \"conversations\": [{\"from\": \"human\", \"value\": \"<image>\\nConvert.\"}]}]");
        var e = Assert.Throws<InvalidDataException>(() => GenerationData.Load(bad, tok, tpl, vq));
        Assert.Contains("gen_bad.json: item 0 (x1): field 'output_image'", e.Message);
        var noVocab = Assert.Throws<InvalidOperationException>(() => GenerationData.Load(bad, baseTok, tpl, vq));
        Assert.Contains("lacks HealthGPT's VQ tokens up to <idx_15>", noVocab.Message);
    }

    [Fact]
    public void GenerationStages_TrainTheGenerationPlugin_LeaveTheDecoderFrozen_AndTheResultGeneratesAnImage()
    {
        string run = Path.Combine(data.Dir, "run-gen");
        var p = new PipelineConfig
        {
            Preset = "tiny-healthgpt", Data = data.Data, Template = "phi3_instruct", CheckpointEvery = 100,
            VqIndexTokens = 16, VqImageSize = 32, VqPatchSize = 8,
            Stages =
            [
                new StageConfig { Name = "gen1", Data = "caption_train.json", Task = "generation", Reconstruct = true, Before = "attach-hlora",
                    Train = ["hlora", "projector", "vocab"], MaxSteps = 24, Epochs = 20, BatchSize = 3, LearningRate = 5e-3, HLoraRank = 8, HLoraExperts = 2 },
                new StageConfig { Name = "gen3", Data = "gen_train.json", Task = "generation", Train = ["hlora", "projector"], MaxSteps = 3, Epochs = 5, BatchSize = 2, LearningRate = 1e-3 },
            ],
        };
        var r = new PipelineRunner().Run(p, run, resume: false);
        var l = r.Losses["gen1"];
        Assert.True(l.Skip(l.Count - 4).Average() < 0.6 * l.Take(4).Average(), $"reconstruction loss {string.Join(", ", l.Select(x => x.ToString("F3")))}");
        Assert.Equal(3, r.Losses["gen3"].Count);
        var g = r.Generation!;
        Assert.Equal(1, g.VisionSelectLayer);
        Assert.Equal(16, g.VqIndexTokens);
        Assert.Equal(16.0, g.Alpha);
        // LLM frozen (the paper's generation stage 1): the saved decoder equals the preset's.
        using (var before = Checkpoint.Open(Path.Combine(run, "base", "model.safetensors")))
        using (var after = Checkpoint.Open(Path.Combine(r.ModelDir, "model.safetensors")))
            foreach (var name in new[] { "model.embed_tokens.weight", "lm_head.weight", "model.layers.0.self_attn.qkv_proj.weight", "model.mm_projector.0.weight" })
                Assert.Equal(before.Tensors[name].ToFloat32(), after.Tensors[name].ToFloat32());
        // The fusion layer holds the extended vocabulary: len(tokenizer) + 16 + 3 rows.
        var baseTok = Tokenizer.FromDirectory(r.ModelDir);
        using (var fusion = Checkpoint.Open(g.FusionLayerPath))
            Assert.Equal([GenerationData.FirstVqTokenId(GenerationData.WithVqTokens(baseTok, 16)) + 19, 128], fusion.Tensors["base_model.model.lm_head.weight"].Shape);

        // Load it back as HealthGPT's scripts do (gen H-LoRA with its projector, layer 1, fusion layer) and generate.
        using var model = LlavaForCausalLM.FromPretrained(r.ModelDir);
        using var plugin = HealthGptPlugin.Load(model.LanguageModel, g.AdapterPath, new HealthGptPluginOptions
        {
            Name = "generation", Alpha = g.Alpha, VisionSelectLayer = g.VisionSelectLayer, FusionLayerPath = g.FusionLayerPath,
        });
        Assert.NotNull(plugin.Projector);
        var tok = GenerationData.WithVqTokens(baseTok, g.VqIndexTokens);
        var vq = PatchVqTokenizer.Load(g.ImageTokenizerDir);
        var proc = ClipPreprocessorConfig.Load(Path.Combine(model.VisionTower!.Directory, "preprocessor_config.json"), padToSquare: true);
        string img = Path.Combine(data.Data, JsonDocument.Parse(File.ReadAllText(Path.Combine(data.Data, "caption_train.json"))).RootElement[0].GetProperty("image").GetString()!);
        using var px = new PixelCache(proc).Tensor(img);
        var gen = new ImageGenerator(model, tok, ConversationTemplates.Get("phi3_instruct"), vq).Generate(GenerationData.ReconstructionPrompt, px, plugin.Selection());
        Assert.Equal(16, gen.Indices.Length);
        Assert.Equal(32, gen.Image.Width);
        Assert.Equal(vq.Decode(gen.Indices).Pixels, gen.Image.Pixels);
        // Constrained decoding: every new token is an <idx_i>.
        Assert.All(gen.Run.TokenIds, t => Assert.InRange(t, tok.TokenToId("<idx_0>")!.Value, tok.TokenToId("<idx_15>")!.Value));

        // `medvl generate-image` with gen_infer.sh's flags writes the same image.
        string png = Path.Combine(run, "cli.png");
        var (code, stdout, stderr) = CliRunner.Run("generate-image", "--model", r.ModelDir, "--image", img, "--image-tokenizer", g.ImageTokenizerDir,
            "--out", png, "--adapter", g.AdapterPath, "--task", "generation", "--extend-vocab", "--vq-tokens", "16", "--fusion-layer", g.FusionLayerPath,
            "--hlora-alpha", "16", "--question", GenerationData.ReconstructionPrompt);
        Assert.True(code == 0, stderr);
        Assert.Contains("16 image tokens", stdout);
        Assert.Equal(gen.Image.Pixels, ImageConversion.ToRgb8(ImageLoader.Load(png)).Pixels);
        (code, _, stderr) = CliRunner.Run("generate-image", "--model", r.ModelDir, "--image", img, "--image-tokenizer", g.ImageTokenizerDir, "--out", png,
            "--adapter", g.AdapterPath, "--task", "generation", "--extend-vocab", "--vq-tokens", "32", "--fusion-layer", g.FusionLayerPath);
        Assert.NotEqual(0, code);
        Assert.Contains("--vq-tokens 32, but the image tokenizer has 16 codes", stderr);
    }
}
