"""Binary decisions coded three at a time, as one symbol over 8 outcomes.

Within one coder call (a stripe of a pass, or one call of ``bits``) every probability is fixed
before the first symbol, so the decisions are independent given them: decisions 3i, 3i+1, 3i+2
become one symbol s = 4 b0 + 2 b1 + b2 whose 8 probabilities are the products of theirs. The code
length is the same; constriction's categorical decoder takes about as long for a symbol over 8
outcomes as its Bernoulli decoder for one bit, so a pass decodes in about a third of the time.
A call whose length is not a multiple of three ends with decisions of probability 0 of being 1
(the value 0, costing nothing measurable), which the decoder drops.
"""

import numpy as np
from numba import njit

from .context import count_update


@njit(cache=True, inline="always")
def _products(out, row, a, b, c):
    """out[row] = the 8 probabilities of s = 4 b0 + 2 b1 + b2 with P(b_i = 1) = a, b, c."""
    na = 1.0 - a
    nb = 1.0 - b
    nc = 1.0 - c
    out[row, 0] = na * nb * nc
    out[row, 1] = na * nb * c
    out[row, 2] = na * b * nc
    out[row, 3] = na * b * c
    out[row, 4] = a * nb * nc
    out[row, 5] = a * nb * c
    out[row, 6] = a * b * nc
    out[row, 7] = a * b * c


@njit(cache=True, inline="always")
def _p1(table, ctx, i):
    """P(1) of decision i under the counts of its context (context.count_probabilities)."""
    c = np.uint64(ctx[i]) * np.uint64(2)
    n0 = table[c]
    n1 = table[c + np.uint64(1)]
    return (2 * n1 + 1) / (2 * (n0 + n1) + 2)


@njit(cache=True)
def triple_probabilities(p1, unit, out):
    """out[i] = the 8 probabilities of the i-th triple of ``p1`` (P(bit = 1) of each decision) cut
    into units of ``unit`` decisions, each padded to a multiple of three: ``out`` has
    sum over units of ceil(len / 3) rows. Returns the number of rows written."""
    n = p1.size
    row = 0
    for start in range(0, n, unit):
        end = min(n, start + unit)
        for i in range(start, end, 3):
            _products(out, row, p1[i], p1[i + 1] if i + 1 < end else 0.0, p1[i + 2] if i + 2 < end else 0.0)
            row += 1
    return row


@njit(cache=True)
def pack_triples(values, unit, out):
    """The triple symbols of binary ``values`` cut into units as triple_probabilities does."""
    n = values.size
    row = 0
    for start in range(0, n, unit):
        end = min(n, start + unit)
        for i in range(start, end, 3):
            s = values[i] << 2
            if i + 1 < end:
                s |= values[i + 1] << 1
            if i + 2 < end:
                s |= values[i + 2]
            out[row] = s
            row += 1
    return row


@njit(cache=True)
def unpack_triples(symbols, n):
    """The n binary decisions of one unit from its ceil(n / 3) triple symbols (int32)."""
    out = np.empty(n, dtype=np.int32)
    for i in range(n):
        out[i] = (symbols[i // 3] >> (2 - i % 3)) & 1
    return out


def rows(n: int, unit: int) -> int:
    """Triples of n decisions cut into units of ``unit``."""
    full, rest = divmod(n, unit)
    return full * -(-unit // 3) + -(-rest // 3)


@njit(cache=True, nogil=True)
def decode_step(counts, ctx, symbols, start, size, limit, out, probs):
    """The decoder's step between the stripes of ``size`` decisions of a binary pass of
    n = ctx.size decisions, on triples: the stripe's decisions out[start:end] (end = min(n,
    start + size)) from its triple ``symbols``, its contexts ctx[start:end] counted
    (context.count_update), then probs[:rows] = the triple probabilities of the next stripe's
    decisions, whose P(1) are count_probabilities of ctx[end:min(n, end + size)]. The first call
    passes start = -size (no symbols: only the first stripe's probabilities). One call per stripe,
    no new arrays; flat unsigned indices; the stripe bounds are worked out here, not in the
    Python loop that calls it."""
    n_all = ctx.size
    end = min(n_all, start + size)
    following = min(n_all, end + size)
    start = max(start, 0)
    first = np.uint64(start)
    n = end - start
    for r in range(n // 3):  # whole triples, then the last one's decisions
        s = symbols[r]
        j = first + np.uint64(3 * r)
        out[j] = (s >> 2) & 1
        out[j + np.uint64(1)] = (s >> 1) & 1
        out[j + np.uint64(2)] = s & 1
    for i in range(n - n % 3, n):
        out[first + np.uint64(i)] = (symbols[i // 3] >> (2 - i % 3)) & 1
    count_update(counts, ctx[start:end], out[start:end], limit)
    table = counts.ravel()
    row = 0
    for i in range(end, following, 3):
        pa = _p1(table, ctx, i)
        pb = _p1(table, ctx, i + 1) if i + 1 < following else 0.0
        pc = _p1(table, ctx, i + 2) if i + 2 < following else 0.0
        _products(probs, row, pa, pb, pc)
        row += 1
