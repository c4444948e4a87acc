using MedVL.Tensors;
using MedVL.Data.MedSynth;

namespace MedVL.Tests.Data;

public class MedSynthTests
{
    [Fact]
    public void RandomStreamIsFixedBySeed()
    {
        // xoshiro256** seeded by SplitMix64 from 0: first outputs of the reference C implementation's SplitMix64 state.
        var x = new DeterministicRandom(0);
        var y = new DeterministicRandom(0);
        for (int i = 0; i < 100; i++) Assert.Equal(x.NextUInt64(), y.NextUInt64());
        Assert.NotEqual(new DeterministicRandom(1).NextUInt64(), new DeterministicRandom(0).NextUInt64());
        var r = new DeterministicRandom(7);
        var counts = new int[5];
        for (int i = 0; i < 50000; i++) counts[r.Next(0, 5)]++;
        Assert.All(counts, c => Assert.InRange(c, 9500, 10500));
    }

    [Theory]
    [InlineData(Anatomy.Head, Modality.CT)]
    [InlineData(Anatomy.Head, Modality.MriT2)]
    [InlineData(Anatomy.Chest, Modality.CT)]
    [InlineData(Anatomy.Chest, Modality.XRay)]
    [InlineData(Anatomy.Abdomen, Modality.MriT1)]
    [InlineData(Anatomy.Tissue, Modality.Pathology)]
    public void LesionsAreVisibleWhereTheGroundTruthSaysTheyAre(Anatomy anatomy, Modality modality)
    {
        int checkedLesions = 0;
        for (ulong seed = 0; seed < 40 && checkedLesions < 5; seed++)
        {
            var rng = new DeterministicRandom(seed);
            var p = PhantomGenerator.Generate(rng, anatomy, lesionProbability: 1);
            Assert.True(p.HasLesion);
            var withLesion = PhantomRenderer.Render(p, modality, 96, new DeterministicRandom(99));
            var without = PhantomRenderer.Render(p with { Structures = p.Structures.Where(s => !p.Lesions.Any(l => ReferenceEquals(l.Geometry, s))).ToList(), Lesions = [] }, modality, 96, new DeterministicRandom(99));
            foreach (var l in p.Lesions)
            {
                // mean absolute change inside the lesion's core, against the same render without lesions (same noise)
                double diff = 0;
                int n = 0;
                for (int y = 0; y < 96; y++)
                    for (int x = 0; x < 96; x++)
                    {
                        double nx = -1 + (x + 0.5) * 2 / 96, ny = -1 + (y + 0.5) * 2 / 96;
                        if (l.Geometry.Radial(nx, ny) > 0.6) continue;
                        for (int c = 0; c < withLesion.Channels; c++)
                        {
                            int i = (y * 96 + x) * withLesion.Channels + c;
                            diff += Math.Abs(withLesion.Pixels[i] - without.Pixels[i]);
                            n++;
                        }
                    }
                if (n == 0) continue; // sub-pixel lesion core at this size
                Assert.True(diff / n > 0.04, $"{l.Kind} in {l.Region} barely visible in {modality}: {diff / n:F3}");
                checkedLesions++;
                // side convention: patient's left is on the image's right
                if (anatomy != Anatomy.Tissue && l.Region != "liver" && l.Region != "spleen")
                    Assert.Equal(l.Side == "left", l.Geometry.Cx > 0);
            }
        }
        Assert.True(checkedLesions >= 3);
    }

    [Fact]
    public void QuestionsAgreeWithGroundTruth()
    {
        for (ulong seed = 0; seed < 200; seed++)
        {
            var rng = new DeterministicRandom(seed);
            var anatomy = (Anatomy)(seed % 4);
            var modality = anatomy == Anatomy.Tissue ? Modality.Pathology : anatomy == Anatomy.Chest && seed % 8 == 1 ? Modality.XRay : Modality.CT;
            var p = PhantomGenerator.Generate(rng, anatomy);
            var qs = Findings.Questions(p, modality, rng);
            var presence = qs.Single(q => q.Question.StartsWith("Is there a") && q.Kind == "presence");
            Assert.Equal(p.HasLesion ? "yes" : "no", presence.Answer);
            Assert.True(presence.Closed);
            Assert.Equal(Findings.ModalityAnswer(modality), qs.Single(q => q.Question == "What imaging modality is shown?").Answer);
            if (p.HasLesion)
                Assert.Equal(p.Lesions.Count.ToString(), qs.Single(q => q.Kind == "count").Answer);
            Assert.All(qs.Where(q => q.Closed), q => Assert.Contains(q.Answer, new[] { "yes", "no" }));
            var report = Findings.Report(p, modality);
            Assert.StartsWith(Findings.ModalityPhrase(modality), report);
            Assert.Equal(p.HasLesion, !report.Contains("no focal abnormality") && !report.Contains("without tumor"));
        }
    }

