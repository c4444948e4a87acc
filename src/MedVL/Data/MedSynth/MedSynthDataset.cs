using MedVL.Tensors;
using System.Text.Json;

namespace MedVL.Data.MedSynth;

/// <summary>What to generate. Defaults give a small mixed set; sizes run from a handful to 100k samples.</summary>
public sealed record MedSynthOptions
{
    public ulong Seed { get; init; } = 1;
    public int Count { get; init; } = 200;
    public int ImageSize { get; init; } = 64;
    public double TestFraction { get; init; } = 0.2;
    public double LesionProbability { get; init; } = 0.5;
    public IReadOnlyList<Modality> Modalities { get; init; } = new[] { Modality.CT, Modality.MriT1, Modality.MriT2, Modality.XRay, Modality.Pathology };
    /// <summary>Also render every CT/MRI subject in the other modality (modality-conversion pairs).</summary>
    public bool ConversionPairs { get; init; } = true;
    /// <summary>Also write a low-resolution copy (super-resolution pairs); 0 disables.</summary>
    public int SuperResolutionFactor { get; init; } = 4;

    public void Validate()
    {
        if (Count < 1 || Count > 10_000_000) throw new ArgumentOutOfRangeException(nameof(Count), Count, "expected 1 to 10,000,000 samples");
        if (ImageSize < 16 || ImageSize > 2048) throw new ArgumentOutOfRangeException(nameof(ImageSize), ImageSize, "expected 16 to 2048 pixels");
        if (TestFraction < 0 || TestFraction >= 1) throw new ArgumentOutOfRangeException(nameof(TestFraction), TestFraction, "expected [0, 1)");
        if (Modalities.Count == 0) throw new ArgumentException("at least one modality is needed", nameof(Modalities));
        if (SuperResolutionFactor != 0 && (SuperResolutionFactor < 2 || ImageSize % SuperResolutionFactor != 0))
            throw new ArgumentOutOfRangeException(nameof(SuperResolutionFactor), SuperResolutionFactor, $"expected 0 or a factor >= 2 dividing the image size {ImageSize}");
    }
}

/// <summary>One generated subject with everything derived from it.</summary>
public sealed record MedSynthSample(
    long Index, bool IsTest, Phantom Phantom, Modality Modality, SynthImage Image,
    IReadOnlyList<QaPair> Questions, string Report,
    Modality? PairedModality, SynthImage? PairedImage, SynthImage? LowResolution)
{
    public string Id => $"medsynth-{Index:D6}";
    public string Split => IsTest ? "test" : "train";
}

/// <summary>
/// Generates MedSynth samples (each from its own random stream, so sample i is the same whatever the count) and writes
/// them in the formats of the real data sets.
/// </summary>
public static class MedSynthDataset
{
    public static Anatomy AnatomyFor(Modality m, DeterministicRandom rng) => m switch
    {
        Modality.CT => rng.Pick(new[] { Anatomy.Head, Anatomy.Chest, Anatomy.Abdomen }),
        Modality.MriT1 or Modality.MriT2 => rng.Pick(new[] { Anatomy.Head, Anatomy.Abdomen }),
        Modality.XRay => Anatomy.Chest,
        _ => Anatomy.Tissue,
    };

    /// <summary>What the image shows at a glance, e.g. "mri-t2 head": modality, MRI sequence and body part (seg_*.json "class").</summary>
    public static string ImageClass(Modality m, Anatomy a) => m switch
    {
        Modality.MriT1 => "mri-t1", Modality.MriT2 => "mri-t2", _ => Findings.ModalityAnswer(m),
    } + " " + Findings.AnatomyAnswer(a);

    /// <summary>The Med-MoE router's modality label (Router_Train.ipynb's label names).</summary>
    public static string RouterModality(Modality m) => m switch
    {
        Modality.CT => "CT", Modality.MriT1 or Modality.MriT2 => "MRI", Modality.XRay => "X-Ray", _ => "pathology",
    };

