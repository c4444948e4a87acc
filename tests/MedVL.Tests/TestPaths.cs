namespace MedVL.Tests;

/// <summary>Where committed fixture files land in the test output (tests/fixtures/** is copied as fixtures/**).</summary>
public static class TestPaths
{
    public static string Fixtures => Path.Combine(AppContext.BaseDirectory, "fixtures");
    public static string Fixture(params string[] parts) => Path.Combine([Fixtures, .. parts]);
}