    [Fact]
    public void CtKeepsHounsfieldUnitsAndWindowsThem()
    {
        var p = PhantomGenerator.Generate(new DeterministicRandom(3), Anatomy.Abdomen, 0);
        var img = PhantomRenderer.Render(p, Modality.CT, 64, new DeterministicRandom(4));
        Assert.NotNull(img.Hounsfield);
        Assert.InRange(img.Hounsfield![0], -1100, -900); // corner: air
        var (c, w) = TissueTable.CtWindow(Anatomy.Abdomen);
        for (int i = 0; i < img.Pixels.Length; i++)
            Assert.Equal(Math.Clamp((img.Hounsfield[i] - (c - w / 2)) / w, 0, 1), img.Pixels[i], 1e-6);
        var lr = img.Downsample(4);
        Assert.Equal(16, lr.Width);
        Assert.Equal((img.Pixels[0] + img.Pixels[1] + img.Pixels[64] + img.Pixels[65] + img.Pixels[2] + img.Pixels[3] + img.Pixels[66] + img.Pixels[67]
            + img.Pixels[128] + img.Pixels[129] + img.Pixels[130] + img.Pixels[131] + img.Pixels[192] + img.Pixels[193] + img.Pixels[194] + img.Pixels[195]) / 16, lr.Pixels[0], 1e-6);
    }

    [Fact]
    public void SameSeedSameImage()
    {
        var a = PhantomRenderer.Render(PhantomGenerator.Generate(new DeterministicRandom(11), Anatomy.Head), Modality.MriT1, 48, new DeterministicRandom(12));
        var b = PhantomRenderer.Render(PhantomGenerator.Generate(new DeterministicRandom(11), Anatomy.Head), Modality.MriT1, 48, new DeterministicRandom(12));
        Assert.Equal(a.Pixels, b.Pixels);
    }
}

