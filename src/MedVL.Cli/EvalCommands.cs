using System.CommandLine;
using System.Text.Json;
using MedVL.Evaluation;
using MedVL.IO;
using Spectre.Console;

namespace MedVL.Cli;

/// <summary>`medvl eval vqa`: Med-MoE's run_eval.py scoring (and HealthGPT's close/all) of a prediction file.</summary>
internal static class EvalCommands
{
    public static Command Build()
    {
        var gt = new Option<FileInfo>("--gt") { Description = "test file (JSON list: conversations, answer_type)", Required = true };
        var pred = new Option<FileInfo>("--pred") { Description = "predictions (JSONL with \"text\"), in test-file order", Required = true };
        var json = new Option<bool>("--json") { Description = "print one JSON object instead of a table" };
        var wrong = new Option<FileInfo?>("--output") { Description = "write the wrong closed answers here (run_eval.py's --output)" };
        var vqa = new Command("vqa", "Score Med-VQA predictions exactly as Med-MoE's run_eval.py (paired by position)") { gt, pred, json, wrong };
        vqa.SetAction(r =>
        {
            var g = MedVqaEvaluator.ReadGroundTruth(r.GetValue(gt)!.FullName);
            var p = MedVqaEvaluator.ReadPredictions(r.GetValue(pred)!.FullName);
            var s = MedVqaEvaluator.Evaluate(g, p);
            var cls = MedVqaEvaluator.ClassificationAccuracy(g, p);
            if (g.Count != p.Count)
                Console.Error.WriteLine($"warning: {g.Count} questions but {p.Count} predictions; scored the first {s.Paired} pairs (as upstream's zip)");
            if (r.GetValue(wrong) is { } w)
            {
                var rows = s.WrongClosed.Select(x => new Dictionary<string, string> { ["prompt"] = x.Prompt, ["correct_answer"] = x.CorrectAnswer, ["predicted_answer"] = x.PredictedAnswer });
                AtomicFile.WriteAllText(w.FullName, JsonSerializer.Serialize(rows, new JsonSerializerOptions { WriteIndented = true }));
            }
            if (r.GetValue(json))
            {
                var o = new Dictionary<string, object>
                {
                    ["open_recall"] = s.OpenRecall, ["closed_accuracy"] = s.ClosedAccuracy, ["exact_match"] = s.ExactMatch,
                    ["f1"] = s.F1, ["precision"] = s.Precision, ["bleu1"] = s.Bleu1, ["bleu2"] = s.Bleu2, ["bleu3"] = s.Bleu3,
                    ["n_open"] = s.NOpen, ["n_closed"] = s.NClosed, ["closed_f1"] = s.ClosedF1, ["closed_precision"] = s.ClosedPrecision,
                    ["closed_recall"] = s.ClosedRecall, ["healthgpt_close"] = s.HealthGptClose, ["healthgpt_all"] = s.HealthGptAll,
                };
                if (cls.Count > 0) { o["classification_accuracy"] = cls.Accuracy; o["n_classification"] = cls.Count; }
                Console.WriteLine(JsonSerializer.Serialize(o));
                return 0;
            }
            var table = new Table().AddColumn("Metric").AddColumn(new TableColumn("Performance (%)").RightAligned());
            void Row(string name, double v) => table.AddRow(name, v.ToString("F4"));
            Row("Exact Match Score", s.ExactMatch); Row("F1 Score", s.F1); Row("Precision", s.Precision); Row("Recall (Open)", s.OpenRecall);
            Row("BLEU Score (Weight 1)", s.Bleu1); Row("BLEU Score (Weight 2)", s.Bleu2); Row("BLEU Score (Weight 3)", s.Bleu3);
            Row("yes/no accuracy (Closed)", s.ClosedAccuracy); Row("Closed F1 Score", s.ClosedF1); Row("Closed Precision", s.ClosedPrecision);
            Row("Closed Recall", s.ClosedRecall); Row("HealthGPT close", s.HealthGptClose); Row("HealthGPT all", s.HealthGptAll);
            if (cls.Count > 0) Row("Classification accuracy", cls.Accuracy);
            AnsiConsole.Write(table);
            Console.WriteLine($"{s.NOpen} open, {s.NClosed} closed" + (cls.Count > 0 ? $", {cls.Count} classification" : "") + " questions scored");
            return 0;
        });
        return new Command("eval", "Score predictions with the papers' metrics") { vqa };
    }
}
