using System.Text.Json;

namespace MedVL.Tests.Formats;

/// <summary>Locates fixtures written by tools/formats/*.py and the expected values they recorded.</summary>
internal static class FormatFixtures
{
    public static string Dir => Path.Combine(AppContext.BaseDirectory, "fixtures", "formats");
    public static string File(params string[] parts) => Path.Combine([Dir, .. parts]);

    public sealed record Expected(string DType, int[] Shape, double[] Values);

    private static readonly Lazy<Dictionary<string, Dictionary<string, Expected>>> All = new(() => Load("expected.json"));
    private static readonly Lazy<Dictionary<string, Dictionary<string, Expected>>> Torch = new(() => Load("torch_expected.json"));

    public static Expected Get(string group, string name) => All.Value[group][name];
    public static IReadOnlyDictionary<string, Expected> Group(string group) => All.Value[group];
    public static IReadOnlyDictionary<string, Expected> TorchGroup(string group) => Torch.Value[group];

    private static Dictionary<string, Dictionary<string, Expected>> Load(string file)
    {
        using var doc = JsonDocument.Parse(System.IO.File.ReadAllBytes(File(file)));
        var r = new Dictionary<string, Dictionary<string, Expected>>();
        foreach (var g in doc.RootElement.EnumerateObject())
        {
            var d = r[g.Name] = new Dictionary<string, Expected>();
            foreach (var t in g.Value.EnumerateObject())
            {
                var shape = t.Value.GetProperty("shape").EnumerateArray().Select(x => x.GetInt32()).ToArray();
                var vals = t.Value.GetProperty("values").EnumerateArray().Select(x => x.ValueKind == JsonValueKind.String
                    ? x.GetString() switch { "NaN" => double.NaN, "Infinity" => double.PositiveInfinity, _ => double.NegativeInfinity }
                    : x.GetDouble()).ToArray();
                d[t.Name] = new Expected(t.Value.GetProperty("dtype").GetString()!, shape, vals);
            }
        }
        return r;
    }

    /// <summary>float32 equality to the reference, NaN-aware (the reference was computed in float64 from the same bits).</summary>
    public static void AssertValues(double[] expected, float[] actual, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: expected {expected.Length} values, got {actual.Length}");
        for (int i = 0; i < expected.Length; i++)
        {
            if (double.IsNaN(expected[i])) { Assert.True(float.IsNaN(actual[i]), $"{what}[{i}]: expected NaN, got {actual[i]}"); continue; }
            Assert.True((float)expected[i] == actual[i], $"{what}[{i}]: expected {(float)expected[i]}, got {actual[i]}");
        }
    }

    public static string TempDir()
    {
        // tmpfs when available: the fuzz tests create thousands of small files.
        string root = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
        string d = Path.Combine(root, "medvl-formats-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }
}
