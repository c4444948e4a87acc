namespace MedVL.Text;

/// <summary>
/// GPT-2's reversible byte ↔ printable-char table (HF <c>bytes_char()</c>, pre_tokenizers/byte_level.rs): bytes
/// '!'..'~', 0xA1..0xAC and 0xAE..0xFF map to themselves, the remaining 68 bytes to U+0100 + n in byte order.
/// </summary>
internal static class ByteLevelAlphabet
{
    public static readonly char[] ByteToChar = Build();
    private static readonly short[] CharToByteTable = BuildReverse();

    private static char[] Build()
    {
        var table = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            bool self = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            table[b] = self ? (char)b : (char)(256 + n++);
        }
        return table;
    }

    private static short[] BuildReverse()
    {
        var rev = new short[512];
        Array.Fill(rev, (short)-1);
        for (int b = 0; b < 256; b++) rev[ByteToChar[b]] = (short)b;
        return rev;
    }

    /// <summary>The byte a char stands for, or -1 if the char is not in the alphabet.</summary>
    public static int CharToByte(char c) => c < 512 ? CharToByteTable[c] : -1;

    public static string Encode(string text)
    {
        int max = System.Text.Encoding.UTF8.GetMaxByteCount(text.Length);
        byte[]? rented = null;
        Span<byte> buf = max <= 1024 ? stackalloc byte[max] : (rented = System.Buffers.ArrayPool<byte>.Shared.Rent(max));
        try
        {
            int n = System.Text.Encoding.UTF8.GetBytes(text, buf);
            Span<char> chars = n <= 1024 ? stackalloc char[n] : new char[n];
            for (int i = 0; i < n; i++) chars[i] = ByteToChar[buf[i]];
            return new string(chars);
        }
        finally { if (rented != null) System.Buffers.ArrayPool<byte>.Shared.Return(rented); }
    }
}
