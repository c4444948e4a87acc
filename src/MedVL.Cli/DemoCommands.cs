using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using MedVL.Adapters;
using MedVL.Data.MedSynth;
using MedVL.Evaluation;
using MedVL.Generation;
using MedVL.Models;
using MedVL.Models.Blocks;
using MedVL.Text;
using MedVL.Text.Templates;
using MedVL.Training;
using MedVL.Vision.ImageTokenizers;
using Spectre.Console;

namespace MedVL.Cli;

/// <summary>
/// `medvl demo`, the README's main command: from nothing, generate MedSynth; train tiny-healthgpt through its stages
/// (stage 0 pretraining of the tiny base, then HealthGPT's stages 1–3 with an H-LoRA comprehension plugin) and
/// tiny-medmoe through its steps (stage 0, then Med-MoE's steps 1–3 with router pre-training and upcycled experts +
/// meta expert); score both on the held-out split beside the answer-prior baseline; answer one question about an
/// image; write the report.
/// </summary>
internal static class DemoCommands
{
    public static Command Build()
    {
        var outDir = new Option<DirectoryInfo?>("--out") { Description = "where to write data, runs and the report (default: a new temporary folder)" };
        var count = new Option<int>("--count") { Description = "MedSynth subjects", DefaultValueFactory = _ => 1000 };
        var scale = new Option<double>("--epochs-scale") { Description = "multiply every stage's epochs", DefaultValueFactory = _ => 1.0 };
        var quick = new Option<bool>("--quick") { Description = "a shortened run (60 subjects, a fraction of the epochs) to check the machinery" };
        var image = new Option<FileInfo?>("--image") { Description = "image to ask about (PNG, JPEG, DICOM, NIfTI; default: a held-out MedSynth image)" };
        var question = new Option<string?>("--question") { Description = "question about the image", DefaultValueFactory = _ => "Is there a lesion in this image?" };
        var json = new Option<bool>("--json") { Description = "print the results as one JSON object" };
        var cmd = new Command("demo", "Generate MedSynth, train tiny HealthGPT and Med-MoE through their stages, score them, answer a question, write a report")
            { outDir, count, scale, quick, image, question, json };
        cmd.SetAction((r, ct) =>
        {
            var sw = Stopwatch.StartNew();
            bool isQuick = r.GetValue(quick), asJson = r.GetValue(json);
            var dir = r.GetValue(outDir)?.FullName ?? Path.Combine(Path.GetTempPath(), $"medvl-demo-{Guid.NewGuid():N}");
            Directory.CreateDirectory(dir);
            var ds = Path.Combine(dir, "medsynth");
            var o = new MedSynthOptions { Seed = 2026, Count = isQuick ? 60 : r.GetValue(count), ImageSize = 64 };
            if (!Directory.Exists(ds) || !File.Exists(Path.Combine(ds, "vqa_test.json"))) MedSynthDataset.Write(ds, o, SynthCommands.SavePng, null, ct);
            void Say(string s) { if (!asJson) AnsiConsole.MarkupLine(s); }
            Say($"[bold]MedVL demo[/]: MedSynth data set [blue]{Markup.Escape(ds)}[/] ({o.Count} subjects, CT / MRI / X-ray / pathology)");

            double s = isQuick ? 0.05 : r.GetValue(scale);
            var gt = MedVqaEvaluator.ReadGroundTruth(Path.Combine(ds, "vqa_test.json"));
            var baseline = PriorBaseline(ds, gt);
            var questions = Predictor.ReadQuestions(Path.Combine(ds, "vqa_test.json"));
            var models = new List<(string Name, PipelineResult Result, MedVqaScores Scores, List<VqaPrediction> Preds, string Answer)>();
            IReadOnlyList<GenerationScores> generation = [];
            string askImage = r.GetValue(image)?.FullName ?? questions.First(q => q.ImagePath is not null).ImagePath!;
            string askQuestion = r.GetValue(question)!;
            // Both papers start from the same CLIP: tiny-medmoe reuses the tower tiny-healthgpt's stage 0 pretrained.
            string sharedTower = Path.Combine(dir, "tiny-healthgpt", "model", "vision_tower");
            foreach (var (name, makeConfig) in new (string, Func<PipelineConfig>)[]
                { ("tiny-healthgpt", () => PipelineConfig.TinyHealthGpt(ds, s)), ("tiny-medmoe", () => PipelineConfig.TinyMedMoe(ds, s, sharedTower)) })
            {
                var config = makeConfig();
                Say($"[bold]{name}[/]: {string.Join(" → ", config.Stages.Select(x => x.Name))}");
                string run = Path.Combine(dir, name);
                var result = TrainCommands.RunWithProgress(config, run, resume: false, ct, quiet: asJson);
                using var m = LoadedModel.Open(result.ModelDir, needVision: true);
                var llava = m.Llava!;
                var tok = Tokenizer.FromDirectory(result.ModelDir);
                var tpl = ConversationTemplates.Get(config.Template);
                using var plugin = result.AdapterPath is null ? null : HealthGptPlugin.Load(llava.LanguageModel, result.AdapterPath,
                    new HealthGptPluginOptions { Name = result.Task!, Alpha = config.Stages.Last(x => x.Task == result.Task && x.Before == "attach-hlora").HLoraAlpha });
                var pixels = new PixelCache(PreprocessCommands.ForModel(result.ModelDir, null));
                var preds = Predictor.Run(llava, tok, tpl, pixels, questions, Path.Combine(run, "predictions.jsonl"), name, plugin?.Selection(), 8, ct: ct);
                var scores = MedVqaEvaluator.Evaluate(gt, preds);
                using var px = m.Pixels(askImage);
                var answer = Predictor.Answer(llava, tok, tpl, askQuestion, px, plugin?.Selection(), 12, ct);
                models.Add((name, result, scores, preds, answer));
                Say($"  held-out closed accuracy [bold]{scores.ClosedAccuracy:F1}%[/], open recall [bold]{scores.OpenRecall:F1}%[/] (after {sw.Elapsed.TotalSeconds:F0} s)");
                if (result.Generation is { } g)
                {
                    // HealthGPT's generation plugin as gen_infer.sh loads it: its H-LoRA and projector (ViT layer 1), the fusion layer.
                    using var genPlugin = HealthGptPlugin.Load(llava.LanguageModel, g.AdapterPath, new HealthGptPluginOptions
                    {
                        Name = "generation", Alpha = g.Alpha, VisionSelectLayer = g.VisionSelectLayer, FusionLayerPath = g.FusionLayerPath,
                    });
                    var vq = PatchVqTokenizer.Load(g.ImageTokenizerDir);
                    var generator = new ImageGenerator(llava, GenerationData.WithVqTokens(tok, g.VqIndexTokens), tpl, vq);
                    generation = ImagePredictor.Run(generator, vq, pixels, genPlugin.Selection(), Path.Combine(ds, "gen_test.json"),
                        Path.Combine(run, "generated"), isQuick ? 4 : GeneratedImages, ct);
                    foreach (var gs in generation)
                        Say($"  {gs.Task} ({gs.Count} held-out): PSNR [bold]{gs.Psnr:F2}[/] dB, SSIM [bold]{gs.Ssim:F3}[/] — input returned unchanged {gs.CopyInputPsnr:F2} dB / {gs.CopyInputSsim:F3}, image-tokenizer ceiling {gs.TokenizerPsnr:F2} dB / {gs.TokenizerSsim:F3}");
                }
            }
            string reportDir = Path.Combine(dir, "report");
            Report.Write(reportDir, ds, models.Select(m => new ReportModel(m.Name, Path.Combine(dir, m.Name), m.Scores, m.Preds)).ToList(), baseline,
                generation: generation.Count == 0 ? null : new ReportGeneration("tiny-healthgpt", Path.Combine(dir, "tiny-healthgpt", "generated"), generation));
            if (asJson)
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    data = ds, report = Path.Combine(reportDir, "report.html"), seconds = Math.Round(sw.Elapsed.TotalSeconds, 1),
                    question = askQuestion, image = askImage,
                    baseline = new { closed_accuracy = baseline.ClosedAccuracy, open_recall = baseline.OpenRecall },
                    generation = generation.ToDictionary(g => g.Task, g => (object)new
                    {
                        n = g.Count, psnr = g.Psnr, ssim = g.Ssim, copy_input_psnr = g.CopyInputPsnr, copy_input_ssim = g.CopyInputSsim,
                        tokenizer_psnr = g.TokenizerPsnr, tokenizer_ssim = g.TokenizerSsim,
                    }),
                    models = models.ToDictionary(m => m.Name, m => (object)new
                    {
                        closed_accuracy = m.Scores.ClosedAccuracy, open_recall = m.Scores.OpenRecall, exact_match = m.Scores.ExactMatch,
                        n_open = m.Scores.NOpen, n_closed = m.Scores.NClosed, answer = m.Answer, model = m.Result.ModelDir,
                    }),
                }));
                return Task.FromResult(0);
            }
            var table = new Table().AddColumn("Held-out Med-VQA (run_eval.py)");
            foreach (var m in models) table.AddColumn(new TableColumn(m.Name).RightAligned());
            table.AddColumn(new TableColumn("answer-prior baseline").RightAligned());
            table.AddRow(["Closed accuracy (%)", .. models.Select(m => m.Scores.ClosedAccuracy.ToString("F1")), baseline.ClosedAccuracy.ToString("F1")]);
            table.AddRow(["Open recall (%)", .. models.Select(m => m.Scores.OpenRecall.ToString("F1")), baseline.OpenRecall.ToString("F1")]);
            table.AddRow(["Exact match (%)", .. models.Select(m => m.Scores.ExactMatch.ToString("F1")), baseline.ExactMatch.ToString("F1")]);
            AnsiConsole.Write(table);
            if (generation.Count > 0)
            {
                var gt2 = new Table().AddColumn("tiny-healthgpt generation (held-out)").AddColumn(new TableColumn("n").RightAligned())
                    .AddColumn(new TableColumn("PSNR dB / SSIM").RightAligned()).AddColumn(new TableColumn("input returned").RightAligned())
                    .AddColumn(new TableColumn("tokenizer ceiling").RightAligned());
                foreach (var g in generation)
                    gt2.AddRow(g.Task, g.Count.ToString(), $"{g.Psnr:F2} / {g.Ssim:F3}", $"{g.CopyInputPsnr:F2} / {g.CopyInputSsim:F3}", $"{g.TokenizerPsnr:F2} / {g.TokenizerSsim:F3}");
                AnsiConsole.Write(gt2);
            }
            AnsiConsole.MarkupLine($"[bold]Q:[/] {Markup.Escape(askQuestion)} ([blue]{Markup.Escape(askImage)}[/])");
            foreach (var m in models) AnsiConsole.MarkupLine($"  [bold]{m.Name}:[/] {Markup.Escape(m.Answer)}");
            AnsiConsole.MarkupLine($"Report: [blue]{Markup.Escape(Path.Combine(reportDir, "report.html"))}[/] — {sw.Elapsed.TotalSeconds:F0} s in all");
            return Task.FromResult(0);
        });
        return cmd;
    }

    /// <summary>Held-out generation items the demo scores (each is 64 greedy decoding steps).</summary>
    private const int GeneratedImages = 90;

    /// <summary>The answer-prior baseline: for each (question type, question) the most frequent training answer.</summary>
    private static MedVqaScores PriorBaseline(string ds, IReadOnlyList<VqaGroundTruth> test)
    {
        var train = MedVqaEvaluator.ReadGroundTruth(Path.Combine(ds, "vqa_train.json"));
        var prior = train.GroupBy(p => p.Question)
            .ToDictionary(g => g.Key, g => g.GroupBy(p => p.Answer).OrderByDescending(a => a.Count()).ThenBy(a => a.Key, StringComparer.Ordinal).First().Key);
        return MedVqaEvaluator.Evaluate(test, test.Select(g => new VqaPrediction(g.Id, g.Question, prior.TryGetValue(g.Question, out var a) ? a : "yes")).ToList());
    }
}
