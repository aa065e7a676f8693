"""Deterministic integer interpolation of reference planes (the sampler of the predictor family).

``upsample_h264`` builds the quarter-sample plane of H.264's luma interpolation (8.4.2.2.1 of the
standard: 6-tap (1, -5, 20, 20, -5, 1) half samples, the centre from unrounded intermediates,
quarter samples as rounded averages). Footage that was ever decoded from H.264 carries exactly
this filter in its pixels, which is why it predicts such footage better than bilinear sampling.
The plane is padded by ``pad`` samples of edge replication on every side, so motion vectors that
leave the frame read replicated edges.

``upsample_h264`` is the definition: the codec never builds the whole interleaved plane.
``h264_block`` computes the samples of just the blocks a chart uses (motion compensation, both
directions), and motion.upsample_phases the plane split by phase for the encoder's search; the
tests hold both to ``upsample_h264``.
"""

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _clip(v, hi):
    return 0 if v < 0 else (hi if v > hi else v)


@njit(cache=True)
def _tap6(a, b, c, d, e, f):
    return a - 5 * b + 20 * c + 20 * d - 5 * e + f


@njit(cache=True)
def upsample_h264(ref, pad, maxval, up):
    """Write the quarter-sample plane of ``ref`` into ``up``, shape (4 (H + 2 pad), 4 (W + 2 pad))
    (any integer dtype that holds maxval)."""
    h, w = ref.shape
    hp = h + 2 * pad
    wp = w + 2 * pad
    g = np.empty((hp, wp), dtype=np.int32)
    for y in range(hp):
        sy = min(max(y - pad, 0), h - 1)
        for x in range(wp):
            g[y, x] = ref[sy, min(max(x - pad, 0), w - 1)]
    b1 = np.empty((hp, wp), dtype=np.int32)  # horizontal half sample at (y, x + 1/2), unrounded
    h1 = np.empty((hp, wp), dtype=np.int32)  # vertical half sample at (y + 1/2, x), unrounded
    for y in range(hp):
        ym2 = max(y - 2, 0); ym1 = max(y - 1, 0); yp1 = min(y + 1, hp - 1)
        yp2 = min(y + 2, hp - 1); yp3 = min(y + 3, hp - 1)
        for x in range(wp):
            xm2 = max(x - 2, 0); xm1 = max(x - 1, 0); xp1 = min(x + 1, wp - 1)
            xp2 = min(x + 2, wp - 1); xp3 = min(x + 3, wp - 1)
            b1[y, x] = _tap6(g[y, xm2], g[y, xm1], g[y, x], g[y, xp1], g[y, xp2], g[y, xp3])
            h1[y, x] = _tap6(g[ym2, x], g[ym1, x], g[y, x], g[yp1, x], g[yp2, x], g[yp3, x])
    bh = np.empty((hp, wp), dtype=np.int32)
    hh = np.empty((hp, wp), dtype=np.int32)
    jj = np.empty((hp, wp), dtype=np.int32)
    for y in range(hp):
        ym2 = max(y - 2, 0); ym1 = max(y - 1, 0); yp1 = min(y + 1, hp - 1)
        yp2 = min(y + 2, hp - 1); yp3 = min(y + 3, hp - 1)
        for x in range(wp):
            bh[y, x] = _clip((b1[y, x] + 16) >> 5, maxval)
            hh[y, x] = _clip((h1[y, x] + 16) >> 5, maxval)
            j1 = _tap6(b1[ym2, x], b1[ym1, x], b1[y, x], b1[yp1, x], b1[yp2, x], b1[yp3, x])
            jj[y, x] = _clip((j1 + 512) >> 10, maxval)
    for y in range(hp):
        y1 = min(y + 1, hp - 1)
        for x in range(wp):
            x1 = min(x + 1, wp - 1)
            G = g[y, x]; H = g[y, x1]; M = g[y1, x]
            b = bh[y, x]; hv = hh[y, x]; j = jj[y, x]
            m = hh[y, x1]; s = bh[y1, x]
            Y = 4 * y
            X = 4 * x
            up[Y, X] = G
            up[Y, X + 1] = (G + b + 1) >> 1
            up[Y, X + 2] = b
            up[Y, X + 3] = (H + b + 1) >> 1
            up[Y + 1, X] = (G + hv + 1) >> 1
            up[Y + 1, X + 1] = (b + hv + 1) >> 1
            up[Y + 1, X + 2] = (b + j + 1) >> 1
            up[Y + 1, X + 3] = (b + m + 1) >> 1
            up[Y + 2, X] = hv
            up[Y + 2, X + 1] = (hv + j + 1) >> 1
            up[Y + 2, X + 2] = j
            up[Y + 2, X + 3] = (j + m + 1) >> 1
            up[Y + 3, X] = (M + hv + 1) >> 1
            up[Y + 3, X + 1] = (hv + s + 1) >> 1
            up[Y + 3, X + 2] = (j + s + 1) >> 1
            up[Y + 3, X + 3] = (m + s + 1) >> 1


