using System.Text.Json.Nodes;
using MedVL.Text;
using MedVL.Text.Templates;

namespace MedVL.Tests.Text;

public class LlavaImageTokenTests
{
    [Theory]
    [InlineData("llama2")]
    [InlineData("qwen3")]
    public void TokenizeWithImage_matches_llava_over_hf_ids(string name)
    {
        var tok = TokenizerFixtures.Load(name);
        var root = JsonNode.Parse(File.ReadAllText(Path.Combine(TokenizerFixtures.Dir, "expected.llava_image_tokens.json")))!;
        foreach (var c in root[name]!.AsArray())
        {
            string prompt = c!["prompt"]!.GetValue<string>();
            int[] expected = c["ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
            Assert.Equal(expected, tok.TokenizeWithImage(prompt));
        }
    }

    [Fact]
    public void Bos_only_on_first_chunk_and_one_image_index_between_chunks()
    {
        var tok = TokenizerFixtures.Load("llama2");
        var ids = tok.TokenizeWithImage("a <image> b");
        Assert.Equal(1, ids[0]);
        Assert.Equal(1, ids.Count(i => i == 1));
        Assert.Equal(1, ids.Count(i => i == Tokenizer.ImageTokenIndex));
    }
}

public class TokenizerApiTests
{
    [Fact]
    public void Special_ids_and_lookups_mistral()
    {
        var tok = TokenizerFixtures.Load("llama2");
        Assert.Equal(1, tok.BosTokenId);
        Assert.Equal(2, tok.EosTokenId);
        Assert.Equal(0, tok.UnkTokenId);
        Assert.Equal(32000, tok.VocabSize);
        Assert.Equal("<0x0A>", tok.IdToToken(tok.TokenToId("<0x0A>")!.Value));
        Assert.True(tok.IsSpecialToken(1));
        Assert.False(tok.IsSpecialToken(100));
    }

    [Fact]
    public void Special_ids_from_tokenizer_config_qwen3()
    {
        var names = SpecialTokenNames.FromTokenizerConfig(Path.Combine(TokenizerFixtures.Dir, "qwen3.tokenizer_config.json"));
        var tok = TokenizerFixtures.Load("qwen3").WithSpecialTokens(names);
        Assert.Null(tok.BosTokenId);
        Assert.Equal(151645, tok.EosTokenId); // <|im_end|>
        Assert.Equal(151643, tok.PadTokenId); // <|endoftext|>
        Assert.Equal(151669, tok.VocabSize);  // 151643 model entries + 26 added tokens
    }

    [Fact]
    public void WithAddedTokens_assigns_ids_like_hf_and_splits_them_out()
    {
        var baseTok = TokenizerFixtures.Load("llama2");
        // HealthGPT vocabulary extension (add_special_tokens_and_resize_model), here on a 32000-entry vocab.
        var names = new List<string> { "<start_index>" };
        names.AddRange(Enumerable.Range(0, 8192).Select(i => $"<idx_{i}>"));
        names.Add("<end_index>");
        names.Add("<pixel_newline>");
        var tok = baseTok.WithAddedTokens(names);
        Assert.Equal(32000, tok.TokenToId("<start_index>"));
        Assert.Equal(32001 + 123, tok.TokenToId("<idx_123>"));
        Assert.Equal(40194, tok.TokenToId("<pixel_newline>"));
        Assert.Equal(32000 + 8195, tok.VocabSize);
        Assert.Equal(1, tok.BosTokenId);
        var ids = tok.Encode("Here is the CT.<start_index><idx_5><idx_8191><end_index>", addSpecialTokens: false);
        Assert.Equal([32000, 32006, 40192, 40193], ids[^4..]);
        Assert.Equal(baseTok.Encode("Here is the CT.", addSpecialTokens: false), ids[..^4]);
        Assert.Equal("Here is the CT.", tok.Decode(ids, skipSpecialTokens: true));
        // Re-adding known contents keeps their ids.
        Assert.Equal(tok.TokenToId("<idx_7>"), tok.WithAddedTokens(["<idx_7>", "<s>"]).TokenToId("<idx_7>"));
        Assert.Equal(1, tok.WithAddedTokens(["<s>"]).TokenToId("<s>"));
    }

