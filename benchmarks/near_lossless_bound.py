"""Check the near-lossless bound on every sample of the public clips, for every E.

    python benchmarks/near_lossless_bound.py [--clips NAME...] [--frames N] [--errors E...] [--json FILE]

For each clip (carphone and bikes: 30 frames, bigbuckbunny: 20, as in the benchmark) and each
E in 1, 4, 13, 40, 121: encode with ``triadic.encode(..., max_error=E)``, decode, and compare every
sample of every plane of every frame with the source. Prints, per (clip, E), the samples checked,
the largest absolute error, the PSNR over all planes, bpppf, and whether the bound held; exits with
status 1 when any sample is off by more than E (or a frame is missing). Public API only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

import numpy as np

try:
    import triadic
except ImportError:  # running from a source checkout without installing
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    import triadic

#: The clips and frame counts of the benchmark (DESIGN.md §3).
CLIPS = {"carphone": 30, "bikes": 30, "bigbuckbunny": 20}
ERRORS = (1, 4, 13, 40, 121)


def check(frames: list, e: int, folder: str) -> dict:
    """Encode ``frames`` at max_error ``e``, decode, compare every sample; the figures of one row."""
    path = os.path.join(folder, f"e{e}.tri")
    start = time.perf_counter()
    report = triadic.encode(frames, path, max_error=e)
    encode_s = time.perf_counter() - start
    fmt = triadic.pixel_format(frames[0].pix_fmt)
    samples = 0
    sq = 0.0
    worst = 0
    worst_at = None
    decoded = 0
    over = 0
    start = time.perf_counter()
    for index, (src, got) in enumerate(zip(frames, triadic.decode(path))):
        decoded += 1
        for plane, (a, b) in enumerate(zip(src.planes, got.planes)):
            if a.shape != b.shape:
                raise SystemExit(f"frame {index} plane {plane}: shape {b.shape}, expected {a.shape}")
            diff = np.abs(a.astype(np.int64) - b.astype(np.int64))
            samples += diff.size
            sq += float(np.dot(diff.ravel(), diff.ravel()))
            over += int(np.count_nonzero(diff > e))
            m = int(diff.max(initial=0))
            if m > worst:
                worst, worst_at = m, (index, plane)
    decode_s = time.perf_counter() - start
    size = os.path.getsize(path)
    os.remove(path)
    peak = fmt.max_value
    psnr = 10 * math.log10(peak * peak * samples / sq) if sq else math.inf
    h, w = frames[0].planes[0].shape
    return {"max_error": e, "frames": len(frames), "frames_decoded": decoded, "samples": samples,
            "samples_over": over, "observed_max": worst, "worst_at": worst_at, "psnr": psnr,
            "bytes": size, "bpppf": 8.0 * size / (w * h * len(frames)), "encode_s": encode_s,
            "decode_s": decode_s, "report_bytes": report["bytes"],
            "held": decoded == len(frames) and over == 0 and worst <= e}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/near_lossless_bound.py",
                                     description="Check |decoded - source| <= E on every sample of the public clips.")
    parser.add_argument("--clips", nargs="+", default=list(CLIPS), choices=list(CLIPS),
                        help="clips (default: all three)")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames per clip (default: carphone and bikes 30, bigbuckbunny 20)")
    parser.add_argument("--errors", nargs="+", type=int, default=list(ERRORS), metavar="E",
                        help="bounds to check (default: 1 4 13 40 121)")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)

    rows = []
    total = 0
    ok = True
    print(f"{'clip':<13} {'E':>4} {'frames':>6} {'samples checked':>16} {'max err':>8} "
          f"{'PSNR dB':>8} {'bpppf':>7} {'enc s':>6}  bound", flush=True)
    with tempfile.TemporaryDirectory(prefix="triadic-bound-") as folder:
        for name in args.clips:
            n = args.frames or CLIPS[name]
            frames = list(triadic.read_frames(triadic.sample_clip(name), frames=n))
            for e in args.errors:
                row = {"clip": name, "pix_fmt": frames[0].pix_fmt, **check(frames, e, folder)}
                rows.append(row)
                total += row["samples"]
                ok &= row["held"]
                print(f"{name:<13} {e:>4} {row['frames_decoded']:>6} {row['samples']:>16,} "
                      f"{row['observed_max']:>8} {row['psnr']:>8.2f} {row['bpppf']:>7.4f} "
                      f"{row['encode_s']:>6.1f}  {'held' if row['held'] else 'VIOLATED'}"
                      + ("" if row["held"] else f" ({row['samples_over']} samples over, worst at "
                                                 f"frame/plane {row['worst_at']})"), flush=True)
            del frames
    print(f"{total:,} samples checked in {len(rows)} (clip, E) runs: "
          f"{'every sample within its bound' if ok else 'THE BOUND WAS VIOLATED'}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"rows": rows, "samples": total, "held": ok,
                       "triadic": triadic.__version__}, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
