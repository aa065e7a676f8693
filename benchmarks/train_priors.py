"""Train the initial context counts ("learned priors") on real footage.

Encodes frames of each clip that the benchmark does not use (from frame 60 on: the benchmark and
benchmarks/quick_rates.py code the first 30 / 30 / 20), collects the final counts of every binary
context and of the chart's categorical contexts (modes, lags, warp families, vector classes), and writes
src/triadic/priors.npz: per context small counts (total at most STRENGTH) with the pooled
probabilities. Both encoder and decoder start every segment from these counts, so the file is part
of the bitstream format: regenerate it only on purpose (it changes every .tri file's bytes).

    python benchmarks/train_priors.py [CLIPS...] [--frames N] [--start S]
"""

from __future__ import annotations

import argparse
import itertools
import pathlib
import sys

import numpy as np

import triadic
from triadic import codec, model

STRENGTH = 24
OUT = pathlib.Path(__file__).resolve().parent.parent / "src" / "triadic" / "priors.npz"


def collect(clip, frames: int, start: int) -> dict[str, np.ndarray]:
    """Final counts of each binary context family after encoding frames start .. start + frames - 1
    of one clip as one segment."""
    source = triadic.read_frames(triadic.sample_clip(clip), frames=start + frames)
    header = codec.StreamHeader(width=source.width, height=source.height, pix_fmt=source.pix_fmt,
                                frame_rate=source.frame_rate, frame_count=0, keyint=frames,
                                max_error=0, block_size=16)
    encoder = codec.FrameEncoder(header, codec.EncodeParams(keyint=frames))
    for frame in itertools.islice(source, start, None):
        encoder.encode(frame)
    m = encoder.segment.model
    return {name: getattr(m, name).counts.astype(np.float64)
            for name in model.BINARY_FAMILIES + model.SYMBOL_FAMILIES}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="*", default=["carphone", "bikes", "bigbuckbunny"])
    parser.add_argument("--frames", type=int, default=30,
                        help="frames per clip (default 30: frames 60-89, as the shipped priors)")
    parser.add_argument("--start", type=int, default=60,
                        help="first frame used (default 60: past every frame the benchmarks code)")
    args = parser.parse_args(argv)
    model.USE_PRIORS = False  # train from empty counts
    pooled: dict[str, np.ndarray] = {}
    for clip in args.clips:
        for name, counts in collect(clip, args.frames, args.start).items():
            total = counts.sum(axis=1, keepdims=True)
            p = (counts + 0.5) / (total + 0.5 * counts.shape[1])  # each clip weighs the same
            seen = (total > 0).astype(np.float64)
            acc = pooled.setdefault(name, np.zeros(counts.shape + (2,)))
            acc[..., 0] += p * seen
            acc[..., 1] += seen
        print(f"{clip}: collected", file=sys.stderr)
    tables = {}
    for name, acc in pooled.items():
        seen = acc[..., 1][:, :1]
        p = np.where(seen > 0, acc[..., 0] / np.maximum(seen, 1), 0.5)
        tables[name] = np.where(seen > 0, np.round(p * STRENGTH), 0).astype(np.int32)
    np.savez_compressed(OUT, **tables)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
