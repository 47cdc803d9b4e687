"""PyTorch references for lathe's optimizers (core/optim).

Writes tests/parity/fixtures/optim.fix, read by tests/parity/test_parity_optim.c.
Three small parameters (sizes 20, 3 and 18, so the C update loops run both
their full-vector and their tail paths) start from init.<param>; the same five
gradients grad.<step>.<param> (step 1..5, scaled differently per step so that
amsgrad's maximum and the running averages both rise and fall) are applied by
every configuration below. A configuration <cfg> stores:
  <cfg>.hp.<name>          each hyperparameter set (as a 1-element array)
  <cfg>.step<k>.<param>    the parameters after step k
  <cfg>.state.<param>.<slot>  the optimizer state after the last step
Every optimizer runs its single-tensor path (foreach=False), on the CPU in f32.
Run: python tests/parity/gen_optim_fixtures.py
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import write_fixture  # noqa: E402

STEPS = 5
GRAD_SCALES = [1.0, 2.0, 0.1, 1.0, 0.05]
SHAPES = {"w1": (4, 5), "b1": (3,), "w2": (2, 3, 3)}

# name: (kind, {lathe hparam: value}); the C test holds the same table.
CONFIGS = {
    "sgd_plain": ("sgd", {"lr": 0.1}),
    "sgd_nesterov": ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": 1, "weight_decay": 0.01}),
    "sgd_dampening": ("sgd", {"lr": 0.05, "momentum": 0.8, "dampening": 0.3}),
    "adam": ("adam", {"lr": 0.01}),
    "adam_amsgrad": ("adam", {"lr": 0.01, "beta2": 0.9, "amsgrad": 1, "weight_decay": 0.05}),
    "adamw": ("adamw", {"lr": 0.01, "weight_decay": 0.1}),
    "adadelta_keras": ("adadelta", {"lr": 1.0, "rho": 0.95, "eps": 1e-7}),
    "adadelta_default": ("adadelta", {}),
    "rmsprop": ("rmsprop", {"lr": 0.01}),
    "rmsprop_centered": ("rmsprop", {"lr": 0.01, "centered": 1, "momentum": 0.9, "weight_decay": 0.01}),
    "adagrad": ("adagrad", {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.1,
                            "initial_accumulator_value": 0.1}),
}

# torch state key -> lathe slot name (identical today; kept explicit).
SLOTS = {
    "sgd": ["momentum_buffer"],
    "adam": ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
    "adamw": ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
    "adadelta": ["square_avg", "acc_delta"],
    "rmsprop": ["square_avg", "momentum_buffer", "grad_avg"],
    "adagrad": ["sum"],
}


def make_optimizer(kind, params, hp):
    hp = dict(hp)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=hp.pop("lr"), momentum=hp.pop("momentum", 0),
                               dampening=hp.pop("dampening", 0), weight_decay=hp.pop("weight_decay", 0),
                               nesterov=bool(hp.pop("nesterov", 0)), foreach=False), hp
    if kind in ("adam", "adamw"):
        cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        kw = {"lr": hp.pop("lr", 1e-3), "betas": (hp.pop("beta1", 0.9), hp.pop("beta2", 0.999)),
              "eps": hp.pop("eps", 1e-8), "amsgrad": bool(hp.pop("amsgrad", 0)), "foreach": False}
        if "weight_decay" in hp:
            kw["weight_decay"] = hp.pop("weight_decay")
        return cls(params, **kw), hp
    if kind == "adadelta":
        return torch.optim.Adadelta(params, lr=hp.pop("lr", 1.0), rho=hp.pop("rho", 0.9), eps=hp.pop("eps", 1e-6),
                                    weight_decay=hp.pop("weight_decay", 0), foreach=False), hp
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=hp.pop("lr", 1e-2), alpha=hp.pop("alpha", 0.99),
                                   eps=hp.pop("eps", 1e-8), weight_decay=hp.pop("weight_decay", 0),
                                   momentum=hp.pop("momentum", 0), centered=bool(hp.pop("centered", 0)),
                                   foreach=False), hp
    if kind == "adagrad":
        return torch.optim.Adagrad(params, lr=hp.pop("lr", 1e-2), lr_decay=hp.pop("lr_decay", 0),
                                   weight_decay=hp.pop("weight_decay", 0),
                                   initial_accumulator_value=hp.pop("initial_accumulator_value", 0),
                                   eps=hp.pop("eps", 1e-10), foreach=False), hp
    raise ValueError(kind)


def main():
    torch.manual_seed(4321)
    arrays = {}
    init = {n: 0.5 * torch.randn(*s) for n, s in SHAPES.items()}
    grads = [{n: GRAD_SCALES[k] * torch.randn(*s) for n, s in SHAPES.items()} for k in range(STEPS)]
    for n, t in init.items():
        arrays[f"init.{n}"] = t
    for k in range(STEPS):
        for n, t in grads[k].items():
            arrays[f"grad.{k + 1}.{n}"] = t

    for cfg, (kind, hp) in CONFIGS.items():
        params = {n: t.clone().requires_grad_() for n, t in init.items()}
        opt, unused = make_optimizer(kind, list(params.values()), hp)
        assert not unused, f"{cfg}: unused hparams {unused}"
        for name, v in hp.items():
            arrays[f"{cfg}.hp.{name}"] = torch.tensor([v], dtype=torch.float64)
        for k in range(STEPS):
            for n, p in params.items():
                p.grad = grads[k][n].clone()
            opt.step()
            for n, p in params.items():
                arrays[f"{cfg}.step{k + 1}.{n}"] = p.detach().clone()
        for n, p in params.items():
            st = opt.state[p]
            for slot in SLOTS[kind]:
                if slot in st and st[slot] is not None:
                    arrays[f"{cfg}.state.{n}.{slot}"] = st[slot]

    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "optim.fix")
    write_fixture(out, arrays)
    print(f"wrote {out}: {len(arrays)} arrays")


if __name__ == "__main__":
    main()
