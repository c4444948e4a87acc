using System.Text;

namespace MedVL.Text;

/// <summary>Unicode normalisation forms, implemented here because .NET's <c>string.Normalize</c> does nothing under InvariantGlobalization.</summary>
public enum UnicodeNormalForm { NFC, NFD, NFKC, NFKD }

/// <summary>
/// NFC/NFD/NFKC/NFKD per UAX #15 (decompose, canonical ordering, canonical composition) over tables generated from
/// Python's <c>unicodedata</c> (tools/text/gen_unicode_normalization.py). Hangul syllables are handled algorithmically.
/// </summary>
public static class UnicodeNormalization
{
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7, LCount = 19, VCount = 21, TCount = 28,
        NCount = VCount * TCount, SCount = LCount * NCount;

    private static readonly Dictionary<int, int[]> CanonicalMap = Load(UnicodeNormalizationData.Canonical);
    private static readonly Dictionary<int, int[]> CompatMap = Load(UnicodeNormalizationData.Compatibility);
    private static readonly Dictionary<int, byte> Ccc = LoadCcc();
    private static readonly Dictionary<long, int> Compose = LoadCompose();

    private static Dictionary<int, int[]> Load(ReadOnlySpan<int> data)
    {
        var d = new Dictionary<int, int[]>();
        for (int i = 0; i < data.Length;)
        {
            int cp = data[i], n = data[i + 1];
            d[cp] = data.Slice(i + 2, n).ToArray();
            i += 2 + n;
        }
        return d;
    }

    private static Dictionary<int, byte> LoadCcc()
    {
        var data = UnicodeNormalizationData.CombiningClass;
        var d = new Dictionary<int, byte>(data.Length / 2);
        for (int i = 0; i < data.Length; i += 2) d[data[i]] = (byte)data[i + 1];
        return d;
    }

    private static Dictionary<long, int> LoadCompose()
    {
        var data = UnicodeNormalizationData.Compositions;
        var d = new Dictionary<long, int>(data.Length / 3);
        for (int i = 0; i < data.Length; i += 3) d[((long)data[i] << 21) | (uint)data[i + 1]] = data[i + 2];
        return d;
    }

    // Code points that may change under NFC (or, for the second set, NFKC) or affect a neighbour: decomposable, combining,
    // or the second half of a composition (incl. Hangul V/T jamo). Text without any of them is already normalised.
    private static readonly HashSet<int> NfcSensitive = BuildSensitive(compat: false);
    private static readonly HashSet<int> NfkcSensitive = BuildSensitive(compat: true);

    private static HashSet<int> BuildSensitive(bool compat)
    {
        // Composed forms are stable under NFC/NFKC: only a decomposable char that does not recompose to itself
        // (singletons, composition exclusions) is sensitive; this is the NFC_QC != Yes set of UAX #15.
        var set = new HashSet<int>(Ccc.Keys);
        var comp = UnicodeNormalizationData.Compositions;
        for (int i = 0; i < comp.Length; i += 3) set.Add(comp[i + 1]);
        for (int v = VBase; v < VBase + VCount; v++) set.Add(v);
        for (int t = TBase + 1; t < TBase + TCount; t++) set.Add(t);
        foreach (var (cp, d) in CanonicalMap)
        {
            var list = new List<int>(d);
            ComposeInPlace(list);
            if (list.Count != 1 || list[0] != cp) set.Add(cp);
        }
        if (compat) set.UnionWith(CompatMap.Keys);
        return set;
    }

