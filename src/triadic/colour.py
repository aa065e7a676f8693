"""Reversible colour transforms (integer, lossless): YCoCg-R for the rgb family.

Co and Cg span [-(2^b - 1), 2^b - 1]; they are stored offset by 2^b - 1, so every plane the
codec sees is non-negative and needs at most b + 1 bits.
"""

from __future__ import annotations

import numpy as np


def plane_maxima(colour: str, bit_depth: int, planes: int) -> list[int]:
    """Largest sample value of each plane the codec sees after the transform."""
    top = (1 << bit_depth) - 1
    if colour == "ycocg-r":
        return [top, 2 * top, 2 * top]
    return [top] * planes


def forward(colour: str, bit_depth: int, planes: list[np.ndarray]) -> list[np.ndarray]:
    """Source planes (R, G, B for rgb) → codec planes (int32)."""
    planes = [np.asarray(p, dtype=np.int32) for p in planes]
    if colour == "none":
        return planes
    r, g, b = planes
    off = (1 << bit_depth) - 1
    co = r - b
    t = b + (co >> 1)
    cg = g - t
    y = t + (cg >> 1)
    return [y, co + off, cg + off]


def inverse(colour: str, bit_depth: int, planes: list[np.ndarray], dtype: np.dtype) -> list[np.ndarray]:
    """Codec planes → source planes in ``dtype``."""
    if colour == "none":
        return [np.ascontiguousarray(p, dtype=dtype) for p in planes]
    off = (1 << bit_depth) - 1
    y, co, cg = planes[0], planes[1] - off, planes[2] - off
    t = y - (cg >> 1)
    g = cg + t
    b = t - (co >> 1)
    r = b + co
    top = (1 << bit_depth) - 1
    return [np.ascontiguousarray(np.clip(c, 0, top), dtype=dtype) for c in (r, g, b)]
