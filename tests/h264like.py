"""Synthetic footage built as an H.264 decoder builds its pictures: each frame after the first is
the previous one predicted at a quarter-sample vector per 16x16 macroblock (H.264's luma
interpolation) plus the inverse transform of quantised levels (4x4 or 8x8 blocks by macroblock).
Integer arithmetic only, so it is the same on every platform. Chroma moves by whole samples and
carries a little noise (no levels).
"""

import numpy as np

from triadic.kernels import transform
from triadic.kernels.interp import upsample_h264
from triadic.params import Frame

PAD = 16


def _texture(h, w, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = 96 + ((x * 5 + y * 3 + (x * y) // 7) % 48) + rng.integers(0, 12, (h, w))
    return base.astype(np.int64)  # 96..155: no clipping after prediction plus residual


def frames(h=48, w=64, count=4, qp=10, seed=7):
    """``count`` yuv420p frames of h x w (multiples of 16), levels at quantiser ``qp``."""
    rng = np.random.default_rng(seed)
    luma = _texture(h, w, seed)
    cb = _texture(h // 2, w // 2, seed + 1)
    cr = _texture(h // 2, w // 2, seed + 2)
    out = [Frame((luma.astype(np.uint8), cb.astype(np.uint8), cr.astype(np.uint8)), "yuv420p")]
    up = np.zeros((4 * (h + 2 * PAD), 4 * (w + 2 * PAD)), np.int32)
    lv = np.zeros(64, np.int64)
    res = np.zeros(64, np.int64)
    for _ in range(1, count):
        upsample_h264(luma.astype(np.int32), PAD, 255, up)
        nxt = np.empty_like(luma)
        for my in range(0, h, 16):
            for mx in range(0, w, 16):
                vy, vx = (int(v) for v in rng.integers(-6, 7, 2))
                ys = 4 * (np.arange(my, my + 16) + PAD)[:, None] + vy
                xs = 4 * (np.arange(mx, mx + 16) + PAD)[None, :] + vx
                pred = up[ys, xs].astype(np.int64)
                size = 8 if rng.random() < 0.5 else 4
                for by in range(0, 16, size):
                    for bx in range(0, 16, size):
                        n = size * size
                        lv[:n] = rng.integers(-3, 4, n) * (rng.random(n) < 0.35)
                        (transform.inverse4 if size == 4 else transform.inverse8)(lv[:n], qp, res[:n])
                        pred[by:by + size, bx:bx + size] += res[:n].reshape(size, size)
                nxt[my:my + 16, mx:mx + 16] = pred
        luma = np.clip(nxt, 0, 255)
        cb = np.clip(np.roll(cb, 1, axis=1) + rng.integers(-1, 2, cb.shape), 0, 255)
        cr = np.clip(np.roll(cr, -1, axis=0) + rng.integers(-1, 2, cr.shape), 0, 255)
        out.append(Frame((luma.astype(np.uint8), cb.astype(np.uint8), cr.astype(np.uint8)), "yuv420p"))
    return out

