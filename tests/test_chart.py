"""The chart's side-information passes: the decoder's fast paths (one kernel call per stripe of
symbols, the raw bits of the integers in one coder call) read what the encoder wrote, as the
generic per-call path (a measuring decoder) does."""

import numpy as np
import pytest

from triadic.chart import _code_ints, _code_symbols
from triadic.entropy import Decoder, Encoder
from triadic.model import ContextModel, SymbolCounts


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

