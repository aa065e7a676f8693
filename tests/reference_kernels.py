"""The kernels as they were before the decode-speed rewrite (verbatim copies, _decode_plane with
the weighted predictor of format v2 added, the contexts with format v3's), and the definitions
that fused kernels are held to (prediction_shape, prediction_activity, mix_activity): the fast
kernels must return exactly what these return."""

import numpy as np
from numba import njit

from triadic.kernels.context import (CHANNEL_CLASSES, EDGE, K_CLASSES, LEVELS, PHASE_STATES, PHASES,
                                     SAMPLE_CLASSES, SIGN_CLASSES, TILTS, _inter, _k_class, _level, _sign5)
from triadic.kernels.predict import (INTER_MED, INTRA, INTRA_WP, _clamp, _predict_at, _wp_predict, _wp_sample,
                                     _wp_update)



@njit
def _sample(refs, ups, slot, y, x, mvy, mvx, fby, fbx, pad):
    """Reference ``slot`` at (y, x) displaced by (mvy / 2^fby, mvx / 2^fbx), edges extended.

    With quarter-sample planes ``ups`` (shape > 1x1; fby = fbx = 2) the sample is read from
    them; otherwise bilinear interpolation of ``refs`` with rounding (H.264's chroma rule).
    """
    if ups.shape[1] > 1:
        return np.int64(ups[slot, _clamp(4 * (y + pad) + mvy, 0, ups.shape[1] - 1),
                   _clamp(4 * (x + pad) + mvx, 0, ups.shape[2] - 1)])
    h = refs.shape[1]
    w = refs.shape[2]
    iy = y + (mvy >> fby)
    ix = x + (mvx >> fbx)
    fy = mvy & ((1 << fby) - 1)
    fx = mvx & ((1 << fbx) - 1)
    y0 = _clamp(iy, 0, h - 1)
    x0 = _clamp(ix, 0, w - 1)
    if fy == 0 and fx == 0:
        return np.int64(refs[slot, y0, x0])
    y1 = _clamp(iy + 1, 0, h - 1)
    x1 = _clamp(ix + 1, 0, w - 1)
    wy = 1 << fby
    wx = 1 << fbx
    acc = ((wy - fy) * ((wx - fx) * refs[slot, y0, x0] + fx * refs[slot, y0, x1])
           + fy * ((wx - fx) * refs[slot, y1, x0] + fx * refs[slot, y1, x1]))
    shift = fby + fbx
    return (acc + (1 << (shift - 1))) >> shift


@njit
def _hypotheses(refs, ups, s1, v1y, v1x, bi, s2, v2y, v2x, y, x, fby, fbx, pad):
    """One reference sample, or the rounded mean of two (bi-prediction)."""
    a = _sample(refs, ups, s1, y, x, v1y, v1x, fby, fbx, pad)
    if not bi:
        return a
    return (a + _sample(refs, ups, s2, y, x, v2y, v2x, fby, fbx, pad) + 1) >> 1


@njit
def motion_compensate(refs, ups, modes, slots, mvy, mvx, bi, slots2, mv2y, mv2x, bh, bw, fby, fbx,
                      pad, latest):
    """T, and the cross-boundary samples INTER_MED needs, for one plane.

    t[y, x] is every inter cell's reference sample at its vector, or for a bi-predicted cell the
    rounded mean of two references at two vectors (intra cells: the latest frame). INTER_MED
    predicts the temporal residual from the left, top and top-left samples sampled with the
    cell's own vectors; where those lie in another cell, ``edges`` holds them: edges[0] left,
    edges[1] top, edges[2] top-left (zero elsewhere). All of it needs only the references and
    the chart, so the decoder has it before any residual of the frame.
    """
    h = refs.shape[1]
    w = refs.shape[2]
    t = np.empty((h, w), dtype=np.int32)
    edges = np.zeros((3, h, w), dtype=np.int32)
    for y in range(h):
        by = y // bh
        top = y % bh == 0
        for x in range(w):
            bx = x // bw
            mode = modes[by, bx]
            if mode == INTRA:
                t[y, x] = refs[latest, y, x]
                continue
            s1 = slots[by, bx]
            v1y = mvy[by, bx]
            v1x = mvx[by, bx]
            b = bi[by, bx]
            s2 = slots2[by, bx]
            v2y = mv2y[by, bx]
            v2x = mv2x[by, bx]
            t[y, x] = _hypotheses(refs, ups, s1, v1y, v1x, b, s2, v2y, v2x, y, x, fby, fbx, pad)
            if mode == INTER_MED:
                left = x % bw == 0
                if left and x > 0:
                    edges[0, y, x] = _hypotheses(refs, ups, s1, v1y, v1x, b, s2, v2y, v2x, y, x - 1,
                                                 fby, fbx, pad)
                if top and y > 0:
                    edges[1, y, x] = _hypotheses(refs, ups, s1, v1y, v1x, b, s2, v2y, v2x, y - 1, x,
                                                 fby, fbx, pad)
                if (left or top) and x > 0 and y > 0:
                    edges[2, y, x] = _hypotheses(refs, ups, s1, v1y, v1x, b, s2, v2y, v2x, y - 1,
                                                 x - 1, fby, fbx, pad)
    return t, edges


