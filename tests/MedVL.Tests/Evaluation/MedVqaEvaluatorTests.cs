using System.Text.Json;
using System.Text.Json.Nodes;
using MedVL.Evaluation;

namespace MedVL.Tests.Evaluation;

/// <summary>
/// Against Med-MoE's own scorer: tools/eval/make_vqa_fixtures.py ran upstream run_eval.py / eval_metrics with nltk 3.8
/// over tests/fixtures/eval/vqa_gt.json + vqa_pred.jsonl and recorded every per-item value and the printed table.
/// </summary>
public class MedVqaEvaluatorTests
{
    private static readonly string Dir = TestPaths.Fixture("eval");
    private static readonly List<VqaGroundTruth> Gt = MedVqaEvaluator.ReadGroundTruth(Path.Combine(Dir, "vqa_gt.json"));
    private static readonly List<VqaPrediction> Pred = MedVqaEvaluator.ReadPredictions(Path.Combine(Dir, "vqa_pred.jsonl"));
    private static readonly JsonObject Expected = JsonNode.Parse(File.ReadAllText(Path.Combine(Dir, "vqa_expected.json")))!.AsObject();

    [Fact]
    public void PerItemNormalisationAndMetricsMatchUpstream()
    {
        var items = Expected["per_item"]!.AsArray();
        Assert.Equal(Math.Min(Gt.Count, Pred.Count), items.Count);
        for (int i = 0; i < items.Count; i++)
        {
            var e = items[i]!.AsObject();
            string gv = VqaText.PythonLower(Gt[i].Answer), pv = VqaText.PythonLower(Pred[i].Text);
            Assert.True((string)e["normalized_gt"]! == VqaText.NormalizeWord(gv), $"item {i}: normalize_word({gv})");
            Assert.True((string)e["normalized_pred"]! == VqaText.NormalizeWord(pv), $"item {i}: normalize_word({pv})");
            Assert.Equal((double)e["exact_match"]!, VqaMetrics.ExactMatch(pv, gv), 12);
            var (f1, p, r) = VqaMetrics.F1Score(pv, gv);
            Assert.Equal((double)e["f1"]!, f1, 12);
            Assert.Equal((double)e["precision"]!, p, 12);
            Assert.Equal((double)e["recall"]!, r, 12);
            var bleu = e["bleu"]!.AsArray();
            var weights = new[] { new double[] { 1, 0, 0, 0 }, new double[] { 0, 1, 0, 0 }, new double[] { 0, 0, 1, 0 } };
            for (int k = 0; k < 3; k++)
                Assert.Equal((double)bleu[k]!, VqaMetrics.SentenceBleu(VqaText.PythonSplit(gv), VqaText.PythonSplit(pv), weights[k]), 12);
        }
    }

    [Fact]
    public void AggregateScoresMatchRunEvalTable()
    {
        var s = MedVqaEvaluator.Evaluate(Gt, Pred);
        var t = Expected["table"]!.AsObject();
        // tabulate printed 4 decimals
        Assert.Equal((double)t["Exact Match Score"]!, s.ExactMatch, 4);
        Assert.Equal((double)t["F1 Score"]!, s.F1, 4);
        Assert.Equal((double)t["Precision"]!, s.Precision, 4);
        Assert.Equal((double)t["Recall"]!, s.OpenRecall, 4);
        Assert.Equal((double)t["BLEU Score (Weight 1)"]!, s.Bleu1, 4);
        Assert.Equal((double)t["BLEU Score (Weight 2)"]!, s.Bleu2, 4);
        Assert.Equal((double)t["BLEU Score (Weight 3)"]!, s.Bleu3, 4);
        Assert.Equal((double)t["yes/no accuracy"]!, s.ClosedAccuracy, 4);
        Assert.Equal((double)t["Closed F1 Score"]!, s.ClosedF1, 4);
        Assert.Equal((double)t["Closed Precision"]!, s.ClosedPrecision, 4);
        Assert.Equal((double)t["Closed Recall"]!, s.ClosedRecall, 4);
        Assert.Equal((int)Expected["n_wrong_closed"]!, s.WrongClosed.Count);
        var firstWrong = Expected["wrong_closed"]!.AsArray()[0]!.AsObject();
        Assert.Equal((string)firstWrong["predicted_answer"]!, s.WrongClosed[0].PredictedAnswer);
        Assert.Equal(Gt.Count(g => MedVqaEvaluator.IsOpen(g.AnswerType)), s.NOpen);
    }

    [Fact]
    public void ClosedAccuracyIsRawSubstringMatch()
    {
        var gt = new List<VqaGroundTruth> { new("1", "q", "No", "CLOSED"), new("2", "q", "yes", "close"), new("3", "q", "left", "close") };
        var pred = new List<VqaPrediction> { new("1", "q", "Not visible"), new("2", "q", "no"), new("3", "q", "LEFT.") };
        var s = MedVqaEvaluator.Evaluate(gt, pred);
        Assert.Equal(200.0 / 3, s.ClosedAccuracy, 10); // "no" is inside "not visible": upstream counts it correct
        Assert.Equal(0, s.NOpen);
        Assert.Equal(0, s.OpenRecall);
    }

    [Fact]
    public void BadFilesNameTheFileAndField()
    {
        var dir = Directory.CreateTempSubdirectory("medvl-eval");
        var gtPath = Path.Combine(dir.FullName, "gt.json");
        File.WriteAllText(gtPath, "[{\"id\": 1, \"answer_type\": \"open\"}]");
        var ex = Assert.Throws<InvalidDataException>(() => MedVqaEvaluator.ReadGroundTruth(gtPath));
        Assert.Contains("gt.json", ex.Message);
        Assert.Contains("conversations", ex.Message);
        var predPath = Path.Combine(dir.FullName, "pred.jsonl");
        File.WriteAllText(predPath, "{\"text\": \"a\"}\n{not json\n");
        var ex2 = Assert.Throws<InvalidDataException>(() => MedVqaEvaluator.ReadPredictions(predPath));
        Assert.Contains("line 2", ex2.Message);
        dir.Delete(true);
    }

    [Fact]
    public void CliPrintsJsonWithTheIssueKeys()
    {
        var (code, stdout, stderr) = CliRunner.Run("eval", "vqa", "--gt", Path.Combine(Dir, "vqa_gt.json"), "--pred", Path.Combine(Dir, "vqa_pred.jsonl"), "--json");
        Assert.True(code == 0, stderr);
        var o = JsonNode.Parse(stdout)!.AsObject();
        foreach (var k in new[] { "open_recall", "closed_accuracy", "exact_match", "f1", "precision", "bleu1", "bleu2", "bleu3", "n_open", "n_closed" })
            Assert.True(o.ContainsKey(k), k);
        Assert.Equal((double)Expected["table"]!["Recall"]!, (double)o["open_recall"]!, 4);
        Assert.Equal((double)Expected["table"]!["yes/no accuracy"]!, (double)o["closed_accuracy"]!, 4);
    }
}
