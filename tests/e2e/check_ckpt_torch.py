#!/usr/bin/env python3
"""Loads a lathe checkpoint into the equivalent PyTorch model, as a user who
moves a run to PyTorch would: safetensors' reader, the "optimizer." keys
dropped, load_state_dict(strict=True), then the model in eval mode on the
first N Fashion-MNIST test images.

Usage: check_ckpt_torch.py FILE EXPERIMENT [N [LATHE_ACC [LATHE_LOSS]]]
  EXPERIMENT  mlp or mnist_cnn
  N           test images to evaluate (default 1000)
  LATHE_ACC   test_acc that `lathe test EXPERIMENT --ckpt FILE` reported on
              the same N images; the PyTorch accuracy must be within 0.01
  LATHE_LOSS  its test_loss; the PyTorch loss must be within 0.1% of it (the
              same weights on the same images differ only by summation order)

Always checks: the file loads with safetensors (numpy), every tensor is F32,
the metadata holds format=lathe.checkpoint, format_version, experiment (=
EXPERIMENT), step, crc32 (8 hex digits) and hparam.lr. Without torch it stops
there and prints "torch part skipped". Exits 1 when any check failed.
"""
import gzip
import os
import re
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

FAILED = []
DATA = os.environ.get("LATHE_DATA", "/usr/share/datasets/fashion-mnist")
# parameter names and shapes of each experiment, as lathe names them
SHAPES = {
    "mlp": {"dense_1.weight": (256, 784), "dense_1.bias": (256,), "dense_2.weight": (128, 256),
            "dense_2.bias": (128,), "dense_3.weight": (10, 128), "dense_3.bias": (10,)},
    "mnist_cnn": {"conv2d_1.weight": (32, 1, 3, 3), "conv2d_1.bias": (32,), "conv2d_2.weight": (64, 32, 3, 3),
                  "conv2d_2.bias": (64,), "dense_1.weight": (128, 9216), "dense_1.bias": (128,),
                  "dense_2.weight": (10, 128), "dense_2.bias": (10,)},
}


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        FAILED.append(what)


def read_idx(path, offset):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def build(experiment):
    import torch.nn as nn
    import torch.nn.functional as F

    class Mlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense_1 = nn.Linear(784, 256)
            self.dense_2 = nn.Linear(256, 128)
            self.dense_3 = nn.Linear(128, 10)

        def forward(self, x):
            x = x.flatten(1)
            return self.dense_3(F.relu(self.dense_2(F.relu(self.dense_1(x)))))

    class MnistCnn(nn.Module):
        # the Keras example: Conv2D 32 → Conv2D 64 → MaxPool 2 → Dropout 0.25 →
        # Flatten → Dense 128 → Dropout 0.5 → Dense 10
        def __init__(self):
            super().__init__()
            self.conv2d_1 = nn.Conv2d(1, 32, 3)
            self.conv2d_2 = nn.Conv2d(32, 64, 3)
            self.dropout_1 = nn.Dropout(0.25)
            self.dense_1 = nn.Linear(9216, 128)
            self.dropout_2 = nn.Dropout(0.5)
            self.dense_2 = nn.Linear(128, 10)

        def forward(self, x):
            x = F.relu(self.conv2d_2(F.relu(self.conv2d_1(x))))
            x = self.dropout_1(F.max_pool2d(x, 2)).flatten(1)
            return self.dense_2(self.dropout_2(F.relu(self.dense_1(x))))

    return Mlp() if experiment == "mlp" else MnistCnn()


def main(path, experiment, n=1000, lathe_acc=None, lathe_loss=None):
    if experiment not in SHAPES:
        sys.exit(f"unknown experiment {experiment!r} (mlp or mnist_cnn)")
    tensors = load_file(path)
    with safe_open(path, framework="numpy") as f:
        meta = f.metadata() or {}
    print(f"{path}: {len(tensors)} tensors, metadata step={meta.get('step')} epoch={meta.get('epoch')}")
    check(meta.get("format") == "lathe.checkpoint", f"format {meta.get('format')!r}")
    check(meta.get("format_version", "").isdigit(), f"format_version {meta.get('format_version')!r}")
    check(meta.get("experiment") == experiment, f"experiment {meta.get('experiment')!r}")
    check(meta.get("step", "").isdigit(), f"step {meta.get('step')!r}")
    check(re.fullmatch(r"[0-9a-f]{8}", meta.get("crc32", "")) is not None, f"crc32 {meta.get('crc32')!r}")
    check("hparam.lr" in meta and float(meta["hparam.lr"]) > 0, f"hparam.lr {meta.get('hparam.lr')!r}")
    check(all(t.dtype == np.float32 for t in tensors.values()), "every tensor is F32")
    model_sd = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    want = SHAPES[experiment]
    check({k: v.shape for k, v in model_sd.items()} == want, f"model tensors and shapes {sorted(model_sd)}")
    check(all(np.isfinite(v).all() for v in model_sd.values()), "model tensors finite")
    check(any(k.startswith("optimizer.") for k in tensors), "optimizer state present")

    try:
        import torch
    except ImportError:
        print("torch part skipped (no torch in this Python)")
        return
    torch.manual_seed(0)
    model = build(experiment)
    try:
        res = model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in model_sd.items()}, strict=True)
        check(not res.missing_keys and not res.unexpected_keys, "load_state_dict(strict=True)")
    except RuntimeError as e:
        check(False, f"load_state_dict(strict=True): {e}")
        return
    got = dict(model.state_dict())
    check(all(np.array_equal(got[k].numpy(), model_sd[k]) for k in want), "weights in the model equal the file's")

    imgs = read_idx(os.path.join(DATA, "t10k-images-idx3-ubyte.gz"), 16).reshape(-1, 1, 28, 28)[:n]
    labels = read_idx(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz"), 8)[:n].astype(np.int64)
    x = torch.from_numpy(imgs.astype(np.float32) / np.float32(255))
    model.eval()
    with torch.no_grad():
        logits = model(x)
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels)).item()
    acc = (logits.argmax(1).numpy() == labels).mean()
    print(f"PyTorch on the first {len(labels)} test images: accuracy {acc:.4f}, loss {loss:.6f}")
    check(acc > 0.3, f"accuracy {acc:.4f} clearly above chance (0.1)")
    if lathe_acc is not None:
        check(abs(acc - lathe_acc) <= 0.01, f"accuracy {acc:.4f} equals lathe test's {lathe_acc:.4f} within 0.01")
    if lathe_loss is not None:
        check(abs(loss - lathe_loss) <= 1e-3 * abs(lathe_loss),
              f"loss {loss:.6f} equals lathe test's {lathe_loss:.6f} within 0.1%")


if __name__ == "__main__":
    if not 3 <= len(sys.argv) <= 6:
        sys.exit(__doc__)
    a = sys.argv[1:]
    main(a[0], a[1], int(a[2]) if len(a) > 2 else 1000, float(a[3]) if len(a) > 3 else None,
         float(a[4]) if len(a) > 4 else None)
    print(f"{len(FAILED)} check(s) failed" if FAILED else "all checkpoint checks passed")
    sys.exit(1 if FAILED else 0)
