"""Balanced-ternary digits of integer residuals, and the fold into magnitude and sign.

A residual r has digits d_k in {-1, 0, +1} with r = sum_k d_k 3^k; K digits hold exactly the
integers with |r| <= (3^K - 1) / 2.
"""

import numpy as np
from numba import njit

#: 3^k for k = 0..20 (int64); 3^20 > 2^31, enough for any residual triadic makes.
POW3 = np.array([3**k for k in range(21)], dtype=np.int64)


@njit(cache=True)
def _num_digits(max_abs):
    """Smallest K with max_abs <= (3^K - 1) / 2 (0 for max_abs == 0)."""
    k = 0
    reach = 0
    while reach < max_abs:
        reach = 3 * reach + 1
        k += 1
    return k


@njit(cache=True)
def _digits(values, num_digits):
    """(num_digits, *values.shape) int8 digits, plane k holding d_k. Caller guarantees the range."""
    flat = values.ravel()
    out = np.zeros((num_digits, flat.size), dtype=np.int8)
    for i in range(flat.size):
        r = np.int64(flat[i])
        for k in range(num_digits):
            d = (r + 1) % 3 - 1  # Python-style modulo: d in {-1, 0, 1}
            out[k, i] = d
            r = (r - d) // 3
    return out


@njit(cache=True)
def _undigits(digits):
    """Inverse of ``_digits``: sum_k d_k 3^k, as int32, over flattened positions."""
    num_digits, n = digits.shape
    out = np.zeros(n, dtype=np.int32)
    for i in range(n):
        r = np.int64(0)
        for k in range(num_digits - 1, -1, -1):
            r = 3 * r + digits[k, i]
        out[i] = r
    return out
