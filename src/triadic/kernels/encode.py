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

from .triples import _products

from .context import (KBLOCK, PHASES, apply_signs, block_contexts, count_update, magnitude_contexts,
                      plane_contexts, sign_contexts, symbol_update)
from .predict import (INTER, INTRA, INTRA_WP, WP_PREDICT, WP_QUANTISE, _med_select, _predict_at, _wp_run,
                      _wp_start_errors, _wp_state)

#: log2(n) for the integers n that count probabilities have as numerator and denominator.
_LOG2_SIZE = 1 << 16
LOG2 = np.log2(np.maximum(np.arange(_LOG2_SIZE, dtype=np.float64), 1.0))


@njit(cache=True, inline="always")
def _log2(table, n):
    return table[n] if n < table.size else math.log2(n)


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def symbol_pass_probabilities(counts, ctx, values, limit, size, alphabet):
    """The categorical counterpart of pass_probabilities: per symbol of a pass coded in stripes
    of ``size`` symbols, the unnormalised probabilities 2 n + 1 of the first ``alphabet`` symbols
    of its context's counts (context.symbol_probabilities), the counts updated after each stripe
    (context.symbol_update); and the pass's ideal code length in bits."""
    n = ctx.size
    probs = np.empty((n, alphabet), dtype=np.float64)
    bits = 0.0
    for start in range(0, n, size):
        end = min(n, start + size)
        for i in range(start, end):
            c = ctx[i]
            total = 0.0
            for a in range(alphabet):
                p = 2.0 * counts[c, a] + 1.0
                probs[i, a] = p
                total += p
            bits += math.log2(total) - math.log2(probs[i, values[i]])
        symbol_update(counts, ctx[start:end], values[start:end], limit)
    return probs, bits


