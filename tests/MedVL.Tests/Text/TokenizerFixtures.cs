using System.Collections.Concurrent;
using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Nodes;
using MedVL.Text;

namespace MedVL.Tests.Text;

/// <summary>Loads the committed real tokenizer.json files and the HF reference outputs (tools/text/make_tokenizer_fixtures.js).</summary>
internal static class TokenizerFixtures
{
    public static string Dir => Path.Combine(AppContext.BaseDirectory, "fixtures", "text");

    private static readonly ConcurrentDictionary<string, Lazy<Tokenizer>> Cache = new();

    public static Tokenizer Load(string name) =>
        Cache.GetOrAdd(name, n => new Lazy<Tokenizer>(() => Tokenizer.FromFile(Path.Combine(Dir, $"{n}.tokenizer.json.gz")))).Value;

    public sealed record Case(string Text, int[] Ids, int[] IdsNoSpecial, string Decoded, string DecodedSkipSpecial);

    public sealed record Expected(string Name, string Base, JsonObject Patch, List<Case> Cases, JsonObject? Synthetic = null);

    public static Expected ReadExpected(string variant)
    {
        var root = JsonNode.Parse(File.ReadAllText(Path.Combine(Dir, $"expected.{variant}.json")))!.AsObject();
        var cases = new List<Case>();
        foreach (var c in root["cases"]!.AsArray())
        {
            cases.Add(new Case(c!["text"]!.GetValue<string>(),
                c["ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray(),
                c["ids_no_special"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray(),
                c["decoded"]!.GetValue<string>(), c["decoded_skip_special"]!.GetValue<string>()));
        }
        return new Expected(root["name"]!.GetValue<string>(), root["base"]!.GetValue<string>(), root["patch"]!.AsObject(), cases,
            root["tokenizer"]?.AsObject());
    }

    /// <summary>The tokenizer for a variant: the base file with the same patch the generator applied.</summary>
    public static Tokenizer ForVariant(Expected e)
    {
        if (e.Synthetic != null)
            return Cache.GetOrAdd("synthetic:" + e.Name, _ => new Lazy<Tokenizer>(() =>
                Tokenizer.FromJson(JsonSerializer.SerializeToUtf8Bytes(e.Synthetic), e.Name))).Value;
        if (e.Patch.Count == 0) return Load(e.Base);
        return Cache.GetOrAdd("variant:" + e.Name, _ => new Lazy<Tokenizer>(() =>
        {
            using var gz = new GZipStream(File.OpenRead(Path.Combine(Dir, $"{e.Base}.tokenizer.json.gz")), CompressionMode.Decompress);
            var json = JsonNode.Parse(gz)!.AsObject();
            if (e.Patch["set"] is JsonObject set)
                foreach (var (k, v) in set) json[k] = v?.DeepClone();
            if (e.Patch["model"] is JsonObject model)
                foreach (var (k, v) in model) json["model"]![k] = v?.DeepClone();
            if (e.Patch["added"] is JsonArray added)
                foreach (var t in added) json["added_tokens"]!.AsArray().Add(t!.DeepClone());
            return Tokenizer.FromJson(JsonSerializer.SerializeToUtf8Bytes(json), $"{e.Base}+{e.Name}");
        })).Value;
    }

    public static IEnumerable<object[]> Variants() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(Dir, "expected.manifest.json")))!["variants"]!.AsArray()
            .Select(v => new object[] { v!["name"]!.GetValue<string>() });

    public static string Show(string s) => JsonSerializer.Serialize(s);
}
