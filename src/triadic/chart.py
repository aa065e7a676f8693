"""The chart g_t of a frame (the formalism's chosen predictor) and its coding as side information.

A chart holds, per luma block, a prediction mode and an integer motion vector. Subsampled planes
use the same blocks (smaller in samples) and see the vector at sub-sample precision. The chart is
coded with ANS under adaptive counts: modes conditioned on the previous frame's co-located mode,
vectors as differences from the median of their neighbours (class + raw mantissa bits).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .errors import CorruptStreamError
from .kernels.predict import INTRA, NUM_MODES
from .model import ContextModel

#: Largest motion vector component a decoder accepts (quarter luma samples).
MAX_MV = 1 << 14


@dataclass(frozen=True, eq=False)
class Chart:
    """Per-block modes (int8) and motion vectors (int32, quarter luma samples) of one frame."""

    block: int
    modes: np.ndarray
    mvy: np.ndarray
    mvx: np.ndarray

    @classmethod
    def intra(cls, height: int, width: int, block: int) -> "Chart":
        shape = (-(-height // block), -(-width // block))
        return cls(block, np.zeros(shape, np.int8), np.zeros(shape, np.int32), np.zeros(shape, np.int32))

    @property
    def is_intra(self) -> bool:
        return not self.modes.any()

    def mode_histogram(self) -> list[int]:
        return np.bincount(self.modes.ravel(), minlength=NUM_MODES).tolist()


@njit(cache=True)
def _mv_predictions(modes, mvy, mvx, dy, dx, decoding):
    """Walk the blocks in raster order: residual <-> vector through the median predictor.

    Encoding fills dy/dx from mvy/mvx; decoding fills mvy/mvx from dy/dx.
    """
    nby, nbx = modes.shape
    for by in range(nby):
        for bx in range(nbx):
            if modes[by, bx] == INTRA:
                continue
            # median of left, top, top-right (top-left when there is no top-right)
            ly = lx = ty = tx = ry = rx = 0
            if bx > 0 and modes[by, bx - 1] != INTRA:
                ly, lx = mvy[by, bx - 1], mvx[by, bx - 1]
            if by > 0 and modes[by - 1, bx] != INTRA:
                ty, tx = mvy[by - 1, bx], mvx[by - 1, bx]
            if by > 0 and bx + 1 < nbx and modes[by - 1, bx + 1] != INTRA:
                ry, rx = mvy[by - 1, bx + 1], mvx[by - 1, bx + 1]
            elif by > 0 and bx > 0 and modes[by - 1, bx - 1] != INTRA:
                ry, rx = mvy[by - 1, bx - 1], mvx[by - 1, bx - 1]
            py = max(min(ly, ty), min(max(ly, ty), ry))
            px = max(min(lx, tx), min(max(lx, tx), rx))
            if decoding:
                mvy[by, bx] = dy[by, bx] + py
                mvx[by, bx] = dx[by, bx] + px
            else:
                dy[by, bx] = mvy[by, bx] - py
                dx[by, bx] = mvx[by, bx] - px


def _code_ints(coder, model: ContextModel, component: int, values: np.ndarray | None,
               n: int) -> tuple[np.ndarray, float]:
    """Code n signed integers (one motion vector component) as classes plus raw mantissa bits.

    The class is 0 for zero, else 2L-1 (positive) or 2L (negative) with L the bit length of |v|;
    the L-1 bits below the leading one follow, bit j of every value that has one in turn.
    """
    ctx = np.full(n, component)
    if values is not None:
        mag = np.abs(values).astype(np.int64)
        length = np.zeros(n, dtype=np.int64)
        while (mag >> length).any():
            length += (mag >> length) > 0
        cls = np.where(values == 0, 0, 2 * length - (values > 0)).astype(np.int32)
    cls = coder.symbols(cls if values is not None else None, model.mv_class.probabilities(ctx))
    side = coder.last_bits
    model.mv_class.update(ctx, cls)
    length = (cls.astype(np.int64) + 1) // 2
    if int(length.max(initial=0)) > 16:
        raise CorruptStreamError("motion vector difference out of range")
    if values is None:
        mag = np.where(length > 0, np.int64(1) << np.maximum(length - 1, 0), 0)
    for j in range(int(length.max(initial=0)) - 1):
        has = length - 1 > j
        got = coder.bits(((mag[has] >> j) & 1) if values is not None else None,
                         np.full(int(has.sum()), 0.5))
        side += coder.last_bits
        if values is None:
            mag[has] |= got.astype(np.int64) << j
    if values is not None:
        return values, side
    return np.where(cls % 2 == 1, mag, -mag).astype(np.int32), side


def code_chart(coder, model: ContextModel, chart: Chart | None, prev: Chart | None,
               block: int, height: int, width: int) -> tuple[Chart, float]:
    """Code a frame's chart (None when decoding); returns the chart and its side bits."""
    shape = (-(-height // block), -(-width // block))
    n = shape[0] * shape[1]
    ctx = (prev.modes.ravel().astype(np.int64) if prev is not None else np.full(n, NUM_MODES))
    modes = coder.symbols(None if chart is None else chart.modes.ravel(), model.mode.probabilities(ctx))
    side = coder.last_bits
    model.mode.update(ctx, modes)
    if modes.size and int(modes.max()) >= NUM_MODES:
        raise CorruptStreamError("unknown prediction mode")
    modes = modes.astype(np.int8).reshape(shape)
    inter = modes.ravel() != INTRA
    count = int(inter.sum())
    dy = np.zeros(shape, np.int32)
    dx = np.zeros(shape, np.int32)
    if chart is not None:
        mvy, mvx = chart.mvy.copy(), chart.mvx.copy()
        _mv_predictions(modes, mvy, mvx, dy, dx, False)
    for component, d in ((0, dy), (1, dx)):
        values, bits = _code_ints(coder, model, component, d.ravel()[inter] if chart is not None else None, count)
        d.ravel()[inter] = values
        side += bits
    if chart is None:
        mvy = np.zeros(shape, np.int32)
        mvx = np.zeros(shape, np.int32)
        _mv_predictions(modes, mvy, mvx, dy, dx, True)
        if count and max(int(np.abs(mvy).max()), int(np.abs(mvx).max())) > MAX_MV:
            raise CorruptStreamError("motion vector out of range")
        chart = Chart(block, modes, mvy, mvx)
    return chart, side