    public static MedSynthSample Generate(MedSynthOptions o, long index)
    {
        var rng = DeterministicRandom.ForItem(o.Seed, index);
        var modality = o.Modalities[rng.Next(0, o.Modalities.Count)];
        var phantom = PhantomGenerator.Generate(rng, AnatomyFor(modality, rng), o.LesionProbability);
        var image = PhantomRenderer.Render(phantom, modality, o.ImageSize, rng);
        Modality? pairedModality = null;
        SynthImage? paired = null;
        if (o.ConversionPairs && modality is Modality.CT or Modality.MriT1 or Modality.MriT2)
        {
            pairedModality = modality == Modality.CT ? (rng.Chance(0.5) ? Modality.MriT1 : Modality.MriT2) : Modality.CT;
            paired = PhantomRenderer.Render(phantom, pairedModality.Value, o.ImageSize, rng);
        }
        var lowRes = o.SuperResolutionFactor > 0 && modality != Modality.Pathology ? image.Downsample(o.SuperResolutionFactor) : null;
        var questions = Findings.Questions(phantom, modality, rng);
        // the split is a property of the index alone, so growing the count never moves a sample between splits
        bool isTest = DeterministicRandom.ForItem(o.Seed ^ 0x7E57UL, index).NextDouble() < o.TestFraction;
        return new MedSynthSample(index, isTest, phantom, modality, image, questions, Findings.Report(phantom, modality), pairedModality, paired, lowRes);
    }

    public static IEnumerable<MedSynthSample> GenerateAll(MedSynthOptions o, CancellationToken ct = default)
    {
        o.Validate();
        for (long i = 0; i < o.Count; i++)
        {
            ct.ThrowIfCancellationRequested();
            yield return Generate(o, i);
        }
    }

