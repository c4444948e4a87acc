using MedVL.Tensors;
using System.Globalization;
using System.Text;

namespace MedVL.Data.MedSynth;

/// <summary>A question with its exact answer. Closed questions are yes/no, as VQA-RAD/SLAKE's "closed" answer type.</summary>
public sealed record QaPair(string Question, string Answer, bool Closed, string Kind);

/// <summary>Questions and short reports derived from a phantom's ground truth.</summary>
public static class Findings
{
    public static string ModalityAnswer(Modality m) => m switch
    {
        Modality.CT => "ct", Modality.MriT1 or Modality.MriT2 => "mri", Modality.XRay => "x-ray", _ => "pathology",
    };

    public static string ModalityPhrase(Modality m) => m switch
    {
        Modality.CT => "CT", Modality.MriT1 => "T1-weighted MRI", Modality.MriT2 => "T2-weighted MRI",
        Modality.XRay => "Frontal chest radiograph", _ => "H&E-stained histology",
    };

    public static string AnatomyAnswer(Anatomy a) => a switch
    {
        Anatomy.Head => "head", Anatomy.Chest => "chest", Anatomy.Abdomen => "abdomen", _ => "tissue",
    };

    /// <summary>The question kinds only an abnormal image is asked about.</summary>
    public static readonly IReadOnlySet<string> AbnormalOnlyKinds = new HashSet<string> { "count", "side", "location", "shape", "kind" };

    private static readonly string[] Numbers = { "no", "one", "two", "three", "four" };

    /// <summary>Every question this image answers exactly, open and closed.</summary>
    public static List<QaPair> Questions(Phantom p, Modality m, DeterministicRandom rng)
    {
        var q = new List<QaPair>();
        bool abnormal = p.HasLesion;
        string mod = ModalityAnswer(m);
        q.Add(new("What imaging modality is shown?", mod, false, "modality"));
        var other = new[] { "ct", "mri", "x-ray", "pathology" }.Where(x => x != mod).ToArray();
        if (rng.Chance(0.5)) q.Add(new($"Is this {Article(mod)} {Display(mod)} image?", "yes", true, "modality"));
        else
        {
            string wrong = rng.Pick(other);
            q.Add(new($"Is this {Article(wrong)} {Display(wrong)} image?", "no", true, "modality"));
        }
        if (m is Modality.MriT1 or Modality.MriT2)
        {
            bool askT2 = rng.Chance(0.5);
            q.Add(new($"Is this a {(askT2 ? "T2" : "T1")}-weighted image?", (askT2 == (m == Modality.MriT2)) ? "yes" : "no", true, "sequence"));
            q.Add(new("Which MRI sequence is this?", m == Modality.MriT2 ? "t2" : "t1", false, "sequence"));
        }
        if (p.Anatomy != Anatomy.Tissue) q.Add(new("Which part of the body is imaged?", AnatomyAnswer(p.Anatomy), false, "anatomy"));
        string finding = p.Anatomy == Anatomy.Tissue ? "tumor" : "lesion";
        q.Add(new($"Is there {Article(finding)} {finding} in this image?", abnormal ? "yes" : "no", true, "presence"));
        q.Add(new("Is this image normal?", abnormal ? "no" : "yes", true, "presence"));
        if (!abnormal) return q;

        q.Add(new($"How many {finding}s are there?", p.Lesions.Count.ToString(CultureInfo.InvariantCulture), false, "count"));
        if (p.Anatomy != Anatomy.Tissue)
        {
            string sides = p.LesionSides;
            q.Add(new($"Which side is the {finding} on?", sides, false, "side"));
            string askSide = rng.Chance(0.5) ? "left" : "right";
            q.Add(new($"Is there {Article(finding)} {finding} on the {askSide} side?", p.Lesions.Any(l => l.Side == askSide) ? "yes" : "no", true, "side"));
        }
        var main = p.Lesions.OrderByDescending(l => l.DiameterCm).First();
        string where = p.Anatomy == Anatomy.Abdomen ? main.Region
            : p.Anatomy == Anatomy.Tissue ? main.Region : $"{main.Side} {main.Region}";
        if (p.Lesions.Count == 1) q.Add(new($"Where is the {finding} located?", where, false, "location"));
        q.Add(new($"What is the shape of the largest {finding}?", main.Shape.ToString().ToLowerInvariant(), false, "shape"));
        if (p.Anatomy is Anatomy.Head or Anatomy.Abdomen)
            q.Add(new("What type of abnormality is seen?", main.Kind, false, "kind"));
        return q;
    }

    /// <summary>A one- or two-sentence report, the text side of report-to-image and captioning pairs.</summary>
    public static string Report(Phantom p, Modality m)
    {
        var sb = new StringBuilder();
        string region = p.Anatomy == Anatomy.Tissue || m == Modality.XRay ? "" : $" of the {AnatomyAnswer(p.Anatomy)}";
        sb.Append(CultureInfo.InvariantCulture, $"{ModalityPhrase(m)}{region}");
        if (!p.HasLesion)
        {
            sb.Append(p.Anatomy == Anatomy.Tissue ? " shows benign tissue without tumor." : " shows no focal abnormality.");
            return sb.ToString();
        }
        var groups = p.Lesions.GroupBy(l => l.Kind).ToList();
        sb.Append(" shows ");
        for (int g = 0; g < groups.Count; g++)
        {
            var items = groups[g].ToList();
            if (g > 0) sb.Append(" and ");
            string shapes = items.Select(l => l.Shape).Distinct().Count() == 1 ? items[0].Shape.ToString().ToLowerInvariant() + " " : "";
            string noun = shapes + items[0].Kind;
            sb.Append(items.Count == 1 ? Article(noun) : Numbers[Math.Min(items.Count, 4)]);
            sb.Append(' ').Append(noun).Append(items.Count > 1 ? "s" : "");
            sb.Append(" in the ").Append(string.Join(" and the ", items.Select(l =>
                p.Anatomy is Anatomy.Abdomen or Anatomy.Tissue ? l.Region : $"{l.Side} {l.Region}").Distinct()));
        }
        var largest = p.Lesions.OrderByDescending(l => l.DiameterCm).First();
        if (p.Anatomy != Anatomy.Tissue)
            sb.Append(CultureInfo.InvariantCulture, $", the largest measuring {largest.DiameterCm:0.0} cm");
        sb.Append('.');
        return sb.ToString();
    }

    private static string Display(string modality) => modality switch { "ct" => "CT", "mri" => "MRI", "x-ray" => "X-ray", _ => "pathology" };

    private static string Article(string word) => word.Length > 0 && "aeiou".Contains(char.ToLowerInvariant(word[0])) || word is "mri" or "x-ray" ? "an" : "a";
}
