"""Calibrate the search's residual cost table against the real entropy model.

The motion search (kernels/motion.py) prices a residual of magnitude a at ``COST[a]`` / 256 bits
instead of coding every candidate. This script measures what a luma residual of magnitude a really
costs: it encodes real clips with the coder's passes instrumented, gives every binary decision's
ideal code length -log2 p (p from the context model at that moment) to the sample it belongs to
(magnitude and sign decisions; the block pass is side information), and averages per |residual|
over the inter frames. It prints that measured table beside COST, fits a + b·log2(1 + |r|) to it,
and with --try encodes each clip again with the measured table and with the fit in place of COST.

    python benchmarks/calibrate_costs.py [--clips carphone bikes bigbuckbunny] [--frames 10 10 4] [--try]

The result is in docs/theory.md §5 ("How the search prices a residual").
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np

import triadic
from triadic import planes
from triadic.kernels import context as ck
from triadic.kernels import motion
from triadic.model import stripes

SHOWN = (0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32, 48, 64)
#: Magnitudes seen fewer times than this take the fitted curve in the measured table.
MIN_COUNT = 30


class Attribution:
    """Wraps the plane coder so every magnitude/sign decision's bits land on its sample."""

    def __init__(self):
        self.samples: list[tuple[np.ndarray, np.ndarray]] = []  # (|q|, bits) per luma plane coded
        self._positions = None
        self._bits = None
        self._originals = (ck.magnitude_contexts, ck.sign_contexts, planes.code_bits, planes._code_planes)

    def __enter__(self):
        magnitude_contexts, sign_contexts, _, code_planes = self._originals

        def magnitude(*args, **kwargs):
            pos, ctx = magnitude_contexts(*args, **kwargs)
            self._positions = pos
            return pos, ctx

        def sign(*args, **kwargs):
            where, ctx = sign_contexts(*args, **kwargs)
            self._positions = where
            return where, ctx

        def code_bits(coder, counts, ctx, values):
            out = np.empty(ctx.size, dtype=np.int32)
            info = np.empty(ctx.size)
            total = 0.0
            for s in stripes(ctx.size):  # the same stripes and updates as planes.code_bits
                c = ctx[s]
                p1 = counts.probabilities(c)
                got = coder.bits(None if values is None else values[s], p1)
                info[s] = -np.log2(np.where(got != 0, p1, 1.0 - p1))
                counts.update(c, got)
                out[s] = got
                total += coder.last_bits
            positions, self._positions = self._positions, None
            if positions is not None and self._bits is not None:
                np.add.at(self._bits, positions, info)
            return out, total

        def luma_planes(coder, model, chan, shape, q, *args, **kwargs):
            self._bits = np.zeros(shape[0] * shape[1]) if chan == 0 and q is not None else None
            out = code_planes(coder, model, chan, shape, q, *args, **kwargs)
            if self._bits is not None:
                self.samples.append((np.abs(q).ravel(), self._bits))
            self._bits = None
            return out

        ck.magnitude_contexts, ck.sign_contexts = magnitude, sign
        planes.code_bits, planes._code_planes = code_bits, luma_planes
        return self

    def __exit__(self, *exc):
        ck.magnitude_contexts, ck.sign_contexts, planes.code_bits, planes._code_planes = self._originals


def encode(name: str, frames: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        return triadic.encode(triadic.sample_clip(name), f"{tmp}/{name}.tri", frames=frames, jobs=1)["bpppf"]


def measure(name: str, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Count and summed bits per luma |residual| over the inter frames of ``name``."""
    with Attribution() as attribution:
        encode(name, frames)
    inter = attribution.samples[1:]  # the first frame is a keyframe: intra only
    a = np.concatenate([s[0] for s in inter])
    b = np.concatenate([s[1] for s in inter])
    size = motion.COST.size
    return np.bincount(a, minlength=size)[:size], np.bincount(a, weights=b, minlength=size)[:size]


def fit(count: np.ndarray, bits: np.ndarray) -> tuple[float, float]:
    """Weighted least squares of mean bits = a + b log2(1 + |r|) over well-populated magnitudes."""
    x = np.flatnonzero(count >= MIN_COUNT)
    weight = np.sqrt(count[x])
    design = np.stack([np.ones(x.size), np.log2(1.0 + x)], axis=1) * weight[:, None]
    (a, b), *_ = np.linalg.lstsq(design, bits[x] / count[x] * weight, rcond=None)
    return float(a), float(b)


def table(a: float, b: float, count: np.ndarray | None = None, bits: np.ndarray | None = None) -> np.ndarray:
    """A COST-shaped table (1/256 bit): the fit, with measured means where there are enough samples."""
    t = a + b * np.log2(1.0 + np.arange(motion.COST.size))
    if count is not None:
        seen = count >= MIN_COUNT
        t[seen] = bits[seen] / count[seen]
        t = np.maximum.accumulate(t)  # a larger residual never costs less
    return np.round(256.0 * t).astype(np.int64)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", nargs="+", default=["carphone", "bikes", "bigbuckbunny"])
    parser.add_argument("--frames", nargs="+", type=int, default=[10, 10, 4])
    parser.add_argument("--try", dest="try_tables", action="store_true",
                        help="encode again with the measured table and the fit in place of COST")
    args = parser.parse_args(argv)
    frames = (args.frames * len(args.clips))[:len(args.clips)] if len(args.frames) == 1 else args.frames
    measured = {name: measure(name, n) for name, n in zip(args.clips, frames)}

    print("|r|  " + "  ".join(f"{name:>20}" for name in measured) + "   COST")
    print("     " + "  ".join(f"{'count':>10}{'bits':>10}" for _ in measured))
    for r in SHOWN:
        cells = [f"{c[r]:>10}{(b[r] / c[r] if c[r] else float('nan')):>10.2f}" for c, b in measured.values()]
        print(f"{r:>4} " + "  ".join(cells) + f"   {motion.COST[r] / 256:.2f}")
    count = sum(c for c, _ in measured.values())
    bits = sum(b for _, b in measured.values())
    pooled = fit(count, bits)
    print("fit a + b log2(1+|r|):", "  ".join(f"{name} {fit(*cb)[0]:.2f} + {fit(*cb)[1]:.2f}"
                                              for name, cb in measured.items()),
          f"  pooled {pooled[0]:.2f} + {pooled[1]:.2f}   (COST: 1.00 + 1.60)")

    if args.try_tables:
        default = motion.COST
        print("bpppf with     COST     measured (per clip)   pooled fit")
        try:
            for (name, (c, b)), n in zip(measured.items(), frames):
                motion.COST = default
                base = encode(name, n)
                motion.COST = table(*fit(c, b), c, b)
                own = encode(name, n)
                motion.COST = table(*pooled)
                pooled_rate = encode(name, n)
                print(f"{name:<12} {base:.4f}   {own:.4f} ({own / base - 1:+.2%})   "
                      f"{pooled_rate:.4f} ({pooled_rate / base - 1:+.2%})")
        finally:
            motion.COST = default
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
