#!/usr/bin/env python3
"""Reads a lathe run folder (written by tests/unit/test_runlog.c) with
TensorBoard's own readers and checks it against the folder's metrics.csv,
hparams.yaml and interventions.csv.

Usage: check_runlog_tb.py DIR TRAIN_STEPS VAL_STEPS TEST_STEPS EPOCH_END_STEPS
  each *_STEPS a comma-separated list of the steps the run logged at.

Checks: scalars train_loss, lr, samples_per_s, val_loss, val_acc, test_loss,
test_acc at exactly the given steps and equal to metrics.csv's cells; epoch
scalars at the epoch ends; the HParams experiment (hparam names = the keys of
hparams.yaml, types, the five metric infos), session start values (lr and the
strings as in hparams.yaml), session end SUCCESS; text summaries hparams,
model and interventions (one per line of interventions.csv, at its step); a
weight histogram per parameter at each epoch end with the parameter's size.
Exits 1 when any check failed.
"""
import csv
import glob
import os
import sys

import numpy as np
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.backend.event_processing import plugin_event_accumulator as pea
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.util import tensor_util

FAILED = []
METRICS = ["train_loss", "val_loss", "val_acc", "test_loss", "test_acc"]
# mlp: flatten, dense_1 784x256, dense_2 256x128, dense_3 128x10
PARAM_SIZES = {"dense_1.weight": 200704, "dense_1.bias": 256, "dense_2.weight": 32768,
               "dense_2.bias": 128, "dense_3.weight": 1280, "dense_3.bias": 10}


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        FAILED.append(what)


def steps_arg(s):
    return [int(x) for x in s.split(",") if x]


def read_yaml(path):
    """hparams.yaml as lathe writes it: flat `key: value` lines."""
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition(": ")
            if v.startswith("'") and v.endswith("'"):
                v = v[1:-1].replace("''", "'")
            out[k] = v
    return out


