"""PyTorch references for lathe's learning-rate schedulers (core/optim/sched*.c).

Writes tests/parity/fixtures/sched.fix, read by tests/parity/test_parity_sched.c.
Each configuration runs one torch.optim.lr_scheduler on an SGD optimizer over
one dummy parameter created with lr=base_lr, calling optimizer.step() then
scheduler.step() (scheduler.step(metric) for ReduceLROnPlateau) NSTEPS times.
A configuration <cfg> stores:
  <cfg>.spec      the lathe spec string, as character codes
  <cfg>.base_lr   [1]
  <cfg>.lr        [NSTEPS+1] param_groups[0]["lr"] after construction (0) and
                  after each step k (after the override, if one is at k)
  <cfg>.metric    [NSTEPS] the metric fed at step k+1 (plateau only)
  <cfg>.override  [2*m] pairs (k, lr): after step k, param_groups[0]["lr"] = lr
                  by hand, which lathe's lt_sched_override must follow for the
                  kinds it documents as following PyTorch there
Base lrs, metrics and hand-set lrs are rounded to f32 first (the fixture stores
f32), so both sides see the same doubles; numbers in spec strings are parsed
from the same text on both sides.
Run: python tests/parity/gen_sched_fixtures.py
"""
import math
import os
import sys
import warnings

import numpy as np
import torch
from torch.optim import lr_scheduler as S

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import write_fixture  # noqa: E402


def f32(x):
    return float(np.float32(x))


def warmup_cosine(opt, warmup, t_max, start_factor=1.0 / 3, end_factor=1.0, eta_min=0.0):
    """The usual "linear warmup then cosine" written with PyTorch's classes."""
    lin = S.LinearLR(opt, start_factor=start_factor, end_factor=end_factor, total_iters=warmup)
    cos = S.CosineAnnealingLR(opt, T_max=t_max, eta_min=eta_min)
    return S.SequentialLR(opt, [lin, cos], milestones=[warmup])


def metrics_plateau_a(n):
    # Falls, stalls (changes below the 1% threshold), falls again, noise.
    out, v = [], 1.0
    for k in range(n):
        if k < 10:
            v *= 0.9
        elif k < 25:
            v *= 0.998
        elif k < 30:
            v *= 0.8
        elif k < 50:
            v = v * (1.0 + 0.02 * math.sin(k))
        else:
            v *= 0.995 if k % 7 else 1.1
        out.append(v)
    return out


def metrics_plateau_b(n):
    # An accuracy: rises in steps of varying size, sometimes by less than 0.05.
    # With factor 0.3 and min_lr 0.0085 the third cut (0.009 -> 0.0085) is
    # smaller than eps=1e-3 and is skipped.
    out, v = [], 0.1
    for k in range(n):
        v += [0.06, 0.01, 0.0, 0.07, -0.02, 0.049][k % 6]
        out.append(v)
    return out


def metrics_plateau_c(n):
    # Gains of 2e-5 a step (1e-4, the default rel threshold, is crossed about
    # every 5 steps, within patience 10), one NaN (a bad epoch), then flat:
    # reductions every 11 steps.
    out, v = [], 2.0
    for k in range(n):
        if k < 5:
            v -= 0.3
        elif k < 40:
            v *= 1.0 - 2e-5
        out.append(float("nan") if k == 40 else v)
    return out


