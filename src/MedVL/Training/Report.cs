using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using MedVL.Evaluation;
using MedVL.IO;

namespace MedVL.Training;

/// <summary>One scored model for the report.</summary>
public sealed record ReportModel(string Name, string RunDir, MedVqaScores Scores, IReadOnlyList<VqaPrediction> Predictions);

/// <summary>A model's generated images for the report: <see cref="ImagePredictor"/>'s output folder and scores.</summary>
public sealed record ReportGeneration(string Model, string GeneratedDir, IReadOnlyList<GenerationScores> Scores);

/// <summary>
/// The run report (report.md and report.html): Med-VQA metrics per model beside the answer-prior baseline, a
/// per-modality table (closed accuracy, open recall), sample images with question, answer and each model's prediction,
/// the training curves of every stage as an SVG picture (loss per optimizer step, from metrics.jsonl) and, for a
/// generation run, PSNR / SSIM per task beside the input-returned and tokenizer-ceiling references with sample input,
/// generated and target images.
/// </summary>
public static class Report
{
    public static void Write(string outDir, string dataDir, IReadOnlyList<ReportModel> models, MedVqaScores? baseline, int samples = 6,
        ReportGeneration? generation = null)
    {
        Directory.CreateDirectory(outDir);
        var questions = Predictor.ReadQuestions(Path.Combine(dataDir, "vqa_test.json"));
        var gt = MedVqaEvaluator.ReadGroundTruth(Path.Combine(dataDir, "vqa_test.json"));
        var md = new StringBuilder();
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>MedVL report</title><style>body{font-family:sans-serif;max-width:1000px;margin:auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}img{image-rendering:pixelated;width:128px}</style></head><body>");
        md.AppendLine("# MedVL report").AppendLine();
        html.Append("<h1>MedVL report</h1>");

        // Overall metrics.
        var header = new[] { "metric" }.Concat(models.Select(m => m.Name)).Concat(baseline is null ? [] : new[] { "answer-prior baseline" }).ToArray();
        var rows = new List<string[]>
        {
            Row("closed accuracy (%)", models.Select(m => m.Scores.ClosedAccuracy), baseline?.ClosedAccuracy),
            Row("open recall (%)", models.Select(m => m.Scores.OpenRecall), baseline?.OpenRecall),
            Row("exact match (%)", models.Select(m => m.Scores.ExactMatch), baseline?.ExactMatch),
            Row("F1 (%)", models.Select(m => m.Scores.F1), baseline?.F1),
            Row("BLEU-1 (%)", models.Select(m => m.Scores.Bleu1), baseline?.Bleu1),
        };
        Table(md, html, "Held-out Med-VQA (Med-MoE run_eval.py metrics)", header, rows);

        // Per modality.
        var mods = questions.Select(q => q.Modality ?? "unknown").Distinct().Order(StringComparer.Ordinal).ToArray();
        var perHeader = new[] { "modality", "questions" }.Concat(models.SelectMany(m => new[] { $"{m.Name} closed", $"{m.Name} open" })).ToArray();
        var perRows = new List<string[]>();
        foreach (var mod in mods)
        {
            var idx = Enumerable.Range(0, questions.Count).Where(i => (questions[i].Modality ?? "unknown") == mod).ToArray();
            var row = new List<string> { mod, idx.Length.ToString(CultureInfo.InvariantCulture) };
            foreach (var m in models)
            {
                var s = MedVqaEvaluator.Evaluate(idx.Select(i => gt[i]).ToList(), idx.Select(i => m.Predictions[i]).ToList());
                row.Add(s.NClosed > 0 ? s.ClosedAccuracy.ToString("F1", CultureInfo.InvariantCulture) : "–");
                row.Add(s.NOpen > 0 ? s.OpenRecall.ToString("F1", CultureInfo.InvariantCulture) : "–");
            }
            perRows.Add(row.ToArray());
        }
        Table(md, html, "Per modality (closed accuracy % / open recall %)", perHeader, perRows);

        // Samples.
        md.AppendLine("## Samples").AppendLine();
        html.Append("<h2>Samples</h2><table><tr><th>image</th><th>question</th><th>answer</th>");
        foreach (var m in models) html.Append("<th>").Append(WebUtility.HtmlEncode(m.Name)).Append("</th>");
        html.Append("</tr>");
        string imgDir = Path.Combine(outDir, "samples");
        Directory.CreateDirectory(imgDir);
        int step = Math.Max(1, questions.Count / Math.Max(1, samples));
        for (int i = 0, n = 0; i < questions.Count && n < samples; i += step, n++)
        {
            var q = questions[i];
            string? rel = null;
            if (q.ImagePath is not null && File.Exists(q.ImagePath))
            {
                rel = "samples/" + Path.GetFileName(q.ImagePath);
                File.Copy(q.ImagePath, Path.Combine(outDir, rel), overwrite: true);
            }
            md.Append($"- {(rel is null ? "" : $"![{q.Id}]({rel}) ")}**{q.Question}** — answer: `{q.Answer}`");
            foreach (var m in models) md.Append($"; {m.Name}: `{m.Predictions[i].Text}`");
            md.AppendLine();
            html.Append("<tr><td>").Append(rel is null ? "" : $"<img src=\"{rel}\">").Append("</td><td>").Append(WebUtility.HtmlEncode(q.Question))
                .Append("</td><td>").Append(WebUtility.HtmlEncode(q.Answer)).Append("</td>");
            foreach (var m in models) html.Append("<td>").Append(WebUtility.HtmlEncode(m.Predictions[i].Text)).Append("</td>");
            html.Append("</tr>");
        }
        html.Append("</table>");
        md.AppendLine();

        if (generation is not null) Generation(md, html, outDir, generation, samples);

        // Training curves.
        md.AppendLine("## Training curves").AppendLine();
        html.Append("<h2>Training curves</h2>");
        foreach (var m in models)
        {
            var svg = LossCurves(m.RunDir, m.Name);
            if (svg is null) continue;
            string file = $"curves-{m.Name}.svg";
            AtomicFile.WriteAllText(Path.Combine(outDir, file), svg);
            md.AppendLine($"![{m.Name} training loss]({file})").AppendLine();
            html.Append($"<p><img style=\"width:720px\" src=\"{file}\"></p>");
        }
        html.Append("</body></html>");
        AtomicFile.WriteAllText(Path.Combine(outDir, "report.md"), md.ToString());
        AtomicFile.WriteAllText(Path.Combine(outDir, "report.html"), html.ToString());
    }

