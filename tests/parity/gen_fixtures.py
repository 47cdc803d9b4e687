"""Regenerates every PyTorch parity fixture under tests/parity/fixtures/.

Run with a Python that has torch and numpy (PyTorch from PyPI):
    python tests/parity/gen_fixtures.py
The C tests read the committed fixtures and need no Python."""
import os
import runpy
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
for script in sorted(f for f in os.listdir(HERE) if f.startswith("gen_") and f.endswith("_fixtures.py")):
    print("running", script)
    runpy.run_path(os.path.join(HERE, script), run_name="__main__")
