using System.Buffers.Binary;

namespace MedVL.Vision.Codecs;

/// <summary>
/// JPEG decoder written from ITU-T T.81: baseline and extended sequential (SOF0/SOF1) and progressive (SOF2)
/// Huffman coding, 8-bit precision, 1 or 3 components with any sampling factors, restart intervals.
/// To reproduce what Pillow (libjpeg-turbo) returns it uses the same integer "islow" IDCT (jidctint.c:
/// 13-bit constants, 2 extra pass-1 bits, 10-bit range-limit wrap), the same "fancy" triangular chroma
/// upsampling (jdsample.c h2v1/h2v2/h1v2) and the same fixed-point YCbCr->RGB tables (jdcolor.c, 16-bit).
/// Colour space follows libjpeg's rule (jdapimin.c): JFIF -> YCbCr; else Adobe APP14 transform 0 -> RGB,
/// 1 -> YCbCr; else component ids 'R','G','B' -> RGB; otherwise YCbCr.
/// Lossless, hierarchical, arithmetic-coded, 12-bit and 4-component (CMYK/YCCK) JPEGs are rejected.
/// </summary>
public static class JpegDecoder
{
    public static bool IsJpeg(ReadOnlySpan<byte> d) => d.Length >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF;

    private static readonly int[] ZigZag =
    [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21,
        28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61,
        54, 47, 55, 62, 63,
    ];

    private sealed class Huffman
    {
        public readonly int[] MaxCode = new int[18];
        public readonly int[] ValPtr = new int[17];
        public readonly int[] MinCode = new int[17];
        public byte[] Values = [];
    }

    private sealed class Component
    {
        public int Id, H, V, Tq;
        public int BlocksPerLine, BlocksPerColumn;   // allocated (MCU-padded)
        public int UsedBlocksPerLine, UsedBlocksPerColumn; // ceil(downsampled size / 8)
        public int DownsampledWidth, DownsampledHeight;
        public short[] Coeffs = [];
        public ushort[]? Quant; // latched at the component's first scan (jdinput.c latch_quant_tables)
        public int DcPred;
        public Huffman? Dc, Ac;
    }

    private sealed class Frame
    {
        public bool Progressive;
        public int Width, Height, HMax, VMax, McusX, McusY;
        public Component[] Components = [];
    }

    private ref struct BitReader
    {
        private readonly ReadOnlySpan<byte> _d;
        public int Pos;
        private uint _bits;
        private int _count;
        public bool HitMarker;
        private readonly string _src;

        public BitReader(ReadOnlySpan<byte> d, int pos, string src) { _d = d; Pos = pos; _bits = 0; _count = 0; HitMarker = false; _src = src; }

        private void Fill()
        {
            while (_count <= 24)
            {
                uint b = 0;
                if (!HitMarker)
                {
                    if (Pos >= _d.Length) throw new InvalidImageException(_src, "JPEG: entropy-coded data ends before the image is complete (truncated file)");
                    b = _d[Pos];
                    if (b == 0xFF)
                    {
                        if (Pos + 1 >= _d.Length) throw new InvalidImageException(_src, "JPEG: entropy-coded data ends inside a marker (truncated file)");
                        byte nb = _d[Pos + 1];
                        if (nb == 0x00) Pos += 2;
                        else if (nb == 0xFF) { Pos++; continue; } // fill bytes before a marker
                        else { HitMarker = true; b = 0; } // leave Pos at the marker; feed zeros like libjpeg
                    }
                    else Pos++;
                }
                _bits |= b << (24 - _count);
                _count += 8;
            }
        }

        public int Bit()
        {
            if (_count == 0) Fill();
            int r = (int)(_bits >> 31);
            _bits <<= 1; _count--;
            return r;
        }

        public int Bits(int n)
        {
            if (n == 0) return 0;
            if (_count < n) Fill();
            int r = (int)(_bits >> (32 - n));
            _bits <<= n; _count -= n;
            return r;
        }

        /// <summary>Discards buffered bits (byte alignment before RSTn) and returns the position of the next marker.</summary>
        public void Reset()
        {
            _bits = 0; _count = 0; HitMarker = false;
        }

        public int Decode(Huffman h)
        {
            int code = Bit();
            int l = 1;
            while (code > h.MaxCode[l])
            {
                code = (code << 1) | Bit();
                if (++l > 16) throw new InvalidImageException(_src, "JPEG: invalid Huffman code in entropy-coded data");
            }
            int idx = h.ValPtr[l] + code - h.MinCode[l];
            if ((uint)idx >= (uint)h.Values.Length) throw new InvalidImageException(_src, "JPEG: Huffman code outside its table");
            return h.Values[idx];
        }

        /// <summary>EXTEND(RECEIVE(s)) of T.81 F.2.2.1.</summary>
        public int Receive(int s)
        {
            if (s == 0) return 0;
            if (s > 16) throw new InvalidImageException(_src, $"JPEG: coefficient magnitude category {s} > 16");
            int v = s <= 24 ? Bits(s) : 0;
            return v < (1 << (s - 1)) ? v - (1 << s) + 1 : v;
        }
    }

