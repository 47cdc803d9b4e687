#!/usr/bin/env python3
"""check_weights_close.py A.safetensors B.safetensors [rtol]: every F32 tensor
of A is within rtol (default 1e-5) of B's, as ||a - b|| / ||b||; prints one
line per tensor and exits 1 on the first miss. No numpy: struct only."""
import json
import math
import struct
import sys


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__" or t.get("dtype") != "F32":
            continue
        a, b = t["data_offsets"]
        out[name] = struct.unpack("<%df" % ((b - a) // 4), data[a:b])
    return out


a, b = load(sys.argv[1]), load(sys.argv[2])
rtol = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-5
worst = 0.0
for name in sorted(a):
    if name not in b or len(a[name]) != len(b[name]):
        print("missing or other shape: %s" % name)
        sys.exit(1)
    d = math.sqrt(sum((x - y) ** 2 for x, y in zip(a[name], b[name])))
    nb = math.sqrt(sum(y * y for y in b[name])) or 1.0
    worst = max(worst, d / nb)
    if d / nb > rtol:
        print("%s: relative difference %.3g > %.3g" % (name, d / nb, rtol))
        sys.exit(1)
print("tensors=%d worst_relative=%.3g" % (len(a), worst))
