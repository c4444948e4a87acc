namespace MedVL.Data.MedSynth;

public enum Modality { CT, MriT1, MriT2, XRay, Pathology }

public enum Anatomy { Head, Chest, Abdomen, Tissue }

public enum LesionShape { Round, Oval, Irregular }

/// <summary>Tissue classes with a value per modality (<see cref="TissueTable"/>).</summary>
public enum Tissue { Air, Fat, Muscle, Bone, Marrow, Lung, Liver, Spleen, Kidney, GreyMatter, WhiteMatter, Csf, Blood, Cyst, Mass, Hemorrhage, Stroma, TumorTissue }

/// <summary>
/// A region of the phantom: an ellipse (or an irregular blob) in normalised image coordinates, x and y in [-1, 1],
/// x growing to the image's right. Structures are painted in order, later ones over earlier ones.
/// </summary>
public sealed record Structure(string Name, Tissue Tissue, double Cx, double Cy, double Rx, double Ry, double Angle = 0,
    double[]? Harmonics = null, double[]? Phases = null)
{
    /// <summary>Signed "radius ratio" distance: &lt; 1 inside, 1 on the edge (polar radius modulated for irregular blobs).</summary>
    public double Radial(double x, double y)
    {
        double dx = x - Cx, dy = y - Cy;
        double c = Math.Cos(Angle), s = Math.Sin(Angle);
        double u = (dx * c + dy * s) / Rx, v = (-dx * s + dy * c) / Ry;
        double r = Math.Sqrt(u * u + v * v);
        if (Harmonics is null || r == 0) return r;
        double theta = Math.Atan2(v, u), m = 1;
        for (int k = 0; k < Harmonics.Length; k++) m += Harmonics[k] * Math.Sin((k + 2) * theta + Phases![k]);
        return r / m;
    }
}

/// <summary>
/// The ground truth of one abnormal finding. Side is the PATIENT's side in radiological convention: the patient's
/// left is on the image's right (x &gt; 0), as on every CT, MRI and frontal chest X-ray a radiologist reads.
/// </summary>
public sealed record Lesion(string Kind, string Side, string Region, LesionShape Shape, double DiameterCm, Structure Geometry);

/// <summary>One synthetic subject: anatomy, structures, lesions and the field of view that turns sizes into cm.</summary>
public sealed record Phantom(Anatomy Anatomy, double FieldOfViewCm, IReadOnlyList<Structure> Structures, IReadOnlyList<Lesion> Lesions)
{
    public bool HasLesion => Lesions.Count > 0;

    /// <summary>"left", "right" or "both" (patient sides), or "none".</summary>
    public string LesionSides =>
        Lesions.Count == 0 ? "none" : Lesions.Select(l => l.Side).Distinct().Count() > 1 ? "both" : Lesions[0].Side;

    /// <summary>
    /// The lesion segmentation mask at <paramref name="size"/>×<paramref name="size"/>: 1 where a pixel centre lies inside
    /// any lesion (the renderer's sampling grid, so the mask lines up with every modality's image), else 0.
    /// </summary>
    public SynthImage LesionMask(int size)
    {
        var m = new float[size * size];
        double px = 2.0 / size;
        foreach (var l in Lesions)
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                    if (l.Geometry.Radial(-1 + (x + 0.5) * px, -1 + (y + 0.5) * px) < 1) m[y * size + x] = 1;
        return new SynthImage(size, size, 1, m);
    }
}

/// <summary>Signal of each tissue per modality: CT in Hounsfield units, MRI T1/T2 and X-ray attenuation in [0, 1].</summary>
public static class TissueTable
{
    public static double Value(Tissue t, Modality m) => m switch
    {
        Modality.CT => t switch
        {
            Tissue.Air => -1000, Tissue.Fat => -100, Tissue.Muscle => 45, Tissue.Bone => 1000, Tissue.Marrow => 300,
            Tissue.Lung => -850, Tissue.Liver => 60, Tissue.Spleen => 48, Tissue.Kidney => 32, Tissue.GreyMatter => 40,
            Tissue.WhiteMatter => 26, Tissue.Csf => 8, Tissue.Blood => 42, Tissue.Cyst => 4, Tissue.Mass => 120,
            Tissue.Hemorrhage => 80, _ => 40,
        },
        Modality.MriT1 => t switch
        {
            Tissue.Air => 0, Tissue.Fat => 0.95, Tissue.Muscle => 0.42, Tissue.Bone => 0.08, Tissue.Marrow => 0.75,
            Tissue.Lung => 0.04, Tissue.Liver => 0.58, Tissue.Spleen => 0.45, Tissue.Kidney => 0.40, Tissue.GreyMatter => 0.45,
            Tissue.WhiteMatter => 0.65, Tissue.Csf => 0.10, Tissue.Blood => 0.35, Tissue.Cyst => 0.12, Tissue.Mass => 0.25,
            Tissue.Hemorrhage => 0.90, _ => 0.4,
        },
        Modality.MriT2 => t switch
        {
            Tissue.Air => 0, Tissue.Fat => 0.70, Tissue.Muscle => 0.30, Tissue.Bone => 0.05, Tissue.Marrow => 0.50,
            Tissue.Lung => 0.05, Tissue.Liver => 0.28, Tissue.Spleen => 0.50, Tissue.Kidney => 0.55, Tissue.GreyMatter => 0.58,
            Tissue.WhiteMatter => 0.40, Tissue.Csf => 0.97, Tissue.Blood => 0.20, Tissue.Cyst => 0.95, Tissue.Mass => 0.85,
            Tissue.Hemorrhage => 0.15, _ => 0.4,
        },
        Modality.XRay => t switch
        {
            Tissue.Air => 0, Tissue.Lung => 0.08, Tissue.Fat => 0.30, Tissue.Bone => 1.0, Tissue.Marrow => 0.7,
            Tissue.Mass => 0.85, Tissue.Blood => 0.62, _ => 0.55,
        },
        _ => 0,
    };

    /// <summary>CT display windows (centre, width) per anatomy, as a radiologist would pick them.</summary>
    public static (double Center, double Width) CtWindow(Anatomy a) => a switch
    {
        Anatomy.Head => (40, 120),     // brain window
        Anatomy.Chest => (-400, 1600), // lung window, shows nodules and soft tissue
        _ => (50, 400),                // abdominal soft-tissue window
    };
}
