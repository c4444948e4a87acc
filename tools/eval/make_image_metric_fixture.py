#!/usr/bin/env python3
"""PSNR and SSIM of 8-bit RGB image pairs by scikit-image (Debian python3-skimage), the reference for MedVL's
ImageMetrics: structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255,
channel_axis=-1) and peak_signal_noise_ratio(data_range=255).
Usage: /usr/bin/python3 tools/eval/make_image_metric_fixture.py → tests/fixtures/eval/image_metrics.json
"""
import json, os
import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

rng = np.random.default_rng(4)
cases = []
for w, h, noise in [(16, 16, 20), (23, 17, 60), (40, 32, 5), (64, 64, 30)]:
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([(xx * 255 / w), (yy * 255 / h), ((xx + yy) * 127 / (w + h)) + 60], -1)
    a = np.clip(a + rng.normal(0, 10, a.shape), 0, 255).astype(np.uint8)
    b = np.clip(a.astype(float) + rng.normal(0, noise, a.shape), 0, 255).astype(np.uint8)
    ssim = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=-1)
    psnr = peak_signal_noise_ratio(a, b, data_range=255)
    cases.append({"width": w, "height": h, "a": a.flatten().tolist(), "b": b.flatten().tolist(), "ssim": float(ssim), "psnr": float(psnr)})
out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "eval", "image_metrics.json")
with open(out, "w") as f:
    json.dump(cases, f)
print("wrote", os.path.normpath(out))
