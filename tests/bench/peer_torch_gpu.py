#!/usr/bin/env python3
"""peer_torch_gpu.py: the GPU peers of lathe's mnist_cnn in run_gpu_bench.sh.

The model, loss, optimizer and data are peer_torch.py's (imported from it):
the Keras MNIST CNN, softmax cross-entropy, Adadelta(lr=1.0, rho=0.95,
eps=1e-7), batch 128, Fashion-MNIST with the same 10% validation hold-out, so
54,000 training samples (422 batches, the last one of 112) per epoch. The
training set is moved to the device once, as float32 x/255, and each shuffled
batch is gathered there with index_select (no host-to-device copy per step,
as lathe does it).

--impl eager     plain PyTorch
--impl compile   the same step with the model and loss under torch.compile
--impl lightning the Lightning 2.x Trainer (lightning.pytorch, else
                 pytorch_lightning) fed an iterable of those device batches

Each precision (--precisions 32,bf16-mixed; bf16-mixed is torch.autocast to
bfloat16, Lightning's precision="bf16-mixed") warms up first (eager and
compile: 20 full batches and one of the last batch's size, so compilation
for both shapes is done; Lightning: a first epoch), then trains --epochs
timed epochs, each timed from a device synchronize to a device synchronize;
the best epoch is reported. No validation runs. One key=value line per
precision on stdout:

  impl=eager precision=32 device=... samples=54000 epoch_s=... samples_per_s=...

Usage: python3 tests/bench/peer_torch_gpu.py --impl eager [--precisions 32,bf16-mixed]
       [--epochs 2] [--batch 128] [--data DIR] [--device cuda|cpu] [--max-batches N]
--max-batches N trains N batches per "epoch" (a smoke test; samples_per_s is
then over those batches and epoch_s is extrapolated to 54,000 samples).
"""
import argparse
import os
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_torch import load_set, make_model  # noqa: E402  (the CPU peer's model and loader)

EPOCH_SAMPLES = 54000


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def batch_slices(n, batch, limit):
    starts = list(range(0, n, batch))
    if limit:
        starts = starts[:limit]
    return starts


