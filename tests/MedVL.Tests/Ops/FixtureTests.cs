using System.Text.Json;
using MedVL.Tensors;
using static MedVL.Tests.Ops.OpFixtureRunner;
using Op = MedVL.Autograd.Ops;

namespace MedVL.Tests.Ops;

// Every op against torch 1.13 fixtures (tools/reference/ops_a.py): forward outputs, then the gradients of
// Σ out·gout for a random upstream gradient. Tolerances (|ours − torch| ≤ tol·max(1,|torch|)): 1e-5 for
// elementwise ops and activations, 1e-4 for reductions, softmax, norms, losses, matmul and linear.

internal static class OpDispatch
{
    public static Tensor[] Run(string op, IReadOnlyDictionary<string, Tensor> x, JsonElement p)
    {
        Tensor T(string n) => x[n];
        Tensor? Opt(string n) => x.TryGetValue(n, out var t) ? t : null;
        Tensor[] One(Tensor t) => new[] { t };
        return op switch
        {
            "add" => One(Op.Add(T("a"), T("b"))),
            "sub" => One(Op.Sub(T("a"), T("b"))),
            "mul" => One(Op.Mul(T("a"), T("b"))),
            "div" => One(Op.Div(T("a"), T("b"))),
            "neg" => One(Op.Neg(T("x"))),
            "scale" => One(Op.Scale(T("x"), F(p, "alpha"))),
            "add_scalar" => One(Op.AddScalar(T("x"), F(p, "alpha"))),
            "exp" => One(Op.Exp(T("x"))),
            "log" => One(Op.Log(T("x"))),
            "sqrt" => One(Op.Sqrt(T("x"))),
            "square" => One(Op.Square(T("x"))),
            "pow" => One(Op.Pow(T("x"), F(p, "exponent"))),
            "tanh" => One(Op.Tanh(T("x"))),
            "sigmoid" => One(Op.Sigmoid(T("x"))),
            "masked_fill" => One(Op.MaskedFill(T("x"), T("mask"), F(p, "value"))),
            "where" => One(Op.Where(T("cond"), T("a"), T("b"))),
            "sum" => One(IntArray(p, "dims") is int[] d ? Op.Sum(T("x"), d, B(p, "keepdim")) : Op.Sum(T("x"))),
            "mean" => One(IntArray(p, "dims") is int[] d2 ? Op.Mean(T("x"), d2, B(p, "keepdim")) : Op.Mean(T("x"))),
            "max_dim" => Pair(Op.Max(T("x"), I(p, "dim"), B(p, "keepdim"))),
            "sum_squares" => One(Op.SumOfSquares(T("x"))),
            "argmax" => One(Op.Argmax(T("x"))),
            "topk" => Pair(Op.TopK(T("x"), I(p, "k"))),
            "softmax" => One(Op.Softmax(T("x"))),
            "log_softmax" => One(Op.LogSoftmax(T("x"))),
            "rms_norm" => One(Op.RmsNorm(T("x"), T("weight"), F(p, "eps"))),
            "layer_norm" => One(Op.LayerNorm(T("x"), T("weight"), Opt("bias"), F(p, "eps"))),
            "group_norm" => One(Op.GroupNorm(T("x"), I(p, "groups"), Opt("weight"), Opt("bias"), F(p, "eps"))),
            "gelu" => One(Op.Gelu(T("x"))),
            "gelu_tanh" => One(Op.GeluTanh(T("x"))),
            "quick_gelu" => One(Op.QuickGelu(T("x"))),
            "silu" => One(Op.Silu(T("x"))),
            "swiglu" => One(Op.SwiGlu(T("gate"), T("up"))),
            "swiglu_fused" => One(Op.SwiGluFused(T("x"))),
            "embedding" => One(Op.Embedding(T("ids"), T("weight"),
                p.GetProperty("padding_idx").ValueKind == JsonValueKind.Null ? null : p.GetProperty("padding_idx").GetInt64())),
            "cross_entropy" => One(Op.CrossEntropy(T("logits"), T("targets"))),
            "mse" => One(Op.Mse(T("a"), T("b"))),
            "concat" => One(Op.Concat(x.Values.ToArray(), I(p, "dim"))),
            "stack" => One(Op.Stack(x.Values.ToArray(), I(p, "dim"))),
            "split" => Op.Split(T("x"), IntArray(p, "sizes")!, I(p, "dim")),
            "chunk" => Op.Chunk(T("x"), I(p, "chunks"), I(p, "dim")),
            "linear" => One(Op.Linear(T("x"), T("weight"), Opt("bias"))),
            "matmul" => One(Op.MatMul(T("a"), T("b"))),
            _ => throw new InvalidOperationException($"no dispatch for fixture op {op}"),
        };
    }

    private static Tensor[] Pair((Tensor, Tensor) t) => new[] { t.Item1, t.Item2 };
}

public class ElementwiseFixtureTests
{
    public static IEnumerable<object[]> Data => Cases("add", "sub", "mul", "div", "neg", "scale", "add_scalar", "exp", "log", "sqrt",
        "square", "pow", "tanh", "sigmoid", "masked_fill", "where");

    [Theory, MemberData(nameof(Data))]
    public void MatchesTorch(OpCase c) => Run(c, OpDispatch.Run, 1e-5f);
}

public class ReduceFixtureTests
{
    public static IEnumerable<object[]> Data => Cases("sum", "mean", "max_dim", "sum_squares", "argmax", "topk");

    [Theory, MemberData(nameof(Data))]
    public void MatchesTorch(OpCase c) => Run(c, OpDispatch.Run, 1e-4f);
}

public class SoftmaxFixtureTests
{
    public static IEnumerable<object[]> Data => Cases("softmax", "log_softmax");

    [Theory, MemberData(nameof(Data))]
    public void MatchesTorch(OpCase c) => Run(c, OpDispatch.Run, 1e-4f);
}

public class NormsFixtureTests
{
    public static IEnumerable<object[]> Data => Cases("rms_norm", "layer_norm", "group_norm");

    [Theory, MemberData(nameof(Data))]
    public void MatchesTorch(OpCase c) => Run(c, OpDispatch.Run, 1e-4f);
}

public class ActivationsFixtureTests
{
    public static IEnumerable<object[]> Data => Cases("gelu", "gelu_tanh", "quick_gelu", "silu", "swiglu", "swiglu_fused");

    [Theory, MemberData(nameof(Data))]
    public void MatchesTorch(OpCase c) => Run(c, OpDispatch.Run, 1e-5f);
}

public class EmbeddingLossFixtureTests
{
    public static IEnumerable<object[]> Data => Cases("embedding", "cross_entropy", "mse");

    [Theory, MemberData(nameof(Data))]
    public void MatchesTorch(OpCase c) => Run(c, OpDispatch.Run, 1e-4f);
}

public class ShapeFixtureTests
{
    public static IEnumerable<object[]> Data => Cases("concat", "stack", "split", "chunk");

    [Theory, MemberData(nameof(Data))]
    public void MatchesTorch(OpCase c) => Run(c, OpDispatch.Run, 1e-6f);
}

public class LinearFixtureTests
{
    public static IEnumerable<object[]> Data => Cases("linear", "matmul");

    [Theory, MemberData(nameof(Data))]
    public void MatchesTorch(OpCase c) => Run(c, OpDispatch.Run, 1e-4f);
}
