"""Bit-exactness on real footage in several pixel formats.

Converts the first N frames of a clip (default: carphone) to gray16le, yuv444p and rgb24 with
PyAV's scaler, stores each conversion losslessly, then encodes, decodes and compares with triadic.

    python benchmarks/verify_formats.py [CLIP] [--frames N]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

import numpy as np

import triadic

FORMATS = ("yuv420p", "gray16le", "yuv444p", "rgb24")


def convert(clip: pathlib.Path, pix_fmt: str, frames: int) -> list[triadic.Frame]:
    """Frames of ``clip`` converted to ``pix_fmt`` (the conversion is the test input, not lossless)."""
    import av

    out = []
    with av.open(str(clip)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == frames:
                break
            array = frame.reformat(format=pix_fmt).to_ndarray()
            if pix_fmt == "gray16le":
                planes = (np.ascontiguousarray(array, dtype=np.uint16),)
            elif pix_fmt == "rgb24":
                planes = tuple(np.ascontiguousarray(array[..., c]) for c in range(3))
            else:
                planes = tuple(np.ascontiguousarray(p) for p in array.reshape(3, frame.height, frame.width))
            out.append(triadic.Frame(planes, pix_fmt))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", nargs="?", default="carphone")
    parser.add_argument("--frames", type=int, default=30)
    args = parser.parse_args(argv)
    clip = pathlib.Path(args.clip) if pathlib.Path(args.clip).exists() else triadic.sample_clip(args.clip)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for pix_fmt in FORMATS:
            frames = (list(triadic.read_frames(clip, frames=args.frames)) if pix_fmt == "yuv420p"
                      else convert(clip, pix_fmt, args.frames))
            path = pathlib.Path(tmp) / f"{pix_fmt}.tri"
            start = time.perf_counter()
            report = triadic.encode(frames, path)
            encode_s = time.perf_counter() - start
            start = time.perf_counter()
            decoded = list(triadic.decode(path))
            decode_s = time.perf_counter() - start
            exact = len(decoded) == len(frames) and all(a.equals(b) for a, b in zip(frames, decoded))
            ok &= exact
            print(f"{clip.stem:<18} {pix_fmt:<9} {len(frames):>3} frames  {report['bpppf']:.4f} bpppf  "
                  f"enc {len(frames) / encode_s:6.1f} fps  dec {len(frames) / decode_s:6.1f} fps  "
                  f"bit-exact: {'yes' if exact else 'no'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
