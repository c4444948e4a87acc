using System.Security.Cryptography;
using System.Text.Json;
using MedVL.Data.MedSynth;
using MedVL.Models;
using MedVL.Models.Blocks;
using MedVL.Text;
using MedVL.Text.Templates;
using MedVL.Training;
using MedVL.Vision.Preprocessing;

namespace MedVL.Tests.Training;

/// <summary>A tiny MedSynth data set shared by the training tests (written once per test class instance).</summary>
public sealed class TinyData : IDisposable
{
    public TinyData()
    {
        Dir = Path.Combine(Path.GetTempPath(), $"medvl-train-{Guid.NewGuid():N}");
        Data = Path.Combine(Dir, "medsynth");
        MedSynthDataset.Write(Data, new MedSynthOptions { Seed = 3, Count = 12, ImageSize = 32 }, (path, img) => MedVL.Vision.Codecs.PngEncoder.Save(path, img.ToBytes(), img.Width, img.Height, img.Channels), null, default);
    }

    public string Dir { get; }
    public string Data { get; }
    public void Dispose() { try { Directory.Delete(Dir, true); } catch (IOException) { } }
}

public class TrainingTests(TinyData data) : IClassFixture<TinyData>
{
    private static PipelineConfig OneStage(string dataDir, int maxSteps, int checkpointEvery, string preset = "tiny-healthgpt") => new()
    {
        Preset = preset, Data = dataDir, Template = preset == "tiny-healthgpt" ? "phi3_instruct" : "stablelm", CheckpointEvery = checkpointEvery,
        Stages = [new StageConfig { Name = "s0", Data = "vqa_train.json", Train = ["llm", "vision", "projector"], MaxSteps = maxSteps, Epochs = 5, BatchSize = 2, LearningRate = 1e-3 }],
    };

