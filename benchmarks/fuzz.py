"""Long fuzz runs of the decoder, on demand (CI runs a fixed small budget: tests/test_fuzz.py).

    python benchmarks/fuzz.py --seconds 600                 # one worker per core, 10 minutes
    python benchmarks/fuzz.py --seconds 600 --boundscheck   # numba bounds checking on (slower)
    python benchmarks/fuzz.py --flips                       # also the single-bit-flip detection rates

Workers run tests/fuzzing.py (seeds, raw and CRC-preserving structural mutations, symbol-level
re-encoding; oracle: only triadic's own errors may escape). A worker that hangs past the per-input
limit or dies is restarted after the input that killed it, which is saved with the other crashing
inputs in --crash-dir (replay one with ``triadic.decode(open(path, "rb").read())``). Prints a JSON
report: inputs tried, seconds, outcomes, crashes and hangs (deduplicated), slowest input, and,
with --flips, the share of single-bit flips detected over every bit of a small stream (container
CRCs on) and over every payload bit with the CRCs recomputed (the payload decoder on its own).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(os.path.dirname(HERE), "tests")
sys.path.insert(0, TESTS)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run_worker(seed: int, seconds: float, limit: float, crash_dir: str, env: dict) -> dict:
    """One worker for ``seconds``, restarted after any input that kills it."""
    import fuzzing

    total = {"seed": seed, "inputs": 0, "seconds": 0.0, "slowest_input_seconds": 0.0,
             "outcomes": collections.Counter(), "crashes": [], "hangs": []}
    start, deadline = 0, time.monotonic() + seconds
    with tempfile.NamedTemporaryFile(prefix=f"fuzz-trace-{seed}-", delete=False) as trace:
        trace_path = trace.name
    try:
        while time.monotonic() < deadline - 1:
            left = deadline - time.monotonic()
            proc = subprocess.run(
                [sys.executable, os.path.join(TESTS, "fuzzing.py"), "--seed", str(seed),
                 "--seconds", f"{left:.1f}", "--limit", str(limit), "--start", str(start),
                 "--crash-dir", crash_dir, "--trace", trace_path],
                capture_output=True, text=True, env=env, timeout=left + limit + 300)
            if proc.returncode == 0:
                report = json.loads(proc.stdout.strip().splitlines()[-1])
                total["inputs"] += report["inputs"]
                total["seconds"] += report["seconds"]
                if report["slowest_input_seconds"] > total["slowest_input_seconds"]:
                    total["slowest_input_seconds"] = report["slowest_input_seconds"]
                    total["slowest_input"] = report["slowest_input"]
                total["outcomes"].update(report["outcomes"])
                total["crashes"] += report["crashes"]
                break
            # the worker died on an input (a hang past the limit, or the interpreter crashed)
            with open(trace_path, "rb") as f:
                number = int(f.read().strip() or start)
            what, data = fuzzing.reproduce(seed, number)
            os.makedirs(crash_dir, exist_ok=True)
            path = os.path.join(crash_dir, f"hang-{seed}-{number}.tri")
            with open(path, "wb") as f:
                f.write(data)
            kind = "hang" if "Timeout" in proc.stderr else f"died (status {proc.returncode})"
            total["hangs"].append({"input": number, "what": what, "kind": kind, "file": path,
                                   "stderr": proc.stderr[-1500:]})
            total["inputs"] += number - start + 1
            total["outcomes"]["crash"] += 1
            total["outcomes"]["unclassified"] += number - start  # their summary died with the worker
            start = number + 1
    finally:
        os.unlink(trace_path)
    total["outcomes"] = dict(total["outcomes"])
    return total


def flip_rates() -> dict:
    import fuzzing

    seeds = fuzzing.make_seeds()
    out = {}
    for name in ("gray16le-noise", "yuv422p10le"):
        t = time.perf_counter()
        container = fuzzing.flip_detection(seeds[name])
        payload = fuzzing.flip_detection(seeds[name], recompute_crcs=True)
        out[name] = {"bytes": len(seeds[name]), "with_crcs": container, "payload_crcs_recomputed": payload,
                     "seconds": round(time.perf_counter() - t, 1)}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300, help="seconds per worker (default 300)")
    parser.add_argument("--workers", type=int, default=_cores(), help="parallel workers (default: cores)")
    parser.add_argument("--limit", type=float, default=20, help="per-input time limit, seconds (default 20)")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000,
                        help="first worker seed (workers use seed, seed+1, ...)")
    parser.add_argument("--boundscheck", action="store_true", help="NUMBA_BOUNDSCHECK=1 (own numba cache)")
    parser.add_argument("--flips", action="store_true", help="measure single-bit-flip detection rates")
    parser.add_argument("--crash-dir", default="bench-out/fuzz-crashes")
    parser.add_argument("--out", help="also write the JSON report here")
    args = parser.parse_args(argv)

    env = dict(os.environ)
    if args.boundscheck:
        env["NUMBA_BOUNDSCHECK"] = "1"
        env["NUMBA_CACHE_DIR"] = os.path.join(tempfile.gettempdir(),
                                              f"triadic-numba-boundscheck-{os.getuid()}")
    from concurrent.futures import ThreadPoolExecutor

    began = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as pool:
        reports = list(pool.map(lambda s: run_worker(s, args.seconds, args.limit, args.crash_dir, env),
                                range(args.seed, args.seed + args.workers)))
    outcomes = collections.Counter()
    for r in reports:
        outcomes.update(r["outcomes"])
    crashes = [dict(c, seed=r["seed"]) for r in reports for c in r["crashes"]]
    hangs = [dict(h, seed=r["seed"]) for r in reports for h in r["hangs"]]
    distinct = collections.Counter(c["message"].strip().splitlines()[-1][:200] for c in crashes)
    report = {
        "inputs": sum(r["inputs"] for r in reports),
        "worker_seconds": round(sum(r["seconds"] for r in reports), 1),
        "wall_seconds": round(time.perf_counter() - began, 1),
        "workers": args.workers, "seeds": [r["seed"] for r in reports], "boundscheck": args.boundscheck,
        "limit_seconds": args.limit,
        "slowest_input_seconds": max(r["slowest_input_seconds"] for r in reports),
        "slowest_input": max(reports, key=lambda r: r["slowest_input_seconds"]).get("slowest_input"),
        "outcomes": dict(outcomes),
        "distinct_crashes": [{"count": n, "message": m} for m, n in distinct.most_common()],
        "crashes": crashes[:50], "hangs": hangs,
    }
    if args.flips:
        report["bit_flips"] = flip_rates()
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 1 if crashes or hangs else 0


if __name__ == "__main__":
    sys.exit(main())
