using System.Text.Json;
using MedVL.Text;
using MedVL.Text.Templates;
using MedVL.Vision.Codecs;
using MedVL.Vision.Preprocessing;

namespace MedVL.Training;

/// <summary>One tokenised training sequence: ids with −200 where the image goes, labels (−100 on prompt and image);
/// for a vision objective, an image with its lesion mask and lesion sides (none, left, right, both) and no text.</summary>
public sealed record TrainingExample(string Id, int[] InputIds, int[] Labels, string? ImagePath, string? Modality, string? MaskPath = null, string? Sides = null);

/// <summary>
/// LLaVA / VL-Health conversation JSON (a list of {id, image, conversations: [{from: human|gpt, value}], modality?})
/// → training sequences in a chat template, as LLaVA's preprocess does per round: every human turn and the template
/// around it is masked with −100, every gpt answer and its closing separator is learned. The image is spliced where
/// the first turn's &lt;image&gt; stands (its rows are masked by the multimodal splice).
/// </summary>
public static class ConversationData
{
    public const long MaxFileBytes = 1L << 30;

    public static List<TrainingExample> Load(string jsonPath, Tokenizer tokenizer, ConversationTemplate template, int? limit = null)
    {
        using var doc = OpenList(jsonPath, "conversations");
        string root = Path.GetDirectoryName(Path.GetFullPath(jsonPath))!;
        var list = new List<TrainingExample>();
        int index = 0;
        foreach (var item in doc.RootElement.EnumerateArray())
        {
            if (limit is { } l && list.Count >= l) break;
            string id = item.TryGetProperty("id", out var idEl) ? idEl.ToString() : $"#{index}";
            if (!item.TryGetProperty("conversations", out var convs) || convs.ValueKind != JsonValueKind.Array)
                throw new InvalidDataException($"{jsonPath}: item {index} ({id}): field 'conversations' is missing or not a list");
            string? image = item.TryGetProperty("image", out var im) && im.ValueKind == JsonValueKind.String ? Path.Combine(root, im.GetString()!) : null;
            string? modality = item.TryGetProperty("modality", out var mo) && mo.ValueKind == JsonValueKind.String ? mo.GetString() : null;
            var turns = new List<ChatTurn>();
            int k = 0;
            foreach (var c in convs.EnumerateArray())
            {
                string from = c.GetProperty("from").GetString() ?? "";
                string value = c.GetProperty("value").GetString() ?? "";
                var role = from is "human" or "user" ? ChatRole.User : from is "gpt" or "assistant" ? ChatRole.Assistant
                    : throw new InvalidDataException($"{jsonPath}: item {index} ({id}): turn {k} has from '{from}'; expected human or gpt");
                if ((k % 2 == 0) != (role == ChatRole.User))
                    throw new InvalidDataException($"{jsonPath}: item {index} ({id}): turns must alternate human, gpt, … (turn {k} is {from})");
                turns.Add(new ChatTurn(role, value, HasImage: k == 0 && image is not null));
                k++;
            }
            if (turns.Count < 2) throw new InvalidDataException($"{jsonPath}: item {index} ({id}): needs at least one human and one gpt turn");
            var (ids, labels) = Tokenize(turns, tokenizer, template);
            list.Add(new TrainingExample(id, ids, labels, image, modality));
            index++;
        }
        return list;
    }

    /// <summary>A bounded training-data file whose root is a JSON list (<paramref name="items"/> names them in the error).</summary>
    internal static JsonDocument OpenList(string jsonPath, string items)
    {
        var info = new FileInfo(jsonPath);
        if (!info.Exists) throw new FileNotFoundException($"{jsonPath}: training data not found", jsonPath);
        if (info.Length > MaxFileBytes) throw new InvalidDataException($"{jsonPath}: {info.Length} bytes; at most {MaxFileBytes} are read");
        var doc = JsonDocument.Parse(File.ReadAllBytes(jsonPath), new JsonDocumentOptions { MaxDepth = 16 });
        if (doc.RootElement.ValueKind == JsonValueKind.Array) return doc;
        doc.Dispose();
        throw new InvalidDataException($"{jsonPath}: expected a JSON array of {items}");
    }

    /// <summary>Segment-wise tokenisation: prompt segments masked, answer segments (message + separator) learned.</summary>
    public static (int[] Ids, int[] Labels) Tokenize(IReadOnlyList<ChatTurn> turns, Tokenizer tokenizer, ConversationTemplate template)
    {
        var ids = new List<int>();
        var labels = new List<int>();
        string done = "";
        for (int i = 1; i < turns.Count; i += 2)
        {
            var upTo = turns.Take(i).ToList();
            string open = template.Render([.. upTo, new ChatTurn(ChatRole.Assistant, null)]);
            string full = template.Render(turns.Take(i + 1).ToList());
            if (!open.StartsWith(done, StringComparison.Ordinal) || !full.StartsWith(open, StringComparison.Ordinal))
                throw new InvalidOperationException($"template {template.Name} does not render conversations prefix by prefix");
            var prompt = done.Length == 0 ? tokenizer.TokenizeWithImage(open) : tokenizer.Encode(open[done.Length..], addSpecialTokens: false);
            ids.AddRange(prompt);
            labels.AddRange(Enumerable.Repeat(-100, prompt.Length));
            var answer = tokenizer.Encode(full[open.Length..], addSpecialTokens: false);
            ids.AddRange(answer);
            labels.AddRange(answer);
            done = full;
        }
        return (ids.ToArray(), labels.ToArray());
    }
}

/// <summary>Decoded, CLIP-preprocessed pixels per image file, computed once (the images of a data set are small).</summary>
public sealed class PixelCache(ClipImageProcessor processor)
{
    private readonly Dictionary<string, float[]> _cache = new(StringComparer.Ordinal);
    private readonly object _lock = new();

    public ClipImageProcessor Processor { get; } = processor;

    public float[] Get(string path)
    {
        lock (_lock)
        {
            if (_cache.TryGetValue(path, out var px)) return px;
            px = Processor.Preprocess(ImageLoader.Load(path));
            _cache[path] = px;
            return px;
        }
    }

    public Tensor Tensor(string path) => Batch([path]);

    /// <summary>pixel_values [N, 3, H, W] of several images, in order.</summary>
    public Tensor Batch(IReadOnlyList<string> paths) =>
        MedVL.Tensors.Tensor.FromArray(paths.SelectMany(Get).ToArray(), paths.Count, 3, Processor.CropHeight, Processor.CropWidth);
}
