"""H.264's residual transforms, for footage that was decoded from H.264 (levels leaves).

A picture decoded from H.264 is, sample for sample, the encoder's prediction plus the inverse
transform of its quantised levels. Where triadic's prediction T is that very prediction (the
same reference, the same quarter-sample vector: kernels/interp.py is H.264's interpolation), the
residual x - T is an inverse transform of levels, and coding the levels instead of the samples
costs far less: at H.264's quantiser 10 a level stands for about two units of every sample of
its block. Such a chart leaf is a *levels leaf* (chart.py): its residual plane holds levels, laid
out as the transform's coefficients (coefficient (i, j) of a block at row i, column j of it),
and ``levels_to_residual`` turns them back into samples before reconstruction.

The decoder's side is the standard's, integer for integer (ITU-T H.264, 8.5.12 for 4x4 blocks
and 8.5.13 for 8x8 blocks, flat scaling matrices, no DC transform): dequantisation by
LevelScale(qP % 6, i, j) << (qP / 6), the butterflies with their shifts, then (x + 32) >> 6.
The encoder's side (``block_levels``, ``residual_to_levels``) finds levels by inverting the
inverse transform's linear part, refines near misses a level at a time, and keeps them only
where the decoder's inverse gives back the residual exactly.
"""

import numpy as np
from numba import njit

#: Transform of a levels leaf (chart.Chart.transform, per 4x4 cell): none, 4x4 or 8x8 blocks.
NONE = 0
T4 = 1
T8 = 2
#: H.264's quantiser range (8-bit samples).
MAX_QP = 51
#: Levels beyond this are refused by the decoder (a damaged stream; H.264's own are far smaller).
MAX_LEVEL = 1 << 16

# normAdjust4x4 (8.5.9): by qP % 6, for positions (even, even), (odd, odd), the rest.
_V4 = np.array([[10, 16, 13], [11, 18, 14], [13, 20, 16], [14, 23, 18], [16, 25, 20], [18, 29, 23]],
               dtype=np.int64)
# normAdjust8x8 (8.5.9): by qP % 6, for the six position classes of _class8.
_V8 = np.array([[20, 18, 32, 19, 25, 24], [22, 19, 35, 21, 28, 26], [26, 23, 42, 24, 33, 31],
                [28, 25, 45, 26, 35, 33], [32, 28, 51, 30, 40, 38], [36, 32, 58, 34, 46, 43]],
               dtype=np.int64)


@njit(cache=True, inline="always")
def _class4(i, j):
    if (i & 1) == 0 and (j & 1) == 0:
        return 0
    if (i & 1) == 1 and (j & 1) == 1:
        return 1
    return 2


@njit(cache=True, inline="always")
def _class8(i, j):
    if i % 4 == 0 and j % 4 == 0:
        return 0
    if i % 2 == 1 and j % 2 == 1:
        return 1
    if i % 4 == 2 and j % 4 == 2:
        return 2
    if (i % 4 == 0 and j % 2 == 1) or (i % 2 == 1 and j % 4 == 0):
        return 3
    if (i % 4 == 0 and j % 4 == 2) or (i % 4 == 2 and j % 4 == 0):
        return 4
    return 5


@njit(cache=True, inline="always")
def _level_scale(qp, i, j, size):
    """LevelScale(qP % 6, i, j) of a size x size block (flat scaling matrices: 16 normAdjust)."""
    return 16 * (_V4[qp % 6, _class4(i, j)] if size == 4 else _V8[qp % 6, _class8(i, j)])


@njit(cache=True, inline="always")
def _shift_base(size):
    """The dequantisation shifts by qP / 6 - base: base 4 for 4x4 blocks, 6 for 8x8."""
    return 4 if size == 4 else 6


