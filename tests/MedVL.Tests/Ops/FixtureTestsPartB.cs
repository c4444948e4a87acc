using System.Text.Json;
using MedVL.Kernels;
using MedVL.Tensors;
using static MedVL.Tests.Ops.OpFixtureRunner;
using Op = MedVL.Autograd.Ops;

namespace MedVL.Tests.Ops;

// RoPE, attention, conv2d and nearest upsampling against torch 1.13 (tools/reference/ops_b.py): forward outputs, then
// the gradients of Σ out·gout. Tolerances (|ours − torch| ≤ tol·max(1,|torch|)): 1e-5 for RoPE and upsampling,
// 1e-4 for attention and convolution (reductions over keys / channels).

internal static class OpDispatchPartB
{
    public static Tensor[] Run(string op, IReadOnlyDictionary<string, Tensor> x, JsonElement p)
    {
        return op switch
        {
            "rope" => new[] { Op.Rope(x["x"], Rope(p), PositionIds(p)) },
            "attention" => new[]
            {
                Op.ScaledDotProductAttention(x["q"], x["k"], x["v"], x.TryGetValue("mask", out var m) ? m : null,
                    p.GetProperty("causal").GetBoolean(),
                    p.GetProperty("scale").ValueKind == JsonValueKind.Null ? null : p.GetProperty("scale").GetSingle(),
                    p.GetProperty("sliding_window").GetInt32()),
            },
            "conv2d" => new[] { Op.Conv2d(x["x"], x["weight"], x.TryGetValue("bias", out var b) ? b : null, p.GetProperty("stride").GetInt32(), p.GetProperty("padding").GetInt32()) },
            "upsample" => new[] { Op.UpsampleNearest2d(x["x"], p.GetProperty("scale_factor").GetInt32()) },
            _ => throw new NotSupportedException(op),
        };
    }

    public static int[] PositionIds(JsonElement p) => p.GetProperty("position_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();

    public static RotaryEmbedding Rope(JsonElement p)
    {
        int headDim = p.GetProperty("head_dim").GetInt32();
        double theta = p.GetProperty("theta").GetDouble();
        double partial = p.GetProperty("partial_rotary_factor").GetDouble();
        if (p.TryGetProperty("long_factor", out var lf))
        {
            float[] Floats(JsonElement a) => a.EnumerateArray().Select(e => e.GetSingle()).ToArray();
            return RotaryEmbedding.LongRope(headDim, theta, Floats(p.GetProperty("short_factor")), Floats(lf),
                p.GetProperty("max_position_embeddings").GetInt32(), p.GetProperty("original_max_position_embeddings").GetInt32(),
                p.GetProperty("sequence_length").GetInt32(), partial);
        }
        return RotaryEmbedding.Default(headDim, theta, partial);
    }
}

public class RopeFixtureTests
{
    public static IEnumerable<object[]> Data => Cases("rope");
    [Theory, MemberData(nameof(Data))]
    public void MatchesTorch(OpCase c) => Run(c, OpDispatchPartB.Run, 1e-5f);

    [Theory, MemberData(nameof(Data))]
    public void TablesMatchHuggingFace(OpCase c)
    {
        // inv_freq, cos and sin (HF's rotary embedding outputs, attention scaling folded into cos/sin) before any rotation
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(c.Dir, "case.json")));
        var p = json.RootElement.GetProperty("params");
        var rope = OpDispatchPartB.Rope(p);
        var pos = OpDispatchPartB.PositionIds(p);
        var invFreq = MedVL.Formats.Npy.Read(Path.Combine(c.Dir, "inv_freq.npy")).ToFloat32();
        Assert.Equal(rope.RotaryDim / 2, invFreq.Length);
        Assert.Equal(invFreq, rope.InvFreq.ToArray());
        var cosExpected = MedVL.Formats.Npy.Read(Path.Combine(c.Dir, "cos.npy")).ToFloat32();
        var sinExpected = MedVL.Formats.Npy.Read(Path.Combine(c.Dir, "sin.npy")).ToFloat32();
        int half = rope.RotaryDim / 2;
        var cos = new float[pos.Length * half];
        var sin = new float[pos.Length * half];
        rope.CosSin(pos, cos, sin);
        // HF's tables repeat the half twice along the last dim: compare the first half of each row
        int rowLen = cosExpected.Length / pos.Length;
        for (int t = 0; t < pos.Length; t++)
            for (int i = 0; i < half; i++)
            {
                Assert.Equal(cosExpected[t * rowLen + i], cos[t * half + i], 1e-5f * MathF.Max(1, MathF.Abs(cosExpected[t * rowLen + i])));
                Assert.Equal(sinExpected[t * rowLen + i], sin[t * half + i], 1e-5f * MathF.Max(1, MathF.Abs(sinExpected[t * rowLen + i])));
            }
    }
}

public class AttentionFixtureTests
{
    public static IEnumerable<object[]> Data => Cases("attention");
    [Theory, MemberData(nameof(Data))]
    public void MatchesTorch(OpCase c) => Run(c, OpDispatchPartB.Run, 1e-4f);
}

public class Conv2dFixtureTests
{
    public static IEnumerable<object[]> Data => Cases("conv2d");
    [Theory, MemberData(nameof(Data))]
    public void MatchesTorch(OpCase c) => Run(c, OpDispatchPartB.Run, 1e-4f);
}

public class UpsampleFixtureTests
{
    public static IEnumerable<object[]> Data => Cases("upsample");
    [Theory, MemberData(nameof(Data))]
    public void MatchesTorch(OpCase c) => Run(c, OpDispatchPartB.Run, 1e-5f);
}
