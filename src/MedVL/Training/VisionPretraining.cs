using System.Text.Json;
using MedVL.Autograd;
using MedVL.Generation;
using MedVL.Models;
using MedVL.Tensors;
using MedVL.Vision.Codecs;
using MedVL.Vision.Preprocessing;

namespace MedVL.Training;

/// <summary>Held-out accuracy of <see cref="VisionFindingsObjective"/>, in percent.</summary>
public sealed record FindingsAccuracy(double BalancedPatchAccuracy, double PresenceAccuracy, double ClassAccuracy, double SidesAccuracy, int Images,
    IReadOnlyDictionary<string, double> PresenceAccuracyByClass);

/// <summary>What one training stage minimises, given a micro-batch.</summary>
public interface ITrainingObjective
{
    /// <summary>Extra trainable tensors the objective owns (e.g. prediction heads), trained and checkpointed with the stage.</summary>
    IReadOnlyList<(string Name, Tensor Tensor)> Parameters { get; }

    /// <summary>The scalar loss of a micro-batch (a graph to back-propagate).</summary>
    Tensor Loss(TrainingExample[] batch, CancellationToken ct);
}

/// <summary>
/// Segmentation-style items (MedSynth's seg_{train,test}.json: a list of {id, image, mask, class or modality, sides?})
/// as training examples without text: the image, its lesion mask (PNG, non-zero inside a lesion), the patient sides
/// with lesions (none, left, right, both) and the image's class
/// (MedSynth: modality, MRI sequence and body part, e.g. "mri-t2 head"; else the modality), kept in
/// <see cref="TrainingExample.Modality"/>.
/// </summary>
public static class FindingsData
{
    public static List<TrainingExample> Load(string jsonPath, int? limit = null)
    {
        using var doc = ConversationData.OpenList(jsonPath, "{id, image, mask, class or modality} items");
        string root = Path.GetDirectoryName(Path.GetFullPath(jsonPath))!;
        var list = new List<TrainingExample>();
        int index = 0;
        foreach (var item in doc.RootElement.EnumerateArray())
        {
            if (limit is { } l && list.Count >= l) break;
            string id = item.TryGetProperty("id", out var idEl) ? idEl.ToString() : $"#{index}";
            string Field(string name) => item.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()!
                : throw new InvalidDataException($"{jsonPath}: item {index} ({id}): field '{name}' is missing or not a string");
            string label = item.TryGetProperty("class", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString()! : Field("modality");
            string? sides = item.TryGetProperty("sides", out var sd) && sd.ValueKind == JsonValueKind.String ? sd.GetString() : null;
            if (sides is not null && Array.IndexOf(VisionFindingsObjective.SideLabels, sides) < 0)
                throw new InvalidDataException($"{jsonPath}: item {index} ({id}): 'sides' is '{sides}'; expected {string.Join(", ", VisionFindingsObjective.SideLabels)}");
            list.Add(new TrainingExample(id, [], [], Path.Combine(root, Field("image")), label, Path.Combine(root, Field("mask")), sides));
            index++;
        }
        return list;
    }
}

/// <summary>
/// Pretrains a vision tower on MedSynth's ground truth, the tiny presets' stand-in for CLIP's pretraining (the papers
/// start from a pretrained, frozen CLIP ViT-L/14-336; no such tower exists at the tiny size). Linear heads read the
/// hidden state the multimodal projector will read (mm_vision_select_layer): one classifies every patch token as lesion
/// or background (the share of lesion pixels in the patch after CLIPImageProcessor's geometry: ≥ <see cref="LesionShare"/>
/// is lesion, below <see cref="BackgroundShare"/> background, in between ignored), with the two classes weighted
/// equally because lesion patches are rare; two read the mean patch token: the image's class (modality, sequence,
/// body part) and the lesion sides (none, left, right, both). The heads are
/// discarded after the stage; the tower keeps what they taught it: where the lesions are, which a from-scratch tower
/// trained only through the language model's answers does not learn in minutes (docs/training.md).
/// </summary>
public sealed class VisionFindingsObjective : ITrainingObjective, IDisposable
{
    public const double LesionShare = 0.15, BackgroundShare = 0.02;

    private readonly LlavaForCausalLM _model;
    private readonly PixelCache _pixels;
    private readonly ClipImageProcessor _maskProcessor;
    private readonly Dictionary<string, int[]> _patchLabels = new(StringComparer.Ordinal);
    private readonly Tensor _patchW, _patchB, _classW, _classB, _sidesW, _sidesB;

    /// <summary>The image-level lesion labels (Phantom.LesionSides): presence and side in one class.</summary>
    public static readonly string[] SideLabels = ["none", "left", "right", "both"];
    private readonly int _grid;