    public static DecodedImage Decode(byte[] data, string source = "<stream>", ImageLoadOptions? options = null)
    {
        options ??= new ImageLoadOptions();
        if (!IsJpeg(data)) throw new InvalidImageException(source, "JPEG: missing SOI marker (FF D8)");
        var quant = new ushort[4][];
        var dcTables = new Huffman?[4];
        var acTables = new Huffman?[4];
        Frame? frame = null;
        int restartInterval = 0;
        bool jfif = false, adobe = false;
        int adobeTransform = -1;
        int pos = 2;
        bool eoi = false;

        while (!eoi)
        {
            // Find the next marker (skipping fill bytes / stray data between segments).
            while (pos < data.Length && data[pos] != 0xFF) pos++;
            while (pos < data.Length && data[pos] == 0xFF) pos++;
            if (pos >= data.Length)
            {
                if (frame is not null && frame.Components.Length > 0 && frame.Components[0].Coeffs.Length > 0) break; // missing EOI: tolerated like libjpeg
                throw new InvalidImageException(source, "JPEG: file ends before any image data (missing SOF/SOS)");
            }
            byte marker = data[pos++];
            if (marker == 0xD9) { eoi = true; break; }
            if (marker is >= 0xD0 and <= 0xD7 or 0x01) continue; // stray RSTn/TEM: no length
            if (pos + 2 > data.Length) throw new InvalidImageException(source, $"JPEG: truncated marker 0xFF{marker:X2} header");
            int len = BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(pos));
            if (len < 2 || pos + len > data.Length)
                throw new InvalidImageException(source, $"JPEG: segment 0xFF{marker:X2} at byte {pos - 2} declares length {len} beyond the end of the file ({data.Length} bytes)");
            var seg = data.AsSpan(pos + 2, len - 2);
            int segEnd = pos + len;
            switch (marker)
            {
                case 0xC0: case 0xC1: case 0xC2:
                    if (frame is not null) throw new InvalidImageException(source, "JPEG: more than one SOF marker");
                    frame = ParseSof(seg, marker == 0xC2, source, options);
                    break;
                case 0xC3: case 0xC5: case 0xC6: case 0xC7: case 0xC9: case 0xCA: case 0xCB: case 0xCD: case 0xCE: case 0xCF:
                    throw new InvalidImageException(source, $"JPEG: SOF{marker - 0xC0} ({SofName(marker)}) is not supported; only baseline, extended sequential and progressive Huffman JPEG are");
                case 0xC4:
                    ParseDht(seg, dcTables, acTables, source);
                    break;
                case 0xDB:
                    ParseDqt(seg, quant, source);
                    break;
                case 0xDD:
                    if (seg.Length < 2) throw new InvalidImageException(source, "JPEG: DRI segment too short");
                    restartInterval = BinaryPrimitives.ReadUInt16BigEndian(seg);
                    break;
                case 0xE0:
                    if (seg.Length >= 5 && seg[..5].SequenceEqual("JFIF\0"u8)) jfif = true;
                    break;
                case 0xEE:
                    // Adobe APP14 (Adobe TN #5116 via libjpeg jdmarker.c): "Adobe", version, flags0, flags1, transform.
                    if (seg.Length >= 12 && seg[..5].SequenceEqual("Adobe"u8)) { adobe = true; adobeTransform = seg[11]; }
                    break;
                case 0xDA:
                    if (frame is null) throw new InvalidImageException(source, "JPEG: SOS before SOF");
                    segEnd = DecodeScan(data, pos, len, frame, dcTables, acTables, quant, restartInterval, source);
                    break;
                case 0xDC:
                    throw new InvalidImageException(source, "JPEG: DNL marker (height defined after the first scan) is not supported");
                default:
                    break; // APPn, COM, etc.
            }
            pos = segEnd;
        }

        if (frame is null) throw new InvalidImageException(source, "JPEG: no SOF marker");
        if (frame.Components[0].Quant is null) throw new InvalidImageException(source, "JPEG: no scan decoded (missing SOS)");

