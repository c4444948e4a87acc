using MedVL.Tensors;
namespace MedVL.Data.MedSynth;

/// <summary>Seeded anatomy phantoms with 0–3 lesions whose kind, side, region, shape and size are known exactly.</summary>
public static class PhantomGenerator
{
    /// <summary>The smallest lesion radius, in normalised units (the image spans 2).</summary>
    public const double MinLesionRadius = 0.09;

    /// <summary>Build a phantom. <paramref name="lesionProbability"/> is the chance of at least one lesion.</summary>
    public static Phantom Generate(DeterministicRandom rng, Anatomy anatomy, double lesionProbability = 0.5, int maxLesions = 3)
    {
        var s = new List<Structure>();
        var organs = new List<(Structure Organ, string Side, string Region)>(); // where lesions may grow
        double fov;
        switch (anatomy)
        {
            case Anatomy.Head:
            {
                fov = 24;
                double a = rng.Uniform(0.78, 0.86), b = rng.Uniform(0.88, 0.95);
                s.Add(new("scalp", Tissue.Muscle, 0, 0, a + 0.06, b + 0.05));
                s.Add(new("skull", Tissue.Bone, 0, 0, a, b));
                s.Add(new("grey matter", Tissue.GreyMatter, 0, 0, a - 0.07, b - 0.07));
                s.Add(new("white matter", Tissue.WhiteMatter, 0, 0, a - 0.22, b - 0.24));
                s.Add(new("left lateral ventricle", Tissue.Csf, 0.11, -0.05, 0.07, 0.24, 0.15));
                s.Add(new("right lateral ventricle", Tissue.Csf, -0.11, -0.05, 0.07, 0.24, -0.15));
                var brain = new Structure("brain", Tissue.GreyMatter, 0, 0, a - 0.1, b - 0.1);
                foreach (var (side, sx) in new[] { ("left", 1.0), ("right", -1.0) })
                {
                    organs.Add((brain with { Cx = 0.35 * sx, Cy = -0.45, Rx = 0.2, Ry = 0.2 }, side, "frontal lobe"));
                    organs.Add((brain with { Cx = 0.42 * sx, Cy = 0.05, Rx = 0.2, Ry = 0.2 }, side, "parietal lobe"));
                    organs.Add((brain with { Cx = 0.3 * sx, Cy = 0.55, Rx = 0.18, Ry = 0.16 }, side, "occipital lobe"));
                }
                break;
            }
            case Anatomy.Chest:
            {
                fov = 38;
                double a = rng.Uniform(0.86, 0.94), b = rng.Uniform(0.62, 0.72);
                s.Add(new("subcutaneous fat", Tissue.Fat, 0, 0.05, a, b));
                s.Add(new("chest wall", Tissue.Muscle, 0, 0.05, a - 0.06, b - 0.06));
                var leftLung = new Structure("left lung", Tissue.Lung, 0.38, 0.0, 0.3, b - 0.16);
                var rightLung = new Structure("right lung", Tissue.Lung, -0.38, 0.0, 0.32, b - 0.15);
                s.Add(leftLung);
                s.Add(rightLung);
                s.Add(new("heart", Tissue.Blood, 0.12, 0.08, 0.24, 0.22, 0.3));
                s.Add(new("aorta", Tissue.Blood, 0.05, 0.38, 0.07, 0.07));
                s.Add(new("vertebra", Tissue.Bone, 0, b - 0.02, 0.1, 0.09));
                foreach (var (lung, side) in new[] { (leftLung, "left"), (rightLung, "right") })
                {
                    organs.Add((lung with { Cy = lung.Cy - lung.Ry * 0.45, Ry = lung.Ry * 0.45, Rx = lung.Rx * 0.6 }, side, "upper lobe"));
                    organs.Add((lung with { Cy = lung.Cy + lung.Ry * 0.45, Ry = lung.Ry * 0.45, Rx = lung.Rx * 0.6 }, side, "lower lobe"));
                }
                break;
            }
            case Anatomy.Abdomen:
            {
                fov = 38;
                double a = rng.Uniform(0.84, 0.93), b = rng.Uniform(0.66, 0.76);
                s.Add(new("subcutaneous fat", Tissue.Fat, 0, 0.04, a, b));
                s.Add(new("abdominal wall", Tissue.Muscle, 0, 0.04, a - 0.06, b - 0.06));
                s.Add(new("visceral fat", Tissue.Fat, 0, 0.04, a - 0.1, b - 0.1));
                var liver = new Structure("liver", Tissue.Liver, -0.36, -0.08, 0.4, 0.36, -0.2);
                var spleen = new Structure("spleen", Tissue.Spleen, 0.52, 0.02, 0.16, 0.22, 0.4);
                var lk = new Structure("left kidney", Tissue.Kidney, 0.33, 0.36, 0.12, 0.17, 0.3);
                var rk = new Structure("right kidney", Tissue.Kidney, -0.33, 0.36, 0.12, 0.17, -0.3);
                s.Add(liver); s.Add(spleen); s.Add(lk); s.Add(rk);
                s.Add(new("aorta", Tissue.Blood, 0.06, 0.28, 0.06, 0.06));
                s.Add(new("vertebra", Tissue.Bone, 0, 0.46, 0.11, 0.1));
                s.Add(new("vertebral marrow", Tissue.Marrow, 0, 0.46, 0.07, 0.06));
                organs.Add((liver with { Rx = 0.25, Ry = 0.22 }, "right", "liver"));
                organs.Add((spleen with { Rx = 0.1, Ry = 0.13 }, "left", "spleen"));
                organs.Add((lk with { Rx = 0.07, Ry = 0.1 }, "left", "left kidney"));
                organs.Add((rk with { Rx = 0.07, Ry = 0.1 }, "right", "right kidney"));
                break;
            }
            case Anatomy.Tissue:
            {
                fov = 0.1; // a 1 mm pathology field
                s.Add(new("stroma", Tissue.Stroma, 0, 0, 2, 2));
                foreach (var (side, sx) in new[] { ("left", -1.0), ("right", 1.0) })
                    foreach (var (region, sy) in new[] { ("upper", -1.0), ("lower", 1.0) })
                        organs.Add((new Structure("tissue", Tissue.Stroma, 0.45 * sx, 0.45 * sy, 0.3, 0.3), side, $"{region} {side}"));
                break;
            }
            default: throw new ArgumentOutOfRangeException(nameof(anatomy));
        }

        var lesions = new List<Lesion>();
        if (rng.Chance(lesionProbability))
        {
            int count = 1 + (rng.Chance(0.35) ? rng.Next(1, maxLesions) : 0);
            var free = new List<(Structure Organ, string Side, string Region)>(organs);
            for (int i = 0; i < count && free.Count > 0; i++)
            {
                var site = free[rng.Next(0, free.Count)];
                free.Remove(site); // one lesion per site keeps count and location unambiguous
                lesions.Add(MakeLesion(rng, anatomy, site.Organ, site.Side, site.Region, fov));
            }
        }
        foreach (var l in lesions) s.Add(l.Geometry);
        return new Phantom(anatomy, fov, s, lesions);
    }