    /// <param name="classes">The image classes, in class order (e.g. the sorted distinct labels of the data).</param>
    public VisionFindingsObjective(LlavaForCausalLM model, PixelCache pixels, IReadOnlyList<string> classes, int seed)
    {
        var tower = model.VisionTower ?? throw new InvalidOperationException("the model has no vision tower");
        _model = model;
        _pixels = pixels;
        Classes = classes;
        // Masks take the image's geometry (pad to square, resize, centre crop) with a black pad instead of the mean colour.
        _maskProcessor = pixels.Processor with { ImageMean = [0f, 0f, 0f] };
        int d = tower.Vision.HiddenSize, p = tower.Vision.PatchSize;
        if (pixels.Processor.CropWidth != tower.Vision.ImageSize || pixels.Processor.CropHeight != tower.Vision.ImageSize)
            throw new InvalidDataException($"{tower.Directory}: the processor crops {pixels.Processor.CropWidth}x{pixels.Processor.CropHeight}, the tower expects {tower.Vision.ImageSize}");
        _grid = tower.Vision.ImageSize / p;
        var rng = new DeterministicRandom((ulong)seed ^ 0xF1D1UL);
        _patchW = Init(rng, 2, d);
        _patchB = Tensor.Zeros(2);
        _classW = Init(rng, classes.Count, d);
        _classB = Tensor.Zeros(classes.Count);
        _sidesW = Init(rng, SideLabels.Length, d);
        _sidesB = Tensor.Zeros(SideLabels.Length);
        Parameters = [("findings_head.patch.weight", _patchW), ("findings_head.patch.bias", _patchB),
                      ("findings_head.class.weight", _classW), ("findings_head.class.bias", _classB),
                      ("findings_head.sides.weight", _sidesW), ("findings_head.sides.bias", _sidesB)];
        foreach (var (_, t) in Parameters) t.RequiresGrad = true;
    }

    public IReadOnlyList<string> Classes { get; }

    public IReadOnlyList<(string Name, Tensor Tensor)> Parameters { get; }

    private static Tensor Init(DeterministicRandom rng, int rows, int cols)
    {
        var w = new float[rows * cols];
        for (int i = 0; i < w.Length; i++) w[i] = (float)(0.02 * rng.Normal());
        return Tensor.FromArray(w, rows, cols);
    }

    /// <summary>Per patch (row-major over the grid): 1 lesion, 0 background, −100 ignored.</summary>
    public int[] PatchLabels(string maskPath)
    {
        lock (_patchLabels)
        {
            if (_patchLabels.TryGetValue(maskPath, out var cached)) return cached;
            var img = _maskProcessor.ResizeAndCrop(ImageConversion.ToRgb8(ImageLoader.Load(maskPath)));
            int g = _grid, p = img.Width / g;
            var labels = new int[g * g];
            for (int gy = 0; gy < g; gy++)
                for (int gx = 0; gx < g; gx++)
                {
                    double sum = 0;
                    for (int y = gy * p; y < (gy + 1) * p; y++)
                        for (int x = gx * p; x < (gx + 1) * p; x++) sum += img.Pixels[(y * img.Width + x) * 3];
                    double share = sum / (255.0 * p * p);
                    labels[gy * g + gx] = share >= LesionShare ? 1 : share < BackgroundShare ? 0 : -100;
                }
            _patchLabels[maskPath] = labels;
            return labels;
        }
    }

    public Tensor Loss(TrainingExample[] batch, CancellationToken ct)
    {
        int n = batch.Length, np = _grid * _grid;
        var pos = new long[n * np];
        var neg = new long[n * np];
        var mod = new long[n];
        var sides = new long[n];
        bool anyPos = false;
        for (int i = 0; i < n; i++)
        {
            var labels = PatchLabels(batch[i].MaskPath ?? throw new InvalidDataException($"{batch[i].Id}: no mask"));
            for (int k = 0; k < np; k++)
            {
                pos[i * np + k] = labels[k] == 1 ? 1 : -100;
                neg[i * np + k] = labels[k] == 0 ? 0 : -100;
                anyPos |= labels[k] == 1;
            }
            int m = batch[i].Modality is { } name ? IndexOf(name) : -1;
            sides[i] = batch[i].Sides is { } sd ? Array.IndexOf(SideLabels, sd) : -100;
            mod[i] = m >= 0 ? m : throw new InvalidDataException($"{batch[i].Id}: class '{batch[i].Modality}' is not one of {string.Join(", ", Classes)}");
        }
        var tower = _model.VisionTower!;
        using var pxT = _pixels.Batch(batch.Select(e => e.ImagePath ?? throw new InvalidDataException($"{e.Id}: no image")).ToArray());
        using var feats = tower.SelectFeatures(pxT, _model.Multimodal.SelectLayer, includeCls: false, ct); // [n, np, d]
        using var patchLogits = Ops.Linear(feats, _patchW, _patchB);
        using var flat = Ops.Reshape(patchLogits, n * np, 2);
        using var negT = Tensor.FromArray(neg, n * np);
        using var negLoss = Ops.CrossEntropy(flat, negT);
        using var pooled = Ops.Mean(feats, [1]);
        using var classLogits = Ops.Linear(pooled, _classW, _classB);
        using var modT = Tensor.FromArray(mod, n);
        using var classLoss = Ops.CrossEntropy(classLogits, modT);
        var terms = new List<Tensor> { negLoss, classLoss };
        var owned = new List<Tensor>();
        try
        {
            if (anyPos)
            {
                var posT = Tensor.FromArray(pos, n * np);
                owned.Add(posT);
                terms.Add(Ops.CrossEntropy(flat, posT));
                owned.Add(terms[^1]);
            }
            if (sides.Any(v => v >= 0))
            {
                // presence and side from the mean patch token: the tower learns to spread them over every token, where a
                // language model's attention finds them without first having to locate the lesion
                var sidesLogits = Ops.Linear(pooled, _sidesW, _sidesB);
                var sidesT = Tensor.FromArray(sides, n);
                owned.Add(sidesLogits);
                owned.Add(sidesT);
                terms.Add(Ops.CrossEntropy(sidesLogits, sidesT));
                owned.Add(terms[^1]);
            }
            var sum = Ops.Add(terms[0], terms[1]);
            for (int k = 2; k < terms.Count; k++)
            {
                var next = Ops.Add(sum, terms[k]);
                sum.Dispose();
                sum = next;
            }
            return sum;
        }
        finally { foreach (var t in owned) t.Dispose(); }
    }

