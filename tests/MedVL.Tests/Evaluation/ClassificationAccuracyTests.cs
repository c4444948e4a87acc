using System.Text.Json;
using MedVL.Evaluation;

namespace MedVL.Tests.Evaluation;

/// <summary>Classification-style questions (MedMNIST as VQA): scored apart from run_eval.py's open/closed metrics.</summary>
public class ClassificationAccuracyTests
{
    private static readonly VqaGroundTruth[] Gt =
    [
        new("a", "Is there pneumonia?", "pneumonia", "CLASSIFICATION"),
        new("b", "Which organ is shown?", "Liver", "classification"),
        new("c", "Which organ is shown?", "kidney", "CLASSIFICATION"),
        new("d", "Is this normal?", "yes", "CLOSED"),
        new("e", "What is shown?", "lung", "OPEN"),
    ];

    private static readonly VqaPrediction[] Pred =
    [
        new("a", "", "Pneumonia."),      // label inside the answer, case-insensitive
        new("b", "", "the liver"),
        new("c", "", "spleen"),
        new("d", "", "yes"),
        new("e", "", "lung"),
    ];

    [Fact]
    public void ScoresOnlyClassificationItems_AsClosedQuestionsAreScored()
    {
        var (n, acc) = MedVqaEvaluator.ClassificationAccuracy(Gt, Pred);
        Assert.Equal(3, n);
        Assert.Equal(200.0 / 3, acc, 10);
        // run_eval.py's own metrics skip them: one open and one closed item counted.
        var s = MedVqaEvaluator.Evaluate(Gt, Pred);
        Assert.Equal(1, s.NOpen);
        Assert.Equal(1, s.NClosed);
        Assert.Equal(100, s.ClosedAccuracy);
    }

    [Fact]
    public void Cli_PrintsItInJson()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"medvl-cls-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllText(Path.Combine(dir, "gt.json"), JsonSerializer.Serialize(Gt.Select(g => new
            {
                id = g.Id, answer_type = g.AnswerType,
                conversations = new[] { new { from = "human", value = g.Question }, new { from = "gpt", value = g.Answer } },
            })));
            File.WriteAllLines(Path.Combine(dir, "pred.jsonl"), Pred.Select(p => JsonSerializer.Serialize(new { question_id = p.QuestionId, prompt = p.Prompt, text = p.Text })));
            var (code, stdout, stderr) = CliRunner.Run("eval", "vqa", "--gt", Path.Combine(dir, "gt.json"), "--pred", Path.Combine(dir, "pred.jsonl"), "--json");
            Assert.True(code == 0, stderr);
            var j = JsonDocument.Parse(stdout).RootElement;
            Assert.Equal(3, j.GetProperty("n_classification").GetInt32());
            Assert.Equal(200.0 / 3, j.GetProperty("classification_accuracy").GetDouble(), 10);
        }
        finally { Directory.Delete(dir, true); }
    }
}
