using System.Diagnostics;
using System.Text.Json;
using MedVL.Autograd;
using MedVL.Formats;
using MedVL.IO;
using MedVL.Models;
using MedVL.Models.Blocks;
using MedVL.Optim;
using MedVL.Tensors;

namespace MedVL.Training;

/// <summary>Hyper-parameters of one training stage (HF TrainingArguments names where they exist).</summary>
public sealed record StageOptions
{
    public int Epochs { get; init; } = 1;
    /// <summary>Stop after this many optimizer steps (null: all epochs).</summary>
    public int? MaxSteps { get; init; }
    /// <summary>Sequences per optimizer step.</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>Sequences per forward (padded together); the step accumulates gradients over BatchSize / MicroBatchSize forwards.</summary>
    public int MicroBatchSize { get; init; } = 8;
    public double LearningRate { get; init; } = 2e-5;
    /// <summary>Per-parameter learning rate (HealthGPT trains H-LoRA at 2e-4 beside the adapter at 2e-5), or null for
    /// <see cref="LearningRate"/> everywhere.</summary>
    public Func<string, double>? LearningRateFor { get; init; }
    public double WarmupRatio { get; init; } = 0.03;
    public double WeightDecay { get; init; }
    public double MaxGradNorm { get; init; } = 1.0;
    /// <summary>cosine | linear | constant | constant_with_warmup.</summary>
    public string Schedule { get; init; } = "cosine";
    /// <summary>Write a checkpoint every N optimizer steps (and at the end).</summary>
    public int CheckpointEvery { get; init; } = 50;
    /// <summary>router_aux_loss_coef: weight of Σ l_aux of the MoE layers in the loss.</summary>
    public double RouterAuxLossCoef { get; init; }
    public int Seed { get; init; } = 42;
}

/// <summary>One line of metrics.jsonl.</summary>
public sealed record StepMetrics(string Stage, int Step, int TotalSteps, double Loss, double LearningRate, double GradNorm,
    long Tokens, double TokensPerSecond, double ElapsedSeconds);

/// <summary>A loss that is NaN or infinite: the run stops; the last checkpoint on disk is the last good state.</summary>
public sealed class TrainingDivergedException(string message) : Exception(message);

/// <summary>
/// The training loop of one stage over a LLaVA-style model: seeded shuffles per epoch, micro-batches of right-padded
/// sequences with gradient accumulation (the loss of a micro-batch is the mean over its labelled tokens, as HF's),
/// gradient clipping, AdamW with HF's schedules, and checkpoints written atomically every N steps (trainable tensors
/// as safetensors + optimizer and scheduler state + the step; a "latest" pointer is replaced last, so a kill at any
/// moment leaves the previous checkpoint intact). <see cref="Run"/> with resume continues from the latest checkpoint
/// and produces exactly the losses an uninterrupted run would: data order, dropout and weights are functions of the
/// step and the seed only. A non-finite loss stops the run before the optimizer step.
/// </summary>
public sealed class Trainer
{
    private readonly LlavaForCausalLM _model;
    private readonly PixelCache _pixels;

    public Trainer(LlavaForCausalLM model, PixelCache pixels)
    {
        _model = model;
        _pixels = pixels;
    }

    /// <summary>Called after every optimizer step (progress bars, logs).</summary>
    public Action<StepMetrics>? OnStep { get; init; }