    private static void Generation(StringBuilder md, StringBuilder html, string outDir, ReportGeneration g, int samples)
    {
        string F(double v, string f) => v.ToString(f, CultureInfo.InvariantCulture);
        Table(md, html, $"Held-out image generation ({g.Model}; PSNR dB / SSIM against the target)", ["task", "items", "generated", "input returned unchanged", "image tokenizer ceiling"],
            g.Scores.Select(x => new[] { x.Task, x.Count.ToString(CultureInfo.InvariantCulture), $"{F(x.Psnr, "F2")} / {F(x.Ssim, "F3")}",
                $"{F(x.CopyInputPsnr, "F2")} / {F(x.CopyInputSsim, "F3")}", $"{F(x.TokenizerPsnr, "F2")} / {F(x.TokenizerSsim, "F3")}" }).ToList());
        string preds = Path.Combine(g.GeneratedDir, "predictions.jsonl");
        if (!File.Exists(preds)) return;
        // One sample per task first, then in file order.
        var items = File.ReadLines(preds).Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var firsts = Enumerable.Range(0, items.Count).GroupBy(i => items[i].GetProperty("task").GetString()).Select(x => x.First());
        var pick = firsts.Concat(Enumerable.Range(0, items.Count)).Distinct().Take(samples).Select(i => items[i]).ToList();
        string dir = Path.Combine(outDir, "generated");
        Directory.CreateDirectory(dir);
        md.AppendLine("## Generated images (input, generated, target)").AppendLine();
        html.Append("<h2>Generated images</h2><table><tr><th>task</th><th>input</th><th>generated</th><th>target</th><th>PSNR / SSIM</th></tr>");
        foreach (var e in pick)
        {
            string id = e.GetProperty("output").GetString()!;
            string Copy(string src, string suffix)
            {
                string rel = $"generated/{Path.GetFileNameWithoutExtension(id)}-{suffix}.png";
                File.Copy(src, Path.Combine(outDir, rel), overwrite: true);
                return rel;
            }
            string input = Copy(e.GetProperty("image").GetString()!, "input"), output = Copy(Path.Combine(g.GeneratedDir, id), "generated"),
                target = Copy(e.GetProperty("target").GetString()!, "target");
            string task = e.GetProperty("task").GetString()!, score = $"{F(e.GetProperty("psnr").GetDouble(), "F2")} / {F(e.GetProperty("ssim").GetDouble(), "F3")}";
            md.AppendLine($"- {task}: ![input]({input}) ![generated]({output}) ![target]({target}) {score}");
            html.Append("<tr><td>").Append(WebUtility.HtmlEncode(task)).Append("</td>")
                .Append($"<td><img src=\"{input}\"></td><td><img src=\"{output}\"></td><td><img src=\"{target}\"></td><td>{score}</td></tr>");
        }
        html.Append("</table>");
        md.AppendLine();
    }