def plain_loop(a, dev, xs, ys, prec, compiled):
    torch.manual_seed(a.seed)
    model = make_model(xs.shape[2], xs.shape[3]).to(dev)
    model.train()
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    bf16 = prec == "bf16-mixed"

    def fwd_loss(xb, yb):
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=bf16):
            return loss_fn(model(xb), yb)

    if compiled:
        fwd_loss = torch.compile(fwd_loss, dynamic=False)

    def step(xb, yb):
        loss = fwd_loss(xb, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    n = xs.shape[0]
    gen = torch.Generator(device=dev).manual_seed(a.seed)
    t0 = time.perf_counter()
    order = torch.randperm(n, device=dev, generator=gen)
    warm = [a.batch] * min(20, a.max_batches or 20) + [n % a.batch or a.batch]
    pos = 0
    for size in warm:
        idx = order[pos:pos + size]
        pos = (pos + size) % (n - a.batch)
        step(xs.index_select(0, idx), ys.index_select(0, idx))
    sync(dev)
    warm_s = time.perf_counter() - t0

    times, samples = [], 0
    for _ in range(a.epochs):
        order = torch.randperm(n, device=dev, generator=gen)
        sync(dev)
        t0 = time.perf_counter()
        samples = 0
        for i in batch_slices(n, a.batch, a.max_batches):
            idx = order[i:i + a.batch]
            loss = step(xs.index_select(0, idx), ys.index_select(0, idx))
            samples += idx.shape[0]
        sync(dev)
        times.append(time.perf_counter() - t0)
    return min(times), samples, warm_s, float(loss.item())


def lightning_loop(a, dev, xs, ys, prec):
    try:
        import lightning.pytorch as pl
    except ImportError:
        import pytorch_lightning as pl

    class LitCNN(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = make_model(xs.shape[2], xs.shape[3])
            self.loss_fn = nn.CrossEntropyLoss()
            self.last = None

        def training_step(self, batch, batch_idx):
            xb, yb = batch
            loss = self.loss_fn(self.net(xb), yb)
            self.last = loss.detach()
            return loss

        def configure_optimizers(self):
            return torch.optim.Adadelta(self.parameters(), lr=1.0, rho=0.95, eps=1e-7)

    class DeviceBatches:
        """Shuffled batches gathered from the tensors already on the device."""

        def __init__(self):
            self.gen = torch.Generator(device=dev).manual_seed(a.seed)
            self.starts = batch_slices(xs.shape[0], a.batch, a.max_batches)

        def __len__(self):
            return len(self.starts)

        def __iter__(self):
            order = torch.randperm(xs.shape[0], device=dev, generator=self.gen)
            for i in self.starts:
                idx = order[i:i + a.batch]
                yield xs.index_select(0, idx), ys.index_select(0, idx)

    class EpochTimer(pl.Callback):
        def __init__(self):
            self.times, self.t0 = [], 0.0

        def on_train_epoch_start(self, trainer, module):
            sync(dev)
            self.t0 = time.perf_counter()

        def on_train_epoch_end(self, trainer, module):
            sync(dev)
            self.times.append(time.perf_counter() - self.t0)

    torch.manual_seed(a.seed)
    timer = EpochTimer()
    trainer = pl.Trainer(accelerator="gpu" if dev.type == "cuda" else "cpu", devices=1,
                         precision="bf16-mixed" if prec == "bf16-mixed" else "32-true",
                         max_epochs=1 + a.epochs, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         limit_val_batches=0, callbacks=[timer])
    module = LitCNN()
    trainer.fit(module, train_dataloaders=DeviceBatches())
    if len(timer.times) < 2:
        raise RuntimeError(f"Lightning ran {len(timer.times)} epochs, expected {1 + a.epochs}")
    samples = sum(min(a.batch, xs.shape[0] - i) for i in batch_slices(xs.shape[0], a.batch, a.max_batches))
    return min(timer.times[1:]), samples, timer.times[0], float(module.last.float().item()), pl.__version__


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--impl", choices=["eager", "compile", "lightning"], required=True)
    ap.add_argument("--precisions", default="32,bf16-mixed")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--max-batches", type=int, default=0)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    precs = a.precisions.split(",")
    for p in precs:
        if p not in ("32", "bf16-mixed"):
            ap.error(f"precision '{p}': 32 or bf16-mixed")
    if min(a.epochs, a.batch) < 1:
        ap.error("epochs and batch must be >= 1")
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        sys.exit("peer_torch_gpu.py: no usable CUDA device in this PyTorch")
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"

    x_train, y_train = load_set(a.data, "train")
    n = x_train.shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(a.seed))
    train_idx = perm[:int(n * 0.9)].sort().values  # the 10% hold-out, as lathe and peer_torch.py
    xs = x_train.index_select(0, train_idx).to(dev)
    ys = y_train.index_select(0, train_idx).to(dev)
    sync(dev)

    for prec in precs:
        extra = ""
        if a.impl == "lightning":
            secs, samples, warm_s, loss, ver = lightning_loop(a, dev, xs, ys, prec)
            extra = f" lightning={ver}"
        else:
            secs, samples, warm_s, loss = plain_loop(a, dev, xs, ys, prec, a.impl == "compile")
        rate = samples / secs
        tf32 = f"tf32_conv={int(torch.backends.cudnn.allow_tf32)} tf32_matmul={int(torch.backends.cuda.matmul.allow_tf32)}"
        print(f"impl={a.impl} precision={prec} device={name.replace(' ', '_')} batch={a.batch} samples={samples} "
              f"seconds={secs:.3f} samples_per_s={rate:.1f} epoch_s={EPOCH_SAMPLES / rate:.3f} "
              f"best_of={a.epochs} warmup_s={warm_s:.1f} train_loss={loss:.4f} {tf32} torch={torch.__version__}{extra}",
              flush=True)


if __name__ == "__main__":
    main()
