"""Deterministic integer interpolation of reference planes (the sampler of the predictor family).

``upsample_h264`` builds the quarter-sample plane of H.264's luma interpolation (8.4.2.2.1 of the
standard: 6-tap (1, -5, 20, 20, -5, 1) half samples, the centre from unrounded intermediates,
quarter samples as rounded averages). Footage that was ever decoded from H.264 carries exactly
this filter in its pixels, which is why it predicts such footage better than bilinear sampling.
The plane is padded by ``pad`` samples of edge replication on every side, so motion vectors that
leave the frame read replicated edges.
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
