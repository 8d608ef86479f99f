"""Largest absolute and relative difference between the weights of two Kiln checkpoints
(.safetensors), for docs/distributed.md: `python bench/weights_diff.py A.safetensors B.safetensors`.
Reads the format directly (8-byte header length, JSON header, raw little-endian data)."""
import json
import struct
import sys

import numpy as np


def tensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    body = data[8 + length :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(body[start:end], dtype="<f4").reshape(info["shape"])
    return out


a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
worst_abs, worst_rel, scale = 0.0, 0.0, 0.0
for name in sorted(a):
    if name.startswith(("optimizer", "preprocessing")):
        continue
    x, y = a[name].astype(np.float64), b[name].astype(np.float64)
    diff = np.abs(x - y)
    worst_abs = max(worst_abs, diff.max())
    scale = max(scale, np.abs(x).max())
    rel = diff.max() / max(np.abs(x).max(), 1e-30)
    worst_rel = max(worst_rel, rel)
    print(f"{name:40s} max|dw| {diff.max():.3e}  max|w| {np.abs(x).max():.3e}  rel {rel:.3e}  "
          f"rms|dw| {np.sqrt((diff**2).mean()):.3e}")
print(f"overall: max|dw| {worst_abs:.3e}, max|w| {scale:.3e}, max relative (per tensor) {worst_rel:.3e}")
