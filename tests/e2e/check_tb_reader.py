#!/usr/bin/env python3
"""Reads the event file that tests/unit/test_tbevents.c writes with
TensorBoard's own readers and checks every value. Usage: check_tb_reader.py DIR

Expected contents (keep in step with write_known_run() in test_tbevents.c):
  scalars  "loss" steps 0..9 value 1/(step+1); "val/acc" step 9 value 0.875
  text     "notes" step 0: TEXT below
  histo    "weights" step 3: x_i = (i - 500) * 0.01 for i in 0..999, plus NaN and inf (left out)
  hparams  experiment: lr FLOAT64, optimizer STRING, augment BOOL; metrics loss, val/acc
           session start: lr 0.01, optimizer "adam", augment true, group "grp", start 1700000000.5
           session end: SUCCESS at 1700000100.25
Prints what it found; exits 1 on the first mismatch.
"""
import glob
import os
import re
import sys
import time

import numpy as np
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.backend.event_processing import plugin_event_accumulator as pea
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.util import tensor_util

TEXT = "# Run notes\n*lr* = 0.01, na\u00efve \u00fcn\u00efcode \u2713 \"quoted\""
FAILED = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        FAILED.append(what)


def main(logdir):
    files = glob.glob(os.path.join(logdir, "*tfevents*"))
    check(len(files) == 1, f"one event file in {logdir}: {[os.path.basename(f) for f in files]}")
    if not files:
        return
    check(re.fullmatch(r"events\.out\.tfevents\.\d{10}\.[^/]+\.\d+\.\d+", os.path.basename(files[0])) is not None,
          "file name events.out.tfevents.<10-digit time>.<host>.<pid>.<n>")

    acc = ea.EventAccumulator(logdir, size_guidance={k: 0 for k in ea.DEFAULT_SIZE_GUIDANCE})
    acc.Reload()
    tags = acc.Tags()
    print("tags:", {k: v for k, v in tags.items() if v})
    check(set(tags["scalars"]) == {"loss", "val/acc"}, f"scalar tags {tags['scalars']}")
    loss = acc.Scalars("loss")
    check([e.step for e in loss] == list(range(10)), f"loss steps {[e.step for e in loss]}")
    want = np.float32([1.0 / (s + 1) for s in range(10)])
    check(np.array_equal(np.float32([e.value for e in loss]), want), f"loss values {[e.value for e in loss]}")
    now = time.time()
    check(all(abs(e.wall_time - now) < 600 for e in loss), f"wall times are real Unix times ({loss[0].wall_time:.3f})")
    check(all(a.wall_time <= b.wall_time for a, b in zip(loss, loss[1:])), "wall times do not go back")
    va = acc.Scalars("val/acc")
    check([(e.step, e.value) for e in va] == [(9, 0.875)], f"val/acc {[(e.step, e.value) for e in va]}")

    check(tags["histograms"] == ["weights"], f"histogram tags {tags['histograms']}")
    (h,) = acc.Histograms("weights")
    hv = h.histogram_value
    x = (np.arange(1000) - 500) * 0.01
    x = x.astype(np.float32).astype(np.float64)
    print(f"histogram step {h.step}: num {hv.num} min {hv.min} max {hv.max} sum {hv.sum:.6f} "
          f"{len(hv.bucket)} buckets")
    check(h.step == 3, "histogram step 3")
    check(hv.num == 1000 and hv.min == x.min() and hv.max == x.max(), "histogram num, min, max")
    check(abs(hv.sum - x.sum()) < 1e-9 and abs(hv.sum_squares - (x * x).sum()) < 1e-6, "histogram sum, sum_squares")
    lim = list(hv.bucket_limit)
    check(len(lim) == len(hv.bucket) and all(a < b for a, b in zip(lim, lim[1:])), "bucket limits increase")
    check(sum(hv.bucket) == 1000, f"bucket counts add up to 1000 ({sum(hv.bucket)})")
    # Bucket i holds [limit[i-1], limit[i]); recount the values independently.
    edges = [-np.inf] + lim
    recount = [int(((x >= edges[i]) & (x < edges[i + 1])).sum()) for i in range(len(lim))]
    check(recount == [int(c) for c in hv.bucket], "every bucket count matches a recount")

    pacc = pea.EventAccumulator(logdir, size_guidance={pea.TENSORS: 0})
    pacc.Reload()
    (t,) = pacc.Tensors("notes")
    text = tensor_util.make_ndarray(t.tensor_proto)
    print("text:", repr(text))
    check(text.shape == (1,) and text[0].decode("utf-8") == TEXT and t.step == 0, "text summary content")
    check("notes" in pacc.PluginTagToContent("text"), "text plugin metadata")

    content = pacc.PluginTagToContent("hparams")
    check(set(content) == {"_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"},
          f"hparams tags {sorted(content)}")
    if len(content) != 3:
        return
    exp = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    print("experiment:", exp)
    check(exp.WhichOneof("data") == "experiment", "experiment record")
    infos = [(i.name, i.type) for i in exp.experiment.hparam_infos]
    check(infos == [("lr", api_pb2.DATA_TYPE_FLOAT64), ("optimizer", api_pb2.DATA_TYPE_STRING),
                    ("augment", api_pb2.DATA_TYPE_BOOL)], f"hparam infos {infos}")
    metrics = [(m.name.group, m.name.tag) for m in exp.experiment.metric_infos]
    check(metrics == [("", "loss"), ("", "val/acc")], f"metric infos {metrics}")

    ssi = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    print("session start:", ssi)
    s = ssi.session_start_info
    check(ssi.WhichOneof("data") == "session_start_info", "session start record")
    check(s.hparams["lr"].number_value == 0.01 and s.hparams["optimizer"].string_value == "adam"
          and s.hparams["augment"].bool_value is True and len(s.hparams) == 3, "session hparam values")
    check(s.group_name == "grp" and s.start_time_secs == 1700000000.5, "group name and start time")

    sei = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_end_info"])
    print("session end:", sei)
    e = sei.session_end_info
    check(e.status == api_pb2.STATUS_SUCCESS and e.end_time_secs == 1700000100.25, "session end status and time")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
    print(f"{len(FAILED)} check(s) failed" if FAILED else "all TensorBoard reader checks passed")
    sys.exit(1 if FAILED else 0)