@njit(cache=True)
def _h264_window(ref, gy0, gx0, fy, fx, nh, nw, maxval, wg, b1, h1, out, oy, ox):
    """out[oy + a, ox + b] = the quarter sample (fy, fx) after ref sample (gy0 + a, gx0 + b), for
    a < nh, b < nw: upsample_h264's arithmetic over edge-extended ``ref`` (every read clamped to
    the plane, which is what the padded plane's own clamps amount to), for just these samples.
    wg, b1, h1 are work buffers of at least (nh + 6, nw + 6), (nh + 6, nw) and (nh, nw + 1)."""
    h, w = ref.shape
    for i in range(nh + 6):  # wg[i, j]: ref (gy0 - 2 + i, gx0 - 2 + j)
        sy = min(max(gy0 - 2 + i, 0), h - 1)
        for j in range(nw + 6):
            wg[i, j] = ref[sy, min(max(gx0 - 2 + j, 0), w - 1)]
    if fx != 0:  # b1[i, b]: unrounded horizontal half sample right of wg[i, b + 2]
        for i in range(nh + 6):
            for b in range(nw):
                b1[i, b] = _tap6(wg[i, b], wg[i, b + 1], wg[i, b + 2], wg[i, b + 3], wg[i, b + 4],
                                 wg[i, b + 5])
    if fy != 0:  # h1[a, b]: unrounded vertical half sample below wg[a + 2, b + 2]
        for a in range(nh):
            for b in range(nw + 1):
                h1[a, b] = _tap6(wg[a, b + 2], wg[a + 1, b + 2], wg[a + 2, b + 2], wg[a + 3, b + 2],
                                 wg[a + 4, b + 2], wg[a + 5, b + 2])
    for a in range(nh):
        for b in range(nw):
            G = wg[a + 2, b + 2]
            if fy == 0 and fx == 0:
                v = G
            elif fy == 0:
                bb = _clip((b1[a + 2, b] + 16) >> 5, maxval)
                v = (G + bb + 1) >> 1 if fx == 1 else (bb if fx == 2 else (wg[a + 2, b + 3] + bb + 1) >> 1)
            elif fx == 0:
                hv = _clip((h1[a, b] + 16) >> 5, maxval)
                v = (G + hv + 1) >> 1 if fy == 1 else (hv if fy == 2 else (wg[a + 3, b + 2] + hv + 1) >> 1)
            else:
                if fx == 2 or fy == 2:
                    j1 = _tap6(np.int64(b1[a, b]), b1[a + 1, b], b1[a + 2, b], b1[a + 3, b],
                               b1[a + 4, b], b1[a + 5, b])
                    jj = _clip((j1 + 512) >> 10, maxval)
                else:
                    jj = 0
                bb = _clip((b1[a + 2, b] + 16) >> 5, maxval)
                s = _clip((b1[a + 3, b] + 16) >> 5, maxval)
                hv = _clip((h1[a, b] + 16) >> 5, maxval) if fx != 2 else 0
                m = _clip((h1[a, b + 1] + 16) >> 5, maxval) if fx != 2 else 0
                if fy == 1:
                    v = (bb + hv + 1) >> 1 if fx == 1 else ((bb + jj + 1) >> 1 if fx == 2 else (bb + m + 1) >> 1)
                elif fy == 2:
                    v = (hv + jj + 1) >> 1 if fx == 1 else (jj if fx == 2 else (jj + m + 1) >> 1)
                else:
                    v = (hv + s + 1) >> 1 if fx == 1 else ((jj + s + 1) >> 1 if fx == 2 else (m + s + 1) >> 1)
            out[oy + a, ox + b] = v


