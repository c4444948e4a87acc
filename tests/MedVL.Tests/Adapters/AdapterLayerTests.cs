using System.Text.Json;
using MedVL.Adapters;
using MedVL.Autograd;
using AOps = MedVL.Autograd.Ops;
using MedVL.Formats;
using MedVL.Models.Blocks;
using MedVL.Tensors;
using static MedVL.Tests.Models.DecoderParityTests;

namespace MedVL.Tests.Adapters;

/// <summary>
/// One adapted nn.Linear against tools/adapters/reference.py (layers/*.safetensors): output, input gradient and the
/// gradient of every adapter parameter, with the dropout pinned by the fixture's mask (odd sizes: T 5, in 13, out 11).
/// </summary>
public class AdapterLayerTests
{
    internal static string Fx(params string[] p) => TestPaths.Fixture(["adapters", .. p]);

    private static Dictionary<string, Tensor> ReadAll(string path)
    {
        using var st = SafetensorsFile.Open(path);
        return st.Tensors.ToDictionary(kv => kv.Key, kv => { using var t = kv.Value.ToTensor(); return t.Clone(); });
    }

    private static Tensor Param(Dictionary<string, Tensor> f, string name)
    {
        var t = f[name].Clone();
        t.RequiresGrad = true;
        return t;
    }

    [Theory]
    [InlineData("hlora")]
    [InlineData("hlora_k2")]
    [InlineData("lora")]
    [InlineData("lora_rslora")]
    [InlineData("moelora")]
    public void ForwardAndBackward_MatchTorch(string name)
    {
        using var meta = JsonDocument.Parse(File.ReadAllText(Fx("layers", "fixture.json")));
        var m = meta.RootElement.GetProperty(name);
        float p = m.GetProperty("dropout_p").GetSingle();
        double scaling = m.GetProperty("scaling").GetDouble();
        var f = ReadAll(Fx("layers", name + ".safetensors"));
        try
        {
            ILinearAdapter adapter = name switch
            {
                "hlora" or "hlora_k2" => new HLoraAdapter("t", Param(f, "lora_route.weight"), Param(f, "lora_A.weight"), Param(f, "lora_B.weight"), scaling, p),
                "moelora" => new MoeLoraAdapter("t", Param(f, "lora_gate.weight"),
                    Enumerable.Range(0, 3).Select(i => Param(f, $"lora_A.{i}.weight")).ToArray(),
                    Enumerable.Range(0, 3).Select(i => Param(f, $"lora_B.{i}.weight")).ToArray(), scaling, p),
                _ => new LoraAdapter("t", Param(f, "lora_A.weight"), Param(f, "lora_B.weight"), scaling, p),
            };
            using (adapter)
            {
                var layer = new AdaptedLinear(new LinearLayer(f["base.weight"], f["base.bias"]), "layer");
                using var x = f["x"].Clone();
                x.RequiresGrad = true;
                using var mask = AOps.Scale(f["dropout_keep"], 1f / (1f - p));
                var sel = new AdapterSelection(["t"], training: true, dropoutRng: new Random(1));
                Tensor y;
                using (AdapterSelection.Use(sel))
                using (var baseOut = layer.BaseLayer.Forward(x))
                using (var delta = adapter.Delta(x, sel, mask))
                    y = AOps.Add(baseOut, delta);
                using (y)
                {
                    AssertClose(f["y"].ToFloatArray(), y.ToFloatArray(), 1e-5f, $"{name} y");
                    using var prod = AOps.Mul(y, f["grad_output"]);
                    using var loss = AOps.Sum(prod);
                    loss.Backward();
                }
                AssertClose(f["grad_x"].ToFloatArray(), x.Grad!.ToFloatArray(), 1e-5f, $"{name} grad x");
                foreach (var (suffix, t) in adapter.Parameters)
                    AssertClose(f["grad." + suffix].ToFloatArray(), t.Grad!.ToFloatArray(), 1e-5f, $"{name} grad {suffix}");
            }
        }
        finally { foreach (var t in f.Values) t.Dispose(); }
    }

    [Fact]
    public void WithoutASelection_TheAdaptedLayerIsTheBaseLayer()
    {
        var f = ReadAll(Fx("layers", "hlora.safetensors"));
        var layer = new AdaptedLinear(new LinearLayer(f["base.weight"], f["base.bias"]), "layer");
        layer.Attach(new HLoraAdapter("h", f["lora_route.weight"].Clone(), f["lora_A.weight"].Clone(), f["lora_B.weight"].Clone(), 4, 0));
        using var plain = layer.BaseLayer.Forward(f["x"]);
        using var none = layer.Forward(f["x"]);
        Assert.Equal(plain.ToFloatArray(), none.ToFloatArray());
        using (AdapterSelection.Use(new AdapterSelection(["other"])))
        using (var other = layer.Forward(f["x"]))
            Assert.Equal(plain.ToFloatArray(), other.ToFloatArray());
        using (AdapterSelection.Use(new AdapterSelection(["h"])))
        using (var with = layer.Forward(f["x"]))
            Assert.NotEqual(plain.ToFloatArray(), with.ToFloatArray());
        Assert.True(layer.Detach("h"));
        foreach (var t in f.Values) t.Dispose();
    }
}
