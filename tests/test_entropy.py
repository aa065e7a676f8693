"""The ANS pass coder: binary decisions three at a time (kernels/triples.py), round trips and cost."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triadic.entropy import Decoder, Encoder
from triadic.errors import CorruptStreamError
from triadic.kernels import triples
from triadic.model import BinaryCounts, stripes


def _probabilities(rng, n):
    """P(1) values across the range the count models produce, extremes included."""
    p = rng.uniform(0.0, 1.0, n)
    extreme = rng.random(n) < 0.2
    p[extreme] = rng.choice([1e-6, 1 / 514, 0.5, 1 - 1 / 514, 1 - 1e-6], int(extreme.sum()))
    return p


@pytest.mark.parametrize("n, unit", [(0, 1), (1, 1), (2, 2), (3, 3), (7, 7), (10, 4), (12, 3), (13, 5)])
def test_triples_are_products_and_pack_back(n, unit):
    rng = np.random.default_rng(n * 31 + unit)
    p = _probabilities(rng, n)
    values = (rng.random(n) < 0.5).astype(np.int32)
    rows = triples.rows(n, unit)
    assert rows == sum(-(-min(unit, n - s) // 3) for s in range(0, n, unit))
    probs = np.empty((rows, 8))
    symbols = np.empty(rows, np.int32)
    assert triples.triple_probabilities(p, unit, probs) == rows
    assert triples.pack_triples(values, unit, symbols) == rows
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    row, got = 0, []
    for start in range(0, n, unit):
        end = min(n, start + unit)
        first = row
        for i in range(start, end, 3):
            group = list(range(i, min(i + 3, end)))
            padded = [p[j] for j in group] + [0.0] * (3 - len(group))
            for s in range(8):
                bits = [(s >> (2 - b)) & 1 for b in range(3)]
                want = np.prod([q if bit else 1 - q for q, bit in zip(padded, bits)])
                assert probs[row, s] == pytest.approx(want, rel=1e-12, abs=1e-300)
            row += 1
        got.append(triples.unpack_triples(symbols[first:row], end - start))
    if n:
        np.testing.assert_array_equal(np.concatenate(got), values)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 40)), min_size=1, max_size=12),
       st.integers(0, 2**32 - 1))
def test_round_trip_of_mixed_passes(passes, seed):
    rng = np.random.default_rng(seed)
    enc, recorded = Encoder(), []
    for binary, n in passes:
        if binary:
            p = _probabilities(rng, n)
            v = (rng.random(n) < p).astype(np.int32)
            enc.bits(v, p)
        else:
            k = int(rng.integers(2, 9))
            p = rng.uniform(0.01, 1.0, (n, k))
            v = np.array([rng.choice(k, p=row / row.sum()) for row in p], dtype=np.int32)
            enc.symbols(v, p)
        recorded.append((binary, v, p))
    dec = Decoder(enc.finish())
    for binary, v, p in recorded:
        np.testing.assert_array_equal((dec.bits if binary else dec.symbols)(None, p), v)
    dec.finish()


def test_whole_pass_in_stripes_decodes_stripe_by_stripe():
    """encode_bits codes a pass with one call; the decoder asks for it stripe by stripe."""
    rng = np.random.default_rng(7)
    n, contexts = 5000, 50
    ctx = rng.integers(0, contexts, n).astype(np.int64)
    values = (rng.random(n) < 0.2 + 0.6 * (ctx % 2)).astype(np.int32)
    size = stripes(n)[0].stop
    assert size % 3  # stripes that are not a multiple of three: padding inside the pass
    counts = BinaryCounts(contexts)
    enc = Encoder(measure=True)
    bits = enc.encode_bits(values, counts, ctx, size)
    data = enc.finish()
    assert len(data) * 8 <= bits * 1.001 + 64  # the triples cost what the decisions do
    counts, dec = BinaryCounts(contexts), Decoder(data)
    for s in stripes(n):
        got = dec.bits(None, counts.probabilities(ctx[s]))
        np.testing.assert_array_equal(got, values[s])
        counts.update(ctx[s], got)
    dec.finish()


def test_code_length_matches_the_decisions():
    rng = np.random.default_rng(3)
    p = _probabilities(rng, 30000)
    v = (rng.random(p.size) < p).astype(np.int32)
    enc = Encoder(measure=True)
    for start in range(0, p.size, 1000):
        enc.bits(v[start:start + 1000], p[start:start + 1000])
    size = len(enc.finish()) * 8
    assert enc.total_bits <= size <= enc.total_bits * 1.001 + 64


def test_truncated_stream_is_corrupt():
    rng = np.random.default_rng(5)
    p = rng.uniform(0.3, 0.7, 3000)
    enc = Encoder()
    enc.bits((rng.random(p.size) < p).astype(np.int32), p)
    data = enc.finish()
    with pytest.raises(CorruptStreamError):
        dec = Decoder(data[: len(data) // 2])
        dec.bits(None, p)
        dec.finish()


@pytest.mark.parametrize("start, size, n", [(-7, 7, 25), (0, 9, 25), (9, 7, 16), (16, 4, 20), (16, 9, 25),
                                            (-25, 25, 25), (0, 25, 25), (-30, 30, 25), (0, 30, 25)])
def test_decode_step_is_the_model_on_triples(start, size, n):
    """The decoder's fused step (unpack, count, next stripe's triple probabilities) computes what
    the model's count_update, count_probabilities and triple_probabilities compute in turn, on
    the stripe [start, start + size) and the next one, cut at n (start = -size: the first call)."""
    from triadic.kernels import context as ck

    first = start  # what the call is given
    end, following = min(n, start + size), min(n, start + 2 * size)
    start = max(start, 0)
    rng = np.random.default_rng(start * 100 + end)
    contexts, limit = 6, 12
    ctx = rng.integers(0, contexts, n).astype(np.int64)  # few contexts: the halving happens
    bits = (rng.random(end - start) < 0.6).astype(np.int32)
    table = rng.integers(0, 8, (contexts, 2)).astype(np.int32)
    want_table, want_out = table.copy(), np.full(n, -1, np.int32)
    want_out[start:end] = bits
    ck.count_update(want_table, ctx[start:end], bits, limit)
    p = ck.count_probabilities(want_table, ctx[end:following])
    want = np.zeros((triples.rows(following - end, max(following - end, 1)), 8))
    triples.triple_probabilities(p[:following - end], max(following - end, 1), want)
    symbols = np.zeros(max(triples.rows(bits.size, max(bits.size, 1)), 1), np.int32)
    triples.pack_triples(bits, max(bits.size, 1), symbols)
    got_table, got_out, got = table.copy(), np.full(n, -1, np.int32), np.zeros((want.shape[0], 8))
    triples.decode_step(got_table, ctx, symbols, first, size, limit, got_out, got)
    np.testing.assert_array_equal(got_out, want_out)
    np.testing.assert_array_equal(got_table, want_table)
    np.testing.assert_array_equal(got, want)  # bit for bit: both sides must agree exactly


class _PassByPass(Encoder):
    """The Encoder without encode_planes: planes._code_planes walks its passes in Python."""

    encode_planes = property(lambda self: (_ for _ in ()).throw(AttributeError("encode_planes")))


@pytest.mark.parametrize("seed", range(6))
def test_encode_planes_is_the_pass_by_pass_coding(seed):
    """Encoder.encode_planes (kernels/encode.code_planes, one call per channel) codes what
    planes._code_planes codes pass by pass: the same words, bits, statistics, counts and returns,
    over channels in a row (counts carried on), with and without a previous K map, and with a
    noise channel that the encoder sends raw (its trial coding rolled back)."""
    from triadic.kernels import context as ck
    from triadic.model import ContextModel
    from triadic.planes import PlaneStats, code_residual

    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(1, 40)), int(rng.integers(1, 50))
    channels = []
    for c in range(4):
        scale = [0, 1, 3, 30][(seed + c) % 4]
        q = np.clip(np.round(rng.laplace(0, scale + 1e-9, (h, w))), -128, 127).astype(np.int32)
        if c == 3 and seed % 2:
            q = rng.integers(-128, 128, (h, w)).astype(np.int32)  # noise: raw wins
        e16 = rng.integers(-1, 200, (h, w)).astype(np.int32)
        cls = rng.integers(0, ck.SAMPLE_CLASSES, (h, w)).astype(np.int8)
        shape = (rng.integers(0, 3, (h, w)) | (rng.integers(0, 3, (h, w)) << 2)
                 | (rng.integers(0, 13, (h, w)) << 4)).astype(np.uint8)  # mix_prediction_activity's bytes
        channels.append((q, e16, cls, shape))
    results = []
    for kind in (Encoder, _PassByPass):
        enc, model = kind(measure=True), ContextModel()
        stats = [PlaneStats(), PlaneStats()]
        prev, outs = None, []
        for c, (q, e16, cls, shape) in enumerate(channels):
            v, kb = code_residual(enc, model, min(c, 1), (h, w), q, e16, cls, shape, prev, stats[min(c, 1)], 256)
            outs.append((v.copy(), kb.copy()))
            prev = kb if c % 2 == 0 else None
        results.append((enc.finish(), enc.total_bits, [(s.samples, s.side_bits, s.nonzero, s.bits) for s in stats],
                        [t.counts.copy() for t in vars(model).values()], outs))
    fast, slow = results
    assert fast[0] == slow[0]
    assert fast[1] == slow[1]
    assert fast[2] == slow[2]
    for a, b in zip(fast[3], slow[3]):
        np.testing.assert_array_equal(a, b)
    for (v1, k1), (v2, k2), (q, *_) in zip(fast[4], slow[4], channels):
        np.testing.assert_array_equal(v1, v2)
        np.testing.assert_array_equal(k1, k2)
        np.testing.assert_array_equal(v1, q)


@pytest.mark.parametrize("seed", range(3))
def test_a_part_coded_in_another_thread_appends_as_if_coded_here(seed):
    """Encoder.part / append: the luma coded here while another thread codes two chroma channels
    into a part (the two channel classes adapt separate counts), the part appended after it: the
    words, bits and counts of coding the three in a row."""
    from concurrent.futures import ThreadPoolExecutor

    from triadic.kernels import context as ck
    from triadic.model import ContextModel
    from triadic.planes import PlaneStats, code_residual

    rng = np.random.default_rng(seed)
    h, w = 40 + seed, 56 - seed
    channels = []
    for c in range(3):
        q = np.clip(np.round(rng.laplace(0, 2 + c, (h, w))), -128, 127).astype(np.int32)
        e16 = rng.integers(-1, 200, (h, w)).astype(np.int32)
        cls = rng.integers(0, ck.SAMPLE_CLASSES, (h, w)).astype(np.int8)
        shape = (rng.integers(0, 3, (h, w)) | (rng.integers(0, 3, (h, w)) << 2)).astype(np.uint8)
        channels.append((q, e16, cls, shape))

    def code(enc, model, stats, cs):
        return [code_residual(enc, model, min(c, 1), (h, w), *channels[c], None, stats[c], 256)[0] for c in cs]

    serial, model = Encoder(measure=True), ContextModel()
    stats = [PlaneStats() for _ in range(3)]
    code(serial, model, stats, range(3))
    want = (serial.finish(), serial.total_bits, [t.counts.copy() for t in vars(model).values()])

    main, model = Encoder(measure=True), ContextModel()
    stats = [PlaneStats() for _ in range(3)]
    part = main.part()
    with ThreadPoolExecutor(1) as pool:
        later = pool.submit(code, part, model, stats, (1, 2))
        code(main, model, stats, (0,))
        later.result()
    main.append(part)
    assert main.finish() == want[0]
    assert main.total_bits == pytest.approx(want[1])
    for a, b in zip([t.counts for t in vars(model).values()], want[2]):
        np.testing.assert_array_equal(a, b)


def test_raw_trial_is_skipped_only_where_raw_cannot_win(tmp_path, carphone, monkeypatch):
    """planes._raw_may_win spares the encoder its trial coding (and the copy of the count tables)
    for residuals small enough that raw numbers cannot win, and still sends noise to it; the
    shortcut changes no byte: carphone encodes to the same stream with the trial forced on."""
    import triadic
    from triadic import planes

    rng = np.random.default_rng(0)
    small = np.round(rng.laplace(0, 1.5, (40, 50))).astype(np.int32)
    noise = rng.integers(-128, 128, (40, 50)).astype(np.int32)
    assert not planes._raw_may_win(small, 256)
    assert planes._raw_may_win(noise, 256)
    assert planes._raw_may_win(small, 4)  # 2-bit samples: raw costs little
    assert not planes._raw_may_win(np.zeros((0, 3), np.int32), 256)

    triadic.encode(carphone, tmp_path / "a.tri", frames=3, jobs=1)
    tried = []
    monkeypatch.setattr(planes, "_raw_may_win", lambda q, m: tried.append(m) or True)
    triadic.encode(carphone, tmp_path / "b.tri", frames=3, jobs=1)
    assert len(tried) == 9  # every channel of every frame went through the trial
    assert (tmp_path / "a.tri").read_bytes() == (tmp_path / "b.tri").read_bytes()
