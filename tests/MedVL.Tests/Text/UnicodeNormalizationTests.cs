using System.Text.Json.Nodes;
using MedVL.Text;

namespace MedVL.Tests.Text;

/// <summary>NFC/NFD/NFKC/NFKD against Python's unicodedata (tools/text/make_normalization_fixture.py).</summary>
public class UnicodeNormalizationTests
{
    [Fact]
    public void All_forms_match_python_unicodedata()
    {
        var root = JsonNode.Parse(File.ReadAllText(Path.Combine(TokenizerFixtures.Dir, "normalization.json")))!;
        int n = 0;
        foreach (var c in root["cases"]!.AsArray())
        {
            string s = c!["s"]!.GetValue<string>();
            Assert.Equal(c["nfc"]!.GetValue<string>(), UnicodeNormalization.Normalize(s, UnicodeNormalForm.NFC));
            Assert.Equal(c["nfd"]!.GetValue<string>(), UnicodeNormalization.Normalize(s, UnicodeNormalForm.NFD));
            Assert.Equal(c["nfkc"]!.GetValue<string>(), UnicodeNormalization.Normalize(s, UnicodeNormalForm.NFKC));
            Assert.Equal(c["nfkd"]!.GetValue<string>(), UnicodeNormalization.Normalize(s, UnicodeNormalForm.NFKD));
            n++;
        }
        Assert.True(n > 2000);
    }
}
