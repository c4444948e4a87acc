using System.Text;
using System.Text.Json;
using MedVL.Adapters;
using MedVL.Text;
using MedVL.Text.Templates;
using MedVL.Vision.Codecs;
using MedVL.Vision.ImageTokenizers;
using MedVL.Vision.Preprocessing;

namespace MedVL.Training;

/// <summary>
/// HealthGPT generation data (healthgpt.md §3–4): an input image and an instruction, and as the answer the target
/// image's VQ indices, written as &lt;start_index&gt;&lt;idx_i&gt;…&lt;end_index&gt; (the tokens the extended vocabulary
/// adds; gen_infer.py appends &lt;start_index&gt; to the prompt and reads the &lt;idx_i&gt; that follow).
/// Items are LLaVA-style: {id, image, output_image, conversations: [{from: human, value: "&lt;image&gt;\n…"}, …]}
/// (MedSynth's gen_*.json); the gpt turn's text is not trained, the target is always output_image. With
/// <c>reconstruct</c> (stage 1's image-reconstruction data) any list with an image becomes "Reconstruct the image." →
/// the image's own indices.
/// </summary>
public static class GenerationData
{
    /// <summary>gen_infer.py's instruction for reconstruction.</summary>
    public const string ReconstructionPrompt = "Reconstruct the image.";

    /// <summary>The answer text for a grid of indices: &lt;start_index&gt;&lt;idx_…&gt;…&lt;end_index&gt;.</summary>
    public static string AnswerText(ReadOnlySpan<int> indices)
    {
        var sb = new StringBuilder(indices.Length * 10 + 26).Append("<start_index>");
        foreach (int i in indices) sb.Append("<idx_").Append(i).Append('>');
        return sb.Append("<end_index>").ToString();
    }

    public static List<TrainingExample> Load(string jsonPath, Tokenizer tokenizer, ConversationTemplate template, IImageTokenizer imageTokenizer,
        bool reconstruct = false, int? limit = null, CancellationToken ct = default)
    {
        if (tokenizer.TokenToId("<start_index>") is null || tokenizer.TokenToId($"<idx_{imageTokenizer.CodebookSize - 1}>") is null)
            throw new InvalidOperationException($"the tokenizer lacks HealthGPT's VQ tokens up to <idx_{imageTokenizer.CodebookSize - 1}> (extend the vocabulary first)");
        using var doc = ConversationData.OpenList(jsonPath, reconstruct ? "items with an image" : "generation items");
        string root = Path.GetDirectoryName(Path.GetFullPath(jsonPath))!;
        var list = new List<TrainingExample>();
        int index = 0;
        foreach (var item in doc.RootElement.EnumerateArray())
        {
            ct.ThrowIfCancellationRequested();
            if (limit is { } l && list.Count >= l) break;
            string id = item.TryGetProperty("id", out var idEl) ? idEl.ToString() : $"#{index}";
            string Where() => $"{jsonPath}: item {index} ({id})";
            string image = PathField(item, "image", root) ?? throw new InvalidDataException($"{Where()}: field 'image' is missing");
            string question;
            string target;
            if (reconstruct) { question = ReconstructionPrompt; target = image; }
            else
            {
                target = PathField(item, "output_image", root) ?? throw new InvalidDataException($"{Where()}: field 'output_image' (the image to generate) is missing");
                if (!item.TryGetProperty("conversations", out var c) || c.ValueKind != JsonValueKind.Array || c.GetArrayLength() == 0
                    || c[0].TryGetProperty("value", out var v) is false || v.GetString() is not { } q)
                    throw new InvalidDataException($"{Where()}: field 'conversations' needs a first human turn with the instruction");
                question = q.Replace("<image>", "").Trim();
            }
            int[] indices;
            try { indices = imageTokenizer.Encode(ImageConversion.ToRgb8(ImageLoader.Load(target))); }
            catch (InvalidImageException e) { throw new InvalidDataException($"{Where()}: {(reconstruct ? "image" : "output_image")}: {e.Message}", e); }
            string? modality = item.TryGetProperty("modality", out var mo) && mo.ValueKind == JsonValueKind.String ? mo.GetString() : null;
            var turns = new List<ChatTurn> { new(ChatRole.User, question, HasImage: true), new(ChatRole.Assistant, AnswerText(indices)) };
            var (ids, labels) = ConversationData.Tokenize(turns, tokenizer, template);
            list.Add(new TrainingExample(id, ids, labels, image, modality));
            index++;
        }
        return list;
    }

    private static string? PathField(JsonElement item, string name, string root) =>
        item.TryGetProperty(name, out var e) && e.ValueKind == JsonValueKind.String ? Path.Combine(root, e.GetString()!) : null;

    /// <summary>The id of &lt;start_index&gt;: the rows before it keep the base vocabulary (add_special_tokens_and_resize_model's
    /// len(tokenizer) before the extension, HF's AddedVocabulary numbering).</summary>
    public static int FirstVqTokenId(Tokenizer extended) =>
        extended.TokenToId("<start_index>") ?? throw new InvalidOperationException("the tokenizer has no <start_index>: extend it with HealthGPT's VQ tokens");

    /// <summary>The tokenizer with HealthGPT's VQ tokens added after its ids (add_special_tokens_and_resize_model).</summary>
    public static Tokenizer WithVqTokens(Tokenizer tokenizer, int indexTokens) =>
        tokenizer.WithAddedTokens(VocabularyExtension.VqTokens(indexTokens));
}
