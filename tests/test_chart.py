"""The chart's side-information passes: the decoder's fast paths (one kernel call per stripe of
symbols, the raw bits of the integers in one coder call) read what the encoder wrote, as the
generic per-call path (a measuring decoder) does; the encoder's (one record per pass) write what
coding them call by call writes."""

import numpy as np
import pytest

from triadic.chart import _code_ints, _code_symbols
from triadic.entropy import Decoder, Encoder
from triadic.model import ContextModel, SymbolCounts, stripes


@pytest.mark.parametrize("n", [0, 1, 5, 300, 5000])
def test_symbols_and_ints_decode_as_coded(n):
    rng = np.random.default_rng(n)
    ctx = rng.integers(0, 4, n).astype(np.int64)
    symbols = rng.integers(0, 3, n).astype(np.int32)
    ints = (rng.integers(-1, 2, n) * (rng.integers(0, 1 << 15, n) >> rng.integers(0, 16, n))).astype(np.int32)
    int_ctx = np.full(n, 3)

    def code(coder, first, second):
        counts, model = SymbolCounts(4, 3), ContextModel()
        a, _ = _code_symbols(coder, counts, ctx, first)
        b, _ = _code_ints(coder, model, int_ctx, second, n)
        c, _ = _code_symbols(coder, counts, ctx, None if first is None else np.minimum(first, 1), 2)
        return a, b, c, counts.counts, model.mv_class.counts

    enc = Encoder()
    want = code(enc, symbols, ints)
    data = enc.finish()
    for measure in (False, True):
        dec = Decoder(data, measure=measure)
        got = code(dec, None, None)
        dec.finish()
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)



@pytest.mark.parametrize("n", [1, 5, 300, 5000])
def test_encoder_passes_are_the_stripe_by_stripe_coding(n):
    """The encoder's one-record passes (Encoder.encode_symbols: the counts adapted stripe by
    stripe in one kernel call; Encoder.raw_bits: every bit position's call at once) write the
    words, leave the counts and measure the bits that coding them call by call does: class symbols
    stripe by stripe, then bit j of every |v| longer than j + 1 bits, one call per j."""
    rng = np.random.default_rng(n)
    ctx = rng.integers(0, 4, n).astype(np.int64)
    symbols = rng.integers(0, 3, n).astype(np.int32)
    ints = (rng.integers(-1, 2, n) * (rng.integers(0, 1 << 15, n) >> rng.integers(0, 16, n))).astype(np.int32)
    int_ctx = np.full(n, 3)

    enc, counts, model = Encoder(measure=True), SymbolCounts(4, 3), ContextModel()
    _, symbol_bits = _code_symbols(enc, counts, ctx, symbols)
    _, int_bits = _code_ints(enc, model, int_ctx, ints, n)

    ref, ref_counts, ref_model = Encoder(measure=True), SymbolCounts(4, 3), ContextModel()
    want_symbol_bits = want_int_bits = 0.0
    for s in stripes(n):
        ref.symbols(symbols[s], ref_counts.probabilities(ctx[s]))
        ref_counts.update(ctx[s], symbols[s])
        want_symbol_bits += ref.last_bits
    mag = np.abs(ints.astype(np.int64))
    length = np.array([int(m).bit_length() for m in mag], dtype=np.int64)
    cls = np.where(ints == 0, 0, 2 * length - (ints > 0)).astype(np.int32)
    for s in stripes(n):
        ref.symbols(cls[s], ref_model.mv_class.probabilities(int_ctx[s]))
        ref_model.mv_class.update(int_ctx[s], cls[s])
        want_int_bits += ref.last_bits
    for j in range(int(length.max()) - 1):
        has = length - 1 > j
        ref.bits((mag[has] >> j) & 1, np.full(int(has.sum()), 0.5))
        want_int_bits += ref.last_bits

    assert enc.finish() == ref.finish()
    np.testing.assert_array_equal(counts.counts, ref_counts.counts)
    np.testing.assert_array_equal(model.mv_class.counts, ref_model.mv_class.counts)
    assert symbol_bits == pytest.approx(want_symbol_bits, rel=1e-9)
    assert int_bits == pytest.approx(want_int_bits, rel=1e-9)
