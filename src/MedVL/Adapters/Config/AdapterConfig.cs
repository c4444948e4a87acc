using System.Text.Json;
using System.Text.RegularExpressions;

namespace MedVL.Adapters.Config;

/// <summary>An adapter file or config that MedVL cannot use. The message names the file, the field or key, and what was
/// expected; a mapping error lists EVERY offending key (upstream loads with strict=False and silently drops them).</summary>
public sealed class AdapterFormatException : IOException
{
    public string File { get; }
    public string? Field { get; }
    public IReadOnlyList<string> Problems { get; }

    public AdapterFormatException(string file, string? field, string message, IReadOnlyList<string>? problems = null)
        : base(Compose(file, field, message, problems))
    {
        File = file;
        Field = field;
        Problems = problems ?? [];
    }

    private static string Compose(string file, string? field, string message, IReadOnlyList<string>? problems)
    {
        string head = field is null ? $"{file}: {message}" : $"{file}: field '{field}': {message}";
        return problems is { Count: > 0 } ? head + "\n" + string.Join("\n", problems.Select(p => "  " + p)) : head;
    }
}

/// <summary>Which adapter family a file holds.</summary>
public enum AdapterKind
{
    /// <summary>PEFT LoRA (huggingface/peft tuners/lora): A [r, in], B [out, r], scaling α/r or α/√r (rsLoRA).</summary>
    Lora,
    /// <summary>HealthGPT H-LoRA (llava/peft/tuners/lora.py Linear): merged A [r_total, in], B [out, r_total], router [k, in].</summary>
    HLora,
    /// <summary>MoELoRA baseline: k separate (A_i, B_i) pairs and a dense token gate [k, in] (MedVL's own file layout).</summary>
    MoELora,
}

/// <summary>
/// adapter_config.json as PEFT's <c>LoraConfig.save_pretrained</c> writes it (fields of peft/tuners/lora/config.py that
/// change what the weights mean). MedVL's MoELoRA files reuse the same layout with <c>peft_type = "MOELORA"</c> and
/// <c>lora_nums</c> experts. Fields that select behaviour MedVL does not implement (DoRA, fan_in_fan_out Conv1D layers,
/// trainable biases) are rejected with a clear error rather than ignored.
/// </summary>
public sealed record PeftLoraConfig
{
    public const long MaxConfigBytes = 1 << 20;

    public required string SourcePath { get; init; }
    public required AdapterKind Kind { get; init; }
    public string? BaseModelNameOrPath { get; init; }
    public string? TaskType { get; init; }
    public required int R { get; init; }
    public required double LoraAlpha { get; init; }
    public double LoraDropout { get; init; }
    public bool UseRsLora { get; init; }
    /// <summary>List form: a module matches when its name equals an entry or ends with "." + entry (PEFT check_target_module_exists).</summary>
    public IReadOnlyList<string>? TargetModuleList { get; init; }
    /// <summary>String form: a regular expression that must match the whole module name (re.fullmatch).</summary>
    public string? TargetModuleRegex { get; init; }
    public IReadOnlyDictionary<string, int> RankPattern { get; init; } = new Dictionary<string, int>();
    public IReadOnlyDictionary<string, double> AlphaPattern { get; init; } = new Dictionary<string, double>();
    public IReadOnlyList<int>? LayersToTransform { get; init; }
    public IReadOnlyList<string>? ModulesToSave { get; init; }
    /// <summary>MoELoRA experts (lora_nums); 1 for plain LoRA.</summary>
    public int Experts { get; init; } = 1;

