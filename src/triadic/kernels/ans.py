"""ANS decoding in numba, bit for bit what constriction's decoder does (the decoder's fast path).

The encoder writes with ``constriction.stream.stack.AnsCoder`` (64-bit state, 32-bit words,
24-bit precision) and ``perfect=False`` models; decoding is the inverse, done here so that a
whole pass -- probabilities from the adaptive counts, decoding, count updates between stripes --
runs in one kernel call instead of a Python loop over stripes. The arithmetic is constriction
0.5's (``AnsCoder::decode_symbol``, ``from_compressed``, and the "fast" leaky categorical
quantisation that ``Bernoulli(perfect=False)`` and ``Categorical(perfect=False)`` use):

- quantisation of a categorical row p[0..n): scale = (2^24 - n) / sum(p) (float64, summed left
  to right), left cumulative of symbol i = trunc(scale * (p[0] + ... + p[i-1])) + i, the last
  symbol ending at 2^24; a Bernoulli p is the row (1 - p, p);
- one symbol: quantile = state mod 2^24; find the symbol whose [left, right) holds it;
  state = (state >> 24) * (right - left) + quantile - left; then, if state < 2^32 and words
  remain, state = state << 32 | the next word (words are read from the end of the stream).

tests/test_ans.py checks all of it against constriction itself. ``state`` is a 2-element uint64
array: (coder state, number of words not yet read).
"""

import numpy as np
from numba import njit

from .context import PHASES, magnitude_contexts, sign_contexts

PRECISION = 24
_ONE = np.uint64(1 << PRECISION)
_MASK = np.uint64((1 << PRECISION) - 1)
_LOW = np.uint64(1 << 32)


def initial_state(words: np.ndarray) -> np.ndarray | None:
    """(state, words left) of a coder made from ``words``; None if the last word is zero (which
    constriction rejects: no encoder writes it)."""
    n = words.size
    if n == 0:
        return np.zeros(2, np.uint64)
    if words[n - 1] == 0:
        return None
    state = int(words[n - 1])
    left = n - 1
    if left:
        state = (state << 32) | int(words[n - 2])
        left -= 1
    return np.array([state, left], dtype=np.uint64)


@njit(cache=True, inline="always")
def _advance(s, left, words, quantile, low, prob):
    """The coder's (state, words left) after decoding the symbol [low, low + prob) that holds
    ``quantile``. Kernels keep both in local variables (through an array, the compiler would
    reload them every symbol: 8x slower)."""
    s = (s >> np.uint64(PRECISION)) * np.uint64(prob) + np.uint64(quantile - low)
    if s < _LOW and left > 0:
        left -= 1
        s = (s << np.uint64(32)) | np.uint64(words[left])
    return s, left


@njit(cache=True, inline="always")
def _cut(p):
    """Left cumulative of symbol 1 under Bernoulli(p): symbol 0 is [0, cut), 1 is [cut, 2^24)."""
    q = 1.0 - p
    return np.int64(q * (16777214.0 / (q + p))) + 1


@njit(cache=True)
def decode_cuts(state, words, cuts, out):
    """out[i] = the next binary symbol, symbol 0 being [0, cuts[i]) and 1 [cuts[i], 2^24).

    Written out branch-free in one loop: through a helper function returning a tuple, numba's
    code was 4x slower."""
    s = state[0]
    left = np.int64(state[1])
    for i in range(cuts.size):
        cut = cuts[i]
        quantile = np.int64(s & _MASK)
        bit = quantile >= cut
        low = cut if bit else 0
        prob = ((1 << PRECISION) - cut) if bit else cut
        s = (s >> np.uint64(PRECISION)) * np.uint64(prob) + np.uint64(quantile - low)
        out[i] = bit
        if s < _LOW and left > 0:
            left -= 1
            s = (s << np.uint64(32)) | np.uint64(words[left])
    state[0] = s
    state[1] = np.uint64(left)


