using MedVL.Formats;
using MedVL.Models;
using MedVL.Tensors;
using static MedVL.Tests.Models.DecoderParityTests;

namespace MedVL.Tests.Models;

/// <summary>CLIPVisionModel against tools/models/reference.py (full CLIPModel folder, text tower present and skipped).</summary>
public class ClipParityTests
{
    internal static Tensor Pixels() { var a = Npy.Read(Fx("clip", "pixel_values.npy")); return Tensor.FromArray(a.ToFloat32(), a.Shape); }

    [Fact]
    public void EveryHiddenState_AndPooler_MatchTorch()
    {
        using var model = ClipVisionModel.FromPretrained(Fx("clip"));
        Assert.Equal(16, model.NumPatches);
        using var px = Pixels();
        using var _ = GradMode.NoGrad();
        using var output = model.Forward(px);
        var expected = Expected("clip", "expected_hidden_states.npy");
        Assert.Equal(model.Layers.Count + 1, output.HiddenStates.Count);
        int per = 17 * 48;
        for (int i = 0; i < output.HiddenStates.Count; i++)
        {
            Assert.Equal([1, 17, 48], output.HiddenStates[i].ShapeArray());
            AssertClose(expected.AsSpan(i * per, per), output.HiddenStates[i].ToFloatArray(), 1e-4f, $"clip hidden_states[{i}]");
        }
        AssertClose(Expected("clip", "expected_pooler_output.npy"), output.PoolerOutput!.ToFloatArray(), 1e-4f, "pooler_output");
        Assert.Same(output.HiddenStates[^2], output[-2]);
    }

    [Fact]
    public void SelectFeatures_Penultimate_PatchOnly_And_WithCls()
    {
        using var model = ClipVisionModel.FromPretrained(Fx("clip"));
        using var px = Pixels();
        using var _ = GradMode.NoGrad();
        var expected = Expected("clip", "expected_hidden_states.npy");
        int per = 17 * 48;
        using var patch = model.SelectFeatures(px, -2, includeCls: false);
        Assert.Equal([1, 16, 48], patch.ShapeArray());
        AssertClose(expected.AsSpan(2 * per + 48, 16 * 48), patch.ToFloatArray(), 1e-4f, "hidden_states[-2] patch");
        using var all = model.SelectFeatures(px, 1, includeCls: true);
        AssertClose(expected.AsSpan(per, per), all.ToFloatArray(), 1e-4f, "hidden_states[1] cls_patch");
    }

    [Fact]
    public void WrongPixelShape_IsAClearError()
    {
        using var model = ClipVisionModel.FromPretrained(Fx("clip"));
        using var px = Tensor.Zeros(1, 3, 27, 28);
        var e = Assert.Throws<ArgumentException>(() => model.Forward(px));
        Assert.Contains("[B, 3, 28, 28]", e.Message);
    }
}