        int nc = frame.Components.Length;
        var planes = new byte[nc][];
        for (int c = 0; c < nc; c++)
        {
            var comp = frame.Components[c];
            if (comp.Quant is null) throw new InvalidImageException(source, $"JPEG: component {comp.Id} never appears in a scan");
            var plane = InverseDct(comp);
            planes[c] = Upsample(frame, comp, plane);
        }

        int w = frame.Width, hgt = frame.Height, n = w * hgt;
        bool rgbOut = nc == 3;
        var values = new double[(long)n * (rgbOut ? 3 : 1)];
        if (!rgbOut)
        {
            for (int i = 0; i < n; i++) values[i] = planes[0][i];
        }
        else
        {
            bool isRgb;
            if (jfif) isRgb = false;
            else if (adobe) isRgb = adobeTransform == 0;
            else isRgb = frame.Components[0].Id == 'R' && frame.Components[1].Id == 'G' && frame.Components[2].Id == 'B';
            if (isRgb)
                for (int i = 0; i < n; i++) { values[3 * i] = planes[0][i]; values[3 * i + 1] = planes[1][i]; values[3 * i + 2] = planes[2][i]; }
            else
                YccToRgb(planes[0], planes[1], planes[2], values, n);
        }
        return new DecodedImage(w, hgt, rgbOut ? 3 : 1, 8, ImageFormat.Jpeg, values,
            metadata: new ImageMetadata { PhotometricInterpretation = rgbOut ? "RGB" : "MONOCHROME2" });
    }

    private static string SofName(byte m) => m switch
    {
        0xC3 => "lossless", 0xC5 => "differential sequential", 0xC6 => "differential progressive", 0xC7 => "differential lossless",
        0xC9 => "arithmetic extended sequential", 0xCA => "arithmetic progressive", 0xCB => "arithmetic lossless",
        _ => "hierarchical/arithmetic",
    };

    private static Frame ParseSof(ReadOnlySpan<byte> s, bool progressive, string src, ImageLoadOptions options)
    {
        if (s.Length < 6) throw new InvalidImageException(src, "JPEG: SOF segment too short");
        int precision = s[0];
        if (precision != 8) throw new InvalidImageException(src, $"JPEG: sample precision {precision} bits is not supported (only 8)");
        int height = BinaryPrimitives.ReadUInt16BigEndian(s[1..]), width = BinaryPrimitives.ReadUInt16BigEndian(s[3..]);
        int nc = s[5];
        if (width == 0 || height == 0) throw new InvalidImageException(src, $"JPEG: frame size {width}x{height} (zero height needs DNL, unsupported)");
        if (nc is not (1 or 3)) throw new InvalidImageException(src, $"JPEG: {nc} components; only 1 (gray) and 3 (YCbCr/RGB) are supported (CMYK/YCCK are not)");
        if (s.Length < 6 + 3 * nc) throw new InvalidImageException(src, "JPEG: SOF segment shorter than its component list");
        if ((long)width * height * nc > options.MaxSamples) throw new InvalidImageException(src, $"JPEG: {width}x{height} image exceeds {options.MaxSamples} samples");
        var f = new Frame { Progressive = progressive, Width = width, Height = height, Components = new Component[nc] };
        for (int i = 0; i < nc; i++)
        {
            int h = s[7 + 3 * i] >> 4, v = s[7 + 3 * i] & 15, tq = s[8 + 3 * i];
            if (h is < 1 or > 4 || v is < 1 or > 4) throw new InvalidImageException(src, $"JPEG: component {i} sampling factors {h}x{v} outside 1..4");
            if (tq > 3) throw new InvalidImageException(src, $"JPEG: component {i} quantisation table {tq} > 3");
            f.Components[i] = new Component { Id = s[6 + 3 * i], H = h, V = v, Tq = tq };
        }
        f.HMax = f.Components.Max(c => c.H);
        f.VMax = f.Components.Max(c => c.V);
        f.McusX = (width + 8 * f.HMax - 1) / (8 * f.HMax);
        f.McusY = (height + 8 * f.VMax - 1) / (8 * f.VMax);
        foreach (var c in f.Components)
        {
            c.DownsampledWidth = (width * c.H + f.HMax - 1) / f.HMax;
            c.DownsampledHeight = (height * c.V + f.VMax - 1) / f.VMax;
            c.UsedBlocksPerLine = (c.DownsampledWidth + 7) / 8;
            c.UsedBlocksPerColumn = (c.DownsampledHeight + 7) / 8;
            c.BlocksPerLine = f.McusX * c.H;
            c.BlocksPerColumn = f.McusY * c.V;
            c.Coeffs = new short[(long)c.BlocksPerLine * c.BlocksPerColumn * 64];
        }
        return f;
    }

    private static void ParseDht(ReadOnlySpan<byte> s, Huffman?[] dc, Huffman?[] ac, string src)
    {
        int p = 0;
        while (p < s.Length)
        {
            if (p + 17 > s.Length) throw new InvalidImageException(src, "JPEG: DHT segment truncated");
            int tc = s[p] >> 4, th = s[p] & 15;
            if (tc > 1 || th > 3) throw new InvalidImageException(src, $"JPEG: DHT class {tc} / id {th} invalid");
            var counts = s.Slice(p + 1, 16);
            int total = 0;
            foreach (var c in counts) total += c;
            if (total > 256 || p + 17 + total > s.Length) throw new InvalidImageException(src, $"JPEG: DHT table with {total} symbols overruns its segment");
            var h = new Huffman { Values = s.Slice(p + 17, total).ToArray() };
            // T.81 Annex C / F.2.2.3: canonical codes, MAXCODE/MINCODE/VALPTR per length.
            int code = 0, k = 0;
            for (int l = 1; l <= 16; l++)
            {
                int n = counts[l - 1];
                if (n == 0) { h.MaxCode[l] = -1; }
                else
                {
                    h.ValPtr[l] = k; h.MinCode[l] = code;
                    code += n; k += n;
                    h.MaxCode[l] = code - 1;
                    if (code - 1 >= (1 << l)) throw new InvalidImageException(src, "JPEG: DHT table has more codes than its lengths allow");
                }
                code <<= 1;
            }
            h.MaxCode[17] = int.MaxValue;
            (tc == 0 ? dc : ac)[th] = h;
            p += 17 + total;
        }
    }

    private static void ParseDqt(ReadOnlySpan<byte> s, ushort[][] quant, string src)
    {
        int p = 0;
        while (p < s.Length)
        {
            int pq = s[p] >> 4, tq = s[p] & 15;
            if (pq > 1 || tq > 3) throw new InvalidImageException(src, $"JPEG: DQT precision {pq} / id {tq} invalid");
            int size = pq == 0 ? 64 : 128;
            if (p + 1 + size > s.Length) throw new InvalidImageException(src, "JPEG: DQT segment truncated");
            var q = new ushort[64];
            for (int i = 0; i < 64; i++)
                q[ZigZag[i]] = pq == 0 ? s[p + 1 + i] : BinaryPrimitives.ReadUInt16BigEndian(s[(p + 1 + 2 * i)..]);
            quant[tq] = q;
            p += 1 + size;
        }
    }

    /// <summary>Decodes one scan; returns the file position of the marker that ends it.</summary>
    private static int DecodeScan(byte[] data, int pos, int len, Frame f, Huffman?[] dcT, Huffman?[] acT, ushort[][] quant, int restartInterval, string src)
    {
        var s = data.AsSpan(pos + 2, len - 2);
        if (s.Length < 1) throw new InvalidImageException(src, "JPEG: SOS segment too short");
        int ns = s[0];
        if (ns is < 1 or > 4 || s.Length < 1 + 2 * ns + 3) throw new InvalidImageException(src, $"JPEG: SOS with {ns} components is malformed");
        var comps = new Component[ns];
        for (int i = 0; i < ns; i++)
        {
            int id = s[1 + 2 * i];
            var c = f.Components.FirstOrDefault(x => x.Id == id) ?? throw new InvalidImageException(src, $"JPEG: SOS refers to unknown component id {id}");
            int td = s[2 + 2 * i] >> 4, ta = s[2 + 2 * i] & 15;
            if (td > 3 || ta > 3) throw new InvalidImageException(src, "JPEG: SOS Huffman table id > 3");
            c.Dc = dcT[td]; c.Ac = acT[ta];
            if (c.Quant is null)
            {
                c.Quant = quant[c.Tq] ?? throw new InvalidImageException(src, $"JPEG: quantisation table {c.Tq} used by component {c.Id} is not defined");
                c.Quant = (ushort[])c.Quant.Clone();
            }
            comps[i] = c;
        }
        int ss = s[1 + 2 * ns], se = s[2 + 2 * ns], ah = s[3 + 2 * ns] >> 4, al = s[3 + 2 * ns] & 15;
        if (!f.Progressive) { ss = 0; se = 63; ah = 0; al = 0; }
        else
        {
            if (ss > 63 || se > 63 || ss > se || (ss == 0 && se != 0) || (ss > 0 && ns != 1) || al > 13)
                throw new InvalidImageException(src, $"JPEG: invalid progressive scan parameters Ss={ss} Se={se} Ah={ah} Al={al} Ns={ns}");
        }
        foreach (var c in comps)
        {
            if ((ss == 0 && ah == 0) && c.Dc is null) throw new InvalidImageException(src, $"JPEG: DC Huffman table for component {c.Id} not defined");
            if (se > 0 && c.Ac is null) throw new InvalidImageException(src, $"JPEG: AC Huffman table for component {c.Id} not defined");
            c.DcPred = 0;
        }

        var br = new BitReader(data, pos + len, src);
        int eobrun = 0;
        bool single = ns == 1;
        int mcusX = single ? comps[0].UsedBlocksPerLine : f.McusX;
        int mcusY = single ? comps[0].UsedBlocksPerColumn : f.McusY;
        long totalMcus = (long)mcusX * mcusY;
        for (long m = 0; m < totalMcus; m++)
        {
            if (restartInterval > 0 && m > 0 && m % restartInterval == 0)
            {
                // T.81 F.2.1.3 / G.1.2: byte-align, consume RSTn, reset DC predictions and EOBRUN.
                br.Reset();
                int p = br.Pos;
                while (p < data.Length && data[p] == 0xFF && p + 1 < data.Length && data[p + 1] == 0xFF) p++;
                if (p + 1 < data.Length && data[p] == 0xFF && data[p + 1] is >= 0xD0 and <= 0xD7) p += 2;
                else throw new InvalidImageException(src, $"JPEG: expected a restart marker after MCU {m} at byte {p}");
                br = new BitReader(data, p, src);
                foreach (var c in comps) c.DcPred = 0;
                eobrun = 0;
            }
            int mx = (int)(m % mcusX), my = (int)(m / mcusX);
            if (single)
            {
                var c = comps[0];
                DecodeBlock(ref br, c, (my * c.BlocksPerLine + mx) * 64, f.Progressive, ss, se, ah, al, ref eobrun);
            }
            else
            {
                foreach (var c in comps)
                    for (int v = 0; v < c.V; v++)
                        for (int h = 0; h < c.H; h++)
                        {
                            int by = my * c.V + v, bx = mx * c.H + h;
                            DecodeBlock(ref br, c, (by * c.BlocksPerLine + bx) * 64, f.Progressive, ss, se, ah, al, ref eobrun);
                        }
            }
        }
        return br.Pos;
    }

    private static void DecodeBlock(ref BitReader br, Component c, int off, bool progressive, int ss, int se, int ah, int al, ref int eobrun)
    {
        var blk = c.Coeffs.AsSpan(off, 64);
        if (!progressive)
        {
            int t = br.Decode(c.Dc!);
            c.DcPred += br.Receive(t);
            blk[0] = (short)c.DcPred;
            for (int k = 1; k < 64; k++)
            {
                int rs = br.Decode(c.Ac!);
                int r = rs >> 4, s = rs & 15;
                if (s == 0)
                {
                    if (r == 15) { k += 15; continue; }
                    break;
                }
                k += r;
                if (k > 63) break;
                blk[ZigZag[k]] = (short)br.Receive(s);
            }
            return;
        }
        if (ss == 0)
        {
            // DC scans (G.1.2.1).
            if (ah == 0)
            {
                int t = br.Decode(c.Dc!);
                c.DcPred += br.Receive(t);
                blk[0] = (short)(c.DcPred << al);
            }
            else if (br.Bit() != 0) blk[0] |= (short)(1 << al);
            return;
        }
        if (ah == 0)
        {
            // AC first scan (G.1.2.2).
            if (eobrun > 0) { eobrun--; return; }
            for (int k = ss; k <= se; k++)
            {
                int rs = br.Decode(c.Ac!);
                int r = rs >> 4, s = rs & 15;
                if (s == 0)
                {
                    if (r < 15) { eobrun = (1 << r) - 1 + (r > 0 ? br.Bits(r) : 0); break; }
                    k += 15;
                    continue;
                }
                k += r;
                if (k > 63) break;
                blk[ZigZag[k]] = (short)(br.Receive(s) * (1 << al));
            }
            return;
        }
        // AC refinement scan (G.1.2.3), following the structure of libjpeg's decode_mcu_AC_refine.
        int p1 = 1 << al, m1 = -1 << al;
        int kk = ss;
        if (eobrun == 0)
        {
            for (; kk <= se; kk++)
            {
                int rs = br.Decode(c.Ac!);
                int r = rs >> 4, s = rs & 15, val = 0;
                if (s != 0) val = br.Bit() != 0 ? p1 : m1;
                else if (r != 15)
                {
                    eobrun = (1 << r) + (r > 0 ? br.Bits(r) : 0);
                    break;
                }
                while (kk <= se)
                {
                    ref short coef = ref blk[ZigZag[kk]];
                    if (coef != 0)
                    {
                        if (br.Bit() != 0 && (coef & p1) == 0) coef = (short)(coef >= 0 ? coef + p1 : coef + m1);
                    }
                    else
                    {
                        if (--r < 0) break;
                    }
                    kk++;
                }
                if (val != 0 && kk <= 63) blk[ZigZag[kk]] = (short)val;
            }
        }
        if (eobrun > 0)
        {
            for (; kk <= se; kk++)
            {
                ref short coef = ref blk[ZigZag[kk]];
                if (coef != 0 && br.Bit() != 0 && (coef & p1) == 0) coef = (short)(coef >= 0 ? coef + p1 : coef + m1);
            }
            eobrun--;
        }
    }

    // jidctint.c constants (CONST_BITS = 13).
    private const int ConstBits = 13, Pass1Bits = 2;
    private const int F0298631336 = 2446, F0390180644 = 3196, F0541196100 = 4433, F0765366865 = 6270, F0899976223 = 7373,
        F1175875602 = 9633, F1501321110 = 12299, F1847759065 = 15137, F1961570560 = 16069, F2053119869 = 16819,
        F2562915447 = 20995, F3072711026 = 25172;

    private static byte RangeLimit(int x)
    {
        // IDCT_range_limit(cinfo)[x & RANGE_MASK] of jdmaster.c: 10-bit wrap, then clamp.
        int m = x & 1023;
        if (m < 128) return (byte)(m + 128);
        if (m < 512) return 255;
        if (m < 896) return 0;
        return (byte)(m - 896);
    }

    /// <summary>Dequantises and inverse-transforms every block into a plane of BlocksPerLine*8 x BlocksPerColumn*8.</summary>
    private static byte[] InverseDct(Component c)
    {
        int stride = c.BlocksPerLine * 8;
        var plane = new byte[(long)stride * c.BlocksPerColumn * 8];
        Span<int> ws = stackalloc int[64];
        var q = c.Quant!;
        for (int by = 0; by < c.UsedBlocksPerColumn; by++)
            for (int bx = 0; bx < c.UsedBlocksPerLine; bx++)
            {
                var blk = c.Coeffs.AsSpan((by * c.BlocksPerLine + bx) * 64, 64);
                IdctIslow(blk, q, ws, plane.AsSpan(by * 8 * stride + bx * 8), stride);
            }
        return plane;
    }

    private static void IdctIslow(ReadOnlySpan<short> inp, ushort[] q, Span<int> ws, Span<byte> outp, int stride)
    {
        // Pass 1: columns, results scaled up by 2^PASS1_BITS.
        for (int col = 0; col < 8; col++)
        {
            if (inp[8 + col] == 0 && inp[16 + col] == 0 && inp[24 + col] == 0 && inp[32 + col] == 0 &&
                inp[40 + col] == 0 && inp[48 + col] == 0 && inp[56 + col] == 0)
            {
                int dc = (inp[col] * q[col]) << Pass1Bits;
                for (int r = 0; r < 8; r++) ws[r * 8 + col] = dc;
                continue;
            }
            long z2 = inp[16 + col] * q[16 + col], z3 = inp[48 + col] * q[48 + col];
            long z1 = (z2 + z3) * F0541196100;
            long tmp2 = z1 + z3 * -F1847759065, tmp3 = z1 + z2 * F0765366865;
            z2 = inp[col] * q[col]; z3 = inp[32 + col] * q[32 + col];
            long tmp0 = (z2 + z3) << ConstBits, tmp1 = (z2 - z3) << ConstBits;
            long tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
            tmp0 = inp[56 + col] * q[56 + col]; tmp1 = inp[40 + col] * q[40 + col];
            tmp2 = inp[24 + col] * q[24 + col]; tmp3 = inp[8 + col] * q[8 + col];
            Odd(ref tmp0, ref tmp1, ref tmp2, ref tmp3);
            const int sh = ConstBits - Pass1Bits;
            ws[col] = (int)((tmp10 + tmp3 + (1L << (sh - 1))) >> sh);
            ws[56 + col] = (int)((tmp10 - tmp3 + (1L << (sh - 1))) >> sh);
            ws[8 + col] = (int)((tmp11 + tmp2 + (1L << (sh - 1))) >> sh);
            ws[48 + col] = (int)((tmp11 - tmp2 + (1L << (sh - 1))) >> sh);
            ws[16 + col] = (int)((tmp12 + tmp1 + (1L << (sh - 1))) >> sh);
            ws[40 + col] = (int)((tmp12 - tmp1 + (1L << (sh - 1))) >> sh);
            ws[24 + col] = (int)((tmp13 + tmp0 + (1L << (sh - 1))) >> sh);
            ws[32 + col] = (int)((tmp13 - tmp0 + (1L << (sh - 1))) >> sh);
        }
        // Pass 2: rows; remove PASS1_BITS and the 8x scale (3 bits), add the level shift via the range limit.
        for (int row = 0; row < 8; row++)
        {
            var w = ws.Slice(row * 8, 8);
            var o = outp.Slice(row * stride, 8);
            const int sh = ConstBits + Pass1Bits + 3;
            if (w[1] == 0 && w[2] == 0 && w[3] == 0 && w[4] == 0 && w[5] == 0 && w[6] == 0 && w[7] == 0)
            {
                byte v = RangeLimit((w[0] + (1 << (Pass1Bits + 2))) >> (Pass1Bits + 3));
                o.Fill(v);
                continue;
            }
            long z2 = w[2], z3 = w[6];
            long z1 = (z2 + z3) * F0541196100;
            long tmp2 = z1 + z3 * -F1847759065, tmp3 = z1 + z2 * F0765366865;
            z2 = w[0] + (1L << (Pass1Bits + 2)); z3 = w[4];
            long tmp0 = (z2 + z3) << ConstBits, tmp1 = (z2 - z3) << ConstBits;
            long tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
            tmp0 = w[7]; tmp1 = w[5]; tmp2 = w[3]; tmp3 = w[1];
            Odd(ref tmp0, ref tmp1, ref tmp2, ref tmp3);
            o[0] = RangeLimit((int)((tmp10 + tmp3) >> sh));
            o[7] = RangeLimit((int)((tmp10 - tmp3) >> sh));
            o[1] = RangeLimit((int)((tmp11 + tmp2) >> sh));
            o[6] = RangeLimit((int)((tmp11 - tmp2) >> sh));
            o[2] = RangeLimit((int)((tmp12 + tmp1) >> sh));
            o[5] = RangeLimit((int)((tmp12 - tmp1) >> sh));
            o[3] = RangeLimit((int)((tmp13 + tmp0) >> sh));
            o[4] = RangeLimit((int)((tmp13 - tmp0) >> sh));
        }
    }

    /// <summary>Odd part of the islow IDCT (jidctint.c), in place on tmp0..tmp3 = in[7], in[5], in[3], in[1].</summary>
    private static void Odd(ref long tmp0, ref long tmp1, ref long tmp2, ref long tmp3)
    {
        long z1 = tmp0 + tmp3, z2 = tmp1 + tmp2, z3 = tmp0 + tmp2, z4 = tmp1 + tmp3;
        long z5 = (z3 + z4) * F1175875602;
        tmp0 *= F0298631336; tmp1 *= F2053119869; tmp2 *= F3072711026; tmp3 *= F1501321110;
        z1 *= -F0899976223; z2 *= -F2562915447; z3 *= -F1961570560; z4 *= -F0390180644;
        z3 += z5; z4 += z5;
        tmp0 += z1 + z3; tmp1 += z2 + z4; tmp2 += z2 + z3; tmp3 += z1 + z4;
    }

    /// <summary>
    /// Upsamples a component plane to the full image size (Width x Height) like libjpeg-turbo's jdsample.c with
    /// do_fancy_upsampling: triangle filters for h2v1, h1v2 and h2v2, replication otherwise. Rows/columns beyond
    /// the component's downsampled size are edge-replicated, as jdmainct.c's context rows do.
    /// </summary>
    private static byte[] Upsample(Frame f, Component c, byte[] plane)
    {
        int stride = c.BlocksPerLine * 8;
        int dw = c.DownsampledWidth, dh = c.DownsampledHeight;
        int hs = f.HMax / c.H, vs = f.VMax / c.V;
        int ow = f.Width, oh = f.Height;
        var o = new byte[(long)ow * oh];
        if (f.HMax % c.H != 0 || f.VMax % c.V != 0)
            throw new InvalidImageException("<jpeg>", "JPEG: fractional sampling ratios are not supported");
        int Row(int r) => Math.Clamp(r, 0, dh - 1) * stride;

        if (hs == 1 && vs == 1)
        {
            for (int y = 0; y < oh; y++) plane.AsSpan(y * stride, ow).CopyTo(o.AsSpan(y * ow));
            return o;
        }
        var line = new byte[dw * 2 + 2];
        if (hs == 2 && vs == 1 && dw > 2)
        {
            for (int y = 0; y < oh; y++)
            {
                var inp = plane.AsSpan(Row(y), dw);
                H2V1(inp, line);
                line.AsSpan(0, ow).CopyTo(o.AsSpan(y * ow));
            }
            return o;
        }
        if (hs == 1 && vs == 2)
        {
            for (int y = 0; y < oh; y++)
            {
                int r = y / 2;
                bool upper = (y & 1) == 0;
                var in0 = plane.AsSpan(Row(r), dw);
                var in1 = plane.AsSpan(Row(upper ? r - 1 : r + 1), dw);
                int bias = upper ? 1 : 2;
                for (int x = 0; x < ow; x++) o[y * ow + x] = (byte)((3 * in0[x] + in1[x] + bias) >> 2);
            }
            return o;
        }
        if (hs == 2 && vs == 2 && dw > 2)
        {
            var colsum = new int[dw];
            for (int y = 0; y < oh; y++)
            {
                int r = y / 2;
                bool upper = (y & 1) == 0;
                var in0 = plane.AsSpan(Row(r), dw);
                var in1 = plane.AsSpan(Row(upper ? r - 1 : r + 1), dw);
                for (int x = 0; x < dw; x++) colsum[x] = in0[x] * 3 + in1[x];
                line[0] = (byte)((colsum[0] * 4 + 8) >> 4);
                line[1] = (byte)((colsum[0] * 3 + colsum[1] + 7) >> 4);
                for (int x = 1; x < dw - 1; x++)
                {
                    line[2 * x] = (byte)((colsum[x] * 3 + colsum[x - 1] + 8) >> 4);
                    line[2 * x + 1] = (byte)((colsum[x] * 3 + colsum[x + 1] + 7) >> 4);
                }
                line[2 * dw - 2] = (byte)((colsum[dw - 1] * 3 + colsum[dw - 2] + 8) >> 4);
                line[2 * dw - 1] = (byte)((colsum[dw - 1] * 4 + 7) >> 4);
                line.AsSpan(0, ow).CopyTo(o.AsSpan(y * ow));
            }
            return o;
        }
        // Box replication (jdsample.c int_upsample / h2v1_upsample / h2v2_upsample).
        for (int y = 0; y < oh; y++)
        {
            int src = (y / vs) * stride;
            for (int x = 0; x < ow; x++) o[y * ow + x] = plane[src + x / hs];
        }
        return o;
    }

    private static void H2V1(ReadOnlySpan<byte> inp, byte[] o)
    {
        int n = inp.Length;
        o[0] = inp[0];
        o[1] = (byte)((inp[0] * 3 + inp[1] + 2) >> 2);
        for (int i = 1; i < n - 1; i++)
        {
            int v = inp[i] * 3;
            o[2 * i] = (byte)((v + inp[i - 1] + 1) >> 2);
            o[2 * i + 1] = (byte)((v + inp[i + 1] + 2) >> 2);
        }
        o[2 * n - 2] = (byte)((inp[n - 1] * 3 + inp[n - 2] + 1) >> 2);
        o[2 * n - 1] = inp[n - 1];
    }

    // jdcolor.c build_ycc_rgb_table: SCALEBITS = 16, FIX(x) = (int)(x * 65536 + 0.5).
    private static readonly int[] CrR = new int[256], CbB = new int[256], CrG = new int[256], CbG = new int[256];

    static JpegDecoder()
    {
        const int half = 1 << 15;
        static int Fix(double x) => (int)(x * 65536 + 0.5);
        for (int i = 0; i < 256; i++)
        {
            int x = i - 128;
            CrR[i] = (Fix(1.40200) * x + half) >> 16;
            CbB[i] = (Fix(1.77200) * x + half) >> 16;
            CrG[i] = -Fix(0.71414) * x;
            CbG[i] = -Fix(0.34414) * x + half;
        }
    }

    private static void YccToRgb(byte[] y, byte[] cb, byte[] cr, double[] outv, int n)
    {
        for (int i = 0; i < n; i++)
        {
            int yy = y[i], b = cb[i], r = cr[i];
            outv[3 * i] = Math.Clamp(yy + CrR[r], 0, 255);
            outv[3 * i + 1] = Math.Clamp(yy + ((CbG[b] + CrG[r]) >> 16), 0, 255);
            outv[3 * i + 2] = Math.Clamp(yy + CbB[b], 0, 255);
        }
    }
}