@njit(cache=True)
def _stripe(n, min_stripe, stripes):
    """model.stripe_size: symbols per stripe of a pass of n symbols."""
    return max(min_stripe, (n + stripes - 1) // stripes)


@njit(cache=True)
def _triples(n, unit):
    """triples.rows: the triple rows of n decisions cut into units of ``unit``."""
    full = n // unit
    rest = n - full * unit
    return full * ((unit + 2) // 3) + (rest + 2) // 3


@njit(cache=True)
def _room(symbols, table, row, need):
    """``symbols`` and ``table`` with room for ``need`` more rows after ``row`` (grown, their first
    ``row`` rows copied, when they have not)."""
    if row + need <= symbols.size:
        return symbols, table
    size = max(2 * symbols.size, row + need)
    grown_s = np.empty(size, dtype=symbols.dtype)
    grown_t = np.empty((size, 8), dtype=table.dtype)
    for i in range(row):  # loops, not slice assignments: those take seconds to compile
        grown_s[i] = symbols[i]
        for j in range(8):
            grown_t[i, j] = table[i, j]
    return grown_s, grown_t


@njit(cache=True, inline="always")
def _decision(flat, ctx, values, i, log2):
    """P(1) of decision i under its context's counts (pass_probabilities's number), its bit, and
    its ideal bits (the same two log2 terms, subtracted as pass_probabilities subtracts them)."""
    ui = np.uint64(i)
    c = np.uint64(ctx[ui]) * np.uint64(2)
    n0 = np.int64(flat[c])
    n1 = np.int64(flat[c + np.uint64(1)])
    den = 2 * (n0 + n1) + 2
    b = values[ui] != 0
    return (2 * n1 + 1) / den, b, _log2(log2, den) - _log2(log2, 2 * (n1 if b else n0) + 1)


@njit(cache=True)
def _code_pass(counts, ctx, values, limit, min_stripe, stripes, log2, symbols, table, row):
    """One non-empty binary pass as planes.code_bits and the Encoder code it, written straight as
    what Encoder.finish hands constriction: per stripe (model.stripe_size decisions, the unit),
    their P(1) from the counts (pass_probabilities's numbers, the same order of additions for the
    bits), then the counts updated; the stripe's triples (triples.pack_triples) to ``symbols`` and
    their probabilities (triples.triple_probabilities, the same products) to ``table`` from
    ``row``, both grown first if they have no room. Returns the pass's ideal bits, ``symbols``,
    ``table`` and the next row."""
    n = ctx.size
    size = _stripe(n, min_stripe, stripes)
    symbols, table = _room(symbols, table, row, _triples(n, size))
    flat = counts.ravel()
    bits = 0.0
    for start in range(0, n, size):
        end = min(n, start + size)
        whole = start + (end - start) // 3 * 3
        for i in range(start, whole, 3):  # whole triples: no padding
            pa, ba, ca = _decision(flat, ctx, values, i, log2)
            bits += ca
            pb, bb, cb = _decision(flat, ctx, values, i + 1, log2)
            bits += cb
            pc, bc, cc = _decision(flat, ctx, values, i + 2, log2)
            bits += cc
            symbols[row] = (np.int32(ba) << 2) | (np.int32(bb) << 1) | np.int32(bc)
            _products(table, row, pa, pb, pc)
            row += 1
        if whole < end:  # the stripe's last one or two decisions, padded with P(1) = 0 and 0
            pa, ba, ca = _decision(flat, ctx, values, whole, log2)
            bits += ca
            pb = 0.0
            bb = False
            if whole + 1 < end:
                pb, bb, cb = _decision(flat, ctx, values, whole + 1, log2)
                bits += cb
            symbols[row] = (np.int32(ba) << 2) | (np.int32(bb) << 1)
            _products(table, row, pa, pb, 0.0)
            row += 1
        count_update(counts, ctx[start:end], values[start:end], limit)
    return bits, symbols, table, row


@njit(cache=True, nogil=True)
def code_planes(digits, kb, top, chan, e16, cls, shape, prev_kb, use_prev, block_counts, block_limit,
                magnitude_counts, magnitude_limit, sign_counts, sign_limit, log2, min_stripe, stripes, symbols, table, row, total, measure):
    """planes._code_planes's passes of one channel from its digit planes (``digits``, plane k in
    row k, from encode.digits) and K map (``kb``, context.block_digits), top plane ``top``
    (>= 1): the same passes in the same order with the same contexts (the kernels of
    kernels/context.py, called as planes.py calls them), each coded as _code_pass writes it.

    Returns the residual rebuilt from the digits (as the decoder rebuilds it: V), the K map as the
    block passes opened it, per plane k its nonzero digits and its bits (block, magnitude and sign
    passes, added in planes.py's order), ``symbols`` and ``table`` (grown if they had to be),
    the next row, ``total`` plus every pass's bits in order (when ``measure``), the last pass's bits
    and the number of passes coded (those with a decision)."""
    h, w = e16.shape
    nby, nbx = kb.shape
    kb_flat = kb.ravel()
    kb_out = np.zeros((nby, nbx), dtype=np.int8)
    kb_out_flat = kb_out.ravel()
    is_open = np.zeros((nby, nbx), dtype=np.int8)
    is_open_flat = is_open.ravel()
    prev = prev_kb if use_prev else kb_out
    v = np.zeros((h, w), dtype=np.int32)
    nz = np.zeros((h, w), dtype=np.uint8)
    half = ((h + 1) // 2) * ((w + 1) // 2)
    nphases = len(PHASES)
    pos_k = np.empty((nphases, half), dtype=np.int32)
    ctx_k = np.empty((nphases, half), dtype=np.int32)
    sbase_k = np.empty((nphases, half), dtype=np.int32)
    nonzero_k = np.zeros(top, dtype=np.int64)
    bits_k = np.zeros(top, dtype=np.float64)
    mag = np.empty(half, dtype=np.int32)
    sgn = np.empty(half, dtype=np.int32)
    last = 0.0
    passes = 0
    for k in range(top - 1, -1, -1):
        pow3k = np.int64(1)
        for _ in range(k):
            pow3k *= 3
        idx, ctx = block_contexts(is_open, prev, use_prev, k, chan)
        n = ctx.size
        want = np.empty(n, dtype=np.int32)
        for i in range(n):
            want[i] = 1 if kb_flat[idx[i]] == k + 1 else 0
        bk = 0.0
        if n:
            bk, symbols, table, row = _code_pass(block_counts, ctx, want, block_limit, min_stripe, stripes, log2,
                                                 symbols, table, row)
            if measure:
                total += bk
            last = bk
            passes += 1
        for i in range(n):
            if want[i]:
                is_open_flat[idx[i]] = 1
                kb_out_flat[idx[i]] = k + 1
        nonzero = 0
        nz[:] = 0
        plane = digits[k]
        counts = plane_contexts(v, is_open, np.int64(KBLOCK), e16, cls, shape, k, chan, pow3k, pos_k, ctx_k, sbase_k)
        for phase in range(nphases):
            n = counts[phase]
            pos, ctx = magnitude_contexts(nz, pos_k[phase, :n], ctx_k[phase, :n], phase)
            m = mag[:n]
            for i in range(n):
                m[i] = 1 if plane[pos[i]] != 0 else 0
            b = 0.0
            if n:
                b, symbols, table, row = _code_pass(magnitude_counts, ctx, m, magnitude_limit, min_stripe, stripes,
                                                    log2, symbols, table, row)
                if measure:
                    total += b
                last = b
                passes += 1
            bk += b
            where, sctx = sign_contexts(nz, pos, m, sbase_k[phase, :n], phase)
            ns = where.size
            g = sgn[:ns]
            for i in range(ns):
                g[i] = 1 if plane[where[i]] > 0 else 0
            b = 0.0
            if ns:
                b, symbols, table, row = _code_pass(sign_counts, sctx, g, sign_limit, min_stripe, stripes, log2,
                                                    symbols, table, row)
                if measure:
                    total += b
                last = b
                passes += 1
            bk += b
            apply_signs(v, nz, where, g, pow3k)
            nonzero += ns
        nonzero_k[k] = nonzero
        bits_k[k] = bk
    return v, kb_out, nonzero_k, bits_k, symbols, table, row, total, last, passes


@njit(cache=True, nogil=True)
def abs_sum(values):
    """The sum of |v| over an int32 array (planes.code_residual's mean |q|, without a temporary)."""
    flat = values.ravel()
    total = np.int64(0)
    for i in range(flat.size):
        total += abs(np.int64(flat[i]))
    return total


@njit(cache=True, nogil=True)
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


@njit(cache=True, inline="always")
def _cell_run(row_modes, cx, gw, bw, w):
    """The run of cells of one mode from cell cx of a row of gw cells: its mode, its first and
    end sample columns, and the cell after it."""
    mode = row_modes[cx]
    end = cx + 1
    while end < gw and row_modes[end] == mode:
        end += 1
    return mode, cx * bw, min(w, end * bw), end


@njit(cache=True, nogil=True)
def residual_lossless(src, t, edges, modes, bh, bw, maxval):
    """predict._encode_plane's q with step 1, for an int32 ``src`` (its reconstruction).

    Rows go run by run of cells of one mode, with the prediction read from the source. The
    weighted predictor's runs go as the decoder's (predict._wp_run, predicting from the known
    samples) and every other run as a plain loop: INTER and MED runs with unsigned indices
    (they vectorise), INTER_MED runs below their cells' top rows with only each cell's first sample
    through predict._predict_at (the others' neighbours are all inside the cell: T itself)."""
    h, w = src.shape
    q = np.empty((h, w), dtype=np.int32)
    modulus = np.int64(maxval) + 1
    wrap = modulus // 2
    err, wp_rows = _wp_state(modes, w)  # the weighted predictor's, as _decode_plane's
    gw = (w + bw - 1) // bw
    for y in range(h):
        by = y // bh
        top = y % bh == 0
        _wp_start_errors(err, wp_rows, y, bh)
        cx = 0
        while cx < gw:
            mode, x0, x1, cx = _cell_run(modes[by], cx, gw, bw, w)
            if mode == INTER:
                qr = q[y]
                sr = src[y]
                tr = t[y]
                for x in range(x0, x1):  # unsigned indices: no wraparound test, the loop vectorises
                    ux = np.uint64(x)
                    qr[ux] = _wrapped(np.int64(sr[ux]) - np.int64(tr[ux]), wrap, modulus)
            elif mode == INTRA_WP:  # the predictions into q, then the residuals
                qr = q[y]
                sr = src[y]
                _wp_run(qr, src, err, y, x0, x1, maxval, 1, WP_PREDICT)
                for x in range(x0, x1):
                    qr[x] = _wrapped(np.int64(sr[x]) - qr[x], wrap, modulus)
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


@njit(cache=True, nogil=True)
def residual_near_lossless(src, t, edges, modes, bh, bw, maxval, step):
    """predict._encode_plane's q and reconstruction with step > 1 (near-lossless).

    Rows go run by run of cells of one mode, as residual_lossless's, each sample's prediction
    from the reconstruction so far: INTER runs in one loop (no neighbour read), the weighted
    predictor's runs as the decoder's (predict._wp_run, quantising), the others sample by sample.
    The quantiser is a table over every residual a prediction in [0, maxval] or in T's range
    leaves: no division per sample."""
    h, w = src.shape
    q = np.empty((h, w), dtype=np.int32)
    rec = np.empty((h, w), dtype=np.int32)
    top_value = np.int64(maxval)
    half = step // 2
    lowest = np.int64(0)  # of the predictions: T's, the others' are in [0, maxval]
    highest = top_value
    flat_t = t.ravel()
    for i in range(flat_t.size):
        lowest = min(lowest, np.int64(flat_t[i]))
        highest = max(highest, np.int64(flat_t[i]))
    # q of residual r at r + highest, r in [-highest, maxval - lowest]
    quantised = np.empty(top_value - lowest + highest + 1, dtype=np.int64)
    for i in range(quantised.size):
        quantised[i] = (i - highest + half) // step
    err, wp_rows = _wp_state(modes, w)  # the weighted predictor's, as _decode_plane's
    gw = (w + bw - 1) // bw
    for y in range(h):
        by = y // bh
        top = y % bh == 0
        _wp_start_errors(err, wp_rows, y, bh)
        qr = q[y]
        rr = rec[y]
        sr = src[y]
        cx = 0
        while cx < gw:
            mode, x0, x1, cx = _cell_run(modes[by], cx, gw, bw, w)
            if mode == INTRA_WP:
                for x in range(x0, x1):
                    qr[x] = sr[x]
                _wp_run(qr, rec, err, y, x0, x1, maxval, step, WP_QUANTISE)
                continue
            tr = t[y]
            if mode == INTER:
                for x in range(x0, x1):  # unsigned indices: no wraparound test
                    ux = np.uint64(x)
                    p = np.int64(tr[ux])
                    qi = quantised[np.int64(sr[ux]) - p + highest]
                    qr[ux] = qi
                    v = p + qi * step
                    rr[ux] = 0 if v < 0 else (top_value if v > top_value else v)
                continue
            for x in range(x0, x1):
                if mode == INTRA or top or y == 0 or x % bw == 0:
                    p = _predict_at(rec, t, edges, y, x, mode, x % bw == 0, top, maxval)
                else:  # INTER_MED inside its cell: the neighbours' T is T itself
                    p = np.int64(tr[x]) + _med_select(np.int64(rr[x - 1]) - np.int64(tr[x - 1]),
                                                      np.int64(rec[y - 1, x]) - np.int64(t[y - 1, x]),
                                                      np.int64(rec[y - 1, x - 1]) - np.int64(t[y - 1, x - 1]))
                    p = 0 if p < 0 else (top_value if p > top_value else p)
                qi = quantised[np.int64(sr[x]) - p + highest]
                qr[x] = qi
                v = p + qi * step
                rr[x] = 0 if v < 0 else (top_value if v > top_value else v)
    return q, rec
