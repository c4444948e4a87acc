using MedVL.Autograd;
using MedVL.Models;
using MedVL.Models.Blocks;
using MedVL.Tensors;
using MedVL.Training;
using MedVL.Vision.Codecs;
using MedVL.Vision.Preprocessing;
using AOps = MedVL.Autograd.Ops;

namespace MedVL.Tests.Training;

/// <summary>The tiny presets' vision pretraining on MedSynth's ground truth (<see cref="VisionFindingsObjective"/>).</summary>
public class VisionPretrainingTests(TinyData data) : IClassFixture<TinyData>
{
    private (LlavaForCausalLM Model, PixelCache Pixels) Preset(string name)
    {
        string dir = Path.Combine(data.Dir, name);
        if (!File.Exists(Path.Combine(dir, "config.json")))
            TinyPresets.Write(dir, TinyArchitecture.TinyHealthGpt, ["Is there a lesion?", "yes", "no"]);
        var model = LlavaForCausalLM.FromPretrained(dir, placement: WeightPlacement.HugePages);
        var proc = ClipPreprocessorConfig.Load(Path.Combine(model.VisionTower!.Directory, "preprocessor_config.json"), padToSquare: true);
        return (model, new PixelCache(proc));
    }

    [Fact]
    public void PatchLabels_FollowTheImageGeometry_WithAnIgnoredBand()
    {
        var (model, pixels) = Preset("preset-labels");
        using var _ = model;
        using var obj = new VisionFindingsObjective(model, pixels, ["a"], seed: 1);
        // 32×32 mask with the lesion in its top-left 8×8 pixels; the processor resizes to 64×64 and the tower cuts 8×8
        // patches, so the lesion fills the 2×2 top-left patches of the 8×8 grid
        var mask = new byte[32 * 32];
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++) mask[y * 32 + x] = 255;
        string path = Path.Combine(data.Dir, "mask-square.png");
        PngEncoder.Save(path, mask, 32, 32, 1);
        var labels = obj.PatchLabels(path);
        Assert.Equal(64, labels.Length);
        foreach (int k in new[] { 0, 1, 8, 9 }) Assert.Equal(1, labels[k]);
        // far from the square every patch is background; next to it the resampler's blur may put it in the ignored band
        for (int gy = 0; gy < 8; gy++)
            for (int gx = 0; gx < 8; gx++)
                if (gy >= 3 || gx >= 3) Assert.Equal(0, labels[gy * 8 + gx]);
        Assert.All(new[] { 2, 10, 16, 17, 18 }, k => Assert.Contains(labels[k], new[] { 0, -100 }));
    }

    [Fact]
    public void Loss_IsTheBalancedCrossEntropyOfTheHeads_RecomputedIndependently()
    {
        var (model, pixels) = Preset("preset-loss");
        using var _ = model;
        var items = FindingsData.Load(Path.Combine(data.Data, "seg_train.json"));
        var batch = items.Where(e => e.Sides != "none").Take(2).Concat(items.Where(e => e.Sides == "none").Take(1)).ToArray();
        Assert.Equal(3, batch.Length);
        var classes = items.Select(e => e.Modality!).Distinct().Order(StringComparer.Ordinal).ToList();
        using var obj = new VisionFindingsObjective(model, pixels, classes, seed: 7);
        // make the heads non-trivial so every term matters
        var rng = new Random(5);
        foreach (var (_, t) in obj.Parameters)
        {
            var s = t.Span<float>();
            for (int i = 0; i < s.Length; i++) s[i] = (float)(rng.NextDouble() - 0.5);
        }
        double loss;
        using (var l = obj.Loss(batch, default)) loss = l.ToFloatArray()[0];

        // independent: features without grad, heads and cross-entropies in double precision
        var p = obj.Parameters.ToDictionary(x => x.Name, x => x.Tensor.ToFloatArray());
        int n = batch.Length, np = 64, d = model.VisionTower!.HiddenSize;
        float[] f;
        using (GradMode.NoGrad())
        using (var px = Tensor.FromArray(batch.SelectMany(e => pixels.Get(e.ImagePath!)).ToArray(), n, 3, 64, 64))
        using (var feats = model.VisionTower.SelectFeatures(px, model.Multimodal.SelectLayer, includeCls: false))
            f = feats.ToFloatArray();
        double[] Head(string name, float[] x, int offset, int classesN)
        {
            var w = p[$"findings_head.{name}.weight"];
            var b = p[$"findings_head.{name}.bias"];
            var z = new double[classesN];
            for (int c = 0; c < classesN; c++)
            {
                double acc = b[c];
                for (int j = 0; j < d; j++) acc += (double)w[c * d + j] * x[offset + j];
                z[c] = acc;
            }
            return z;
        }
        static double Nll(double[] z, int target)
        {
            double m = z.Max(), s = z.Sum(v => Math.Exp(v - m));
            return -(z[target] - m - Math.Log(s));
        }
        double pos = 0, neg = 0, cls = 0, sides = 0;
        int npos = 0, nneg = 0;
        for (int i = 0; i < n; i++)
        {
            var labels = obj.PatchLabels(batch[i].MaskPath!);
            var mean = new float[d];
            for (int k = 0; k < np; k++)
            {
                for (int j = 0; j < d; j++) mean[j] += f[(i * np + k) * d + j] / np;
                if (labels[k] == -100) continue;
                double nll = Nll(Head("patch", f, (i * np + k) * d, 2), labels[k]);
                if (labels[k] == 1) { pos += nll; npos++; } else { neg += nll; nneg++; }
            }
            cls += Nll(Head("class", mean, 0, classes.Count), classes.IndexOf(batch[i].Modality!));
            sides += Nll(Head("sides", mean, 0, 4), Array.IndexOf(VisionFindingsObjective.SideLabels, batch[i].Sides!));
        }
        Assert.True(npos > 0 && nneg > 0);
        double expected = pos / npos + neg / nneg + cls / n + sides / n;
        Assert.Equal(expected, loss, 1e-4 * Math.Max(1, Math.Abs(expected)));
    }

    [Fact]
    public void TrainingTheTower_LowersTheLoss_AndLeavesTheLanguageModelAlone()
    {
        string run = Path.Combine(data.Dir, "run-findings");
        var cfg = new PipelineConfig
        {
            Preset = "tiny-healthgpt", Data = data.Data, Template = "phi3_instruct", CheckpointEvery = 100,
            Stages = [new StageConfig { Name = "vision", Data = "seg_train.json", Objective = "findings", Train = ["vision"], Limit = 4, Epochs = 12, BatchSize = 4, MicroBatchSize = 4, LearningRate = 1e-3, WarmupRatio = 0 }],
        };
        var log = new List<string>();
        var losses = new PipelineRunner { Log = log.Add }.Run(cfg, run, resume: false).Losses["vision"];
        Assert.Equal(12, losses.Count);
        Assert.True(losses[^1] < 0.7 * losses[0], string.Join(", ", losses));
        Assert.Contains(log, l => l.Contains("held-out") && l.Contains("lesion patches"));
        using var before = MedVL.Formats.SafetensorsFile.Open(Path.Combine(run, "base", "model.safetensors"));
        using var after = MedVL.Formats.SafetensorsFile.Open(Path.Combine(run, "model", "model.safetensors"));
        float[] Read(MedVL.Formats.SafetensorsFile st, string name) { using var t = st.Tensors[name].ToTensor(); return t.ToFloatArray(); }
        Assert.Equal(Read(before, "model.layers.0.mlp.down_proj.weight"), Read(after, "model.layers.0.mlp.down_proj.weight"));
        using var vb = MedVL.Formats.SafetensorsFile.Open(Path.Combine(run, "base", "vision_tower", "model.safetensors"));
        using var va = MedVL.Formats.SafetensorsFile.Open(Path.Combine(run, "model", "vision_tower", "model.safetensors"));
        string any = va.Tensors.Keys.First(k => k.Contains("patch_embedding"));
        Assert.NotEqual(Read(vb, any), Read(va, any));
        // the heads are the objective's, not the model's
        Assert.DoesNotContain(va.Tensors.Keys, k => k.StartsWith("findings_head", StringComparison.Ordinal));
    }

    [Fact]
    public void BadItems_NameTheFileTheItemAndTheField()
    {
        string path = Path.Combine(data.Dir, "bad-seg.json");
        File.WriteAllText(path, """[{"id": "x1", "image": "a.png", "modality": "CT"}]""");
        var e = Assert.Throws<InvalidDataException>(() => FindingsData.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("x1", e.Message);
        Assert.Contains("'mask'", e.Message);
        File.WriteAllText(path, """[{"id": "x2", "image": "a.png", "mask": "m.png", "modality": "CT", "sides": "up"}]""");
        e = Assert.Throws<InvalidDataException>(() => FindingsData.Load(path));
        Assert.Contains("'sides'", e.Message);
        Assert.Contains("none, left, right, both", e.Message);
    }
}