    /// <summary>Trains <paramref name="parameters"/> (float32 tensors with RequiresGrad) on <paramref name="data"/>.</summary>
    /// <param name="adapters">Selection the forward runs with (e.g. the H-LoRA plugin being trained), or null.</param>
    /// <param name="objective">What to minimise instead of the language-modelling loss (its own parameters must be in
    /// <paramref name="parameters"/>), or null.</param>
    /// <returns>The loss of every step of this stage (including steps restored from a checkpoint's metrics).</returns>
    public IReadOnlyList<double> Run(string stage, IReadOnlyList<(string Name, Tensor Tensor)> parameters, IReadOnlyList<TrainingExample> data,
        StageOptions o, string runDir, bool resume, Func<Random, AdapterSelection>? adapters = null, CancellationToken ct = default,
        ITrainingObjective? objective = null)
    {
        if (data.Count == 0) throw new ArgumentException($"stage {stage}: no training data");
        if (parameters.Count == 0) throw new ArgumentException($"stage {stage}: nothing to train");
        foreach (var (n, t) in parameters)
            if (t.DType != DType.F32 || !t.RequiresGrad) throw new ArgumentException($"stage {stage}: parameter {n} must be float32 with RequiresGrad");
        Directory.CreateDirectory(runDir);
        int stepsPerEpoch = (data.Count + o.BatchSize - 1) / o.BatchSize;
        int total = o.MaxSteps is { } ms ? Math.Min(ms, stepsPerEpoch * o.Epochs) : stepsPerEpoch * o.Epochs;
        // Parameter groups by (learning rate, weight decay on matrices only), in first-appearance order.
        var groups = parameters
            .GroupBy(p => (Lr: o.LearningRateFor?.Invoke(p.Name) ?? o.LearningRate, Decay: p.Tensor.Rank >= 2))
            .Select(g => new ParamGroup(g.Select(p => p.Tensor)) { Name = $"lr {g.Key.Lr:G3}{(g.Key.Decay ? "" : ", no decay")}", Lr = g.Key.Lr, WeightDecay = g.Key.Decay ? o.WeightDecay : 0 })
            .ToList();
        using var opt = new AdamW(groups, lr: o.LearningRate);
        var sched = new LambdaLR(opt, LrSchedules.Get(LrSchedules.Parse(o.Schedule), (int)Math.Ceiling(total * o.WarmupRatio), total));
        string stageDir = Path.Combine(runDir, stage);
        Directory.CreateDirectory(stageDir);
        string metricsPath = Path.Combine(stageDir, "metrics.jsonl");
        var losses = new List<double>();
        int start = 0;
        if (resume && LatestCheckpoint(stageDir) is { } ck)
        {
            start = Restore(ck, parameters, opt, sched);
            losses.AddRange(ReadLosses(metricsPath).Take(start));
            RewriteMetrics(metricsPath, start);
        }
        else if (File.Exists(metricsPath)) File.Delete(metricsPath);
        if (start >= total) return losses;

        var sw = Stopwatch.StartNew();
        long tokens = 0;
        int[] order = [];
        for (int step = start, orderEpoch = -1; step < total; step++)
        {
            ct.ThrowIfCancellationRequested();
            int epoch = step / stepsPerEpoch, inEpoch = step % stepsPerEpoch;
            if (epoch != orderEpoch) { order = EpochOrder(data.Count, o.Seed, epoch); orderEpoch = epoch; }
            var batch = order.Skip(inEpoch * o.BatchSize).Take(o.BatchSize).ToArray();
            opt.ZeroGrad();
            double stepLoss = 0;
            // Micro-batches of padded sequences (one forward each); the step loss is the mean over micro-batches of the
            // token-mean loss (HF: mean over the labelled tokens of a batch), gradients accumulated.
            var micro = batch.Chunk(Math.Max(1, o.MicroBatchSize)).ToArray();
            for (int b = 0; b < micro.Length; b++)
            {
                var exs = micro[b].Select(i => data[i]).ToArray();
                var rng = new Random(StableSeed(o.Seed, step, b));
                using var trace = new MoeRoutingTrace();
                var fo = new DecoderForwardOptions { Adapters = adapters?.Invoke(rng), Routing = trace, CancellationToken = ct };
                using var loss = objective is null ? BatchLoss(exs, fo, trace, o.RouterAuxLossCoef) : objective.Loss(exs, ct);
                float v = loss.ToFloatArray()[0];
                if (!float.IsFinite(v))
                    throw new TrainingDivergedException($"stage {stage}: loss is {v} at step {step + 1} (sequences {string.Join(", ", exs.Select(e => e.Id))}); stopped before the update, the last checkpoint in {stageDir} is intact");
                using var scaled = Ops.Scale(loss, 1f / micro.Length);
                scaled.Backward();
                stepLoss += v / micro.Length;
                tokens += exs.Sum(e => e.InputIds.Length > 0 ? e.InputIds.Length : 1); // images, for a text-free objective
            }
            double norm = o.MaxGradNorm > 0 ? GradClip.ClipGradNorm(parameters.Select(p => p.Tensor), o.MaxGradNorm) : 0;
            double lr = opt.ParamGroups[0].Lr ?? o.LearningRate;
            opt.Step(ct);
            sched.Step();
            losses.Add(stepLoss);
            var m = new StepMetrics(stage, step + 1, total, stepLoss, lr, norm, tokens, tokens / Math.Max(sw.Elapsed.TotalSeconds, 1e-9), sw.Elapsed.TotalSeconds);
            File.AppendAllText(metricsPath, JsonSerializer.Serialize(new
            {
                stage, step = m.Step, total_steps = total, loss = m.Loss, lr = m.LearningRate, grad_norm = m.GradNorm, tokens = m.Tokens,
                tokens_per_s = Math.Round(m.TokensPerSecond, 1), elapsed_s = Math.Round(m.ElapsedSeconds, 3),
            }) + "\n");
            OnStep?.Invoke(m);
            if ((step + 1) % o.CheckpointEvery == 0 || step + 1 == total) Save(stageDir, step + 1, parameters, opt, sched);
        }
        return losses;
    }

