"""Writer for the parity fixture format read by tests/parity/fixture.c.

"LTFX" | u32 count | count x { u32 name_len | name | u32 ndim | u32 dims | f32 data }
"""
import struct

import numpy as np


def write_fixture(path, arrays):
    """arrays: dict name -> array-like (torch tensors are converted)."""
    items = []
    for name, a in arrays.items():
        if hasattr(a, "detach"):
            a = a.detach().cpu().numpy()
        a = np.ascontiguousarray(np.asarray(a, dtype=np.float32))
        items.append((name, a))
    with open(path, "wb") as f:
        f.write(b"LTFX")
        f.write(struct.pack("<I", len(items)))
        for name, a in items:
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)))
            f.write(nb)
            f.write(struct.pack("<I", a.ndim))
            for d in a.shape:
                f.write(struct.pack("<I", d))
            f.write(a.astype("<f4").tobytes())
