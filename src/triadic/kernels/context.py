"""Context kernels for the ternary plane passes, and the adaptive binary counts.

A plane k of one channel is coded in passes, most significant plane first:
  block pass      for every block not yet open, is the block's top digit at k?  (K map)
  magnitude pass  M_k of every sample in an open block, in the four 2x2 phases of PHASES
  sign pass       the sign of every nonzero digit just coded (same phase)
Contexts read only what the decoder holds before the pass: the partial residual ``V`` (digits
above k everywhere, digit k at the earlier phase), the expected magnitude ``E16`` made from the
previous frame and from the luma of this frame, and the previous frame's K map.
"""

import numpy as np
from numba import njit

from .predict import INTER, INTER_MED

#: Samples per side of the blocks of the K map (each plane, in its own samples).
KBLOCK = 8

# Context sizes (the index layouts are in the kernels below).
LEVELS = 7                     # magnitude level of a local mean relative to 3^k
OWN_STATES = 4                 # |V / 3^(k+1)|: 0, 1, 2..4, 5+
K_CLASSES = 3                  # plane 0, 1, 2+
CHANNEL_CLASSES = 2            # luma (or Y of YCoCg), chroma
#: Interleave of a plane's samples into phases: (row parity, column parity) of each phase, in
#: coding order. Later phases see the digit k of the earlier ones around them.
PHASES = ((0, 0), (1, 1), (0, 1), (1, 0))
#: The byte of T's shape (mix_prediction_activity) of a flat, steady T: the middle tilt, which
#: intra samples take. Keyframes pass a plane of it.
FLAT = 1 | (1 << 2)
#: The phase of a sample by (row parity, column parity).
_PHASE_OF = tuple(tuple(PHASES.index((py, px)) for px in range(2)) for py in range(2))
#: Sample classes: the mode of the sample's chart leaf as the plane kernels read it (INTRA = MED,
#: INTER, INTER_MED, INTRA_WP = the weighted predictor; keyframes have intra leaves only), plus
#: EDGE in inter samples next to a sample of a cell predicted otherwise (another mode, lag or
#: vector): motion boundaries, where residuals run larger. Sign contexts read the mode only.
SIGN_CLASSES = 4
EDGE = 4
#: The classes of the samples of levels leaves (kernels/transform.py), whose plane holds H.264
#: levels: the two combinations of intra modes with EDGE, which the sample classes never take.
LEVELS_4X4 = 0 | EDGE
LEVELS_8X8 = 3 | EDGE
SAMPLE_CLASSES = 2 * SIGN_CLASSES
#: Per phase, how many states the count of known nonzero neighbour digits at plane k takes:
#: phase 0 knows none; later phases count 0, 1, 2, 3+.
PHASE_STATES = 1 + 4 * (len(PHASES) - 1)
NUM_MAGNITUDE_CONTEXTS = (OWN_STATES * PHASE_STATES * LEVELS * (LEVELS + 1) * K_CLASSES
                          * CHANNEL_CLASSES * SAMPLE_CLASSES)
SIGN_OWN = 5                   # V == 0; V > 0 with |u| == 1, |u| > 1; V < 0 likewise
#: What the prediction T says about the sign, in inter leaves: its curvature (4T minus its 4
#: neighbours: below -4·3^k, negative, zero, positive, above 4·3^k; a peak of T tends to overshoot)
#: times its trend (T below, at or above the previous frame's sample: the truth tends to lie
#: between). Intra leaves take the middle class.
TILTS = 15
NUM_SIGN_CONTEXTS = (SIGN_OWN * 5 * 5 * TILTS * len(PHASES) * K_CLASSES * CHANNEL_CLASSES
                     * SIGN_CLASSES)
NUM_BLOCK_CONTEXTS = 4 * 5 * K_CLASSES * CHANNEL_CLASSES


@njit(cache=True, inline="always")
def _level(q4):
    """Quantise a local mean, in quarters of 3^k, to 0..LEVELS-1 (log2 buckets)."""
    if q4 <= 0:
        return 0
    if q4 == 1:
        return 1
    if q4 < 4:
        return 2
    if q4 < 8:
        return 3
    if q4 < 16:
        return 4
    if q4 < 32:
        return 5
    return 6