    private static string[] Row(string name, IEnumerable<double> values, double? baseline) =>
        [name, .. values.Select(v => v.ToString("F1", CultureInfo.InvariantCulture)), .. baseline is { } b ? new[] { b.ToString("F1", CultureInfo.InvariantCulture) } : []];

    private static void Table(StringBuilder md, StringBuilder html, string title, string[] header, List<string[]> rows)
    {
        md.AppendLine($"## {title}").AppendLine();
        md.AppendLine("| " + string.Join(" | ", header) + " |");
        md.AppendLine("|" + string.Concat(header.Select(_ => "---|")));
        foreach (var r in rows) md.AppendLine("| " + string.Join(" | ", r) + " |");
        md.AppendLine();
        html.Append("<h2>").Append(WebUtility.HtmlEncode(title)).Append("</h2><table><tr>");
        foreach (var h in header) html.Append("<th>").Append(WebUtility.HtmlEncode(h)).Append("</th>");
        html.Append("</tr>");
        foreach (var r in rows)
        {
            html.Append("<tr>");
            foreach (var c in r) html.Append("<td>").Append(WebUtility.HtmlEncode(c)).Append("</td>");
            html.Append("</tr>");
        }
        html.Append("</table>");
    }

    /// <summary>Loss per step of every stage of a run (stage folders with metrics.jsonl, in pipeline order), one SVG.</summary>
    public static string? LossCurves(string runDir, string title)
    {
        var stages = new List<(string Name, List<double> Loss)>();
        string pipeline = Path.Combine(runDir, "pipeline.json");
        var names = File.Exists(pipeline) ? PipelineConfig.Load(pipeline).Stages.Select(s => s.Name).ToArray()
            : Directory.GetDirectories(runDir).Select(Path.GetFileName).Order().ToArray()!;
        foreach (var s in names)
        {
            string f = Path.Combine(runDir, s!, "metrics.jsonl");
            if (!File.Exists(f)) continue;
            stages.Add((s!, File.ReadLines(f).Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble()).ToList()));
        }
        int total = stages.Sum(s => s.Loss.Count);
        if (total == 0) return null;
        double max = Math.Max(1e-6, stages.SelectMany(s => s.Loss).Where(double.IsFinite).Max());
        const int W = 720, H = 240, L = 40, B = 24;
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"11\">");
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{L}\" y=\"14\">{WebUtility.HtmlEncode(title)}: training loss per step (max {max:F2})</text>");
        sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{L}\" y1=\"{H - B}\" x2=\"{W - 8}\" y2=\"{H - B}\" stroke=\"#888\"/><line x1=\"{L}\" y1=\"20\" x2=\"{L}\" y2=\"{H - B}\" stroke=\"#888\"/>");
        string[] colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];
        int offset = 0;
        for (int s = 0; s < stages.Count; s++)
        {
            var (name, loss) = stages[s];
            var pts = loss.Select((v, i) => (X: L + (W - 8 - L) * (offset + i) / (double)Math.Max(1, total - 1), Y: (H - B) - (H - B - 24) * Math.Min(v, max) / max));
            sb.Append("<polyline fill=\"none\" stroke=\"").Append(colors[s % colors.Length]).Append("\" points=\"");
            foreach (var (x, y) in pts) sb.Append(CultureInfo.InvariantCulture, $"{x:F1},{y:F1} ");
            sb.Append("\"/>");
            double lx = L + (W - 8 - L) * offset / (double)Math.Max(1, total - 1);
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{lx + 2:F0}\" y=\"{H - 8}\" fill=\"{colors[s % colors.Length]}\">{WebUtility.HtmlEncode(name)}</text>");
            offset += loss.Count;
        }
        sb.Append("</svg>");
        return sb.ToString();
    }
}
