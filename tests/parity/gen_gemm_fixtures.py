"""PyTorch references for the GEMM-based CPU kernels (linear, conv2d, pooling).

Writes tests/parity/fixtures/gemm.fix, read by tests/parity/test_parity_gemm.c.
Each case <name> stores its configuration as <name>.cfg (floats holding small
integers), the inputs and parameters, the forward output and every gradient of
loss = sum(out * dout) for a random dout (so the gradients are exactly what
backward receives dout for). Run: python tests/parity/gen_gemm_fixtures.py
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import write_fixture  # noqa: E402

torch.manual_seed(1234)
arrays = {}


def linear_case(name, B, IN, OUT, relu):
    x = torch.randn(B, IN, requires_grad=True)
    w = (torch.randn(OUT, IN) / IN ** 0.5).requires_grad_()
    b = torch.randn(OUT).requires_grad_()
    y = F.linear(x, w, b)
    if relu:
        y = F.relu(y)
    g = torch.randn_like(y)
    y.backward(g)
    arrays.update({
        f"{name}.cfg": torch.tensor([B, IN, OUT, int(relu)]),
        f"{name}.inp": x, f"{name}.w": w, f"{name}.b": b, f"{name}.out": y, f"{name}.dout": g,
        f"{name}.dinp": x.grad, f"{name}.dw": w.grad, f"{name}.db": b.grad,
    })


def conv_case(name, B, C, H, W, OC, KH, KW, stride, pad, relu, bias=True):
    x = torch.randn(B, C, H, W, requires_grad=True)
    w = (torch.randn(OC, C, KH, KW) / (C * KH * KW) ** 0.5).requires_grad_()
    b = torch.randn(OC).requires_grad_() if bias else None
    y = F.conv2d(x, w, b, stride=stride, padding=pad)
    if relu:
        y = F.relu(y)
    g = torch.randn_like(y)
    y.backward(g)
    arrays.update({
        f"{name}.cfg": torch.tensor([B, C, H, W, OC, KH, KW, stride, pad, int(relu), int(bias)]),
        f"{name}.inp": x, f"{name}.w": w, f"{name}.out": y, f"{name}.dout": g,
        f"{name}.dinp": x.grad, f"{name}.dw": w.grad,
    })
    if bias:
        arrays[f"{name}.b"] = b
        arrays[f"{name}.db"] = b.grad


def pool_case(name, kind, B, C, H, W, K, stride, pad):
    x = torch.randn(B, C, H, W, requires_grad=True)
    if kind == "max":
        y, idx = F.max_pool2d(x, K, stride, pad, return_indices=True)
    else:
        y = F.avg_pool2d(x, K, stride, pad)  # count_include_pad=True
    g = torch.randn_like(y)
    y.backward(g)
    arrays.update({
        f"{name}.cfg": torch.tensor([B, C, H, W, K, stride, pad]),
        f"{name}.inp": x, f"{name}.out": y, f"{name}.dout": g, f"{name}.dinp": x.grad,
    })
    if kind == "max":
        arrays[f"{name}.idx"] = idx.float()


linear_case("lin", 5, 12, 7, False)
linear_case("lin_relu", 6, 20, 9, True)
conv_case("conv", 2, 3, 7, 7, 4, 3, 3, 1, 0, False)
conv_case("conv_relu", 3, 2, 8, 8, 5, 3, 3, 1, 0, True)
conv_case("conv_s2p1", 2, 3, 9, 8, 4, 3, 3, 2, 1, True)
conv_case("conv_p1", 2, 4, 6, 5, 3, 3, 2, 1, 1, False)
conv_case("conv_s2", 2, 2, 9, 9, 3, 3, 3, 2, 0, True, bias=False)
conv_case("conv_c1", 2, 1, 12, 12, 32, 3, 3, 1, 0, True)
pool_case("maxpool", "max", 2, 3, 6, 8, 2, 2, 0)
pool_case("maxpool_odd", "max", 2, 2, 7, 7, 2, 2, 0)
pool_case("maxpool_k3s2p1", "max", 2, 2, 7, 6, 3, 2, 1)
pool_case("avgpool", "avg", 2, 3, 6, 8, 2, 2, 0)
pool_case("avgpool_k3s2p1", "avg", 2, 2, 7, 6, 3, 2, 1)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "gemm.fix")
write_fixture(out, arrays)
print(f"wrote {out}: {len(arrays)} arrays, {os.path.getsize(out)} bytes")
