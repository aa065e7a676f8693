"""Causal prediction of one plane, shared by encoder and decoder (FFV1's predict() idea).

Per block a mode:
  INTRA     a spatial predictor over the already reconstructed part of this frame: MED / LOCO-I,
            or (the leaf's intra flag) the weighted predictor WP, a blend of four predictors
            weighted by their recent errors (JPEG XL's self-correcting predictor);
  INTER     the reference plane sampled at a motion vector (bilinear at chroma sub-pel);
  INTER_MED the inter prediction plus a MED prediction of the temporal residual from the
            causal neighbours (corrects lighting changes and smooth motion mismatch).
Motion vectors are in quarter luma samples: full-resolution planes sample the H.264 quarter-sample
plane (kernels/interp.py), subsampled ones interpolate bilinearly at 1/(4 * 2^shift).

The encoder kernel quantises the residual in the loop (step 3^j, j dropped ternary planes) and
reconstructs as it goes, so the decoder, which sees only the quantised residual, rebuilds
exactly the same samples.
"""

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import leading_zeros

from .interp import h264_block

INTRA = 0
INTER = 1
INTER_MED = 2
NUM_MODES = 3
#: Not a chart mode: what the plane kernels see for an INTRA leaf whose intra flag selects WP.
INTRA_WP = 3

