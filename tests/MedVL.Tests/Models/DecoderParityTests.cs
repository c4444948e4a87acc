using MedVL.Formats;
using MedVL.Models;
using MedVL.Tensors;

namespace MedVL.Tests.Models;

/// <summary>
/// Every decoder family against tools/models/reference.py (plain torch float32, HF semantics): logits, every hidden
/// state, and prefill(ids[0:4]) + one cached step over ids[4:7] equal to the full run.
/// </summary>
public class DecoderParityTests
{
    internal static string Fx(params string[] p) => TestPaths.Fixture(["models", .. p]);

    public static TheoryData<string> Families() => ["phi3", "phi3_longrope", "phi4", "llama", "llama_tied", "qwen2", "stablelm", "phi2"];

    internal static int[] Ids(string folder, string file = "input_ids.npy") =>
        Npy.Read(Fx(folder, file)).ToInt64().Select(x => (int)x).ToArray();

    internal static float[] Expected(string folder, string file) => Npy.Read(Fx(folder, file)).ToFloat32();

    /// <summary>|a − e| ≤ tol · max(1, |e|) elementwise (relative, with an absolute floor at 1).</summary>
    internal static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, float tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double worst = 0; int at = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double err = Math.Abs(actual[i] - expected[i]) / Math.Max(1.0, Math.Abs(expected[i]));
            if (!(err <= worst)) { worst = err; at = i; if (double.IsNaN(err)) break; }
        }
        if (!(worst <= tol)) Assert.Fail($"{what}: worst relative error {worst:G3} at {at} (expected {expected[at]}, got {actual[at]}), tolerance {tol}");
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Logits_And_HiddenStates_MatchTorch(string folder)
    {
        using var model = AutoModelForCausalLM.FromPretrained(Fx(folder));
        var ids = Ids(folder);
        var states = new List<Tensor>();
        using (GradMode.NoGrad())
        using (var logits = model.Forward(ids, options: new DecoderForwardOptions { HiddenStates = states }))
        {
            Assert.Equal([1, ids.Length, model.VocabSize], logits.ShapeArray());
            AssertClose(Expected(folder, "expected_logits.npy"), logits.ToFloatArray(), 1e-4f, $"{folder} logits");
        }
        var hs = Expected(folder, "expected_hidden_states.npy");
        Assert.Equal(model.NumLayers + 1, states.Count);
        int per = ids.Length * model.HiddenSize;
        for (int i = 0; i < states.Count; i++)
        {
            AssertClose(hs.AsSpan(i * per, per), states[i].ToFloatArray(), 1e-4f, $"{folder} hidden_states[{i}]");
            states[i].Dispose();
        }
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void KvCache_PrefillThenStep_EqualsReference(string folder)
    {
        using var model = AutoModelForCausalLM.FromPretrained(Fx(folder));
        var ids = Ids(folder);
        using var _ = GradMode.NoGrad();
        using var cache = model.CreateCache(initialCapacity: 2); // forces two regrowths
        using var l1 = model.Forward(ids.AsSpan(0, 4), cache);
        Assert.Equal(4, cache.Length);
        using var l2 = model.Forward(ids.AsSpan(4), cache);
        Assert.Equal(ids.Length, cache.Length);
        var got = l1.ToFloatArray().Concat(l2.ToFloatArray()).ToArray();
        AssertClose(Expected(folder, "expected_logits_kvcache.npy"), got, 1e-4f, $"{folder} cached logits");
        AssertClose(Expected(folder, "expected_logits.npy"), got, 1e-4f, $"{folder} cached vs full logits");
    }

    [Fact]
    public void Phi3LongRope_LongPrompt_UsesLongFactors()
    {
        using var model = AutoModelForCausalLM.FromPretrained(Fx("phi3_longrope"));
        var ids = Ids("phi3_longrope", "input_ids_long.npy");
        Assert.Equal(40, ids.Length); // > original_max_position_embeddings = 32
        using var _ = GradMode.NoGrad();
        using var logits = model.Forward(ids);
        AssertClose(Expected("phi3_longrope", "expected_logits_long.npy"), logits.ToFloatArray(), 1e-4f, "longrope long logits");
    }

    [Fact]
    public void DecodeOneTokenAtATime_MatchesFullRun()
    {
        using var model = AutoModelForCausalLM.FromPretrained(Fx("phi4"));
        var ids = Ids("phi4");
        using var _ = GradMode.NoGrad();
        using var cache = model.CreateCache();
        var got = new List<float>();
        foreach (var id in ids)
        {
            using var l = model.Forward([id], cache, new DecoderForwardOptions { LastTokenLogitsOnly = true });
            got.AddRange(l.ToFloatArray());
        }
        AssertClose(Expected("phi4", "expected_logits.npy"), got.ToArray(), 1e-4f, "phi4 token-by-token");
    }
}

