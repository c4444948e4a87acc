#!/usr/bin/python3
"""Writes tests/fixtures/vision/{files,expected}: real input files and the pixels the real tools decode.

Run with Debian's interpreter (needs python3-pil, python3-pydicom, python3-nibabel, python3-skimage, numpy,
and cjpeg from libjpeg-turbo-progs):   /usr/bin/python3 tools/vision/make_image_fixtures.py
Expected arrays are .npy files named after the input file; tests read them with TestNpy.
"""
import gzip, io, json, os, shutil, struct, subprocess, sys, zlib
import numpy as np
from PIL import Image
import pydicom, nibabel, skimage
from pydicom.pixel_data_handlers.util import apply_modality_lut, apply_voi_lut

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "vision")
FILES = os.path.join(OUT, "files")
EXP = os.path.join(OUT, "expected")
for d in (FILES, EXP):
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
manifest = {"png": [], "dicom": [], "nifti": [], "jpeg": [], "clip": []}
origins = []

def save(name, arr):
    """Saves a gzip-compressed .npy (tests read it with TestNpy), narrowing integer-valued data to the smallest int type."""
    arr = np.asarray(arr)
    if arr.dtype.kind == "f" and arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        lo, hi = arr.min(), arr.max()
        for t in (np.uint8, np.int16, np.uint16, np.int32):
            if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max:
                arr = arr.astype(t); break
    with gzip.GzipFile(os.path.join(EXP, name + ".npy.gz"), "wb", compresslevel=9, mtime=0) as fh:
        np.save(fh, np.ascontiguousarray(arr))

# ---------------------------------------------------------------- PNG: pure-python writer covering every case
def png_chunk(t, body):
    return struct.pack(">I", len(body)) + t + body + struct.pack(">I", zlib.crc32(t + body) & 0xFFFFFFFF)

def pack_row(row, bd, ch):
    """row: (W, ch) raw sample ints -> bytes (PNG spec 7.2)."""
    flat = row.reshape(-1)
    if bd == 8: return bytes(flat.astype(np.uint8))
    if bd == 16: return flat.astype(">u2").tobytes()
    out = bytearray((len(flat) * bd + 7) // 8)
    for i, v in enumerate(flat):
        bit = i * bd
        out[bit // 8] |= int(v) << (8 - bd - bit % 8)
    return bytes(out)

def paeth(a, b, c):
    p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)

def filter_row(ft, cur, prev, bpp):
    out = bytearray(len(cur))
    for i in range(len(cur)):
        a = cur[i - bpp] if i >= bpp else 0
        b = prev[i] if prev is not None else 0
        c = prev[i - bpp] if prev is not None and i >= bpp else 0
        pred = [0, a, b, (a + b) >> 1, paeth(a, b, c)][ft]
        out[i] = (cur[i] - pred) & 0xFF
    return bytes(out)

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]

