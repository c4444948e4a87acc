using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using MedVL.Formats;
using MedVL.IO;
using MedVL.Models.Config;

namespace MedVL.Training;

/// <summary>The architecture of a tiny preset (sizes small enough to train on 2 cores in minutes).</summary>
public sealed record TinyArchitecture
{
    public required string Name { get; init; }
    /// <summary>"phi3" (HealthGPT: Phi-3-style decoder) or "stablelm" (Med-MoE: StableLM-2-style decoder).</summary>
    public required string Decoder { get; init; }
    public int Hidden { get; init; } = 128;
    public int Layers { get; init; } = 4;
    public int Heads { get; init; } = 4;
    public int Intermediate { get; init; } = 256;
    public int VisionHidden { get; init; } = 96;
    public int VisionLayers { get; init; } = 3;
    public int VisionHeads { get; init; } = 4;
    public int ImageSize { get; init; } = 64;
    public int PatchSize { get; init; } = 8;
    /// <summary>Init std of the ViT's position embedding. CLIP's pre_layrnorm normalises every patch token over its
    /// channels, which makes a from-scratch ViT nearly blind to a patch's brightness (a lesion) while the patch embedding
    /// dominates the sum; a position embedding of unit scale keeps that information (measured on MedSynth: closed accuracy
    /// 60 → 72 %, docs/training.md). HF's initializer_range (0.02) is for fine-tuning a pretrained tower.</summary>
    public double VisionPositionInitStd { get; init; } = 1.0;
    public int Seed { get; init; } = 1;

    public static TinyArchitecture TinyHealthGpt => new() { Name = "tiny-healthgpt", Decoder = "phi3" };
    public static TinyArchitecture TinyMedMoe => new() { Name = "tiny-medmoe", Decoder = "stablelm" };

    public static TinyArchitecture ByName(string name) => name switch
    {
        "tiny-healthgpt" => TinyHealthGpt,
        "tiny-medmoe" => TinyMedMoe,
        _ => throw new ArgumentException($"unknown preset '{name}'; expected tiny-healthgpt or tiny-medmoe"),
    };
}

/// <summary>
/// Writes a tiny preset as a Hugging Face LLaVA folder that the normal loaders read — the same code path as the
/// full-size HealthGPT / Med-MoE checkpoints: config.json (llava_phi3 or llava_stablelm with mm_* fields),
/// model.safetensors (decoder + mm_projector, seeded random init over the tensor table derived from the config),
/// tokenizer.json, generation_config.json and vision_tower/ (clip_vision_model config, preprocessor_config.json,
/// weights). Because no pretrained Phi-3 / StableLM / CLIP exists at this size, the pipelines start with stage 0, which
/// pretrains the whole tiny model (docs/training.md).
/// </summary>
public static class TinyPresets
{
    public static void Write(string dir, TinyArchitecture a, IEnumerable<string> corpus)
    {
        Directory.CreateDirectory(dir);
        var tokenizerJson = CorpusTokenizer.Build(corpus, out int vocab);
        AtomicFile.WriteAllText(Path.Combine(dir, "tokenizer.json"), tokenizerJson);
        int eos = CorpusTokenizer.SpecialId("<|endoftext|>");
        var cfg = new JsonObject
        {
            ["_name_or_path"] = a.Name,
            ["architectures"] = new JsonArray(a.Decoder == "phi3" ? "LlavaPhiForCausalLM" : "LlavaStablelmForCausalLM"),
            ["model_type"] = a.Decoder == "phi3" ? "llava_phi3" : "llava_stablelm",
            ["hidden_size"] = a.Hidden, ["intermediate_size"] = a.Intermediate, ["num_hidden_layers"] = a.Layers,
            ["num_attention_heads"] = a.Heads, ["num_key_value_heads"] = a.Heads, ["vocab_size"] = vocab,
            ["max_position_embeddings"] = 512, ["rope_theta"] = 10000.0, ["hidden_act"] = "silu", ["tie_word_embeddings"] = false,
            ["bos_token_id"] = eos, ["eos_token_id"] = eos, ["pad_token_id"] = eos, ["torch_dtype"] = "float32",
            ["image_aspect_ratio"] = "pad", ["mm_hidden_size"] = a.VisionHidden, ["mm_projector_type"] = "mlp2x_gelu",
            ["mm_use_im_patch_token"] = false, ["mm_use_im_start_end"] = false, ["mm_vision_select_feature"] = "patch",
            ["mm_vision_select_layer"] = -2, ["mm_vision_tower"] = "vision_tower",
        };
        if (a.Decoder == "phi3") { cfg["rms_norm_eps"] = 1e-5; cfg["sliding_window"] = 511; cfg["original_max_position_embeddings"] = 512; }
        else { cfg["layer_norm_eps"] = 1e-5; cfg["partial_rotary_factor"] = 0.25; cfg["use_qkv_bias"] = true; cfg["use_parallel_residual"] = false; cfg["qk_layernorm"] = false; }
        AtomicFile.WriteAllText(Path.Combine(dir, "config.json"), cfg.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        AtomicFile.WriteAllText(Path.Combine(dir, "generation_config.json"), $"{{\"bos_token_id\": {eos}, \"eos_token_id\": {eos}, \"do_sample\": false}}");
        var config = ModelConfigLoader.Load(dir);
        WriteRandom(Path.Combine(dir, "model.safetensors"), WeightTable.For(config), a.Seed);

        string vt = Path.Combine(dir, "vision_tower");
        Directory.CreateDirectory(vt);
        var vcfg = new JsonObject
        {
            ["model_type"] = "clip_vision_model", ["architectures"] = new JsonArray("CLIPVisionModel"),
            ["hidden_size"] = a.VisionHidden, ["intermediate_size"] = 4 * a.VisionHidden, ["num_hidden_layers"] = a.VisionLayers,
            ["num_attention_heads"] = a.VisionHeads, ["image_size"] = a.ImageSize, ["patch_size"] = a.PatchSize, ["num_channels"] = 3,
            ["hidden_act"] = "quick_gelu", ["layer_norm_eps"] = 1e-5, ["torch_dtype"] = "float32",
        };
        AtomicFile.WriteAllText(Path.Combine(vt, "config.json"), vcfg.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        AtomicFile.WriteAllText(Path.Combine(vt, "preprocessor_config.json"), JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["crop_size"] = a.ImageSize, ["size"] = a.ImageSize, ["do_center_crop"] = true, ["do_normalize"] = true, ["do_resize"] = true,
            ["image_mean"] = new[] { 0.48145466, 0.4578275, 0.40821073 }, ["image_std"] = new[] { 0.26862954, 0.26130258, 0.27577711 },
            ["resample"] = 3, ["feature_extractor_type"] = "CLIPFeatureExtractor",
        }));
        WriteRandom(Path.Combine(vt, "model.safetensors"), WeightTable.For(ModelConfigLoader.Load(vt)), a.Seed + 1, a.VisionPositionInitStd);
    }

