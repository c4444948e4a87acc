using System.Text;
using MedVL.Text;

namespace MedVL.Tests.Text;

/// <summary>
/// Ids and decodes must equal Hugging Face tokenizers 0.23.2 (Rust) on every corpus line, for real tokenizer.json files
/// (Mistral SentencePiece-BPE, Qwen3 byte-level, GPT-2, cl100k) and patched variants covering Metaspace, Digits,
/// added-token options, Split behaviours and ignore_merges.
/// </summary>
public class HfParityTests
{
    public static IEnumerable<object[]> Variants() => TokenizerFixtures.Variants();

    [Theory]
    [MemberData(nameof(Variants))]
    public void Encode_matches_hf_ids(string variant)
    {
        var e = TokenizerFixtures.ReadExpected(variant);
        var tok = TokenizerFixtures.ForVariant(e);
        var failures = new StringBuilder();
        int bad = 0;
        foreach (var c in e.Cases)
        {
            var ids = tok.Encode(c.Text, addSpecialTokens: true);
            var ids2 = tok.Encode(c.Text, addSpecialTokens: false);
            if (!ids.SequenceEqual(c.Ids) || !ids2.SequenceEqual(c.IdsNoSpecial))
            {
                if (bad++ < 5)
                    failures.AppendLine($"{TokenizerFixtures.Show(c.Text)}\n  hf:  [{string.Join(",", c.Ids)}]\n  ours:[{string.Join(",", ids)}]\n  hf-nospecial:[{string.Join(",", c.IdsNoSpecial)}]\n  ours-nospecial:[{string.Join(",", ids2)}]");
            }
        }
        Assert.True(bad == 0, $"{variant}: {bad}/{e.Cases.Count} lines differ\n{failures}");
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Decode_matches_hf(string variant)
    {
        var e = TokenizerFixtures.ReadExpected(variant);
        var tok = TokenizerFixtures.ForVariant(e);
        var failures = new StringBuilder();
        int bad = 0;
        foreach (var c in e.Cases)
        {
            string d = tok.Decode(c.Ids), ds = tok.Decode(c.Ids, skipSpecialTokens: true);
            if (d != c.Decoded || ds != c.DecodedSkipSpecial)
                if (bad++ < 5)
                    failures.AppendLine($"{TokenizerFixtures.Show(c.Text)}\n  hf:  {TokenizerFixtures.Show(c.Decoded)} / {TokenizerFixtures.Show(c.DecodedSkipSpecial)}\n  ours:{TokenizerFixtures.Show(d)} / {TokenizerFixtures.Show(ds)}");
        }
        Assert.True(bad == 0, $"{variant}: {bad}/{e.Cases.Count} decodes differ\n{failures}");
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Streaming_decode_equals_full_decode(string variant)
    {
        var e = TokenizerFixtures.ReadExpected(variant);
        var tok = TokenizerFixtures.ForVariant(e);
        foreach (var skip in new[] { false, true })
        foreach (var c in e.Cases)
        {
            var stream = tok.CreateStreamingDecoder(skip);
            var sb = new StringBuilder();
            foreach (int id in c.Ids)
            {
                var piece = stream.Step(id);
                if (piece != null)
                {
                    Assert.False(piece.EndsWith('\uFFFD') && !(skip ? c.DecodedSkipSpecial : c.Decoded).Contains('\uFFFD'),
                        $"{variant}: streamed an incomplete UTF-8 sequence for {TokenizerFixtures.Show(c.Text)}");
                    sb.Append(piece);
                }
            }
            sb.Append(stream.Flush());
            Assert.Equal(skip ? c.DecodedSkipSpecial : c.Decoded, sb.ToString());
        }
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Span_overload_matches_array_overload(string variant)
    {
        var e = TokenizerFixtures.ReadExpected(variant);
        var tok = TokenizerFixtures.ForVariant(e);
        Span<int> buffer = new int[4096];
        foreach (var c in e.Cases.Take(50))
        {
            int n = tok.Encode(c.Text, buffer, addSpecialTokens: true);
            Assert.Equal(c.Ids, buffer[..n].ToArray());
            if (c.Ids.Length > 0)
            {
                Assert.False(tok.TryEncode(c.Text, buffer[..(c.Ids.Length - 1)], out int needed));
                Assert.Equal(c.Ids.Length, needed);
            }
        }
    }
}
