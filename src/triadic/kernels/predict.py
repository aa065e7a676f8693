"""Causal prediction of one plane, shared by encoder and decoder (FFV1's predict() idea).

Per block a mode:
  INTRA     MED / LOCO-I over the already reconstructed part of this frame;
  INTER     the reference plane sampled at a motion vector (bilinear at chroma sub-pel);
  INTER_MED the inter prediction plus a MED prediction of the temporal residual from the
            causal neighbours (corrects lighting changes and smooth motion mismatch).
Motion vectors are in luma integer pels; a subsampled plane sees them at 1/2^shift precision.

The encoder kernel quantises the residual in the loop (step 3^j, j dropped ternary planes) and
reconstructs as it goes, so the decoder, which sees only the quantised residual, rebuilds
exactly the same samples.
"""

import numpy as np
from numba import njit

INTRA = 0
INTER = 1
INTER_MED = 2
NUM_MODES = 3


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


@njit(cache=True)
def _sample(ref, y, x, mvy, mvx, sy, sx):
    """ref at (y, x) displaced by (mvy / 2^sy, mvx / 2^sx), bilinear, edges extended."""
    h, w = ref.shape
    iy = y + (mvy >> sy)
    ix = x + (mvx >> sx)
    fy = mvy & ((1 << sy) - 1)
    fx = mvx & ((1 << sx) - 1)
    y0 = _clamp(iy, 0, h - 1)
    x0 = _clamp(ix, 0, w - 1)
    if fy == 0 and fx == 0:
        return ref[y0, x0]
    y1 = _clamp(iy + 1, 0, h - 1)
    x1 = _clamp(ix + 1, 0, w - 1)
    wy = 1 << sy
    wx = 1 << sx
    acc = ((wy - fy) * ((wx - fx) * ref[y0, x0] + fx * ref[y0, x1])
           + fy * ((wx - fx) * ref[y1, x0] + fx * ref[y1, x1]))
    shift = sy + sx
    return (acc + (1 << (shift - 1))) >> shift


@njit(cache=True)
def _predict_at(rec, ref, y, x, mode, mvy, mvx, sy, sx, maxval):
    """Prediction of sample (y, x) from reconstructed causal neighbours and the reference."""
    if mode == INTRA:
        if y == 0:
            return rec[0, x - 1] if x > 0 else (maxval + 1) >> 1
        if x == 0:
            return rec[y - 1, 0]
        return _med(rec[y, x - 1], rec[y - 1, x], rec[y - 1, x - 1])
    t = _sample(ref, y, x, mvy, mvx, sy, sx)
    if mode == INTER_MED:
        dl = rec[y, x - 1] - _sample(ref, y, x - 1, mvy, mvx, sy, sx) if x > 0 else 0
        du = rec[y - 1, x] - _sample(ref, y - 1, x, mvy, mvx, sy, sx) if y > 0 else 0
        if x > 0 and y > 0:
            dul = rec[y - 1, x - 1] - _sample(ref, y - 1, x - 1, mvy, mvx, sy, sx)
            t += _med(dl, du, dul)
        else:
            t += dl + du
        t = _clamp(t, 0, maxval)
    return t


@njit(cache=True)
def _encode_plane(src, ref, modes, mvy, mvx, bh, bw, sy, sx, maxval, step):
    """Quantised residual q (int32) and reconstruction (int32) of ``src``.

    q = round(r / step) to the nearest multiple (step odd), reconstruction clamped to
    [0, maxval]; with step == 1 this is lossless, the reconstruction equals ``src`` and the
    residual is reduced modulo maxval + 1 into [-(maxval+1)/2, (maxval+1)/2) (as JPEG-LS does:
    the decoder knows the sample range, so wrap-around costs nothing and noise stays b bits).
    """
    h, w = src.shape
    q = np.empty((h, w), dtype=np.int32)
    rec = np.empty((h, w), dtype=np.int32)
    half = step // 2
    modulus = maxval + 1
    wrap = modulus // 2
    for y in range(h):
        by = y // bh
        for x in range(w):
            bx = x // bw
            p = _predict_at(rec, ref, y, x, modes[by, bx], mvy[by, bx], mvx[by, bx], sy, sx, maxval)
            r = src[y, x] - p
            if step == 1:
                q[y, x] = (r + wrap) % modulus - wrap
                rec[y, x] = src[y, x]
            else:
                qi = (r + half) // step
                q[y, x] = qi
                rec[y, x] = _clamp(p + qi * step, 0, maxval)
    return q, rec


@njit(cache=True)
def _decode_plane(q, ref, modes, mvy, mvx, bh, bw, sy, sx, maxval, step):
    """Inverse of ``_encode_plane``: the reconstruction from the quantised residual."""
    h, w = q.shape
    rec = np.empty((h, w), dtype=np.int32)
    modulus = maxval + 1
    for y in range(h):
        by = y // bh
        for x in range(w):
            bx = x // bw
            p = _predict_at(rec, ref, y, x, modes[by, bx], mvy[by, bx], mvx[by, bx], sy, sx, maxval)
            if step == 1:
                rec[y, x] = (p + q[y, x]) % modulus
            else:
                rec[y, x] = _clamp(p + q[y, x] * step, 0, maxval)
    return rec
