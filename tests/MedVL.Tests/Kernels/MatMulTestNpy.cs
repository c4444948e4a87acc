using System.Text;
using System.Text.RegularExpressions;

namespace MedVL.Tests.Kernels;

/// <summary>
/// TEST-ONLY minimal .npy (v1/v2) reader for the kernel fixtures: little-endian '&lt;f4' and '&lt;u2' C-order arrays.
/// Not a general parser; the formats area owns the production reader.
/// </summary>
internal static class MatMulTestNpy
{
    public static (T[] Data, int[] Shape) Read<T>(string path) where T : unmanaged
    {
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || bytes[0] != 0x93 || Encoding.ASCII.GetString(bytes, 1, 5) != "NUMPY")
            throw new InvalidDataException($"{path}: not a .npy file");
        int major = bytes[6];
        int headerLen = major == 1 ? BitConverter.ToUInt16(bytes, 8) : BitConverter.ToInt32(bytes, 8);
        int headerStart = major == 1 ? 10 : 12;
        string header = Encoding.ASCII.GetString(bytes, headerStart, headerLen);
        string descr = Regex.Match(header, @"'descr':\s*'([^']+)'").Groups[1].Value;
        string expected = typeof(T) == typeof(float) ? "<f4" : typeof(T) == typeof(ushort) ? "<u2" : "?";
        if (descr != expected) throw new InvalidDataException($"{path}: descr {descr}, expected {expected}");
        if (header.Contains("'fortran_order': True")) throw new InvalidDataException($"{path}: fortran_order not supported");
        var shape = Regex.Match(header, @"'shape':\s*\(([^)]*)\)").Groups[1].Value
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
        long count = shape.Aggregate(1L, (a, b) => a * b);
        int offset = headerStart + headerLen;
        var data = new T[count];
        Buffer.BlockCopy(bytes, offset, data, 0, checked((int)count * System.Runtime.CompilerServices.Unsafe.SizeOf<T>()));
        return (data, shape);
    }

    public static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "kernels", name);
}