def write_png(path, arr, bd, ct, palette=None, trns=None, interlace=0):
    arr = arr if arr.ndim == 3 else arr[:, :, None]
    h, w, ch = arr.shape
    bpp = max(1, ch * bd // 8)
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    fcount = 0
    for (x0, y0, dx, dy) in passes:
        sub = arr[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0: continue
        prev = None
        for r in range(sub.shape[0]):
            cur = pack_row(sub[r], bd, ch)
            ft = fcount % 5; fcount += 1      # cycle through all five filter types
            raw += bytes([ft]) + filter_row(ft, cur, prev, bpp)
            prev = cur
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bd, ct, 0, 0, interlace))
    if palette is not None: data += png_chunk(b"PLTE", bytes(palette.reshape(-1).astype(np.uint8)))
    if trns is not None: data += png_chunk(b"tRNS", trns)
    data += png_chunk(b"tEXt", b"Comment\x00MedVL test image")
    comp = zlib.compress(bytes(raw), 9)
    # split IDAT in two chunks to exercise concatenation
    data += png_chunk(b"IDAT", comp[: len(comp) // 2]) + png_chunk(b"IDAT", comp[len(comp) // 2:])
    data += png_chunk(b"IEND", b"")
    open(path, "wb").write(data)

rng = np.random.default_rng(1234)
def smooth(h, w, maxv, seed):
    r = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = (np.sin(x / 5.0 + seed) + np.cos(y / 7.0)) * 0.25 + 0.5
    noise = r.random((h, w)) * 0.3
    return np.clip(((base * 0.7 + noise) * maxv).round(), 0, maxv).astype(np.int64)

cases = []
for il in (0, 1):
    for (w, h) in ((37, 23), (3, 2)):
        for bd in (1, 2, 4, 8, 16): cases.append(("gray", 0, bd, il, w, h))
        for bd in (8, 16): cases += [("rgb", 2, bd, il, w, h), ("ga", 4, bd, il, w, h), ("rgba", 6, bd, il, w, h)]
        for bd in (1, 2, 4, 8): cases.append(("pal", 3, bd, il, w, h))
cases += [("graytrns", 0, 8, 0, 37, 23), ("graytrns", 0, 16, 1, 37, 23), ("rgbtrns", 2, 8, 1, 37, 23), ("paltrns", 3, 8, 0, 37, 23), ("paltrns", 3, 4, 1, 37, 23)]
for (kind, ct, bd, il, w, h) in cases:
    name = f"png_{kind}_{bd}bit_{'adam7' if il else 'plain'}_{w}x{h}.png"
    maxv = (1 << bd) - 1
    chn = {0: 1, 2: 3, 4: 2, 6: 4, 3: 1}[ct]
    arr = np.stack([smooth(h, w, maxv, s) for s in range(chn)], axis=2)
    palette = trns = None
    if ct == 3:
        n = 1 << bd
        palette = rng.integers(0, 256, (n, 3))
        expected = palette[arr[:, :, 0]]
        if kind == "paltrns":
            alpha = rng.integers(0, 256, n // 2 + 1)  # shorter than PLTE: remaining entries opaque
            trns = bytes(alpha.astype(np.uint8))
            a = np.full(n, 255); a[: len(alpha)] = alpha
            expected = np.concatenate([expected, a[arr[:, :, 0]][:, :, None]], axis=2)
    elif kind == "graytrns":
        key = int(arr[0, 0, 0]); trns = struct.pack(">H", key)
        expected = np.concatenate([arr, np.where(arr == key, 0, maxv)], axis=2)
    elif kind == "rgbtrns":
        key = arr[1, 1]; trns = struct.pack(">HHH", *[int(k) for k in key])
        expected = np.concatenate([arr, np.where((arr == key).all(axis=2, keepdims=True), 0, maxv)], axis=2)
    else:
        expected = arr
    write_png(os.path.join(FILES, name), arr, bd, ct, palette, trns, il)
    # Independent check with Pillow where it decodes to the same representation (8-bit, no key colour).
    if bd == 8 and kind in ("gray", "rgb", "rgba", "ga", "pal"):
        im = Image.open(os.path.join(FILES, name))
        p = np.array(im.convert({1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[expected.shape[2]]))
        assert np.array_equal(p.reshape(expected.shape), expected), name
    save(name, expected.astype(np.uint16))
    manifest["png"].append(name)

# PNGs written by Pillow (a real encoder) and real PNGs from scikit-image; expected = Pillow's decode.
skd = os.path.join(os.path.dirname(skimage.__file__), "data")
for f in ("foo3x5x4indexed.png", "block.png", "checker_bilevel.png", "palette_gray.png", "palette_color.png",
          "green_palette.png", "phantom.png", "microaneurysms.png", "horse.png", "coins.png"):
    shutil.copy(os.path.join(skd, f), os.path.join(FILES, "skimage_" + f))
    origins.append(f"skimage_{f}: python3-skimage 0.19.3-8, /usr/lib/python3/dist-packages/skimage/data/{f}")
    im = Image.open(os.path.join(FILES, "skimage_" + f))
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode == "1":
        im = im.convert("L")  # 1-bit: our decoder gives 0/1 -> compare scaled
    a = np.array(im)
    if mode == "1": a = a // 255
    if a.ndim == 2: a = a[:, :, None]
    save("skimage_" + f, a.astype(np.uint16))
    manifest["png"].append("skimage_" + f)
a16 = smooth(29, 31, 65535, 7).astype(np.uint16)
Image.fromarray(a16, "I;16").save(os.path.join(FILES, "pil_gray16.png"))
save("pil_gray16.png", np.array(Image.open(os.path.join(FILES, "pil_gray16.png"))).astype(np.uint16)[:, :, None])
manifest["png"].append("pil_gray16.png")
rgb = np.stack([smooth(40, 50, 255, s) for s in (3, 4, 5)], 2).astype(np.uint8)
Image.fromarray(rgb).save(os.path.join(FILES, "pil_rgb_optimized.png"), optimize=True)
save("pil_rgb_optimized.png", np.array(Image.open(os.path.join(FILES, "pil_rgb_optimized.png"))).astype(np.uint16))
manifest["png"].append("pil_rgb_optimized.png")

# ---------------------------------------------------------------- DICOM (pydicom's test files)
pdd = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")
dicom_files = ["CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm",
               "MR_small_expb.dcm", "MR_small_padded.dcm", "image_dfl.dcm", "no_meta.dcm", "rtdose_1frame.dcm",
               "rtdose_expb_1frame.dcm", "rtdose_rle_1frame.dcm", "rtdose_rle.dcm", "SC_rgb_small_odd.dcm",
               "SC_rgb_rle.dcm", "SC_rgb_rle_16bit.dcm", "SC_rgb_rle_2frame.dcm", "SC_rgb_rle_32bit.dcm",
               "SC_rgb_dcmtk_+eb+cr.dcm", "liver_1frame.dcm", "SC_ybr_full_422_uncompressed.dcm", "ExplVR_BigEnd.dcm",
               "SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_dcmtk_+eb+cy+np.dcm", "SC_rgb_small_odd_jpeg.dcm", "SC_jpeg_no_color_transform.dcm",
               "MR_small_jpeg_ls_lossless.dcm", "JPEG2000.dcm", "MR_truncated.dcm", "nested_priv_SQ.dcm", "UN_sequence.dcm", "priv_SQ.dcm"]
for f in dicom_files:
    shutil.copy(os.path.join(pdd, f), os.path.join(FILES, f))
    origins.append(f"{f}: python3-pydicom 2.3.1-1, /usr/lib/python3/dist-packages/pydicom/data/test_files/{f}")
    entry = {"file": f}
    try:
        ds = pydicom.dcmread(os.path.join(FILES, f), force=True)
        ts = str(ds.file_meta.TransferSyntaxUID) if "TransferSyntaxUID" in getattr(ds, "file_meta", {}) else None
        entry["ts"] = ts
        if "PixelData" not in ds:
            entry["nopixels"] = True; manifest["dicom"].append(entry); continue
        if ts and ts.startswith("1.2.840.10008.1.2.4.") and ts not in ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"):
            entry["unsupported"] = True; manifest["dicom"].append(entry); continue
        if ts and ts.startswith("1.2.840.10008.1.2.4."):
            # JPEG-in-DICOM: the reference is Pillow decoding the frame's JPEG bytes to RGB/L.
            from pydicom.encaps import generate_pixel_data_frame
            frame = next(generate_pixel_data_frame(ds.PixelData, int(ds.get("NumberOfFrames", 1))))
            try:
                im = Image.open(io.BytesIO(frame)); im.load()
            except Exception as e:
                entry["error"] = str(e)[:80]; manifest["dicom"].append(entry); continue
            a = np.array(im)
            if a.ndim == 2: a = a[:, :, None]
            save(f + ".stored", a.astype(np.float64)); entry["jpeg"] = True
            manifest["dicom"].append(entry); continue
        arr = ds.pixel_array
        nf = int(ds.get("NumberOfFrames", 1))
        entry["frames"] = nf
        spp = int(ds.SamplesPerPixel)
        def norm(x):
            return x[:, :, None] if x.ndim == 2 else x
        for fi in sorted({0, nf - 1}):
            fr = arr[fi] if nf > 1 else arr
            save(f"{f}.frame{fi}.stored", norm(fr).astype(np.float64))
            if spp == 1:
                resc = apply_modality_lut(fr, ds)
                save(f"{f}.frame{fi}.rescaled", norm(np.asarray(resc, dtype=np.float64)))
                if "WindowCenter" in ds and "WindowWidth" in ds:
                    c = ds.WindowCenter; w = ds.WindowWidth
                    c = float(c[0] if isinstance(c, pydicom.multival.MultiValue) else c)
                    w = float(w[0] if isinstance(w, pydicom.multival.MultiValue) else w)
                    entry["wc"] = c; entry["ww"] = w
                    win = apply_voi_lut(np.asarray(resc, dtype=np.float64), ds, index=0)
                    save(f"{f}.frame{fi}.windowed", norm(np.asarray(win, dtype=np.float64)))
                    # pydicom's output range for the windowed values: that of the stored data type
                    bs = int(ds.BitsStored)
                    entry["ymin"], entry["ymax"] = ((-(2 ** (bs - 1)), 2 ** (bs - 1) - 1) if ds.PixelRepresentation else (0, 2 ** bs - 1))
        entry["slope"] = float(ds.get("RescaleSlope", 1)); entry["intercept"] = float(ds.get("RescaleIntercept", 0))
        entry["photometric"] = str(ds.PhotometricInterpretation)
    except Exception as e:
        entry["error"] = str(e)[:120]
    manifest["dicom"].append(entry)

# ---------------------------------------------------------------- NIfTI (nibabel test data + nibabel-written volumes)
nbd = os.path.join(os.path.dirname(nibabel.__file__), "tests", "data")
nifti = []
for f in ("anatomical.nii", "functional.nii", "standard.nii.gz", "reoriented_anat_moved.nii"):
    shutil.copy(os.path.join(nbd, f), os.path.join(FILES, f))
    origins.append(f"{f}: python3-nibabel 5.0.0-2, /usr/lib/python3/dist-packages/nibabel/tests/data/{f}")
    nifti.append(f)
for dt in ("uint8", "int8", "int16", "uint16", "int32", "uint32", "int64", "float32", "float64"):
    for endian in ("<", ">"):
        vol = (np.arange(7 * 5 * 4 * 2).reshape(7, 5, 4, 2) * 3 - 40)
        if dt.startswith("u"): vol = np.abs(vol)
        vol = (vol % 120 if "int8" in dt else vol).astype(endian + ("i1" if dt == "int8" else np.dtype(dt).str[1:]))
        hdr = nibabel.Nifti1Header(endianness=endian)
        img = nibabel.Nifti1Image(vol, np.eye(4), header=hdr)
        img.set_data_dtype(vol.dtype)
        if dt in ("int16", "uint8"): img.header.set_slope_inter(0.5, -3.25)
        name = f"synthetic_{dt}_{'le' if endian == '<' else 'be'}.nii" + (".gz" if dt in ("int16", "float32") else "")
        nibabel.save(img, os.path.join(FILES, name))
        nifti.append(name)
for f in nifti:
    img = nibabel.load(os.path.join(FILES, f))
    raw = np.asanyarray(img.dataobj.get_unscaled()) if hasattr(img.dataobj, "get_unscaled") else np.asanyarray(img.dataobj)
    sl, inter = img.dataobj.slope, img.dataobj.inter
    fdata = img.get_fdata()
    shape = raw.shape
    cases = []
    for axis in (0, 1, 2):
        n = shape[axis]
        for idx in sorted({n // 2, n - 1}):
            cases.append((axis, idx, 0))
    if raw.ndim == 4: cases.append((2, shape[2] // 2, shape[3] - 1))
    for (axis, idx, vol) in cases:
        v = raw[..., vol] if raw.ndim == 4 else raw
        fv = fdata[..., vol] if raw.ndim == 4 else fdata
        s = np.take(v, idx, axis=axis).T     # rows = higher remaining axis
        fs = np.take(fv, idx, axis=axis).T
        key = f"{f}.a{axis}.i{idx}.v{vol}"
        save(key + ".stored", s.astype(np.float64)[:, :, None])
        save(key + ".fdata", fs.astype(np.float64)[:, :, None])
        manifest["nifti"].append({"file": f, "axis": axis, "index": idx, "volume": vol, "key": key,
                                  "slope": float(sl), "inter": float(inter)})

# ---------------------------------------------------------------- JPEG (Pillow / cjpeg encoders; Pillow/libjpeg decoder)
base = np.array(Image.open(os.path.join(skd, "chelsea.png")).convert("RGB"))[40:161, 60:253]  # 193x121, odd sizes
Image.fromarray(base).save(os.path.join(FILES, "jpeg_source.png"))
jpegs = []
for sub, tag in ((0, "444"), (1, "422"), (2, "420")):
    for prog in (False, True):
        n = f"jpeg_{tag}_{'progressive' if prog else 'baseline'}.jpg"
        Image.fromarray(base).save(os.path.join(FILES, n), quality=85, subsampling=sub, progressive=prog)
        jpegs.append(n)
Image.fromarray(base).convert("L").save(os.path.join(FILES, "jpeg_gray_baseline.jpg"), quality=90); jpegs.append("jpeg_gray_baseline.jpg")
Image.fromarray(base).convert("L").save(os.path.join(FILES, "jpeg_gray_progressive.jpg"), quality=90, progressive=True); jpegs.append("jpeg_gray_progressive.jpg")
ppm = os.path.join("/tmp", "medvl_src.ppm"); Image.fromarray(base).save(ppm)
for args, n in ((["-restart", "2", "-sample", "2x2"], "jpeg_420_restart2.jpg"),
                (["-restart", "1", "-progressive", "-sample", "2x1"], "jpeg_422_progressive_restart1.jpg"),
                (["-rgb"], "jpeg_adobe_rgb.jpg"),
                (["-quality", "100", "-sample", "1x1"], "jpeg_444_q100.jpg"),
                (["-optimize", "-sample", "2x2"], "jpeg_420_optimized.jpg")):
    subprocess.run(["cjpeg"] + args + ["-outfile", os.path.join(FILES, n), ppm], check=True)
    jpegs.append(n)
shutil.copy(os.path.join(skd, "truncated.jpg"), os.path.join(FILES, "skimage_truncated.jpg"))
shutil.copy(os.path.join(skd, "rocket.jpg"), os.path.join(FILES, "skimage_rocket.jpg")); jpegs.append("skimage_rocket.jpg")
origins.append("skimage_rocket.jpg: python3-skimage 0.19.3-8, skimage/data/rocket.jpg (a real camera JPEG)")
origins.append("skimage_truncated.jpg: python3-skimage 0.19.3-8, skimage/data/truncated.jpg")
origins.append("jpeg_source.png: crop [40:161, 60:253] of python3-skimage 0.19.3-8 skimage/data/chelsea.png")
for n in jpegs:
    im = Image.open(os.path.join(FILES, n)); a = np.array(im)
    if a.ndim == 2: a = a[:, :, None]
    save(n, a.astype(np.uint8)); manifest["jpeg"].append(n)

# ---------------------------------------------------------------- CLIP preprocessing (HF CLIPImageProcessor re-done in numpy on Pillow output)
MEAN = [0.48145466, 0.4578275, 0.40821073]; STD = [0.26862954, 0.26130258, 0.27577711]
def expand2square(pil_img, bg):
    w, h = pil_img.size
    if w == h: return pil_img
    if w > h:
        r = Image.new(pil_img.mode, (w, w), bg); r.paste(pil_img, (0, (w - h) // 2)); return r
    r = Image.new(pil_img.mode, (h, h), bg); r.paste(pil_img, ((h - w) // 2, 0)); return r
def clip_steps(im, pad):
    if pad: im = expand2square(im, tuple(int(x * 255) for x in MEAN))
    w, h = im.size
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(336 * long / short)
    size = (336, new_long) if w <= h else (new_long, 336)
    im = im.resize(size, Image.BICUBIC)
    a = np.array(im)
    top = (a.shape[0] - 336) // 2; left = (a.shape[1] - 336) // 2
    a = a[top:top + 336, left:left + 336]
    x = (a.astype(np.float64) * (1 / 255)).astype(np.float32)          # transformers rescale()
    x = (x - np.array(MEAN, dtype=np.float32)) / np.array(STD, dtype=np.float32)  # transformers normalize()
    return a, x.transpose(2, 0, 1).astype(np.float32)
clip_inputs = ["jpeg_source.png", "skimage_coins.png", "skimage_microaneurysms.png", "pil_gray16.png", "skimage_palette_color.png", "png_rgba_8bit_adam7_37x23.png"]
clip_cases = {("jpeg_source.png", False), ("jpeg_source.png", True), ("skimage_coins.png", False), ("skimage_microaneurysms.png", True),
              ("pil_gray16.png", True), ("png_rgba_8bit_adam7_37x23.png", False), ("skimage_palette_color.png", True)}
for n in clip_inputs:
    for pad in (False, True):
        if (n, pad) not in clip_cases: continue
        im = Image.open(os.path.join(FILES, n)).convert("RGB")
        a, x = clip_steps(im, pad)
        key = f"clip_{n}_{'pad' if pad else 'nopad'}"
        save(key + ".uint8", a)
        if (n, pad) in (("jpeg_source.png", True), ("skimage_coins.png", False)): save(key + ".pixel_values", x)
        manifest["clip"].append({"file": n, "pad": pad, "key": key})
# Resampler unit cases: odd up/down scales on one image.
src = np.array(Image.open(os.path.join(FILES, "jpeg_source.png")))
for (w, h) in ((17, 11), (250, 160), (193, 60), (50, 121), (336, 213), (1, 1)):
    for flt, fname in ((Image.BICUBIC, "bicubic"), (Image.BILINEAR, "bilinear")):
        save(f"resize_{w}x{h}_{fname}", np.array(Image.fromarray(src).resize((w, h), flt)))
        manifest["clip"].append({"resize": [w, h], "filter": fname})

json.dump(manifest, open(os.path.join(EXP, "manifest.json"), "w"), indent=1)
with open(os.path.join(OUT, "README.md"), "w") as fh:
    fh.write("# Vision fixtures\n\nGenerated by `/usr/bin/python3 tools/vision/make_image_fixtures.py` (Pillow 9.4.0, pydicom 2.3.1, nibabel 5.0.0, numpy 1.24.2, libjpeg-turbo-progs 2.1.5 cjpeg).\n\n")
    fh.write("* `files/png_*.png`: written by the script's own PNG writer (all colour types, bit depths, Adam7, all five filters cycled per row, split IDAT, tEXt); expected = the source samples (palette expanded, tRNS -> alpha); 8-bit ones cross-checked against Pillow.\n")
    fh.write("* `files/pil_*.png`: written by Pillow; `files/synthetic_*.nii*`: written by nibabel; `files/jpeg_*.jpg`: written by Pillow (libjpeg-turbo) or cjpeg.\n")
    fh.write("* `expected/*.npy`: pixels decoded by the real tools (Pillow, pydicom `pixel_array`/`apply_modality_lut`/`apply_voi_lut`, nibabel `dataobj`/`get_fdata`); `manifest.json` lists the cases.\n\n## Copied real files\n\n")
    for o in origins: fh.write(f"* {o}\n")
print("ok", sum(os.path.getsize(os.path.join(FILES, f)) for f in os.listdir(FILES)), sum(os.path.getsize(os.path.join(EXP, f)) for f in os.listdir(EXP)))