    [Fact]
    public void CorpusTokenizer_MakesEveryCorpusWordOneToken_AndDecodesBack()
    {
        string dir = Path.Combine(data.Dir, "tok");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), CorpusTokenizer.Build(["Is there a lesion?", "left lower lobe"], out int vocab));
        var tok = Tokenizer.FromDirectory(dir);
        Assert.Equal(vocab, tok.VocabSize);
        var ids = tok.Encode("Is there a lesion?", addSpecialTokens: false);
        Assert.Equal(5, ids.Length); // "Is", " there", " a", " lesion", "?"
        Assert.Equal("Is there a lesion?", tok.Decode(ids));
        Assert.Equal("unseen words still encode", tok.Decode(tok.Encode("unseen words still encode", addSpecialTokens: false)));
        Assert.Equal(CorpusTokenizer.SpecialId("<|end|>"), tok.TokenToId("<|end|>"));
    }

    [Fact]
    public void LabelsMaskThePromptAndKeepTheAnswerAndItsSeparator()
    {
        string dir = Path.Combine(data.Dir, "tok2");
        Directory.CreateDirectory(dir);
        var tpl = ConversationTemplates.Get("phi3_instruct");
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), CorpusTokenizer.Build([tpl.RenderQuestion("Is this a CT image?") + " yes"], out _));
        var tok = Tokenizer.FromDirectory(dir);
        var (ids, labels) = ConversationData.Tokenize([new ChatTurn(ChatRole.User, "Is this a CT image?", true), new ChatTurn(ChatRole.Assistant, "yes")], tok, tpl);
        Assert.Contains(LlavaForCausalLM.ImageTokenIndex, ids);
        var learned = ids.Zip(labels).Where(p => p.Second != -100).Select(p => p.First).ToArray();
        Assert.Equal("yes<|end|>\n", tok.Decode(learned));
    }

    [Fact]
    public void Resume_AfterAKill_GivesTheSameLossCurveBitForBit()
    {
        string a = Path.Combine(data.Dir, "run-a"), b = Path.Combine(data.Dir, "run-b");
        var full = new PipelineRunner().Run(OneStage(data.Data, 6, 3), a, resume: false).Losses["s0"];
        Assert.Equal(6, full.Count);
        using (var cts = new CancellationTokenSource())
        {
            var runner = new PipelineRunner { OnStep = m => { if (m.Step == 4) cts.Cancel(); } }; // killed after step 4, checkpoint at 3
            Assert.ThrowsAny<OperationCanceledException>(() => runner.Run(OneStage(data.Data, 6, 3), b, resume: false, cts.Token));
        }
        Assert.Equal("checkpoint-3", File.ReadAllText(Path.Combine(b, "s0", "latest")));
        var resumed = new PipelineRunner().Run(OneStage(data.Data, 6, 3), b, resume: true).Losses["s0"];
        Assert.Equal(full, resumed);
        var metrics = File.ReadAllLines(Path.Combine(b, "s0", "metrics.jsonl"));
        Assert.Equal(6, metrics.Length);
        Assert.Equal(full.Select(l => l), metrics.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble()));
        // The trained model folder loads back.
        using var m = LlavaForCausalLM.FromPretrained(Path.Combine(b, "model"));
        Assert.NotNull(m.VisionTower);
    }

    [Fact]
    public void Resume_InANewProcess_GivesTheSameLossCurveBitForBit()
    {
        // Data order and dropout are seeded by a fixed function of (seed, epoch/step), not by the per-process randomised
        // System.HashCode: `medvl train --resume` in a new process continues the interrupted curve exactly.
        string a = Path.Combine(data.Dir, "run-pa"), b = Path.Combine(data.Dir, "run-pb");
        var config = OneStage(data.Data, 6, 3) with
        {
            Stages = [OneStage(data.Data, 6, 3).Stages[0] with { Before = "attach-hlora", Train = ["hlora", "projector"], HLoraRank = 8, HLoraExperts = 2, HLoraDropout = 0.3 }],
        };
        var full = new PipelineRunner().Run(config, a, resume: false).Losses["s0"];
        using (var cts = new CancellationTokenSource())
        {
            var runner = new PipelineRunner { OnStep = m => { if (m.Step == 4) cts.Cancel(); } };
            Assert.ThrowsAny<OperationCanceledException>(() => runner.Run(config, b, resume: false, cts.Token));
        }
        string cfg = Path.Combine(data.Dir, "pb.json");
        File.WriteAllText(cfg, config.ToJson());
        var (code, _, stderr) = CliRunner.Run("train", "--config", cfg, "--out", b, "--resume");
        Assert.True(code == 0, stderr);
        var resumed = File.ReadAllLines(Path.Combine(b, "s0", "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble());
        Assert.Equal(full, resumed);
    }

    [Fact]
    public void NonFiniteLoss_StopsTheRun_AndLeavesTheLastCheckpointIntact()
    {
        string run = Path.Combine(data.Dir, "run-nan");
        new PipelineRunner().Run(OneStage(data.Data, 2, 2), run, resume: false);
        string ck = Path.Combine(run, "s0", "checkpoint-2", "trainable.safetensors");
        var before = SHA256.HashData(File.ReadAllBytes(ck));
        // Poison the trained model's final norm and train again from it: the first loss is NaN.
        string model = Path.Combine(run, "model");
        var cfg = OneStage(data.Data, 4, 2) with { Preset = null, Model = model };
        using (var st = MedVL.Formats.SafetensorsFile.Open(Path.Combine(model, "model.safetensors")))
        {
            var tensors = st.Tensors.Select(kv => kv.Key == "model.norm.weight"
                ? MedVL.Formats.SafetensorsTensor.FromFloat32(kv.Key, Enumerable.Repeat(float.NaN, kv.Value.Shape[0]).ToArray(), kv.Value.Shape)
                : MedVL.Formats.SafetensorsTensor.From(kv.Value)).ToList();
            MedVL.Formats.SafetensorsWriter.Write(Path.Combine(model, "model.poisoned.safetensors"), tensors);
        }
        File.Move(Path.Combine(model, "model.poisoned.safetensors"), Path.Combine(model, "model.safetensors"), overwrite: true);
        var e = Assert.Throws<TrainingDivergedException>(() => new PipelineRunner().Run(cfg, run, resume: false));
        Assert.Contains("NaN", e.Message);
        Assert.Equal(before, SHA256.HashData(File.ReadAllBytes(ck)));
        Assert.Equal("checkpoint-2", File.ReadAllText(Path.Combine(run, "s0", "latest")));
    }

    [Fact]
    public void PerTargetLearningRates_ApplyToTheirParameterGroups()
    {
        string run = Path.Combine(data.Dir, "run-lr");
        var cfg = OneStage(data.Data, 2, 2) with
        {
            Stages = [new StageConfig { Name = "s0", Data = "vqa_train.json", Train = ["projector", "llm"], MaxSteps = 2, BatchSize = 2,
                LearningRate = 1e-3, LearningRates = new() { ["projector"] = 0.0 } }],
        };
        new PipelineRunner().Run(cfg, run, resume: false);
        using var before = MedVL.Formats.SafetensorsFile.Open(Path.Combine(run, "base", "model.safetensors"));
        using var after = MedVL.Formats.SafetensorsFile.Open(Path.Combine(run, "model", "model.safetensors"));
        float[] Read(MedVL.Formats.SafetensorsFile f, string n) { using var t = f.Tensors[n].ToTensor(); return t.ToFloatArray(); }
        Assert.Equal(Read(before, "model.mm_projector.0.weight"), Read(after, "model.mm_projector.0.weight")); // lr 0
        Assert.NotEqual(Read(before, "model.layers.0.mlp.down_proj.weight"), Read(after, "model.layers.0.mlp.down_proj.weight"));
    }
}
