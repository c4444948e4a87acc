using System.Text.Json;

namespace MedVL.Tests.Training;

/// <summary>The README's main command, shortened (`--quick`): every step runs and the outputs are where it says.</summary>
public class DemoCliTests
{
    [Fact]
    public void QuickDemo_TrainsBothModels_ScoresThem_AndWritesTheReport()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"medvl-demo-test-{Guid.NewGuid():N}");
        try
        {
            var (code, stdout, stderr) = CliRunner.Run(["demo", "--quick", "--json", "--out", dir], TimeSpan.FromMinutes(8));
            Assert.True(code == 0, stderr + stdout);
            var j = JsonDocument.Parse(stdout.Trim().Split('\n').Last()).RootElement;
            // The answer-prior baseline is far from the targets (closed ≥ 90, open ≥ 70): MedSynth is not guessable from priors.
            Assert.InRange(j.GetProperty("baseline").GetProperty("closed_accuracy").GetDouble(), 20, 80);
            foreach (var name in new[] { "tiny-healthgpt", "tiny-medmoe" })
            {
                var m = j.GetProperty("models").GetProperty(name);
                double closed = m.GetProperty("closed_accuracy").GetDouble(), open = m.GetProperty("open_recall").GetDouble();
                Assert.InRange(closed, 0, 100);
                Assert.InRange(open, 0, 100);
                Assert.True(m.GetProperty("n_closed").GetInt32() > 0 && m.GetProperty("n_open").GetInt32() > 0);
                Assert.NotNull(m.GetProperty("answer").GetString());
                Assert.True(File.Exists(Path.Combine(dir, name, "predictions.jsonl")));
                Assert.True(File.Exists(Path.Combine(dir, name, "model", "model.safetensors")));
                Assert.NotEmpty(File.ReadAllLines(Path.Combine(dir, name, "stage0-pretrain", "metrics.jsonl")));
            }
            // tiny-healthgpt pretrains the vision tower on MedSynth's ground truth; tiny-medmoe starts from that same tower
            // (both papers start from one CLIP) and keeps it frozen, so the two trained towers are identical
            Assert.NotEmpty(File.ReadAllLines(Path.Combine(dir, "tiny-healthgpt", "stage0-vision", "metrics.jsonl")));
            Assert.False(Directory.Exists(Path.Combine(dir, "tiny-medmoe", "stage0-vision")));
            Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "tiny-healthgpt", "model", "vision_tower", "model.safetensors")),
                File.ReadAllBytes(Path.Combine(dir, "tiny-medmoe", "model", "vision_tower", "model.safetensors")));
            // Med-MoE's trained folder is a Med-MoE folder (moe block, experts), HealthGPT's comes with its H-LoRA plugin.
            Assert.Contains("\"moe\"", File.ReadAllText(Path.Combine(dir, "tiny-medmoe", "model", "config.json")));
            Assert.True(File.Exists(Path.Combine(dir, "tiny-healthgpt", "model", "hlora_comprehension.safetensors")));
            // HealthGPT's generation task: the generation plugin, its fusion layer and image tokenizer, held-out images scored.
            foreach (var f in new[] { "hlora_generation.safetensors", "fusion_layer_weights.safetensors", "image_tokenizer/config.json" })
                Assert.True(File.Exists(Path.Combine(dir, "tiny-healthgpt", "model", f)), f);
            var gen = j.GetProperty("generation");
            Assert.NotEmpty(gen.EnumerateObject());
            foreach (var task in gen.EnumerateObject())
            {
                Assert.True(task.Value.GetProperty("n").GetInt32() > 0);
                Assert.InRange(task.Value.GetProperty("ssim").GetDouble(), -1, 1);
                Assert.InRange(task.Value.GetProperty("psnr").GetDouble(), 0, 100);
                // Each patch's nearest code minimises the squared error: the tokenizer ceiling bounds the PSNR any index
                // sequence reaches (up to the uint8 truncation of decoding).
                Assert.True(task.Value.GetProperty("tokenizer_psnr").GetDouble() >= task.Value.GetProperty("psnr").GetDouble() - 0.05);
            }
            Assert.NotEmpty(File.ReadAllLines(Path.Combine(dir, "tiny-healthgpt", "generated", "predictions.jsonl")));
            string report = File.ReadAllText(Path.Combine(dir, "report", "report.md"));
            Assert.Contains("Per modality", report);
            Assert.Contains("answer-prior baseline", report);
            Assert.Contains("Held-out image generation", report);
            Assert.Contains("-generated.png)", report);
            Assert.StartsWith("<svg", File.ReadAllText(Path.Combine(dir, "report", "curves-tiny-medmoe.svg")));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }
}
