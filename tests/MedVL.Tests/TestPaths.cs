namespace MedVL.Tests;

/// <summary>Where committed fixture files land in the test output (tests/fixtures/** is copied as fixtures/**).</summary>
public static class TestPaths
{
    public static string Fixtures => Path.Combine(AppContext.BaseDirectory, "fixtures");
    public static string Fixture(params string[] parts) => Path.Combine([Fixtures, .. parts]);

    /// <summary>The checkout's root (the folder holding MedVL.slnx), found upwards from the test binaries.</summary>
    public static string RepoRoot
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "MedVL.slnx"))) return d.FullName;
            throw new DirectoryNotFoundException($"no MedVL.slnx above {AppContext.BaseDirectory}");
        }
    }
}