    /// <summary>Seeded init over a tensor table: norms 1 (bias 0), biases 0, position embeddings N(0, positionStd), other
    /// tensors N(0, 0.02) (HF initializer_range).</summary>
    private static void WriteRandom(string path, IReadOnlyList<TensorSpec> specs, int seed, double positionStd = 0.02)
    {
        var rng = new Random(seed);
        var list = new List<SafetensorsTensor>();
        foreach (var s in specs.Where(s => s.Role == TensorRole.Required && s.Shape is not null))
        {
            var shape = s.Shape!.Select(d => (int)d).ToArray();
            int n = shape.Aggregate(1, (x, y) => x * y);
            bool norm = Regex.IsMatch(s.Name, "(norm|layrnorm)[^.]*\\.weight$");
            var data = new float[n];
            if (norm) Array.Fill(data, 1f);
            else if (!s.Name.EndsWith(".bias", StringComparison.Ordinal))
            {
                double sd = s.Name.Contains("position_embedding", StringComparison.Ordinal) ? positionStd : 0.02;
                for (int i = 0; i < n; i++) data[i] = (float)(sd * Gaussian(rng));
            }
            list.Add(SafetensorsTensor.FromFloat32(s.Name, data, shape));
        }
        SafetensorsWriter.Write(path, list, new Dictionary<string, string> { ["format"] = "pt" });
    }

    private static double Gaussian(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());
}

/// <summary>
/// A byte-level BPE tokenizer.json whose merges spell out every word of a corpus, so each corpus word (with or without
/// its leading space) is one token and anything else still encodes byte by byte. Specials for the phi3_instruct and
/// stablelm templates sit at fixed ids after the bytes.
/// </summary>
public static class CorpusTokenizer
{
    public static readonly string[] Specials = ["<|endoftext|>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>", "<image>"];

    public static int SpecialId(string s) => 256 + Array.IndexOf(Specials, s);

    public static string Build(IEnumerable<string> corpus, out int vocabSize)
    {
        var alphabet = ByteAlphabet();
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int b = 0; b < 256; b++) vocab[alphabet[b].ToString()] = b;
        int next = 256 + Specials.Length;
        var merges = new List<string>();
        var words = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var text in corpus)
            foreach (Match m in Regex.Matches(text, @" ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+"))
                words.Add(m.Value);
        foreach (var w in words)
        {
            var enc = string.Concat(System.Text.Encoding.UTF8.GetBytes(w).Select(b => alphabet[b]));
            string cur = enc[..1];
            for (int i = 1; i < enc.Length; i++)
            {
                string piece = enc[i].ToString(), merged = cur + piece;
                if (!vocab.ContainsKey(merged))
                {
                    vocab[merged] = next++;
                    merges.Add(cur + " " + piece);
                }
                cur = merged;
            }
        }
        vocabSize = next;
        var added = new JsonArray();
        for (int i = 0; i < Specials.Length; i++)
            added.Add(new JsonObject
            {
                ["id"] = 256 + i, ["content"] = Specials[i], ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
                ["normalized"] = false, ["special"] = true,
            });
        var vocabJson = new JsonObject();
        foreach (var (k, v) in vocab.OrderBy(kv => kv.Value)) vocabJson[k] = v;
        var root = new JsonObject
        {
            ["version"] = "1.0", ["added_tokens"] = added, ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["post_processor"] = null,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null, ["end_of_word_suffix"] = null,
                ["fuse_unk"] = false, ["byte_fallback"] = false, ["vocab"] = vocabJson,
                ["merges"] = new JsonArray(merges.Select(m => (JsonNode?)m).ToArray()),
            },
        };
        return root.ToJsonString();
    }

    /// <summary>GPT-2 bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 onwards.</summary>
    public static char[] ByteAlphabet()
    {
        var map = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)(256 + n++);
        }
        return map;
    }
}
