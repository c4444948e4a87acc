using System.Text.Json;
using MedVL.Autograd;
using MedVL.Formats;
using MedVL.Models;
using MedVL.Models.Blocks;
using MedVL.Tensors;
using AOps = MedVL.Autograd.Ops;
using static MedVL.Tests.Models.DecoderParityTests;

namespace MedVL.Tests.Adapters;

/// <summary>
/// Med-MoE sparse FFN against tools/adapters/reference.py (DeepSpeed top1gating / top2gating restated, Med-MoE's meta
/// expert) on tiny StableLM-2 and Phi-2 Med-MoE folders, MoE on layers 0 and 2: logits, gate probabilities, routes,
/// route weights, l_aux and the gradient of every router / expert / meta-expert parameter under CE + coef · Σ l_aux,
/// for top-1 as released, top-1 with token dropping, top-2 (paper) and top-2 under capacity pressure.
/// </summary>
public class MedMoeTests
{
    private static string Mx(params string[] p) => AdapterLayerTests.Fx(p);

    public static TheoryData<string, string> Variants()
    {
        var d = new TheoryData<string, string>();
        foreach (var f in new[] { "medmoe_stablelm", "medmoe_phi2" })
            foreach (var v in new[] { "top1", "top1_drop_cf1.0", "top2", "top2_cf0.5" })
                d.Add(f, v);
        return d;
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Variant_MatchesTorch(string folder, string variant)
    {
        using var meta = JsonDocument.Parse(File.ReadAllText(Mx(folder, "fixture.json")));
        var v = meta.RootElement.GetProperty("variants").GetProperty(variant);
        var gating = new MoeGating
        {
            TopK = v.GetProperty("k").GetInt32(), CapacityFactor = v.GetProperty("cf").GetDouble(),
            MinCapacity = v.GetProperty("min_capacity").GetInt32(), DropTokens = v.GetProperty("drop_tokens").GetBoolean(),
        };
        float coef = v.GetProperty("aux_coef").GetSingle();
        using var model = AutoModelForCausalLM.FromPretrained(Mx(folder));
        var moes = model.Layers.Select(l => l.Mlp).OfType<MoeMlp>().ToArray();
        Assert.Equal([0, 2], moes.Select(m => m.Layer));
        Assert.All(moes, m => Assert.NotNull(m.MetaExpert));
        var parameters = new List<(string Name, Tensor Tensor)>();
        foreach (var m in moes) { m.Gating = gating; parameters.AddRange(m.MakeTrainable()); }
        try
        {
            var ids = Npy.Read(Mx(folder, "input_ids.npy")).ToInt64().Select(x => (int)x).ToArray();
            var labels = Npy.Read(Mx(folder, "labels.npy")).ToInt64().Select(x => (int)x).ToArray();
            using var trace = new MoeRoutingTrace();
            using var logits = model.Forward(ids, options: new DecoderForwardOptions { Routing = trace });
            AssertClose(Npy.Read(Mx(folder, $"{variant}.expected_logits.npy")).ToFloat32(), logits.ToFloatArray(), 1e-4f, "logits");
            Assert.Equal(2, trace.Layers.Count);
            var routes = Npy.Read(Mx(folder, $"{variant}.expected_routes.npy")).ToInt64().Select(x => (int)x).ToArray();
            Assert.Equal(routes, trace.Layers.SelectMany(l => l.Routes).ToArray());
            AssertClose(Npy.Read(Mx(folder, $"{variant}.expected_route_weights.npy")).ToFloat32(), trace.Layers.SelectMany(l => l.Weights).ToArray(), 1e-5f, "route weights");
            AssertClose(Npy.Read(Mx(folder, $"{variant}.expected_gate_probs.npy")).ToFloat32(), trace.Layers.SelectMany(l => l.GateProbs).ToArray(), 1e-5f, "gate probs");
            AssertClose(Npy.Read(Mx(folder, $"{variant}.expected_l_aux.npy")).ToFloat32(), trace.AuxLosses.Select(a => a.ToFloatArray()[0]).ToArray(), 1e-5f, "l_aux");
            using (var ce = HealthGptPluginTests.CausalLmLoss(logits, labels))
            using (var aux = trace.AuxLossSum())
            using (var scaled = AOps.Scale(aux, coef))
            using (var ce1 = AOps.Reshape(ce, 1))
            using (var loss = AOps.Add(ce1, scaled))
            {
                Assert.Equal(v.GetProperty("loss").GetDouble(), loss.ToFloatArray()[0], 4);
                loss.Backward();
            }
            HealthGptPluginTests.AssertGrads(Mx(folder, $"{variant}.expected_grads.safetensors"), parameters, "", 1e-4f);
        }
        finally { foreach (var (_, t) in parameters) t.Dispose(); }
    }

    [Fact]
    public async Task RoutingTraces_OfConcurrentRequests_StayApart()
    {
        using var model = AutoModelForCausalLM.FromPretrained(Mx("medmoe_stablelm"));
        int[] a = [1, 17, 250, 3], b = [99, 42, 7, 5, 6];
        MoeLayerRouting[] Run(int[] ids)
        {
            using var _g = GradMode.NoGrad();
            using var trace = new MoeRoutingTrace();
            using var l = model.Forward(ids, options: new DecoderForwardOptions { Routing = trace });
            return trace.Layers.ToArray();
        }
        var ra = Run(a); var rb = Run(b);
        for (int i = 0; i < 4; i++)
        {
            var t = await Task.WhenAll(Task.Run(() => Run(a)), Task.Run(() => Run(b)));
            Assert.Equal(ra.SelectMany(l => l.Routes), t[0].SelectMany(l => l.Routes));
            Assert.Equal(rb.SelectMany(l => l.Routes), t[1].SelectMany(l => l.Routes));
            Assert.All(t[1], l => Assert.Equal(5, l.Tokens));
        }
    }
}
