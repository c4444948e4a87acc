using System.CommandLine;
using System.Text.Json;
using MedVL.Data.MedSynth;
using MedVL.Evaluation;
using Spectre.Console;

namespace MedVL.Cli;

/// <summary>
/// `medvl demo`. The full demo (train tiny HealthGPT and Med-MoE on MedSynth, score them, answer a question, write a
/// report) needs the adapters and training pipelines, which are not built yet. Until then it runs what
/// exists end to end: MedSynth generation and Med-MoE's scorer, on the prior baseline a model has to beat.
/// </summary>
internal static class DemoCommands
{
    public static Command Build()
    {
        var outDir = new Option<DirectoryInfo?>("--out") { Description = "where to write the data set and predictions (default: a new temporary folder)" };
        var count = new Option<int>("--count") { Description = "MedSynth subjects", DefaultValueFactory = _ => 300 };
        var json = new Option<bool>("--json") { Description = "print the scores as one JSON object" };
        var cmd = new Command("demo", "End-to-end demo (today: MedSynth + Med-VQA scoring of the answer-prior baseline; training and the tiny presets are not built yet)") { outDir, count, json };
        cmd.SetAction((r, ct) =>
        {
            var dir = r.GetValue(outDir)?.FullName ?? Path.Combine(Path.GetTempPath(), $"medvl-demo-{Guid.NewGuid():N}");
            var ds = Path.Combine(dir, "medsynth");
            var o = new MedSynthOptions { Seed = 2026, Count = r.GetValue(count), ImageSize = 64 };
            MedSynthDataset.Write(ds, o, SynthCommands.SavePng, null, ct);

            // The baseline: for each question type, the most frequent training answer (the chance level a model must beat).
            var train = MedVqaEvaluator.ReadGroundTruth(Path.Combine(ds, "vqa_train.json"));
            var kinds = ReadKinds(Path.Combine(ds, "vqa_train.json"));
            var prior = train.Zip(kinds).GroupBy(p => (p.Second, p.First.Question))
                .ToDictionary(g => g.Key, g => g.GroupBy(p => p.First.Answer).OrderByDescending(a => a.Count()).ThenBy(a => a.Key, StringComparer.Ordinal).First().Key);
            var test = MedVqaEvaluator.ReadGroundTruth(Path.Combine(ds, "vqa_test.json"));
            var testKinds = ReadKinds(Path.Combine(ds, "vqa_test.json"));
            var predPath = Path.Combine(dir, "prior_baseline.jsonl");
            var preds = new List<VqaPrediction>();
            using (var w = new StreamWriter(predPath))
                foreach (var (g, k) in test.Zip(testKinds))
                {
                    var answer = prior.TryGetValue((k, g.Question), out var a) ? a : "yes";
                    preds.Add(new VqaPrediction(g.Id, g.Question, answer));
                    w.WriteLine(JsonSerializer.Serialize(new { question_id = g.Id, prompt = g.Question, text = answer, answer_id = g.Id, model_id = "prior-baseline", metadata = new { } }));
                }
            var s = MedVqaEvaluator.Evaluate(test, preds);
            if (r.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    status = "partial: training and the tiny presets are not built yet",
                    data = ds, predictions = predPath,
                    baseline = new { open_recall = s.OpenRecall, closed_accuracy = s.ClosedAccuracy, n_open = s.NOpen, n_closed = s.NClosed },
                }));
                return Task.FromResult(0);
            }
            AnsiConsole.MarkupLine("[yellow]MedVL demo (partial).[/] Training the tiny HealthGPT and Med-MoE models, and the report, are [bold]not built yet[/]; see README, Status.");
            AnsiConsole.MarkupLine($"MedSynth data set: [blue]{Markup.Escape(ds)}[/] ({o.Count} subjects, CT/MRI/X-ray/pathology, exact ground truth)");
            var table = new Table().AddColumn("Held-out Med-VQA (run_eval.py metrics)").AddColumn(new TableColumn("answer-prior baseline").RightAligned());
            table.AddRow("Closed accuracy (%)", s.ClosedAccuracy.ToString("F2"));
            table.AddRow("Open recall (%)", s.OpenRecall.ToString("F2"));
            table.AddRow("Questions (open / closed)", $"{s.NOpen} / {s.NClosed}");
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine($"The baseline answers every question with its most frequent training answer: the level a trained model must beat. Predictions: [blue]{Markup.Escape(predPath)}[/]");
            return Task.FromResult(0);
        });
        return cmd;
    }

    private static List<string> ReadKinds(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        return doc.RootElement.EnumerateArray().Select(e => e.TryGetProperty("question_type", out var k) ? k.GetString() ?? "" : "").ToList();
    }
}
