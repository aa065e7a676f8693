"""Decode speed only: encode a few frames of each clip once, then time ``triadic.decode`` (jobs=1).

    python benchmarks/decode_speed.py [--clips bikes bigbuckbunny] [--frames 12 6] [--repeat 3]
                                      [--cache DIR] [--profile FILE]

The streams are cached in ``--cache`` (default: a folder in the temporary directory, keyed by
clip, frame count and format version), so two trees can be timed on the same bytes: run it with
``PYTHONPATH=/path/to/tree/src`` for each, interleaved, on the same cache. Every decode is checked
against the source frames. The decoder's kernels are loaded once before the clock starts; the
time reported is the best of ``--repeat`` decodes (the machine is shared: the minimum is the least
noisy figure; the CPU time of the process, also reported, suffers less from other processes on a
shared machine). ``--profile FILE`` also writes a cProfile of one decode per clip (FILE.<clip>).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import triadic
from triadic.container import VERSION_MAJOR
from triadic.bench.frames import load_clip


def _decode(path: str) -> list:
    return list(triadic.decode(path, jobs=1))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", nargs="+", default=["bikes", "bigbuckbunny"])
    parser.add_argument("--frames", nargs="+", type=int, default=[12, 6],
                        help="frames per clip, one number or one per clip (default 12 6)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "triadic-decode-speed"))
    parser.add_argument("--profile", default=None)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    counts = args.frames * len(args.clips) if len(args.frames) == 1 else args.frames
    os.makedirs(args.cache, exist_ok=True)
    print(f"triadic {triadic.__file__}", flush=True)
    results = {}
    for name, n in zip(args.clips, counts):
        clip = load_clip(str(triadic.sample_clip(name)), n)
        frames = [triadic.Frame(planes=tuple(p), pix_fmt=clip.pix_fmt) for p in clip.frames]
        path = os.path.join(args.cache, f"{name}-{n}-v{VERSION_MAJOR}.tri")
        if not os.path.exists(path):
            start = time.perf_counter()
            triadic.encode(frames, path + ".part", jobs=1)
            os.replace(path + ".part", path)
            print(f"  encoded {name} ({n} frames) in {time.perf_counter() - start:.1f} s", flush=True)
        decoded = _decode(path)  # loads the kernels
        exact = len(decoded) == len(frames) and all(a.equals(b) for a, b in zip(frames, decoded))
        del decoded
        times, cpu = [], []
        for _ in range(args.repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            _decode(path)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        best = min(times)
        results[name] = {"frames": n, "width": clip.width, "height": clip.height,
                         "seconds": times, "cpu_seconds": cpu, "fps": n / best,
                         "cpu_fps": n / min(cpu), "exact": exact}
        print(f"  {name} {clip.width}x{clip.height}, {n} frames: decode {n / best:.2f} fps, "
              f"{n / min(cpu):.2f} per CPU second (best of {args.repeat}: {best:.3f} s, "
              f"CPU {min(cpu):.3f} s; all {' '.join(f'{t:.3f}' for t in times)})"
              + ("" if exact else "  NOT EXACT"), flush=True)
        if args.profile:
            import cProfile

            profile = cProfile.Profile(time.process_time)  # CPU time: less noise from other processes
            profile.runcall(_decode, path)
            profile.dump_stats(f"{args.profile}.{name}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0 if all(r["exact"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
