using System.Text.Json;
using System.Text.Json.Nodes;

namespace MedVL.Evaluation;

/// <summary>One ground-truth VQA item as Med-MoE's test files hold it (LLaVA conversation JSON).</summary>
public sealed record VqaGroundTruth(string Id, string Question, string Answer, string AnswerType);

/// <summary>One prediction line of Med-MoE's model_vqa_med.py output (JSONL).</summary>
public sealed record VqaPrediction(string QuestionId, string Prompt, string Text);

public sealed record WrongClosedAnswer(string Prompt, string CorrectAnswer, string PredictedAnswer);

/// <summary>
/// Scores as run_eval.py prints them, in percent. <see cref="OpenRecall"/> is the paper's "Open" column and
/// <see cref="ClosedAccuracy"/> its "Closed" column. HealthGPT released no scoring code: its "close" is the same closed
/// accuracy, and "all" is taken here as the mean over every question of (closed: correct or not; open: recall).
/// </summary>
public sealed record MedVqaScores(
    int Paired, int NOpen, int NClosed,
    double ExactMatch, double F1, double Precision, double OpenRecall,
    double Bleu1, double Bleu2, double Bleu3,
    double ClosedAccuracy, double ClosedF1, double ClosedPrecision, double ClosedRecall,
    double HealthGptClose, double HealthGptAll,
    IReadOnlyList<WrongClosedAnswer> WrongClosed);

public static class MedVqaEvaluator
{
    private static readonly double[][] BleuWeights = { new double[] { 1, 0, 0, 0 }, new double[] { 0, 1, 0, 0 }, new double[] { 0, 0, 1, 0 } };

    public static bool IsOpen(string answerType) => answerType is "open" or "OPEN";
    public static bool IsClosed(string answerType) => answerType is "close" or "CLOSED";
    public static bool IsClassification(string answerType) => answerType is "classification" or "CLASSIFICATION";

    /// <summary>
    /// Accuracy (%) on classification-style questions (answer_type CLASSIFICATION: MedMNIST posed as VQA, med-moe.md
    /// §5.3), which run_eval.py skips; scored as its closed questions are (the lower-cased label is a substring of the
    /// lower-cased answer), items paired by position. Returns (questions, accuracy); accuracy 0 with no such questions.
    /// </summary>
    public static (int Count, double Accuracy) ClassificationAccuracy(IReadOnlyList<VqaGroundTruth> gt, IReadOnlyList<VqaPrediction> pred)
    {
        int n = 0, right = 0;
        for (int i = 0; i < Math.Min(gt.Count, pred.Count); i++)
        {
            if (!IsClassification(gt[i].AnswerType)) continue;
            n++;
            if (VqaText.PythonLower(pred[i].Text).Contains(VqaText.PythonLower(gt[i].Answer), StringComparison.Ordinal)) right++;
        }
        return (n, n == 0 ? 0 : right * 100.0 / n);
    }

