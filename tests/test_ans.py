"""The numba ANS decoder (kernels/ans.py) decodes exactly what constriction decodes, symbol for
symbol and state for state, on the probabilities triadic's counts produce and on arbitrary ones."""

import constriction
import numpy as np
import pytest

from triadic.kernels import ans
from triadic.kernels import context as ck

BERNOULLI = constriction.stream.model.Bernoulli(perfect=False)
CATEGORICAL = constriction.stream.model.Categorical(perfect=False)


def _count_probabilities(rng, n):
    counts = rng.integers(0, 9000, (64, 2)).astype(np.int32)
    counts[:8] = rng.integers(0, 4, (8, 2))
    return ck.count_probabilities(counts, rng.integers(0, 64, n).astype(np.int32))


def _stream(passes):
    """Encode (binary?, values, probabilities) passes as the Encoder does: in reverse."""
    coder = constriction.stream.stack.AnsCoder()
    for binary, values, probs in reversed(passes):
        coder.encode_reverse(values, BERNOULLI if binary else CATEGORICAL, probs)
    return coder.get_compressed()


@pytest.mark.parametrize("seed", range(6))
def test_matches_constriction(seed):
    rng = np.random.default_rng(seed)
    passes = []
    for _ in range(12):
        n = int(rng.integers(0, 3000))
        if rng.random() < 0.7:
            p = _count_probabilities(rng, n) if rng.random() < 0.6 else rng.random(n)
            if seed == 5:  # extremes
                p = rng.choice([0.0, 1.0, 1e-300, 1 - 1e-16, 0.5, 1 / 3], n)
            values = (rng.random(n) < p).astype(np.int32)
            if rng.random() < 0.2:
                values = 1 - values  # unlikely symbols too
            passes.append((True, values, p))
        else:
            k = int(rng.integers(2, 34))
            probs = (2 * rng.integers(0, 5000, (n, k)) + 1).astype(np.float64)
            if seed % 2:
                probs = rng.random((n, k)) ** 4 + 1e-12
            values = rng.integers(0, k, n).astype(np.int32)
            passes.append((False, values, probs))
    words = _stream(passes)
    state = ans.initial_state(words)
    reference = constriction.stream.stack.AnsCoder(words)
    for binary, values, probs in passes:
        out = np.empty(values.size, np.int32)
        if binary:
            ans.decode_bits(state, words, probs, out)
            expected = reference.decode(BERNOULLI, probs)
        else:
            ans.decode_symbols(state, words, probs, out)
            expected = reference.decode(CATEGORICAL, probs)
        assert np.array_equal(out, values)
        assert np.array_equal(out, expected)
    assert state[0] == 0 and reference.is_empty()


def test_adaptive_pass_matches_stripes():
    """decode_adaptive = code_bits's loop: probabilities per stripe, then the count update."""
    rng = np.random.default_rng(7)
    n, stripe, limit = 5000, 313, 1 << 13
    ctx = rng.integers(0, 40, n).astype(np.int32)
    counts = rng.integers(0, 3000, (40, 2)).astype(np.int32)
    start = counts.copy()
    truth = (rng.random(n) < 0.3).astype(np.int32)
    probs = []
    for s in range(0, n, stripe):
        c = ctx[s:s + stripe]
        probs.append(ck.count_probabilities(counts, c))
        ck.count_update(counts, c, truth[s:s + stripe], limit)
    words = _stream([(True, truth, np.concatenate(probs))])
    state = ans.initial_state(words)
    out = np.empty(n, np.int32)
    ans.decode_adaptive(state, words, start, ctx, limit, stripe, out)
    assert np.array_equal(out, truth)
    assert np.array_equal(start, counts)
    assert state[0] == 0


def test_past_the_end_and_bad_streams():
    rng = np.random.default_rng(1)
    words = rng.integers(1, 2**32, 7, dtype=np.uint64).astype(np.uint32)
    p = rng.random(500)
    state = ans.initial_state(words)
    reference = constriction.stream.stack.AnsCoder(words)
    out = np.empty(p.size, np.int32)
    ans.decode_bits(state, words, p, out)  # decoding past the end is deterministic, as in constriction
    assert np.array_equal(out, reference.decode(BERNOULLI, p))
    assert ans.initial_state(np.array([5, 0], np.uint32)) is None
    assert ans.initial_state(np.zeros(0, np.uint32))[0] == 0
