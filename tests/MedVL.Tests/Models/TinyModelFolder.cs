using System.Text.Json;
using System.Text.Json.Nodes;

namespace MedVL.Tests.Models;

/// <summary>
/// A temporary copy of a tiny model fixture plus a byte-level BPE tokenizer.json that fits its 300-token vocabulary:
/// ids 0–255 are the GPT-2 byte alphabet (no merges), and chat special tokens sit at 290–299. Used by the generation and
/// CLI tests (the fixtures carry no tokenizer because the real ones have 32k+ tokens).
/// </summary>
internal sealed class TinyModelFolder : IDisposable
{
    public static readonly (string Content, int Id)[] Specials =
    [
        ("<|endoftext|>", 290), ("<|end|>", 291), ("<|user|>", 292), ("<|assistant|>", 293), ("<|system|>", 294),
        ("<s>", 1 + 296), ("<|im_start|>", 298), ("<|im_end|>", 299),
    ];

    public TinyModelFolder(string fixture, bool withClip = false)
    {
        Root = Path.Combine(Path.GetTempPath(), "medvl-models-" + Guid.NewGuid().ToString("N"));
        Dir = Path.Combine(Root, fixture);
        Copy(DecoderParityTests.Fx(fixture), Dir);
        if (withClip) Copy(DecoderParityTests.Fx("clip"), Path.Combine(Root, "clip"));
        File.WriteAllText(Path.Combine(Dir, "tokenizer.json"), TokenizerJson());
    }

    public string Root { get; }
    public string Dir { get; }

    private static void Copy(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }

    /// <summary>GPT-2 bytes_to_unicode (the library's, shared with the tiny presets' tokenizer).</summary>
    public static char[] ByteAlphabet() => MedVL.Training.CorpusTokenizer.ByteAlphabet();

    public static string TokenizerJson()
    {
        var alphabet = ByteAlphabet();
        var vocab = new JsonObject();
        for (int b = 0; b < 256; b++) vocab[alphabet[b].ToString()] = b;
        var added = new JsonArray();
        foreach (var (c, id) in Specials)
            added.Add(new JsonObject
            {
                ["id"] = id, ["content"] = c, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
                ["normalized"] = false, ["special"] = true,
            });
        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["post_processor"] = null,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null, ["fuse_unk"] = false, ["byte_fallback"] = false, ["vocab"] = vocab, ["merges"] = new JsonArray(),
            },
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = false });
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}
