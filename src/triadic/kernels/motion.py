"""Encoder-only kernels: block motion search and the per-block mode decision.

Nothing reachable from the decoder imports this module.
Costs are in 1/256 bit units from an integer table (``COST``), so decisions do not depend on
the platform's floating point. Ties break on the first candidate tried.

Speed notes: the hot loops read the quarter-sample planes split by phase (a block at one vector
is contiguous rows of one phase), take a clamp-free path when a block lies inside the padded
planes, and index with unsigned integers there (numba's wraparound test on signed indices keeps
LLVM from vectorising the rows). Sampling in a loop goes through inlined helpers: a call per
sample with array arguments costs more in reference counting than the read itself.
"""

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import leading_zeros

from . import transform
from .interp import _clip, _tap6
from .predict import (AFFINE, INTER, INTER_MED, INTRA, INTRA_WP, SIMILARITY, TRANSLATION, WARP_SHIFT, WP_PREDICT,
                      _clamp, _med, _med_at, _wp_run, _wp_start_errors, _wp_state, cell_offset, warp_vector)

_COST_SIZE = 1 << 18
#: Approximate code length, in 1/256 bit, of a residual of magnitude a: 256 * (1 + 1.6 log2(1 + a)).
COST = np.round(256.0 * (1.0 + 1.6 * np.log2(1.0 + np.arange(_COST_SIZE)))).astype(np.int64)
assert (np.diff(COST) >= 0).all()  # search_frame's lower bounds take COST[0] as the least cost
#: The most quarter-sample steps of _best_vector. One step after the half-sample one left
#: bigbuckbunny's vectors short of where the SAD is least, often by several quarter samples:
#: walking on gave files 8% smaller for about the same search time (carphone 0.2%, bikes 0.6%).
_QUARTER_STEPS = 8
#: The most integer steps of _best_vector after the window around its best candidate. Windows
#: around every candidate (up to 36 positions) instead of their centres and one walk: the search
#: 10-14% longer on bikes and bigbuckbunny for files 0.04-0.14% smaller (lossless; at E = 1 and
#: E = 4 within -0.6 to +0.5%).
_INTEGER_STEPS = 8
#: _best_vector ranks by SAD plus a vector's estimated bits (1/256) divided by 2 to this power
#: (a shift, not a division: the bits are not negative, and the integer division took some 8%
#: of bigbuckbunny's search): by half as much when lossless or at E = 1, where a unit of SAD
#: costs more bits than at E >= 4 (lossless, 64 -> 128: carphone -0.37%, bikes +0.05%,
#: bigbuckbunny +0.02%; frames 60-89 -0.45 / -0.12 / -0.12%; E = 1 -0.44 / -2.0 / 0.0%; at
#: E = 4 128 made bikes 3.3% larger, 32 carphone 0.7%).
_MVD_SHIFT = 6
_MVD_SHIFT_FINE = 7
#: _leaf_costs' limit when the whole sums are wanted.
_NO_LIMIT = np.int64(1) << 60