    /// <summary>
    /// Token-mean cross-entropy over the labelled tokens of a micro-batch (+ coef · Σ l_aux): images encoded together,
    /// each sequence spliced, right-padded to the longest with an attention mask (padding labelled −100).
    /// </summary>
    private Tensor BatchLoss(TrainingExample[] exs, DecoderForwardOptions fo, MoeRoutingTrace trace, double auxCoef)
    {
        int n = exs.Length, h = _model.LanguageModel.HiddenSize;
        var parts = new List<MultimodalInputs>();
        Tensor logits;
        int[] labels;
        int lmax;
        try
        {
            using (AdapterSelection.UseIfSet(fo.Adapters))
            {
                Tensor? features = null;
                if (exs.All(e => e.ImagePath is not null))
                {
                    using var pxT = _pixels.Batch(exs.Select(e => e.ImagePath!).ToArray());
                    features = _model.EncodeImages(pxT, fo.CancellationToken);
                }
                else if (exs.Any(e => e.ImagePath is not null))
                    throw new InvalidDataException("a micro-batch mixes sequences with and without images");
                using (features)
                    for (int i = 0; i < n; i++)
                    {
                        using var f = features?.Slice(0, i, 1);
                        parts.Add(_model.PrepareInputsLabelsForMultimodal(exs[i].InputIds, f, exs[i].Labels));
                    }
                lmax = parts.Max(p => p.Length);
                labels = new int[n * lmax];
                Array.Fill(labels, -100);
                var mask = new float[n * lmax];
                var rows = new List<Tensor>();
                try
                {
                    for (int i = 0; i < n; i++)
                    {
                        int len = parts[i].Length;
                        parts[i].Labels!.CopyTo(labels, i * lmax);
                        for (int t = 0; t < len; t++) mask[i * lmax + t] = 1;
                        if (len == lmax) rows.Add(Ops.Reshape(parts[i].InputsEmbeds, 1, lmax, h));
                        else
                        {
                            using var pad = Tensor.Zeros(1, lmax - len, h);
                            rows.Add(Ops.Concat([parts[i].InputsEmbeds, pad], 1));
                        }
                    }
                    using var embeds = n == 1 ? Ops.Reshape(rows[0], 1, lmax, h) : Ops.Concat(rows, 0);
                    using var maskT = Tensor.FromArray(mask, n, lmax);
                    logits = _model.LanguageModel.ForwardEmbeds(embeds, options: fo with { AttentionMask = n == 1 ? null : maskT });
                }
                finally { foreach (var r in rows) r.Dispose(); }
            }
        }
        finally { foreach (var p in parts) p.Dispose(); }
        using (logits)
        {
            int v = logits.Size(-1);
            // Shift per sequence: position t predicts label t+1; the last position of every row predicts nothing.
            var targets = new long[n * lmax];
            for (int i = 0; i < n; i++)
                for (int t = 0; t < lmax; t++)
                    targets[i * lmax + t] = t + 1 < lmax ? labels[i * lmax + t + 1] : -100;
            using var flat = Ops.Reshape(logits, n * lmax, v);
            using var tg = Tensor.FromArray(targets, n * lmax);
            var ce = Ops.CrossEntropy(flat, tg);
            if (auxCoef == 0 || trace.AuxLosses.Count == 0) return ce;
            using (ce)
            using (var aux = trace.AuxLossSum())
            using (var sa = Ops.Scale(aux, (float)auxCoef))
            using (var ce1 = Ops.Reshape(ce, 1))
                return Ops.Add(ce1, sa);
        }
    }

    /// <summary>The data order of an epoch: a Fisher–Yates shuffle seeded by (seed, epoch).</summary>
    public static int[] EpochOrder(int n, int seed, int epoch)
    {
        var order = Enumerable.Range(0, n).ToArray();
        new Random(StableSeed(seed, epoch, 0x5eed)).Shuffle(order);
        return order;
    }

