"""The ``triadic`` command line: encode, decode, info, verify, plot, batch, bench.

Exit codes: 0 success, 1 verify found a mismatch (or ``decode --salvage`` lost frames), 2 bad
input or a damaged stream (one line on stderr, no traceback, no output file), 130 interrupted
(SIGINT), 143 terminated (SIGTERM); an interrupted command leaves no partial output.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time

import numpy as np

from . import __version__, codec
from .errors import CorruptStreamError, InputError, TriadicError
from .params import DEFAULT_PRESET, MAX_ERRORS, MAX_REFERENCES, PRESETS


#: Seconds without a frame after which a first run says that it is compiling.
COMPILE_NOTICE_AFTER = 2.0


def _compiling(label: str) -> bool:
    """Whether the kernels of command ``label`` ("encode" or "decode") still have to be compiled
    (judged by one kernel each: the search, the reconstruction)."""
    if label == "decode":
        from .kernels.predict import _decode_plane as kernel
    else:
        from .kernels.motion import search_frame as kernel
    return not kernels_compiled(kernel)


def kernels_compiled(kernel) -> bool:
    """Whether numba's cache on disk holds a compiled ``kernel`` (a dispatcher) for this source:
    False on the first run after an install or an upgrade, which compiles the kernels (a minute or
    two). True when numba's cache cannot be read this way (nothing is said then)."""
    try:
        return bool(kernel._cache._cache_file._load_index())
    except Exception:  # noqa: BLE001 - numba's internals are not an API: say nothing
        return True