@njit(cache=True, inline="always")
def _half(v, maxval):
    """A rounded, clipped half sample from its unrounded 6-tap sum."""
    return _clip((v + 16) >> 5, maxval)


@njit(cache=True, inline="always")
def _six_rows(src, y):
    """Rows y .. y + 5 of ``src``: the six taps of a vertical half sample."""
    return src[y], src[y + 1], src[y + 2], src[y + 3], src[y + 4], src[y + 5]


@njit(cache=True)
def _h264_inside(src, sy0, sx0, fy, fx, nh, nw, maxval, b1, out):
    """_h264_window for a window that lies inside the plane, read straight from it: out[a, b] =
    the quarter sample (fy, fx) after src (sy0 + 2 + a, sx0 + 2 + b), a < nh, b < nw (src rows
    sy0 .. sy0 + nh + 5 and columns sx0 .. sx0 + nw + 5 exist). The same integers as
    _h264_window, one loop per sub-sample position, and only the half samples that position
    needs (b1: a work buffer of at least (nh + 6, nw), for the centre half samples). Columns are
    read with unsigned indices (sx0 >= 0): no negative-index wrap-around, so the loops vectorise."""
    one = np.uint64(1)
    two = np.uint64(2)
    three = np.uint64(3)
    four = np.uint64(4)
    five = np.uint64(5)
    if fy == 0 or fx == 0:
        if fy == 0:  # horizontal half sample bb on row a + 2, averaged with G or its right neighbour
            near = two if fx == 1 else three
            for a in range(nh):
                r = src[sy0 + 2 + a]
                o = out[a]
                for b in range(nw):
                    x = np.uint64(sx0) + np.uint64(b)
                    bb = _half(_tap6(np.int64(r[x]), r[x + one], r[x + two], r[x + three], r[x + four],
                                     r[x + five]), maxval)
                    o[b] = bb if fx == 2 else (r[x + near] + bb + 1) >> 1
            return
        for a in range(nh):  # vertical half sample hv in column b + 2
            r0, r1, r2, r3, r4, r5 = _six_rows(src, sy0 + a)
            near = r2 if fy == 1 else r3
            o = out[a]
            for b in range(nw):
                x = np.uint64(sx0 + 2) + np.uint64(b)
                hv = _half(_tap6(np.int64(r0[x]), r1[x], r2[x], r3[x], r4[x], r5[x]), maxval)
                o[b] = hv if fy == 2 else (near[x] + hv + 1) >> 1
        return
    if fx != 2 and fy != 2:
        # the mean of a horizontal half sample (row a + 2, or a + 3 when fy == 3) and a vertical
        # one (column b + 2, or b + 3 when fx == 3)
        ry = 2 if fy == 1 else 3
        cx = two if fx == 1 else three
        for a in range(nh):
            rh = src[sy0 + a + ry]
            r0, r1, r2, r3, r4, r5 = _six_rows(src, sy0 + a)
            o = out[a]
            for b in range(nw):
                x = np.uint64(sx0) + np.uint64(b)
                bb = _half(_tap6(np.int64(rh[x]), rh[x + one], rh[x + two], rh[x + three], rh[x + four],
                                 rh[x + five]), maxval)
                xc = x + cx
                hv = _half(_tap6(np.int64(r0[xc]), r1[xc], r2[xc], r3[xc], r4[xc], r5[xc]), maxval)
                o[b] = (bb + hv + 1) >> 1
        return
    # the centre half sample j (from the unrounded horizontal ones of six rows), alone or averaged
    for i in range(nh + 6):
        r = src[sy0 + i]
        o = b1[i]
        for b in range(nw):
            x = np.uint64(sx0) + np.uint64(b)
            o[b] = _tap6(r[x], r[x + one], r[x + two], r[x + three], r[x + four], r[x + five])
    for a in range(nh):
        r0, r1, r2, r3, r4, r5 = _six_rows(src, sy0 + a)
        o = out[a]
        for b in range(nw):
            j1 = _tap6(np.int64(b1[a, b]), b1[a + 1, b], b1[a + 2, b], b1[a + 3, b], b1[a + 4, b],
                       b1[a + 5, b])
            jj = _clip((j1 + 512) >> 10, maxval)
            if fy == 2 and fx == 2:
                o[b] = jj
            elif fx == 2:  # fy 1 or 3: with the horizontal half sample above or below
                o[b] = (jj + _half(b1[a + 2 + (fy >> 1), b], maxval) + 1) >> 1
            else:  # fy == 2, fx 1 or 3: with the vertical half sample left or right
                x = np.uint64(sx0 + 2 + (fx >> 1)) + np.uint64(b)
                hv = _half(_tap6(np.int64(r0[x]), r1[x], r2[x], r3[x], r4[x], r5[x]), maxval)
                o[b] = (jj + hv + 1) >> 1


