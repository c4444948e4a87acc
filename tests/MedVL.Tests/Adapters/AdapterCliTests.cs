using MedVL.Formats;
using static MedVL.Tests.Models.DecoderParityTests;

namespace MedVL.Tests.Adapters;

/// <summary>`medvl logits --adapter …` on the adapter fixtures equals torch's logits.</summary>
public class AdapterCliTests
{
    private static string Ax(params string[] p) => AdapterLayerTests.Fx(p);

    private static string Ids(string folder) =>
        string.Join(",", Npy.Read(Ax(folder, "input_ids.npy")).ToInt64());

    [Theory]
    [InlineData("qwen2", "peft_lora_qwen2", "", "lora", "expected_logits.npy")]
    [InlineData("phi3", "moelora_phi3", "", "moelora", "expected_logits.npy")]
    [InlineData("qwen2", "healthgpt_qwen2", "com_hlora_weights_QWEN_32B.bin", null, "expected_logits_com.npy")]
    public void Logits_WithAdapter_MatchTorch(string baseModel, string folder, string file, string? kind, string expected)
    {
        string outPath = Path.Combine(Path.GetTempPath(), $"medvl-adapter-logits-{Guid.NewGuid():N}.npy");
        try
        {
            var args = new List<string> { "logits", "--model", Fx(baseModel), "--input-ids", Ids(folder), "--output", outPath,
                "--adapter", file == "" ? Ax(folder) : Ax(folder, file) };
            if (kind is not null) args.AddRange(["--adapter-kind", kind]);
            var (code, _, stderr) = CliRunner.Run(args.ToArray());
            Assert.True(code == 0, stderr);
            AssertClose(Npy.Read(Ax(folder, expected)).ToFloat32(), Npy.Read(outPath).ToFloat32(), 1e-4f, folder);
        }
        finally { File.Delete(outPath); }
    }

    [Fact]
    public void BadAdapterArguments_AreClearErrors()
    {
        var (code, _, stderr) = CliRunner.Run("logits", "--model", Fx("qwen2"), "--input-ids", "1,2", "--output", "x.npy",
            "--adapter", Ax("medmoe_stablelm"), "--adapter-kind", "medmoe");
        Assert.Equal(1, code);
        Assert.Contains("--model", stderr);
        (code, _, stderr) = CliRunner.Run("logits", "--model", Fx("phi3"), "--input-ids", "1,2", "--output", "x.npy",
            "--adapter", Ax("peft_lora_qwen2"), "--adapter-kind", "lora");
        Assert.Equal(1, code);
        Assert.Contains("q_proj", stderr); // every mismatched key is listed
        (code, _, stderr) = CliRunner.Run("logits", "--model", Fx("phi3"), "--input-ids", "1,2", "--output", "x.npy", "--adapter-kind", "lora");
        Assert.Equal(1, code);
        Assert.Contains("need --adapter", stderr);
    }
}
