using System.Text;
using System.Text.Json;
using MedVL.Evaluation;
using MedVL.Generation;
using MedVL.IO;
using MedVL.Models.Blocks;
using MedVL.Vision.Codecs;
using MedVL.Vision.ImageTokenizers;
using MedVL.Vision.Preprocessing;

namespace MedVL.Training;

/// <summary>PSNR / SSIM of one generation task (mean over its items) beside two references: the input image itself
/// (what the released weights return, healthgpt.md §7 issue #38) and the target through the image tokenizer (the
/// best any index sequence can reach).</summary>
public sealed record GenerationScores(string Task, int Count, double Psnr, double Ssim, double CopyInputPsnr, double CopyInputSsim, double TokenizerPsnr, double TokenizerSsim);

/// <summary>
/// Generates the output image of every item of a generation file (gen_test.json: id, task, image, output_image, the
/// instruction), writes each as PNG and one JSON line per item (id, task, image and target paths, output PNG, psnr,
/// ssim) to predictions.jsonl, and scores them per task.
/// </summary>
public static class ImagePredictor
{
    public static IReadOnlyList<GenerationScores> Run(ImageGenerator generator, IImageTokenizer imageTokenizer, PixelCache pixels, AdapterSelection adapters,
        string dataPath, string outputDir, int? limit = null, CancellationToken ct = default)
    {
        using var doc = ConversationData.OpenList(dataPath, "generation items");
        string root = Path.GetDirectoryName(Path.GetFullPath(dataPath))!;
        Directory.CreateDirectory(outputDir);
        var rows = new List<(string Task, double P, double S, double CP, double CS, double TP, double TS)>();
        var lines = new StringBuilder();
        int i = 0;
        foreach (var item in doc.RootElement.EnumerateArray())
        {
            ct.ThrowIfCancellationRequested();
            if (limit is { } l && i >= l) break;
            string id = item.TryGetProperty("id", out var idEl) ? idEl.ToString() : $"#{i}";
            string Field(string name) => item.TryGetProperty(name, out var e) && e.ValueKind == JsonValueKind.String ? e.GetString()!
                : throw new InvalidDataException($"{dataPath}: item {i} ({id}): field '{name}' is missing");
            string task = item.TryGetProperty("task", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "generation";
            string input = Path.Combine(root, Field("image")), target = Path.Combine(root, Field("output_image"));
            if (!item.TryGetProperty("conversations", out var conv) || conv.ValueKind != JsonValueKind.Array || conv.GetArrayLength() == 0
                || !conv[0].TryGetProperty("value", out var v) || v.GetString() is not { } q)
                throw new InvalidDataException($"{dataPath}: item {i} ({id}): field 'conversations' needs a first human turn with the instruction");
            string instruction = q.Replace("<image>", "").Trim();
            using var px = pixels.Tensor(input);
            var result = generator.Generate(instruction, px, adapters, cancellationToken: ct);
            var truth = Fit(ImageConversion.ToRgb8(ImageLoader.Load(target)), imageTokenizer.ImageSize);
            var copy = Fit(ImageConversion.ToRgb8(ImageLoader.Load(input)), imageTokenizer.ImageSize);
            var ceiling = imageTokenizer.Decode(imageTokenizer.Encode(truth));
            string file = $"{SafeName(id)}.png";
            PngEncoder.Save(Path.Combine(outputDir, file), result.Image.Pixels, result.Image.Width, result.Image.Height, 3);
            double p = ImageMetrics.Psnr(truth, result.Image), s = ImageMetrics.Ssim(truth, result.Image);
            rows.Add((task, p, s, ImageMetrics.Psnr(truth, copy), ImageMetrics.Ssim(truth, copy), ImageMetrics.Psnr(truth, ceiling), ImageMetrics.Ssim(truth, ceiling)));
            lines.AppendLine(JsonSerializer.Serialize(new { id, task, image = input, target, output = file, psnr = Math.Round(p, 4), ssim = Math.Round(s, 5) }));
            i++;
        }
        AtomicFile.WriteAllText(Path.Combine(outputDir, "predictions.jsonl"), lines.ToString());
        // An identical image has infinite PSNR: cap at 100 dB so a mean stays finite.
        static double Cap(double v) => Math.Min(v, 100);
        return rows.GroupBy(r => r.Task).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => new GenerationScores(g.Key, g.Count(),
            g.Average(r => Cap(r.P)), g.Average(r => r.S), g.Average(r => Cap(r.CP)), g.Average(r => r.CS), g.Average(r => Cap(r.TP)), g.Average(r => r.TS))).ToList();
    }

    private static Rgb8Image Fit(Rgb8Image img, int size) => img.Width == size && img.Height == size ? img : PilResample.Resize(img, size, size);

    private static string SafeName(string id) => new(id.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' ? c : '_').ToArray());
}