@njit(cache=True, inline="always")
def _cost(cost, r, step):
    """Estimated bits (1/256) of residual r once quantised with ``step`` (1: lossless)."""
    a = abs(r) if step == 1 else (abs(r) + step // 2) // step  # no division when lossless
    return cost[a] if a < cost.size else cost[cost.size - 1]


@njit(cache=True, nogil=True)
def magnitude_counts(residual, top):
    """How many samples of ``residual`` have each magnitude 0 .. top - 1, and how many at least
    ``top`` (the last of the top + 1 counts): np.bincount(np.minimum(|residual|, top)) in one pass
    without the temporaries (search.residual_costs, every frame)."""
    counts = np.zeros(top + 1, dtype=np.int64)
    flat = residual.ravel()
    for i in range(flat.size):
        counts[min(abs(np.int64(flat[i])), top)] += 1
    return counts


@njit(cache=True)
def blended_cost_table(bits, cost, weight):
    """A residual cost table as long as ``cost``: per magnitude a, ``weight`` times the measured
    price m(a) plus the rest times cost[a] / 256, in 1/256 bit, where m is ``bits`` below its last
    entry and ``cost``'s steps from the entry before it on, never decreasing. One pass over the
    table's 2^18 entries (search.residual_costs builds one per frame)."""
    top = bits.size - 1
    out = np.empty(cost.size, dtype=np.int64)
    base = cost[top - 1] / 256.0
    most = -np.inf
    for a in range(cost.size):
        c = cost[a] / 256.0
        most = max(most, bits[a] if a < top else c - base + bits[top - 1])
        out[a] = np.int64(np.rint(256.0 * (weight * most + (1.0 - weight) * c)))
    return out


#: Near-lossless, the search weighs each residual's quantisation error e (a - 3^j round(a / 3^j)
#: for magnitude a, |e| <= E) against its bits: at step 3^j its tables (quantised_costs) add
#: DISTORTION_WEIGHT[j] e^2 / 64 (1/256 bit) to every magnitude's price: 1/8 bit per unit of e^2
#: at E = 1 and 4, 1/64 at E = 13, 1/512 at E = 40, none at E = 121. Of predictions costing about
#: the same, the search then takes the one reconstructed nearer the source, which also predicts
#: the next frames better (at E = 4 on the public clips, rates 0-4.8% lower and PSNRs 0.4-0.8 dB
#: higher). Measured, with the weights tried and dropped: docs/benchmarks.md, Near-lossless.
DISTORTION_WEIGHT = np.array([0, 2048, 2048, 256, 32, 0], dtype=np.int64)


@njit(cache=True)
def quantised_costs(cost, step, size):
    """(_cost(cost, a, step), _causal_cost(cost, a, step)) for every magnitude a below ``size``
    (at most ``cost``'s length), each plus the weighted square of a's quantisation error
    (DISTORTION_WEIGHT; the causal predictions' error depends on the decoder's neighbours, and
    a's own is taken for it): with step 1, each table costs a residual as those two do with
    ``step``, and its distortion. A residual's magnitude is at most the largest sample value:
    search_frame asks for maxval + 1 entries.

    Filled run by run, without a division per entry (search_frame builds them for each band):
    magnitude a quantises to j = (a + half) // step for INTER and (a + 2 half) // step for the
    causal predictions (half = step // 2), so each j holds ``step`` consecutive magnitudes; the
    error (a + half) mod step - half repeats every ``step`` magnitudes."""
    n = min(cost.size, size)
    top = cost.size - 1
    half = step // 2
    plain = np.empty(n, dtype=np.int64)
    causal = np.empty(n, dtype=np.int64)
    for table, offset in ((plain, half), (causal, 2 * half)):
        j = 0
        while j * step - offset < n:
            price = cost[min(j, top)]
            for a in range(max(j * step - offset, 0), min((j + 1) * step - offset, n)):
                table[a] = price
            j += 1
    planes = 0  # step = 3^planes
    s = step
    while s > 1:
        s //= 3
        planes += 1
    weight = DISTORTION_WEIGHT[min(planes, DISTORTION_WEIGHT.size - 1)]
    if weight:
        r = half  # (a + half) mod step
        for a in range(n):
            d = (weight * (r - half) * (r - half)) >> 6
            plain[a] += d
            causal[a] += d
            r += 1
            if r == step:
                r = 0
    return plain, causal


@njit(cache=True, inline="always")
def _causal_cost(cost, r, step):
    """Like _cost for a prediction from causal neighbours of this frame, which the search takes
    from the source: in near-lossless mode the decoder's neighbours carry up to step/2 of error,
    so count that on top (measured: step/2 beats step/4 and step at every E on carphone and
    bigbuckbunny)."""
    return _cost(cost, abs(r) + step // 2, step)


@njit(cache=True, inline="always")
def _median3(a, b, c):
    return max(min(a, b), min(max(a, b), c))


@njit(cache=True, inline="always")
def _clampi(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)


@njit(cache=True, inline="always")
def _sad(cur, refs, slot, y0, x0, y1, x1, dy, dx, limit):
    """SAD of a block against reference ``slot`` at an integer displacement (edges extended).

    Stops after the first row at which the sum reaches ``limit``."""
    h = refs.shape[1]
    w = refs.shape[2]
    s = 0
    if y0 + dy >= 0 and y1 - 1 + dy < h and x0 + dx >= 0 and x1 - 1 + dx < w:
        n = x1 - x0
        for y in range(y0, y1):  # inside the plane: no clamps, unsigned indices (no wraparound
            cy = np.uint64(y)    # test, so the row vectorises)
            ry = np.uint64(y + dy)
            t = 0
            for k in range(n):
                t += abs(np.int64(cur[cy, np.uint64(x0 + k)]) - refs[slot, ry, np.uint64(x0 + dx + k)])
            s += t
            if s >= limit:
                return s
        return s
    for y in range(y0, y1):
        ry = _clampi(y + dy, 0, h - 1)
        for x in range(x0, x1):
            s += abs(np.int64(cur[y, x]) - refs[slot, ry, _clampi(x + dx, 0, w - 1)])
        if s >= limit:
            return s
    return s


@njit(cache=True, nogil=True)
def half_plane(plane):
    """2x2 mean (rounded down) of ``plane`` as int32, odd edges padded by replication (the
    coarse search's planes)."""
    h, w = plane.shape
    hh = (h + 1) // 2
    hw = (w + 1) // 2
    out = np.empty((hh, hw), dtype=np.int32)
    for y in range(hh):
        r0 = plane[2 * y]
        r1 = plane[min(2 * y + 1, h - 1)]
        o = out[y]
        for x in range(w // 2):
            o[x] = (np.int64(r0[2 * x]) + np.int64(r1[2 * x]) + np.int64(r0[2 * x + 1])
                    + np.int64(r1[2 * x + 1])) >> 2
        if w & 1:
            o[hw - 1] = (2 * np.int64(r0[w - 1]) + 2 * np.int64(r1[w - 1])) >> 2
    return out


@njit(cache=True, inline="always")
def _vertical_tap6(ring, y0, y1, y2, y3, y4, y5, rounding, shift, maxval, dst, wp):
    """dst[x] = the 6-tap filter down rows y0..y5 of ``ring`` at column x, rounded, shifted and
    clipped (upsample_phases: half samples below whole ones, and the centre ones)."""
    r0 = ring[y0]
    r1 = ring[y1]
    r2 = ring[y2]
    r3 = ring[y3]
    r4 = ring[y4]
    r5 = ring[y5]
    for x in range(wp):
        dst[x] = _clip((_tap6(r0[x], r1[x], r2[x], r3[x], r4[x], r5[x]) + rounding) >> shift, maxval)


@njit(cache=True, nogil=True)
def upsample_phases(ref, pad, maxval, out):
    """interp.upsample_h264's quarter-sample plane of ``ref`` (padded by ``pad``), written split by
    phase: out[fy, fx, y, x] = up[4 y + fy, 4 x + fx], shape (4, 4, H + 2 pad, W + 2 pad). The
    search reads a block at one quarter-sample vector as contiguous rows of one phase instead of
    every fourth sample of the plane; the interleaved plane itself is never built. The same
    integers as upsample_h264, row by row and phase by phase (loops without clamps vectorise;
    the taps clamp to the padded plane, so its first 2 and last 3 columns and rows clamp)."""
    h, w = ref.shape
    hp = h + 2 * pad
    wp = w + 2 * pad
    # one pass down the rows: rings of the last 8 rows of the padded plane g, of the horizontal
    # half samples unrounded (b1) and rounded and clipped (bh), filled up to row y + 3 before
    # output row y (what its taps read), so the working set stays in cache
    # (the rings of clipped samples in the output's type: its averages then run on narrow lanes)
    gr = np.empty((8, wp), dtype=out.dtype)
    b1 = np.empty((8, wp), dtype=np.int32)
    bh = np.empty((8, wp), dtype=out.dtype)
    hv = np.empty(wp, dtype=out.dtype)  # vertical half sample at (y + 1/2, x), rounded and clipped
    jj = np.empty(wp, dtype=out.dtype)  # centre half sample at (y + 1/2, x + 1/2) of this row
    lo = min(2, wp)
    hi = max(lo, wp - 3)
    e = wp - 1  # the last column: its right neighbours clamp to itself
    done = 0  # rows [0, done) are in the rings
    for y in range(hp):
        last = min(y + 3, hp - 1)
        while done <= last:
            r = ref[min(max(done - pad, 0), h - 1)]
            gy = gr[done & 7]
            for x in range(wp):
                gy[x] = r[min(max(x - pad, 0), w - 1)] if x < pad or x >= pad + w else r[x - pad]
            by = b1[done & 7]
            for x in range(lo):
                by[x] = _tap6(gy[max(x - 2, 0)], gy[max(x - 1, 0)], gy[x], gy[min(x + 1, wp - 1)],
                              gy[min(x + 2, wp - 1)], gy[min(x + 3, wp - 1)])
            for x in range(lo, hi):
                by[x] = _tap6(gy[x - 2], gy[x - 1], gy[x], gy[x + 1], gy[x + 2], gy[x + 3])
            for x in range(hi, wp):
                by[x] = _tap6(gy[max(x - 2, 0)], gy[max(x - 1, 0)], gy[x], gy[min(x + 1, wp - 1)],
                              gy[min(x + 2, wp - 1)], gy[min(x + 3, wp - 1)])
            bhy = bh[done & 7]
            for x in range(wp):
                bhy[x] = _clip((by[x] + 16) >> 5, maxval)
            done += 1
        y0 = max(y - 2, 0) & 7
        y1 = max(y - 1, 0) & 7
        y2 = y & 7
        y3 = min(y + 1, hp - 1) & 7
        y4 = min(y + 2, hp - 1) & 7
        y5 = min(y + 3, hp - 1) & 7
        _vertical_tap6(gr, y0, y1, y2, y3, y4, y5, 16, 5, maxval, hv, wp)
        _vertical_tap6(b1, y0, y1, y2, y3, y4, y5, 512, 10, maxval, jj, wp)
        # upsample_h264's names: G here, H right, M below (whole samples); b right, hv below,
        # j centre, m below H, s right of M (half samples)
        G = gr[y2]
        M = gr[y3]
        b = bh[y2]
        s = bh[y3]
        o = out[0, 0, y]
        for x in range(wp):
            o[x] = G[x]
        o = out[0, 1, y]
        for x in range(wp):
            o[x] = (G[x] + b[x] + 1) >> 1
        o = out[0, 2, y]
        for x in range(wp):
            o[x] = b[x]
        o = out[0, 3, y]
        for x in range(e):
            o[x] = (G[x + 1] + b[x] + 1) >> 1
        o[e] = (G[e] + b[e] + 1) >> 1
        o = out[1, 0, y]
        for x in range(wp):
            o[x] = (G[x] + hv[x] + 1) >> 1
        o = out[1, 1, y]
        for x in range(wp):
            o[x] = (b[x] + hv[x] + 1) >> 1
        o = out[1, 2, y]
        for x in range(wp):
            o[x] = (b[x] + jj[x] + 1) >> 1
        o = out[1, 3, y]
        for x in range(e):
            o[x] = (b[x] + hv[x + 1] + 1) >> 1
        o[e] = (b[e] + hv[e] + 1) >> 1
        o = out[2, 0, y]
        for x in range(wp):
            o[x] = hv[x]
        o = out[2, 1, y]
        for x in range(wp):
            o[x] = (hv[x] + jj[x] + 1) >> 1
        o = out[2, 2, y]
        for x in range(wp):
            o[x] = jj[x]
        o = out[2, 3, y]
        for x in range(e):
            o[x] = (jj[x] + hv[x + 1] + 1) >> 1
        o[e] = (jj[e] + hv[e] + 1) >> 1
        o = out[3, 0, y]
        for x in range(wp):
            o[x] = (M[x] + hv[x] + 1) >> 1
        o = out[3, 1, y]
        for x in range(wp):
            o[x] = (hv[x] + s[x] + 1) >> 1
        o = out[3, 2, y]
        for x in range(wp):
            o[x] = (jj[x] + s[x] + 1) >> 1
        o = out[3, 3, y]
        for x in range(e):
            o[x] = (hv[x + 1] + s[x] + 1) >> 1
        o[e] = (hv[e] + s[e] + 1) >> 1


@njit(cache=True, inline="always")
def _up_sample(ph, slot, y, x, vy, vx, pad):
    """What ``predict._sample`` reads from the quarter-sample plane of ``slot`` at (y, x) and a
    quarter-sample vector (edges extended), from the phase planes; inlined, because a call per
    sample with array arguments costs more in reference counting than the read."""
    qy = _clampi(4 * (y + pad) + vy, 0, 4 * ph.shape[3] - 1)
    qx = _clampi(4 * (x + pad) + vx, 0, 4 * ph.shape[4] - 1)
    return np.int64(ph[slot, qy & 3, qx & 3, qy >> 2, qx >> 2])


@njit(cache=True, inline="always")
def _sad_up(cur, ph, slot, y0, x0, y1, x1, mvy, mvx, pad, limit):
    """SAD against the quarter-sample plane of ``slot`` at a quarter-sample vector.

    ``ph`` holds the quarter-sample planes split by phase (see ``upsample_phases``), so a block at
    one vector reads contiguous rows of one phase."""
    hq = ph.shape[3]
    wq = ph.shape[4]
    s = 0
    oy = 4 * pad + mvy
    ox = 4 * pad + mvx
    if 4 * y0 + oy >= 0 and 4 * (y1 - 1) + oy < 4 * hq and 4 * x0 + ox >= 0 and 4 * (x1 - 1) + ox < 4 * wq:
        fy = oy & 3
        fx = ox & 3
        dy = oy >> 2
        dx = ox >> 2
        n = x1 - x0
        # inside the padded plane: no clamps, unsigned indices. Four rows to a loop over the
        # columns, which vectorises, and one sum (a vector's lanes added up) and one test of
        # ``limit`` per four rows (a sum stopped later is still at least the limit: the same
        # choices). With one row to a loop the search took 10% longer on bikes, 6% on
        # bigbuckbunny: its blocks' rows are 8 or 16 samples.
        one = np.uint64(1)
        two = np.uint64(2)
        three = np.uint64(3)
        y = y0
        while y + 4 <= y1:
            c0 = np.uint64(y)
            r0 = np.uint64(y + dy)
            t = np.int32(0)  # at most 4 n (2^16 - 1): n <= 64
            for k in range(n):
                cx = np.uint64(x0 + k)
                rx = np.uint64(x0 + dx + k)
                t += (abs(np.int32(cur[c0, cx]) - np.int32(ph[slot, fy, fx, r0, rx]))
                      + abs(np.int32(cur[c0 + one, cx]) - np.int32(ph[slot, fy, fx, r0 + one, rx]))
                      + abs(np.int32(cur[c0 + two, cx]) - np.int32(ph[slot, fy, fx, r0 + two, rx]))
                      + abs(np.int32(cur[c0 + three, cx]) - np.int32(ph[slot, fy, fx, r0 + three, rx])))
            s += t
            if s >= limit:
                return s
            y += 4
        for y in range(y, y1):
            cy = np.uint64(y)
            ry = np.uint64(y + dy)
            t = 0
            for k in range(n):
                t += abs(np.int64(cur[cy, np.uint64(x0 + k)])
                         - np.int64(ph[slot, fy, fx, ry, np.uint64(x0 + dx + k)]))
            s += t
            if s >= limit:
                return s
        return s
    for y in range(y0, y1):
        for x in range(x0, x1):
            s += abs(np.int64(cur[y, x]) - _up_sample(ph, slot, y, x, mvy, mvx, pad))
        if s >= limit:
            return s
    return s


@njit(cache=True, inline="always")
def _bi_sad(cur, ph, s1, v1y, v1x, s2, v2y, v2x, y0, x0, y1, x1, pad, limit):
    """SAD against the mean of two quarter-sample references."""
    hq4 = 4 * ph.shape[3]
    wq4 = 4 * ph.shape[4]
    s = 0
    o1y = 4 * pad + v1y
    o1x = 4 * pad + v1x
    o2y = 4 * pad + v2y
    o2x = 4 * pad + v2x
    if (4 * y0 + min(o1y, o2y) >= 0 and 4 * (y1 - 1) + max(o1y, o2y) < hq4
            and 4 * x0 + min(o1x, o2x) >= 0 and 4 * (x1 - 1) + max(o1x, o2x) < wq4):
        f1y = o1y & 3
        f1x = o1x & 3
        d1y = o1y >> 2
        d1x = o1x >> 2
        f2y = o2y & 3
        f2x = o2x & 3
        d2y = o2y >> 2
        d2x = o2x >> 2
        n = x1 - x0
        for y in range(y0, y1):  # inside the padded planes: no clamps, unsigned indices
            cy = np.uint64(y)
            r1 = np.uint64(y + d1y)
            r2 = np.uint64(y + d2y)
            t = 0
            for k in range(n):
                a = np.int64(ph[s1, f1y, f1x, r1, np.uint64(x0 + d1x + k)])
                b = np.int64(ph[s2, f2y, f2x, r2, np.uint64(x0 + d2x + k)])
                t += abs(np.int64(cur[cy, np.uint64(x0 + k)]) - ((a + b + 1) >> 1))
            s += t
            if s >= limit:
                return s
        return s
    for y in range(y0, y1):
        for x in range(x0, x1):
            a = _up_sample(ph, s1, y, x, v1y, v1x, pad)
            b = _up_sample(ph, s2, y, x, v2y, v2x, pad)
            s += abs(np.int64(cur[y, x]) - ((a + b + 1) >> 1))
        if s >= limit:
            return s
    return s


@njit(cache=True)
def _mvd_cost(d):
    """Approximate bits (1/256 units) of one vector component difference: 256 (1 + 2 n), n the
    bit length of |d| (one count-leading-zeros, no loop)."""
    return 256 * (1 + 2 * (64 - leading_zeros(np.int64(abs(d)))))


@njit(cache=True)
def _predictor(modes, mvy, mvx, cy, cx, size, top):
    """Median of the left, top and top-right neighbour vectors of a node (intra counts as 0; the
    top ones only below cell row ``top``)."""
    gh, gw = modes.shape
    ly = lx = ty = tx = ry = rx = 0
    if cx > 0 and modes[cy, cx - 1] != INTRA:
        ly, lx = mvy[cy, cx - 1], mvx[cy, cx - 1]
    if cy > top and modes[cy - 1, cx] != INTRA:
        ty, tx = mvy[cy - 1, cx], mvx[cy - 1, cx]
    if cy > top and cx + size < gw and modes[cy - 1, cx + size] != INTRA:
        ry, rx = mvy[cy - 1, cx + size], mvx[cy - 1, cx + size]
    return np.int64(_median3(ly, ty, ry)), np.int64(_median3(lx, tx, rx))


@njit(cache=True)
def _best_vector(cur, ph, slot, pad, y0, x0, y1, x1, cand_y, cand_x, py, px, search_range, mvd_shift):
    """The candidate vectors' integer positions, then integer steps (+-1) from the best while
    one lowers the cost, then a half-sample step and quarter-sample steps likewise.

    Candidates are in quarter samples. Returns the best quarter-sample vector by SAD plus the
    vector's estimated bits shifted right by ``mvd_shift``. A candidate's position is measured
    once even when several candidates round to it, and a step skips the neighbours of the
    position before, which lost to it (a second measurement could never win: ties keep the
    first).
    Integer positions are read from phase (0, 0) of the quarter-sample planes, which holds the
    reference itself, edges replicated as a clamped read of it would (uint8 or uint16 and padded:
    a quarter or half the memory of the int32 reference, and fewer blocks take the clamped path).
    """
    big = np.int64(1) << 60
    best = big
    iy = 0
    ix = 0
    n = 0
    for c in range(cand_y.size):  # the candidates' own integer positions first
        ty = (cand_y[c] + 2) >> 2
        tx = (cand_x[c] + 2) >> 2
        if abs(ty) > search_range or abs(tx) > search_range:
            continue
        seen = False  # rounds to an earlier candidate's position
        for e in range(c):
            if ty == ((cand_y[e] + 2) >> 2) and tx == ((cand_x[e] + 2) >> 2):
                seen = True
                break
        if seen:
            continue
        n += 1
        # the vector's cost first: the SAD need only be known below best minus it (a sum stopped
        # at that bound, or no sum at all, loses as a complete one would)
        m = (_mvd_cost(4 * ty - py) + _mvd_cost(4 * tx - px)) >> mvd_shift
        if m >= best:
            continue
        s = _sad_up(cur, ph, slot, y0, x0, y1, x1, 4 * ty, 4 * tx, pad, best - m) + m
        if s < best:
            best = s
            iy = ty
            ix = tx
    sy = 4 * iy
    sx = 4 * ix
    # the quarter-sample plane holds the reference itself at integer positions (edges replicated
    # alike), so ``best`` is already the cost of (sy, sx) there, unless no candidate was in range
    if n == 0:
        best = _sad_up(cur, ph, slot, y0, x0, y1, x1, sy, sx, pad, big) \
            + ((_mvd_cost(sy - py) + _mvd_cost(sx - px)) >> mvd_shift)
    # walks, each step to the best of the 8 neighbours at ``stride`` quarter samples while one
    # lowers the cost: whole samples from the best candidate (up to _INTEGER_STEPS after the
    # first), then half a sample and quarter samples (up to _QUARTER_STEPS after the half step).
    # A neighbour of the position before lost to it and is not measured again
    for walk in range(0 if n > 0 else 1, 2):
        oy = sy + 64  # the position before: none yet (no neighbour of it is near)
        ox = sx
        for k in range((_INTEGER_STEPS if walk == 0 else _QUARTER_STEPS) + 1):
            stride = 4 if walk == 0 else (2 if k == 0 else 1)
            cy = sy
            cx = sx
            for dy in range(-stride, stride + 1, stride):
                for dx in range(-stride, stride + 1, stride):
                    ty = cy + dy
                    tx = cx + dx
                    if (dy == 0 and dx == 0) or (abs(ty - oy) <= stride and abs(tx - ox) <= stride):
                        continue
                    if walk == 0 and (abs(ty) > 4 * search_range or abs(tx) > 4 * search_range):
                        continue
                    m = (_mvd_cost(ty - py) + _mvd_cost(tx - px)) >> mvd_shift
                    if m >= best:
                        continue
                    s = _sad_up(cur, ph, slot, y0, x0, y1, x1, ty, tx, pad, best - m) + m
                    if s < best:
                        best = s
                        sy = ty
                        sx = tx
            if walk == 0 or k > 0:  # (after the half step, the quarter steps in any case)
                if sy == cy and sx == cx:
                    break
                oy = cy
                ox = cx
    return sy, sx


@njit(cache=True)
def _box_sums(plane, pad):
    """Summed-area table of ``plane`` edge-extended by ``pad`` on every side: out[y, x] is the sum
    of the extended plane's samples above and left of (y - pad, x - pad) (shape + 2 pad + 1)."""
    h, w = plane.shape
    hp = h + 2 * pad
    wp = w + 2 * pad
    out = np.zeros((hp + 1, wp + 1), dtype=np.int64)
    for y in range(hp):
        row = plane[min(max(y - pad, 0), h - 1)]
        s = np.int64(0)
        for x in range(wp):
            s += row[min(max(x - pad, 0), w - 1)]
            out[y + 1, x + 1] = out[y, x + 1] + s
    return out


@njit(cache=True, inline="always")
def _rect_sum(sums, ya, yb, xa, xb):
    """The sum of the samples in rows [ya, yb) and columns [xa, xb) of a summed-area table's
    plane (_box_sums)."""
    return (sums[yb, xb] - sums[ya, xb]) - (sums[yb, xa] - sums[ya, xa])


@njit(cache=True)
def _coarse_vector(cur2, refs2, slot, y0, x0, y1, x1, r2, seed_y, seed_x, seed2_y, seed2_x, sums, lb):
    """Integer full search on 2x2-averaged planes; the winner in full-resolution samples.

    The winner is the first displacement in raster order with the least SAD. Two seeds, in
    coarse samples (search_frame's: the previous block's winner and the previous frame's vector
    at the block), are measured first: a low bound from the start lets most of the raster stop
    after a few rows (the second seed: bigbuckbunny's search 2-4% shorter). Each displacement is then kept
    only if its SAD is below the best or equal to it and earlier in the raster, so the winner
    does not depend on the seed.

    Displacements that could neither win nor tie are not measured, by a lower bound on the SAD
    (successive elimination, as in multilevel SEA): the differences between the sums of the
    block's four quadrants and the displaced block's, added up (the triangle inequality: it is
    at most the SAD, and at least the difference of the whole blocks' sums). ``sums``:
    _box_sums(refs2[slot], r2). The bounds go a row of displacements at a time into ``lb``
    (2 r2 + 1 int64s; a loop that vectorises), and a row none of whose bounds is within the best
    is passed over whole. (The whole blocks' bound first, and the quadrants' only where it left
    a displacement in, took 2.5% more of the search on bigbuckbunny: the scalar second bound
    spilled the loop's registers.)"""
    cy0 = y0 // 2
    cx0 = x0 // 2
    cy1 = max(cy0 + 1, (y1 + 1) // 2)
    cx1 = max(cx0 + 1, (x1 + 1) // 2)
    gy = min(max(seed_y, -r2), r2)
    gx = min(max(seed_x, -r2), r2)
    best = _sad(cur2, refs2, slot, cy0, cx0, cy1, cx1, gy, gx, np.int64(1) << 60)
    hy = min(max(seed2_y, -r2), r2)
    hx = min(max(seed2_x, -r2), r2)
    if hy != gy or hx != gx:
        s2 = _sad(cur2, refs2, slot, cy0, cx0, cy1, cx1, hy, hx, best + 1)
        if s2 < best or (s2 == best and (hy < gy or (hy == gy and hx < gx))):
            best = s2
            gy = hy
            gx = hx
    my = (cy0 + cy1) // 2  # the quadrants: rows [cy0, my), [my, cy1), columns likewise
    mx = (cx0 + cx1) // 2
    q00 = q01 = q10 = q11 = np.int64(0)
    for y in range(cy0, cy1):
        left = np.int64(0)
        right = np.int64(0)
        for x in range(cx0, mx):
            left += cur2[y, x]
        for x in range(mx, cx1):
            right += cur2[y, x]
        if y < my:
            q00 += left
            q01 += right
        else:
            q10 += left
            q11 += right
    nd = 2 * r2 + 1
    for dy in range(-r2, r2 + 1):
        ya = np.uint64(cy0 + dy + r2)  # the block's rows in the extended plane
        ym = np.uint64(my + dy + r2)
        yb = np.uint64(cy1 + dy + r2)
        least = np.int64(1) << 62
        for k in range(nd):  # displacement dx = k - r2: the block's columns from cx0 + k to cx1 + k
            xa = np.uint64(cx0 + k)
            xm = np.uint64(mx + k)
            xb = np.uint64(cx1 + k)
            b = (abs(q00 - _rect_sum(sums, ya, ym, xa, xm)) + abs(q01 - _rect_sum(sums, ya, ym, xm, xb))
                 + abs(q10 - _rect_sum(sums, ym, yb, xa, xm)) + abs(q11 - _rect_sum(sums, ym, yb, xm, xb)))
            lb[np.uint64(k)] = b
            least = min(least, b)
        if least > best:
            continue
        for k in range(nd):
            if lb[k] > best:
                continue
            dx = k - r2
            # the bound best + 1 stops only displacements that cost more than the best: a sum
            # at most the best is complete
            s = _sad(cur2, refs2, slot, cy0, cx0, cy1, cx1, dy, dx, best + 1)
            if s < best or (s == best and (dy < gy or (dy == gy and dx < gx))):
                best = s
                gy = dy
                gx = dx
    return 2 * gy, 2 * gx


@njit(cache=True)
def _intra_cost(cur, y0, x0, y1, x1, maxval, cost, step):
    """Estimated residual bits (1/256) of MED intra over a block of the source (the definition
    _intra_cells computes cell by cell; tests/test_fast_kernels.py holds it to this)."""
    c = 0
    for y in range(y0, y1):
        for x in range(x0, x1):
            c += _causal_cost(cost, np.int64(cur[y, x]) - _med_at(cur, y, x, maxval), step)
    return c


@njit(cache=True, inline="always")
def _inside(ph, pad, y0, x0, y1, x1, vy, vx):
    """Whether samples [y0, y1) x [x0, x1) at quarter-sample vector (vy, vx) lie inside the
    padded planes (then no clamp is needed)."""
    return (4 * (y0 + pad) + vy >= 0 and 4 * (y1 - 1 + pad) + vy < 4 * ph.shape[3]
            and 4 * (x0 + pad) + vx >= 0 and 4 * (x1 - 1 + pad) + vx < 4 * ph.shape[4])


# inlined into _leaf_costs: a call's reference counting of its four arrays (atomic increments
# and decrements) cost more than the call itself (search_frame ~3% faster)
@njit(cache=True, inline="always")
def _leaf_costs_inside(cur, ph, slot, pad, y0, x0, y1, x1, vy, vx, maxval, cost, causal, step, bi, slot2,
                       v2y, v2x, tb, limit):
    """``_leaf_costs`` of a block that has a top and left border, with every sample inside the
    padded planes and every residual inside the cost table: no clamps, unsigned indices. (T is
    sampled whole first: sampling each row just before its costs, so that a block stopped at
    ``limit`` samples no more, made the medium preset's search 15-20% slower.)"""
    bh = y1 - y0 + 1
    bw = x1 - x0 + 1
    oy = 4 * pad + vy
    ox = 4 * pad + vx
    fy = oy & 3
    fx = ox & 3
    dy = (oy >> 2) + y0 - 1
    dx = (ox >> 2) + x0 - 1
    o2y = 4 * pad + v2y
    o2x = 4 * pad + v2x
    f2y = o2y & 3
    f2x = o2x & 3
    d2y = (o2y >> 2) + y0 - 1
    d2x = (o2x >> 2) + x0 - 1
    for i in range(bh):
        r1 = np.uint64(i + dy)
        for j in range(bw):
            tb[np.uint64(i), np.uint64(j)] = ph[slot, fy, fx, r1, np.uint64(j + dx)]
        if bi:
            r2 = np.uint64(i + d2y)
            for j in range(bw):
                b = np.int64(ph[slot2, f2y, f2x, r2, np.uint64(j + d2x)])
                tb[np.uint64(i), np.uint64(j)] = (tb[np.uint64(i), np.uint64(j)] + b + 1) >> 1
    c_inter = 0
    c_med = 0
    top = cost.size - 1
    for i in range(1, bh):
        ui = np.uint64(i)
        up = np.uint64(i - 1)
        cy = np.uint64(y0 - 1 + i)
        cu = np.uint64(y0 - 2 + i)
        for j in range(1, bw):
            uj = np.uint64(j)
            ul = np.uint64(j - 1)
            cx = np.uint64(x0 - 1 + j)
            cl = np.uint64(x0 - 2 + j)
            v = np.int64(cur[cy, cx])
            t = tb[ui, uj]
            d = _med(cur[cy, cl] - tb[ui, ul], cur[cu, cx] - tb[up, uj], cur[cu, cl] - tb[up, ul])
            p = t + d
            p = 0 if p < 0 else (maxval if p > maxval else p)
            if step == 1:  # |residual| <= maxval < cost.size unless the source is out of range
                a = min(abs(v - t), top)
                b = min(abs(v - p), top)
                c_inter += cost[np.uint64(a)]
                c_med += causal[np.uint64(b)]
            else:
                c_inter += _cost(cost, v - t, step)
                c_med += _causal_cost(causal, v - p, step)
        if c_inter >= limit and c_med >= limit:
            break
    return c_inter, c_med


@njit(cache=True)
def _leaf_costs(cur, ph, slot, pad, y0, x0, y1, x1, vy, vx, maxval, cost, causal, step, bi, slot2, v2y, v2x, tb,
                limit):
    """Estimated residual bits (1/256) of INTER and INTER_MED at one vector (or, with ``bi``,
    the mean of two references at two vectors).

    ``cost`` prices INTER's residuals with _cost and ``causal`` INTER_MED's with _causal_cost
    (the same table lossless; near-lossless, search_frame's quantised_costs with step 1).
    Callers pass every argument as a run-time int64 or bool (no literal, no int32), so that this
    kernel and _leaf_costs_inside compile once. ``tb``: a work buffer of at least
    (y1 - y0 + 1, x1 - x0 + 1) (the search's, not one allocation per leaf and lag). A block
    with a top and left border may stop once both sums reach ``limit`` (_NO_LIMIT: never; the
    costs are not negative, so neither could end below it).

    Samples the block and its top/left border once; uses the source for the causal neighbours
    (exact when lossless; an estimate otherwise).
    """
    bh = y1 - y0 + 1
    bw = x1 - x0 + 1
    # tb[i, j]: sample at (y0 - 1 + i, x0 - 1 + j)
    if y0 > 0 and x0 > 0 and maxval < cost.size and _inside(ph, pad, y0 - 1, x0 - 1, y1, x1, vy, vx) \
            and (not bi or _inside(ph, pad, y0 - 1, x0 - 1, y1, x1, v2y, v2x)):
        return _leaf_costs_inside(cur, ph, slot, pad, y0, x0, y1, x1, vy, vx, maxval, cost, causal, step,
                                  bi, slot2, v2y, v2x, tb, limit)
    for i in range(bh):
        y = y0 - 1 + i
        for j in range(bw):
            x = x0 - 1 + j
            if (i == 0 and y < 0) or (j == 0 and x < 0):
                tb[i, j] = 0
            else:
                a = _up_sample(ph, slot, y, x, vy, vx, pad)
                if bi:
                    a = (a + _up_sample(ph, slot2, y, x, v2y, v2x, pad) + 1) >> 1
                tb[i, j] = a
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
            c_med += _causal_cost(causal, cur[y, x] - _clamp(t + d, 0, maxval), step)
    return c_inter, c_med


@njit(cache=True, inline="always")
def _descend(cur, ph, slot, pad, y0, x0, y1, x1, vy, vx, py, px, lag_bits, inter_bits, med_bits, maxval,
             cost, causal, step, tb, c_inter, c_med, steps):
    """From vector (vy, vx), whose _leaf_costs are (c_inter, c_med), quarter-sample steps to
    whichever of the 8 neighbours costs the fewest estimated bits (residual, mode symbol
    ``inter_bits`` or ``med_bits``, lag ``lag_bits`` and vector), while one costs fewer than the
    vector it is at, up to ``steps`` steps. Returns the vector and its _leaf_costs.

    The vector search ranks by SAD, the temporal residual's; INTER_MED codes that residual
    less its MED prediction, whose cost SAD says little about, and the cost of either is not
    linear in the residual. After _best_vector's own quarter-sample steps by SAD, these take
    another 0.8 / 3.0 / 2.7% off carphone / bikes / bigbuckbunny, for a search 2-3x as long
    (the slow preset's). A neighbour of the previous position lost to it, so it is not costed
    again; each costing stops once it cannot win (_leaf_costs' limit)."""
    best = min(c_inter + inter_bits, c_med + med_bits) + lag_bits + _mvd_cost(vy - py) + _mvd_cost(vx - px)
    oy = vy + 8  # the previous position: none yet (no neighbour of it is near)
    ox = vx
    for _ in range(steps):
        cy = vy
        cx = vx
        for k in range(9):
            ty = cy + k // 3 - 1
            tx = cx + k % 3 - 1
            if (ty == cy and tx == cx) or (abs(ty - oy) <= 1 and abs(tx - ox) <= 1):
                continue
            side = lag_bits + _mvd_cost(ty - py) + _mvd_cost(tx - px)
            limit = best - side - min(inter_bits, med_bits)
            if limit <= 0:
                continue
            a, b = _leaf_costs(cur, ph, slot, pad, y0, x0, y1, x1, ty, tx, maxval, cost, causal, step,
                               slot < 0, slot, ty, tx, tb, limit)
            if min(a + inter_bits, b + med_bits) + side < best:
                best = min(a + inter_bits, b + med_bits) + side
                vy, vx, c_inter, c_med = ty, tx, a, b
        if vy == cy and vx == cx:
            break
        oy = cy
        ox = cx
    return vy, vx, c_inter, c_med


@njit(cache=True)
def _warp_costs(cur, ph, slot, pad, y0, x0, cy0, cx0, size, cell, h, w, by, bx, p,
                maxval, cost, causal, step, tb, limit):
    """INTER and INTER_MED cost of a warped leaf: every cell at its own rendered vector. Stops
    once both sums reach ``limit`` (costs are not negative, so neither could end below it)."""
    c_inter = 0
    c_med = 0
    for cy in range(cy0, cy0 + size):
        yy0 = cy * cell
        if yy0 >= h:
            break
        for cx in range(cx0, cx0 + size):
            xx0 = cx * cell
            if xx0 >= w:
                break
            if c_inter >= limit and c_med >= limit:
                return c_inter, c_med
            vy, vx = warp_vector(by, bx, p[0], p[1], p[2], p[3], cell_offset(cy, cy0, size, cell),
                                 cell_offset(cx, cx0, size, cell))
            a, b = _leaf_costs(cur, ph, slot, pad, yy0, xx0, min(yy0 + cell, h),
                               min(xx0 + cell, w), np.int64(vy), np.int64(vx), maxval, cost, causal, step,
                               slot < 0, slot, np.int64(vy), np.int64(vx), tb, _NO_LIMIT)
            c_inter += a
            c_med += b
    return c_inter, c_med


@njit(cache=True)
def _fit_warp(qy, qx, half):
    """Affine parameters from the vectors of a leaf's four quadrants (TL, TR, BL, BR), whose
    centres are ``half`` luma samples apart; and the base vector at the leaf's centre."""
    scale = 1 << WARP_SHIFT
    den = 2 * half
    p = np.zeros(4, dtype=np.int64)
    p[0] = ((qx[1] - qx[0] + qx[3] - qx[2]) * scale) // den
    p[1] = ((qx[2] - qx[0] + qx[3] - qx[1]) * scale) // den
    p[2] = ((qy[1] - qy[0] + qy[3] - qy[2]) * scale) // den
    p[3] = ((qy[2] - qy[0] + qy[3] - qy[1]) * scale) // den
    by = (qy[0] + qy[1] + qy[2] + qy[3] + 2) >> 2
    bx = (qx[0] + qx[1] + qx[2] + qx[3] + 2) >> 2
    return by, bx, p


@njit(cache=True)
def _try_warps(cur, ph, slot, pad, y0, x0, cy0, cx0, size, cell, h, w, qy, qx, py, px, lag_bits,
               inter_bits, med_bits, maxval, cost, causal, step, c_best, p_out, tb):
    """Similarity and affine for a leaf whose four quadrants have vectors (qy, qx); ``lag_bits``,
    ``inter_bits`` and ``med_bits`` are the estimated bits of its lag and of its mode symbol as
    INTER or INTER_MED.

    Returns (cost, mode, family, base y, base x) of the best warp cheaper than ``c_best``
    (family TRANSLATION and mode -1 when none is), its parameters in ``p_out``."""
    wby, wbx, pa = _fit_warp(qy, qx, size * cell // 2)
    m_best = -1
    f_best = TRANSLATION
    for fam in (SIMILARITY, AFFINE):
        p = pa.copy()
        if fam == SIMILARITY:
            zoom = (pa[0] + pa[3]) // 2
            rot = (pa[2] - pa[1]) // 2
            p[0] = zoom
            p[1] = -rot
            p[2] = rot
            p[3] = zoom
        if p[0] == 0 and p[1] == 0 and p[2] == 0 and p[3] == 0:
            continue
        wside = lag_bits + 512 + _mvd_cost(wby - py) + _mvd_cost(wbx - px)
        for j in range(4 if fam == AFFINE else 2):
            wside += _mvd_cost(p[j if fam == AFFINE else 2 * j])
        w_inter, w_med = _warp_costs(cur, ph, slot, pad, y0, x0, cy0, cx0, size, cell, h, w,
                                     wby, wbx, p, maxval, cost, causal, step, tb,
                                     c_best - wside - min(inter_bits, med_bits))
        better = False
        if w_inter + inter_bits + wside < c_best:
            c_best = w_inter + inter_bits + wside
            m_best = INTER
            better = True
        if w_med + med_bits + wside < c_best:
            c_best = w_med + med_bits + wside
            m_best = INTER_MED
            better = True
        if better:
            f_best = fam
            for j in range(4):
                p_out[j] = p[j]
    return c_best, m_best, f_best, wby, wbx


@njit(cache=True)
def _intra_cells(cur, cell, gh, gw, maxval, cost, step, row0, row1):
    """Per chart cell of cell rows [row0, row1), ``_intra_cost`` of its samples (0 beyond the frame
    and those rows). MED intra over the source does not depend on the partition, so a leaf's intra
    cost is the sum over its cells.

    Row by row: the samples of a row with a row above and a left neighbour are costed in one
    branch-free loop (MED as the median of W, N and W + N - NW), then summed cell by cell."""
    h, w = cur.shape
    out = np.zeros((gh, gw), dtype=np.int64)
    row = np.empty(w, dtype=np.int64)
    top = cost.size - 1
    half = step // 2
    for y in range(min(row0 * cell, h), min(row1 * cell, h)):
        if y == 0:
            for x in range(w):
                p = np.int64(cur[0, x - 1]) if x > 0 else np.int64((maxval + 1) >> 1)
                row[x] = _causal_cost(cost, np.int64(cur[0, x]) - p, step)
        else:
            uy = np.uint64(y)
            un = np.uint64(y - 1)
            row[0] = _causal_cost(cost, np.int64(cur[y, 0]) - np.int64(cur[y - 1, 0]), step)
            if step == 1:
                for x in range(1, w):
                    ux = np.uint64(x)
                    ul = np.uint64(x - 1)
                    a = np.int64(cur[uy, ul])
                    b = np.int64(cur[un, ux])
                    c = np.int64(cur[un, ul])
                    p = max(min(a, b), min(max(a, b), a + b - c))
                    row[ux] = cost[np.uint64(min(abs(np.int64(cur[uy, ux]) - p), top))]
            else:
                for x in range(1, w):
                    a = np.int64(cur[y, x - 1])
                    b = np.int64(cur[y - 1, x])
                    c = np.int64(cur[y - 1, x - 1])
                    p = max(min(a, b), min(max(a, b), a + b - c))
                    row[x] = _cost(cost, abs(np.int64(cur[y, x]) - p) + half, step)
        cy = y // cell
        for cx in range(gw):
            x0 = cx * cell
            if x0 >= w:
                break
            s = np.int64(0)
            for x in range(x0, min(x0 + cell, w)):
                s += row[x]
            out[cy, cx] += s
    return out


@njit(cache=True, inline="always")
def _refine_second(cur, ph, sl1, v1y, v1x, sl2, v2y, v2x, y0, x0, y1, x1, pad):
    """Bi-prediction's second vector (reference slot sl2), refined around (v2y, v2x) with the
    first one (v1y, v1x in slot sl1) fixed: the 8 neighbours at half, then quarter steps, by the
    SAD of the averaged prediction."""
    best_sad = _bi_sad(cur, ph, sl1, v1y, v1x, sl2, v2y, v2x, y0, x0, y1, x1, pad, np.int64(1) << 60)
    for step_q in (2, 1):
        cy2 = v2y
        cx2 = v2x
        for dy in range(-step_q, step_q + 1, step_q):
            for dx in range(-step_q, step_q + 1, step_q):
                if dy == 0 and dx == 0:
                    continue
                sad = _bi_sad(cur, ph, sl1, v1y, v1x, sl2, cy2 + dy, cx2 + dx, y0, x0, y1, x1, pad,
                              best_sad)
                if sad < best_sad:
                    best_sad = sad
                    v2y = cy2 + dy
                    v2x = cx2 + dx
    return v2y, v2x


@njit(cache=True, inline="always")
def _symmetric_pair(cur, ph, sl, vy, vx, y0, x0, y1, x1, pad):
    """Two vectors into one reference (slot sl) around (vy, vx): the pair (v - d, v + d) with the
    least SAD of their mean, d one of the 8 directions at 1 or 2 quarter samples."""
    best = _bi_sad(cur, ph, sl, vy, vx, sl, vy, vx, y0, x0, y1, x1, pad, np.int64(1) << 60)
    by, bx = vy, vx
    ty, tx = vy, vx
    for r in (1, 2):
        for dy in range(-r, r + 1, r):
            for dx in range(-r, r + 1, r):
                if dy < 0 or (dy == 0 and dx <= 0):
                    continue  # (-d, d) is (d, -d): half the directions
                sad = _bi_sad(cur, ph, sl, vy - dy, vx - dx, sl, vy + dy, vx + dx, y0, x0, y1, x1, pad, best)
                if sad < best:
                    best = sad
                    by, bx, ty, tx = vy - dy, vx - dx, vy + dy, vx + dx
    return by, bx, ty, tx


@njit(cache=True, inline="always")
def _refine_pair(cur, ph, sl1, v1y, v1x, sl2, v2y, v2x, y0, x0, y1, x1, pad):
    """Both vectors of a bi-prediction refined in turn (_refine_second), each with the other one
    fixed, the first one first, for two rounds or until one stays where it is."""
    for _round in range(2):
        w1y, w1x = _refine_second(cur, ph, sl2, v2y, v2x, sl1, v1y, v1x, y0, x0, y1, x1, pad)
        if w1y == v1y and w1x == v1x:
            break
        v1y, v1x = w1y, w1x
        w2y, w2x = _refine_second(cur, ph, sl1, v1y, v1x, sl2, v2y, v2x, y0, x0, y1, x1, pad)
        if w2y == v2y and w2x == v2x:
            break
        v2y, v2x = w2y, w2x
    return v1y, v1x, v2y, v2x


@njit(cache=True, inline="always")
def _bi_bits(cur, ph, lag_slots, lag_costs, l1, v1y, v1x, l2, v2y, v2x, py, px, inter_bits, med_bits, y0, x0,
             y1, x1, pad, maxval, cost, causal, step, tb):
    """Estimated bits of a leaf bi-predicted from lag index l1 at (v1y, v1x) and l2 at (v2y, v2x)
    (the residual, the mode symbol ``inter_bits`` or ``med_bits``, the bi flag, both lags and
    both vectors, the second coded against the first scaled by the lags' ratio), and its mode."""
    p2y = (2 * v1y * (l2 + 1) + (l1 + 1)) // (2 * (l1 + 1))
    p2x = (2 * v1x * (l2 + 1) + (l1 + 1)) // (2 * (l1 + 1))
    side = (256 + lag_costs[l1] + lag_costs[l2] + _mvd_cost(v1y - py) + _mvd_cost(v1x - px)
            + _mvd_cost(v2y - p2y) + _mvd_cost(v2x - p2x))
    sl2 = lag_slots[l2]
    b_inter, b_med = _leaf_costs(cur, ph, lag_slots[l1], pad, y0, x0, y1, x1, v1y, v1x, maxval, cost, causal, step,
                                 sl2 >= 0, sl2, v2y, v2x, tb, _NO_LIMIT)
    if b_inter + inter_bits <= b_med + med_bits:
        return b_inter + inter_bits + side, INTER
    return b_med + med_bits + side, INTER_MED


@njit(cache=True, inline="always")
def _search_lag(cur, ph, slot, pad, y0, x0, y1, x1, c0y, c0x, py, px, last_y, last_x, cand_y, cand_x,
                search_range, mvd_shift, leaf_vy, leaf_vx, known, node, li):
    """The best vector of block (y0, x0)-(y1, x1) at lag index li (reference ``slot``) from its
    four candidates (c0: the parent's vector, or the coarse search's at a root; zero; the
    predicted (py, px); the last frame's vector there), stored as node's and returned."""
    cand_y[0] = c0y
    cand_y[1] = 0
    cand_y[2] = py
    cand_y[3] = last_y
    cand_x[0] = c0x
    cand_x[1] = 0
    cand_x[2] = px
    cand_x[3] = last_x
    vy, vx = _best_vector(cur, ph, slot, pad, y0, x0, y1, x1, cand_y, cand_x, py, px, search_range, mvd_shift)
    leaf_vy[node, li] = vy
    leaf_vx[node, li] = vx
    known[node, li] = True
    return vy, vx


@njit(cache=True)
def _ensure_vectors(cur, ph, lag_slots, pad, ry, rx, d, iy, ix, li, n, cell, h, w, offsets, known,
                    leaf_vy, leaf_vx, cand_y, cand_x, py, px, prev_mvy, prev_mvx, search_range, mvd_shift):
    """leaf_vy/leaf_vx[node, li] of the node (d, iy, ix) of the root block at cell (ry, rx), and
    of its ancestors, searched where not yet ``known``: search_frame stops a node's lags once no
    further one can win, and a node below (a candidate) or the warp above (its quadrants) may still
    read one. The same search, from the same candidates, as search_frame's own."""
    for dd in range(d + 1):  # from the root down: each takes its parent's vector as a candidate
        aiy = iy >> (d - dd)
        aix = ix >> (d - dd)
        anode = offsets[dd] + aiy * (1 << dd) + aix
        if known[anode, li]:
            continue
        size = n >> dd
        y0 = (ry + aiy * size) * cell
        x0 = (rx + aix * size) * cell
        y1 = min(y0 + size * cell, h)
        x1 = min(x0 + size * cell, w)
        cy_ = ry + aiy * size
        cx_ = rx + aix * size
        if dd == 0:
            c0y = leaf_vy[anode, 0] * (li + 1)
            c0x = leaf_vx[anode, 0] * (li + 1)
        else:
            par = offsets[dd - 1] + (aiy >> 1) * (1 << (dd - 1)) + (aix >> 1)
            c0y = leaf_vy[par, li]
            c0x = leaf_vx[par, li]
        _search_lag(cur, ph, lag_slots[li], pad, y0, x0, y1, x1, c0y, c0x, py, px, prev_mvy[cy_, cx_],
                    prev_mvx[cy_, cx_], cand_y, cand_x, search_range, mvd_shift, leaf_vy, leaf_vx, known, anode,
                    li)


#: A node's leaf cost when its parent's children were not searched (search_frame): more than any
#: real leaf, so that no split above it is kept (four of them still fit an int64).
_PRUNED_COST = np.int64(1) << 56


@njit(cache=True)
def _cell_least(intra_g, h, w, cell, cost_min):
    """Per chart cell, the least estimated bits its samples add to any leaf containing it: its
    intra cost (an intra leaf's residual is the sum of its cells') or every sample at the least
    residual cost (an inter leaf's, of any kind, is at least that: search_frame's ``floor``)."""
    gh, gw = intra_g.shape
    out = np.empty((gh, gw), dtype=np.int64)
    for cy in range(gh):
        rows = max(0, min(h, (cy + 1) * cell) - cy * cell)
        for cx in range(gw):
            cols = max(0, min(w, (cx + 1) * cell) - cx * cell)
            out[cy, cx] = min(intra_g[cy, cx], rows * cols * cost_min)
    return out


@njit(cache=True)
def _leaf_least(mode_costs, lag_least, nlags, mvd_min):
    """The least side bits of any leaf in the frame: its mode symbol under any context, with (inter
    leaves of every kind) the cheapest lag and two zero vector differences."""
    least = np.int64(1) << 60
    for r in range(mode_costs.shape[0]):
        least = min(least, np.int64(mode_costs[r, INTRA]))
        if nlags > 0:
            least = min(least, min(mode_costs[r, INTER], mode_costs[r, INTER_MED]) + lag_least[0] + 2 * mvd_min)
    return least


@njit(cache=True, inline="always")
def _children_bound(intra_g, cell_least, prev_modes, mode_costs, cy, cx, half, cell, h, w, cost_min, inter_side,
                    leaf_least, flag, leaves_only):
    """A lower bound on what the four children (``half`` cells a side, the first at cell (cy, cx))
    of a node cost together as search_frame's pruning adds them up: each its split flag
    (``flag``) and, if it lies in the frame, the least of what it costs as one leaf (intra:
    exactly its mode symbol and its cells' intra costs; any kind of inter leaf: at least its mode
    symbol, ``inter_side`` (the cheapest lag, two zero vector differences; -1: no lag) and every
    sample at the least residual cost) and, unless ``leaves_only``, of what any partition of it
    costs (at least one leaf's side bits and each cell's least residual bits)."""
    gh, gw = cell_least.shape
    total = np.int64(0)
    for k in range(4):
        y = cy + (k >> 1) * half
        x = cx + (k & 1) * half
        total += flag
        if y * cell >= h or x * cell >= w:
            continue  # beyond the frame: a leaf of no cost
        mc = mode_costs[prev_modes[y, x]]
        best = np.int64(mc[INTRA])
        for yy in range(y, min(gh, y + half)):
            for xx in range(x, min(gw, x + half)):
                best += intra_g[yy, xx]
        if inter_side >= 0:
            samples = (min(h, (y + half) * cell) - y * cell) * (min(w, (x + half) * cell) - x * cell)
            best = min(best, samples * cost_min + min(mc[INTER], mc[INTER_MED]) + inter_side)
        if not leaves_only:  # (the medium preset's 16-sample roots have leaves for children)
            least = leaf_least
            for yy in range(y, min(gh, y + half)):
                for xx in range(x, min(gw, x + half)):
                    least += cell_least[yy, xx]
            best = min(best, least)
        total += best
    return total


@njit(cache=True, nogil=True)
def search_frame(cur, ph, refs2, cur2, sums, lag_slots, lag_costs, mode_costs, pad, root, cell, min_leaf,
                 search_range, prev_modes, prev_mvy, prev_mvx, maxval, cost, step, warp_min, descent,
                 lag_on, bi_pred, early_exit, row0, row1):
    """The chart grids (depth, modes, lags, mvy, mvx per cell) minimising estimated bits, in the
    band of cell rows [row0, row1) (whole root blocks; the rest of the grids stays 0). A band
    reads nothing of the grids outside it, so bands may be searched in any order or at once: a
    vector's prediction at a band's top takes no neighbours from above.

    For every root block, every quadtree node down to ``min_leaf`` samples gets its best leaf:
    intra, or for each lag the best quarter-sample vector (coarse full search at the root for lag
    1; elsewhere refinement around the parent's, the predicted and last frame's vectors) with INTER
    or INTER_MED, then bi-prediction from the best lag and each lag, itself too. Leaves of at least
    ``warp_min`` samples also try similarity and affine warps at their best lag, fitted to their
    quadrants' vectors: the children's vectors at that lag when the node has children (so the warp
    needs no search of its own and is tried after bi-prediction), else a search of each quadrant.
    Then, bottom up, a node splits only when its children plus the split flag cost less than the
    node as one leaf (MDL pruning). With ``early_exit`` (the encoder's; off only to test that it
    changes nothing), a node's children are not searched at all when no partition of the node
    could cost less than it does as one leaf (_children_bound).

    Side bits are estimated from what the chart will cost: ``lag_costs[l - 1]`` for lag l,
    ``mode_costs[prev_modes there, mode]`` for the mode symbol under its context (the previous
    chart's mode at the leaf), fixed estimates for the bi-prediction flag and a warp's family,
    _mvd_cost for vector components.

    ``descent`` > 0 (the slow preset): each lag's vector then takes up to that many
    quarter-sample steps by estimated bits (_descend). Only the lags li with ``lag_on[li]`` are
    searched (lag 1 always), and bi-prediction only with ``bi_pred`` (search.search_plan says
    when they are worth their time).

    ``ph`` holds the references' quarter-sample planes split by phase (``upsample_phases``),
    ``refs2`` and ``cur2`` the 2x2-averaged planes of the coarse search, ``sums`` the coarse
    search's _box_sums(refs2[lag_slots[0]], max(1, search_range // 2)) (a frame's, once for all
    its bands).
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
    leaf_family = np.zeros(total, dtype=np.int8)
    leaf_base = np.zeros((total, 2), dtype=np.int32)
    leaf_warp = np.zeros((total, 4), dtype=np.int32)
    family_g = np.zeros((gh, gw), dtype=np.int8)
    base_g = np.zeros((2, gh, gw), dtype=np.int32)
    warp_g = np.zeros((4, gh, gw), dtype=np.int32)
    qy = np.zeros(4, dtype=np.int64)
    cand_y = np.zeros(4, dtype=np.int32)
    cand_x = np.zeros(4, dtype=np.int32)
    mvd_shift = np.int64(_MVD_SHIFT_FINE if step <= 3 else _MVD_SHIFT)  # _best_vector's vector weight
    # near-lossless: a residual's estimated bits by its magnitude, quantised with ``step``, plus
    # its weighted squared error (DISTORTION_WEIGHT), as tables worked out for the band (a read
    # per sample instead of a division): INTER's (_cost) and the causal predictions'
    # (_causal_cost); costed from them with step 1 below. Lossless: ``cost`` itself for both
    causal = cost
    if step > 1:
        cost, causal = quantised_costs(cost, step, maxval + 1)
        step = np.int64(1)
    intra_g = _intra_cells(cur, cell, gh, gw, maxval, causal, step, row0, row1)
    qx = np.zeros(4, dtype=np.int64)
    leaf_bi = np.zeros(total, dtype=np.int8)
    leaf_lag2 = np.zeros(total, dtype=np.int8)
    leaf_v2 = np.zeros((total, 2), dtype=np.int32)
    tb = np.empty((root + 1, root + 1), dtype=np.int64)  # _leaf_costs' samples of a block
    bi_g = np.zeros((gh, gw), dtype=np.int8)
    lags2_g = np.zeros((gh, gw), dtype=np.int8)
    mv2_g = np.zeros((2, gh, gw), dtype=np.int32)
    nlags = lag_slots.size
    r2 = max(1, search_range // 2)
    coarse_lb = np.empty(2 * r2 + 1, dtype=np.int64)  # _coarse_vector's bounds of a row
    # the least side bits of the lags from each index on, and of a pair of lags
    lag_least = np.zeros(max(nlags, 1), dtype=np.int64)
    for li in range(nlags - 1, -1, -1):
        lag_least[li] = lag_costs[li] if li == nlags - 1 else min(lag_costs[li], lag_least[li + 1])
    pair_least = 2 * lag_least[0]  # (a pair may take the cheapest lag twice)
    # np.int64(): values passed to kernels keep one type from their first definition on, so
    # that type inference does not compile a callee for a literal or int32 first (cold JIT)
    # lower bounds: every residual costs at least cost_min, every vector component at least
    # _mvd_cost(0); a leaf already at the bound of a mode cannot be beaten by it (ties keep the
    # first), so that mode is not tried
    cost_min = np.int64(cost[0])  # the least entry (COST rises; quantised_costs adds no error at 0)
    mvd_min = _mvd_cost(np.int64(0))
    known = np.zeros((total, max(nlags, 1)), dtype=np.bool_)  # leaf_vy/leaf_vx[node, lag] searched
    # early termination of the quadtree: a node's children are not searched when no partition of
    # it could cost less than the node as one leaf (_children_bound); the same chart, as the
    # pruning below would keep the node whole anyway. Not with ``descent``, whose vectors a
    # child searched later (for a warp: _ensure_vectors) would not take.
    cell_least = _cell_least(intra_g, h, w, cell, cost_min)
    leaf_least = _leaf_least(mode_costs, lag_least, nlags, mvd_min)
    inter_side = lag_least[0] + 2 * mvd_min if nlags > 0 else np.int64(-1)
    pruned = np.zeros(total, dtype=np.bool_)  # the node's children are not searched
    seed_y = np.int64(0)  # the last root block's coarse winner, where the next coarse search starts
    seed_x = np.int64(0)
    for ry in range(row0, min(row1, gh), n):
        for rx in range(0, gw, n):
            py, px = _predictor(modes_g, mvy_g, mvx_g, ry, rx, n, row0)
            known[:] = False
            for d in range(max_d + 1):
                size = n >> d  # in cells
                for iy in range(1 << d):
                    for ix in range(1 << d):
                        node = offsets[d] + iy * (1 << d) + ix
                        y0 = (ry + iy * size) * cell
                        x0 = (rx + ix * size) * cell
                        parent = offsets[d - 1] + (iy >> 1) * (1 << (d - 1)) + (ix >> 1) if d > 0 else -1
                        pruned[node] = d > 0 and pruned[parent]
                        if y0 >= h or x0 >= w or pruned[node]:
                            leaf_cost[node] = 0 if not pruned[node] else _PRUNED_COST
                            leaf_mode[node] = INTRA
                            leaf_lag[node] = 0
                            continue
                        y1 = min(y0 + size * cell, h)
                        x1 = min(x0 + size * cell, w)
                        cy_ = ry + iy * size
                        cx_ = rx + ix * size
                        mc = mode_costs[prev_modes[cy_, cx_]]  # the mode symbol's, by its context
                        mi = mc[INTER]
                        mm = mc[INTER_MED]
                        m_least = min(mi, mm)
                        c_best = np.int64(mc[INTRA])
                        for yy in range(cy_, cy_ + size):
                            for xx in range(cx_, cx_ + size):
                                c_best += intra_g[yy, xx]
                        m_best = INTRA
                        l_best = 0
                        floor = (y1 - y0) * (x1 - x0) * cost_min  # of any residual of the leaf
                        searched = nlags
                        for li in range(nlags):
                            if ((li > 0 or d > 0) and c_best <= floor + m_least + lag_least[li] + 2 * mvd_min
                                    and c_best <= floor + m_least + 256 + pair_least + 4 * mvd_min):
                                # no further lag can win, nor bi-prediction (which costs more side
                                # bits): their vectors are searched only if something reads them
                                # (a root block always searches lag 1: its coarse search is not
                                # repeated lazily)
                                searched = li
                                break
                            if li > 0 and not lag_on[li]:
                                continue
                            slot = lag_slots[li]
                            if d == 0:
                                if li == 0:
                                    gy, gx = _coarse_vector(cur2, refs2, slot, y0, x0, y1, x1, r2,
                                                            seed_y, seed_x, (np.int64(prev_mvy[cy_, cx_]) + 4) >> 3,
                                                            (np.int64(prev_mvx[cy_, cx_]) + 4) >> 3, sums, coarse_lb)
                                    seed_y, seed_x = gy // 2, gx // 2
                                    c0y, c0x = 4 * gy, 4 * gx
                                else:
                                    c0y = leaf_vy[node, 0] * (li + 1)
                                    c0x = leaf_vx[node, 0] * (li + 1)
                            else:
                                if not known[parent, li]:
                                    _ensure_vectors(cur, ph, lag_slots, pad, ry, rx, d - 1, iy >> 1,
                                                    ix >> 1, li, n, cell, h, w, offsets, known,
                                                    leaf_vy, leaf_vx, cand_y, cand_x, py, px,
                                                    prev_mvy, prev_mvx, search_range, mvd_shift)
                                c0y = leaf_vy[parent, li]
                                c0x = leaf_vx[parent, li]
                            # _search_lag, written out: inlined, it took a reference to each of
                            # its seven arrays per call (atomic NRT increments and decrements)
                            cand_y[0] = c0y
                            cand_y[1] = 0
                            cand_y[2] = py
                            cand_y[3] = prev_mvy[cy_, cx_]
                            cand_x[0] = c0x
                            cand_x[1] = 0
                            cand_x[2] = px
                            cand_x[3] = prev_mvx[cy_, cx_]
                            vy, vx = _best_vector(cur, ph, slot, pad, y0, x0, y1, x1, cand_y, cand_x, py,
                                                  px, search_range, mvd_shift)
                            leaf_vy[node, li] = vy
                            leaf_vx[node, li] = vx
                            known[node, li] = True
                            side = lag_costs[li] + _mvd_cost(vy - py) + _mvd_cost(vx - px)
                            # one hypothesis; its sums may stop once neither mode could beat the
                            # best leaf so far (the slow preset's descent starts from both costs)
                            limit = c_best - side - m_least if descent == 0 else _NO_LIMIT
                            c_inter, c_med = _leaf_costs(cur, ph, slot, pad, y0, x0, y1, x1,
                                                         vy, vx, maxval, cost, causal, step, slot < 0, slot,
                                                         vy, vx, tb, limit)
                            if descent > 0:
                                vy, vx, c_inter, c_med = _descend(cur, ph, slot, pad, y0, x0, y1, x1, vy,
                                                                  vx, py, px, lag_costs[li], mi, mm, maxval,
                                                                  cost, causal, step, tb, c_inter, c_med, descent)
                                leaf_vy[node, li] = vy
                                leaf_vx[node, li] = vx
                                side = lag_costs[li] + _mvd_cost(vy - py) + _mvd_cost(vx - px)
                            if c_inter + mi + side < c_best:
                                c_best = c_inter + mi + side
                                m_best = INTER
                                l_best = li + 1
                            if c_med + mm + side < c_best:
                                c_best = c_med + mm + side
                                m_best = INTER_MED
                                l_best = li + 1
                            if m_best != INTRA and l_best == li + 1:
                                leaf_family[node] = TRANSLATION
                                leaf_base[node, 0] = vy
                                leaf_base[node, 1] = vx
                        if (d == max_d and m_best != INTRA and size * cell >= warp_min
                                and y1 - y0 == size * cell and x1 - x0 == size * cell):
                            # warps of a leaf without children, for the best lag only: search
                            # the four quadrants around its vector, fit, try similarity and affine
                            # (leaves with children take their children's vectors, below)
                            li = l_best - 1
                            slot = lag_slots[li]
                            vy = np.int64(leaf_vy[node, li])
                            vx = np.int64(leaf_vx[node, li])
                            hs = size * cell // 2
                            cand_y[0] = vy
                            cand_x[0] = vx
                            for k in range(4):
                                qy0 = y0 + (k >> 1) * hs
                                qx0 = x0 + (k & 1) * hs
                                qy[k], qx[k] = _best_vector(cur, ph, slot, pad, qy0, qx0,
                                                            qy0 + hs, qx0 + hs, cand_y[:1],
                                                            cand_x[:1], vy, vx, search_range, mvd_shift)
                            c_w, m_w, f_w, wby, wbx = _try_warps(
                                cur, ph, slot, pad, y0, x0, ry + iy * size, rx + ix * size, size,
                                cell, h, w, qy, qx, py, px, lag_costs[li], mi, mm, maxval, cost, causal, step, c_best,
                                leaf_warp[node], tb)
                            if m_w >= 0:
                                c_best = c_w
                                m_best = m_w
                                leaf_family[node] = f_w
                                leaf_base[node, 0] = wby
                                leaf_base[node, 1] = wbx
                        leaf_bi[node] = 0
                        if (bi_pred and searched == nlags and m_best != INTRA
                                and leaf_family[node] == TRANSLATION):
                            # bi-prediction: the best lag's vector averaged with each lag's, its
                            # own included (two vectors into one frame: a sub-sample average, which
                            # smooths a near-lossless reference's quantisation error), the second
                            # refined jointly with the first (the partner that is second best alone
                            # is often not the best partner: on bigbuckbunny, trying it alone made
                            # a fourth lag cost more than it saved)
                            l1 = l_best - 1
                            v1y = np.int64(leaf_vy[node, l1])
                            v1x = np.int64(leaf_vx[node, l1])
                            side1 = 256 + lag_costs[l1] + _mvd_cost(v1y - py) + _mvd_cost(v1x - px)
                            b_best = c_best  # the best pair's bits, mode, second lag and vectors
                            b_mode = m_best
                            b_l2 = -1
                            b_v1y, b_v1x, b_v2y, b_v2x = v1y, v1x, v1y, v1x
                            for l2 in range(nlags):
                                if (not lag_on[l2]
                                        or c_best <= floor + m_least + side1 + lag_costs[l2] + 2 * mvd_min):
                                    continue  # bi-prediction with this lag cannot win
                                # the second vector refined from the lag's own; with the best lag
                                # itself, also the symmetric pair around its vector (a refinement
                                # that starts from one vector twice stays near it: on bikes at
                                # E = 4 the symmetric pairs took another 2.7% off)
                                for start in range(2 if l2 == l1 else 1):
                                    if start == 0:
                                        w1y, w1x = v1y, v1x
                                        v2y, v2x = _refine_second(cur, ph, lag_slots[l1], v1y, v1x, lag_slots[l2],
                                                                  np.int64(leaf_vy[node, l2]),
                                                                  np.int64(leaf_vx[node, l2]), y0, x0, y1, x1, pad)
                                    else:
                                        w1y, w1x, v2y, v2x = _symmetric_pair(cur, ph, lag_slots[l1], v1y, v1x,
                                                                             y0, x0, y1, x1, pad)
                                    bits, mode = _bi_bits(cur, ph, lag_slots, lag_costs, l1, w1y, w1x, l2, v2y,
                                                          v2x, py, px, mi, mm, y0, x0, y1, x1, pad, maxval, cost,
                                                          causal, step, tb)
                                    if bits < b_best:
                                        b_best, b_mode, b_l2 = bits, mode, l2
                                        b_v1y, b_v1x, b_v2y, b_v2x = w1y, w1x, v2y, v2x
                            if b_l2 >= 0:
                                # the winning pair's vectors refined jointly (both in turn): 0.1-0.6%
                                # smaller files for almost no time, as only these leaves pay for it
                                # (every partner's: another 0.1-0.4% for 12% more search)
                                w1y, w1x, w2y, w2x = _refine_pair(cur, ph, lag_slots[l1], b_v1y, b_v1x, lag_slots[b_l2],
                                                                  b_v2y, b_v2x, y0, x0, y1, x1, pad)
                                bits, mode = _bi_bits(cur, ph, lag_slots, lag_costs, l1, w1y, w1x, b_l2, w2y, w2x,
                                                      py, px, mi, mm, y0, x0, y1, x1, pad, maxval, cost, causal,
                                                      step, tb)
                                if bits < b_best:
                                    b_best, b_mode, b_v1y, b_v1x, b_v2y, b_v2x = bits, mode, w1y, w1x, w2y, w2x
                                c_best = b_best
                                m_best = b_mode
                                leaf_bi[node] = 1
                                leaf_lag2[node] = b_l2 + 1
                                leaf_v2[node, 0] = b_v2y
                                leaf_v2[node, 1] = b_v2x
                                leaf_base[node, 0] = b_v1y
                                leaf_base[node, 1] = b_v1x
                        leaf_cost[node] = c_best
                        leaf_mode[node] = m_best
                        leaf_lag[node] = l_best
                        if d < max_d and descent == 0 and early_exit:
                            pruned[node] = _children_bound(
                                intra_g, cell_least, prev_modes, mode_costs, cy_, cx_, size >> 1, cell, h, w,
                                cost_min, inter_side, leaf_least, 256 if d + 1 < max_d else 0,
                                d + 1 == max_d) >= c_best
            # warps of leaves with children, for their best lag: the quadrants' vectors are the
            # children's vectors at that lag (no search of their own); a warp replaces the
            # leaf's translation or bi-prediction when it costs less
            for d in range(max_d - 1, -1, -1):
                size = n >> d
                if size * cell < warp_min:
                    continue
                for iy in range(1 << d):
                    for ix in range(1 << d):
                        node = offsets[d] + iy * (1 << d) + ix
                        y0 = (ry + iy * size) * cell
                        x0 = (rx + ix * size) * cell
                        if y0 + size * cell > h or x0 + size * cell > w or leaf_mode[node] == INTRA:
                            continue
                        # a warp's side bits: the flag, lag, family, base vector and at least
                        # two parameters
                        li = leaf_lag[node] - 1
                        mc = mode_costs[prev_modes[ry + iy * size, rx + ix * size]]
                        if leaf_cost[node] <= ((size * cell) * (size * cell) * cost_min
                                               + min(mc[INTER], mc[INTER_MED]) + lag_costs[li]
                                               + 512 + 4 * mvd_min):
                            continue  # no warp can win
                        for k in range(4):
                            kid = offsets[d + 1] + (2 * iy + (k >> 1)) * (1 << (d + 1)) + 2 * ix + (k & 1)
                            if not known[kid, li]:
                                _ensure_vectors(cur, ph, lag_slots, pad, ry, rx, d + 1, 2 * iy + (k >> 1),
                                                2 * ix + (k & 1), li, n, cell, h, w, offsets, known,
                                                leaf_vy, leaf_vx, cand_y, cand_x, py, px, prev_mvy,
                                                prev_mvx, search_range, mvd_shift)
                            qy[k] = leaf_vy[kid, li]
                            qx[k] = leaf_vx[kid, li]
                        c_w, m_w, f_w, wby, wbx = _try_warps(
                            cur, ph, lag_slots[li], pad, y0, x0, ry + iy * size, rx + ix * size,
                            size, cell, h, w, qy, qx, py, px, lag_costs[li], mc[INTER], mc[INTER_MED],
                            maxval, cost, causal, step, leaf_cost[node], leaf_warp[node], tb)
                        if m_w >= 0:
                            leaf_cost[node] = c_w
                            leaf_mode[node] = m_w
                            leaf_family[node] = f_w
                            leaf_bi[node] = 0
                            leaf_base[node, 0] = wby
                            leaf_base[node, 1] = wbx
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
                        fam = leaf_family[node] if li > 0 else TRANSLATION
                        for yy in range(cy0, cy0 + size):
                            for xx in range(cx0, cx0 + size):
                                depth_g[yy, xx] = d
                                modes_g[yy, xx] = leaf_mode[node]
                                lags_g[yy, xx] = li
                                if li == 0:
                                    continue
                                family_g[yy, xx] = fam
                                if leaf_bi[node]:
                                    bi_g[yy, xx] = 1
                                    lags2_g[yy, xx] = leaf_lag2[node]
                                    mv2_g[0, yy, xx] = leaf_v2[node, 0]
                                    mv2_g[1, yy, xx] = leaf_v2[node, 1]
                                base_g[0, yy, xx] = leaf_base[node, 0]
                                base_g[1, yy, xx] = leaf_base[node, 1]
                                if fam == TRANSLATION:
                                    mvy_g[yy, xx] = leaf_base[node, 0]
                                    mvx_g[yy, xx] = leaf_base[node, 1]
                                    continue
                                for j in range(4):
                                    warp_g[j, yy, xx] = leaf_warp[node, j]
                                vy, vx = warp_vector(leaf_base[node, 0], leaf_base[node, 1],
                                                     leaf_warp[node, 0], leaf_warp[node, 1],
                                                     leaf_warp[node, 2], leaf_warp[node, 3],
                                                     cell_offset(yy, cy0, size, cell),
                                                     cell_offset(xx, cx0, size, cell))
                                mvy_g[yy, xx] = vy
                                mvx_g[yy, xx] = vx
    return depth_g, modes_g, lags_g, mvy_g, mvx_g, family_g, base_g, warp_g, bi_g, lags2_g, mv2_g


@njit(cache=True, nogil=True)
def intra_cell_costs(plane, wp_pred, bh, bw, gh, gw, maxval, cost, step):
    """Estimated bits (1/256) of every chart cell of ``plane`` predicted by MED (out[0]) and by
    the weighted predictor (out[1], its prediction ``wp_pred`` from predict.wp_prediction; with
    no rows, out[1] is MED's cost too); cells are bh x bw samples, neighbours come from the source."""
    h, w = plane.shape
    out = np.zeros((2, gh, gw), dtype=np.int64)
    weighted = wp_pred.shape[0] > 0
    for y in range(h):
        cy = y // bh
        for cx in range((w + bw - 1) // bw):  # cell by cell: no division per sample
            c0 = 0
            c1 = 0
            for x in range(cx * bw, min(w, cx * bw + bw)):
                v = np.int64(plane[y, x])
                c = _causal_cost(cost, v - _med_at(plane, y, x, maxval), step)
                c0 += c
                c1 += _causal_cost(cost, v - wp_pred[y, x], step) if weighted else c
            out[0, cy, cx] += c0
            out[1, cy, cx] += c1
    return out


@njit(cache=True, nogil=True)
def intra_leaf_costs(plane, modes, bh, bw, maxval, cost, step):
    """Estimated bits (1/256) of the INTRA_WP cells of ``modes`` (cells of bh x bw samples) of
    ``plane`` predicted by MED (out[0]) and by the weighted predictor (out[1]); 0 at every other
    cell. The weighted predictor runs as the codec runs it when those cells use it
    (predict._wp_rows: its state kept at its own samples only, restarted at every run of its cell
    rows), so only those cells' samples are visited; neighbours come from the source."""
    h, w = plane.shape
    gh, gw = modes.shape
    out = np.zeros((2, gh, gw), dtype=np.int64)
    err, wp_rows = _wp_state(modes, w)  # the weighted predictor's, as the decoder's
    wp = np.empty(w, dtype=np.int32)  # its predictions along the row
    for y in range(h):
        by = y // bh
        if not wp_rows[by]:
            continue
        _wp_start_errors(err, wp_rows, y, bh)
        cx = 0
        while cx < gw and cx * bw < w:
            if modes[by, cx] != INTRA_WP:
                cx += 1
                continue
            end = cx + 1  # the run of INTRA_WP cells: the predictor along it in one call
            while end < gw and modes[by, end] == INTRA_WP:
                end += 1
            _wp_run(wp, plane, err, y, cx * bw, min(w, end * bw), maxval, 1, WP_PREDICT)
            for c in range(cx, end):
                x0 = c * bw
                c0 = 0
                c1 = 0
                for x in range(x0, min(w, x0 + bw)):
                    v = np.int64(plane[y, x])
                    c0 += _causal_cost(cost, v - _med_at(plane, y, x, maxval), step)
                    c1 += _causal_cost(cost, v - wp[x], step)
                out[0, by, c] += c0
                out[1, by, c] += c1
            cx = end
    return out


@njit(cache=True)
def leaf_predictors(costs, cy, cx, sizes, wp):
    """wp[leaf's cells] = 1 where the weighted predictor's summed cost (costs[1], from
    intra_cell_costs) over the leaf's cells is below MED's (costs[0]), for the leaves at cells
    (cy, cx) of ``sizes`` cells (clipped to the grid), else 0."""
    gh = costs.shape[1]
    gw = costs.shape[2]
    for i in range(cy.size):
        y1 = min(cy[i] + sizes[i], gh)
        x1 = min(cx[i] + sizes[i], gw)
        med = 0
        weighted = 0
        for y in range(cy[i], y1):
            for x in range(cx[i], x1):
                med += costs[0, y, x]
                weighted += costs[1, y, x]
        flag = 1 if weighted < med else 0
        for y in range(cy[i], y1):
            for x in range(cx[i], x1):
                wp[y, x] = flag


# --------------------------------------------------------------------------------------------------
# Levels leaves (kernels/transform.py): footage decoded from H.264
# --------------------------------------------------------------------------------------------------

#: Quantisers detect_qp tries: below 8 the lattice of H.264's 4x4 levels is so fine that blocks
#: of any residual fall on it (random 4x4 blocks of |r| <= 3: 1.6% at 6, 0.5% at 7, 0.1% at 8,
#: none from 9 on), and levels would hardly cost less than the samples anyway.
LEVELS_QP_MIN = 8
#: 4x4 blocks detect_qp tests at most (spread over the frame), and the exact ones it needs at a
#: quantiser, in all and per thousand tested, to call the frame an H.264 decode at it.
_DETECT_BLOCKS = 2048
_DETECT_LEAST = 6
#: ... counting only blocks with at least this many nonzero residuals, and more than one level.
_DETECT_BUSY = 8
_DETECT_PER_MILLE = 5
#: Vector offsets (quarter samples, each component) a leaf tries around its own and its
#: neighbours' vectors, scaled to each lag, looking for the vector the source's encoder used ...
_LEVELS_REACH = 2
#: ... and how many of those, the least SATD first, it tests for exact levels.
_LEVELS_TRIED = 16


@njit(cache=True, inline="always")
def _prediction_residual(cur, ph, slot, pad, y0, x0, size, vy, vx, r):
    """r (size * size, row by row) = cur - the quarter-sample prediction at (vy, vx); returns
    whether any is nonzero."""
    nz = False
    oy = 4 * pad + vy
    ox = 4 * pad + vx
    if (4 * y0 + oy >= 0 and 4 * (y0 + size - 1) + oy < 4 * ph.shape[3] and 4 * x0 + ox >= 0
            and 4 * (x0 + size - 1) + ox < 4 * ph.shape[4]):  # inside the padded plane: one phase, no clamps
        fy = oy & 3
        fx = ox & 3
        for i in range(size):
            ry = np.uint64(y0 + i + (oy >> 2))
            for j in range(size):
                v = np.int64(cur[y0 + i, x0 + j]) - np.int64(ph[slot, fy, fx, ry, np.uint64(x0 + j + (ox >> 2))])
                r[i * size + j] = v
                nz |= v != 0
        return nz
    for i in range(size):
        for j in range(size):
            v = np.int64(cur[y0 + i, x0 + j]) - _up_sample(ph, slot, y0 + i, x0 + j, vy, vx, pad)
            r[i * size + j] = v
            nz |= v != 0
    return nz


@njit(cache=True)
def detect_qp(cur, ph, lag_slots, pad, leaf_y, leaf_x, depth, modes, lags, mvy, mvx, family, bi, n, cell):
    """The H.264 quantiser at which the most 4x4 blocks of the INTER leaves' residuals (at their
    own vectors) are exact inverse transforms of levels, or -1 when too few are at any (the
    frame is not an H.264 decode, or its vectors are not the encoder's). Blocks of a single
    level do not count: a uniform offset of the block (a DC level) falls on the lattice of many
    quantisers."""
    h, w = cur.shape
    hits = np.zeros(transform.MAX_QP + 1, dtype=np.int64)
    r = np.empty(16, np.int64)
    blk = np.empty((4, 4), np.int32)
    lv = np.empty(16, np.int64)
    work = np.empty(transform.LEVELS_WORK, np.int64)
    total = 0
    for i in range(leaf_y.size):
        total += (n >> depth[leaf_y[i], leaf_x[i]]) ** 2
    stride = max(1, total // _DETECT_BLOCKS)  # every stride-th 4x4 cell of the leaves
    seen = 0
    tested = 0
    for i in range(leaf_y.size):
        cy = leaf_y[i]
        cx = leaf_x[i]
        size = n >> depth[cy, cx]
        usable = modes[cy, cx] == INTER and family[cy, cx] == TRANSLATION and bi[cy, cx] == 0
        for yy in range(cy, cy + size):
            for xx in range(cx, cx + size):
                seen += 1
                if seen % stride or not usable:
                    continue
                y0 = yy * cell
                x0 = xx * cell
                if y0 + 4 > h or x0 + 4 > w:
                    continue
                _prediction_residual(cur, ph, lag_slots[lags[cy, cx] - 1], pad, y0, x0, 4, mvy[cy, cx],
                                     mvx[cy, cx], r)
                busy = 0
                for k in range(16):
                    busy += r[k] != 0
                if busy < _DETECT_BUSY:
                    continue  # a sparse residual is on the lattice of too many quantisers
                tested += 1
                for k in range(16):
                    blk[k >> 2, k & 3] = r[k]
                for qp in range(LEVELS_QP_MIN, transform.MAX_QP + 1):
                    if transform.block_levels(blk, 0, 0, 4, qp, lv, work):
                        nonzero = 0
                        for k in range(16):
                            nonzero += lv[k] != 0
                        hits[qp] += nonzero > 1
    best = -1
    for qp in range(LEVELS_QP_MIN, transform.MAX_QP + 1):
        if (hits[qp] >= _DETECT_LEAST and 1000 * hits[qp] >= _DETECT_PER_MILLE * tested
                and (best < 0 or hits[qp] > hits[best])):
            best = qp
    return best


@njit(cache=True, inline="always")
def _levels_cost(cur, ph, slot, pad, y0, x0, size, vy, vx, qp, tsize, cost, half, r, blk, lv, work):
    """Estimated bits (1/256) of a size x size block's residual at (vy, vx) as levels in tsize x
    tsize blocks, or -1 when one of them is not an exact inverse transform (or has a level
    beyond ``half``, which the plane coder's raw fallback could not hold)."""
    total = 0
    for by in range(0, size, tsize):
        for bx in range(0, size, tsize):
            nz = _prediction_residual(cur, ph, slot, pad, y0 + by, x0 + bx, tsize, vy, vx, r)
            if not nz:
                continue
            for k in range(tsize * tsize):
                blk[k // tsize, k % tsize] = r[k]
            if not transform.block_levels(blk, 0, 0, tsize, qp, lv, work):
                return -1
            for k in range(tsize * tsize):
                a = abs(lv[k])
                if a >= half:
                    return -1
                total += cost[a]
    return total


@njit(cache=True, inline="always")
def _satd(cur, ph, slot, pad, y0, x0, size, vy, vx, r, limit):
    """Sum of the absolute 4x4 Hadamard transforms of a block's residual at (vy, vx) (what x264
    ranks sub-sample vectors by), stopped once past ``limit``."""
    total = 0
    for by in range(0, size, 4):
        for bx in range(0, size, 4):
            _prediction_residual(cur, ph, slot, pad, y0 + by, x0 + bx, 4, vy, vx, r)
            for i in range(4):  # rows
                a0 = r[4 * i] + r[4 * i + 1]
                a1 = r[4 * i] - r[4 * i + 1]
                a2 = r[4 * i + 2] + r[4 * i + 3]
                a3 = r[4 * i + 2] - r[4 * i + 3]
                r[4 * i] = a0 + a2
                r[4 * i + 1] = a1 + a3
                r[4 * i + 2] = a0 - a2
                r[4 * i + 3] = a1 - a3
            for j in range(4):  # columns
                a0 = r[j] + r[4 + j]
                a1 = r[j] - r[4 + j]
                a2 = r[8 + j] + r[12 + j]
                a3 = r[8 + j] - r[12 + j]
                total += abs(a0 + a2) + abs(a1 + a3) + abs(a0 - a2) + abs(a1 - a3)
            if total >= limit:
                return total
    return total


@njit(cache=True, inline="always")
def _scaled(v, lag, to):
    """A vector component at lag ``lag`` scaled to lag ``to``, rounded (as chart.py predicts a
    second vector from the first)."""
    return (2 * v * to + lag) // (2 * lag)


@njit(cache=True)
def _find_levels(cur, ph, lag_slots, pad, y0, x0, size, cands, ncands, qp, cost, half, r, blk, lv, work, best):
    """The (estimated bits, lag, vy, vx, transform) of the vector giving a size x size block exact
    levels, or cost -1 when none does: of every candidate (lag, vy, vx) of ``cands[:ncands]``
    scaled to each lag, and the vectors within _LEVELS_REACH quarter samples of it (each
    measured once), the _LEVELS_TRIED of least SATD are tested, least first (the source's encoder
    chose its vector for a small residual; a residual falls on the lattice by chance hardly ever
    from quantiser 9 on, so the first exact vector is the source's). ``best`` is a work array of
    _LEVELS_TRIED rows."""
    nlags = lag_slots.size
    kept = 0
    for c in range(ncands):
        lag = cands[c, 0]
        for li in range(nlags):
            sy = _scaled(cands[c, 1], lag, li + 1)
            sx = _scaled(cands[c, 2], lag, li + 1)
            for dy in range(-_LEVELS_REACH, _LEVELS_REACH + 1):
                for dx in range(-_LEVELS_REACH, _LEVELS_REACH + 1):
                    ty = sy + dy
                    tx = sx + dx
                    seen = False  # in the window of an earlier candidate at this lag: measured there
                    for e in range(c):
                        lag_e = cands[e, 0]
                        if (abs(ty - _scaled(cands[e, 1], lag_e, li + 1)) <= _LEVELS_REACH
                                and abs(tx - _scaled(cands[e, 2], lag_e, li + 1)) <= _LEVELS_REACH):
                            seen = True
                            break
                    if seen:
                        continue
                    limit = best[kept - 1, 0] if kept == _LEVELS_TRIED else _NO_LIMIT
                    sad = _satd(cur, ph, lag_slots[li], pad, y0, x0, size, ty, tx, r, limit)
                    if sad >= limit:
                        continue
                    k = min(kept, _LEVELS_TRIED - 1)  # insert, keeping the rows sorted by SAD
                    while k > 0 and best[k - 1, 0] > sad:
                        best[k] = best[k - 1]
                        k -= 1
                    best[k, 0] = sad
                    best[k, 1] = li
                    best[k, 2] = ty
                    best[k, 3] = tx
                    kept = min(kept + 1, _LEVELS_TRIED)
    for k in range(kept):
        li = best[k, 1]
        for t in (transform.T8, transform.T4):
            tsize = 8 if t == transform.T8 else 4
            if size < tsize:
                continue
            got = _levels_cost(cur, ph, lag_slots[li], pad, y0, x0, size, best[k, 2], best[k, 3], qp, tsize, cost,
                               half, r, blk, lv, work)
            if got >= 0:
                return got, li + 1, best[k, 2], best[k, 3], t
    return np.int64(-1), np.int64(1), np.int64(0), np.int64(0), transform.NONE


@njit(cache=True)
def _levels_candidates(cy, cx, size, modes, lags, mvy, mvx, cands):
    """The vectors a block at cell (cy, cx), size cells wide, tries for levels: its own (when
    inter), then its left, top, top-right and top-left neighbours' (distinct ones). Returns
    how many."""
    gh, gw = modes.shape
    m = 0
    cy = np.int64(cy)
    cx = np.int64(cx)
    size = np.int64(size)
    ys = (cy, cy, cy - 1, cy - 1, cy - 1)
    xs = (cx, cx - 1, cx, cx + size, cx - 1)
    for k in range(5):
        yy = ys[k]
        xx = xs[k]
        if yy < 0 or xx < 0 or yy >= gh or xx >= gw or modes[yy, xx] == INTRA:
            continue
        lag = np.int64(lags[yy, xx])
        vy = np.int64(mvy[yy, xx])
        vx = np.int64(mvx[yy, xx])
        seen = False
        for e in range(m):
            if cands[e, 0] == lag and cands[e, 1] == vy and cands[e, 2] == vx:
                seen = True
        if not seen:
            cands[m, 0] = lag
            cands[m, 1] = vy
            cands[m, 2] = vx
            m += 1
    return m


@njit(cache=True)
def _samples_cost(cur, ph, slot, pad, y0, x0, size, vy, vx, cost, r):
    """Estimated bits (1/256) of a block's residual at (vy, vx) as samples (INTER)."""
    h, w = cur.shape
    ny = min(size, h - y0)
    nx = min(size, w - x0)
    total = 0
    for i in range(ny):
        for j in range(nx):
            a = abs(np.int64(cur[y0 + i, x0 + j]) - _up_sample(ph, slot, y0 + i, x0 + j, vy, vx, pad))
            total += cost[a] if a < cost.size else cost[cost.size - 1]
    return total


@njit(cache=True)
def _make_levels_leaf(modes, lags, mvy, mvx, family, base, warp, bi, lags2, mv2, tgrid, cy, cx, size, lag, vy, vx,
                      t):
    """Cells (cy, cx).. of a size-cell leaf become one INTER translation leaf at (lag, vy, vx)
    with transform t."""
    for yy in range(cy, cy + size):
        for xx in range(cx, cx + size):
            modes[yy, xx] = INTER
            family[yy, xx] = TRANSLATION
            bi[yy, xx] = 0
            lags2[yy, xx] = 0
            mv2[0, yy, xx] = 0
            mv2[1, yy, xx] = 0
            for j in range(4):
                warp[j, yy, xx] = 0
            lags[yy, xx] = lag
            mvy[yy, xx] = vy
            mvx[yy, xx] = vx
            base[0, yy, xx] = vy
            base[1, yy, xx] = vx
            tgrid[yy, xx] = t


@njit(cache=True)
def levels_leaves(cur, ph, lag_slots, pad, leaf_y, leaf_x, depth, modes, lags, mvy, mvx, family, base, warp, bi,
                  lags2, mv2, n, cell, max_depth, qp, cost, maxval, split_bits):
    """Turn leaves into levels leaves (in place on the chart grids; ``transform`` returned), in
    coding order: per leaf, the first vector near its own or its neighbours' whose residual is
    exact levels (_find_levels). A single-vector INTER translation leaf takes it only when the
    levels cost less than its residual as samples; other leaves (INTER_MED, intra, warped or
    bi-predicted), whose costs the estimate does not know, take it whenever there is one. A
    leaf of 16 samples or more with none may split into four, each child a levels leaf if it
    can be one and a copy of the parent otherwise, when at least one child is and the levels
    children cost less than the parent's samples there by more than ``split_bits`` (the side
    information of three more leaves and a split flag)."""
    h, w = cur.shape
    gh, gw = depth.shape
    tgrid = np.zeros((gh, gw), dtype=np.int8)
    r = np.empty(64, np.int64)
    blk = np.empty((8, 8), np.int32)
    lv = np.empty(64, np.int64)
    work = np.empty(transform.LEVELS_WORK, np.int64)
    cands = np.empty((5, 3), dtype=np.int64)
    tried = np.empty((_LEVELS_TRIED, 4), dtype=np.int64)
    half = (maxval + 1) // 2
    for i in range(leaf_y.size):
        cy = leaf_y[i]
        cx = leaf_x[i]
        d = depth[cy, cx]
        size = n >> d  # in cells
        y0 = cy * cell
        x0 = cx * cell
        s = size * cell
        if y0 + s > h or x0 + s > w or s < 4:
            continue  # (a leaf over the frame's edge keeps its samples)
        mode = modes[cy, cx]
        plain = mode == INTER and family[cy, cx] == TRANSLATION and bi[cy, cx] == 0
        m = _levels_candidates(cy, cx, size, modes, lags, mvy, mvx, cands)
        if m == 0:
            continue
        c, l2, v2y, v2x, t = _find_levels(cur, ph, lag_slots, pad, y0, x0, s, cands, m, qp, cost, half, r, blk,
                                          lv, work, tried)
        now = _samples_cost(cur, ph, lag_slots[lags[cy, cx] - 1], pad, y0, x0, s, mvy[cy, cx], mvx[cy, cx], cost,
                            r) if plain else np.int64(1) << 60
        if c >= 0 and c < now:
            _make_levels_leaf(modes, lags, mvy, mvx, family, base, warp, bi, lags2, mv2, tgrid, cy, cx, size, l2,
                              v2y, v2x, t)
            continue
        if s < 16 or d >= max_depth or not plain:
            continue
        half_size = size // 2
        hs = half_size * cell
        lag = np.int64(lags[cy, cx])
        vy = np.int64(mvy[cy, cx])
        vx = np.int64(mvx[cy, cx])
        slot = lag_slots[lag - 1]
        parts = np.zeros((4, 4), dtype=np.int64)  # per child: lag, vy, vx, transform
        split = 0
        found = 0
        for k in range(4):
            ccy = cy + (k >> 1) * half_size
            ccx = cx + (k & 1) * half_size
            sy0 = ccy * cell
            sx0 = ccx * cell
            here = _samples_cost(cur, ph, slot, pad, sy0, sx0, hs, vy, vx, cost, r)
            m = _levels_candidates(ccy, ccx, half_size, modes, lags, mvy, mvx, cands)
            cc, l2, v2y, v2x, t = _find_levels(cur, ph, lag_slots, pad, sy0, sx0, hs, cands, m, qp, cost, half, r,
                                               blk, lv, work, tried)
            if cc >= 0 and cc < here:
                parts[k, 0] = l2
                parts[k, 1] = v2y
                parts[k, 2] = v2x
                parts[k, 3] = t
                split += cc
                found += 1
            else:
                parts[k, 0] = lag
                parts[k, 1] = vy
                parts[k, 2] = vx
                parts[k, 3] = transform.NONE
                split += here
        if found == 0 or split + split_bits >= now:
            continue
        for k in range(4):
            ccy = cy + (k >> 1) * half_size
            ccx = cx + (k & 1) * half_size
            for yy in range(ccy, ccy + half_size):
                for xx in range(ccx, ccx + half_size):
                    depth[yy, xx] = d + 1
            _make_levels_leaf(modes, lags, mvy, mvx, family, base, warp, bi, lags2, mv2, tgrid, ccy, ccx, half_size,
                              parts[k, 0], parts[k, 1], parts[k, 2], parts[k, 3])
    return tgrid