    [Fact]
    public void FromDirectory_reads_tokenizer_config()
    {
        string dir = Path.Combine(Path.GetTempPath(), "medvl-tok-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            using (var gz = new System.IO.Compression.GZipStream(File.OpenRead(Path.Combine(TokenizerFixtures.Dir, "llama2.tokenizer.json.gz")), System.IO.Compression.CompressionMode.Decompress))
            using (var fs = File.Create(Path.Combine(dir, "tokenizer.json"))) gz.CopyTo(fs);
            File.Copy(Path.Combine(TokenizerFixtures.Dir, "llama2.tokenizer_config.json"), Path.Combine(dir, "tokenizer_config.json"));
            var tok = Tokenizer.FromDirectory(dir);
            Assert.Equal(1, tok.BosTokenId);
            Assert.Equal(2, tok.EosTokenId);
            Assert.Null(tok.PadTokenId); // pad_token: null
            Assert.Equal(TokenizerFixtures.Load("llama2").Encode("CT shows a 3.2 cm lesion"), tok.Encode("CT shows a 3.2 cm lesion"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Streaming_holds_back_partial_utf8_from_byte_fallback()
    {
        var tok = TokenizerFixtures.Load("llama2");
        // U+20000 is not in Mistral's vocab: four <0x..> byte tokens; nothing may be emitted before the fourth.
        int[] ids = tok.Encode("𠀀", addSpecialTokens: false);
        Assert.Equal(5, ids.Length); // "▁" + 4 bytes
        var s = tok.CreateStreamingDecoder();
        var outputs = ids.Select(s.Step).ToArray();
        Assert.All(outputs.Skip(1).Take(3), o => Assert.Null(o));
        Assert.Equal("𠀀", string.Concat(outputs.Where(o => o != null)) + s.Flush());
    }

    [Fact]
    public void Streaming_holds_back_partial_utf8_in_byte_level()
    {
        var tok = TokenizerFixtures.Load("gpt2");
        int[] ids = tok.Encode("病灶", addSpecialTokens: false);
        var s = tok.CreateStreamingDecoder();
        var text = "";
        foreach (int id in ids)
        {
            var piece = s.Step(id);
            if (piece != null) { Assert.DoesNotContain('\uFFFD', piece); text += piece; }
        }
        Assert.Equal("病灶", text + s.Flush());
    }

    [Fact]
    public void Encoding_is_thread_safe()
    {
        var tok = TokenizerFixtures.Load("qwen3");
        var e = TokenizerFixtures.ReadExpected("qwen3");
        Parallel.ForEach(Enumerable.Range(0, 8), _ =>
        {
            foreach (var c in e.Cases) Assert.Equal(c.Ids, tok.Encode(c.Text));
        });
    }
}

public class TokenizerLoaderErrorTests
{
    private static TokenizerFormatException Load(string json) =>
        Assert.Throws<TokenizerFormatException>(() => Tokenizer.FromJson(System.Text.Encoding.UTF8.GetBytes(json), "bad.json"));

    private const string Model = "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\"]}";

    [Fact]
    public void Minimal_file_loads_and_merges()
    {
        var tok = Tokenizer.FromJson(System.Text.Encoding.UTF8.GetBytes("{" + Model + "}"), "ok.json");
        Assert.Equal([2, 0], tok.Encode("aba"));
    }

    [Fact]
    public void Errors_name_file_and_json_path()
    {
        var ex = Load("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":\"x\"},\"merges\":[]}}");
        Assert.Contains("bad.json", ex.Message);
        Assert.Contains("$.model.vocab[\"a\"]", ex.Message);

        ex = Load("{" + Model.Replace("[\"a b\"]", "[\"a b c\"]") + "}");
        Assert.Contains("$.model.merges[0]", ex.Message);

        ex = Load("{" + Model.Replace("[\"a b\"]", "[[\"a\",\"zz\"]]") + "}");
        Assert.Contains("\"zz\" is not in the vocab", ex.Message);

        ex = Load("{" + Model + ",\"pre_tokenizer\":{\"type\":\"Whitespace\"}}");
        Assert.Contains("$.pre_tokenizer.type", ex.Message);

        ex = Load("{" + Model + ",\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},\"behavior\":\"Isolated\"}}");
        Assert.Contains("$.pre_tokenizer.pattern.Regex", ex.Message);

        ex = Load("{" + Model + ",\"added_tokens\":[{\"content\":\"<x>\"}]}");
        Assert.Contains("$.added_tokens[0].id", ex.Message);

        ex = Load("{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}");
        Assert.Contains("unsupported model", ex.Message);

        ex = Load("{\"model\": ");
        Assert.Contains("invalid JSON", ex.Message);

        ex = Load("{" + Model + ",\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}}],\"special_tokens\":{}}}");
        Assert.Contains("$.post_processor.single[0].SpecialToken.id", ex.Message);
    }

    [Fact]
    public void Size_limits_are_enforced()
    {
        var limits = new TokenizerLimits { MaxVocab = 2 };
        var ex = Assert.Throws<TokenizerFormatException>(() =>
            Tokenizer.FromJson(System.Text.Encoding.UTF8.GetBytes("{" + Model + "}"), "big.json", null, limits));
        Assert.Contains("more than 2 entries", ex.Message);
        var ex2 = Assert.Throws<TokenizerFormatException>(() =>
            Tokenizer.FromJson(new byte[100], "huge.json", null, new TokenizerLimits { MaxFileBytes = 10 }));
        Assert.Contains("exceeds the limit", ex2.Message);
    }

    [Fact]
    public void Missing_file_is_reported()
    {
        Assert.Throws<FileNotFoundException>(() => Tokenizer.FromFile("/nonexistent/tokenizer.json"));
    }
}

public class ConversationTemplateTests
{
    private const string Q = "What is the modality of this image?";

    [Fact]
    public void Phi3_instruct_single_turn()
    {
        Assert.Equal("<|system|>\nYou are a helpful AI assistant.<|end|>\n<|user|>\n<image>\n" + Q + "<|end|>\n<|assistant|>\n",
            ConversationTemplates.Get("phi3_instruct").RenderQuestion(Q));
    }

    [Fact]
    public void Phi3_instruct_multi_turn_and_stop_ids()
    {
        var t = ConversationTemplates.Phi3Instruct;
        string multi = t.Render([
            new ChatTurn(ChatRole.User, Q, HasImage: true), new ChatTurn(ChatRole.Assistant, "CT."),
            new ChatTurn(ChatRole.User, "Any lesion?"), new ChatTurn(ChatRole.Assistant, null)]);
        Assert.Equal("<|system|>\nYou are a helpful AI assistant.<|end|>\n<|user|>\n<image>\n" + Q + "<|end|>\n<|assistant|>\nCT.<|end|>\n" +
                     "<|user|>\nAny lesion?<|end|>\n<|assistant|>\n", multi);
        Assert.Equal(["<|end|>", "<|endoftext|>", "<|assistant|>"], t.StopStrings);
    }

    [Fact]
    public void Phi4_instruct_multi_turn()
    {
        string multi = ConversationTemplates.Phi4Instruct.Render([
            new ChatTurn(ChatRole.User, Q, HasImage: true), new ChatTurn(ChatRole.Assistant, "MRI."),
            new ChatTurn(ChatRole.User, "Sequence?"), new ChatTurn(ChatRole.Assistant, null)]);
        Assert.EndsWith("<|im_start|>user<|im_sep|>\n<image>\n" + Q + "<|im_end|>\n<|im_start|>assistant<|im_sep|>\nMRI.<|im_end|>\n" +
                        "<|im_start|>user<|im_sep|>\nSequence?<|im_end|>\n<|im_start|>assistant<|im_sep|>\n", multi);
    }

    [Fact]
    public void Phi4_instruct_single_turn()
    {
        Assert.Equal("<|im_start|>system<|im_sep|>\nYou are a medieval knight and must provide explanations to modern people.<|im_end|>\n" +
                     "<|im_start|>user<|im_sep|>\n<image>\n" + Q + "<|im_end|>\n<|im_start|>assistant<|im_sep|>\n",
            ConversationTemplates.Get("phi4_instruct").RenderQuestion(Q));
    }

    [Fact]
    public void Qwen2_single_and_multi_turn()
    {
        var t = ConversationTemplates.Get("qwen_2");
        Assert.Equal("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n" +
                     "<|im_start|>user\n<image>\n" + Q + "<|im_end|>\n<|im_start|>assistant\n", t.RenderQuestion(Q));
        string multi = t.Render([
            new ChatTurn(ChatRole.User, Q, HasImage: true), new ChatTurn(ChatRole.Assistant, "CT."),
            new ChatTurn(ChatRole.User, "Which organ?"), new ChatTurn(ChatRole.Assistant, null)]);
        Assert.Equal("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n" +
                     "<|im_start|>user\n<image>\n" + Q + "<|im_end|>\n<|im_start|>assistant\nCT.<|im_end|>\n" +
                     "<|im_start|>user\nWhich organ?<|im_end|>\n<|im_start|>assistant\n", multi);
    }

    [Theory]
    [InlineData("phi")]
    [InlineData("stablelm")]
    [InlineData("qwen")]
    public void MedMoE_two_style(string name)
    {
        var t = ConversationTemplates.Get(name);
        const string sys = "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.";
        Assert.Equal(sys + " USER: <image>\n" + Q + " ASSISTANT:", t.RenderQuestion(Q));
        string multi = t.Render([
            new ChatTurn(ChatRole.User, "<image>\n" + Q, HasImage: true), new ChatTurn(ChatRole.Assistant, "MRI"),
            new ChatTurn(ChatRole.User, "Is it normal?"), new ChatTurn(ChatRole.Assistant, null)]);
        Assert.Equal(sys + " USER: <image>\n" + Q + " ASSISTANT: MRI<|endoftext|>USER: Is it normal? ASSISTANT:", multi);
        Assert.Equal(["<|endoftext|>"], t.StopStrings);
    }

    [Fact]
    public void Plain_renders_image_and_caption()
    {
        var t = ConversationTemplates.Get("plain");
        // llava/train/train.py preprocess_plain: "<image>" + sep + caption (+ sep2, None upstream, "" here).
        Assert.Equal("<image>\nA chest X-ray.", t.Render([new ChatTurn(ChatRole.User, "<image>"), new ChatTurn(ChatRole.Assistant, "A chest X-ray.")]));
        Assert.Equal("<image>\n", t.Render([new ChatTurn(ChatRole.User, "<image>"), new ChatTurn(ChatRole.Assistant, null)]));
    }

    [Fact]
    public void Stop_ids_resolve_through_tokenizer()
    {
        var qwen = TokenizerFixtures.Load("qwen3");
        Assert.Equal([151645, 151643], ConversationTemplates.Qwen2.StopTokenIds(qwen));
        var gpt4 = TokenizerFixtures.Load("gpt4");
        Assert.Equal([100257], ConversationTemplates.StableLm.StopTokenIds(gpt4));
    }

    [Fact]
    public void Unknown_template_is_a_clear_error()
    {
        var ex = Assert.Throws<ArgumentException>(() => ConversationTemplates.Get("phi2"));
        Assert.Contains("phi3_instruct", ex.Message);
    }

    [Fact]
    public void Qwen_prompt_tokenises_with_image_index()
    {
        var qwen = TokenizerFixtures.Load("qwen3");
        var ids = qwen.TokenizeWithImage(ConversationTemplates.Qwen2.RenderQuestion(Q));
        Assert.Equal(151644, ids[0]); // <|im_start|>, no BOS for Qwen
        Assert.Single(ids, Tokenizer.ImageTokenIndex);
    }
}
