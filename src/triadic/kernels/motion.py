"""Encoder-only kernels: block motion search and the per-block mode decision.

Nothing reachable from the decoder imports this module.
Costs are in 1/256 bit units from an integer table (``COST``), so decisions do not depend on
the platform's floating point. Ties break on the first candidate tried.
"""

import numpy as np
from numba import njit

from .predict import INTER, INTER_MED, INTRA, _clamp, _predict_at

_COST_SIZE = 1 << 18
#: Approximate code length, in 1/256 bit, of a residual of magnitude a: 256 * (1 + 1.6 log2(1 + a)).
COST = np.round(256.0 * (1.0 + 1.6 * np.log2(1.0 + np.arange(_COST_SIZE)))).astype(np.int64)


@njit(cache=True, inline="always")
def _cost(cost, r):
    a = abs(r)
    return cost[a] if a < cost.size else cost[cost.size - 1]


@njit(cache=True, inline="always")
def _median3(a, b, c):
    return max(min(a, b), min(max(a, b), c))


@njit(cache=True)
def mv_predictor(mvy, mvx, modes, by, bx):
    """Median of the left, top and top-right motion vectors (intra or missing count as 0)."""
    nby, nbx = modes.shape
    ly = lx = ty = tx = ry = rx = 0
    if bx > 0 and modes[by, bx - 1] != INTRA:
        ly, lx = mvy[by, bx - 1], mvx[by, bx - 1]
    if by > 0 and modes[by - 1, bx] != INTRA:
        ty, tx = mvy[by - 1, bx], mvx[by - 1, bx]
    if by > 0 and bx + 1 < nbx and modes[by - 1, bx + 1] != INTRA:
        ry, rx = mvy[by - 1, bx + 1], mvx[by - 1, bx + 1]
    elif by > 0 and bx > 0 and modes[by - 1, bx - 1] != INTRA:
        ry, rx = mvy[by - 1, bx - 1], mvx[by - 1, bx - 1]
    return _median3(ly, ty, ry), _median3(lx, tx, rx)


@njit(cache=True)
def _sad(cur, ref, y0, x0, y1, x1, dy, dx, limit):
    h, w = ref.shape
    s = 0
    for y in range(y0, y1):
        ry = _clamp(y + dy, 0, h - 1)
        for x in range(x0, x1):
            s += abs(cur[y, x] - ref[ry, _clamp(x + dx, 0, w - 1)])
        if s >= limit:
            return s
    return s


@njit(cache=True)
def _sad_up(cur, up, y0, x0, y1, x1, mvy, mvx, pad, limit):
    """SAD against the quarter-sample plane at a quarter-sample vector."""
    hh, ww = up.shape
    s = 0
    for y in range(y0, y1):
        ry = _clamp(4 * (y + pad) + mvy, 0, hh - 1)
        for x in range(x0, x1):
            s += abs(cur[y, x] - up[ry, _clamp(4 * (x + pad) + mvx, 0, ww - 1)])
        if s >= limit:
            return s
    return s


@njit(cache=True)
def _mvd_cost(d):
    a = abs(d)
    n = 0
    while a:
        a >>= 1
        n += 1
    return 256 * (1 + 2 * n)