    /// <summary>PEFT target matching on a module name relative to the base model (e.g. model.layers.0.self_attn.q_proj).</summary>
    public bool IsTarget(string modulePath)
    {
        bool hit = TargetModuleRegex is not null
            ? Regex.IsMatch(modulePath, "^(?:" + TargetModuleRegex + ")$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1))
            : TargetModuleList!.Any(t => modulePath == t || modulePath.EndsWith("." + t, StringComparison.Ordinal));
        if (!hit) return false;
        if (LayersToTransform is null) return true;
        var m = Regex.Match(modulePath, @"\.layers\.(\d+)\.", RegexOptions.CultureInvariant);
        return m.Success && LayersToTransform.Contains(int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>Rank of one module: the first rank_pattern key k with (.*\.)?(k)$ matching the name, else r
    /// (peft/utils/other.py get_pattern_key).</summary>
    public int RankFor(string modulePath) => PatternValue(RankPattern, modulePath, R);

    public double AlphaFor(string modulePath) => PatternValue(AlphaPattern, modulePath, LoraAlpha);

    /// <summary>PEFT LoraLayer.update_layer: α/√r with use_rslora, else α/r (per module, after the patterns).</summary>
    public double ScalingFor(string modulePath)
    {
        int r = RankFor(modulePath);
        double a = AlphaFor(modulePath);
        return UseRsLora ? a / Math.Sqrt(r) : a / r;
    }

    private static T PatternValue<T>(IReadOnlyDictionary<string, T> patterns, string modulePath, T fallback)
    {
        foreach (var (key, value) in patterns)
            if (Regex.IsMatch(modulePath, "^(?:.*\\.)?(?:" + key + ")$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1)))
                return value;
        return fallback;
    }

    public static PeftLoraConfig Load(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, "adapter_config.json");
        if (!System.IO.File.Exists(path)) throw new FileNotFoundException($"{path}: adapter_config.json not found", path);
        long len = new FileInfo(path).Length;
        if (len > MaxConfigBytes) throw new AdapterFormatException(path, null, $"file is {len} bytes; an adapter_config.json is at most {MaxConfigBytes}");
        return Parse(System.IO.File.ReadAllText(path), path);
    }

    public static PeftLoraConfig Parse(string json, string sourcePath)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16 }); }
        catch (JsonException e) { throw new AdapterFormatException(sourcePath, null, $"not valid JSON: {e.Message}"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new AdapterFormatException(sourcePath, null, "expected a JSON object");
            string f = sourcePath;
            string peftType = Str(root, "peft_type", f) ?? throw new AdapterFormatException(f, "peft_type", "missing; expected \"LORA\" (or MedVL's \"MOELORA\")");
            var kind = peftType switch
            {
                "LORA" => AdapterKind.Lora,
                "MOELORA" => AdapterKind.MoELora,
                _ => throw new AdapterFormatException(f, "peft_type", $"'{peftType}' is not supported; expected \"LORA\" or \"MOELORA\""),
            };
            int r = Int(root, "r", f) ?? 8; // LoraConfig default r = 8
            if (r <= 0) throw new AdapterFormatException(f, "r", $"{r}; expected a positive rank");
            double alpha = Num(root, "lora_alpha", f) ?? 8; // default lora_alpha = 8
            double dropout = Num(root, "lora_dropout", f) ?? 0.0;
            if (!(dropout >= 0 && dropout < 1)) throw new AdapterFormatException(f, "lora_dropout", $"{dropout}; expected 0 <= p < 1");
            if (Bool(root, "use_dora", f) == true) throw new AdapterFormatException(f, "use_dora", "DoRA adapters are not supported");
            if (Bool(root, "fan_in_fan_out", f) == true)
                throw new AdapterFormatException(f, "fan_in_fan_out", "true (GPT-2 style Conv1D weights) is not supported; MedVL's decoders use nn.Linear [out, in]");
            string bias = Str(root, "bias", f) ?? "none";
            if (bias != "none") throw new AdapterFormatException(f, "bias", $"'{bias}' (trained base biases) is not supported; expected \"none\"");
            if (root.TryGetProperty("layer_replication", out var lr) && lr.ValueKind != JsonValueKind.Null)
                throw new AdapterFormatException(f, "layer_replication", "layer replication is not supported");

            IReadOnlyList<string>? list = null;
            string? regex = null;
            if (!root.TryGetProperty("target_modules", out var tm) || tm.ValueKind == JsonValueKind.Null)
                throw new AdapterFormatException(f, "target_modules", "missing; expected a list of module names or a regular expression");
            if (tm.ValueKind == JsonValueKind.String) regex = tm.GetString();
            else if (tm.ValueKind == JsonValueKind.Array)
                list = tm.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()!
                    : throw new AdapterFormatException(f, "target_modules", "list entries must be strings")).ToArray();
            else throw new AdapterFormatException(f, "target_modules", $"{tm.ValueKind}; expected a list or a string");
            if (list is { Count: 0 }) throw new AdapterFormatException(f, "target_modules", "empty list");

            var rankPattern = new Dictionary<string, int>();
            foreach (var (k, v) in Map(root, "rank_pattern", f))
                rankPattern[k] = v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int x) && x > 0 ? x
                    : throw new AdapterFormatException(f, $"rank_pattern.{k}", "expected a positive integer rank");
            var alphaPattern = new Dictionary<string, double>();
            foreach (var (k, v) in Map(root, "alpha_pattern", f))
                alphaPattern[k] = v.ValueKind == JsonValueKind.Number ? v.GetDouble()
                    : throw new AdapterFormatException(f, $"alpha_pattern.{k}", "expected a number");

            IReadOnlyList<int>? layers = null;
            if (root.TryGetProperty("layers_to_transform", out var lt) && lt.ValueKind != JsonValueKind.Null)
            {
                layers = lt.ValueKind switch
                {
                    JsonValueKind.Number => [lt.GetInt32()],
                    JsonValueKind.Array => lt.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number ? e.GetInt32()
                        : throw new AdapterFormatException(f, "layers_to_transform", "entries must be integers")).ToArray(),
                    _ => throw new AdapterFormatException(f, "layers_to_transform", "expected an integer or a list of integers"),
                };
            }
            IReadOnlyList<string>? modulesToSave = null;
            if (root.TryGetProperty("modules_to_save", out var ms) && ms.ValueKind == JsonValueKind.Array)
                modulesToSave = ms.EnumerateArray().Select(e => e.GetString() ?? "").ToArray();

