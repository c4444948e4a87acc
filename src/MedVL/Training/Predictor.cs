using System.Text;
using System.Text.Json;
using MedVL.Evaluation;
using MedVL.Generation;
using MedVL.IO;
using MedVL.Models;
using MedVL.Models.Blocks;
using MedVL.Text;
using MedVL.Text.Templates;

namespace MedVL.Training;

/// <summary>One question of a VQA file (VQA-RAD / SLAKE / PathVQA as LLaVA conversations, MedSynth's format).</summary>
public sealed record VqaQuestion(string Id, string Question, string Answer, string? ImagePath, string? AnswerType, string? Modality);

/// <summary>
/// Greedy answers for a VQA file in test-file order, written in Med-MoE's answer JSONL (model_vqa_med.py:
/// question_id, prompt, text, answer_id, model_id, metadata), which `medvl eval vqa` scores.
/// </summary>
public static class Predictor
{
    public static List<VqaQuestion> ReadQuestions(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { MaxDepth = 16 });
        string root = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var list = new List<VqaQuestion>();
        int i = 0;
        foreach (var item in doc.RootElement.EnumerateArray())
        {
            string id = item.TryGetProperty("id", out var idEl) ? idEl.ToString() : $"#{i}";
            var c = item.GetProperty("conversations");
            if (c.GetArrayLength() < 2) throw new InvalidDataException($"{path}: item {i} ({id}) needs a question and an answer turn");
            string q = (c[0].GetProperty("value").GetString() ?? "").Replace("<image>", "").Trim();
            string a = c[1].GetProperty("value").GetString() ?? "";
            string? image = item.TryGetProperty("image", out var im) && im.ValueKind == JsonValueKind.String ? Path.Combine(root, im.GetString()!) : null;
            string? type = item.TryGetProperty("answer_type", out var at) ? at.GetString() : null;
            string? mod = item.TryGetProperty("modality", out var mo) && mo.ValueKind == JsonValueKind.String ? mo.GetString() : null;
            list.Add(new VqaQuestion(id, q, a, image, type, mod));
            i++;
        }
        return list;
    }

    /// <summary>Answers every question greedily; returns the predictions in file order and writes them to <paramref name="output"/>.</summary>
    public static List<VqaPrediction> Run(LlavaForCausalLM model, Tokenizer tok, ConversationTemplate tpl, PixelCache pixels,
        IReadOnlyList<VqaQuestion> questions, string output, string modelId, AdapterSelection? adapters = null, int maxNewTokens = 16,
        Action<int, int>? progress = null, CancellationToken ct = default)
    {
        var preds = new List<VqaPrediction>();
        var sb = new StringBuilder();
        for (int i = 0; i < questions.Count; i++)
        {
            ct.ThrowIfCancellationRequested();
            var q = questions[i];
            using var px = q.ImagePath is null ? null : pixels.Tensor(q.ImagePath);
            string text = Answer(model, tok, tpl, q.Question, px, adapters, maxNewTokens, ct);
            preds.Add(new VqaPrediction(q.Id, q.Question, text));
            sb.AppendLine(JsonSerializer.Serialize(new { question_id = q.Id, prompt = q.Question, text, answer_id = q.Id, model_id = modelId, metadata = new { } }));
            progress?.Invoke(i + 1, questions.Count);
        }
        AtomicFile.WriteAllText(output, sb.ToString());
        return preds;
    }

    /// <summary>The greedy answer to one question (with the image's pixel values, or none), stopped on the template's and
    /// generation_config's stop tokens and strings.</summary>
    public static string Answer(LlavaForCausalLM model, Tokenizer tok, ConversationTemplate tpl, string question, Tensor? pixelValues,
        AdapterSelection? adapters = null, int maxNewTokens = 16, CancellationToken ct = default)
    {
        var ids = tok.TokenizeWithImage(tpl.RenderQuestion(question, hasImage: pixelValues is not null));
        var stops = GenerationConfig.Load(model.LanguageModel.Directory).EosTokenIds.Concat(tpl.StopTokenIds(tok)).Distinct().ToArray();
        var opts = new SamplingOptions { MaxNewTokens = maxNewTokens, StopTokenIds = stops, StopStrings = tpl.StopStrings };
        return new TextGenerator(model, tok).Generate(new GenerationRequest(ids, opts, pixelValues, adapters), ct).Text.Trim();
    }
}