public class MedSynthDatasetTests
{
    [Fact]
    public void WritesVqaLlavaAndGenerationFilesThatTheScorerReads()
    {
        var root = Directory.CreateTempSubdirectory("medsynth");
        var dir = Path.Combine(root.FullName, "ds");
        var written = new List<string>();
        var o = new MedSynthOptions { Seed = 5, Count = 40, ImageSize = 32, TestFraction = 0.25 };
        var m = MedSynthDataset.Write(dir, o, (path, img) => { written.Add(path); File.WriteAllBytes(path, img.ToBytes()); });
        Assert.Equal(40, m.Counts["train"] + m.Counts["test"]);
        Assert.InRange(m.Counts["test"], 3, 20);
        Assert.DoesNotContain(Directory.GetDirectories(root.FullName), d => d.Contains(".partial-"));
        var gt = MedVL.Evaluation.MedVqaEvaluator.ReadGroundTruth(Path.Combine(dir, "vqa_test.json"));
        Assert.Equal(m.Counts["vqa_test.json"], gt.Count);
        Assert.All(gt, g => Assert.Contains(g.AnswerType, new[] { "OPEN", "CLOSED" }));
        var gen = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "gen_train.json")))!.AsArray();
        Assert.Contains(gen, g => ((string)g!["task"]!).Contains("2"));   // ct2mri / mri2ct
        Assert.Contains(gen, g => (string)g!["task"]! == "sr4x");
        foreach (var g in gen)
        {
            Assert.True(File.Exists(Path.Combine(dir, (string)g!["image"]!)));
            Assert.True(File.Exists(Path.Combine(dir, (string)g!["output_image"]!)));
        }
        // segmentation items: the mask marks exactly the pixels of the ground-truth lesions
        var seg = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "seg_train.json")))!.AsArray();
        Assert.Equal(m.Counts["train"], seg.Count);
        Assert.Equal(m.Counts["test"], m.Counts["seg_test.json"]);
        foreach (var item in seg)
        {
            long index = long.Parse(((string)item!["id"]!)["medsynth-".Length..]);
            var s = MedSynthDataset.Generate(o, index);
            Assert.Equal(s.Phantom.Lesions.Count, (int)item["lesions"]!);
            var mask = s.Phantom.LesionMask(32);
            Assert.Equal(mask.ToBytes(), File.ReadAllBytes(Path.Combine(dir, (string)item["mask"]!)));
            Assert.Equal(s.Phantom.HasLesion, mask.Pixels.Any(v => v == 1));
            if (s.Phantom.Lesions.Count == 1 && s.Phantom.Lesions[0].Shape != LesionShape.Irregular)
            {
                // one smooth lesion: the mask's area is the ellipse's (π·rx·ry in pixels) within the pixel grid's error
                var g = s.Phantom.Lesions[0].Geometry;
                double area = Math.PI * g.Rx * g.Ry / (2.0 / 32 * 2.0 / 32);
                Assert.InRange(mask.Pixels.Sum(), 0.5 * area - 2, 1.5 * area + 2);
            }
        }
        // sample i does not depend on the count: a bigger set starts with the same samples and splits
        var small = MedSynthDataset.Generate(o, 7);
        var big = MedSynthDataset.Generate(o with { Count = 1000 }, 7);
        Assert.Equal(small.Image.Pixels, big.Image.Pixels);
        Assert.Equal(small.IsTest, big.IsTest);
        // refuses to overwrite a non-empty directory
        Assert.Throws<IOException>(() => MedSynthDataset.Write(dir, o, (_, _) => { }));
        root.Delete(true);
    }

    [Fact]
    public void ConversationTurns_CannotBeAnsweredFromEarlierAnswers()
    {
        var o = new MedSynthOptions { Seed = 9, Count = 200, ImageSize = 16 };
        var firstKinds = new HashSet<string>();
        for (long i = 0; i < o.Count; i++)
        {
            var s = MedSynthDataset.Generate(o, i);
            var turns = MedSynthDataset.ConversationQuestions(s, o.Seed);
            Assert.Single(turns, q => q.Kind == "presence");
            Assert.Equal(s.Questions.Count - 1, turns.Count);
            int presence = turns.FindIndex(q => q.Kind == "presence");
            Assert.All(turns.Select((q, k) => (q, k)).Where(x => Findings.AbnormalOnlyKinds.Contains(x.q.Kind)), x => Assert.True(x.k > presence));
            foreach (var kind in turns.GroupBy(q => q.Kind))
            {
                var closed = turns.FindIndex(q => q.Kind == kind.Key && q.Closed);
                var open = turns.FindIndex(q => q.Kind == kind.Key && !q.Closed);
                if (closed >= 0 && open >= 0) Assert.True(closed < open, $"{s.Id}: {kind.Key}");
            }
            Assert.Equal(turns, MedSynthDataset.ConversationQuestions(s, o.Seed)); // seeded
            firstKinds.Add(turns[0].Kind);
        }
        // the order is shuffled: every kind an image of any class is asked about can come first
        Assert.Superset(new HashSet<string> { "modality", "sequence", "anatomy", "presence" }, firstKinds);
    }

    [Fact]
    public void InterruptedWriteLeavesNothingBehind()
    {
        var root = Directory.CreateTempSubdirectory("medsynth");
        var dir = Path.Combine(root.FullName, "ds");
        int n = 0;
        Assert.Throws<IOException>(() => MedSynthDataset.Write(dir, new MedSynthOptions { Count = 20, ImageSize = 16, SuperResolutionFactor = 0 },
            (_, _) => { if (++n == 10) throw new IOException("disk full"); }));
        Assert.Empty(Directory.GetFileSystemEntries(root.FullName));
        root.Delete(true);
    }
}

public class MedSynthCliTests
{
    [Fact]
    public void SynthCommandWritesPngsThatDecodeToTheRenderedPixels()
    {
        var root = Directory.CreateTempSubdirectory("medsynth-cli");
        var dir = Path.Combine(root.FullName, "ds");
        var (code, _, err) = CliRunner.Run("synth", "--out", dir, "--count", "12", "--size", "32", "--seed", "9", "--modalities", "ct,pathology");
        Assert.True(code == 0, err);
        var sample = MedSynthDataset.Generate(new MedSynthOptions { Seed = 9, Count = 12, ImageSize = 32, Modalities = new[] { Modality.CT, Modality.Pathology } }, 3);
        var png = MedVL.Vision.Codecs.PngDecoder.Decode(File.ReadAllBytes(Path.Combine(dir, "images", sample.Id + ".png")));
        Assert.Equal(sample.Image.Channels, png.Channels);
        Assert.Equal(sample.Image.ToBytes().Select(b => (double)b).ToArray(), png.StoredValues);
        var (bad, _, badErr) = CliRunner.Run("synth", "--out", Path.Combine(root.FullName, "x"), "--modalities", "ultrasound");
        Assert.Equal(1, bad);
        Assert.Contains("ultrasound", badErr);
        root.Delete(true);
    }
}