public class BatchedForwardTests
{
    [Theory]
    [InlineData("phi4")]
    [InlineData("stablelm")]
    public void LeftPaddedBatch_WithAttentionMaskAndPositions_EqualsSingleRuns(string folder)
    {
        using var model = AutoModelForCausalLM.FromPretrained(DecoderParityTests.Fx(folder));
        var ids = DecoderParityTests.Ids(folder);
        int t = ids.Length, pad = 3, v = model.VocabSize;
        var shortIds = ids[pad..];
        // Row 0: the full prompt. Row 1: three pad tokens (id 0), then ids[3..] (HF left padding).
        var batch = ids.Concat(Enumerable.Repeat(0, pad)).Concat(shortIds).Select(x => (long)x).ToArray();
        var mask = Enumerable.Repeat(1L, t).Concat(Enumerable.Repeat(0L, pad)).Concat(Enumerable.Repeat(1L, t - pad)).ToArray();
        // HF generate: position_ids = attention_mask.cumsum(-1) - 1, masked_fill(mask == 0, 1).
        var pos = Enumerable.Range(0, t).Concat(Enumerable.Repeat(1, pad)).Concat(Enumerable.Range(0, t - pad)).ToArray();
        using var _ = GradMode.NoGrad();
        using var idsT = Tensor.FromArray(batch, 2, t);
        using var maskT = Tensor.FromArray(mask, 2, t);
        using var logits = model.Forward(idsT, options: new DecoderForwardOptions { AttentionMask = maskT, PositionIds = pos });
        var all = logits.ToFloatArray();
        using var l0 = model.Forward(ids);
        using var l1 = model.Forward(shortIds);
        DecoderParityTests.AssertClose(l0.ToFloatArray(), all.AsSpan(0, t * v), 1e-5f, "row 0");
        DecoderParityTests.AssertClose(l1.ToFloatArray(), all.AsSpan((t + pad) * v, (t - pad) * v), 1e-5f, "row 1 (valid positions)");
        Assert.All(all, x => Assert.True(float.IsFinite(x)));
    }
}

public class HalfPrecisionCheckpointTests
{
    [Fact]
    public void F16Checkpoint_LoadsInPlace_AndStaysWithinHalfPrecisionOfTheReference()
    {
        var dir = Path.Combine(Path.GetTempPath(), "medvl-f16-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            File.Copy(DecoderParityTests.Fx("phi3", "config.json"), Path.Combine(dir, "config.json"));
            using (var st = SafetensorsFile.Open(DecoderParityTests.Fx("phi3", "model.safetensors")))
                SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), st.Tensors.Select(kv =>
                    SafetensorsTensor.FromArray(kv.Key, DType.F16, kv.Value.ToFloat32().Select(x => (Half)x).ToArray(), kv.Value.Shape)));
            using var model = AutoModelForCausalLM.FromPretrained(dir);
            Assert.Equal(DType.F16, model.LmHead.Weight.DType);
            using var _ = GradMode.NoGrad();
            using var logits = model.Forward(DecoderParityTests.Ids("phi3"));
            // Weights rounded to 11 significant bits: the logits move by ~1e-3 relative; 2e-2 bounds it with margin.
            DecoderParityTests.AssertClose(DecoderParityTests.Expected("phi3", "expected_logits.npy"), logits.ToFloatArray(), 2e-2f, "f16 logits");
        }
        finally { Directory.Delete(dir, true); }
    }
}
