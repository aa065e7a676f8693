"""Plot a benchmark run: ``python benchmarks/plot.py DIR [--out IMG_DIR]`` (reads DIR/results.json).

A thin wrapper around :mod:`triadic.bench.plot`.
"""

import os
import sys

try:
    from triadic.bench.plot import main
except ImportError:  # running from a source checkout without installing
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    from triadic.bench.plot import main

if __name__ == "__main__":
    raise SystemExit(main())
