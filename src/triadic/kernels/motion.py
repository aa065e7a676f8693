"""Encoder-only kernels: block motion search and the per-block mode decision.

Nothing reachable from the decoder imports this module.
Costs are in 1/256 bit units from an integer table (``COST``), so decisions do not depend on
the platform's floating point. Ties break on the first candidate tried.
"""

import numpy as np
from numba import njit

from .predict import INTER, INTER_MED, INTRA, _clamp, _med, _sample

_COST_SIZE = 1 << 18
#: Approximate code length, in 1/256 bit, of a residual of magnitude a: 256 * (1 + 1.6 log2(1 + a)).
COST = np.round(256.0 * (1.0 + 1.6 * np.log2(1.0 + np.arange(_COST_SIZE)))).astype(np.int64)


@njit(cache=True, inline="always")
def _cost(cost, r, step):
    """Estimated bits (1/256) of residual r once quantised with ``step`` (1: lossless)."""
    a = (abs(r) + step // 2) // step
    return cost[a] if a < cost.size else cost[cost.size - 1]


@njit(cache=True, inline="always")
def _causal_cost(cost, r, step):
    """Like _cost for a prediction from causal neighbours of this frame, which the search takes
    from the source: in near-lossless mode the decoder's neighbours carry up to step/2 of error,
    so count half of that on top."""
    return _cost(cost, abs(r) + step // 4, step)


@njit(cache=True, inline="always")
def _median3(a, b, c):
    return max(min(a, b), min(max(a, b), c))


@njit(cache=True, inline="always")
def _clampi(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)


@njit(cache=True)
def _sad(cur, refs, slot, y0, x0, y1, x1, dy, dx, limit):
    """SAD of a block against reference ``slot`` at an integer displacement (edges extended)."""
    h = refs.shape[1]
    w = refs.shape[2]
    s = 0
    for y in range(y0, y1):
        ry = _clampi(y + dy, 0, h - 1)
        for x in range(x0, x1):
            s += abs(cur[y, x] - refs[slot, ry, _clampi(x + dx, 0, w - 1)])
        if s >= limit:
            return s
    return s


@njit(cache=True)
def _sad_up(cur, ups, slot, y0, x0, y1, x1, mvy, mvx, pad, limit):
    """SAD against the quarter-sample plane of ``slot`` at a quarter-sample vector."""
    hh = ups.shape[1]
    ww = ups.shape[2]
    s = 0
    for y in range(y0, y1):
        ry = _clampi(4 * (y + pad) + mvy, 0, hh - 1)
        for x in range(x0, x1):
            s += abs(cur[y, x] - ups[slot, ry, _clampi(4 * (x + pad) + mvx, 0, ww - 1)])
        if s >= limit:
            return s
    return s


@njit(cache=True)
def _mvd_cost(d):
    """Approximate bits (1/256 units) of one vector component difference."""
    a = abs(d)
    n = 0
    while a:
        a >>= 1
        n += 1
    return 256 * (1 + 2 * n)


@njit(cache=True)
def _predictor(modes, mvy, mvx, cy, cx, size):
    """Median of the left, top and top-right neighbour vectors of a node (intra counts as 0)."""
    gh, gw = modes.shape
    ly = lx = ty = tx = ry = rx = 0
    if cx > 0 and modes[cy, cx - 1] != INTRA:
        ly, lx = mvy[cy, cx - 1], mvx[cy, cx - 1]
    if cy > 0 and modes[cy - 1, cx] != INTRA:
        ty, tx = mvy[cy - 1, cx], mvx[cy - 1, cx]
    if cy > 0 and cx + size < gw and modes[cy - 1, cx + size] != INTRA:
        ry, rx = mvy[cy - 1, cx + size], mvx[cy - 1, cx + size]
    return _median3(ly, ty, ry), _median3(lx, tx, rx)


@njit(cache=True)
def _best_vector(cur, refs, ups, slot, pad, y0, x0, y1, x1, cand_y, cand_x, py, px, search_range):
    """Integer refinement (+-1) around candidate vectors, then half and quarter refinement.

    Candidates are in quarter samples. Returns the best quarter-sample vector by SAD plus a
    small vector-cost penalty.
    """
    big = np.int64(1) << 60
    best = big
    iy = 0
    ix = 0
    for c in range(cand_y.size):
        by = (cand_y[c] + 2) >> 2
        bx = (cand_x[c] + 2) >> 2
        seen = False
        for e in range(c):  # the candidates often coincide
            if (cand_y[e] + 2) >> 2 == by and (cand_x[e] + 2) >> 2 == bx:
                seen = True
        if seen:
            continue
        for dy in range(-1, 2):
            for dx in range(-1, 2):
                ty = by + dy
                tx = bx + dx
                if abs(ty) > search_range or abs(tx) > search_range:
                    continue
                s = _sad(cur, refs, slot, y0, x0, y1, x1, ty, tx, best)
                s += (_mvd_cost(4 * ty - py) + _mvd_cost(4 * tx - px)) // 64
                if s < best:
                    best = s
                    iy = ty
                    ix = tx
    sy = 4 * iy
    sx = 4 * ix
    best = _sad_up(cur, ups, slot, y0, x0, y1, x1, sy, sx, pad, big) \
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
                s = _sad_up(cur, ups, slot, y0, x0, y1, x1, ty, tx, pad, best) \
                    + (_mvd_cost(ty - py) + _mvd_cost(tx - px)) // 64
                if s < best:
                    best = s
                    sy = ty
                    sx = tx
    return sy, sx


@njit(cache=True)
def _coarse_vector(cur2, refs2, slot, y0, x0, y1, x1, r2):
    """Integer full search on 2x2-averaged planes; the winner in full-resolution samples."""
    cy0 = y0 // 2
    cx0 = x0 // 2
    cy1 = max(cy0 + 1, (y1 + 1) // 2)
    cx1 = max(cx0 + 1, (x1 + 1) // 2)
    best = np.int64(1) << 60
    gy = 0
    gx = 0
    for dy in range(-r2, r2 + 1):
        for dx in range(-r2, r2 + 1):
            s = _sad(cur2, refs2, slot, cy0, cx0, cy1, cx1, dy, dx, best)
            if s < best:
                best = s
                gy = dy
                gx = dx
    return 2 * gy, 2 * gx


@njit(cache=True)
def _intra_cost(cur, y0, x0, y1, x1, maxval, cost, step):
    """Estimated residual bits (1/256) of MED intra over a block of the source."""
    c = 0
    for y in range(y0, y1):
        for x in range(x0, x1):
            if y == 0:
                p = cur[0, x - 1] if x > 0 else (maxval + 1) >> 1
            elif x == 0:
                p = cur[y - 1, 0]
            else:
                p = _med(cur[y, x - 1], cur[y - 1, x], cur[y - 1, x - 1])
            c += _causal_cost(cost, cur[y, x] - p, step)
    return c


@njit(cache=True)
def _leaf_costs(cur, refs, ups, slot, pad, y0, x0, y1, x1, vy, vx, maxval, cost, step):
    """Estimated residual bits (1/256) of INTER and INTER_MED at one vector.

    Samples the block and its top/left border once; uses the source for the causal neighbours
    (exact when lossless; an estimate otherwise).
    """
    bh = y1 - y0 + 1
    bw = x1 - x0 + 1
    tb = np.empty((bh, bw), dtype=np.int64)  # tb[i, j]: sample at (y0 - 1 + i, x0 - 1 + j)
    for i in range(bh):
        y = y0 - 1 + i
        for j in range(bw):
            x = x0 - 1 + j
            if (i == 0 and y < 0) or (j == 0 and x < 0):
                tb[i, j] = 0
            else:
                tb[i, j] = _sample(refs, ups, slot, y, x, vy, vx, 2, 2, pad)
    c_inter = 0
    c_med = 0
    for y in range(y0, y1):
        i = y - y0 + 1
        for x in range(x0, x1):
            j = x - x0 + 1
            t = tb[i, j]
            c_inter += _cost(cost, cur[y, x] - t, step)
            dl = cur[y, x - 1] - tb[i, j - 1] if x > 0 else 0
            du = cur[y - 1, x] - tb[i - 1, j] if y > 0 else 0
            if x > 0 and y > 0:
                d = _med(dl, du, cur[y - 1, x - 1] - tb[i - 1, j - 1])
            else:
                d = dl + du
            c_med += _causal_cost(cost, cur[y, x] - _clamp(t + d, 0, maxval), step)
    return c_inter, c_med


@njit(cache=True)
def search_frame(cur, refs, ups, refs2, cur2, lag_slots, pad, root, cell, min_leaf, search_range,
                 prev_mvy, prev_mvx, maxval, cost, step):
    """The chart grids (depth, modes, lags, mvy, mvx per cell) minimising estimated bits.

    For every root block, every quadtree node down to ``min_leaf`` samples gets its best leaf:
    intra, or for each lag the best quarter-sample vector (coarse full search at the root for
    lag 1; elsewhere refinement around the parent's, the predicted and last frame's vectors)
    with INTER or INTER_MED. Then, bottom up, a node splits only when its children plus the
    split flag cost less than the node as one leaf (MDL pruning).
    """
    h, w = cur.shape
    n = root // cell
    gh = -(-h // root) * n
    gw = -(-w // root) * n
    depth_g = np.zeros((gh, gw), dtype=np.int8)
    modes_g = np.zeros((gh, gw), dtype=np.int8)
    lags_g = np.zeros((gh, gw), dtype=np.int8)
    mvy_g = np.zeros((gh, gw), dtype=np.int32)
    mvx_g = np.zeros((gh, gw), dtype=np.int32)
    max_d = 0
    while (root >> (max_d + 1)) >= min_leaf and (root >> (max_d + 1)) >= cell:
        max_d += 1
    offsets = np.zeros(max_d + 2, dtype=np.int64)
    for d in range(max_d + 1):
        offsets[d + 1] = offsets[d] + (1 << d) * (1 << d)
    total = offsets[max_d + 1]
    leaf_cost = np.zeros(total, dtype=np.int64)
    best_cost = np.zeros(total, dtype=np.int64)
    leaf_mode = np.zeros(total, dtype=np.int8)
    leaf_lag = np.zeros(total, dtype=np.int8)
    leaf_vy = np.zeros((total, lag_slots.size), dtype=np.int32)
    leaf_vx = np.zeros((total, lag_slots.size), dtype=np.int32)
    split = np.zeros(total, dtype=np.uint8)
    nlags = lag_slots.size
    r2 = max(1, search_range // 2)
    lag_bits = 0 if nlags <= 1 else 256 * (1 if nlags == 2 else 2)
    for ry in range(0, gh, n):
        for rx in range(0, gw, n):
            py, px = _predictor(modes_g, mvy_g, mvx_g, ry, rx, n)
            for d in range(max_d + 1):
                size = n >> d  # in cells
                for iy in range(1 << d):
                    for ix in range(1 << d):
                        node = offsets[d] + iy * (1 << d) + ix
                        y0 = (ry + iy * size) * cell
                        x0 = (rx + ix * size) * cell
                        if y0 >= h or x0 >= w:
                            leaf_cost[node] = 0
                            leaf_mode[node] = INTRA
                            continue
                        y1 = min(y0 + size * cell, h)
                        x1 = min(x0 + size * cell, w)
                        c_best = 256 + _intra_cost(cur, y0, x0, y1, x1, maxval, cost, step)  # + mode symbol
                        m_best = INTRA
                        l_best = 0
                        parent = offsets[d - 1] + (iy >> 1) * (1 << (d - 1)) + (ix >> 1) if d > 0 else -1
                        for li in range(nlags):
                            slot = lag_slots[li]
                            if d == 0:
                                if li == 0:
                                    gy, gx = _coarse_vector(cur2, refs2, slot, y0, x0, y1, x1, r2)
                                    c0y, c0x = 4 * gy, 4 * gx
                                else:
                                    c0y = leaf_vy[node, 0] * (li + 1)
                                    c0x = leaf_vx[node, 0] * (li + 1)
                            else:
                                c0y = leaf_vy[parent, li]
                                c0x = leaf_vx[parent, li]
                            cy_ = (ry + iy * size)
                            cx_ = (rx + ix * size)
                            cand_y = np.array([c0y, 0, py, prev_mvy[cy_, cx_]], dtype=np.int32)
                            cand_x = np.array([c0x, 0, px, prev_mvx[cy_, cx_]], dtype=np.int32)
                            vy, vx = _best_vector(cur, refs, ups, slot, pad, y0, x0, y1, x1,
                                                  cand_y, cand_x, py, px, search_range)
                            leaf_vy[node, li] = vy
                            leaf_vx[node, li] = vx
                            side = 256 + lag_bits + _mvd_cost(vy - py) + _mvd_cost(vx - px)
                            c_inter, c_med = _leaf_costs(cur, refs, ups, slot, pad, y0, x0, y1, x1,
                                                         vy, vx, maxval, cost, step)
                            if c_inter + side < c_best:
                                c_best = c_inter + side
                                m_best = INTER
                                l_best = li + 1
                            if c_med + side < c_best:
                                c_best = c_med + side
                                m_best = INTER_MED
                                l_best = li + 1
                        leaf_cost[node] = c_best
                        leaf_mode[node] = m_best
                        leaf_lag[node] = l_best
            # bottom-up pruning: split when the children and one split flag are cheaper
            for d in range(max_d, -1, -1):
                for iy in range(1 << d):
                    for ix in range(1 << d):
                        node = offsets[d] + iy * (1 << d) + ix
                        flag = 256 if d < max_d else 0
                        best_cost[node] = leaf_cost[node] + flag
                        split[node] = 0
                        if d < max_d:
                            kids = 0
                            for k in range(4):
                                kid = offsets[d + 1] + (2 * iy + (k >> 1)) * (1 << (d + 1)) + 2 * ix + (k & 1)
                                kids += best_cost[kid]
                            if kids + flag < best_cost[node]:
                                best_cost[node] = kids + flag
                                split[node] = 1
            # write the chosen leaves into the grids (top-down)
            for d in range(max_d + 1):
                size = n >> d
                for iy in range(1 << d):
                    for ix in range(1 << d):
                        node = offsets[d] + iy * (1 << d) + ix
                        cy0 = ry + iy * size
                        cx0 = rx + ix * size
                        if d > 0 and depth_g[cy0, cx0] != d:
                            continue  # not reached: an ancestor is a leaf
                        if split[node]:
                            for yy in range(cy0, cy0 + size):
                                for xx in range(cx0, cx0 + size):
                                    depth_g[yy, xx] = d + 1
                            continue
                        li = leaf_lag[node]
                        for yy in range(cy0, cy0 + size):
                            for xx in range(cx0, cx0 + size):
                                depth_g[yy, xx] = d
                                modes_g[yy, xx] = leaf_mode[node]
                                lags_g[yy, xx] = li
                                if li > 0:
                                    mvy_g[yy, xx] = leaf_vy[node, li - 1]
                                    mvx_g[yy, xx] = leaf_vx[node, li - 1]
    return depth_g, modes_g, lags_g, mvy_g, mvx_g
