#!/usr/bin/env python3
"""peer_torch.py: the PyTorch peer of bench_train.c.

The same Keras MNIST CNN (Conv2D(32,3x3,relu) -> Conv2D(64,3x3,relu) ->
MaxPool(2x2) -> Dropout(0.25) -> Flatten -> Dense(128,relu) -> Dropout(0.5) ->
Dense(10)), softmax cross-entropy, Adadelta(lr=1.0, rho=0.95, eps=1e-7), on
the same Fashion-MNIST IDX gz files (read with gzip + numpy, held in memory as
float32 x/255 like lathe's loader, the same 10% validation hold-out), shuffled
batches gathered from that array each step. It runs `warmup` steps, then
`steps` timed steps, and prints one key=value line with the same keys as
bench_train (samples_per_s, median_samples_per_s, seconds, gflops, pct_peak,
peak_rss_mb, ...).

Usage: ~/.cache/lathe/venv/bin/python tests/bench/peer_torch.py [--steps N]
       [--warmup N] [--threads N] [--batch N] [--data DIR] [--peak-gflops F]
       [--ghz F] [--flop-per-cycle N] [--autocast bf16] [--channels-last]
       [--profile]
--peak-gflops is the fp32 peak pct_peak divides by (run_train_bench.sh passes
bench_peak's measured figure); without it, threads x GHz x FLOP/cycle.
--autocast bf16 runs the forward pass and the loss under
torch.autocast("cpu", dtype=torch.bfloat16) (oneDNN's bf16 kernels, AMX where
the CPU has it; master weights f32), --channels-last puts the model and each
batch in channels_last (NHWC) memory format, which oneDNN prefers.
--profile also prints (on stderr) the top operators of a few steps under
torch.profiler, to show which kernels torch picks (mkldnn or not).
"""
import argparse
import gzip
import os
import resource
import struct
import sys
import time

import numpy as np
import torch
from torch import nn


def load_idx(path):
    """Reads an IDX file (gzip or raw) into a numpy array; checks its header."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not a u8 IDX file")
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {int(np.prod(dims))} bytes, file has {data.size}")
    return data.reshape(dims)


def find(data_dir, stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(os.path.join(data_dir, stem) + "[.gz]")


def load_set(data_dir, prefix):
    x = load_idx(find(data_dir, f"{prefix}-images-idx3-ubyte"))
    y = load_idx(find(data_dir, f"{prefix}-labels-idx1-ubyte"))
    x = torch.from_numpy((x.astype(np.float32) / 255.0)[:, None, :, :].copy())
    y = torch.from_numpy(y.astype(np.int64))
    return x, y


def make_model(h, w):
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(),
        nn.Conv2d(32, 64, 3), nn.ReLU(),
        nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(),
        nn.Linear(64 * ((h - 4) // 2) * ((w - 4) // 2), 128), nn.ReLU(),
        nn.Dropout(0.5), nn.Linear(128, 10))


def flop_per_sample(h, w):
    """Same count as bench_train.c: 2*M*N*K per GEMM-shaped op, forward, dW
    and dX, less conv1's dX."""
    conv1 = 2.0 * 32 * 9 * (h - 2) * (w - 2)
    conv2 = 2.0 * 64 * 288 * (h - 4) * (w - 4)
    dense1 = 2.0 * 128 * 64 * ((h - 4) / 2) * ((w - 4) / 2)
    dense2 = 2.0 * 10 * 128
    return 3.0 * (conv1 + conv2 + dense1 + dense2) - conv1


def timed_steps(step, warmup, steps, barrier=None):
    """Runs `warmup` untimed steps, then `steps` timed ones (CPU ops are
    synchronous: a step is done when it returns); barrier(), where given, is
    called before the clock starts and before it stops. Returns the timed
    seconds, each step's seconds and the last loss."""
    for _ in range(warmup):
        step()
    if barrier:
        barrier()
    t0 = time.perf_counter()
    step_s = []
    t_prev = t0
    loss = None
    for _ in range(steps):
        loss = step()
        now = time.perf_counter()
        step_s.append(now - t_prev)
        t_prev = now
    if barrier:
        barrier()
    return time.perf_counter() - t0, step_s, loss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--ghz", type=float, default=2.45)
    ap.add_argument("--flop-per-cycle", type=float, default=32)
    ap.add_argument("--peak-gflops", type=float, default=0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--autocast", choices=["none", "bf16"], default="none")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    if min(a.steps, a.warmup, a.threads, a.batch) < 1:
        ap.error("steps, warmup, threads and batch must be >= 1")

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)

    x_train, y_train = load_set(a.data, "train")
    x_test, y_test = load_set(a.data, "t10k")  # held like lathe holds it (RSS)
    n = x_train.shape[0]
    g = torch.Generator().manual_seed(a.seed)
    perm = torch.randperm(n, generator=g)
    n_train = int(n * 0.9)  # Keras validation_split arithmetic, as lt_split
    train_idx = perm[:n_train].sort().values
    h, w = x_train.shape[2], x_train.shape[3]

    model = make_model(h, w)
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    model.train()
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()

    def batches():
        epoch = 0
        while True:
            order = train_idx[torch.randperm(n_train, generator=torch.Generator().manual_seed(a.seed + epoch))]
            for i in range(0, n_train, a.batch):
                idx = order[i:i + a.batch]
                yield x_train.index_select(0, idx), y_train.index_select(0, idx)
            epoch += 1

    it = batches()

    def step():
        xb, yb = next(it)
        xb = xb.contiguous(memory_format=fmt)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.autocast == "bf16"):
            loss = loss_fn(model(xb), yb)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        return loss

    secs, step_s, loss = timed_steps(step, a.warmup, a.steps)
    samples = a.steps * a.batch
    med = a.batch / float(np.median(step_s))
    loss = float(loss.item())

    if a.profile:
        from torch.profiler import profile, ProfilerActivity
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(5):
                step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25), file=sys.stderr)

    rate = samples / secs
    fps = flop_per_sample(h, w)
    gflops = rate * fps * 1e-9
    peak = a.peak_gflops if a.peak_gflops > 0 else a.threads * a.ghz * a.flop_per_cycle
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"impl=torch threads={torch.get_num_threads()} batch={a.batch} warmup={a.warmup} steps={a.steps} "
          f"samples={samples} seconds={secs:.3f} samples_per_s={rate:.1f} median_samples_per_s={med:.1f} "
          f"flop_per_sample={fps:.0f} "
          f"gflops={gflops:.2f} peak_gflops={peak:.1f} pct_peak={100.0 * gflops / peak:.1f} peak_rss_mb={rss:.1f} "
          f"train_loss={loss:.4f} torch={torch.__version__} mkldnn={int(torch.backends.mkldnn.is_available())} "
          f"autocast={a.autocast} layout={'nhwc' if a.channels_last else 'nchw'}")


if __name__ == "__main__":
    main()