def main(logdir, train_steps, val_steps, test_steps, epoch_steps):
    files = glob.glob(os.path.join(logdir, "*tfevents*"))
    check(len(files) == 1, f"one event file: {[os.path.basename(f) for f in files]}")
    with open(os.path.join(logdir, "metrics.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    hp = read_yaml(os.path.join(logdir, "hparams.yaml"))
    with open(os.path.join(logdir, "interventions.csv"), newline="") as f:
        ivs = list(csv.DictReader(f))

    try:  # PyYAML, as Lightning's load_hparams_from_yaml reads the file, when installed
        import yaml
    except ImportError:
        yaml = None
    if yaml:
        with open(os.path.join(logdir, "hparams.yaml")) as f:
            y = yaml.safe_load(f)
        check(type(y["lr"]) is float and type(y["eps"]) is float and type(y["batch_size"]) is int
              and type(y["experiment"]) is str and y["eps"] == 1e-8, f"PyYAML reads hparams.yaml with types: {y}")
        with open(os.path.join(logdir, "run.yaml")) as f:
            ry = yaml.safe_load(f)
        check(ry["state"] == "done" and type(ry["steps"]) is int, f"PyYAML reads run.yaml: {ry}")
    else:
        print("note: no PyYAML here; hparams.yaml checked by the line reader only")

    acc = ea.EventAccumulator(logdir, size_guidance={k: 0 for k in ea.DEFAULT_SIZE_GUIDANCE})
    acc.Reload()
    tags = acc.Tags()
    print("tags:", {k: v for k, v in tags.items() if v})
    want = {"train_loss", "lr", "samples_per_s", "val_loss", "val_acc", "test_loss", "test_acc", "epoch"}
    check(set(tags["scalars"]) == want, f"scalar tags {sorted(tags['scalars'])}")
    expect_steps = {"train_loss": train_steps, "lr": train_steps, "samples_per_s": train_steps,
                    "val_loss": val_steps, "val_acc": val_steps, "test_loss": test_steps, "test_acc": test_steps}
    for tag, steps in expect_steps.items():
        if tag not in tags["scalars"]:
            continue
        ev = acc.Scalars(tag)
        check([e.step for e in ev] == steps, f"{tag} steps {[e.step for e in ev]} == {steps}")
        csv_vals = [(int(r["step"]), float(r[tag])) for r in rows if r[tag] != ""]
        tb_vals = [(e.step, e.value) for e in ev]
        tol = 0.051 if tag == "samples_per_s" else 0  # the CSV rounds the rate to 0.1
        same = len(csv_vals) == len(tb_vals) and all(
            a[0] == b[0] and abs(np.float32(a[1]) - np.float32(b[1])) <= tol * max(1, abs(a[1]))
            for a, b in zip(csv_vals, tb_vals))
        check(same, f"{tag}: TensorBoard values equal metrics.csv's ({tb_vals[:3]}...)")
        check(all(np.isfinite(e.value) for e in ev), f"{tag} values finite")
    for tag in ("val_acc", "test_acc"):
        if tag in tags["scalars"]:
            check(all(0 <= e.value <= 1 for e in acc.Scalars(tag)), f"{tag} in [0, 1]")
    if "epoch" in tags["scalars"]:
        ep = acc.Scalars("epoch")
        check([(e.step, e.value) for e in ep] == [(s, float(i)) for i, s in enumerate(epoch_steps)],
              f"epoch scalars {[(e.step, e.value) for e in ep]}")

    check(set(tags["histograms"]) == set(PARAM_SIZES), f"histogram tags {sorted(tags['histograms'])}")
    for name, size in PARAM_SIZES.items():
        if name not in tags["histograms"]:
            continue
        hs = acc.Histograms(name)
        check([h.step for h in hs] == epoch_steps, f"{name} histograms at steps {[h.step for h in hs]}")
        check(all(h.histogram_value.num == size and sum(h.histogram_value.bucket) == size for h in hs),
              f"{name} histogram counts {size} values")
    w1 = acc.Histograms("dense_1.weight")
    if len(w1) >= 2:
        check(w1[0].histogram_value.sum != w1[-1].histogram_value.sum, "weights changed between epochs")

    pacc = pea.EventAccumulator(logdir, size_guidance={pea.TENSORS: 0})
    pacc.Reload()
    text_tags = set(pacc.PluginTagToContent("text"))
    check(text_tags == {"hparams", "model", "interventions"}, f"text tags {sorted(text_tags)}")

    def texts(tag):
        return [(t.step, tensor_util.make_ndarray(t.tensor_proto)[0].decode("utf-8")) for t in pacc.Tensors(tag)]

    if "hparams" in text_tags:
        (step, md), = texts("hparams")
        print(md)
        check(step == 0 and md.startswith("| name | value |"), "hparams text is a markdown table at step 0")
        check(f"| lr | {float(hp['lr']):g} |" in md and f"| optimizer | {hp['optimizer']} |" in md,
              "hparams text holds lr and optimizer")
        check(all(f"| {k} |" in md for k in hp), "hparams text has every hparams.yaml key")
    if "model" in text_tags:
        (step, md), = texts("model")
        print(md)
        check("| dense_1 | Dense | 256 | 200,960 |" in md and "| flatten | Flatten | 784 | 0 |" in md,
              "model text rows (name, type, output shape, params)")
        check("Total params: 235,146" in md, "model text total")
    if "interventions" in text_tags:
        got = texts("interventions")
        print("interventions:", got)
        check([s for s, _ in got] == [int(r["step"]) for r in ivs], "one intervention text per CSV line, at its step")
        check(all(r["new"] in t for r, (_, t) in zip(ivs, got) if r["new"]), "intervention texts name the new values")

    content = pacc.PluginTagToContent("hparams")
    check(set(content) == {"_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"},
          f"hparams plugin tags {sorted(content)}")
    if len(content) != 3:
        return
    exp = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    infos = {i.name: i.type for i in exp.hparam_infos}
    print("hparam infos:", infos)
    check(set(infos) == set(hp), f"HParams columns == hparams.yaml keys ({sorted(infos)})")
    check(infos.get("experiment") == api_pb2.DATA_TYPE_STRING and infos.get("optimizer") == api_pb2.DATA_TYPE_STRING
          and infos.get("lr") == api_pb2.DATA_TYPE_FLOAT64, "hparam types")
    metrics = [(m.name.group, m.name.tag) for m in exp.metric_infos]
    check(metrics == [("", m) for m in METRICS], f"metric infos {metrics}")

    s = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    print("session start:", dict((k, str(v).strip()) for k, v in s.hparams.items()))
    check(s.hparams["lr"].number_value == float(hp["lr"]), f"session lr {s.hparams['lr'].number_value}")
    check(s.hparams["experiment"].string_value == hp["experiment"]
          and s.hparams["optimizer"].string_value == hp["optimizer"], "session strings")
    check(s.hparams["batch_size"].number_value == float(hp["batch_size"]), "session batch_size")
    check(len(s.hparams) == len(hp), "session has every hparam")
    e = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_end_info"]).session_end_info
    check(e.status == api_pb2.STATUS_SUCCESS and e.end_time_secs >= s.start_time_secs > 1.6e9,
          f"session end SUCCESS after start ({e.status}, {e.end_time_secs - s.start_time_secs:.3f} s)")


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    main(sys.argv[1], *(steps_arg(a) for a in sys.argv[2:]))
    print(f"{len(FAILED)} check(s) failed" if FAILED else "all run-log TensorBoard checks passed")
    sys.exit(1 if FAILED else 0)