    /// <summary>
    /// A seed that is a fixed function of its inputs (splitmix64 finaliser). System.HashCode is randomised per process,
    /// so seeds built with it made every process shuffle and drop out differently: a run resumed in a new process did
    /// not continue the interrupted run's curve, and two runs of one config differed.
    /// </summary>
    internal static int StableSeed(long a, long b, long c)
    {
        ulong x = unchecked((ulong)a * 0x9E3779B97F4A7C15UL ^ (ulong)b * 0xBF58476D1CE4E5B9UL ^ (ulong)c * 0x94D049BB133111EBUL);
        x ^= x >> 30; x = unchecked(x * 0xBF58476D1CE4E5B9UL);
        x ^= x >> 27; x = unchecked(x * 0x94D049BB133111EBUL);
        x ^= x >> 31;
        return (int)(x & 0x7FFFFFFF);
    }

    private static string? LatestCheckpoint(string stageDir)
    {
        string pointer = Path.Combine(stageDir, "latest");
        if (!File.Exists(pointer)) return null;
        string dir = Path.Combine(stageDir, File.ReadAllText(pointer).Trim());
        return Directory.Exists(dir) ? dir : throw new InvalidDataException($"{pointer} names {dir}, which does not exist");
    }

    private static void Save(string stageDir, int step, IReadOnlyList<(string Name, Tensor Tensor)> parameters, AdamW opt, LambdaLR sched)
    {
        string name = $"checkpoint-{step}";
        string dir = Path.Combine(stageDir, name);
        string tmp = dir + ".tmp";
        if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
        Directory.CreateDirectory(tmp);
        SafetensorsWriter.Write(Path.Combine(tmp, "trainable.safetensors"),
            parameters.Select(p => SafetensorsTensor.FromFloat32(p.Name, p.Tensor.ToFloatArray(), p.Tensor.ShapeArray())));
        OptimizerCheckpoint.Save(Path.Combine(tmp, "optimizer.safetensors"), opt, sched);
        AtomicFile.WriteAllText(Path.Combine(tmp, "trainer_state.json"), JsonSerializer.Serialize(new { global_step = step }));
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
        Directory.Move(tmp, dir);
        string previous = File.Exists(Path.Combine(stageDir, "latest")) ? File.ReadAllText(Path.Combine(stageDir, "latest")).Trim() : "";
        AtomicFile.WriteAllText(Path.Combine(stageDir, "latest"), name);
        if (previous.Length > 0 && previous != name && Directory.Exists(Path.Combine(stageDir, previous)))
            Directory.Delete(Path.Combine(stageDir, previous), true);
    }

    private static int Restore(string dir, IReadOnlyList<(string Name, Tensor Tensor)> parameters, AdamW opt, LambdaLR sched)
    {
        using (var st = SafetensorsFile.Open(Path.Combine(dir, "trainable.safetensors")))
        {
            var missing = parameters.Where(p => !st.Tensors.ContainsKey(p.Name)).Select(p => p.Name).ToArray();
            if (missing.Length > 0) throw new InvalidCheckpointException(dir, $"the checkpoint lacks {missing.Length} trainable tensor(s): {string.Join(", ", missing.Take(5))}");
            foreach (var (n, t) in parameters)
            {
                using var src = st.Tensors[n].ToTensor();
                if (!src.Shape.SequenceEqual(t.Shape)) throw new InvalidCheckpointException(dir, $"{n} has shape {src.Describe()}, the model {t.Describe()}");
                src.ToFloatArray().CopyTo(t.Span<float>());
            }
        }
        OptimizerCheckpoint.Load(Path.Combine(dir, "optimizer.safetensors"), opt, sched);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "trainer_state.json")));
        return doc.RootElement.GetProperty("global_step").GetInt32();
    }

    private static IEnumerable<double> ReadLosses(string metricsPath) => File.Exists(metricsPath)
        ? File.ReadLines(metricsPath).Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble()).ToList()
        : [];

    /// <summary>Keeps the first <paramref name="steps"/> metric lines (a killed run may have logged steps after its last checkpoint).</summary>
    private static void RewriteMetrics(string metricsPath, int steps)
    {
        if (!File.Exists(metricsPath)) return;
        var keep = File.ReadLines(metricsPath).Where(l => l.Length > 0).Take(steps).ToArray();
        AtomicFile.WriteAllText(metricsPath, keep.Length == 0 ? "" : string.Join("\n", keep) + "\n");
    }
}
