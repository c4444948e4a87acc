using MedVL.Formats;
using MedVL.Tensors;

namespace MedVL.Tests.Kernels;

/// <summary>The kernel fixtures ('&lt;f4' and '&lt;u2' arrays), read with the library's <see cref="Npy"/> reader.</summary>
internal static class MatMulTestNpy
{
    public static (T[] Data, int[] Shape) Read<T>(string path) where T : unmanaged
    {
        var a = Npy.Read(path);
        var expected = typeof(T) == typeof(float) ? DType.F32 : typeof(T) == typeof(ushort) ? DType.U16 : throw new NotSupportedException(typeof(T).Name);
        if (a.DType != expected) throw new InvalidDataException($"{path}: dtype {a.DType}, expected {expected}");
        var data = new T[a.Data.Length / System.Runtime.CompilerServices.Unsafe.SizeOf<T>()];
        Buffer.BlockCopy(a.Data, 0, data, 0, a.Data.Length);
        return (data, a.Shape);
    }

    public static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "kernels", name);
}