    /// <summary>
    /// run_eval.evaluate: items are paired by position (zip: the shorter list decides), both strings lower-cased; other
    /// answer types are skipped, as upstream. Where upstream divides by zero (no open or no closed items) the averages are 0.
    /// </summary>
    public static MedVqaScores Evaluate(IReadOnlyList<VqaGroundTruth> gt, IReadOnlyList<VqaPrediction> pred)
    {
        int paired = Math.Min(gt.Count, pred.Count);
        double em = 0, f1 = 0, prec = 0, rec = 0, b1 = 0, b2 = 0, b3 = 0;
        double cf1 = 0, cprec = 0, crec = 0;
        int nOpen = 0, nClosed = 0, closedCorrect = 0;
        var wrong = new List<WrongClosedAnswer>();
        for (int i = 0; i < paired; i++)
        {
            string gtValue = VqaText.PythonLower(gt[i].Answer);
            string predValue = VqaText.PythonLower(pred[i].Text);
            if (IsOpen(gt[i].AnswerType))
            {
                nOpen++;
                em += VqaMetrics.ExactMatch(predValue, gtValue);
                var (f, p, r) = VqaMetrics.F1Score(predValue, gtValue);
                f1 += f; prec += p; rec += r;
                var refTokens = VqaText.PythonSplit(gtValue);
                var hypTokens = VqaText.PythonSplit(predValue);
                b1 += VqaMetrics.SentenceBleu(refTokens, hypTokens, BleuWeights[0]);
                b2 += VqaMetrics.SentenceBleu(refTokens, hypTokens, BleuWeights[1]);
                b3 += VqaMetrics.SentenceBleu(refTokens, hypTokens, BleuWeights[2]);
            }
            else if (IsClosed(gt[i].AnswerType))
            {
                nClosed++;
                var (f, p, r) = VqaMetrics.F1Score(predValue, gtValue);
                cf1 += f; cprec += p; crec += r;
                if (predValue.Contains(gtValue, StringComparison.Ordinal)) closedCorrect++;
                else wrong.Add(new WrongClosedAnswer(pred[i].Prompt, gtValue, predValue));
            }
        }
        double O(double sum) => nOpen == 0 ? 0 : sum / nOpen * 100;
        double C(double sum) => nClosed == 0 ? 0 : sum / nClosed * 100;
        double closedAcc = C(closedCorrect);
        double all = nOpen + nClosed == 0 ? 0 : (closedCorrect + rec) / (nOpen + nClosed) * 100;
        return new MedVqaScores(paired, nOpen, nClosed, O(em), O(f1), O(prec), O(rec), O(b1), O(b2), O(b3),
            closedAcc, C(cf1), C(cprec), C(crec), closedAcc, all, wrong);
    }

    /// <summary>Read a test file: a JSON list of items with id, conversations (or the misspelt conversatons) and answer_type.</summary>
    public static List<VqaGroundTruth> ReadGroundTruth(string path)
    {
        JsonNode? root;
        try
        {
            using var s = File.OpenRead(path);
            root = JsonNode.Parse(s, documentOptions: new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e);
        }
        if (root is not JsonArray items) throw new InvalidDataException($"{path}: expected a JSON list of questions at the top level");
        var result = new List<VqaGroundTruth>(items.Count);
        for (int i = 0; i < items.Count; i++)
        {
            var item = items[i] as JsonObject ?? throw new InvalidDataException($"{path}: item [{i}] is not an object");
            var conv = (item["conversations"] ?? item["conversatons"]) as JsonArray
                ?? throw new InvalidDataException($"{path}: item [{i}] has no 'conversations' list");
            if (conv.Count < 2) throw new InvalidDataException($"{path}: item [{i}].conversations has {conv.Count} turns; expected a question and an answer");
            string q = StringField(conv[0], "value", path, $"[{i}].conversations[0]");
            string a = StringField(conv[1], "value", path, $"[{i}].conversations[1]");
            string type = StringField(item, "answer_type", path, $"[{i}]");
            string id = item["id"]?.ToString() ?? i.ToString();
            result.Add(new VqaGroundTruth(id, q, a, type));
        }
        return result;
    }

    /// <summary>Read predictions: JSON lines with at least "text" (and "prompt", "question_id").</summary>
    public static List<VqaPrediction> ReadPredictions(string path)
    {
        var result = new List<VqaPrediction>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonNode? node;
            try { node = JsonNode.Parse(line); }
            catch (JsonException e) { throw new InvalidDataException($"{path}: line {lineNo} is not valid JSON ({e.Message})", e); }
            if (node is not JsonObject o) throw new InvalidDataException($"{path}: line {lineNo} is not a JSON object");
            string text = StringField(o, "text", path, $"line {lineNo}");
            string prompt = o["prompt"]?.GetValueKind() == JsonValueKind.String ? (string)o["prompt"]! : "";
            string qid = o["question_id"]?.ToString() ?? "";
            result.Add(new VqaPrediction(qid, prompt, text));
        }
        return result;
    }

    private static string StringField(JsonNode? node, string name, string path, string where)
    {
        var v = (node as JsonObject)?[name];
        if (v is null || v.GetValueKind() != JsonValueKind.String)
            throw new InvalidDataException($"{path}: {where}.{name} is missing or not a string");
        return (string)v!;
    }
}