@njit
def _decode_plane(q, t, edges, modes, bh, bw, maxval, step):
    """Inverse of ``_encode_plane``: the reconstruction from the quantised residual (sample by
    sample; with the weighted predictor as format v4 keeps it: on the rows of cell rows holding
    a weighted-predictor cell, at its own samples only (zero error at every other sample), its
    state zero at the start of every run of such cell rows)."""
    h, w = q.shape
    rec = np.empty((h, w), dtype=np.int32)
    modulus = maxval + 1
    state = np.zeros((5, 2, w + 2), dtype=np.int64)
    sub = np.empty(4, dtype=np.int64)
    blend = np.int64(0)
    for y in range(h):
        by = y // bh
        top = y % bh == 0
        use_wp = False
        above = False
        for cx in range(modes.shape[1]):
            use_wp = use_wp or modes[by, cx] == INTRA_WP
            above = above or (by > 0 and modes[by - 1, cx] == INTRA_WP)
        if use_wp and top and not above:
            state[:, :, :] = 0
        if use_wp:
            for i in range(5):
                for x in range(w + 2):
                    state[i, y % 2, x] = 0
        for x in range(w):
            mode = modes[by, x // bw]
            if mode == INTRA_WP:
                blend = _wp_predict(rec, y, x, state, sub, maxval)
                p = _wp_sample(blend, maxval)
            else:
                p = _predict_at(rec, t, edges, y, x, mode, x % bw == 0, top, maxval)
            if step == 1:
                v = p + q[y, x]  # p in [0, m), q in [-m/2, m/2): one wrap at most
                if v < 0:
                    v += modulus
                elif v >= modulus:
                    v -= modulus
                rec[y, x] = v
            else:
                rec[y, x] = _clamp(p + q[y, x] * step, 0, maxval)
            if mode == INTRA_WP:
                _wp_update(state, sub, blend, y, x, rec[y, x])
    return rec


@njit
def expected_magnitude(prev_q, luma_q, sy, sx, use_prev, use_luma):
    """E16: 16 x the expected |residual| of each sample, from what the decoder already has.

    ``prev_q`` is this plane's residual in the previous frame (3x3 mean around the sample);
    ``luma_q`` is this frame's luma residual (mean over the co-located luma samples, chroma only).
    Samples with neither source get -1.
    """
    if use_prev:
        h, w = prev_q.shape
    else:
        h = -(-luma_q.shape[0] >> sy)
        w = -(-luma_q.shape[1] >> sx)
    out = np.empty((h, w), dtype=np.int32)
    for y in range(h):
        for x in range(w):
            total = 0
            sources = 0
            if use_prev:
                s = 0
                n = 0
                for yy in range(max(0, y - 1), min(h, y + 2)):
                    for xx in range(max(0, x - 1), min(w, x + 2)):
                        s += abs(prev_q[yy, xx])
                        n += 1
                total += 16 * s // n
                sources += 1
            if use_luma:
                lh, lw = luma_q.shape
                s = 0
                n = 0
                for yy in range(y << sy, min(lh, (y + 1) << sy)):
                    for xx in range(x << sx, min(lw, (x + 1) << sx)):
                        s += abs(luma_q[yy, xx])
                        n += 1
                if n:
                    total += 16 * s // n
                    sources += 1
            out[y, x] = total // sources if sources else -1
    return out


@njit
def magnitude_contexts(v, dig, is_open, kblock, e16, cls, k, phase, chan, pow3k):
    """Samples of this pass (flat indices, raster order) and the contexts of their M_k.

    ``v`` is the partial residual (digits above k, and digit k where already coded); ``dig``
    holds digit k where already coded (earlier phases), 0 elsewhere.
    """
    h, w = v.shape
    pos = np.empty(((h + 1) // 2) * ((w + 1) // 2), dtype=np.int32)
    ctx = np.empty(pos.size, dtype=np.int32)
    n = 0
    kc = _k_class(k)
    step = 3 * pow3k
    py, px = PHASES[phase]
    for y in range(py, h, 2):
        by = y // kblock
        for x in range(px, w, 2):
            if not is_open[by, x // kblock]:
                continue
            u = abs(v[y, x]) // step
            own = 0 if u == 0 else (1 if u == 1 else (2 if u <= 4 else 3))
            s = 0    # magnitude of the neighbours' digits above k
            cnt = 0  # neighbours (of earlier phases) whose digit k is nonzero
            for yy in range(max(0, y - 1), min(h, y + 2)):
                for xx in range(max(0, x - 1), min(w, x + 2)):
                    if yy == y and xx == x:
                        continue
                    d = dig[yy, xx]
                    if d != 0:
                        cnt += 1
                    s += abs(v[yy, xx] - d * pow3k)
            lev_n = _level(s // (2 * pow3k))
            e = e16[y, x]
            lev_e = LEVELS if e < 0 else _level(e // (4 * pow3k))
            pstate = 0 if phase == 0 else 1 + 4 * (phase - 1) + min(cnt, 3)
            pos[n] = y * w + x
            ctx[n] = (((((own * PHASE_STATES + pstate) * LEVELS + lev_n) * (LEVELS + 1) + lev_e)
                       * K_CLASSES + kc) * CHANNEL_CLASSES + chan) * SAMPLE_CLASSES + cls[y, x]
            n += 1
    return pos[:n], ctx[:n]


@njit
def sign_contexts(v, dig, pos, cls, lap, trend, k, phase, chan, pow3k):
    """Contexts of the signs of the nonzero digits at flat positions ``pos``.

    Own state (no digit above k, or the sign of the part above k and whether it is a single
    digit), the signs of the 8 neighbours' digits at k (earlier phases), the signs of the
    4 neighbours' parts above k, the prediction's curvature ``lap`` in 5 classes times its
    ``trend`` (3), phase, plane, channel and the leaf mode part of the sample class.
    """
    h, w = v.shape
    ctx = np.empty(pos.size, dtype=np.int32)
    kc = _k_class(k)
    step = 3 * pow3k
    for i in range(pos.size):
        y = pos[i] // w
        x = pos[i] - y * w
        own_v = v[y, x]
        u = abs(own_v) // step
        if own_v == 0:
            own = 0
        elif own_v > 0:
            own = 1 if u == 1 else 2
        else:
            own = 3 if u == 1 else 4
        sd = 0
        sh = 0
        for yy in range(max(0, y - 1), min(h, y + 2)):
            for xx in range(max(0, x - 1), min(w, x + 2)):
                if yy == y and xx == x:
                    continue
                d = dig[yy, xx]
                sd += d
                if yy == y or xx == x:
                    sh += np.sign(v[yy, xx] - d * pow3k)
        c = lap[y, x]
        if c < -4 * pow3k:
            tilt = 0
        elif c < 0:
            tilt = 1
        elif c == 0:
            tilt = 2
        elif c <= 4 * pow3k:
            tilt = 3
        else:
            tilt = 4
        ctx[i] = ((((((own * 5 + _sign5(sd)) * 5 + _sign5(sh)) * TILTS + 3 * tilt + trend[y, x]) * len(PHASES) + phase) * K_CLASSES
                   + kc) * CHANNEL_CLASSES + chan) * SIGN_CLASSES + cls[y, x] % SIGN_CLASSES
    return ctx


@njit
def prediction_shape(t, prev, cls):
    """The prediction's shape as sign contexts read it (from mix_prediction_activity's byte per
    sample, see context._tilt). In inter samples (class INTER or INTER_MED, with or without
    EDGE): 4T - (T's 4 nearest
    neighbours, edges repeated), and the trend sign(T - prev) + 1 (0, 1, 2) against the previous
    frame's sample; 0 and 1 elsewhere."""
    hh, ww = t.shape
    lap = np.zeros((hh, ww), dtype=np.int32)
    trend = np.ones((hh, ww), dtype=np.int8)
    for y in range(hh):
        ym = max(y - 1, 0)
        yp = min(y + 1, hh - 1)
        for x in range(ww):
            if _inter(cls[y, x] & (EDGE - 1)):
                c = np.int64(t[y, x])
                lap[y, x] = 4 * c - t[ym, x] - t[yp, x] - t[y, max(x - 1, 0)] - t[y, min(x + 1, ww - 1)]
                trend[y, x] = (c > prev[y, x]) - (c < prev[y, x]) + 1
    return lap, trend


@njit
def prediction_activity(t):
    """16 x the local gradient |dT/dx| + |dT/dy| of the motion-compensated reference T."""
    hh, ww = t.shape
    out = np.empty((hh, ww), dtype=np.int32)
    for y in range(hh):
        for x in range(ww):
            gx = abs(t[y, min(x + 1, ww - 1)] - t[y, max(x - 1, 0)])
            gy = abs(t[min(y + 1, hh - 1), x] - t[max(y - 1, 0), x])
            out[y, x] = 16 * (gx + gy)
    return out


@njit
def mix_activity(e16, act16):
    """In place: average E16 with a quarter of the prediction's activity (activity alone where
    E16 has no source). Tuned on carphone and bikes: about 0.5% fewer bits."""
    h, w = e16.shape
    for y in range(h):
        for x in range(w):
            a = act16[y, x] // 4
            e16[y, x] = a if e16[y, x] < 0 else (e16[y, x] + a) // 2


def symbol_probabilities(counts, ctx, alphabet):
    """model.SymbolCounts.probabilities, as numpy: 2 n + 1 of the first ``alphabet`` symbols."""
    return (2 * counts[ctx] + 1).astype(np.float64)[:, :alphabet]


def symbol_update(counts, ctx, symbols, limit):
    """model.SymbolCounts.update, as numpy: every (context, symbol) pair counted at once, then
    every context whose total passes ``limit`` halved, rounding up."""
    flat = counts.reshape(-1)
    flat += np.bincount(np.asarray(ctx, np.int64) * counts.shape[1] + symbols, minlength=flat.size)
    over = counts.sum(axis=1) > limit
    counts[over] = (counts[over] + 1) >> 1