#: The weighted predictor's constants: sub-predictor corrections (in 1/32) and maximal weights
#: (JPEG XL's default set for 8-bit images, which measured best on the public clips).
WP_P1 = 8
WP_P2 = 8
WP_P3 = (4, 0, 3, 23, 2)
WP_WEIGHTS = np.array([13, 12, 12, 11], dtype=np.int64)
#: (1 << 24) // (i + 1): division by 1..64 as a multiplication.
WP_DIV = np.array([(1 << 24) // (i + 1) for i in range(64)], dtype=np.int64)


def _wp_weight_table(n):
    """_wp_weight of every summed error below n, per sub-predictor (the decoder's shortcut)."""
    out = np.empty((4, n), dtype=np.int32)
    for i in range(4):
        for e in range(n):
            shift = max((e + 1).bit_length() - 1 - 5, 0)
            out[i, e] = 4 + ((int(WP_WEIGHTS[i]) * int(WP_DIV[e >> shift])) >> shift)
    return out


#: Summed errors below this read their weight from WP_WEIGHT_TABLE (the common case).
WP_TABLE_SIZE = 1024
WP_WEIGHT_TABLE = _wp_weight_table(WP_TABLE_SIZE)


@njit(cache=True, inline="always")
def _med(a, b, c):
    """LOCO-I median edge detector."""
    if c >= max(a, b):
        return min(a, b)
    if c <= min(a, b):
        return max(a, b)
    return a + b - c


@njit(cache=True, inline="always")
def _clamp(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)


@njit(cache=True, inline="always")
def _floor_log2(v):
    """floor(log2(v)) for v >= 1, -1 for v == 0 (one count-leading-zeros instruction)."""
    return 63 - leading_zeros(np.int64(v))


@njit(cache=True, inline="always")
def _wp_weight(state, i, prev, at_n, at_ne, at_nw):
    """Sub-predictor i's weight: about WP_WEIGHTS[i] * 2^24 / (1 + its error around the sample)."""
    e = state[i, prev, at_n] + state[i, prev, at_ne] + state[i, prev, at_nw]
    shift = max(_floor_log2(e + 1) - 5, 0)
    return 4 + ((WP_WEIGHTS[i] * WP_DIV[e >> shift]) >> shift)


@njit(cache=True, inline="always")
def _wp_blend(s0, s1, s2, s3, w0, w1, w2, w3):
    """The four sub-predictions averaged with their weights, the weights first scaled down to a
    sum of 16 to 31 so that the division is a multiplication by WP_DIV."""
    shift = _floor_log2(w0 + w1 + w2 + w3) - 4
    w0 >>= shift
    w1 >>= shift
    w2 >>= shift
    w3 >>= shift
    total = w0 + w1 + w2 + w3
    return (((total >> 1) - 1 + s0 * w0 + s1 * w1 + s2 * w2 + s3 * w3) * WP_DIV[total - 1]) >> 24


@njit(cache=True, inline="always")
def _wp_predict(rec, y, x, state, sub, maxval):
    """The weighted predictor at (y, x), in 1/8 samples; fills ``sub`` with the four
    sub-predictions. Every quantity is an integer, so encoder and decoder agree exactly.

    The sub-predictors: W + NE - N, and N, W, N corrected by the blend's recent errors around
    the sample. Each is weighted by ~1/(its summed error at N, NE and NW, which also hold W's
    and WW's); where the neighbours' errors disagree in sign the blend is clamped to [min, max] of
    W, N, NE.
    """
    w = rec.shape[1]
    cur = y & 1
    prev = cur ^ 1
    if x > 0:
        vw = np.int64(rec[y, x - 1])
    elif y > 0:
        vw = np.int64(rec[y - 1, x])
    else:
        vw = np.int64((maxval + 1) >> 1)
    vn = np.int64(rec[y - 1, x]) if y > 0 else vw
    vnw = np.int64(rec[y - 1, x - 1]) if y > 0 and x > 0 else vw
    vne = np.int64(rec[y - 1, x + 1]) if y > 0 and x + 1 < w else vn
    vnn = np.int64(rec[y - 2, x]) if y > 1 else vn
    at_n = x
    at_ne = x + 1 if x + 1 < w else x
    at_nw = x - 1 if x > 0 else x
    err_w = state[4, cur, x - 1] if x > 0 else np.int64(0)
    err_n = state[4, prev, at_n]
    err_nw = state[4, prev, at_nw]
    err_ne = state[4, prev, at_ne]
    n8 = vn << 3
    w8 = vw << 3
    ne8 = vne << 3
    sub[0] = w8 + ne8 - n8
    sub[1] = n8 - (((err_n + err_w + err_ne) * WP_P1) >> 5)
    sub[2] = w8 - (((err_n + err_w + err_nw) * WP_P2) >> 5)
    sub[3] = n8 - ((err_nw * WP_P3[0] + err_n * WP_P3[1] + err_ne * WP_P3[2]
                    + ((vnn - vn) << 3) * WP_P3[3] + ((vnw - vw) << 3) * WP_P3[4]) >> 5)
    w0 = _wp_weight(state, 0, prev, at_n, at_ne, at_nw)
    w1 = _wp_weight(state, 1, prev, at_n, at_ne, at_nw)
    w2 = _wp_weight(state, 2, prev, at_n, at_ne, at_nw)
    w3 = _wp_weight(state, 3, prev, at_n, at_ne, at_nw)
    blend = _wp_blend(sub[0], sub[1], sub[2], sub[3], w0, w1, w2, w3)
    if ((err_n ^ err_w) | (err_n ^ err_nw)) <= 0:
        blend = _clamp(blend, min(w8, min(ne8, n8)), max(w8, max(ne8, n8)))
    return blend


@njit(cache=True, inline="always")
def _wp_update(state, sub, blend, y, x, value):
    """Record the errors at (y, x) once its sample ``value`` is known."""
    cur = y & 1
    prev = cur ^ 1
    v8 = np.int64(value) << 3
    state[4, cur, x] = blend - v8
    for i in range(4):
        e = (abs(sub[i] - v8) + 3) >> 3
        state[i, cur, x] = e
        state[i, prev, x + 1] += e  # seen from the next row as part of N's error: W and WW


@njit(cache=True, inline="always")
def _wp_sample(blend, maxval):
    """The weighted predictor's prediction in samples."""
    return _clamp((blend + 3) >> 3, 0, maxval)


@njit(cache=True, nogil=True)
def wp_prediction(plane, maxval):
    """The weighted predictor over a whole plane from its own samples (the encoder's estimate;
    exact in lossless mode, where the reconstruction is the source)."""
    h, w = plane.shape
    out = np.empty((h, w), dtype=np.int32)
    err = np.zeros((2, 5, w + 2), dtype=np.int64)  # as _decode_plane keeps it for an all-WP plane
    for y in range(h):
        if y > 0:
            err[y & 1] = 0
        _wp_run(out[y], plane, err, y, 0, w, maxval, 1, WP_PREDICT)
    return out


@njit(cache=True, inline="always")
def _bilinear_weights(fy, fx, fby, fbx):
    """The shift, rounding and four weights of bilinear interpolation at fractions fy / 2^fby,
    fx / 2^fbx (the subsampled planes' sampler): (w00 a + w01 b + w10 c + w11 d + rnd) >> shift."""
    shift = fby + fbx
    return (shift, 1 << (shift - 1), ((1 << fby) - fy) * ((1 << fbx) - fx), ((1 << fby) - fy) * fx,
            fy * ((1 << fbx) - fx), fy * fx)


@njit(cache=True)
def _block(refs, slot, vy, vx, y0, y1, x0, x1, fby, fbx, pad, out, maxval, wg, b1, h1):
    """out[0:y1-y0, 0:x1-x0] = reference ``slot`` over a block displaced by (vy / 2^fby,
    vx / 2^fbx), edges extended. With ``maxval`` >= 0 (full-resolution planes, fby = fbx = 2) the
    H.264 quarter samples (kernels/interp.h264_block; wg, b1, h1 are its work buffers); otherwise
    bilinear interpolation with rounding (H.264's chroma rule), the edge clamps left out where
    the block's footprint lies inside the plane."""
    if maxval >= 0:
        h264_block(refs[slot], vy, vx, y0, y1, x0, x1, pad, maxval, wg, b1, h1, out)
        return
    h = refs.shape[1]
    w = refs.shape[2]
    oy = vy >> fby
    ox = vx >> fbx
    fy = vy & ((1 << fby) - 1)
    fx = vx & ((1 << fbx) - 1)
    if fy == 0 and fx == 0:
        for y in range(y0, y1):
            ya = _clamp(y + oy, 0, h - 1)
            for x in range(x0, x1):
                out[y - y0, x - x0] = refs[slot, ya, _clamp(x + ox, 0, w - 1)]
        return
    shift, rnd, w00, w01, w10, w11 = _bilinear_weights(fy, fx, fby, fbx)
    inside_x = x0 + ox >= 0 and x1 + ox < w
    one = np.uint64(1)
    for y in range(y0, y1):
        ya = _clamp(y + oy, 0, h - 1)
        yb = _clamp(y + oy + 1, 0, h - 1)
        if inside_x:  # rows read with unsigned indices (x0 + ox >= 0): no wrap-around, the loop vectorises
            ra = refs[slot, ya]
            rb = refs[slot, yb]
            o = out[y - y0]
            for i in range(x1 - x0):
                xa = np.uint64(x0 + ox) + np.uint64(i)
                o[i] = (w00 * ra[xa] + w01 * ra[xa + one] + w10 * rb[xa] + w11 * rb[xa + one] + rnd) >> shift
        else:
            for x in range(x0, x1):
                xa = _clamp(x + ox, 0, w - 1)
                xb = _clamp(x + ox + 1, 0, w - 1)
                out[y - y0, x - x0] = (w00 * refs[slot, ya, xa] + w01 * refs[slot, ya, xb]
                                       + w10 * refs[slot, yb, xa] + w11 * refs[slot, yb, xb]
                                       + rnd) >> shift


@njit(cache=True, inline="always")
def _copy_clamped(src, dst, base, oy, ox, y0, y1, x0, x1, h, w):
    """dst (a flat h x w plane) over rows y0..y1-1, columns x0..x1-1 = the flat h x w plane at
    ``base`` of ``src`` displaced by (oy, ox), reads clamped into it (edges extended); unsigned
    indices where no clamp is needed."""
    inside = x0 + ox >= 0 and x1 + ox <= w
    for y in range(y0, y1):
        row = base + min(max(y + oy, 0), h - 1) * w
        if inside:
            d = np.uint64(y * w + x0)
            r = np.uint64(row + x0 + ox)
            for i in range(x1 - x0):
                dst[d + np.uint64(i)] = src[r + np.uint64(i)]
        else:
            for x in range(x0, x1):
                dst[y * w + x] = src[row + min(max(x + ox, 0), w - 1)]


@njit(cache=True, inline="always")
def _bilinear_rows(src, dst, base, oy, ox, fy, fx, fby, fbx, y0, y1, x0, x1, h, w):
    """dst (a flat h x w plane) over rows y0..y1-1, columns x0..x1-1 = _block's bilinear
    interpolation (fractions fy / 2^fby, fx / 2^fbx) of the flat h x w plane at ``base`` of
    ``src`` displaced by (oy, ox), rows clamped into it; the columns read, x0 + ox .. x1 + ox,
    must lie inside it (unsigned indices)."""
    shift, rnd, w00, w01, w10, w11 = _bilinear_weights(fy, fx, fby, fbx)
    one = np.uint64(1)
    for y in range(y0, y1):
        ra = np.uint64(base + _clamp(y + oy, 0, h - 1) * w + x0 + ox)
        rb = np.uint64(base + _clamp(y + oy + 1, 0, h - 1) * w + x0 + ox)
        d = np.uint64(y * w + x0)
        for i in range(x1 - x0):
            u = np.uint64(i)
            dst[d + u] = (w00 * src[ra + u] + w01 * src[ra + u + one] + w10 * src[rb + u] + w11 * src[rb + u + one]
                          + rnd) >> shift


@njit(cache=True, inline="always")
def _copy_rows(block, dst, y0, y1, x0, x1, w):
    """dst (a flat plane w samples wide) over rows y0..y1-1, columns x0..x1-1 = block[0:y1-y0,
    0:x1-x0] (unsigned indices)."""
    for y in range(y0, y1):
        r = block[y - y0]
        d = np.uint64(y * w + x0)
        for i in range(x1 - x0):
            dst[d + np.uint64(i)] = r[i]


@njit(cache=True, nogil=True)
def motion_compensate(refs, modes, slots, mvy, mvx, bi, slots2, mv2y, mv2x, bh, bw, fby, fbx, pad,
                      latest, maxval=-1):
    """T, and the cross-boundary samples INTER_MED needs, for one plane.

    t[y, x] is every inter cell's reference sample at its vector, or for a bi-predicted cell the
    rounded mean of two references at two vectors (intra cells: the latest frame). INTER_MED
    predicts the temporal residual from the left, top and top-left samples sampled with the
    cell's own vectors; where those lie in another cell, ``edges`` holds them: edges[0] left,
    edges[1] top, edges[2] top-left (zero elsewhere). All of it needs only the references and
    the chart, so the decoder has it before any residual of the frame.

    Full-resolution planes pass their ``maxval``: their blocks get H.264's quarter samples
    (upsample_h264's, computed for just the blocks the chart uses: most vectors are whole
    samples); subsampled planes (maxval -1) interpolate bilinearly.

    Run by run: consecutive cells of a cell row with the same mode and vectors (the cells of
    one leaf, mostly) are sampled as one block, with a one-sample ring above and to the left for
    INTER_MED, which is where its edges come from.
    """
    h = refs.shape[1]
    w = refs.shape[2]
    gw = (w + bw - 1) // bw
    t = np.empty((h, w), dtype=np.int32)
    flat_t = t.ravel()
    flat_refs = refs.ravel()
    # written, and read (INTER_MED only), on the borders of INTER_MED cells only: no need to
    # clear the rest (megabytes per plane)
    edges = np.empty((3, h, w), dtype=np.int32)
    a = np.empty((bh + 1, w + 1), dtype=np.int32)
    b = np.empty((bh + 1, w + 1), dtype=np.int32)
    wg = np.empty((bh + 7, w + 7), dtype=np.int32)
    b1 = np.empty((bh + 7, w + 1), dtype=np.int32)
    h1 = np.empty((bh + 1, w + 2), dtype=np.int32)
    for cy in range((h + bh - 1) // bh):
        y0 = cy * bh
        y1 = min(h, y0 + bh)
        cx = 0
        while cx < gw:
            x0 = cx * bw
            mode = modes[cy, cx]
            if mode == INTRA:  # a run of intra cells: T is the latest frame there (copied by rows)
                end = cx + 1
                while end < gw and modes[cy, end] == INTRA:
                    end += 1
                _copy_clamped(flat_refs, flat_t, (latest * h) * w, 0, 0, y0, y1, x0, min(w, end * bw), h, w)
                cx = end
                continue
            s1 = slots[cy, cx]
            v1y = mvy[cy, cx]
            v1x = mvx[cy, cx]
            two = bi[cy, cx]
            s2 = slots2[cy, cx]
            v2y = mv2y[cy, cx]
            v2x = mv2x[cy, cx]
            end = cx + 1
            while (end < gw and modes[cy, end] == mode and slots[cy, end] == s1 and mvy[cy, end] == v1y
                   and mvx[cy, end] == v1x and bi[cy, end] == two
                   and (not two or (slots2[cy, end] == s2 and mv2y[cy, end] == v2y
                                    and mv2x[cy, end] == v2x))):
                end += 1
            x1 = min(w, end * bw)
            if mode == INTER and not two:  # straight into T (most runs)
                oy = v1y >> fby
                ox = v1x >> fbx
                if (v1y == oy << fby and v1x == ox << fbx
                        and (maxval < 0 or (y0 + oy >= -pad and y1 - 1 + oy < h + pad and x0 + ox >= -pad
                                            and x1 - 1 + ox < w + pad))):
                    # a whole-sample vector: T is the reference there, edges extended (what _block
                    # computes, without its calls and views: most of their cost on short runs)
                    _copy_clamped(flat_refs, flat_t, (s1 * h) * w, oy, ox, y0, y1, x0, x1, h, w)
                    cx = end
                    continue
                if maxval < 0 and x0 + ox >= 0 and x1 + ox < w:
                    # a subsampled plane, the footprint's columns inside it (most chroma runs):
                    # bilinear straight into T, as _block computes it (without its call, and
                    # the copy out of the work block: most of a 2 x 2 cell's cost)
                    _bilinear_rows(flat_refs, flat_t, (s1 * h) * w, oy, ox, v1y - (oy << fby), v1x - (ox << fbx),
                                   fby, fbx, y0, y1, x0, x1, h, w)
                    cx = end
                    continue
                # into the contiguous buffer (the kernels' loops vectorise there, not in a view of T)
                _block(refs, s1, v1y, v1x, y0, y1, x0, x1, fby, fbx, pad, a, maxval, wg, b1, h1)
                _copy_rows(a, flat_t, y0, y1, x0, x1, w)
                cx = end
                continue
            ey = 1 if mode == INTER_MED and y0 > 0 else 0
            ex = 1 if mode == INTER_MED and x0 > 0 else 0
            if mode == INTER_MED and not two:
                oy = v1y >> fby
                ox = v1x >> fbx
                if (v1y == oy << fby and v1x == ox << fbx
                        and (maxval < 0 or (y0 - ey + oy >= -pad and y1 - 1 + oy < h + pad
                                            and x0 - ex + ox >= -pad and x1 - 1 + ox < w + pad))):
                    # a whole-sample vector (most INTER_MED runs): T and the edges below are the
                    # reference there, edges extended (what _block computes into the work block
                    # with its ring, without its call and views and the copy out of it)
                    base = (s1 * h) * w
                    _copy_clamped(flat_refs, flat_t, base, oy, ox, y0, y1, x0, x1, h, w)
                    for xc in range(max(x0, bw), x1, bw):  # left borders (none at x = 0)
                        xs = min(max(xc - 1 + ox, 0), w - 1)
                        for y in range(y0, y1):
                            edges[0, y, xc] = flat_refs[base + min(max(y + oy, 0), h - 1) * w + xs]
                            if y > 0:
                                edges[2, y, xc] = flat_refs[base + min(max(y - 1 + oy, 0), h - 1) * w + xs]
                    if y0 > 0:  # the top border
                        row = base + min(max(y0 - 1 + oy, 0), h - 1) * w
                        for x in range(x0, x1):
                            edges[1, y0, x] = flat_refs[row + min(max(x + ox, 0), w - 1)]
                            if x > 0:
                                edges[2, y0, x] = flat_refs[row + min(max(x - 1 + ox, 0), w - 1)]
                    cx = end
                    continue
            # a and b whole, as the straight path above passes a: one compiled _block (and H.264
            # sampler) for every call, on contiguous arrays (a view a[:, :] would type as 'A' and
            # compile them all again, some 10 s of a cold start)
            _block(refs, s1, v1y, v1x, y0 - ey, y1, x0 - ex, x1, fby, fbx, pad, a, maxval, wg, b1, h1)
            if two:
                _block(refs, s2, v2y, v2x, y0 - ey, y1, x0 - ex, x1, fby, fbx, pad, b, maxval, wg, b1, h1)
                for i in range(y1 - y0 + ey):
                    for j in range(x1 - x0 + ex):
                        a[i, j] = (a[i, j] + b[i, j] + 1) >> 1
            for y in range(y0, y1):
                for x in range(x0, x1):
                    t[y, x] = a[y - y0 + ey, x - x0 + ex]
            if mode == INTER_MED:
                # a[i, j] is the sample at (y0 - ey + i, x0 - ex + j)
                for xc in range(x0, x1, bw):
                    if xc == 0:
                        continue
                    for y in range(y0, y1):
                        edges[0, y, xc] = a[y - y0 + ey, xc - 1 - x0 + ex]
                        if y > 0:
                            edges[2, y, xc] = a[y - 1 - y0 + ey, xc - 1 - x0 + ex]
                if y0 > 0:
                    for x in range(x0, x1):
                        edges[1, y0, x] = a[0, x - x0 + ex]
                        if x > 0:
                            edges[2, y0, x] = a[0, x - 1 - x0 + ex]
            cx = end
    return t, edges


@njit(cache=True, inline="always")
def _med_at(rec, y, x, maxval):
    """INTRA's prediction of sample (y, x) from the known samples ``rec``: MED of the left, top
    and top-left ones; on the first row the left one (mid-range at the first sample), on the
    first column the top one."""
    if y == 0:
        return np.int64(rec[0, x - 1]) if x > 0 else np.int64((maxval + 1) >> 1)
    if x == 0:
        return np.int64(rec[y - 1, 0])
    return np.int64(_med(rec[y, x - 1], rec[y - 1, x], rec[y - 1, x - 1]))


@njit(cache=True, inline="always")
def _predict_at(rec, t, edges, y, x, mode, left, top, maxval):
    """Prediction of sample (y, x) from reconstructed causal neighbours, T and its edges.

    ``left``/``top``: the sample is on its cell's left/top edge (neighbours there come from
    ``edges``, sampled with this cell's vector).
    """
    if mode == INTRA:
        return _med_at(rec, y, x, maxval)
    p = np.int64(t[y, x])
    if mode == INTER_MED:
        dl = 0
        du = 0
        if x > 0:
            dl = rec[y, x - 1] - (edges[0, y, x] if left else t[y, x - 1])
        if y > 0:
            du = rec[y - 1, x] - (edges[1, y, x] if top else t[y - 1, x])
        if x > 0 and y > 0:
            dul = rec[y - 1, x - 1] - (edges[2, y, x] if (left or top) else t[y - 1, x - 1])
            p += _med(dl, du, dul)
        else:
            p += dl + du
        p = _clamp(p, 0, maxval)
    return p


@njit(cache=True, inline="always")
def _wp_state(modes, w):
    """A plane's weighted-predictor state for _wp_run, w samples wide: the errors of its
    sub-predictors (0..3) and blend (4) per sample of the last two rows (row parity first,
    cleared by _wp_start_errors), and which cell rows it runs on (_wp_rows)."""
    return np.zeros((2, 5, w + 2), dtype=np.int64), _wp_rows(modes)


@njit(cache=True)
def _wp_rows(modes):
    """Per cell row, whether it holds a cell predicted by the weighted predictor. The predictor's
    state is kept on the sample rows of those cell rows only, and only at its own samples (the
    INTRA_WP cells'): every other sample counts as zero error. It starts from zero at the first row
    of every run of such cell rows."""
    gh, gw = modes.shape
    out = np.zeros(gh, dtype=np.bool_)
    for cy in range(gh):
        for cx in range(gw):
            if modes[cy, cx] == INTRA_WP:
                out[cy] = True
                break
    return out


@njit(cache=True, inline="always")
def _wp_band_start(wp_rows, y, bh):
    """Row y starts a run of weighted-predictor cell rows: the predictor's state restarts."""
    by = y // bh
    return wp_rows[by] and y % bh == 0 and (by == 0 or not wp_rows[by - 1])


@njit(cache=True, inline="always")
def _wp_start_row(state, wp_rows, y, bh):
    """_wp_predict's state at the start of sample row y (see _wp_rows): all of it from zero at the
    first row of a band, the row's own errors from zero on its other rows."""
    if _wp_band_start(wp_rows, y, bh):
        state[:] = 0
    elif wp_rows[y // bh]:
        state[:, y & 1] = 0


@njit(cache=True, inline="always")
def _wp_start_errors(err, wp_rows, y, bh):
    """_wp_run's errors (``err``: row parity first) at the start of sample row y, as
    _wp_start_row restarts _wp_predict's state."""
    if _wp_band_start(wp_rows, y, bh):
        err[:] = 0
    elif wp_rows[y // bh]:
        err[y & 1] = 0


@njit(cache=True, nogil=True)
def _encode_plane(src, t, edges, modes, bh, bw, maxval, step):
    """Quantised residual q (int32) and reconstruction (int32) of ``src``: the definition, sample
    by sample, that the encoder's kernels (kernels/encode.py: residual_lossless,
    residual_near_lossless) are tested against.

    ``modes`` is per cell of bh x bw samples; ``t``/``edges`` come from motion_compensate.
    q = round(r / step) to the nearest multiple (step odd), reconstruction clamped to
    [0, maxval]; with step == 1 this is lossless, the reconstruction equals ``src`` and the
    residual is reduced modulo maxval + 1 into [-(maxval+1)/2, (maxval+1)/2) (as JPEG-LS does:
    the decoder knows the sample range, so wrap-around costs nothing and noise stays b bits).
    ``modes`` may hold INTRA_WP (see _wp_rows for where the weighted predictor runs).
    """
    h, w = src.shape
    q = np.empty((h, w), dtype=np.int32)
    rec = np.empty((h, w), dtype=np.int32)
    half = step // 2
    modulus = maxval + 1
    wrap = modulus // 2
    state = np.zeros((5, 2, w + 2), dtype=np.int64)
    sub = np.empty(4, dtype=np.int64)
    wp_rows = _wp_rows(modes)
    for y in range(h):
        by = y // bh
        top = y % bh == 0
        _wp_start_row(state, wp_rows, y, bh)
        for x in range(w):
            mode = modes[by, x // bw]
            if mode == INTRA_WP:
                blend = _wp_predict(rec, y, x, state, sub, maxval)
                p = _wp_sample(blend, maxval)
            else:
                p = _predict_at(rec, t, edges, y, x, mode, x % bw == 0, top, maxval)
            r = src[y, x] - p
            if step == 1:
                v = r + wrap  # in [0, 2m): one wrap at most
                if v >= modulus:
                    v -= modulus
                elif v < 0:
                    v += modulus
                q[y, x] = v - wrap
                rec[y, x] = src[y, x]
            else:
                qi = (r + half) // step
                q[y, x] = qi
                rec[y, x] = _clamp(p + qi * step, 0, maxval)
            if mode == INTRA_WP:
                _wp_update(state, sub, blend, y, x, rec[y, x])
    return q, rec


@njit(cache=True, inline="always")
def _rebuild(p, qv, maxval, step):
    """The reconstructed sample from prediction p and quantised residual qv (see _encode_plane),
    written with selects rather than branches. Lossless with a range m = maxval + 1 that is a
    power of two (every plane but YCoCg-R's chroma): the wrap is a mask (a shorter dependency
    chain from one sample to the next; the test is loop-invariant)."""
    if step == 1:
        v = p + qv  # p in [0, m), q in [-m/2, m/2): one wrap at most
        if (maxval & (maxval + 1)) == 0:
            return v & maxval
        v += (maxval + 1) if v < 0 else 0
        v -= (maxval + 1) if v > maxval else 0
        return v
    return min(max(p + qv * step, 0), maxval)


@njit(cache=True, inline="always")
def _med_select(a, b, c):
    """_med(a, b, c) as the median of a, b and a + b - c (the same value, without branches)."""
    return max(min(a, b), min(max(a, b), a + b - c))


@njit(cache=True, nogil=True)
def _decode_plane(q, t, edges, modes, bh, bw, maxval, step):
    """Inverse of ``_encode_plane``: the reconstruction from the quantised residual.

    Row by row, run by run of cells of one mode (the mode is read once per run, intra runs keep
    their left neighbour in a register); the runs of weighted-predictor cells go through _wp_row,
    whose state holds errors at those cells' samples only (zero elsewhere, see _wp_rows).
    """
    h, w = q.shape
    gw = (w + bw - 1) // bw
    rec = np.empty((h, w), dtype=np.int32)
    # errors of the weighted predictor's sub-predictors (0..3) and blend (4), per sample of the
    # last two rows (row parity first); unlike _wp_predict's state, W's and WW's errors are not
    # folded into the row above: _wp_row adds them itself
    err, wp_rows = _wp_state(modes, w)
    for y in range(h):
        by = y // bh
        _wp_start_errors(err, wp_rows, y, bh)
        # a row without weighted-predictor cells is one run; cx starts at 0 computed, not as a
        # literal, which numba would compile _decode_row_runs for a second time (cold start)
        cx = gw - gw
        while cx < gw:
            own = modes[by, cx] == INTRA_WP
            end = cx + 1
            while end < gw and (modes[by, end] == INTRA_WP) == own:
                end += 1
            if own:
                _wp_row(q, rec, err, y, cx * bw, min(w, end * bw), maxval, step)
            else:
                _decode_row_runs(q, t, edges, modes, rec, y, bh, bw, maxval, step, cx, end)
            cx = end
    return rec


@njit(cache=True, inline="always")
def _wp_weight_of(s, i):
    """_wp_weight for the summed error s of sub-predictor i."""
    if s < WP_TABLE_SIZE:
        return np.int64(WP_WEIGHT_TABLE[i, np.uint64(s)])
    shift = max(_floor_log2(s + 1) - 5, 0)
    return 4 + ((WP_WEIGHTS[i] * WP_DIV[s >> shift]) >> shift)


@njit(cache=True)
def _wp_row(q, rec, err, y, x0, x1, maxval, step):
    """The weighted predictor along row y from x0 to x1 (a run of INTRA_WP cells), exactly as
    _wp_predict / _wp_update would run it, reconstructing those samples from its prediction and
    their quantised residuals ``q`` (_wp_run)."""
    _wp_run(q[y], rec, err, y, x0, x1, maxval, step, WP_REBUILD)


#: What _wp_run does with each prediction (a constant of each caller's: its own compiled loop).
WP_REBUILD = 0  # rebuild the sample from its residual in row ``qr`` (the decoder)
WP_PREDICT = 1  # where the samples are known (lossless, the source): write the prediction to ``qr``
WP_QUANTISE = 2  # near-lossless encoding: ``qr`` holds the source samples, replaced by their q


@njit(cache=True, inline="always")
def _wp_run(qr, rec, err, y, x0, x1, maxval, step, use):
    """_wp_row's loop over samples x0..x1 of row y, rec's row y rebuilt (WP_REBUILD,
    WP_QUANTISE) or read (WP_PREDICT) as it goes; ``use`` says what it does with each prediction.

    _wp_predict's state at N holds N's error plus W's (added when W was coded), at NW plus WW's;
    here ``err`` holds plain errors and W's and WW's come from registers (c1, c2).
    """
    w = rec.shape[1]
    cur = y & 1
    pe = err[cur ^ 1]
    ce = err[cur]
    mid = np.int64((maxval + 1) >> 1)
    c1_0 = ce[0, x0 - 1] if x0 > 0 else np.int64(0)
    c1_1 = ce[1, x0 - 1] if x0 > 0 else np.int64(0)
    c1_2 = ce[2, x0 - 1] if x0 > 0 else np.int64(0)
    c1_3 = ce[3, x0 - 1] if x0 > 0 else np.int64(0)
    c2_0 = ce[0, x0 - 2] if x0 > 1 else np.int64(0)
    c2_1 = ce[1, x0 - 2] if x0 > 1 else np.int64(0)
    c2_2 = ce[2, x0 - 2] if x0 > 1 else np.int64(0)
    c2_3 = ce[3, x0 - 2] if x0 > 1 else np.int64(0)
    ew = ce[4, x0 - 1] if x0 > 0 else np.int64(0)
    # rows and error rows as 1-D views, read with unsigned indices: no negative-index wrap-around
    # arithmetic in the loop
    r0 = rec[y]
    r1 = rec[y - 1] if y > 0 else r0
    r2 = rec[y - 2] if y > 1 else r1
    p0 = pe[0]
    p1 = pe[1]
    p2 = pe[2]
    p3 = pe[3]
    p4 = pe[4]
    c_0 = ce[0]
    c_1 = ce[1]
    c_2 = ce[2]
    c_3 = ce[3]
    c_4 = ce[4]
    for x in range(x0, x1):
        u = np.uint64(x)
        nw = u - np.uint64(1) if x > 0 else u
        ne = u + np.uint64(1) if x + 1 < w else u
        if y > 1 and 0 < x < w - 1:
            vn = np.int64(r1[u])
            vw = np.int64(r0[nw])
            vnw = np.int64(r1[nw])
            vne = np.int64(r1[ne])
            vnn = np.int64(r2[u])
        elif y > 0:
            vn = np.int64(r1[u])
            vw = np.int64(r0[nw]) if x > 0 else vn
            vnw = np.int64(r1[nw]) if x > 0 else vw
            vne = np.int64(r1[ne]) if x + 1 < w else vn
            vnn = np.int64(r2[u]) if y > 1 else vn
        else:
            vw = np.int64(r0[nw]) if x > 0 else mid
            vn = vw
            vnw = vw
            vne = vw
            vnn = vw
        en = p4[u]
        enw = p4[nw]
        ene = p4[ne]
        n8 = vn << 3
        w8 = vw << 3
        ne8 = vne << 3
        s0 = w8 + ne8 - n8
        s1 = n8 - (((en + ew + ene) * WP_P1) >> 5)
        s2 = w8 - (((en + ew + enw) * WP_P2) >> 5)
        s3 = n8 - ((enw * WP_P3[0] + en * WP_P3[1] + ene * WP_P3[2]
                    + ((vnn - vn) << 3) * WP_P3[3] + ((vnw - vw) << 3) * WP_P3[4]) >> 5)
        last = x == w - 1  # NE is N itself: N's error (and W's with it) counts twice
        w0 = _wp_weight_of(p0[nw] + p0[u] + p0[ne] + c1_0 + c2_0 + (c1_0 if last else 0), 0)
        w1 = _wp_weight_of(p1[nw] + p1[u] + p1[ne] + c1_1 + c2_1 + (c1_1 if last else 0), 1)
        w2 = _wp_weight_of(p2[nw] + p2[u] + p2[ne] + c1_2 + c2_2 + (c1_2 if last else 0), 2)
        w3 = _wp_weight_of(p3[nw] + p3[u] + p3[ne] + c1_3 + c2_3 + (c1_3 if last else 0), 3)
        blend = _wp_blend(s0, s1, s2, s3, w0, w1, w2, w3)
        # the clamp where the errors disagree in sign, without a branch (it would be a coin toss)
        kept = min(max(blend, min(w8, min(ne8, n8))), max(w8, max(ne8, n8)))
        blend ^= (blend ^ kept) & -np.int64(((en ^ ew) | (en ^ enw)) <= 0)
        if use == WP_PREDICT:
            value = np.int64(r0[u])
            qr[u] = _wp_sample(blend, maxval)
        elif use == WP_QUANTISE:  # as _encode_plane quantises
            p = _wp_sample(blend, maxval)
            qi = (np.int64(qr[u]) - p + step // 2) // step
            qr[u] = qi
            value = _clamp(p + qi * step, 0, maxval)
            r0[u] = value
        else:
            value = _rebuild(_wp_sample(blend, maxval), np.int64(qr[u]), maxval, step)
            r0[u] = value
        v8 = value << 3
        ew = blend - v8
        c_4[u] = ew
        c2_0 = c1_0
        c2_1 = c1_1
        c2_2 = c1_2
        c2_3 = c1_3
        c1_0 = (abs(s0 - v8) + 3) >> 3
        c1_1 = (abs(s1 - v8) + 3) >> 3
        c1_2 = (abs(s2 - v8) + 3) >> 3
        c1_3 = (abs(s3 - v8) + 3) >> 3
        c_0[u] = c1_0
        c_1[u] = c1_1
        c_2[u] = c1_2
        c_3[u] = c1_3


@njit(cache=True)
def _decode_row_runs(q, t, edges, modes, rec, y, bh, bw, maxval, step, cx, gw):
    """Cells cx..gw-1 of row y run by run of cells of one mode (no weighted-predictor cells
    among them)."""
    w = q.shape[1]
    by = y // bh
    top = y - by * bh == 0
    while cx < gw:
        x0 = cx * bw
        mode = modes[by, cx]
        cx += 1
        if mode != INTER_MED:  # a run of cells of the same mode
            while cx < gw and modes[by, cx] == mode:
                cx += 1
        x1 = min(w, cx * bw)
        if mode == INTRA:
            x = x0
            if y == 0:
                left = np.int64(rec[0, x0 - 1]) if x0 > 0 else np.int64((maxval + 1) >> 1)
                for x in range(x0, x1):
                    left = _rebuild(left, np.int64(q[0, x]), maxval, step)
                    rec[0, x] = left
                continue
            if x0 == 0:
                left = _rebuild(np.int64(rec[y - 1, 0]), np.int64(q[y, 0]), maxval, step)
                rec[y, 0] = left
                x = 1
            else:
                left = np.int64(rec[y, x0 - 1])
            r0 = rec[y]  # row views, unsigned indices (x >= 1 here): no wrap-around arithmetic
            r1 = rec[y - 1]
            qr = q[y]
            for x in range(x, x1):
                u = np.uint64(x)
                left = _rebuild(_med_select(left, np.int64(r1[u]), np.int64(r1[u - np.uint64(1)])),
                                np.int64(qr[u]), maxval, step)
                r0[u] = left
        elif mode == INTER_MED and y > 0 and x0 > 0:
            # the temporal residual's MED from the cell's own samples: edges on its border
            x = x0
            tu = np.int64(edges[1, y, x] if top else t[y - 1, x])
            d = _med_select(np.int64(rec[y, x - 1]) - edges[0, y, x], np.int64(rec[y - 1, x]) - tu,
                            np.int64(rec[y - 1, x - 1]) - edges[2, y, x])
            left = _rebuild(min(max(np.int64(t[y, x]) + d, 0), maxval), np.int64(q[y, x]), maxval, step)
            rec[y, x] = left
            if top:
                for x in range(x0 + 1, x1):
                    d = _med_select(left - t[y, x - 1], np.int64(rec[y - 1, x]) - edges[1, y, x],
                                    np.int64(rec[y - 1, x - 1]) - edges[2, y, x])
                    left = _rebuild(min(max(np.int64(t[y, x]) + d, 0), maxval), np.int64(q[y, x]),
                                    maxval, step)
                    rec[y, x] = left
            else:
                for x in range(x0 + 1, x1):
                    d = _med_select(left - t[y, x - 1], np.int64(rec[y - 1, x]) - t[y - 1, x],
                                    np.int64(rec[y - 1, x - 1]) - t[y - 1, x - 1])
                    left = _rebuild(min(max(np.int64(t[y, x]) + d, 0), maxval), np.int64(q[y, x]),
                                    maxval, step)
                    rec[y, x] = left
        elif mode == INTER_MED:
            for x in range(x0, x1):
                p = _predict_at(rec, t, edges, y, x, mode, x == x0, top, maxval)
                rec[y, x] = _rebuild(p, np.int64(q[y, x]), maxval, step)
        else:
            r0 = rec[y]
            tr = t[y]
            qr = q[y]
            for x in range(x0, x1):
                u = np.uint64(x)
                r0[u] = _rebuild(np.int64(tr[u]), np.int64(qr[u]), maxval, step)


#: Warp parameters are in 1/2^WARP_SHIFT quarter samples of vector change per luma sample.
WARP_SHIFT = 8
TRANSLATION = 0
SIMILARITY = 1
AFFINE = 2
NUM_FAMILIES = 3


@njit(cache=True, inline="always")
def warp_vector(base_y, base_x, p0, p1, p2, p3, ddy, ddx):
    """The vector at offset (ddy, ddx) luma samples from a leaf's centre, for the leaf's base
    vector and warp parameters: mvx = base_x + (p0 ddx + p1 ddy) / 2^W, mvy = base_y + (p2 ddx +
    p3 ddy) / 2^W, rounded. Similarity has p0 = p3 (zoom) and p2 = -p1 (rotation)."""
    half = 1 << (WARP_SHIFT - 1)
    vx = base_x + ((p0 * ddx + p1 * ddy + half) >> WARP_SHIFT)
    vy = base_y + ((p2 * ddx + p3 * ddy + half) >> WARP_SHIFT)
    return vy, vx


@njit(cache=True, inline="always")
def cell_offset(c, leaf_c, leaf_cells, cell):
    """Offset in luma samples from a leaf's centre to the centre of its cell c (cell units)."""
    return (c - leaf_c) * cell + cell // 2 - leaf_cells * cell // 2
