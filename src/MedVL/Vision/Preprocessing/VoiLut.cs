namespace MedVL.Vision.Preprocessing;

/// <summary>DICOM VOI LUT functions (PS3.3 C.11.2.1.2): map rescaled values through a window to an output range.</summary>
public static class VoiLut
{
    /// <summary>
    /// The LINEAR VOI LUT function of PS3.3 C.11.2.1.2.1 for window centre <paramref name="center"/> and width
    /// <paramref name="width"/> (width &gt;= 1): values at or below c - 0.5 - (w-1)/2 map to yMin, above
    /// c - 0.5 + (w-1)/2 to yMax, else ((x - (c - 0.5)) / (w - 1) + 0.5) * (yMax - yMin) + yMin.
    /// </summary>
    public static double Linear(double x, double center, double width, double yMin, double yMax)
    {
        if (width < 1) throw new ArgumentOutOfRangeException(nameof(width), "Window Width must be >= 1 for the LINEAR function (PS3.3 C.11.2.1.2.1)");
        double lo = center - 0.5 - (width - 1) / 2, hi = center - 0.5 + (width - 1) / 2;
        if (x <= lo) return yMin;
        if (x > hi) return yMax;
        return ((x - (center - 0.5)) / (width - 1) + 0.5) * (yMax - yMin) + yMin;
    }

    /// <summary>Applies <see cref="Linear"/> to every value, writing into <paramref name="output"/>.</summary>
    public static void ApplyLinear(ReadOnlySpan<double> input, Span<double> output, double center, double width, double yMin, double yMax)
    {
        if (output.Length < input.Length) throw new ArgumentException("output is shorter than input");
        for (int i = 0; i < input.Length; i++) output[i] = Linear(input[i], center, width, yMin, yMax);
    }
}
