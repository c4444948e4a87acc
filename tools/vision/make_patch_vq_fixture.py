#!/usr/bin/env python3
"""Reference indices and decoded pixels of a patch VQ tokenizer, computed the way taming-transformers' VQGAN glue does
(HealthGPT's taming_transformers/idx2img.py): pixels x/255·2−1, nearest codebook vector by squared L2 (torch.argmin:
the first minimum), decode as custom_to_pil (clamp to [−1, 1], (x+1)/2, ·255, truncated to uint8), raster order.
The encoder/decoder are identity here (MedVL's PatchVqTokenizer); patches are flattened as (row, column, channel).
Usage: /usr/bin/python3 tools/vision/make_patch_vq_fixture.py  → tests/fixtures/vision/vq/patch_vq.json
"""
import json, os
import torch

g = torch.Generator().manual_seed(11)
size, patch, k = 16, 4, 12
d = patch * patch * 3
codebook = (torch.rand(k, d, generator=g) * 2.4 - 1.2).float()  # some entries beyond [−1, 1] exercise the clamp
cases = []
for n in range(3):
    img = torch.randint(0, 256, (size, size, 3), generator=g, dtype=torch.uint8)
    if n == 2:  # an image made of codebook entries: encode must find them again
        img = None
    if img is None:
        idx = torch.randint(0, k, ((size // patch) ** 2,), generator=g)
        x = codebook[idx].clamp(-1, 1)
        x = x.view(size // patch, size // patch, patch, patch, 3).permute(0, 2, 1, 3, 4).reshape(size, size, 3)
        img = ((x + 1) / 2 * 255).to(torch.uint8)
    x = img.float() / 255 * 2 - 1
    p = x.view(size // patch, patch, size // patch, patch, 3).permute(0, 2, 1, 3, 4).reshape(-1, d)
    dist = (p * p).sum(1, keepdim=True) + (codebook * codebook).sum(1)[None, :] - 2 * p @ codebook.t()
    indices = torch.argmin(dist, dim=1)
    q = codebook[indices].clamp(-1, 1)
    q = q.view(size // patch, size // patch, patch, patch, 3).permute(0, 2, 1, 3, 4).reshape(size, size, 3)
    decoded = (((q + 1) / 2) * 255).to(torch.uint8)
    cases.append({"pixels": img.flatten().tolist(), "indices": indices.tolist(), "decoded": decoded.flatten().tolist()})
out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "vision", "vq", "patch_vq.json")
with open(out, "w") as f:
    json.dump({"image_size": size, "patch_size": patch, "codebook": codebook.flatten().tolist(), "cases": cases}, f)
print("wrote", os.path.normpath(out))
