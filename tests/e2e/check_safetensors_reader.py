#!/usr/bin/env python3
"""Checks a safetensors file written by tests/unit/test_safetensors.c with the
real `safetensors` package, and optionally writes a reference file with it
for the C reader to load. Usage: check_safetensors_reader.py FILE [REF_OUT]

Expected FILE contents (keep in step with roundtrip_tensors() in the C test):
  conv1.weight F32 [2,3] = arange(6) * 0.5 - 1
  conv1.bias   F32 [4]   = 0.1, 0.2, 0.3, 0.4
  step         I64 []    = 1234567890123
  empty        F32 [0,5]
  mask         U8  [5]   = 0, 1, 255, 7, 128
  NAME         F32 [1]   = 3.5   (NAME has a quote, a backslash, a newline and e-acute)
  metadata: epoch "3", note NOTE, ctrl "\\x01\\x1f"
REF_OUT gets: a F32 [3,4] = arange(12), b I64 [2] = -1, 2**40, c U8 [0];
  metadata {"format": "np", "k": "v\\u00e9"}
Prints what it found; exits 1 on any mismatch.
"""
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

NAME = 'odd "name"\\\n\u00e9'
NOTE = 'line1\nline2 "q" \\ tab\t \u00e9 \u2713'


def main(path, ref_out=None):
    failed = []

    def check(cond, what):
        print(("ok    " if cond else "FAIL  ") + what)
        if not cond:
            failed.append(what)

    want = {
        "conv1.weight": (np.arange(6, dtype=np.float32) * 0.5 - 1).reshape(2, 3),
        "conv1.bias": np.float32([0.1, 0.2, 0.3, 0.4]),
        "step": np.array(1234567890123, dtype=np.int64),
        "empty": np.zeros((0, 5), np.float32),
        "mask": np.uint8([0, 1, 255, 7, 128]),
        NAME: np.float32([3.5]),
    }
    got = load_file(path)
    check(sorted(got) == sorted(want), f"tensor names {sorted(got)}")
    for k, w in want.items():
        g = got.get(k)
        ok = g is not None and g.dtype == w.dtype and g.shape == w.shape and np.array_equal(g, w)
        check(ok, f"{k!r}: {None if g is None else (g.dtype, g.shape, g.ravel()[:6].tolist())}")
    with safe_open(path, framework="numpy") as f:
        meta = f.metadata()
        print("metadata:", meta)
        check(meta == {"epoch": "3", "note": NOTE, "ctrl": "\x01\x1f"}, "metadata strings")
        check(f.get_slice("conv1.weight").get_shape() == [2, 3], "shape via safe_open")
    with open(path, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
    check((8 + n) % 8 == 0, f"header length {n} keeps the buffer 8-byte aligned")

    if ref_out:
        save_file({"a": np.arange(12, dtype=np.float32).reshape(3, 4),
                   "b": np.int64([-1, 2**40]), "c": np.zeros(0, np.uint8)},
                  ref_out, metadata={"format": "np", "k": "v\u00e9"})
        print("wrote", ref_out)
    print(f"{len(failed)} check(s) failed" if failed else "all safetensors reader checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