@njit(cache=True, inline="always")
def _dequant(level, qp, i, j, size):
    """The standard's scaling of level (i, j) of a size x size block (8.5.12.1, 8.5.13.1)."""
    scale = _level_scale(qp, i, j, size)
    base = _shift_base(size)
    if qp >= 6 * base:
        return (level * scale) << (qp // 6 - base)
    return (level * scale + (1 << (base - 1 - qp // 6))) >> (base - qp // 6)


@njit(cache=True, inline="always")
def _butterfly4(d0, d1, d2, d3, out, k, stride):
    e0 = d0 + d2
    e1 = d0 - d2
    e2 = (d1 >> 1) - d3
    e3 = d1 + (d3 >> 1)
    out[k] = e0 + e3
    out[k + stride] = e1 + e2
    out[k + 2 * stride] = e1 - e2
    out[k + 3 * stride] = e0 - e3


@njit(cache=True, inline="always")
def _butterfly8(d, at, stride, out, k, ostride):
    d0 = d[at]
    d1 = d[at + stride]
    d2 = d[at + 2 * stride]
    d3 = d[at + 3 * stride]
    d4 = d[at + 4 * stride]
    d5 = d[at + 5 * stride]
    d6 = d[at + 6 * stride]
    d7 = d[at + 7 * stride]
    a0 = d0 + d4
    a4 = d0 - d4
    a2 = (d2 >> 1) - d6
    a6 = d2 + (d6 >> 1)
    b0 = a0 + a6
    b2 = a4 + a2
    b4 = a4 - a2
    b6 = a0 - a6
    a1 = -d3 + d5 - d7 - (d7 >> 1)
    a3 = d1 + d7 - d3 - (d3 >> 1)
    a5 = -d1 + d7 + d5 + (d5 >> 1)
    a7 = d3 + d5 + d1 + (d1 >> 1)
    b1 = a1 + (a7 >> 2)
    b7 = a7 - (a1 >> 2)
    b3 = a3 + (a5 >> 2)
    b5 = (a3 >> 2) - a5
    out[k] = b0 + b7
    out[k + ostride] = b2 + b5
    out[k + 2 * ostride] = b4 + b3
    out[k + 3 * ostride] = b6 + b1
    out[k + 4 * ostride] = b6 - b1
    out[k + 5 * ostride] = b4 - b3
    out[k + 6 * ostride] = b2 - b5
    out[k + 7 * ostride] = b0 - b7


@njit(cache=True)
def inverse4(levels, qp, out):
    """The residual of a 4x4 block of levels (int64, 16 values row by row) into ``out`` (16)."""
    _inverse4(levels, qp, out, np.empty(16, np.int64), np.empty(16, np.int64))


@njit(cache=True)
def _inverse4(levels, qp, out, d, t):
    """inverse4 with work arrays ``d`` and ``t`` (16 int64 each)."""
    for k in range(16):
        d[k] = _dequant(levels[k], qp, k >> 2, k & 3, 4)
    for i in range(4):  # rows
        _butterfly4(d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3], t, 4 * i, 1)
    for j in range(4):  # columns
        _butterfly4(t[j], t[4 + j], t[8 + j], t[12 + j], out, j, 4)
    for k in range(16):
        out[k] = (out[k] + 32) >> 6


@njit(cache=True)
def inverse8(levels, qp, out):
    """The residual of an 8x8 block of levels (int64, 64 values row by row) into ``out`` (64)."""
    _inverse8(levels, qp, out, np.empty(64, np.int64), np.empty(64, np.int64))


@njit(cache=True)
def _inverse8(levels, qp, out, d, t):
    """inverse8 with work arrays ``d`` and ``t`` (64 int64 each)."""
    for k in range(64):
        d[k] = _dequant(levels[k], qp, k >> 3, k & 7, 8)
    for i in range(8):
        _butterfly8(d, 8 * i, 1, t, 8 * i, 1)
    for j in range(8):
        _butterfly8(t, j, 8, out, j, 8)
    for k in range(64):
        out[k] = (out[k] + 32) >> 6


#: H.264's core transforms, scaled to integers: the basis vectors of the standard's inverse
#: transform (its butterflies without their rounding) are the rows of _C4 over 2 (the d1 / 2 and
#: d3 / 2 included) and of _C8 over 8. The rows are orthogonal, with squared norms _N4 and _N8.
_C4 = np.array([[2, 2, 2, 2], [2, 1, -1, -2], [2, -2, -2, 2], [1, -2, 2, -1]], dtype=np.int64)
_N4 = np.array([16, 10, 16, 10], dtype=np.int64)
_C8 = np.array([[8, 8, 8, 8, 8, 8, 8, 8], [12, 10, 6, 3, -3, -6, -10, -12], [8, 4, -4, -8, -8, -4, 4, 8],
                [10, -3, -12, -6, 6, 12, 3, -10], [8, -8, -8, 8, 8, -8, -8, 8], [6, -12, 3, 10, -10, -3, 12, -6],
                [4, -8, 8, -4, -4, 8, -8, 4], [3, -6, 10, -12, 12, -10, 6, -3]], dtype=np.int64)
_N8 = np.array([512, 578, 320, 578, 512, 578, 320, 578], dtype=np.int64)


@njit(cache=True)
def _forward(r, levels, qp, size, t):
    """Levels of a size x size residual r (4 or 8), by inverting the linear part of the
    standard's inverse exactly, in integers: with C the scaled basis (_C4 or _C8, gain g = 2 or
    8) and n_i its rows' squared norms, the dequantised coefficient that gives 64 r is
    64 g^2 W_ij / (n_i n_j), W = C r C^T; the level is that over the dequantisation's scale,
    rounded to nearest. (x264's forward transforms and quantisers round on the way, and miss 4%
    of the 4x4 and a third of the 8x8 blocks of levels at quantiser 10.)"""
    c = _C4 if size == 4 else _C8
    norms = _N4 if size == 4 else _N8
    gain = 256 if size == 4 else 4096  # 64 g^2
    base = _shift_base(size)
    for i in range(size):  # t (work, size * size int64) = C r
        for j in range(size):
            s = np.int64(0)
            for k in range(size):
                s += c[i, k] * r[size * k + j]
            t[size * i + j] = s
    for i in range(size):
        for j in range(size):
            s = np.int64(0)
            for k in range(size):
                s += t[size * i + k] * c[j, k]
            scale = _level_scale(qp, i, j, size)
            if qp >= 6 * base:  # d = L scale << (qP / 6 - base)
                num = gain * s
                den = norms[i] * norms[j] * (scale << (qp // 6 - base))
            else:  # d = (L scale + rounding) >> (base - qP / 6)
                num = gain * s << (base - qp // 6)
                den = norms[i] * norms[j] * scale
            a = (2 * abs(num) + den) // (2 * den)
            levels[size * i + j] = a if num >= 0 else -a


#: The int64s of block_levels' work array (its callers allocate one per kernel call: five small
#: arrays allocated per block and quantiser took most of carphone's levels search).
LEVELS_WORK = 5 * 64


@njit(cache=True)
def block_levels(q, y0, x0, size, qp, levels, work):
    """Levels of the size x size block (4 or 8) of residual plane ``q`` at (y0, x0) whose inverse
    transform gives the block back exactly, into ``levels`` (row by row). Returns False when
    there are none (as far as rounding the forward transform finds). ``work``: LEVELS_WORK
    int64s."""
    n = size * size
    r = work[:64]
    back = work[64:128]
    for k in range(n):
        r[k] = q[y0 + k // size, x0 + k % size]
    _forward(r, levels, qp, size, work[128:192])
    miss = _misses(r, levels, qp, size, back, work[192:])
    if miss == 0:
        return True
    if miss > _NEAR_MISS:
        return False
    # a near miss: the inverse's shifts round, so the nearest levels of its linear part are not
    # always the ones; change one level by one at a time while the misses fall (a block of the
    # source's is found in a step or two; other residuals are far from the lattice and never
    # get here)
    for _ in range(_NEAR_MISS):
        best = miss
        best_k = -1
        best_d = 0
        for k in range(n):
            for d in (-1, 1):
                levels[k] += d
                m = _misses(r, levels, qp, size, back, work[192:])
                levels[k] -= d
                if m < best:
                    best = m
                    best_k = k
                    best_d = d
        if best_k < 0:
            return False
        levels[best_k] += best_d
        miss = best
        if miss == 0:
            return True
    return False


#: block_levels refines a first guess whose inverse misses at most this much (the sum of
#: |residual - inverse| over the block); further off, a block is not on the lattice.
_NEAR_MISS = 4


@njit(cache=True)
def _misses(r, levels, qp, size, back, work):
    """Sum over the block of |r - the inverse transform of ``levels``| (work arrays ``back`` and
    ``work``, 128 int64s)."""
    if size == 4:
        _inverse4(levels, qp, back, work[:16], work[64:80])
    else:
        _inverse8(levels, qp, back, work[:64], work[64:128])
    total = 0
    for k in range(size * size):
        total += abs(back[k] - r[k])
    return total


@njit(cache=True, nogil=True)
def levels_to_residual(q, transform, cell, qp):
    """In place: the levels of every levels leaf's blocks of plane ``q`` (``transform`` per
    ``cell`` x ``cell`` cell: T4 or T8; 8x8 blocks start at cells of even row and column) become
    the residual samples they stand for. Returns False if a level is beyond MAX_LEVEL or an 8x8
    block would reach past the plane (a damaged stream)."""
    h, w = q.shape
    gh, gw = transform.shape
    lv = np.empty(64, np.int64)
    out = np.empty(64, np.int64)
    work_d = np.empty(64, np.int64)  # the inverse transforms' work arrays, once, not per block
    work_t = np.empty(64, np.int64)
    for cy in range(gh):
        for cx in range(gw):
            t = transform[cy, cx]
            if t == NONE:
                continue
            size = 4 if t == T4 else 8
            if t == T8 and ((cy & 1) or (cx & 1)):
                continue  # the cell is part of the 8x8 block of the cell above and/or left of it
            y0 = cy * cell
            x0 = cx * cell
            if y0 + size > h or x0 + size > w:
                return False
            n = size * size
            for k in range(n):
                v = np.int64(q[y0 + k // size, x0 + k % size])
                if abs(v) > MAX_LEVEL:
                    return False
                lv[k] = v
            if size == 4:
                _inverse4(lv, qp, out, work_d, work_t)
            else:
                _inverse8(lv, qp, out, work_d, work_t)
            for k in range(n):
                q[y0 + k // size, x0 + k % size] = out[k]
    return True


@njit(cache=True)
def residual_to_levels(q, x, t, transform, cell, qp):
    """The encoder's side of levels_to_residual, in place: every levels block of plane ``q``
    becomes the levels of its residual x - t (not q, which the lossless kernel may have wrapped
    into range). Returns False if a block has no exact levels (the search chose it: a bug)."""
    gh, gw = transform.shape
    blk = np.empty((8, 8), np.int32)
    lv = np.empty(64, np.int64)
    work = np.empty(LEVELS_WORK, np.int64)
    for cy in range(gh):
        for cx in range(gw):
            tt = transform[cy, cx]
            if tt == NONE or (tt == T8 and ((cy & 1) or (cx & 1))):
                continue
            size = 4 if tt == T4 else 8
            y0 = cy * cell
            x0 = cx * cell
            for k in range(size * size):
                i = k // size
                j = k % size
                blk[i, j] = x[y0 + i, x0 + j] - t[y0 + i, x0 + j]
            if not block_levels(blk, 0, 0, size, qp, lv, work):
                return False
            for k in range(size * size):
                q[y0 + k // size, x0 + k % size] = lv[k]
    return True


@njit(cache=True)
def mark_levels(cls, transform, cell, t4_class, t8_class):
    """In place: the context class of every sample of a levels leaf (a class of its own per
    transform size, kernels/context.py)."""
    h, w = cls.shape
    for y in range(h):
        for x in range(w):
            tt = transform[y // cell, x // cell]
            if tt == T4:
                cls[y, x] = t4_class
            elif tt == T8:
                cls[y, x] = t8_class