    /// <summary>
    /// The questions of an image's llava_train conversation, in a seeded random order, so that every kind of question is
    /// also asked first, as the test set's single questions are. No turn can be answered from an earlier answer instead
    /// of from the image: of the two presence questions one is drawn ("Is there a lesion?" "yes" would answer "Is this
    /// image normal?"); presence comes before the questions only abnormal images get (a lesion count implies a lesion);
    /// within a kind the closed question comes before the open one ("What modality?" "ct" would answer "Is this a CT
    /// image?").
    /// </summary>
    public static List<QaPair> ConversationQuestions(MedSynthSample s, ulong seed)
    {
        var rng = DeterministicRandom.ForItem(seed ^ 0xC0117E55UL, s.Index);
        var presence = s.Questions.Where(q => q.Kind == "presence").ToArray();
        var keep = presence.Length > 0 ? presence[rng.Next(0, presence.Length)] : null;
        var list = s.Questions.Where(q => q.Kind != "presence" || ReferenceEquals(q, keep)).ToList();
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = rng.Next(0, i + 1);
            (list[i], list[j]) = (list[j], list[i]);
        }
        var order = list.OrderBy(q => Findings.AbnormalOnlyKinds.Contains(q.Kind) ? 1 : 0).ToList(); // stable
        foreach (var kind in order.Select(q => q.Kind).Distinct().ToList())
        {
            var slots = order.Select((q, i) => (q, i)).Where(x => x.q.Kind == kind).Select(x => x.i).ToArray();
            var closedFirst = slots.Select(i => order[i]).OrderBy(q => q.Closed ? 0 : 1).ToArray();
            for (int k = 0; k < slots.Length; k++) order[slots[k]] = closedFirst[k];
        }
        return order;
    }

    private static string ConversionInstruction(Modality from, Modality to, DeterministicRandom rng)
    {
        string f = from == Modality.CT ? "CT" : "MRI", t = to == Modality.CT ? "CT" : "MRI";
        return rng.Pick(new[]
        {
            $"I need a version of this {f} representation in {t}.",
            $"Transform the {f} display into {(t == "MRI" ? "an" : "a")} {t} image.",
            $"Convert this {f} image to {t}.",
        });
    }

    /// <summary>
    /// Write the data set under <paramref name="directory"/>: images/*.png; vqa_{train,test}.json (VQA-RAD/SLAKE-style
    /// items, one question each, answer_type OPEN/CLOSED, Med-MoE's test-file format); llava_train.json (LLaVA
    /// conversations, the questions about an image as turns (<see cref="ConversationQuestions"/>), with
    /// Med-MoE's `modality` field); caption_train.json (stage-1
    /// "plain" alignment pairs: image and report); seg_{train,test}.json (image, lesion mask PNG images/*-mask.png,
    /// modality, anatomy, class = modality + sequence + anatomy, lesion count and sides: the ground truth a vision tower can be pretrained on); gen_{train,test}.json (HealthGPT generation tasks: CT↔MRI conversion
    /// and 4× super-resolution, with `output_image`); medsynth.json (the options and counts). Everything is written
    /// into a temporary sibling directory that is renamed into place at the end, so an interrupted run leaves no
    /// half-written data set behind.
    /// </summary>
    public static MedSynthManifest Write(string directory, MedSynthOptions o, Action<string, SynthImage> writePng,
        IProgress<long>? progress = null, CancellationToken ct = default)
    {
        o.Validate();
        var final = Path.GetFullPath(directory);
        if (Directory.Exists(final) && Directory.EnumerateFileSystemEntries(final).Any())
            throw new IOException($"{final}: directory exists and is not empty; choose another or remove it");
        var tmp = final.TrimEnd(Path.DirectorySeparatorChar) + $".partial-{Guid.NewGuid():N}";
        Directory.CreateDirectory(Path.Combine(tmp, "images"));
        try
        {
            var counts = new Dictionary<string, int>();
            using (var files = new JsonArrayWriters(tmp, "vqa_train.json", "vqa_test.json", "llava_train.json", "caption_train.json", "seg_train.json", "seg_test.json", "gen_train.json", "gen_test.json"))
            {
                foreach (var s in GenerateAll(o, ct))
                {
                    string img = $"images/{s.Id}.png";
                    writePng(Path.Combine(tmp, img), s.Image);
                    string mod = RouterModality(s.Modality);
                    string mask = $"images/{s.Id}-mask.png";
                    writePng(Path.Combine(tmp, mask), s.Phantom.LesionMask(o.ImageSize));
                    files[s.IsTest ? "seg_test.json" : "seg_train.json"].Write(new
                    {
                        id = s.Id, image = img, mask, modality = mod, anatomy = Findings.AnatomyAnswer(s.Phantom.Anatomy),
                        @class = ImageClass(s.Modality, s.Phantom.Anatomy),
                        lesions = s.Phantom.Lesions.Count, sides = s.Phantom.LesionSides,
                    });
                    foreach (var (q, k) in s.Questions.Select((q, k) => (q, k)))
                        files[s.IsTest ? "vqa_test.json" : "vqa_train.json"].Write(new
                        {
                            id = $"{s.Id}-q{k}", image = img, answer_type = q.Closed ? "CLOSED" : "OPEN", modality = mod, question_type = q.Kind,
                            conversations = new[] { new { from = "human", value = "<image>\n" + q.Question }, new { from = "gpt", value = q.Answer } },
                        });
                    if (!s.IsTest)
                    {
                        var turns = new List<object>();
                        foreach (var (q, k) in ConversationQuestions(s, o.Seed).Select((q, k) => (q, k)))
                        {
                            turns.Add(new { from = "human", value = (k == 0 ? "<image>\n" : "") + q.Question });
                            turns.Add(new { from = "gpt", value = q.Answer });
                        }
                        files["llava_train.json"].Write(new { id = s.Id, image = img, modality = mod, conversations = turns });
                        files["caption_train.json"].Write(new
                        {
                            id = s.Id, image = img, modality = mod,
                            conversations = new[] { new { from = "human", value = "<image>" }, new { from = "gpt", value = s.Report } },
                        });
                    }
                    var gen = files[s.IsTest ? "gen_test.json" : "gen_train.json"];
                    var rng = DeterministicRandom.ForItem(o.Seed ^ 0x6E6UL, s.Index);
                    if (s.PairedImage is not null)
                    {
                        string outImg = $"images/{s.Id}-{Findings.ModalityAnswer(s.PairedModality!.Value)}.png";
                        writePng(Path.Combine(tmp, outImg), s.PairedImage);
                        string to = s.PairedModality == Modality.CT ? "CT" : "MRI", from = s.Modality == Modality.CT ? "CT" : "MRI";
                        gen.Write(new
                        {
                            id = s.Id + "-conv", task = $"{from.ToLowerInvariant()}2{to.ToLowerInvariant()}", image = img, output_image = outImg, modality = mod,
                            conversations = new[]
                            {
                                new { from = "human", value = "<image>\n" + ConversionInstruction(s.Modality, s.PairedModality.Value, rng) },
                                new { from = "gpt", value = $"Here is the {to} version of the {from} image." },
                            },
                        });
                    }
                    if (s.LowResolution is not null)
                    {
                        string lr = $"images/{s.Id}-lr{o.SuperResolutionFactor}.png";
                        writePng(Path.Combine(tmp, lr), s.LowResolution);
                        gen.Write(new
                        {
                            id = s.Id + "-sr", task = $"sr{o.SuperResolutionFactor}x", image = lr, output_image = img, modality = mod,
                            conversations = new[]
                            {
                                new { from = "human", value = "<image>\n" + rng.Pick(new[] { "Could you improve the quality of this image?", "Increase the resolution of this scan.", "Please super-resolve this image." }) },
                                new { from = "gpt", value = "Here is the high-resolution image." },
                            },
                        });
                    }
                    counts[s.Split] = counts.GetValueOrDefault(s.Split) + 1;
                    progress?.Report(s.Index + 1);
                }
                foreach (var (name, w) in files.All) counts[name] = w.Count;
            }
            var manifest = new MedSynthManifest(o, counts);
            File.WriteAllText(Path.Combine(tmp, "medsynth.json"), JsonSerializer.Serialize(manifest, ManifestJson));
            if (Directory.Exists(final)) Directory.Delete(final);
            Directory.Move(tmp, final);
            return manifest;
        }
        catch
        {
            try { Directory.Delete(tmp, recursive: true); } catch (IOException) { }
            throw;
        }
    }

    private static readonly JsonSerializerOptions ManifestJson = new()
    {
        WriteIndented = true,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },
    };

    /// <summary>Streams several JSON lists to disk item by item, so 100k samples never sit in memory.</summary>
    private sealed class JsonArrayWriters : IDisposable
    {
        private readonly Dictionary<string, Writer> _w = new();

        public JsonArrayWriters(string dir, params string[] names)
        {
            foreach (var n in names) _w[n] = new Writer(Path.Combine(dir, n));
        }

        public Writer this[string name] => _w[name];
        public IEnumerable<(string, Writer)> All => _w.Select(kv => (kv.Key, kv.Value));

        public void Dispose()
        {
            foreach (var w in _w.Values) w.Dispose();
        }

        internal sealed class Writer : IDisposable
        {
            private readonly FileStream _fs;
            private readonly Utf8JsonWriter _json;

            public Writer(string path)
            {
                _fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
                _json = new Utf8JsonWriter(_fs, new JsonWriterOptions { Indented = false, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
                _json.WriteStartArray();
            }

            public int Count { get; private set; }

            public void Write(object item)
            {
                JsonSerializer.Serialize(_json, item);
                Count++;
                if (_json.BytesPending > 1 << 16) _json.Flush();
            }

            public void Dispose()
            {
                _json.WriteEndArray();
                _json.Flush();
                _fs.Flush(flushToDisk: true);
                _json.Dispose();
                _fs.Dispose();
            }
        }
    }
}

public sealed record MedSynthManifest(MedSynthOptions Options, IReadOnlyDictionary<string, int> Counts);