# name: (spec, base_lr, nsteps, builder(opt), metrics or None, overrides)
CONFIGS = {
    "step_a": ("step:step_size=7,gamma=0.5", 0.1, 60, lambda o: S.StepLR(o, 7, gamma=0.5), None, []),
    "step_default": ("step: step_size = 10", 1.0, 40, lambda o: S.StepLR(o, 10), None, []),
    "multistep_a": ("multistep:milestones=30;80,gamma=0.1", 0.1, 100,
                    lambda o: S.MultiStepLR(o, [30, 80], gamma=0.1), None, []),
    "multistep_dup": ("multistep:milestones=0;10;25;25;40,gamma=0.3", 0.2, 60,
                      lambda o: S.MultiStepLR(o, [0, 10, 25, 25, 40], gamma=0.3), None, []),
    "exponential": ("exponential:gamma=0.95", 0.1, 100, lambda o: S.ExponentialLR(o, 0.95), None, []),
    "cosine_a": ("cosine:t_max=30,eta_min=0.001", 0.1, 100,
                 lambda o: S.CosineAnnealingLR(o, 30, eta_min=0.001), None, []),
    "cosine_b": ("cosine:T_max=50", 0.05, 60, lambda o: S.CosineAnnealingLR(o, 50), None, []),
    "warmup_cosine_a": ("warmup_cosine:warmup=5,start_factor=0.01,t_max=50,eta_min=1e-4", 0.1, 80,
                        lambda o: warmup_cosine(o, 5, 50, start_factor=0.01, eta_min=1e-4), None, []),
    "warmup_cosine_b": ("warmup_cosine:warmup=10,t_max=40,end_factor=0.5", 0.3, 60,
                        lambda o: warmup_cosine(o, 10, 40, end_factor=0.5), None, []),
    "warmup_cosine_0": ("warmup_cosine:warmup=0,t_max=20,start_factor=0.1", 0.1, 30,
                        lambda o: warmup_cosine(o, 0, 20, start_factor=0.1), None, []),
    "onecycle_cos": ("onecycle:max_lr=0.1,total_steps=100", 0.01, 100,
                     lambda o: S.OneCycleLR(o, 0.1, total_steps=100, cycle_momentum=False), None, []),
    "onecycle_lin3": ("onecycle:max_lr=0.5,total_steps=90,pct_start=0.25,anneal_strategy=linear,"
                      "three_phase=1,div_factor=10,final_div_factor=100", 0.01, 90,
                      lambda o: S.OneCycleLR(o, 0.5, total_steps=90, pct_start=0.25, anneal_strategy="linear",
                                             three_phase=True, div_factor=10, final_div_factor=100,
                                             cycle_momentum=False), None, []),
    "onecycle_epochs": ("onecycle:epochs=6,steps_per_epoch=10,pct_start=0.4", 0.2, 60,
                        lambda o: S.OneCycleLR(o, f32(0.2), epochs=6, steps_per_epoch=10, pct_start=0.4,
                                               cycle_momentum=False), None, []),
    "plateau_a": ("plateau:mode=min,factor=0.5,patience=2,threshold=1e-2,cooldown=1,min_lr=1e-3", 0.1, 80,
                  lambda o: S.ReduceLROnPlateau(o, mode="min", factor=0.5, patience=2, threshold=1e-2,
                                                cooldown=1, min_lr=1e-3), metrics_plateau_a(80), []),
    "plateau_b": ("plateau:mode=max,threshold_mode=abs,threshold=0.05,factor=0.3,patience=0,"
                  "min_lr=0.0085,eps=1e-3", 0.1, 60,
                  lambda o: S.ReduceLROnPlateau(o, mode="max", threshold_mode="abs", threshold=0.05, factor=0.3,
                                                patience=0, min_lr=0.0085, eps=1e-3), metrics_plateau_b(60), []),
    "plateau_default": ("plateau", 0.1, 90, lambda o: S.ReduceLROnPlateau(o), metrics_plateau_c(90), []),
    # Hand-set lrs: the recursive schedulers continue from the value.
    "step_override": ("step:step_size=7,gamma=0.5", 0.1, 60, lambda o: S.StepLR(o, 7, gamma=0.5), None,
                      [(12, 0.03), (30, 0.2)]),
    "multistep_override": ("multistep:milestones=30;80,gamma=0.1", 0.1, 100,
                           lambda o: S.MultiStepLR(o, [30, 80], gamma=0.1), None, [(50, 0.5)]),
    "exponential_override": ("exponential:gamma=0.9", 0.1, 60, lambda o: S.ExponentialLR(o, 0.9), None,
                             [(10, 0.05), (11, 0.08)]),
    "cosine_override": ("cosine:t_max=20,eta_min=0.01", 0.1, 60,
                        lambda o: S.CosineAnnealingLR(o, 20, eta_min=0.01), None, [(8, 0.07), (45, 0.02)]),
    "warmup_cosine_override": ("warmup_cosine:warmup=5,start_factor=0.01,t_max=50,eta_min=1e-4", 0.1, 60,
                               lambda o: warmup_cosine(o, 5, 50, start_factor=0.01, eta_min=1e-4), None,
                               [(5, 0.02), (20, 0.2)]),
    "plateau_override": ("plateau:mode=min,factor=0.5,patience=2,threshold=1e-2,cooldown=1,min_lr=1e-3", 0.1, 80,
                         lambda o: S.ReduceLROnPlateau(o, mode="min", factor=0.5, patience=2, threshold=1e-2,
                                                       cooldown=1, min_lr=1e-3), metrics_plateau_a(80),
                         [(20, 0.4)]),
}


def run(name, spec, base_lr, nsteps, build, metrics, overrides):
    p = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.SGD([p], lr=f32(base_lr))
    sched = build(opt)
    lrs = [opt.param_groups[0]["lr"]]
    ov = {k: f32(v) for k, v in overrides}
    for k in range(1, nsteps + 1):
        opt.step()
        if metrics is None:
            sched.step()
        else:
            sched.step(f32(metrics[k - 1]))
        if k in ov:
            opt.param_groups[0]["lr"] = ov[k]
        lrs.append(float(opt.param_groups[0]["lr"]))
    out = {
        name + ".spec": [float(ord(ch)) for ch in spec],
        name + ".base_lr": [f32(base_lr)],
        name + ".lr": np.array(lrs, dtype=np.float64),
    }
    if metrics is not None:
        out[name + ".metric"] = [f32(m) for m in metrics]
    if overrides:
        out[name + ".override"] = [x for k, v in overrides for x in (float(k), f32(v))]
    return out


def main():
    warnings.simplefilter("ignore")
    arrays = {}
    for name, cfg in CONFIGS.items():
        arrays.update(run(name, *cfg))
    names = " ".join(CONFIGS)
    arrays["configs"] = [float(ord(ch)) for ch in names]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "sched.fix")
    write_fixture(path, arrays)
    print(f"wrote {path} ({len(CONFIGS)} configurations, {os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
