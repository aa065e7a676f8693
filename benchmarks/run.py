"""Run the benchmark suite: ``python benchmarks/run.py [CLIPS...] [--frames N] [--out DIR]``.

A thin wrapper around :mod:`triadic.bench.run` (also installed as ``triadic bench``).
"""

import os
import sys

try:
    from triadic.bench.run import main
except ImportError:  # running from a source checkout without installing
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    from triadic.bench.run import main

if __name__ == "__main__":
    raise SystemExit(main())