@njit(cache=True)
def h264_block(ref, vy, vx, y0, y1, x0, x1, pad, maxval, wg, b1, h1, out):
    """out[0:y1-y0, 0:x1-x0] = what upsample_h264's plane (padded by ``pad``) holds at
    (4 (y + pad) + vy, 4 (x + pad) + vx), clamped into it, for the block's samples (y, x) --
    without building that plane: the decoder samples only the blocks its chart uses. Work
    buffers as _h264_window's, for the block's size."""
    h, w = ref.shape
    hq = 4 * (h + 2 * pad)
    wq = 4 * (w + 2 * pad)
    uy0 = 4 * (y0 + pad) + vy
    ux0 = 4 * (x0 + pad) + vx
    if uy0 >= 0 and 4 * (y1 - 1 + pad) + vy < hq and ux0 >= 0 and 4 * (x1 - 1 + pad) + vx < wq:
        if (uy0 | ux0) & 3 == 0:  # whole-sample vector (most blocks): a copy, edges extended
            gy0 = (uy0 >> 2) - pad
            gx0 = (ux0 >> 2) - pad
            inside_x = gx0 >= 0 and gx0 + x1 - x0 <= w
            for a in range(y1 - y0):
                sy = min(max(gy0 + a, 0), h - 1)
                if inside_x:
                    for b in range(x1 - x0):
                        out[a, b] = ref[sy, gx0 + b]
                else:
                    for b in range(x1 - x0):
                        out[a, b] = ref[sy, min(max(gx0 + b, 0), w - 1)]
            return
        gy0 = (uy0 >> 2) - pad
        gx0 = (ux0 >> 2) - pad
        if gy0 >= 2 and gy0 + y1 - y0 + 3 < h and gx0 >= 2 and gx0 + x1 - x0 + 3 < w:
            _h264_inside(ref, gy0 - 2, gx0 - 2, uy0 & 3, ux0 & 3, y1 - y0, x1 - x0, maxval, b1, out)
        else:
            _h264_window(ref, gy0, gx0, uy0 & 3, ux0 & 3, y1 - y0, x1 - x0, maxval, wg, b1, h1, out,
                         np.int64(0), np.int64(0))  # int64, not literals: one compiled _h264_window
        return
    for y in range(y0, y1):  # the block reaches past the quarter plane: clamp sample by sample
        uy = min(max(4 * (y + pad) + vy, 0), hq - 1)
        for x in range(x0, x1):
            ux = min(max(4 * (x + pad) + vx, 0), wq - 1)
            _h264_window(ref, (uy >> 2) - pad, (ux >> 2) - pad, uy & 3, ux & 3, np.int64(1), np.int64(1), maxval,
                         wg, b1, h1, out, y - y0, x - x0)
