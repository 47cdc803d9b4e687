"""PyTorch references for the recurrent layers and the embedding.

Writes tests/parity/fixtures/rnn.fix, read by tests/parity/test_parity_rnn.c.
Each case <name> stores <name>.cfg (floats holding small integers), the inputs
and parameters (PyTorch's own initialisation, gates i,f,g,o / r,z,n), the
outputs, and the gradients of
    loss = sum(out * dout) + sum(h_n * dh_n) [+ sum(c_n * dc_n)]
for random upstream gradients dout, dh_n, dc_n, so the final states' gradients
are exercised too. The reference runs in float64 and is stored as float32.
Run: python tests/parity/gen_rnn_fixtures.py
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import write_fixture  # noqa: E402

torch.manual_seed(20240611)
torch.set_default_dtype(torch.float64)
arrays = {}


def rnn_case(name, kind, B, T, I, H, with_state):
    cls = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
    m = cls(I, H, batch_first=True)
    x = torch.randn(B, T, I, requires_grad=True)
    h0 = torch.randn(1, B, H, requires_grad=True)
    c0 = torch.randn(1, B, H, requires_grad=True)
    if kind == "lstm":
        out, (hn, cn) = m(x, (h0, c0)) if with_state else m(x)
    else:
        out, hn = m(x, h0) if with_state else m(x)
        cn = None
    dout = torch.randn_like(out)
    dhn = torch.randn_like(hn)
    loss = (out * dout).sum() + (hn * dhn).sum()
    if cn is not None:
        dcn = torch.randn_like(cn)
        loss = loss + (cn * dcn).sum()
    loss.backward()
    a = {
        "cfg": torch.tensor([B, T, I, H, int(with_state)]),
        "x": x, "w_ih": m.weight_ih_l0, "w_hh": m.weight_hh_l0, "b_ih": m.bias_ih_l0, "b_hh": m.bias_hh_l0,
        "out": out, "h_n": hn[0], "dout": dout, "dh_n": dhn[0],
        "dx": x.grad, "dw_ih": m.weight_ih_l0.grad, "dw_hh": m.weight_hh_l0.grad,
        "db_ih": m.bias_ih_l0.grad, "db_hh": m.bias_hh_l0.grad,
    }
    if with_state:
        a.update({"h0": h0[0], "dh0": h0.grad[0]})
    if kind == "lstm":
        a.update({"c_n": cn[0], "dc_n": dcn[0]})
        if with_state:
            a.update({"c0": c0[0], "dc0": c0.grad[0]})
    for k, v in a.items():
        arrays[f"{name}.{k}"] = v


def embedding_case(name, V, E, B, T):
    m = torch.nn.Embedding(V, E)
    ids = torch.randint(0, V, (B, T))
    ids[0, :3] = ids[1, 0]  # repeated ids must add their gradients
    out = m(ids)
    dout = torch.randn_like(out)
    (out * dout).sum().backward()
    arrays.update({
        f"{name}.cfg": torch.tensor([V, E, B, T]),
        f"{name}.ids": ids.double(), f"{name}.weight": m.weight, f"{name}.out": out,
        f"{name}.dout": dout, f"{name}.dweight": m.weight.grad,
    })


rnn_case("lstm", "lstm", 3, 5, 4, 6, True)
rnn_case("lstm_zero", "lstm", 2, 4, 3, 5, False)
rnn_case("lstm_long", "lstm", 2, 24, 8, 16, True)
rnn_case("gru", "gru", 3, 5, 4, 6, True)
rnn_case("gru_zero", "gru", 2, 4, 3, 5, False)
rnn_case("gru_long", "gru", 2, 24, 8, 16, True)
embedding_case("emb", 11, 5, 3, 7)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "rnn.fix")
write_fixture(out, arrays)
print(f"wrote {out}: {len(arrays)} arrays, {os.path.getsize(out)} bytes")