    private static bool IsStable(string text, UnicodeNormalForm form)
    {
        if (form is UnicodeNormalForm.NFD or UnicodeNormalForm.NFKD)
        {
            foreach (var r in text.EnumerateRunes())
            {
                int cp = r.Value;
                if (cp < 0xA0) continue;
                if (Ccc.ContainsKey(cp) || CanonicalMap.ContainsKey(cp) || (uint)(cp - SBase) < SCount) return false;
                if (form == UnicodeNormalForm.NFKD && CompatMap.ContainsKey(cp)) return false;
            }
            return true;
        }
        var sensitive = form == UnicodeNormalForm.NFC ? NfcSensitive : NfkcSensitive;
        foreach (var r in text.EnumerateRunes())
            if (r.Value >= 0xA0 && sensitive.Contains(r.Value)) return false;
        return true;
    }

    private static int CombiningClass(int cp) => cp < 0x300 ? 0 : Ccc.TryGetValue(cp, out byte c) ? c : 0;

    public static string Normalize(string text, UnicodeNormalForm form)
    {
        ArgumentNullException.ThrowIfNull(text);
        // Fast path: text below these bounds is unchanged (NFC: U+0300, the first combining mark; NFD: U+00C0, the first
        // decomposable letter; NFKC/NFKD: U+00A0, the first compatibility character).
        int threshold = form switch { UnicodeNormalForm.NFC => 0x300, UnicodeNormalForm.NFD => 0xC0, _ => 0xA0 };
        bool simple = true;
        foreach (char c in text) if (c >= threshold) { simple = false; break; }
        if (simple || IsStable(text, form)) return text;

        bool compat = form is UnicodeNormalForm.NFKC or UnicodeNormalForm.NFKD;
        var cps = new List<int>(text.Length + 8);
        foreach (var rune in text.EnumerateRunes()) Decompose(rune.Value, compat, cps);
        // Canonical ordering: stable sort of each run of non-starters by combining class.
        for (int i = 1; i < cps.Count; i++)
        {
            int cc = CombiningClass(cps[i]);
            if (cc == 0) continue;
            int j = i;
            while (j > 0 && CombiningClass(cps[j - 1]) > cc) { (cps[j - 1], cps[j]) = (cps[j], cps[j - 1]); j--; }
        }
        if (form is UnicodeNormalForm.NFC or UnicodeNormalForm.NFKC) ComposeInPlace(cps);
        var sb = new StringBuilder(cps.Count + 8);
        foreach (int cp in cps) sb.Append(char.ConvertFromUtf32(cp));
        return sb.ToString();
    }

    private static void Decompose(int cp, bool compat, List<int> output)
    {
        int s = cp - SBase;
        if ((uint)s < SCount)
        {
            output.Add(LBase + s / NCount);
            output.Add(VBase + s % NCount / TCount);
            if (s % TCount != 0) output.Add(TBase + s % TCount);
            return;
        }
        if (compat && CompatMap.TryGetValue(cp, out var k)) { output.AddRange(k); return; }
        if (CanonicalMap.TryGetValue(cp, out var d)) { output.AddRange(d); return; }
        output.Add(cp);
    }

    private static int ComposePair(int a, int b)
    {
        int l = a - LBase, v = b - VBase;
        if ((uint)l < LCount && (uint)v < VCount) return SBase + (l * VCount + v) * TCount;
        int s = a - SBase, t = b - TBase;
        if ((uint)s < SCount && s % TCount == 0 && t > 0 && t < TCount) return a + t;
        return Compose.TryGetValue(((long)a << 21) | (uint)b, out int c) ? c : -1;
    }

    private static void ComposeInPlace(List<int> cps)
    {
        var result = new List<int>(cps.Count);
        int starter = -1, lastClass = -1; // lastClass -1: nothing between the starter and the current char
        foreach (int c in cps)
        {
            int cc = CombiningClass(c);
            if (starter >= 0 && (lastClass == -1 || lastClass < cc))
            {
                int composite = ComposePair(result[starter], c);
                if (composite >= 0) { result[starter] = composite; continue; }
            }
            if (cc == 0) { starter = result.Count; lastClass = -1; }
            else lastClass = cc;
            result.Add(c);
        }
        cps.Clear();
        cps.AddRange(result);
    }
}
