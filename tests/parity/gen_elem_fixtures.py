"""PyTorch references for the element-wise, softmax, batch-norm and loss CPU kernels.

Writes tests/parity/fixtures/elem.fix, read by tests/parity/test_parity_elem.c.
Each case <name> stores its configuration as <name>.cfg (floats), its inputs,
the forward output and the input gradients of loss = sum(out * dout) for a
random dout (for the scalar losses, dout is a random upstream scalar).
Inputs are drawn wide enough to reach the tails of every activation.
Run: python tests/parity/gen_elem_fixtures.py
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import write_fixture  # noqa: E402

torch.manual_seed(4321)
arrays = {}


def act_case(name, fn, n, cfg=0.0, spread=4.0):
    x = (torch.randn(n) * spread).requires_grad_()
    y = fn(x)
    g = torch.randn_like(y)
    y.backward(g)
    arrays.update({f"{name}.cfg": torch.tensor([n, cfg]), f"{name}.x": x, f"{name}.y": y,
                   f"{name}.dout": g, f"{name}.dx": x.grad})


def softmax_case(name, fn, R, C, spread=3.0):
    x = (torch.randn(R, C) * spread).requires_grad_()
    y = fn(x, dim=-1)
    g = torch.randn_like(y)
    y.backward(g)
    arrays.update({f"{name}.cfg": torch.tensor([R, C]), f"{name}.x": x, f"{name}.y": y,
                   f"{name}.dout": g, f"{name}.dx": x.grad})


def batchnorm_case(name, B, C, H, W, training, momentum=0.1, eps=1e-5):
    bn = torch.nn.BatchNorm2d(C, eps=eps, momentum=momentum)
    with torch.no_grad():
        bn.weight.copy_(torch.rand(C) + 0.5)
        bn.bias.copy_(torch.randn(C) * 0.5)
        bn.running_mean.copy_(torch.randn(C) * 0.2)
        bn.running_var.copy_(torch.rand(C) + 0.5)
    rm0, rv0 = bn.running_mean.clone(), bn.running_var.clone()
    bn.train(training)
    x = (torch.randn(B, C, H, W) * 2.0 + 1.0).requires_grad_()
    y = bn(x)
    g = torch.randn_like(y)
    y.backward(g)
    arrays.update({
        f"{name}.cfg": torch.tensor([B, C, H * W, float(training), momentum, eps]),
        f"{name}.x": x, f"{name}.gamma": bn.weight, f"{name}.beta": bn.bias,
        f"{name}.rm0": rm0, f"{name}.rv0": rv0, f"{name}.rm1": bn.running_mean, f"{name}.rv1": bn.running_var,
        f"{name}.y": y, f"{name}.dout": g, f"{name}.dx": x.grad,
        f"{name}.dgamma": bn.weight.grad, f"{name}.dbeta": bn.bias.grad,
    })


def class_loss_case(name, B, C, log_input):
    x = (torch.randn(B, C) * 3.0).requires_grad_()
    labels = torch.randint(0, C, (B,))
    if log_input:  # nll takes log-probabilities
        inp = F.log_softmax(x.detach(), dim=-1).requires_grad_()
        loss = F.nll_loss(inp, labels)
    else:
        inp = x
        loss = F.cross_entropy(inp, labels)
    dloss = torch.rand(()) + 0.5
    loss.backward(dloss)
    arrays.update({f"{name}.cfg": torch.tensor([B, C]), f"{name}.x": inp, f"{name}.labels": labels,
                   f"{name}.loss": loss.reshape(1), f"{name}.dloss": dloss.reshape(1), f"{name}.dx": inp.grad})
    if not log_input:
        arrays[f"{name}.probs"] = F.softmax(x.detach(), dim=-1)


def mse_case(name, n):
    pred = torch.randn(n).requires_grad_()
    target = torch.randn(n).requires_grad_()
    loss = F.mse_loss(pred, target)
    dloss = torch.rand(()) + 0.5
    loss.backward(dloss)
    arrays.update({f"{name}.cfg": torch.tensor([n]), f"{name}.pred": pred, f"{name}.target": target,
                   f"{name}.loss": loss.reshape(1), f"{name}.dloss": dloss.reshape(1),
                   f"{name}.dpred": pred.grad, f"{name}.dtarget": target.grad})


for n in (37, 300):
    act_case(f"relu_{n}", F.relu, n)
    act_case(f"tanh_{n}", torch.tanh, n)
    act_case(f"sigmoid_{n}", torch.sigmoid, n, spread=6.0)
    act_case(f"gelu_{n}", F.gelu, n)
    act_case(f"elu_{n}", lambda t: F.elu(t, alpha=1.0), n, cfg=1.0)
act_case("elu_a07", lambda t: F.elu(t, alpha=0.7), 100, cfg=0.7)
for R, C in ((1, 1), (3, 10), (4, 37), (2, 100)):
    softmax_case(f"softmax_{R}x{C}", F.softmax, R, C)
    softmax_case(f"log_softmax_{R}x{C}", F.log_softmax, R, C)
softmax_case("softmax_big", F.softmax, 2, 20, spread=40.0)
softmax_case("log_softmax_big", F.log_softmax, 2, 20, spread=40.0)
batchnorm_case("bn_train_a", 4, 3, 5, 5, True)
batchnorm_case("bn_train_b", 2, 5, 1, 1, True, momentum=0.3, eps=1e-3)
batchnorm_case("bn_train_c", 8, 2, 6, 7, True)
batchnorm_case("bn_eval", 3, 4, 4, 4, False)
class_loss_case("ce_a", 8, 10, False)
class_loss_case("ce_b", 3, 37, False)
class_loss_case("ce_c", 1, 2, False)
class_loss_case("nll_a", 8, 10, True)
class_loss_case("nll_b", 5, 3, True)
mse_case("mse_a", 50)
mse_case("mse_b", 1)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "elem.fix")
write_fixture(out, arrays)
print(f"wrote {out}: {len(arrays)} arrays, {os.path.getsize(out)} bytes")
