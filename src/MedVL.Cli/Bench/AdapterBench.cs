using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using MedVL.Adapters;
using MedVL.Autograd;
using MedVL.Formats;
using MedVL.Models;
using MedVL.Models.Blocks;
using MedVL.Tensors;

namespace MedVL.Cli.Bench;

/// <summary>
/// <c>medvl bench adapters</c>: time of one training step (forward, causal-LM loss, backward through the frozen decoder
/// into the adapter) on a random Phi-3-shaped decoder, for plain LoRA, H-LoRA (k experts) and MoELoRA (k experts), all
/// with the same total rank — HealthGPT's Table 6 comparison (paper: MoELoRA k = 2, 4, 8, 32 cost 1.22×, 1.49×, 2.09×,
/// 5.81× of LoRA; H-LoRA target ≤ 1.05×). Mean ± sd over R runs after ≥ 3 warm-up steps and ≥ 1 s.
/// </summary>
internal static class AdapterBench
{
    public static Command Create()
    {
        var rank = new Option<int>("--rank") { Description = "total LoRA rank of every adapter", DefaultValueFactory = _ => 64 };
        var tokens = new Option<int>("--tokens") { Description = "sequence length of the training step", DefaultValueFactory = _ => 256 };
        var runs = new Option<int>("--runs") { Description = "timed steps per adapter", DefaultValueFactory = _ => 5 };
        var hidden = new Option<int>("--hidden") { Description = "decoder hidden size", DefaultValueFactory = _ => 512 };
        var layers = new Option<int>("--layers") { Description = "decoder layers", DefaultValueFactory = _ => 4 };
        var json = new Option<bool>("--json") { Description = "JSON lines {\"adapter\", \"ms\", \"sd\", \"vs_lora\"}" };
        var cmd = new Command("adapters", "Training-step time of LoRA vs H-LoRA vs MoELoRA at the same total rank") { rank, tokens, runs, hidden, layers, json };
        cmd.SetAction((r, ct) =>
        {
            Run(r.GetValue(rank), r.GetValue(tokens), r.GetValue(runs), r.GetValue(hidden), r.GetValue(layers), r.GetValue(json), ct);
            return Task.FromResult(0);
        });
        return cmd;
    }

