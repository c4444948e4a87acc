using System.Text.Json;

namespace MedVL.Generation;

/// <summary>
/// The fields of a model folder's generation_config.json that decoding uses (transformers GenerationConfig):
/// eos_token_id (int or list) and the sampling defaults. Missing file = HF defaults (greedy, no stop ids).
/// </summary>
public sealed record GenerationConfig
{
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public int? BosTokenId { get; init; }
    public int? PadTokenId { get; init; }
    public bool DoSample { get; init; }
    public float Temperature { get; init; } = 1f;
    public int TopK { get; init; } = 50;
    public float TopP { get; init; } = 1f;
    public float RepetitionPenalty { get; init; } = 1f;
    public int? MaxNewTokens { get; init; }

    private const long MaxBytes = 1 << 20;

    /// <summary>Reads dir/generation_config.json if present.</summary>
    public static GenerationConfig Load(string dir)
    {
        string path = Path.Combine(dir, "generation_config.json");
        if (!File.Exists(path)) return new GenerationConfig();
        if (new FileInfo(path).Length > MaxBytes) throw new InvalidDataException($"{path}: larger than {MaxBytes} bytes");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true, MaxDepth = 16 });
            var r = doc.RootElement;
            if (r.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: expected a JSON object");
            return new GenerationConfig
            {
                EosTokenIds = IntOrList(r, "eos_token_id", path),
                BosTokenId = Int(r, "bos_token_id", path),
                PadTokenId = Int(r, "pad_token_id", path),
                DoSample = r.TryGetProperty("do_sample", out var ds) && ds.ValueKind == JsonValueKind.True,
                Temperature = Float(r, "temperature", path) ?? 1f,
                TopK = Int(r, "top_k", path) ?? 50,
                TopP = Float(r, "top_p", path) ?? 1f,
                RepetitionPenalty = Float(r, "repetition_penalty", path) ?? 1f,
                MaxNewTokens = Int(r, "max_new_tokens", path),
            };
        }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e); }
    }

    /// <summary>HF sampling defaults of this model as <see cref="SamplingOptions"/> (top_k 50 is HF's default when sampling).</summary>
    public SamplingOptions ToSamplingOptions() => new()
    {
        DoSample = DoSample, Temperature = Temperature, TopK = TopK, TopP = TopP, RepetitionPenalty = RepetitionPenalty,
        StopTokenIds = EosTokenIds, MaxNewTokens = MaxNewTokens ?? 256,
    };

    private static int? Int(JsonElement r, string name, string path)
    {
        if (!r.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int i)) throw new InvalidDataException($"{path}: field '{name}' must be an integer");
        return i;
    }

    private static float? Float(JsonElement r, string name, string path)
    {
        if (!r.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Number) throw new InvalidDataException($"{path}: field '{name}' must be a number");
        return (float)v.GetDouble();
    }

    private static int[] IntOrList(JsonElement r, string name, string path)
    {
        if (!r.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return [];
        if (v.ValueKind == JsonValueKind.Number) return [Int(r, name, path)!.Value];
        if (v.ValueKind != JsonValueKind.Array || v.GetArrayLength() > 1024) throw new InvalidDataException($"{path}: field '{name}' must be an integer or a list of integers");
        return v.EnumerateArray().Select(e => e.TryGetInt32(out int i) ? i : throw new InvalidDataException($"{path}: field '{name}' must hold integers")).ToArray();
    }
}
