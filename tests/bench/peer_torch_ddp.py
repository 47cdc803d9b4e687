#!/usr/bin/env python3
"""peer_torch_ddp.py: the PyTorch DistributedDataParallel peer of
run_ddp_bench.sh.

peer_torch.py's model, loss, optimizer and data (make_model and load_set are
imported from it: the Keras MNIST CNN, softmax cross-entropy, Adadelta(lr=1.0,
rho=0.95, eps=1e-7), Fashion-MNIST held as float32 x/255, the 10% validation
hold-out), wrapped in DistributedDataParallel over gloo, one process per rank
started by torchrun, each with torch.set_num_threads(THREADS) and
set_num_interop_threads(1). The training indices go through a
DistributedSampler (shuffle, seed, set_epoch every epoch: torch's defaults,
as lathe's ranks shard), each rank taking BATCH samples per step gathered
with index_select. It runs `warmup` steps, a barrier, then `steps` timed
steps and a barrier; rank 0 prints one key=value line:
samples_per_s is the world's samples (steps x batch x world) over rank 0's
wall seconds of the timed steps; median_samples_per_s from the median step.

Usage: torchrun --nproc-per-node 2 tests/bench/peer_torch_ddp.py
       [--steps N] [--warmup N] [--threads N] [--batch N (per rank)] [--data DIR]
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DistributedSampler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_torch import load_set, make_model, timed_steps  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    if min(a.steps, a.warmup, a.threads, a.batch) < 1:
        ap.error("steps, warmup, threads and batch must be >= 1")

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(a.seed)

    x_train, y_train = load_set(a.data, "train")
    n = x_train.shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(a.seed))
    train_idx = perm[:int(n * 0.9)].sort().values
    h, w = x_train.shape[2], x_train.shape[3]

    model = DDP(make_model(h, w))  # broadcasts rank 0's weights
    model.train()
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    sampler = DistributedSampler(range(len(train_idx)), num_replicas=world, rank=rank, shuffle=True, seed=a.seed)

    def batches():
        epoch = 0
        while True:
            sampler.set_epoch(epoch)
            order = train_idx[torch.tensor(list(sampler), dtype=torch.long)]
            for i in range(0, len(order) - a.batch + 1, a.batch):
                idx = order[i:i + a.batch]
                yield x_train.index_select(0, idx), y_train.index_select(0, idx)
            epoch += 1

    it = batches()

    def step():
        xb, yb = next(it)
        loss = loss_fn(model(xb), yb)
        opt.zero_grad(set_to_none=False)
        loss.backward()  # DDP all-reduces the gradient buckets here
        opt.step()
        return loss

    secs, step_s, loss = timed_steps(step, a.warmup, a.steps, barrier=dist.barrier)
    samples = a.steps * a.batch * world
    if rank == 0:
        print(f"impl=torch_ddp backend=gloo world={world} threads={torch.get_num_threads()} batch_per_rank={a.batch} "
              f"warmup={a.warmup} steps={a.steps} samples={samples} seconds={secs:.3f} "
              f"samples_per_s={samples / secs:.1f} "
              f"median_samples_per_s={a.batch * world / float(np.median(step_s)):.1f} "
              f"train_loss={float(loss.item()):.4f} torch={torch.__version__}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
