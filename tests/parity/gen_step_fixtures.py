"""One full training step of mnist_cnn in PyTorch: forward, cross-entropy,
backward, one Adadelta(lr=1, rho=0.95, eps=1e-7) step.

Weights and inputs come from a formula that tests/parity/test_parity_step.c
evaluates identically, so the fixture holds only results: the logits, the loss,
every gradient (dense_1's as a strided sample plus its sum and sum of squares)
and the parameters after the step (sampled the same way). Dropout rates are 0
here: the two frameworks' dropout masks come from different generators."""
import math

import numpy as np
import torch
import torch.nn as nn

from fixture_io import write_fixture

B = 8
STRIDE = 97  # sampling stride for dense_1's 1.18M-element tensors


def formula(n, phase, scale):
    i = np.arange(n, dtype=np.float64)
    return (scale * np.sin(0.37 * i + phase)).astype(np.float32)


class MnistCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv2d_1 = nn.Conv2d(1, 32, 3)
        self.conv2d_2 = nn.Conv2d(32, 64, 3)
        self.dense_1 = nn.Linear(9216, 128)
        self.dense_2 = nn.Linear(128, 10)

    def forward(self, x):
        x = torch.relu(self.conv2d_1(x))
        x = torch.relu(self.conv2d_2(x))
        x = torch.max_pool2d(x, 2)
        x = torch.flatten(x, 1)
        x = torch.relu(self.dense_1(x))
        return self.dense_2(x)


def main(out):
    torch.manual_seed(0)
    m = MnistCnn()
    params = list(m.state_dict().items())
    with torch.no_grad():
        for k, (name, p) in enumerate(params):
            fan_in = p.shape[1] * (p[0].numel() // p.shape[1]) if p.dim() > 1 else None
            scale = 1.0 / math.sqrt(p[0].numel()) if p.dim() > 1 else 0.05
            p.copy_(torch.from_numpy(formula(p.numel(), 0.1 * (k + 1), scale)).reshape(p.shape))
    x = (0.5 + 0.5 * formula(B * 784, 0.0, 1.0).astype(np.float64)).astype(np.float32).reshape(B, 1, 28, 28)
    y = np.array([(3 * b + 1) % 10 for b in range(B)], dtype=np.int64)
    logits = m(torch.from_numpy(x))
    loss = nn.functional.cross_entropy(logits, torch.from_numpy(y))
    loss.backward()
    arrays = {"logits": logits, "loss": loss.reshape(1)}
    for name, p in m.named_parameters():
        g = p.grad.detach().reshape(-1)
        if name.startswith("dense_1.weight"):
            arrays[name + ".grad_sampled"] = g[::STRIDE]
            arrays[name + ".grad_sum"] = g.double().sum().reshape(1)
            arrays[name + ".grad_sumsq"] = (g.double() ** 2).sum().reshape(1)
        else:
            arrays[name + ".grad"] = g
    opt = torch.optim.Adadelta(m.parameters(), lr=1.0, rho=0.95, eps=1e-7)
    opt.step()
    for name, p in m.named_parameters():
        v = p.detach().reshape(-1)
        arrays[name + ".after" + ("_sampled" if name == "dense_1.weight" else "")] = (
            v[::STRIDE] if name == "dense_1.weight" else v)
    write_fixture(out, arrays)


if __name__ == "__main__":
    import os
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "fixtures", "step.fix"))
