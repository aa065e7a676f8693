"""Encoder only: choose each frame's chart (modes and motion vectors) by estimated bits.

This is the seam for the MDL predictor search of the formalism (partition trees, warps, lags);
for now it searches quarter-sample block motion against the previous frame. The decoder never imports
this module.
"""

from __future__ import annotations

import numpy as np

from .chart import Chart
from .kernels import motion


def _half(plane: np.ndarray) -> np.ndarray:
    """2x2 mean (rounded down), odd edges padded by replication."""
    h, w = plane.shape
    p = np.pad(plane, ((0, h & 1), (0, w & 1)), mode="edge").astype(np.int32)
    return ((p[0::2, 0::2] + p[1::2, 0::2] + p[0::2, 1::2] + p[1::2, 1::2]) >> 2).astype(np.int32)


def choose_chart(cur: np.ndarray, ref: np.ndarray | None, up: np.ndarray | None, pad: int,
                 prev: Chart | None, block: int, search_range: int, maxval: int) -> Chart:
    """The chart for luma plane ``cur`` predicted from ``ref`` (None: intra only).

    ``up`` is the quarter-sample plane of ``ref`` (padded by ``pad``); vectors are in quarter samples.
    """
    h, w = cur.shape
    if ref is None:
        return Chart.intra(h, w, block)
    shape = (-(-h // block), -(-w // block))
    prev_mvy = prev.mvy if prev is not None else np.zeros(shape, np.int32)
    prev_mvx = prev.mvx if prev is not None else np.zeros(shape, np.int32)
    modes, mvy, mvx, _ = motion.search_frame(cur, ref, up, pad, _half(cur), _half(ref), block,
                                             search_range, prev_mvy, prev_mvx, maxval, motion.COST)
    return Chart(block, modes, mvy, mvx)