            int experts = 1;
            if (kind == AdapterKind.MoELora)
            {
                experts = Int(root, "lora_nums", f) ?? throw new AdapterFormatException(f, "lora_nums", "missing; a MOELORA config names its expert count");
                if (experts < 1) throw new AdapterFormatException(f, "lora_nums", $"{experts}; expected >= 1");
            }
            return new PeftLoraConfig
            {
                SourcePath = f, Kind = kind, BaseModelNameOrPath = Str(root, "base_model_name_or_path", f), TaskType = Str(root, "task_type", f),
                R = r, LoraAlpha = alpha, LoraDropout = dropout, UseRsLora = Bool(root, "use_rslora", f) ?? false,
                TargetModuleList = list, TargetModuleRegex = regex, RankPattern = rankPattern, AlphaPattern = alphaPattern,
                LayersToTransform = layers, ModulesToSave = modulesToSave, Experts = experts,
            };
        }
    }

    private static IEnumerable<(string, JsonElement)> Map(JsonElement root, string name, string f)
    {
        if (!root.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null) yield break;
        if (e.ValueKind != JsonValueKind.Object) throw new AdapterFormatException(f, name, $"{e.ValueKind}; expected an object");
        foreach (var p in e.EnumerateObject()) yield return (p.Name, p.Value);
    }

    private static string? Str(JsonElement root, string name, string f)
    {
        if (!root.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null) return null;
        return e.ValueKind == JsonValueKind.String ? e.GetString() : throw new AdapterFormatException(f, name, $"{e.ValueKind}; expected a string");
    }

    private static int? Int(JsonElement root, string name, string f)
    {
        if (!root.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null) return null;
        return e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int v) ? v : throw new AdapterFormatException(f, name, $"'{e}'; expected an integer");
    }

    private static double? Num(JsonElement root, string name, string f)
    {
        if (!root.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null) return null;
        return e.ValueKind == JsonValueKind.Number ? e.GetDouble() : throw new AdapterFormatException(f, name, $"'{e}'; expected a number");
    }

    private static bool? Bool(JsonElement root, string name, string f)
    {
        if (!root.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null) return null;
        return e.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new AdapterFormatException(f, name, $"'{e}'; expected true or false"),
        };
    }
}

/// <summary>H-LoRA hyper-parameters (HealthGPT --hlora_r / --hlora_alpha / --hlora_nums / --hlora_dropout). The .bin files
/// carry no config: rank and expert count are checked against the tensors, α must come from the caller.</summary>
public sealed record HLoraSettings(int RankTotal, double Alpha, int Experts, double Dropout = 0.0)
{
    /// <summary>HealthGPT-M3 comprehension (com_hlora_weights.bin): r 64, α 128, 4 experts.</summary>
    public static HLoraSettings M3Comprehension => new(64, 128, 4);
    /// <summary>HealthGPT-M3 generation (gen_hlora_weights.bin): r 256, α 512, 4 experts.</summary>
    public static HLoraSettings M3Generation => new(256, 512, 4);
    /// <summary>HealthGPT-L14 / XL32 comprehension: r 32, α 64, 4 experts.</summary>
    public static HLoraSettings L14Comprehension => new(32, 64, 4);

    /// <summary>Rank slots per expert (int(r / lora_nums) in the released code).</summary>
    public int RankPerExpert => RankTotal / Experts;

    /// <summary>Released code: scaling = lora_alpha / r * lora_nums, r = total rank (= α / r_per_expert).</summary>
    public double Scaling => Alpha / RankTotal * Experts;

    /// <summary>Paper Eq. 10: α·k / r with r the per-expert rank — k times the code's value (an option, not the default).</summary>
    public double PaperScaling => Alpha * Experts / RankPerExpert;

    public void Validate(string source)
    {
        if (RankTotal <= 0) throw new AdapterFormatException(source, "hlora_r", $"{RankTotal}; expected a positive total rank");
        if (Experts <= 0) throw new AdapterFormatException(source, "hlora_nums", $"{Experts}; expected a positive expert count");
        if (RankTotal % Experts != 0)
            throw new AdapterFormatException(source, "hlora_r", $"{RankTotal} is not a multiple of hlora_nums {Experts} (each expert owns r/k contiguous rank slots)");
        if (!(Dropout >= 0 && Dropout < 1)) throw new AdapterFormatException(source, "hlora_dropout", $"{Dropout}; expected 0 <= p < 1");
    }
}
