namespace MedVL.Tensors;

/// <summary>
/// Element types of stored tensors. Compute is float32; other float types are storage formats
/// converted on load into registers (bf16/f16 weights) or on demand. Names follow safetensors' dtype strings.
/// Block-quantized types (Q8_0, Q4_0, Q4_K in ggml's layouts) will be added here with a block size
/// and block byte count, so every size computation goes through <see cref="DTypeInfo"/>.
/// </summary>
public enum DType : byte
{
    F32,
    F16,
    BF16,
    F64,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    Bool,
    F8_E4M3,
    F8_E5M2,
}

public static class DTypeInfo
{
    /// <summary>Bytes per element (for a future block type: bytes per block).</summary>
    public static int SizeOf(this DType t) => t switch
    {
        DType.F32 or DType.I32 or DType.U32 => 4,
        DType.F16 or DType.BF16 or DType.I16 or DType.U16 => 2,
        DType.F64 or DType.I64 or DType.U64 => 8,
        DType.I8 or DType.U8 or DType.Bool or DType.F8_E4M3 or DType.F8_E5M2 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "unknown dtype"),
    };

    public static bool IsFloatingPoint(this DType t) =>
        t is DType.F32 or DType.F16 or DType.BF16 or DType.F64 or DType.F8_E4M3 or DType.F8_E5M2;

    /// <summary>The dtype string used by safetensors headers ("F32", "BF16", "I64", "BOOL", ...).</summary>
    public static string SafetensorsName(this DType t) => t switch
    {
        DType.Bool => "BOOL",
        _ => t.ToString(),
    };

    /// <summary>Exact dtype names only: no numeric strings or comma lists (which Enum.TryParse would accept).</summary>
    public static bool TryParseSafetensorsName(string s, out DType t)
    {
        foreach (var d in Enum.GetValues<DType>())
            if (d.SafetensorsName() == s) { t = d; return true; }
        t = default;
        return false;
    }
}