    private static void Run(int rank, int tokens, int runs, int hidden, int layers, bool json, CancellationToken ct)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"medvl-bench-adapters-{Guid.NewGuid():N}");
        try
        {
            WriteRandomPhi3(dir, hidden, layers);
            using var model = AutoModelForCausalLM.FromPretrained(dir);
            var rng = new Random(1);
            var ids = Enumerable.Range(0, tokens).Select(_ => rng.Next(model.VocabSize)).ToArray();
            if (!json) Console.WriteLine($"# medvl bench adapters: Phi-3-shaped decoder hidden {hidden}, {layers} layers, {tokens} tokens, total rank {rank}, threads={Environment.ProcessorCount}, {runs} runs");
            double? lora = null;
            var cases = new List<(string Name, Func<LinearLayer, ILinearAdapter> Make)>
            {
                ("lora", l => new LoraAdapter("a", P(rank, l.InFeatures, rng), P(l.OutFeatures, rank, rng), 2.0, 0)),
                ("hlora_k4", l => new HLoraAdapter("a", P(4, l.InFeatures, rng), P(rank, l.InFeatures, rng), P(l.OutFeatures, rank, rng), 2.0, 0)),
            };
            foreach (int k in new[] { 2, 4, 8, 32 })
                if (rank % k == 0)
                    cases.Add(($"moelora_k{k}", l => new MoeLoraAdapter("a", P(k, l.InFeatures, rng),
                        Enumerable.Range(0, k).Select(_ => P(rank / k, l.InFeatures, rng)).ToArray(),
                        Enumerable.Range(0, k).Select(_ => P(l.OutFeatures, rank / k, rng)).ToArray(), 2.0, 0)));
            bool first = true;
            foreach (var (name, make) in cases)
            {
                foreach (var slot in AdapterTargets.Enumerate(model)) AdapterTargets.Wrap(slot).Attach(make(slot.Get() is AdaptedLinear a ? a.BaseLayer : slot.Get()));
                var opts = new DecoderForwardOptions { Adapters = new AdapterSelection(["a"]), CancellationToken = ct };
                double Step()
                {
                    long t0 = Stopwatch.GetTimestamp();
                    using (var logits = model.Forward(ids, options: opts))
                    using (var flat = Autograd.Ops.Reshape(logits, tokens, logits.Size(-1)))
                    using (var head = flat.Slice(0, 0, tokens - 1))
                    using (var targets = Tensor.FromArray(ids.Skip(1).Select(i => (long)i).ToArray(), tokens - 1))
                    using (var loss = Autograd.Ops.CrossEntropy(head, targets))
                        loss.Backward();
                    double s = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                    foreach (var (_, t) in AdapterTargets.Parameters(model, "a")) { t.Grad?.Dispose(); t.Grad = null; }
                    return s;
                }
                // Warm-up: tiered JIT and the storage pool settle over the first steps (≥ 3 steps and ≥ 1 s).
                // The first case also warms the process (JIT tiers, storage pool): seen 2–3× slow steps for ~2 s.
                double warm = 0;
                for (int i = 0; i < 3 || warm < (first ? 4.0 : 1.0); i++) warm += Step();
                first = false;
                var times = Enumerable.Range(0, runs).Select(_ => { ct.ThrowIfCancellationRequested(); return Step(); }).ToArray();
                double mean = times.Average() * 1e3, sd = times.Length > 1 ? Math.Sqrt(times.Sum(x => (x * 1e3 - mean) * (x * 1e3 - mean)) / (times.Length - 1)) : 0;
                lora ??= mean;
                if (json) Console.WriteLine(JsonSerializer.Serialize(new { adapter = name, ms = Math.Round(mean, 2), sd = Math.Round(sd, 2), vs_lora = Math.Round(mean / lora.Value, 3), rank, tokens }));
                else Console.WriteLine($"{name,-12} {mean,9:F1} ± {sd,6:F1} ms/step   {mean / lora.Value,5:F2}× LoRA");
                AdapterTargets.Detach(model, "a");
            }
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    private static Tensor P(int rows, int cols, Random rng) => AdapterInit.Uniform(rows, cols, rng);

    /// <summary>A random Phi-3-style checkpoint (fused qkv / gate_up, RMSNorm) written with the safetensors writer.</summary>
    internal static void WriteRandomPhi3(string dir, int hidden, int layers, int vocab = 4096)
    {
        Directory.CreateDirectory(dir);
        int heads = Math.Max(1, hidden / 64), inter = hidden * 3;
        File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["model_type"] = "phi3", ["architectures"] = new[] { "Phi3ForCausalLM" }, ["hidden_size"] = hidden, ["intermediate_size"] = inter,
            ["num_hidden_layers"] = layers, ["num_attention_heads"] = heads, ["num_key_value_heads"] = heads, ["vocab_size"] = vocab,
            ["max_position_embeddings"] = 4096, ["rms_norm_eps"] = 1e-5, ["rope_theta"] = 10000.0, ["hidden_act"] = "silu",
            ["tie_word_embeddings"] = false, ["torch_dtype"] = "float32",
        }));
        var rng = new Random(0);
        SafetensorsTensor W(string name, params int[] shape)
        {
            int n = shape.Aggregate(1, (a, b) => a * b);
            float s = 1f / MathF.Sqrt(shape[^1]);
            return SafetensorsTensor.FromFloat32(name, Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1) * s).ToArray(), shape);
        }
        SafetensorsTensor Ones(string name, int n) => SafetensorsTensor.FromFloat32(name, Enumerable.Repeat(1f, n).ToArray(), [n]);
        var t = new List<SafetensorsTensor> { W("model.embed_tokens.weight", vocab, hidden), Ones("model.norm.weight", hidden), W("lm_head.weight", vocab, hidden) };
        for (int i = 0; i < layers; i++)
        {
            string p = $"model.layers.{i}.";
            t.Add(Ones(p + "input_layernorm.weight", hidden));
            t.Add(Ones(p + "post_attention_layernorm.weight", hidden));
            t.Add(W(p + "self_attn.qkv_proj.weight", 3 * hidden, hidden));
            t.Add(W(p + "self_attn.o_proj.weight", hidden, hidden));
            t.Add(W(p + "mlp.gate_up_proj.weight", 2 * inter, hidden));
            t.Add(W(p + "mlp.down_proj.weight", hidden, inter));
        }
        SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), t);
    }
}