class Progress:
    """A one-line progress bar on stderr, shown only on a terminal and without --quiet.

    ``compiling`` (default: numba's cache is read, on a terminal only): the kernels are not
    compiled yet, so if no frame is done after COMPILE_NOTICE_AFTER seconds the line says why (bad
    input fails before that, on one line)."""

    def __init__(self, label: str, quiet: bool, compiling: bool | None = None):
        self.label = label
        self.enabled = not quiet and sys.stderr.isatty()
        self.start = time.perf_counter()
        self.shown = self.noticed = False
        self._notice = None
        if self.enabled and (_compiling(label) if compiling is None else compiling):
            self._notice = threading.Timer(COMPILE_NOTICE_AFTER, self._compiling)
            self._notice.daemon = True
            self._notice.start()

    def _compiling(self) -> None:
        sys.stderr.write(f"{self.label}: first run on this machine: compiling triadic's kernels "
                         "(a minute or two, once)")
        sys.stderr.flush()
        self.shown = self.noticed = True

    def _quiet_notice(self) -> None:
        if self._notice is not None:
            self._notice.cancel()
            self._notice = None

    def __call__(self, done: int, total: int | None) -> None:
        self._quiet_notice()
        if not self.enabled:
            return
        if self.noticed:  # the notice keeps its line; the bar goes on the next
            sys.stderr.write("\n")
            self.noticed = False
        fps = done / max(1e-9, time.perf_counter() - self.start)
        if total:
            width = 30
            filled = int(width * min(done, total) / total)
            bar = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
        else:
            bar = f"{done} frames"
        sys.stderr.write(f"\r{self.label} {bar} {fps:.1f} fps ")
        sys.stderr.flush()
        self.shown = True

    def done(self) -> None:
        self._quiet_notice()
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _integer(text: str, least: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
    return value


def _positive(text: str) -> int:
    return _integer(text, 1, "a positive integer")


def _count(text: str) -> int:
    return _integer(text, 0, "a frame number (0 or more)")


def _max_error(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value not in MAX_ERRORS:
        raise argparse.ArgumentTypeError(
            f"--max-error must be one of {', '.join(map(str, MAX_ERRORS))} (= (3^j-1)/2), got {text}")
    return value


def _describe_preset(name: str) -> str:
    """A preset as --preset's help lists it, read off params.PRESETS (so it cannot go stale)."""
    p = PRESETS[name]
    refs = f"{p['lags']} reference{'s' if p['lags'] > 1 else ''}"
    walk = f", vectors walked up to {p['descent']} steps by estimated bits" if p["descent"] else ""
    default = "; the default" if name == DEFAULT_PRESET else ""
    return f"{name} (leaves down to {p['min_leaf']}x{p['min_leaf']}, {refs}, +-{p['search_range']}{walk}{default})"


def _add_encode_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", type=_positive, help="encode at most N frames")
    p.add_argument("--keyint", type=_positive, default=60, help="keyframe (segment) interval (default 60)")
    p.add_argument("--preset", choices=list(PRESETS), default=DEFAULT_PRESET,
                   help="search effort: " + ", ".join(_describe_preset(name) for name in PRESETS))
    p.add_argument("--refs", type=_positive, metavar="M", dest="references",
                   help=f"reference frames the search may use, 1 to {MAX_REFERENCES} (default: the preset's)")
    p.add_argument("--block-size", type=int, choices=(8, 16, 32, 64), default=16, metavar="N",
                   help="root block of the partition quadtree, in luma samples: 8, 16 (default), 32 or 64")
    p.add_argument("--max-error", type=_max_error, default=0, metavar="E",
                   help="per-sample error bound: 0 (lossless, default), 1, 4, 13, 40 or 121")


def _encode_options(args) -> dict:
    """The encoder's choices from the command line (the options _add_encode_options adds)."""
    return dict(frames=args.frames, keyint=args.keyint, preset=args.preset, max_error=args.max_error,
                block_size=args.block_size, references=args.references)


def _add_jobs(p: argparse.ArgumentParser, what: str = "segments") -> None:
    p.add_argument("--jobs", type=_positive, metavar="N",
                   help=f"processes coding {what} in parallel, with the same result as 1 "
                        "(default: every core, when the pictures are large enough to gain, "
                        "as many as the free memory holds)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="triadic", description="Lossless video compression on balanced-ternary residuals.")
    parser.add_argument("--version", action="version", version=f"triadic {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("encode", help="compress a video into a .tri file")
    p.add_argument("input", help="video file, folder or glob of PNG/TIFF frames, or - for a video on stdin "
                                  "(y4m, or another streamable container)")
    p.add_argument("output", help="the .tri file to write")
    _add_encode_options(p)
    _add_jobs(p)
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")

    p = sub.add_parser("decode", help="decompress a .tri file")
    p.add_argument("input", help="the .tri file")
    p.add_argument("output", help="OUT.y4m, OUT.mkv (FFV1), a folder for PNG frames, or - for y4m on stdout")
    p.add_argument("--start", type=_count, default=0, metavar="N",
                   help="first frame to write (default 0); decoding seeks to the segment that holds it")
    p.add_argument("--frames", type=_positive, metavar="N", help="write at most N frames")
    p.add_argument("--salvage", action="store_true",
                   help="write every intact frame of a damaged file (resuming at the next keyframe "
                        "after damage) and report the lost ones; exit 1 if any were lost")
    _add_jobs(p)
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")

    p = sub.add_parser("info", help="describe a .tri file")
    p.add_argument("input", help="the .tri file")
    p.add_argument("--json", action="store_true", help="print JSON (with per-plane and per-frame statistics)")
    p.add_argument("--brief", action="store_true", help="header and sizes only; do not decode")

    p = sub.add_parser("verify", help="encode, decode and compare with the source")
    p.add_argument("input", help="video file, folder or glob of frames")
    p.add_argument("tri", nargs="?", help="an existing .tri of INPUT to check (default: encode to a temporary file)")
    _add_encode_options(p)
    _add_jobs(p)
    p.add_argument("--quiet", action="store_true", help="print only the verdict")

    p = sub.add_parser("plot", help="draw one of the formalism's pictures (needs matplotlib)",
                       description="Draw a picture of a .tri file, or of a video encoded first. KIND: "
                       "barcode (trits of a pixel over time), planes (fold of plane K of a frame), "
                       "sheet (digit pairs and the 9->5 fold), depth (digits needed per pixel), "
                       "mdl (bits per frame and modes), money (rho_k and the rate models), "
                       "tree (3-adic walk of a pixel's digits). See docs/cli.md.")
    p.add_argument("kind", choices=["barcode", "planes", "sheet", "depth", "mdl", "money", "tree"],
                   metavar="KIND", help="barcode, planes, sheet, depth, mdl, money or tree")
    p.add_argument("input", help="a .tri file, or a video (encoded to a temporary .tri first)")
    p.add_argument("--out", required=True, help="picture to write: .png, .svg or .pdf")
    p.add_argument("--frame", type=int, metavar="T", help="frame (planes, depth; sheet and tree: only T)")
    p.add_argument("--pixel", metavar="Y,X", help="pixel in frame coordinates (barcode, tree; default: centre)")
    p.add_argument("--plane", type=int, metavar="K", help="ternary plane (planes: default 1; sheet: default 0)")
    p.add_argument("--channel", metavar="C", help="channel name or index: Y, U, V, Co, Cg or 0..2 (default Y)")
    p.add_argument("--block", type=_positive, metavar="N", help="N x N pixels around --pixel (barcode: 1, tree: 8)")
    _add_encode_options(p)

    p = sub.add_parser("batch", help="encode many videos on a Dask cluster (needs dask.distributed)",
                       description="Encode many videos, segment by segment, on a Dask cluster: "
                       "a local one, or the scheduler at --scheduler. Each output is the same file "
                       "as triadic encode writes; it appears whole or not at all.")
    batch = p.add_subparsers(dest="batch_command", required=True, metavar="ACTION")
    b = batch.add_parser("encode", help="encode INPUTS into DIR/<name>.tri")
    b.add_argument("inputs", nargs="+", metavar="INPUT", help="video files, folders or globs of frames")
    b.add_argument("--out", required=True, metavar="DIR", help="folder for the .tri files (created if missing)")
    b.add_argument("--scheduler", metavar="ADDRESS",
                   help="a Dask scheduler, e.g. tcp://host:8786 (default: a local cluster)")
    b.add_argument("--jobs", type=_positive, metavar="N",
                   help="worker processes of the local cluster (default: every core, as many as the "
                        "free memory holds for the largest picture)")
    _add_encode_options(b)
    b.add_argument("--quiet", action="store_true", help="print nothing but errors")

    p = sub.add_parser("bench", help="benchmark against other codecs (see docs/benchmarks.md)", add_help=False)
    p.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def _encode(args) -> int:
    progress = Progress("encode", args.quiet)
    try:
        report = codec.encode(args.input, args.output, **_encode_options(args), progress=progress,
                              jobs=args.jobs)
    finally:
        progress.done()
    if not args.quiet:
        fps = report["frames"] / max(1e-9, report["seconds"])
        print(f"{args.output}: {report['frames']} frames {report['width']}x{report['height']} "
              f"{report['pix_fmt']}, {report['bytes']} bytes, {report['bpppf']:.4f} bpppf, "
              f"{fps:.1f} fps")
    return 0


def _decode(args) -> int:
    from .io import open_sink

    if args.salvage and (args.start or args.frames):
        raise InputError("--salvage decodes the whole file; it cannot be combined with --start or --frames")
    header = codec.read_header(args.input)
    if args.start >= max(1, header.frame_count):
        raise InputError(f"--start {args.start} is out of range: the stream has {header.frame_count} frames")
    total = header.frame_count - args.start
    total = total if args.frames is None else min(total, args.frames)
    progress = Progress("decode", args.quiet or args.output == "-")
    lost: list[int] = []
    with open_sink(args.output, pix_fmt=header.pix_fmt, width=header.width, height=header.height,
                   frame_rate=header.frame_rate) as sink:
        count = 0
        frames = (_salvaged(args.input, lost) if args.salvage else
                  codec.decode(args.input, start=args.start, frames=args.frames, jobs=args.jobs))
        for frame in frames:
            sink.write(frame)
            count += 1
            progress(count + len(lost), total)
        if lost and not count:
            raise CorruptStreamError(f"nothing to salvage: all {len(lost)} frames are lost")
    progress.done()
    if lost:
        print(f"triadic: salvage: lost {len(lost)} of {header.frame_count} frames: "
              f"{_ranges(lost)}; wrote the other {count}", file=sys.stderr)
    if not args.quiet and args.output != "-":
        print(f"{args.output}: {count} frames {header.width}x{header.height} {header.pix_fmt}")
    return 1 if lost else 0


def _salvaged(path, lost: list[int]):
    """The intact frames of ``path``; the numbers of the lost ones go to ``lost``."""
    for index, frame in codec.salvage(path):
        if frame is None:
            lost.append(index)
        else:
            yield frame


def _ranges(numbers: list[int]) -> str:
    """[3, 4, 5, 9] -> '3-5, 9'."""
    parts, start = [], None
    for i, n in enumerate(numbers):
        if start is None:
            start = n
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            parts.append(str(start) if start == n else f"{start}-{n}")
            start = None
    return ", ".join(parts)


def _info(args) -> int:
    meta = codec.info(args.input, detail=not args.brief)
    if args.json:
        print(json.dumps(meta, indent=2))
        return 0
    print(f"{args.input}: {meta['frames']} frames {meta['width']}x{meta['height']} {meta['pix_fmt']} "
          f"({meta['bit_depth']} bit, colour transform {meta['colour_transform']}), {meta['frame_rate']} fps")
    print(f"  {meta['bytes']} bytes, {meta['bpppf']:.4f} bpppf, keyint {meta['keyint']}, "
          f"max error {meta['max_error']}")
    if "planes" in meta:
        pixels = meta["width"] * meta["height"] * max(1, meta["frames"])
        print(f"  side info {meta['side_bits'] / pixels:.4f} bpppf, residual planes "
              f"{meta['residual_bits'] / pixels:.4f} bpppf")
        print("  channel  k   rho_k    bits/pixel")
        for p in meta["planes"]:
            print(f"  {p['channel']:<7} {p['k']:>2}  {p['rho']:.4f}  {p['bits'] / pixels:.4f}")
    return 0


def _sample_bound(header) -> int:
    """The error bound on the source's own samples. E holds on the planes the codec quantises;
    for rgb those are YCoCg-R planes, and the inverse transform widens E to E + 2*ceil(E/2)
    on R and B (G: E + ceil(E/2))."""
    e = header.max_error
    return e + 2 * ((e + 1) // 2) if header.colour_transform == "ycocg-r" else e


def _verify(args) -> int:
    from .io import open_source

    if args.input == "-":
        raise InputError("verify reads its input twice (to encode it, then to compare); "
                         "it cannot read standard input: save the video to a file first")
    with tempfile.TemporaryDirectory(prefix="triadic-verify-") as tmp:
        tri = args.tri
        if tri is None or not os.path.exists(tri):
            target = tri or os.path.join(tmp, "verify.tri")
            progress = Progress("encode", args.quiet)
            try:
                report = codec.encode(args.input, target, **_encode_options(args), progress=progress,
                                      jobs=args.jobs)
            finally:
                progress.done()
            tri = target
            seconds = report["seconds"]
        else:
            seconds = None
        header = codec.read_header(tri)
        frames = args.frames if args.frames else header.frame_count
        bound = header.max_error
        exact = True
        worst = 0
        count = 0
        sq_err = 0.0
        samples = 0
        start = time.perf_counter()
        with open_source(args.input, frames=frames) as source:
            decoded = codec.decode(tri, jobs=args.jobs)
            for original in source:
                got = next(decoded, None)
                # compare samples, not format names: a sink may spell the same planes differently
                # (e.g. rgb48le comes back from FFV1 as gbrp16le)
                if got is None or [p.shape for p in got.planes] != [p.shape for p in original.planes]:
                    exact = False
                    break
                for a, b in zip(original.planes, got.planes):
                    diff = np.abs(a.astype(np.int64) - b.astype(np.int64))
                    worst = max(worst, int(diff.max(initial=0)))
                    sq_err += float((diff * diff).sum())
                    samples += diff.size
                count += 1
            if next(decoded, None) is not None:
                exact = False
        dec_seconds = time.perf_counter() - start
        size = os.path.getsize(tri)
    exact = exact and count == header.frame_count and worst == 0
    bpppf = 8.0 * size / max(1, header.width * header.height * count)
    if not args.quiet:
        print(f"frames: {count}  size: {size} bytes  bpppf: {bpppf:.4f}")
        if seconds is not None:
            print(f"encode: {count / max(1e-9, seconds):.1f} fps  decode+compare: {count / max(1e-9, dec_seconds):.1f} fps")
        if bound:
            peak = (1 << header.bit_depth) - 1
            psnr = 10 * np.log10(peak * peak / (sq_err / samples)) if sq_err else float("inf")
            where = (f" on rgb samples; E = {bound} on the YCoCg-R planes"
                     if _sample_bound(header) != bound else "")
            print(f"max error: {worst} (bound {_sample_bound(header)}{where})  PSNR: {psnr:.2f} dB")
    if bound:
        ok = count == header.frame_count and worst <= _sample_bound(header)
        print(f"within bound: {'yes' if ok else 'no'}")
        return 0 if ok else 1
    print(f"bit-exact: {'yes' if exact else 'no'}")
    return 0 if exact else 1


def _plot(args) -> int:
    from .viz import plot

    plot(args.kind, args.input, args.out, frame=args.frame, pixel=args.pixel, plane=args.plane,
         channel=args.channel, block=args.block, **_encode_options(args))
    print(f"{args.out}: {args.kind} of {args.input}")
    return 0


def _batch(args) -> int:
    from . import batch

    if "-" in args.inputs:
        raise InputError("batch encode reads files, not standard input: use triadic encode - OUT.tri")
    os.makedirs(args.out, exist_ok=True)

    def done(report: dict) -> None:
        if "error" in report:
            print(f"triadic: error: {report['input']}: {report['error']}", file=sys.stderr)
        elif not args.quiet:
            fps = report["frames"] / max(1e-9, report["seconds"])
            print(f"{report['output']}: {report['frames']} frames {report['width']}x{report['height']} "
                  f"{report['pix_fmt']}, {report['bytes']} bytes, {report['bpppf']:.4f} bpppf, "
                  f"{fps:.1f} fps", flush=True)

    reports = batch.encode(args.inputs, args.out, scheduler=args.scheduler, jobs=args.jobs,
                           **_encode_options(args), done=done)
    failed = sum("error" in r for r in reports)
    if failed:
        print(f"triadic: batch: {failed} of {len(reports)} inputs failed", file=sys.stderr)
    return 2 if failed else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "bench":
        from .bench.run import main as bench_main

        return bench_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"encode": _encode, "decode": _decode, "info": _info, "verify": _verify, "plot": _plot,
                "batch": _batch}
    previous = _catch_sigterm()
    try:
        return handlers[args.command](args)
    except TriadicError as exc:
        print(f"triadic: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        return _stopped(exc)
    except SystemError as exc:
        # a signal handler that ran while numba called back into Python (it does, from inside
        # some kernels): numba reports the KeyboardInterrupt it raised as a SystemError
        cause = exc
        while cause is not None and not isinstance(cause, KeyboardInterrupt):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        return _stopped(cause)
    except BrokenPipeError:
        # the reader of stdout went away (e.g. `| head`); silence Python's flush at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        print(f"triadic: error: {exc.strerror or exc}{': ' + exc.filename if exc.filename else ''}",
              file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _stopped(exc: KeyboardInterrupt) -> int:
    """Ctrl-C or SIGTERM: the writers' `with` blocks have removed their temporary files on the way
    out; one line, and 130 or 143."""
    terminated = isinstance(exc, _Terminated)
    print(f"triadic: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
    return 143 if terminated else 130


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every writer on the stack aborts and removes its temp file."""


def _raise_terminated(signum, frame):
    raise _Terminated()


def _catch_sigterm():
    """Turn SIGTERM into an exception (the default action would kill us mid-write); the previous
    handler, to restore, or None where signals cannot be set (not the main thread)."""
    try:
        return signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:
        return None


if __name__ == "__main__":
    sys.exit(main())
