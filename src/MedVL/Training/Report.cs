using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using MedVL.Evaluation;
using MedVL.IO;

namespace MedVL.Training;

/// <summary>One scored model for the report.</summary>
public sealed record ReportModel(string Name, string RunDir, MedVqaScores Scores, IReadOnlyList<VqaPrediction> Predictions);

/// <summary>
/// The run report (report.md and report.html): Med-VQA metrics per model beside the answer-prior baseline, a
/// per-modality table (closed accuracy, open recall), sample images with question, answer and each model's prediction,
/// and the training curves of every stage as an SVG picture (loss per optimizer step, from metrics.jsonl).
/// </summary>
public static class Report
{
    public static void Write(string outDir, string dataDir, IReadOnlyList<ReportModel> models, MedVqaScores? baseline, int samples = 6)
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
        string[] colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];
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
