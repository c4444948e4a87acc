#!/usr/bin/env python3
"""Reference NFC/NFD/NFKC/NFKD outputs from Python's unicodedata for MedVL.Text.UnicodeNormalization tests.
Run: /usr/bin/python3 tools/text/make_normalization_fixture.py tests/fixtures/text/normalization.json"""
import json, random, sys, unicodedata

out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/text/normalization.json"
interesting = [cp for cp in range(0x110000) if not (0xD800 <= cp <= 0xDFFF) and (
    unicodedata.decomposition(chr(cp)) or unicodedata.combining(chr(cp)))]
rng = random.Random(1234)
cases = [chr(cp) for cp in interesting[::3]]
pool = interesting + [0x41, 0x61, 0x65, 0x6F, 0x1100, 0x1161, 0x11A8, 0xAC00, 0xAC01, 0x0301, 0x0323, 0x0300, 0x0F71, 0x0F72]
for _ in range(600):
    cases.append("".join(chr(rng.choice(pool)) for _ in range(rng.randint(2, 6))))
cases += ["café", "cafe\u0301", "Å", "A\u030A", "ﬁ", "x²", "①", "한국어", "\u1112\u1161\u11AB", "e\u0323\u0302", "e\u0302\u0323",
          "q\u0307\u0323", "\u0301", "ḱṷṓn", "Ω", "K", "ẛ̣", "\U0001D400", "½", "\u3000"]
data = {"unicode": unicodedata.unidata_version, "cases": [
    {"s": s, "nfc": unicodedata.normalize("NFC", s), "nfd": unicodedata.normalize("NFD", s),
     "nfkc": unicodedata.normalize("NFKC", s), "nfkd": unicodedata.normalize("NFKD", s)} for s in cases]}
with open(out, "w", encoding="utf-8") as f:
    json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
print(len(cases))
