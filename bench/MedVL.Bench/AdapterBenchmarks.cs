using BenchmarkDotNet.Attributes;
using MedVL.Adapters;
using MedVL.Autograd;
using MedVL.Models.Blocks;
using MedVL.Tensors;

namespace MedVL.Bench;

/// <summary>
/// One adapted nn.Linear (1024 → 1024, 256 tokens), forward + backward into the adapter, at the same total rank 64:
/// LoRA, H-LoRA with 4 experts, MoELoRA with k experts of rank 64/k (HealthGPT Table 6's comparison at layer level;
/// `medvl bench adapters` measures the whole decoder). Run: dotnet run -c Release --project bench/MedVL.Bench -- --filter '*Adapter*'
/// </summary>
[MemoryDiagnoser]
public class AdapterBenchmarks
{
    private const int In = 1024, Out = 1024, Tokens = 256, Rank = 64;

    [Params("lora", "hlora_k4", "moelora_k4", "moelora_k8")] public string Kind = "lora";

    private Tensor _w = null!, _x = null!;
    private AdaptedLinear _layer = null!;
    private ILinearAdapter _adapter = null!;
    private readonly AdapterSelection _selection = new(["a"]);

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        _w = AdapterInit.Uniform(Out, In, rng);
        _w.RequiresGrad = false;
        _x = AdapterInit.Uniform(Tokens, In, rng);
        _x.RequiresGrad = false;
        int k = Kind switch { "moelora_k4" or "hlora_k4" => 4, "moelora_k8" => 8, _ => 1 };
        _adapter = Kind switch
        {
            "lora" => new LoraAdapter("a", AdapterInit.Uniform(Rank, In, rng), AdapterInit.Uniform(Out, Rank, rng), 2.0, 0),
            "hlora_k4" => new HLoraAdapter("a", AdapterInit.Uniform(k, In, rng), AdapterInit.Uniform(Rank, In, rng), AdapterInit.Uniform(Out, Rank, rng), 2.0, 0),
            _ => new MoeLoraAdapter("a", AdapterInit.Uniform(k, In, rng),
                Enumerable.Range(0, k).Select(_ => AdapterInit.Uniform(Rank / k, In, rng)).ToArray(),
                Enumerable.Range(0, k).Select(_ => AdapterInit.Uniform(Out, Rank / k, rng)).ToArray(), 2.0, 0),
        };
        _layer = new AdaptedLinear(new LinearLayer(_w), "layer");
        _layer.Attach(_adapter);
    }

    [GlobalCleanup]
    public void Cleanup() { _layer.Detach("a"); _w.Dispose(); _x.Dispose(); }

    [Benchmark]
    public void ForwardBackward()
    {
        using (AdapterSelection.Use(_selection))
        using (var y = _layer.Forward(_x))
        using (var s = Ops.Sum(y))
            s.Backward();
        foreach (var (_, t) in _adapter.Parameters) { t.Grad?.Dispose(); t.Grad = null; }
    }
}
