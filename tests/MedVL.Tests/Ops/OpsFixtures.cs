using System.Text.Json;
using MedVL.Autograd;
using Op = MedVL.Autograd.Ops;
using MedVL.Tensors;

namespace MedVL.Tests.Ops;

/// <summary>Fixture .npy files as tensors, read with the library's <see cref="MedVL.Formats.Npy"/>.</summary>
internal static class NpyMini
{
    public static Tensor Read(string path)
    {
        var arr = MedVL.Formats.Npy.Read(path);
        var t = Tensor.Empty(arr.DType, arr.Shape);
        unsafe
        {
            arr.Data.AsSpan().CopyTo(new Span<byte>(t.DataPointer, arr.Data.Length));
        }
        return t;
    }
}

/// <summary>One fixture case written by tools/reference/ops_a.py (serializable, so each case is its own test in listings).</summary>
public sealed class OpCase : Xunit.Abstractions.IXunitSerializable
{
    public OpCase() => Dir = "";
    public OpCase(string dir) => Dir = dir;
    public string Dir { get; private set; }
    public override string ToString() => Path.GetFileName(Path.GetDirectoryName(Dir)) + "/" + Path.GetFileName(Dir);

    public void Deserialize(Xunit.Abstractions.IXunitSerializationInfo info) => Dir = info.GetValue<string>(nameof(Dir));
    public void Serialize(Xunit.Abstractions.IXunitSerializationInfo info) => info.AddValue(nameof(Dir), Dir);
}

/// <summary>
/// Runs a fixture case: build the inputs (gradients on the ones torch differentiated), run the op, compare every
/// output with torch's float32 result, backpropagate Σ out_k·gout_k and compare the gradients.
/// Tolerance: |ours − torch| ≤ tol · max(1, |torch|) elementwise.
/// </summary>
public static class OpFixtureRunner
{
    public static IEnumerable<object[]> Cases(params string[] ops)
    {
        foreach (var op in ops)
        {
            var dir = TestPaths.Fixture("ops", op);
            if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"missing fixtures {dir}: run tools/reference/ops_a.py");
            foreach (var c in Directory.GetDirectories(dir).OrderBy(d => d, StringComparer.Ordinal))
                yield return new object[] { new OpCase(c) };
        }
    }

    public delegate Tensor[] OpFn(string op, IReadOnlyDictionary<string, Tensor> inputs, JsonElement p);

    public static void Run(OpCase c, OpFn fn, float tol)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(c.Dir, "case.json")));
        var root = json.RootElement;
        var names = root.GetProperty("inputs").EnumerateArray().Select(e => e.GetString()!).ToArray();
        var grads = root.GetProperty("grads").EnumerateArray().Select(e => e.GetString()!).ToHashSet();
        int nOut = root.GetProperty("outputs").GetInt32();
        var inputs = new Dictionary<string, Tensor>();
        var toDispose = new List<Tensor>();
        try
        {
            foreach (var n in names)
            {
                var t = NpyMini.Read(Path.Combine(c.Dir, $"in_{n}.npy"));
                t.RequiresGrad = grads.Contains(n);
                inputs[n] = t;
                toDispose.Add(t);
            }
            var outs = fn(root.GetProperty("op").GetString()!, inputs, root.GetProperty("params"));
            toDispose.AddRange(outs);
            Assert.Equal(nOut, outs.Length);
            Tensor? loss = null;
            for (int k = 0; k < nOut; k++)
            {
                using var expected = NpyMini.Read(Path.Combine(c.Dir, $"out_{k}.npy"));
                Assert.Equal(expected.ShapeArray(), outs[k].ShapeArray());
                if (expected.DType == DType.I64)
                    Assert.Equal(expected.ToArray<long>(), outs[k].ToArray<long>());
                else
                    AssertClose(expected.ToFloatArray(), outs[k].ToFloatArray(), tol, $"{c} out_{k}");
                var gpath = Path.Combine(c.Dir, $"gout_{k}.npy");
                if (grads.Count > 0 && File.Exists(gpath))
                {
                    var gout = NpyMini.Read(gpath);
                    toDispose.Add(gout);
                    var prod = Op.Mul(outs[k], gout);
                    var s = Op.Sum(prod);
                    toDispose.Add(prod);
                    toDispose.Add(s);
                    if (loss is null) loss = s;
                    else
                    {
                        loss = Op.Add(loss, s);
                        toDispose.Add(loss);
                    }
                }
            }
            if (grads.Count == 0) return;
            Assert.NotNull(loss);
            loss!.Backward();
            foreach (var n in grads)
            {
                using var expected = NpyMini.Read(Path.Combine(c.Dir, $"grad_{n}.npy"));
                var got = inputs[n].Grad;
                if (got is null)
                {
                    Assert.True(expected.ToFloatArray().All(v => v == 0f), $"{c}: no gradient reached {n}");
                    continue;
                }
                Assert.Equal(expected.ShapeArray(), got.ShapeArray());
                AssertClose(expected.ToFloatArray(), got.ToFloatArray(), tol, $"{c} grad_{n}");
            }
        }
        finally
        {
            foreach (var t in inputs.Values) t.Grad?.Dispose();
            foreach (var t in toDispose) t.Dispose();
        }
    }

    public static void AssertClose(float[] expected, float[] actual, float tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            float e = expected[i], a = actual[i];
            if (float.IsNaN(e)) { Assert.True(float.IsNaN(a), $"{what}[{i}]: expected NaN, got {a}"); continue; }
            if (float.IsInfinity(e)) { Assert.Equal(e, a); continue; }
            float err = MathF.Abs(a - e);
            Assert.True(err <= tol * MathF.Max(1f, MathF.Abs(e)), $"{what}[{i}]: got {a}, torch {e}, |diff| {err} > {tol}·max(1,|ref|)");
        }
    }

    public static int[]? IntArray(JsonElement p, string name) =>
        p.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array ? v.EnumerateArray().Select(e => e.GetInt32()).ToArray() : null;

    public static float F(JsonElement p, string name) => (float)p.GetProperty(name).GetDouble();
    public static int I(JsonElement p, string name) => p.GetProperty(name).GetInt32();
    public static bool B(JsonElement p, string name) => p.GetProperty(name).GetBoolean();
}