@njit(cache=True, inline="always")
def _k_class(k):
    return k if k < K_CLASSES else K_CLASSES - 1


@njit(cache=True, nogil=True)
def block_digits(q, kblock):
    """Per block, the number of ternary digits its largest |q| (int32) needs (the K map), int8. A block
    row's column maxima first, down whole rows (a loop that vectorises), then each block's
    maximum of its columns."""
    h, w = q.shape
    nby = (h + kblock - 1) // kblock
    nbx = (w + kblock - 1) // kblock
    out = np.zeros((nby, nbx), dtype=np.int8)
    column_max = np.empty(w, dtype=np.int32)
    for by in range(nby):
        y0 = by * kblock
        row = q[y0]
        for x in range(w):
            column_max[x] = abs(row[x])
        for y in range(y0 + 1, min(h, y0 + kblock)):
            row = q[y]
            for x in range(w):
                column_max[x] = max(column_max[x], abs(row[x]))
        for bx in range(nbx):
            m = 0
            for x in range(bx * kblock, min(w, bx * kblock + kblock)):
                m = max(m, column_max[x])
            k = 0
            reach = 0
            while reach < m:
                reach = 3 * reach + 1
                k += 1
            out[by, bx] = k
    return out


@njit(cache=True, nogil=True)
def expected_magnitude(prev_q, luma_q, sy, sx, use_prev, use_luma):
    """E16: 16 x the expected |residual| of each sample, from what the decoder already has.

    ``prev_q`` is this plane's residual in the previous frame (3x3 mean around the sample);
    ``luma_q`` is this frame's luma residual (mean over the co-located luma samples, chroma only).
    Samples with neither source get -1. (Row sums of the 3x3 window are shared between rows;
    divisions by the window's size are by constants away from the borders; the inner loops run
    over rows from column 1, so they vectorise.)
    """
    if use_prev:
        h, w = prev_q.shape
    else:
        h = -(-luma_q.shape[0] >> sy)
        w = -(-luma_q.shape[1] >> sx)
    out = np.empty((h, w), dtype=np.int32)
    if not use_prev and not use_luma:
        out[:] = -1
    if use_prev:
        # |prev_q| summed over x-1..x+1, rows y-1..y+1: uint32 (sums of three residuals, at most
        # 3 (3^12 - 1) / 2 each) so that twice as many fit a vector
        rows = np.zeros((3, w), dtype=np.uint32)
        for y in range(-1, h):
            if y + 1 < h:  # the row sums of row y + 1 replace those of row y - 2
                _row_sums3(prev_q[y + 1], rows[(y + 1) % 3])
            if y < 0:
                continue
            here = rows[y % 3]
            above = rows[(y + 2) % 3] if y > 0 else here
            below = rows[(y + 1) % 3] if y < h - 1 else here
            o = out[y]
            if 0 < y < h - 1:
                for x in range(1, w - 1):
                    o[x] = np.uint32(16) * (above[x] + here[x] + below[x]) // np.uint32(9)
            # the rest: the row's two ends (every sample of the first and last rows)
            step = max(w - 1, 1) if 0 < y < h - 1 else 1
            ny = 1 + (y > 0) + (y < h - 1)
            for x in range(0, w, step):
                s = np.int64(here[x])
                if y > 0:
                    s += above[x]
                if y < h - 1:
                    s += below[x]
                n = ny * (1 + (x > 0) + (x < w - 1))
                o[x] = 16 * s // n
    if use_luma:
        lh, lw = luma_q.shape
        full = 1 << (sy + sx)
        for y in range(h):
            o = out[y]
            x_in = 0  # 4:2:0: samples 0..x_in - 1 of the row have their 4 luma samples
            if sy == 1 and sx == 1 and 2 * y + 1 < lh:
                x_in = min(w, lw // 2)
                _luma_means420(luma_q[2 * y], luma_q[2 * y + 1], o, x_in, use_prev)
            for x in range(x_in, w):
                s = np.int64(0)
                n = 0
                for yy in range(y << sy, min(lh, (y + 1) << sy)):
                    for xx in range(x << sx, min(lw, (x + 1) << sx)):
                        s += abs(luma_q[yy, xx])
                        n += 1
                if n == 0:
                    if not use_prev:
                        o[x] = -1
                    continue
                e = (16 * s) >> (sy + sx) if n == full else 16 * s // n
                o[x] = (o[x] + e) >> 1 if use_prev else e
    return out


@njit(cache=True)
def _row_sums3(src, out):
    """out[x] = |src[x - 1]| + |src[x]| + |src[x + 1]| (the neighbours that exist)."""
    w = src.size
    if w == 1:
        out[0] = abs(np.int64(src[0]))
        return
    out[0] = abs(np.int64(src[0])) + abs(np.int64(src[1]))
    for x in range(1, w - 1):
        out[x] = abs(src[x - 1]) + abs(src[x]) + abs(src[x + 1])
    out[w - 1] = abs(np.int64(src[w - 2])) + abs(np.int64(src[w - 1]))


@njit(cache=True)
def _luma_means420(top, bottom, out, n, mix):
    """expected_magnitude's luma part of the first n chroma samples of a 4:2:0 row, whose 2x2
    luma samples lie in rows ``top`` and ``bottom``: 16 x their mean |q|, averaged into ``out``
    with ``mix``."""
    for x in range(n):
        e = (16 * (abs(np.int64(top[2 * x])) + abs(np.int64(top[2 * x + 1])) + abs(np.int64(bottom[2 * x]))
                   + abs(np.int64(bottom[2 * x + 1])))) >> 2
        out[x] = (out[x] + e) >> 1 if mix else e


@njit(cache=True, nogil=True)
def block_contexts(is_open, prev_kb, use_prev, k, chan):
    """Candidates (flat block indices, not yet open at plane k+1) and their contexts."""
    nby, nbx = is_open.shape
    idx = np.empty(nby * nbx, dtype=np.int32)
    ctx = np.empty(nby * nbx, dtype=np.int32)
    n = 0
    kc = _k_class(k)
    # per column of the block row (shifted by one, zero beyond the edges), its open blocks in
    # rows by - 1..by + 1: a block's open neighbours are the sum of three of them (its own
    # column counts itself, which is not open)
    cols = np.zeros(nbx + 2, dtype=np.int64)
    for by in range(nby):
        for bx in range(nbx):
            s = np.int64(is_open[by, bx])
            if by > 0:
                s += is_open[by - 1, bx]
            if by + 1 < nby:
                s += is_open[by + 1, bx]
            cols[bx + 1] = s
        for bx in range(nbx):
            if is_open[by, bx]:
                continue
            c = min(cols[bx] + cols[bx + 1] + cols[bx + 2], 3)
            if use_prev:
                d = prev_kb[by, bx] - (k + 1)
                t = 0 if d <= -2 else (1 if d == -1 else (2 if d == 0 else 3))
            else:
                t = 4
            idx[n] = by * nbx + bx
            ctx[n] = ((c * 5 + t) * K_CLASSES + kc) * CHANNEL_CLASSES + chan
            n += 1
    return idx[:n], ctx[:n]


@njit(cache=True, nogil=True)
def open_blocks(is_open, kb, idx, opened, k):
    """The block pass's outcome: the blocks at flat indices idx[i] whose opened[i] is set start
    at plane k (is_open 1, K map k + 1). Returns how many (one kernel call instead of a handful
    of numpy operations per plane)."""
    flat_open = is_open.ravel()
    flat_kb = kb.ravel()
    n = 0
    for i in range(idx.size):
        if opened[i]:
            flat_open[idx[i]] = 1
            flat_kb[idx[i]] = k + 1
            n += 1
    return n


@njit(cache=True, inline="always")
def _level_of(s, unit):
    """_level(s // unit) for s >= 0 and unit > 0: how many of the thresholds unit x (1, 2, 4, 8,
    16, 32) s reaches (no division, no branch)."""
    return ((s >= unit) + (s >= 2 * unit) + (s >= 4 * unit) + (s >= 8 * unit) + (s >= 16 * unit)
            + (s >= 32 * unit))


@njit(cache=True, nogil=True)
def plane_contexts(v, is_open, kblock, e16, cls, shape, k, chan, pow3k, pos, ctx, sbase):
    """The samples of plane k's passes and their contexts as far as they are known before the
    plane: per phase, in raster order, pos[phase, :n] the flat indices of the samples in open
    blocks, ctx[phase, :n] their magnitude contexts but for the phase state (magnitude_contexts
    adds that) and sbase[phase, :n] their sign contexts but for the phase and the digits at k
    around them (sign_contexts adds those); returns n per phase.

    Called before the first phase of plane k, when ``v`` holds only the digits above k: all that
    the contexts read besides those is the same in every phase (own state, the part above k of
    the neighbours, E16, the shape of T (mix_prediction_activity), plane, channel, sample class).
    Quantisers compare against multiples of 3^k instead of dividing by them. Row by row, run by
    run of open blocks: the inner samples of a run in one loop with unsigned flat indices (no
    negative-index wrap-around: the loop vectorises), then dealt out to the row's two phases.
    """
    h, w = v.shape
    nby, nbx = is_open.shape
    kc = _k_class(k)
    p3 = np.int64(pow3k)
    count = np.zeros(len(PHASES), dtype=np.int64)
    runs = np.empty(nbx + 1, dtype=np.int64)  # the block row's runs of open blocks: [start, end) pairs
    row = np.empty(w, dtype=np.int32)  # the magnitude contexts of a row's runs
    srow = np.empty(w, dtype=np.int32)  # and their sign contexts
    tail = (kc * CHANNEL_CLASSES + chan) * SAMPLE_CLASSES
    stail = (kc * CHANNEL_CLASSES + chan) * SIGN_CLASSES
    flat_v = v.ravel()
    flat_e = e16.ravel()
    flat_c = cls.ravel()
    flat_t = shape.ravel()
    flat_pos = pos.ravel()
    flat_ctx = ctx.ravel()
    flat_sbase = sbase.ravel()
    for by in range(nby):
        nruns = 0
        bx = 0
        while bx < nbx:
            if is_open[by, bx]:
                end = bx + 1
                while end < nbx and is_open[by, end]:
                    end += 1
                runs[nruns] = bx * kblock
                runs[nruns + 1] = min(w, end * kblock)
                nruns += 2
                bx = end
            bx += 1
        for y in range(by * kblock, min(h, by * kblock + kblock)):
            for r in range(0, nruns, 2):
                x0 = runs[r]
                x1 = runs[r + 1]
                if 0 < y < h - 1 and max(x0, 1) < min(x1, w - 1):
                    lo = max(x0, 1)
                    _inner_contexts(flat_v, flat_e, flat_c, flat_t, row, srow, y * w + lo, lo, min(x1, w - 1) - lo,
                                    w, p3, k, tail, stail)
                    if x0 == 0:
                        row[0], srow[0] = _border_contexts(v, e16, cls, shape, y, np.int64(0), p3, k, tail, stail)
                    if x1 == w:
                        row[w - 1], srow[w - 1] = _border_contexts(v, e16, cls, shape, y, w - 1, p3, k, tail, stail)
                else:
                    for x in range(x0, x1):
                        row[x], srow[x] = _border_contexts(v, e16, cls, shape, y, x, p3, k, tail, stail)
                for parity in range(2):  # deal the run out to its phases, in raster order
                    phase = _PHASE_OF[y & 1][parity]
                    start = x0 + ((parity - x0) & 1)
                    m = (x1 - start + 1) // 2
                    if m <= 0:
                        continue
                    n = count[phase]
                    _deal(row, srow, start, y * w + start, flat_pos, flat_ctx, flat_sbase, phase * pos.shape[1] + n, m)
                    count[phase] = n + m
    return count


@njit(cache=True, inline="always")
def _contexts_of(s, vc, sh, e, c, b, p3, k, tail, stail):
    """plane_contexts's two contexts of a sample from the 8 neighbours' |V| summed (s), its V
    (vc), the signs of its 4 nearest neighbours' V summed (sh), E16 (e), its class (c) and the
    byte of T's shape (b)."""
    kcs = K_CLASSES * CHANNEL_CLASSES * SAMPLE_CLASSES
    a = abs(vc)
    own = (a >= 3 * p3) + (a >= 6 * p3) + (a >= 15 * p3)  # |V| // 3^(k+1): 0, 1, 2..4, 5+
    lev_e = LEVELS if e < 0 else _level_of(e, 4 * p3)
    mag = (own * (PHASE_STATES * LEVELS * (LEVELS + 1) * kcs)
           + (_level_of(s, 2 * p3) * (LEVELS + 1) + lev_e) * kcs + tail + c)
    # the sign's own state: no digit above k, or the sign of the part above k and whether it is
    # a single digit (|V| // 3^(k+1) == 1)
    own_s = 0 if vc == 0 else 1 + (a >= 6 * p3) + 2 * (vc < 0)
    cm = c & (EDGE - 1)
    sign = (((own_s * 25 + min(max(sh, -2), 2) + 2) * TILTS + _tilt(b, k)) * (len(PHASES) * K_CLASSES * CHANNEL_CLASSES
                                                                        * SIGN_CLASSES) + stail + cm)
    return mag, sign


@njit(cache=True, inline="always")
def _inner_contexts(v, e16, cls, shape, out, sout, first, x, n, w, p3, k, tail, stail):
    """plane_contexts's contexts of n samples with all 8 neighbours, from the flat index
    ``first`` (column x) of the flat planes, to out[x:x + n] and sout[x:x + n]. Unsigned
    indices: no negative-index wrap-around, so the loop vectorises."""
    one = np.uint64(1)
    stride = np.uint64(w)
    for i in range(n):
        c = np.uint64(first) + np.uint64(i)
        u = c - stride
        d = c + stride
        s = (np.int64(abs(v[u - one])) + abs(v[u]) + abs(v[u + one]) + abs(v[c - one]) + abs(v[c + one])
             + abs(v[d - one]) + abs(v[d]) + abs(v[d + one]))
        sh = _sgn(v[u]) + _sgn(v[d]) + _sgn(v[c - one]) + _sgn(v[c + one])
        j = np.uint64(x) + np.uint64(i)
        out[j], sout[j] = _contexts_of(s, np.int64(v[c]), sh, np.int64(e16[c]), cls[c], shape[c], p3, k, tail,
                                       stail)


@njit(cache=True, inline="always")
def _sgn(a):
    return np.int64(a > 0) - np.int64(a < 0)


@njit(cache=True)
def _border_contexts(v, e16, cls, shape, y, x, p3, k, tail, stail):
    h, w = v.shape
    s = np.int64(0)
    sh = np.int64(0)
    for yy in range(max(0, y - 1), min(h, y + 2)):
        for xx in range(max(0, x - 1), min(w, x + 2)):
            if yy != y or xx != x:
                s += abs(v[yy, xx])
                if yy == y or xx == x:
                    sh += _sgn(v[yy, xx])
    return _contexts_of(s, np.int64(v[y, x]), sh, np.int64(e16[y, x]), cls[y, x], shape[y, x], p3, k, tail, stail)


@njit(cache=True, inline="always")
def _deal(row, srow, x, first, pos, ctx, sbase, at, m):
    """m contexts of ``row`` and ``srow``, every other one from column x, to ctx[at:at + m] and
    sbase[at:at + m], their flat positions (from ``first``, step 2) to pos[at:at + m] (unsigned
    indices, see _inner_contexts)."""
    for j in range(m):
        i = np.uint64(at) + np.uint64(j)
        r = np.uint64(x) + np.uint64(2 * j)
        pos[i] = first + 2 * j
        ctx[i] = row[r]
        sbase[i] = srow[r]


@njit(cache=True, nogil=True)
def magnitude_contexts(nz, pos, ctx, phase):
    """The contexts of phase ``phase``'s M_k, in place: ``ctx`` (plane_contexts's, for the
    samples at flat positions ``pos``) plus the phase state. Returns (pos, ctx).

    The phase state counts the 8 neighbours whose digit k is nonzero, from ``nz`` (apply_signs):
    those are all of earlier phases (the diagonal ones for phase 1, the 4 nearest for phase 2,
    all 8 for phase 3), the rest is not coded yet.
    """
    if phase == 0:
        return pos, ctx
    flat = nz.ravel()
    state_unit = LEVELS * (LEVELS + 1) * K_CLASSES * CHANNEL_CLASSES * SAMPLE_CLASSES
    first = (1 + 4 * (phase - 1)) * state_unit
    for i in range(pos.size):
        a = flat[np.uint64(pos[i])]
        ctx[i] += first + min((a & 15) + (a >> 4), 3) * state_unit
    return pos, ctx


@njit(cache=True, inline="always")
def _sign5(s):
    return 0 if s <= -2 else (1 if s == -1 else (2 if s == 0 else (3 if s == 1 else 4)))


@njit(cache=True, nogil=True)
def sign_contexts(nz, pos, mag, sbase, phase):
    """The samples of phase ``phase`` whose digit k is nonzero (mag[i] != 0 of the samples at
    flat positions ``pos``; raster order) and the contexts of their signs: plane_contexts's
    ``sbase`` (own state, the signs of the 4 nearest neighbours' parts above k, the tilt of T,
    plane, channel, sample class) plus the phase and the signs of the 8 neighbours' digits at k
    (earlier phases: their sum from ``nz``, see apply_signs). Returns (positions, contexts)."""
    ctx = np.empty(pos.size, dtype=np.int32)
    where = np.empty(pos.size, dtype=pos.dtype)
    flat = nz.ravel()
    unit = 5 * TILTS * len(PHASES) * K_CLASSES * CHANNEL_CLASSES * SIGN_CLASSES
    at_phase = phase * K_CLASSES * CHANNEL_CLASSES * SIGN_CLASSES
    n = 0
    for i in range(pos.size):
        if mag[i] != 0:
            a = np.int64(flat[np.uint64(pos[i])])
            where[n] = pos[i]
            ctx[n] = sbase[i] + at_phase + (min(max((a & 15) - (a >> 4), -2), 2) + 2) * unit
            n += 1
    return where[:n], ctx[:n]


@njit(cache=True, inline="always")
def _tilt(b, k):
    """3 x the curvature class of T at a sample + its trend (0..TILTS-1), from the byte ``b`` of
    mix_prediction_activity there: T's lap (tests/reference_kernels.prediction_shape) below
    -4·3^k, negative, zero, positive, above 4·3^k (classes 0..4: 2 + (sign of the lap) x (1 within 4·3^k, else 2)),
    without a branch."""
    b = np.int64(b)
    return 6 + (b & 3) + 3 * (((b >> 2) & 3) - 1) * (2 - np.int64((b >> 4) <= k))


# --------------------------------------------------------------------------------------------------
# Adaptive binary counts: both directions update them identically between stripes.
# --------------------------------------------------------------------------------------------------

@njit(cache=True)
def count_probabilities(counts, ctx):
    """P(bit = 1) per symbol from integer counts (counts[c, 0] zeros, counts[c, 1] ones)."""
    p = np.empty(ctx.size, dtype=np.float64)
    for i in range(ctx.size):
        c = ctx[i]
        n0 = counts[c, 0]
        n1 = counts[c, 1]
        p[i] = (2 * n1 + 1) / (2 * (n0 + n1) + 2)
    return p


@njit(cache=True)
def symbol_probabilities(counts, ctx, alphabet):
    """Per symbol, the unnormalised probabilities 2 n + 1 of the first ``alphabet`` symbols of its
    context's counts (a categorical pass, model.SymbolCounts)."""
    out = np.empty((ctx.size, alphabet), dtype=np.float64)
    for i in range(ctx.size):
        c = ctx[i]
        for a in range(alphabet):
            out[i, a] = 2 * counts[c, a] + 1
    return out


@njit(cache=True)
def symbol_update(counts, ctx, symbols, limit):
    """Add a stripe's symbols to their contexts' counts, then halve (rounding up) every context
    whose total is past ``limit``."""
    for i in range(ctx.size):
        counts[ctx[i], symbols[i]] += 1
    for c in range(counts.shape[0]):
        total = 0
        for a in range(counts.shape[1]):
            total += counts[c, a]
        if total > limit:
            for a in range(counts.shape[1]):
                counts[c, a] = (counts[c, a] + 1) >> 1


@njit(cache=True, nogil=True)
def symbol_step(counts, ctx, symbols, start, size, limit, out, probs, alphabet):
    """The decoder's step between the stripes of ``size`` symbols of a categorical pass (as
    kernels/triples.decode_step is for binary ones): out[start:end] = the stripe's ``symbols``
    (end = min(n, start + size), n = ctx.size), counted (symbol_update), then probs[:m] =
    symbol_probabilities of the next stripe, ctx[end:min(n, end + size)]. The first call passes
    start = -size (no symbols)."""
    n = ctx.size
    end = min(n, start + size)
    following = min(n, end + size)
    start = max(start, 0)
    for i in range(end - start):
        out[start + i] = symbols[i]
    symbol_update(counts, ctx[start:end], out[start:end], limit)
    for i in range(following - end):
        c = ctx[end + i]
        for a in range(alphabet):
            probs[i, a] = 2 * counts[c, a] + 1


@njit(cache=True)
def count_update(counts, ctx, bits, limit):
    """Add the stripe's symbols to the counts; halve a context's counts past ``limit`` (flat
    unsigned indices into the (contexts, 2) counts: no negative-index wrap-around arithmetic)."""
    table = counts.ravel()
    one = np.uint64(1)
    two = np.uint64(2)
    for i in range(ctx.size):
        table[np.uint64(ctx[i]) * two + np.uint64(bits[i])] += 1
    for i in range(ctx.size):
        c = np.uint64(ctx[i]) * two
        n0 = table[c]
        n1 = table[c + one]
        if n0 + n1 > limit:
            table[c] = (n0 + 1) >> 1
            table[c + one] = (n1 + 1) >> 1


@njit(cache=True)
def count_update_probabilities(counts, ctx, bits, limit, next_ctx):
    """count_update, then count_probabilities of the next stripe (one call between stripes)."""
    count_update(counts, ctx, bits, limit)
    return count_probabilities(counts, next_ctx)


@njit(cache=True, nogil=True)
def apply_signs(v, nz, pos, sgn, pow3k):
    """The digits k (+-1 from the sign bits) of the samples at flat positions ``pos`` (raster
    order): added to ``v`` and told to their 8 neighbours, nz counting the neighbours' positive
    digits in its low 4 bits and negative ones in its high 4 (at most 8 each). (Nothing reads v
    again before the next plane: plane_contexts took what the contexts need.)"""
    h, w = nz.shape
    flat = nz.ravel()
    flat_v = v.ravel()
    one = np.uint64(1)
    stride = np.uint64(w)
    y = 0
    for i in range(pos.size):
        while pos[i] >= (y + 1) * w:  # positions come in raster order: no division
            y += 1
        x = pos[i] - y * w
        j = np.uint64(pos[i])
        flat_v[j] += pow3k if sgn[i] != 0 else -pow3k
        inc = np.uint8(1 if sgn[i] != 0 else 16)
        if 0 < y < h - 1 and 0 < x < w - 1:  # flat, unsigned indices: no wrap-around arithmetic
            for r in (j - stride, j, j + stride):
                flat[r - one] += inc
                flat[r + one] += inc
            flat[j - stride] += inc
            flat[j + stride] += inc
        else:
            for yy in range(max(0, y - 1), min(h, y + 2)):
                for xx in range(max(0, x - 1), min(w, x + 2)):
                    if yy != y or xx != x:
                        nz[yy, xx] += inc


@njit(cache=True, nogil=True)
def sample_classes(modes, lags, mvy, mvx, bh, bw, h, w):
    """Per sample of an h x w plane whose chart cells are bh x bw samples, its class (int8): its
    cell's plane mode, plus EDGE in inter cells (INTER, INTER_MED) on the rows and columns that
    border a cell of another mode, lag or vector."""
    gh = (h + bh - 1) // bh
    gw = (w + bw - 1) // bw
    sides = np.zeros((gh, gw), dtype=np.uint8)  # per inter cell: 1 top, 2 bottom, 4 left, 8 right differ
    for cy in range(1, gh):  # branch-free: the loops vectorise
        for cx in range(gw):
            d = np.uint8(_differs(modes, lags, mvy, mvx, cy, cx, cy - 1, cx))
            sides[cy, cx] |= d
            sides[cy - 1, cx] |= d << 1
    for cy in range(gh):
        for cx in range(1, gw):
            d = np.uint8(_differs(modes, lags, mvy, mvx, cy, cx, cy, cx - 1))
            sides[cy, cx] |= d << 2
            sides[cy, cx - 1] |= d << 3
    for cy in range(gh):
        for cx in range(gw):
            sides[cy, cx] *= np.uint8(_inter(modes[cy, cx]))
    out = np.empty((h, w), dtype=np.int8)
    base = np.empty(w, dtype=np.int8)  # a cell row's samples off its top and bottom rows
    shift = 0  # bw == 1 << shift, when it is a power of two
    while (1 << shift) < bw:
        shift += 1
    for cy in range(gh):
        row_modes = modes[cy]
        if bw == 1 << shift:
            for x in range(w):
                base[x] = row_modes[x >> shift]
        else:
            for x in range(w):
                base[x] = row_modes[x // bw]
        flags = 0  # the sides some cell of the cell row has
        for cx in range(gw):
            k = sides[cy, cx]
            flags |= k
            if k & 12:
                m = row_modes[cx] + EDGE
                if k & 4:
                    base[cx * bw] = m
                if k & 8:
                    base[min(w, cx * bw + bw) - 1] = m
        y0 = cy * bh
        for y in range(y0, min(h, y0 + bh)):
            o = out[y]
            for x in range(w):
                o[x] = base[x]
            ry = y - y0
            row = (1 if ry == 0 else 0) | (2 if ry == bh - 1 else 0)  # the sides this row lies on
            if row & flags:  # the cells whose top or bottom side it is are EDGE all along
                for cx in range(gw):
                    if sides[cy, cx] & row:
                        x0 = cx * bw
                        for x in range(x0, min(w, x0 + bw)):
                            o[x] = modes[cy, cx] + EDGE
    return out


@njit(cache=True, inline="always")
def _inter(mode):
    """The mode predicts from another frame (INTER, INTER_MED): the classes EDGE and the
    prediction's shape apply to it."""
    return (mode == INTER) | (mode == INTER_MED)


@njit(cache=True, inline="always")
def _differs(modes, lags, mvy, mvx, ay, ax, by, bx):
    return ((modes[ay, ax] != modes[by, bx]) | (lags[ay, ax] != lags[by, bx]) | (mvy[ay, ax] != mvy[by, bx])
            | (mvx[ay, ax] != mvx[by, bx]))


@njit(cache=True, nogil=True)
def mix_prediction_activity(e16, t, prev, cls):
    """In place: E16 averaged with a quarter of T's activity 16 x (|dT/dx| + |dT/dy|) (the
    activity alone where E16 has no source; tuned on carphone and bikes: about 0.5% fewer bits);
    the clamped neighbours are only needed on the plane's border. Returns the shape of T that
    sign contexts read (_tilt), from the same samples: per inter sample (``cls``), the trend
    (0..2) | (the sign of the lap + 1) << 2 | (how many of 4·3^j, j = 0..11, |lap| exceeds) << 4
    (uint8); FLAT elsewhere. The definitions it is held to: mix_activity, prediction_activity and
    prediction_shape (lap and trend) of tests/reference_kernels.py."""
    hh, ww = t.shape
    shape = np.empty((hh, ww), dtype=np.uint8)
    for y in range(hh):
        ym = max(y - 1, 0)
        yp = min(y + 1, hh - 1)
        _mix_shape_at(e16, t, prev, cls, shape, y, 0, ym, yp, 0, min(1, ww - 1))
        for x in range(1, ww - 1):
            _mix_shape_at(e16, t, prev, cls, shape, y, x, ym, yp, x - 1, x + 1)
        if ww > 1:
            _mix_shape_at(e16, t, prev, cls, shape, y, ww - 1, ym, yp, ww - 2, ww - 1)
    return shape


@njit(cache=True, inline="always")
def _mix_shape_at(e16, t, prev, cls, shape, y, x, ym, yp, xm, xp):
    c = np.int64(t[y, x])
    left = np.int64(t[y, xm])
    right = np.int64(t[y, xp])
    up = np.int64(t[ym, x])
    down = np.int64(t[yp, x])
    a = (16 * (abs(right - left) + abs(down - up))) // 4
    e = e16[y, x]
    e16[y, x] = a if e < 0 else (e + a) // 2
    lap = 4 * c - left - right - up - down
    m = np.int64(0)
    reach = np.int64(4)
    for _ in range(12):
        m += abs(lap) > reach
        reach *= 3
    b = ((c > prev[y, x]) - (c < prev[y, x]) + 1) | (((lap > 0) - (lap < 0) + 1) << 2) | (m << 4)
    shape[y, x] = b if _inter(cls[y, x] & (EDGE - 1)) else FLAT
