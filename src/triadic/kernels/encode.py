"""Encoder-only kernels of the residual path: the lossless residual of a plane, its ternary digits,
and a binary pass's probabilities with its ideal code length.

Each computes exactly what the shared code computes (kernels/predict.py's ``_encode_plane``,
kernels/ternary.py's ``_digits``, the stripe loop of planes.code_bits over kernels/context.py's
counts), with what only the encoder knows put to use: in lossless mode the reconstruction is the
source, so a plane's prediction needs no sample-by-sample loop outside weighted-predictor cells;
the encoder knows every symbol of a pass in advance, so one call adapts the counts stripe by
stripe and returns the whole pass's probabilities. The decoder never imports this module.
"""

import math

import numpy as np
from numba import njit

from .context import count_update
from .predict import (INTER, INTRA, INTRA_WP, _med_select, _predict_at, _wp_predict, _wp_rows, _wp_sample,
                      _wp_start_row, _wp_update)

#: log2(n) for the integers n that count probabilities have as numerator and denominator.
_LOG2_SIZE = 1 << 16
LOG2 = np.log2(np.maximum(np.arange(_LOG2_SIZE, dtype=np.float64), 1.0))


@njit(cache=True, inline="always")
def _log2(table, n):
    return table[n] if n < table.size else math.log2(n)


@njit(cache=True)
def pass_probabilities(counts, ctx, values, limit, size, log2):
    """P(bit = 1) of every symbol of a binary pass coded in stripes of ``size`` symbols, the
    counts updated after each stripe (context.count_probabilities / count_update, stripe by
    stripe: the same numbers), and the pass's ideal code length in bits."""
    n = ctx.size
    p = np.empty(n, dtype=np.float64)
    bits = 0.0
    # flat unsigned indices into the (contexts, 2) counts (as context.count_update reads them):
    # no wraparound test per read
    table = counts.ravel()
    one = np.uint64(1)
    two = np.uint64(2)
    for start in range(0, n, size):
        end = min(n, start + size)
        for i in range(start, end):
            ui = np.uint64(i)
            c = np.uint64(ctx[ui]) * two
            n0 = np.int64(table[c])
            n1 = np.int64(table[c + one])
            den = 2 * (n0 + n1) + 2
            p[ui] = (2 * n1 + 1) / den
            bits += _log2(log2, den) - _log2(log2, 2 * (n1 if values[ui] != 0 else n0) + 1)
        count_update(counts, ctx[start:end], values[start:end], limit)
    return p, bits


@njit(cache=True)
def digits(values, num_digits):
    """ternary._digits: (num_digits, values.size) int8, plane k holding d_k (the caller
    guarantees |v| <= (3^num_digits - 1) / 2). Offset to u = v + (3^K - 1) / 2 >= 0, whose plain
    base-3 digits minus one are the balanced ones: unsigned divisions by 3, no floor modulo; plane
    by plane over all values (one division per value and plane, a loop that vectorises)."""
    flat = values.ravel()
    n = flat.size
    out = np.empty((num_digits, n), dtype=np.int8)
    offset = 0
    for k in range(num_digits):
        offset = 3 * offset + 1
    u = np.empty(n, dtype=np.uint32)
    for i in range(n):
        u[i] = np.uint32(np.int64(flat[i]) + offset)
    three = np.uint32(3)
    for k in range(num_digits):
        row = out[k]
        for i in range(n):
            a = u[i]
            nxt = a // three
            row[i] = np.int8(a - three * nxt) - np.int8(1)
            u[i] = nxt
    return out


@njit(cache=True, inline="always")
def _wrapped(r, wrap, modulus):
    """Residual r reduced modulo the sample range into [-m/2, m/2) (_encode_plane's step 1)."""
    v = r + wrap
    if v >= modulus:
        v -= modulus
    elif v < 0:
        v += modulus
    return v - wrap


