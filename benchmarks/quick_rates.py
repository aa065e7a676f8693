"""Quick lossless rates for tuning: carphone 10 frames, bikes 10, bigbuckbunny 4 (medium preset).

The ablation table in docs/contexts.md was measured with this script, one change at a time.

    python benchmarks/quick_rates.py [LABEL]
"""

from __future__ import annotations

import sys
import tempfile
import time

import triadic

CLIPS = (("carphone", 10), ("bikes", 10), ("bigbuckbunny", 4))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    start = time.perf_counter()
    rates = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, frames in CLIPS:
            report = triadic.encode(triadic.sample_clip(name), f"{tmp}/{name}.tri", frames=frames, jobs=1)
            rates.append(report["bpppf"])
    print(" ".join(f"{name} {rate:.4f}" for (name, _), rate in zip(CLIPS, rates)),
          f"({time.perf_counter() - start:.0f} s)", " ".join(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