    /// <summary>
    /// Held-out quality of the tower + heads: balanced patch accuracy (mean of lesion and background recall over the
    /// labelled patches), image-level presence accuracy (any patch predicted lesion ⇔ the mask has a lesion patch)
    /// image-class accuracy and lesion-sides accuracy (NaN without "sides" labels).
    /// </summary>
    public FindingsAccuracy Evaluate(IReadOnlyList<TrainingExample> data, int batchSize = 32, CancellationToken ct = default)
    {
        using var _ = GradMode.NoGrad();
        int np = _grid * _grid;
        long tp = 0, p = 0, tn = 0, nn = 0, presence = 0, classOk = 0, sidesOk = 0, sidesN = 0;
        var byClass = new Dictionary<string, (int Ok, int N)>(StringComparer.Ordinal);
        var tower = _model.VisionTower!;
        foreach (var chunk in data.Chunk(batchSize))
        {
            int n = chunk.Length;
            using var pxT = _pixels.Batch(chunk.Select(e => e.ImagePath!).ToArray());
            using var feats = tower.SelectFeatures(pxT, _model.Multimodal.SelectLayer, includeCls: false, ct);
            using var patchLogits = Ops.Linear(feats, _patchW, _patchB);
            using var pooled = Ops.Mean(feats, [1]);
            using var classLogits = Ops.Linear(pooled, _classW, _classB);
            using var sidesLogits = Ops.Linear(pooled, _sidesW, _sidesB);
            var sl = sidesLogits.ToFloatArray();
            var pl = patchLogits.ToFloatArray();
            var ml = classLogits.ToFloatArray();
            int m = Classes.Count;
            for (int i = 0; i < n; i++)
            {
                var labels = PatchLabels(chunk[i].MaskPath!);
                bool predicted = false, truth = false;
                for (int k = 0; k < np; k++)
                {
                    bool lesion = pl[(i * np + k) * 2 + 1] > pl[(i * np + k) * 2];
                    predicted |= lesion;
                    truth |= labels[k] == 1;
                    if (labels[k] == 1) { p++; if (lesion) tp++; }
                    else if (labels[k] == 0) { nn++; if (!lesion) tn++; }
                }
                if (predicted == truth) presence++;
                var (ok, cnt) = byClass.GetValueOrDefault(chunk[i].Modality ?? "");
                byClass[chunk[i].Modality ?? ""] = (ok + (predicted == truth ? 1 : 0), cnt + 1);
                if (Classes[LogitsProcessing.Argmax(ml.AsSpan(i * m, m))] == chunk[i].Modality) classOk++;
                if (chunk[i].Sides is { } truthSides)
                {
                    sidesN++;
                    if (SideLabels[LogitsProcessing.Argmax(sl.AsSpan(i * SideLabels.Length, SideLabels.Length))] == truthSides) sidesOk++;
                }
            }
        }
        double recallLesion = p == 0 ? 1 : (double)tp / p, recallBackground = nn == 0 ? 1 : (double)tn / nn;
        return new FindingsAccuracy(100 * (recallLesion + recallBackground) / 2, 100.0 * presence / data.Count, 100.0 * classOk / data.Count,
            sidesN == 0 ? double.NaN : 100.0 * sidesOk / sidesN, data.Count,
            byClass.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToDictionary(kv => kv.Key, kv => 100.0 * kv.Value.Ok / kv.Value.N));
    }

    private int IndexOf(string name)
    {
        for (int i = 0; i < Classes.Count; i++)
            if (Classes[i] == name) return i;
        return -1;
    }

    public void Dispose()
    {
        foreach (var (_, t) in Parameters) t.Dispose();
    }
}