    private static Lesion MakeLesion(DeterministicRandom rng, Anatomy anatomy, Structure site, string side, string region, double fov)
    {
        var shape = (LesionShape)rng.Next(0, 3);
        string kind;
        Tissue tissue;
        switch (anatomy)
        {
            case Anatomy.Head: (kind, tissue) = rng.Chance(0.5) ? ("mass", Tissue.Mass) : ("hemorrhage", Tissue.Hemorrhage); break;
            case Anatomy.Chest: (kind, tissue) = ("nodule", Tissue.Mass); break;
            case Anatomy.Abdomen: (kind, tissue) = rng.Chance(0.5) ? ("cyst", Tissue.Cyst) : ("mass", Tissue.Mass); break;
            default: (kind, tissue) = ("tumor", Tissue.TumorTissue); break;
        }
        if (kind == "cyst") shape = shape == LesionShape.Irregular ? LesionShape.Round : shape; // cysts are smooth
        // At least 0.09 of the half-width (about 6 pixels across at 64 px): a renal lesion scaled to the kidney alone would be
        // under two pixels wide, below what any reader (or the 64-pixel tiny presets) can see.
        double r = Math.Max(MinLesionRadius, rng.Uniform(0.35, 0.65) * Math.Min(site.Rx, site.Ry));
        double rx = r, ry = r;
        if (shape == LesionShape.Oval) ry = r * rng.Uniform(0.5, 0.65);
        double[]? harm = null, ph = null;
        if (shape == LesionShape.Irregular)
        {
            harm = new[] { rng.Uniform(0.18, 0.28), rng.Uniform(0.1, 0.18) };
            ph = new[] { rng.Uniform(0, 2 * Math.PI), rng.Uniform(0, 2 * Math.PI) };
        }
        double cx = site.Cx + rng.Uniform(-0.3, 0.3) * site.Rx, cy = site.Cy + rng.Uniform(-0.3, 0.3) * site.Ry;
        var geom = new Structure($"{kind} ({region})", tissue, cx, cy, rx, ry, rng.Uniform(0, Math.PI), harm, ph);
        double diameterCm = Math.Round(2 * Math.Max(rx, ry) * fov / 2, 1); // normalised span 2 = field of view
        return new Lesion(kind, side, region, shape, diameterCm, geom);
    }
}