@njit(cache=True)
def search_frame(cur, ref, up, pad, cur2, ref2, block, search_range, prev_mvy, prev_mvx, maxval,
                 cost):
    """Per block: mode and quarter-sample motion vector minimising estimated bits.

    Integer full search on the 2x2-averaged planes ``cur2``/``ref2``, integer refinement at full
    resolution around it and around the predicted and previous vectors, then half- and
    quarter-sample refinement on the H.264 quarter-sample plane ``up``. Returns
    (modes int8, mvy int32, mvx int32, est_bits int64 per block in 1/256 bit).
    """
    h, w = cur.shape
    nby = (h + block - 1) // block
    nbx = (w + block - 1) // block
    modes = np.zeros((nby, nbx), dtype=np.int8)
    mvy = np.zeros((nby, nbx), dtype=np.int32)
    mvx = np.zeros((nby, nbx), dtype=np.int32)
    est = np.zeros((nby, nbx), dtype=np.int64)
    r2 = max(1, search_range // 2)
    big = np.int64(1) << 60
    dummy = np.zeros((1, 1), dtype=np.int32)
    for by in range(nby):
        for bx in range(nbx):
            y0 = by * block
            x0 = bx * block
            y1 = min(y0 + block, h)
            x1 = min(x0 + block, w)
            c_intra = 0
            for y in range(y0, y1):
                for x in range(x0, x1):
                    p = _predict_at(cur, dummy, dummy, y, x, INTRA, 0, 0, 0, 0, 0, maxval)
                    c_intra += _cost(cost, cur[y, x] - p)
            # coarse integer full search on the 2x2-averaged planes
            cy0 = y0 // 2
            cx0 = x0 // 2
            cy1 = max(cy0 + 1, (y1 + 1) // 2)
            cx1 = max(cx0 + 1, (x1 + 1) // 2)
            bsad = big
            gy = 0
            gx = 0
            for dy in range(-r2, r2 + 1):
                for dx in range(-r2, r2 + 1):
                    s = _sad(cur2, ref2, cy0, cx0, cy1, cx1, dy, dx, bsad)
                    if s < bsad:
                        bsad = s
                        gy = dy
                        gx = dx
            # integer refinement around the coarse winner, zero, the prediction and last frame's
            py, px = mv_predictor(mvy, mvx, modes, by, bx)
            cand_y = np.array([2 * gy, 0, (py + 2) >> 2, (prev_mvy[by, bx] + 2) >> 2], dtype=np.int32)
            cand_x = np.array([2 * gx, 0, (px + 2) >> 2, (prev_mvx[by, bx] + 2) >> 2], dtype=np.int32)
            bsad = big
            iy = 0
            ix = 0
            for c in range(cand_y.size):
                for dy in range(-1, 2):
                    for dx in range(-1, 2):
                        ty = cand_y[c] + dy
                        tx = cand_x[c] + dx
                        if abs(ty) > search_range or abs(tx) > search_range:
                            continue
                        s = _sad(cur, ref, y0, x0, y1, x1, ty, tx, bsad)
                        s += (_mvd_cost(4 * ty - py) + _mvd_cost(4 * tx - px)) // 64
                        if s < bsad:
                            bsad = s
                            iy = ty
                            ix = tx
            # half, then quarter sample refinement on the interpolated plane
            sy = 4 * iy
            sx = 4 * ix
            bsad = _sad_up(cur, up, y0, x0, y1, x1, sy, sx, pad, big) \
                + (_mvd_cost(sy - py) + _mvd_cost(sx - px)) // 64
            for step in (2, 1):
                cy = sy
                cx = sx
                for dy in range(-step, step + 1, step):
                    for dx in range(-step, step + 1, step):
                        if dy == 0 and dx == 0:
                            continue
                        ty = cy + dy
                        tx = cx + dx
                        s = _sad_up(cur, up, y0, x0, y1, x1, ty, tx, pad, bsad) \
                            + (_mvd_cost(ty - py) + _mvd_cost(tx - px)) // 64
                        if s < bsad:
                            bsad = s
                            sy = ty
                            sx = tx
            side = _mvd_cost(sy - py) + _mvd_cost(sx - px) + 256
            c_inter = side
            c_med = side
            for y in range(y0, y1):
                for x in range(x0, x1):
                    p = _predict_at(cur, ref, up, y, x, INTER, sy, sx, 2, 2, pad, maxval)
                    c_inter += _cost(cost, cur[y, x] - p)
                    p2 = _predict_at(cur, ref, up, y, x, INTER_MED, sy, sx, 2, 2, pad, maxval)
                    c_med += _cost(cost, cur[y, x] - p2)
            best_mode = INTRA
            best_cost = c_intra + 256
            if c_inter < best_cost:
                best_mode, best_cost = INTER, c_inter
            if c_med < best_cost:
                best_mode, best_cost = INTER_MED, c_med
            modes[by, bx] = best_mode
            if best_mode != INTRA:
                mvy[by, bx] = sy
                mvx[by, bx] = sx
            est[by, bx] = best_cost
    return modes, mvy, mvx, est