@njit(cache=True)
def decode_bits(state, words, p1, out):
    """out[i] = the next binary symbol under P(1) = p1[i], for every i."""
    cuts = np.empty(p1.size, dtype=np.int64)
    for i in range(p1.size):
        cuts[i] = _cut(p1[i])
    decode_cuts(state, words, cuts, out)


@njit(cache=True)
def decode_symbols(state, words, probs, out):
    """out[i] = the next symbol under the categorical row probs[i] (unnormalised)."""
    m, n = probs.shape
    s = state[0]
    left = np.int64(state[1])
    for i in range(m):
        total = 0.0
        for j in range(n):
            total += probs[i, j]
        scale = (16777216.0 - n) / total
        quantile = np.int64(s & _MASK)
        low = 0
        cum = probs[i, 0]
        symbol = n - 1
        right = 1 << PRECISION
        for j in range(1, n):
            r = np.int64(cum * scale) + j
            if r > quantile:
                symbol = j - 1
                right = r
                break
            low = r
            cum += probs[i, j]
        s, left = _advance(s, left, words, quantile, low, right - low)
        out[i] = symbol
    state[0] = s
    state[1] = np.uint64(left)


@njit(cache=True)
def decode_adaptive(state, words, counts, ctx, limit, stripe, out):
    """A binary pass under adaptive counts: stripes of ``stripe`` symbols, each decoded with the
    probabilities count_probabilities gives before it, then added to the counts as count_update
    does (``code_bits`` of planes.py, fused)."""
    n = ctx.size
    cuts = np.empty(min(n, stripe), dtype=np.int64)
    for start in range(0, n, stripe):
        stop = min(n, start + stripe)
        for i in range(start, stop):
            c = ctx[i]
            n1 = counts[c, 1]
            cuts[i - start] = _cut((2 * n1 + 1) / (2 * (counts[c, 0] + n1) + 2))
        decode_cuts(state, words, cuts[:stop - start], out[start:stop])
        for i in range(start, stop):
            counts[ctx[i], out[i]] += 1
        for i in range(start, stop):
            c = ctx[i]
            if counts[c, 0] + counts[c, 1] > limit:
                counts[c, 0] = (counts[c, 0] + 1) >> 1
                counts[c, 1] = (counts[c, 1] + 1) >> 1


@njit(cache=True, inline="always")
def _stripe(n, min_stripe, stripes):
    """model.stripe_size."""
    return max(min_stripe, -(-n // stripes))


@njit(cache=True)
def decode_plane_phases(state, words, v, dig, is_open, kblock, e16, cls, k, chan, pow3k, sums,
                        mag_counts, mag_limit, sign_counts, sign_limit, min_stripe, stripes):
    """The magnitude and sign passes of every phase of plane k, decoded in one call: what the
    phase loop of planes._code_planes does with a decoder, fused. Updates ``v`` and ``dig``;
    returns the number of nonzero digits."""
    w = v.shape[1]
    nonzero = 0
    for phase in range(len(PHASES)):
        pos, ctx = magnitude_contexts(v, dig, is_open, kblock, e16, cls, k, phase, chan, pow3k, sums)
        mag = np.empty(pos.size, dtype=np.int32)
        decode_adaptive(state, words, mag_counts, ctx, mag_limit, _stripe(pos.size, min_stripe, stripes), mag)
        m = 0
        for i in range(pos.size):
            if mag[i]:
                pos[m] = pos[i]
                m += 1
        where = pos[:m]
        sctx = sign_contexts(v, dig, where, cls, k, phase, chan, pow3k)
        sgn = np.empty(m, dtype=np.int32)
        decode_adaptive(state, words, sign_counts, sctx, sign_limit, _stripe(m, min_stripe, stripes), sgn)
        for i in range(m):
            y = where[i] // w
            x = where[i] - y * w
            s = 1 if sgn[i] else -1
            v[y, x] += s * pow3k
            dig[y, x] = s
        nonzero += m
    return nonzero