@njit(cache=True)
def residual_lossless(src, t, edges, modes, bh, bw, maxval):
    """predict._encode_plane's q with step 1, for an int32 ``src`` (its reconstruction).

    Rows go run by run of cells of one mode, with the prediction read from the source. The
    weighted predictor's state is kept at its own samples only (predict._wp_rows), so its runs go
    sample by sample and every other run as a plain loop: INTER and MED runs with unsigned indices
    (they vectorise), INTER_MED runs below their cells' top rows with only each cell's first sample
    through predict._predict_at (the others' neighbours are all inside the cell: T itself)."""
    h, w = src.shape
    q = np.empty((h, w), dtype=np.int32)
    modulus = np.int64(maxval) + 1
    wrap = modulus // 2
    state = np.zeros((5, 2, w + 2), dtype=np.int64)
    sub = np.empty(4, dtype=np.int64)
    wp_rows = _wp_rows(modes)
    gw = (w + bw - 1) // bw
    for y in range(h):
        by = y // bh
        top = y % bh == 0
        _wp_start_row(state, wp_rows, y, bh)
        cx = 0
        while cx < gw:
            x0 = cx * bw
            mode = modes[by, cx]
            cx += 1
            while cx < gw and modes[by, cx] == mode:
                cx += 1
            x1 = min(w, cx * bw)
            if mode == INTER:
                qr = q[y]
                sr = src[y]
                tr = t[y]
                for x in range(x0, x1):  # unsigned indices: no wraparound test, the loop vectorises
                    ux = np.uint64(x)
                    qr[ux] = _wrapped(np.int64(sr[ux]) - np.int64(tr[ux]), wrap, modulus)
            elif mode == INTRA_WP:
                for x in range(x0, x1):
                    blend = _wp_predict(src, y, x, state, sub, maxval)
                    q[y, x] = _wrapped(np.int64(src[y, x]) - _wp_sample(blend, maxval), wrap, modulus)
                    _wp_update(state, sub, blend, y, x, src[y, x])
            elif mode == INTRA:
                x = x0
                if y == 0:
                    for x in range(x0, x1):
                        p = np.int64(src[0, x - 1]) if x > 0 else np.int64((maxval + 1) >> 1)
                        q[0, x] = _wrapped(np.int64(src[0, x]) - p, wrap, modulus)
                    continue
                if x0 == 0:
                    q[y, 0] = _wrapped(np.int64(src[y, 0]) - src[y - 1, 0], wrap, modulus)
                    x = 1
                qr = q[y]
                sr = src[y]
                su = src[y - 1]
                for x in range(x, x1):  # x >= 1: unsigned indices
                    ux = np.uint64(x)
                    ul = np.uint64(x - 1)
                    p = _med_select(np.int64(sr[ul]), np.int64(su[ux]), np.int64(su[ul]))
                    qr[ux] = _wrapped(np.int64(sr[ux]) - p, wrap, modulus)
            elif top or y == 0:  # INTER_MED: the cell edge decides where the neighbours' T comes from
                for x in range(x0, x1):
                    p = _predict_at(src, t, edges, y, x, mode, x % bw == 0, top, maxval)
                    q[y, x] = _wrapped(np.int64(src[y, x]) - p, wrap, modulus)
            else:  # INTER_MED below its cells' top rows: only each cell's first sample is on an edge
                qr = q[y]
                sr = src[y]
                su = src[y - 1]
                tr = t[y]
                tu = t[y - 1]
                for c0 in range(x0, x1, bw):
                    p = _predict_at(src, t, edges, y, c0, mode, True, False, maxval)
                    q[y, c0] = _wrapped(np.int64(src[y, c0]) - p, wrap, modulus)
                    for x in range(c0 + 1, min(c0 + bw, x1)):  # x >= 1, y >= 1
                        ux = np.uint64(x)
                        ul = np.uint64(x - 1)
                        tt = np.int64(tr[ux])
                        p = tt + _med_select(np.int64(sr[ul]) - np.int64(tr[ul]),
                                             np.int64(su[ux]) - np.int64(tu[ux]),
                                             np.int64(su[ul]) - np.int64(tu[ul]))
                        p = 0 if p < 0 else (maxval if p > maxval else p)
                        qr[ux] = _wrapped(np.int64(sr[ux]) - p, wrap, modulus)
    return q
