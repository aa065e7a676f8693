"""The fast prediction and context kernels return exactly what the plain ones they replaced return
(tests/reference_kernels.py), on random charts, vectors far outside the frame, odd sizes, every
mode and plane, lossless and near-lossless."""

import numpy as np
import pytest

import reference_kernels as ref
from triadic.kernels import context as ck
from triadic.kernels.interp import upsample_h264
from triadic.kernels.encode import residual_lossless, residual_near_lossless
from triadic.kernels.predict import (INTER, INTER_MED, INTRA, INTRA_WP, NUM_MODES, _decode_plane, _encode_plane,
                                     motion_compensate, wp_prediction)

PAD = 8
CASES = [(1, 1, 4, 4, 2, 2), (5, 7, 4, 4, 2, 2), (37, 23, 4, 4, 2, 2), (19, 33, 2, 2, 3, 3),
         (21, 17, 4, 2, 2, 3), (64, 48, 4, 4, 2, 2), (13, 29, 2, 2, 3, 3)]


def _chart(rng, h, w, bh, bw, lags=4, reach=40, leaf=1):
    """Random per-cell grids; with ``leaf`` > 1, constant over leaf x leaf cells (runs of cells
    that share mode and vectors, as real charts have)."""
    gh, gw = -(-h // bh) + 1, -(-w // bw) + 1  # grids may be larger than the plane
    lh, lw = -(-gh // leaf), -(-gw // leaf)
    modes = rng.integers(0, NUM_MODES, (lh, lw)).astype(np.int8)
    slots = rng.integers(0, lags, (lh, lw)).astype(np.int64)
    slots2 = rng.integers(0, lags, (lh, lw)).astype(np.int64)
    big = rng.random((lh, lw)) < 0.2
    mv = rng.integers(-reach, reach + 1, (4, lh, lw)).astype(np.int32)
    mv[:, big] *= 50  # far outside the frame: edge clamps
    bi = (rng.random((lh, lw)) < 0.3).astype(np.int8)
    grids = [modes, slots, mv[0], mv[1], bi, slots2, mv[2], mv[3]]
    return [np.ascontiguousarray(np.repeat(np.repeat(g, leaf, 0), leaf, 1)[:gh, :gw]) for g in grids]


@pytest.mark.parametrize("h, w, bh, bw, fby, fbx", CASES)
@pytest.mark.parametrize("quarter", [True, False])
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("leaf", [1, 2, 4])
def test_motion_compensate_matches_reference(h, w, bh, bw, fby, fbx, quarter, seed, leaf):
    rng = np.random.default_rng(seed)
    maxval = 1023 if seed == 2 else 255
    refs = rng.integers(0, maxval + 1, (4, h, w)).astype(np.int32)
    if quarter:
        ups = np.zeros((4, 4 * (h + 2 * PAD), 4 * (w + 2 * PAD)), np.uint16)
        for s in range(4):
            upsample_h264(refs[s], PAD, maxval, ups[s])
        fby = fbx = 2
    else:
        ups = np.zeros((1, 1, 1), np.int32)
    chart = _chart(rng, h, w, bh, bw, leaf=leaf)
    # the reference reads whole quarter-sample planes; the kernel computes H.264's samples of just
    # the blocks used (full-resolution planes: maxval given), or interpolates bilinearly
    t, edges = motion_compensate(refs, *chart, bh, bw, fby, fbx, PAD, 1, maxval if quarter else -1)
    t0, edges0 = ref.motion_compensate(refs, ups, *chart, bh, bw, fby, fbx, PAD, 1)
    read = _edges_read(chart[0], h, w, bh, bw)
    assert np.array_equal(t, t0)
    assert np.array_equal(edges[read], edges0[read])


def _edges_read(modes, h, w, bh, bw):
    """Where the predictor reads ``edges`` (INTER_MED cells' left column and top row, beyond the
    plane's own border), the only places motion_compensate has to fill."""
    med = np.repeat(np.repeat(modes == INTER_MED, bh, 0), bw, 1)[:h, :w]
    left = np.zeros((h, w), bool)
    left[:, bw::bw] = True
    top = np.zeros((h, w), bool)
    top[bh::bh, :] = True
    corner = (left | top)
    corner[0, :] = False
    corner[:, 0] = False
    return np.stack([med & left, med & top, med & corner])


@pytest.mark.parametrize("h, w", [(1, 1), (2, 5), (19, 33), (48, 64)])
@pytest.mark.parametrize("maxval", [255, 1023, 65535])
def test_upsample_phases_is_the_quarter_plane_by_phase(h, w, maxval):
    """The search's phase planes hold upsample_h264's plane: out[fy, fx, y, x] = up[4y + fy, 4x + fx]."""
    from triadic.kernels.motion import upsample_phases

    rng = np.random.default_rng(h * w + maxval)
    src = rng.integers(0, maxval + 1, (h, w)).astype(np.int32)
    up = np.zeros((4 * (h + 2 * PAD), 4 * (w + 2 * PAD)), np.int32)
    upsample_h264(src, PAD, maxval, up)
    dtype = np.uint8 if maxval <= 0xFF else np.uint16  # as search.ReferencePlanes keeps them
    out = np.zeros((4, 4, h + 2 * PAD, w + 2 * PAD), dtype)
    upsample_phases(src, PAD, maxval, out)
    assert np.array_equal(out, up.reshape(h + 2 * PAD, 4, w + 2 * PAD, 4).transpose(1, 3, 0, 2))


@pytest.mark.parametrize("h, w, bh, bw, fby, fbx", CASES)
@pytest.mark.parametrize("step", [1, 3, 9])
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("leaf", [1, 3])
@pytest.mark.parametrize("wp", [False, True])
def test_decode_plane_matches_reference(h, w, bh, bw, fby, fbx, step, seed, leaf, wp):
    rng = np.random.default_rng(seed)
    maxval = 255 if seed else 65535
    src = rng.integers(0, maxval + 1, (h, w)).astype(np.int32)
    if seed == 1:  # smooth content too, where predictions are good
        src = np.clip(np.add.outer(np.arange(h) * 3, np.arange(w) * 2) + rng.integers(0, 3, (h, w)), 0, maxval).astype(np.int32)
    t = rng.integers(0, maxval + 1, (h, w)).astype(np.int32)
    edges = rng.integers(0, maxval + 1, (3, h, w)).astype(np.int32)
    modes = _chart(rng, h, w, bh, bw, leaf=leaf)[0]
    if seed == 2:
        modes[:] = INTRA
    if wp:  # about half the intra cells use the weighted predictor, on some rows none do
        pick = (modes == INTRA) & (rng.integers(0, 2, modes.shape) == 1)
        pick[::3] = False
        modes[pick] = INTRA_WP
    args = (t, edges, modes, bh, bw, maxval, step)
    q, rec = _encode_plane(src, *args)
    assert np.array_equal(_decode_plane(q, *args), rec)
    assert np.array_equal(ref._decode_plane(q, *args), rec)
    if step == 1:  # the encoder's lossless residual
        assert np.array_equal(residual_lossless(src, t, edges, modes, bh, bw, maxval), q)
    else:  # and its near-lossless one
        fast_q, fast_rec = residual_near_lossless(src, *args)
        assert np.array_equal(fast_q, q) and np.array_equal(fast_rec, rec)
    wild = rng.integers(-(maxval + 1) // 2, (maxval + 1) // 2, (h, w)).astype(np.int32)
    assert np.array_equal(_decode_plane(wild, *args), ref._decode_plane(wild, *args))


@pytest.mark.parametrize("maxval, step", [(255, 3), (1023, 27), (65535, 243)])
def test_the_near_lossless_residual_is_the_definitions_whatever_t_holds(maxval, step):
    """residual_near_lossless quantises through a table over the residuals its predictions can
    leave; a T outside the sample range (which motion compensation does not produce) only widens
    the table: still _encode_plane's q and reconstruction."""
    rng = np.random.default_rng(maxval)
    h, w, bh = 19, 23, 4
    src = rng.integers(0, maxval + 1, (h, w)).astype(np.int32)
    t = rng.integers(-maxval // 2, maxval + maxval // 2, (h, w)).astype(np.int32)
    edges = rng.integers(0, maxval + 1, (3, h, w)).astype(np.int32)
    modes = rng.choice(np.array([INTER, INTER_MED, INTRA, INTRA_WP], np.int8), size=(-(-h // bh), -(-w // bh)))
    args = (t, edges, modes, bh, bh, maxval, step)
    q, rec = _encode_plane(src, *args)
    fast_q, fast_rec = residual_near_lossless(src, *args)
    assert np.array_equal(fast_q, q) and np.array_equal(fast_rec, rec)


@pytest.mark.parametrize("h, w, bh", [(1, 1, 4), (7, 5, 2), (24, 31, 4)])
def test_wp_prediction_is_the_predictor_of_an_all_wp_plane(h, w, bh):
    """The search's estimate (state at every sample from row 0) is exactly the weighted predictor
    of a plane whose cells all use it."""
    rng = np.random.default_rng(h * w)
    src = rng.integers(0, 256, (h, w)).astype(np.int32)
    modes = np.full((-(-h // bh), -(-w // bh)), INTRA_WP, np.int8)
    q, _ = _encode_plane(src, np.zeros((1, 1), np.int32), np.zeros((1, 1, 1), np.int32), modes, bh, bh, 255, 1)
    want = (src - wp_prediction(src, 255) + 128) % 256 - 128
    assert np.array_equal(q, want)


@pytest.mark.parametrize("h, w", [(1, 1), (2, 3), (17, 9), (40, 33)])
@pytest.mark.parametrize("sy, sx", [(0, 0), (1, 1), (0, 1)])
@pytest.mark.parametrize("use_prev, use_luma", [(True, False), (False, True), (True, True)])
def test_expected_magnitude_matches_reference(h, w, sy, sx, use_prev, use_luma):
    rng = np.random.default_rng(h * w + sy)
    luma = rng.integers(-300, 300, (h, w)).astype(np.int32)
    ch, cw = -(-h >> sy), -(-w >> sx)
    prev = rng.integers(-70000, 70000, (ch, cw)).astype(np.int32) if use_prev else np.zeros((1, 1), np.int32)
    if use_prev and not use_luma:
        prev = rng.integers(-70000, 70000, (h, w)).astype(np.int32)
    args = (prev, luma, sy, sx, use_prev, use_luma)
    assert np.array_equal(ck.expected_magnitude(*args), ref.expected_magnitude(*args))


def _pass_state(rng, h, w, k, phase, density):
    """A partial residual as the decoder holds it before phase ``phase`` of plane k."""
    top = k + 1 + int(rng.integers(0, 3))
    q = rng.integers(-(3 ** top) // 2, 3 ** top // 2 + 1, (h, w))
    q[rng.random((h, w)) > density] = 0
    from triadic.kernels.ternary import _digits
    digits = _digits(q.astype(np.int32).ravel(), top + 1).reshape(top + 1, h, w)
    above = sum(digits[j].astype(np.int64) * 3 ** j for j in range(k + 1, top + 1))
    dig = np.zeros((h, w), np.int8)
    for ph in range(phase):
        py, px = ck.PHASES[ph]
        dig[py::2, px::2] = digits[k, py::2, px::2]
    v = (above + dig.astype(np.int64) * 3 ** k).astype(np.int32)
    return v, dig


def _neighbour_digits(dig):
    """nz as apply_signs keeps it: per sample, its 8 neighbours' positive digits + 16 x negative."""
    h, w = dig.shape
    p = np.pad(dig.astype(np.int64), 1)
    nz = np.zeros((h, w), np.int64)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                d = p[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
                nz += (d > 0) + 16 * (d < 0)
    return nz.astype(np.uint8)


@pytest.mark.parametrize("h, w", [(1, 1), (3, 2), (16, 16), (19, 37), (33, 20)])
@pytest.mark.parametrize("k", [0, 1, 4])
@pytest.mark.parametrize("phase", range(4))
def test_contexts_match_reference(h, w, k, phase):
    rng = np.random.default_rng(h * 100 + w + k)
    for density in (0.1, 0.9):
        v, dig = _pass_state(rng, h, w, k, phase, density)
        above = (v - dig.astype(np.int32) * 3 ** k).astype(np.int32)  # v before plane k's digits
        where = np.flatnonzero(dig).astype(np.int32)
        nz = np.zeros((h, w), np.uint8)
        got = above.copy()
        ck.apply_signs(got, nz, where, (dig.ravel()[where] > 0).astype(np.int32), int(3 ** k))
        assert np.array_equal(nz, _neighbour_digits(dig)) and np.array_equal(got, v)
        kb_shape = (-(-h // ck.KBLOCK), -(-w // ck.KBLOCK))
        is_open = (rng.random(kb_shape) < 0.7).astype(np.int8)
        e16 = rng.integers(-1, 16 * 3 ** (k + 2), (h, w)).astype(np.int32)
        cls = rng.integers(0, ck.SAMPLE_CLASSES, (h, w)).astype(np.int8)
        # sign contexts read the prediction's shape (prediction_shape): T's curvature in every
        # class (flat where T is constant) and its trend; keyframes: none, the middle tilt
        t = rng.integers(0, 2 * 3 ** k + 1, (h, w)).astype(np.int32)
        t[:h // 2, :w // 2] = 5
        prev = np.where(rng.random((h, w)) < 0.3, t, rng.integers(0, 2 * 3 ** k + 1, (h, w))).astype(np.int32)
        for inter in (True, False):
            if inter:
                lap, trend = ref.prediction_shape(t, prev, cls)
                shape_of_t = ck.mix_prediction_activity(e16.copy(), t, prev, cls)
            else:
                lap, trend = np.zeros((h, w), np.int32), np.ones((h, w), np.int8)
                shape_of_t = np.full((h, w), ck.FLAT, np.uint8)
            half = ((h + 1) // 2) * ((w + 1) // 2)
            pos_k, ctx_k, sbase_k = (np.full((4, half), -7, np.int32) for _ in range(3))
            n = ck.plane_contexts(above, is_open, ck.KBLOCK, e16, cls, shape_of_t, k, 1, int(3 ** k), pos_k, ctx_k,
                                  sbase_k)
            pos, ctx = ck.magnitude_contexts(nz, pos_k[phase, :n[phase]], ctx_k[phase, :n[phase]], phase)
            pos0, ctx0 = ref.magnitude_contexts(v, dig, is_open, ck.KBLOCK, e16, cls, k, phase, 1, int(3 ** k))
            assert np.array_equal(pos, pos0) and np.array_equal(ctx, ctx0)
            mag = (rng.random(pos.size) < 0.5).astype(np.int32)
            expected = ref.sign_contexts(v, dig, pos[mag != 0], cls, lap, trend, k, phase, 1, int(3 ** k))
            where, sctx = ck.sign_contexts(nz, pos, mag, sbase_k[phase, :n[phase]], phase)
            assert np.array_equal(where, pos[mag != 0]) and np.array_equal(sctx, expected)


@pytest.mark.parametrize("h, w, bh, bw", [(1, 1, 4, 4), (17, 9, 2, 2), (40, 33, 4, 4), (13, 29, 4, 2), (9, 7, 1, 1)])
def test_sample_classes(h, w, bh, bw):
    """Every sample takes its cell's mode; an inter sample next to a sample of a cell with another
    mode, lag or vector is marked EDGE."""
    rng = np.random.default_rng(h + w)
    gh, gw = -(-h // bh), -(-w // bw)
    modes = rng.choice(np.array([INTRA, INTER, INTER_MED, INTRA_WP], np.int8), (gh, gw))
    lags = rng.integers(1, 3, (gh, gw)).astype(np.int8)
    mvy = rng.integers(-1, 2, (gh, gw)).astype(np.int32)
    mvx = rng.integers(-1, 2, (gh, gw)).astype(np.int32)
    same = rng.random((gh, gw)) < 0.5  # runs of cells of one leaf
    for a in (modes, lags, mvy, mvx):
        a[:, 1:][same[:, 1:]] = a[:, :-1][same[:, 1:]]
    cells = lambda a: np.repeat(np.repeat(a, bh, axis=0), bw, axis=1)[:h, :w]
    key = cells(((modes.astype(np.int64) * 3 + lags) * 5 + mvy + 2) * 5 + mvx + 2)
    edge = np.zeros((h, w), bool)
    edge[1:] |= key[1:] != key[:-1]
    edge[:-1] |= key[:-1] != key[1:]
    edge[:, 1:] |= key[:, 1:] != key[:, :-1]
    edge[:, :-1] |= key[:, :-1] != key[:, 1:]
    m = cells(modes)
    expected = m + ck.EDGE * (edge & ((m == INTER) | (m == INTER_MED)))
    assert np.array_equal(ck.sample_classes(modes, lags, mvy, mvx, bh, bw, h, w), expected)


@pytest.mark.parametrize("h, w", [(1, 1), (1, 7), (6, 1), (19, 33)])
def test_mix_prediction_activity(h, w):
    rng = np.random.default_rng(h * 31 + w)
    t = rng.integers(0, 1024, (h, w)).astype(np.int32)
    e16 = rng.integers(-1, 5000, (h, w)).astype(np.int32)
    expected = e16.copy()
    ref.mix_activity(expected, ref.prediction_activity(t))
    prev = rng.integers(0, 1024, (h, w)).astype(np.int32)
    ck.mix_prediction_activity(e16, t, prev, np.full((h, w), INTER, np.int8))
    assert np.array_equal(e16, expected)


@pytest.mark.parametrize("h, w", [(1, 1), (1, 7), (6, 1), (19, 33)])
@pytest.mark.parametrize("scale", [1, 3 ** 6, 3 ** 11])
def test_shape_of_t(h, w, scale):
    """mix_prediction_activity's byte per inter sample: prediction_shape's trend, the sign of its
    lap and how many of 4·3^j (j < 12) |lap| exceeds; FLAT in the others."""
    rng = np.random.default_rng(h * 7 + w + scale)
    t = (rng.integers(0, 16, (h, w)) * scale).astype(np.int32)
    t[rng.random((h, w)) < 0.3] = 5 * scale
    prev = np.where(rng.random((h, w)) < 0.3, t, rng.integers(0, 16 * scale, (h, w))).astype(np.int32)
    cls = rng.choice(np.array([INTRA, INTER, INTER_MED, INTRA_WP], np.int8), (h, w))
    cls[rng.random((h, w)) < 0.3] += ck.EDGE
    inter = (cls & 3 == INTER) | (cls & 3 == INTER_MED)
    lap, trend = ref.prediction_shape(t, prev, np.full((h, w), INTER, np.int8))
    shape = ck.mix_prediction_activity(np.zeros((h, w), np.int32), t, prev, cls)
    above = sum((np.abs(lap.astype(np.int64)) > 4 * 3 ** j).astype(np.int64) for j in range(12))
    assert np.array_equal(shape, np.where(inter, trend + ((np.sign(lap) + 1) << 2) + (above << 4), ck.FLAT))


@pytest.mark.parametrize("h, w", [(1, 1), (1, 7), (6, 1), (19, 33)])
def test_prediction_shape(h, w):
    """In inter samples, 4T minus its four nearest neighbours (edges repeated) and the sign of
    T minus the previous frame, plus 1; 0 and 1 in intra ones."""
    rng = np.random.default_rng(h * 17 + w)
    t = rng.integers(0, 65536, (h, w)).astype(np.int32)
    prev = np.where(rng.random((h, w)) < 0.3, t, rng.integers(0, 65536, (h, w))).astype(np.int32)
    cls = rng.choice(np.array([INTRA, INTER, INTER_MED, INTRA_WP], np.int8), (h, w))
    p = np.pad(t.astype(np.int64), 1, mode="edge")
    lap = 4 * p[1:-1, 1:-1] - p[:-2, 1:-1] - p[2:, 1:-1] - p[1:-1, :-2] - p[1:-1, 2:]
    inter = (cls == INTER) | (cls == INTER_MED)
    got_lap, got_trend = ref.prediction_shape(t, prev, cls)
    assert np.array_equal(got_lap, np.where(inter, lap, 0))
    assert np.array_equal(got_trend, np.where(inter, np.sign(t - prev.astype(np.int64)) + 1, 1))


@pytest.mark.parametrize("contexts, alphabet, limit", [(1, 3, 8), (4, 3, 64), (10, 33, 1 << 12)])
@pytest.mark.parametrize("seed", range(3))
def test_symbol_counts_match_reference(contexts, alphabet, limit, seed):
    """The categorical counts of the chart's symbols: probabilities and updates (halving past
    the limit included, and a prior already past it) as the numpy definitions give them."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, limit, (contexts, alphabet)).astype(np.int64)
    counts[0, 0] = limit + 5  # a context past the limit before any update: halved by the first
    want = counts.copy()
    halved = False
    for _ in range(20):
        n = int(rng.integers(0, 300))
        ctx = rng.integers(0, contexts, n)
        symbols = rng.integers(0, alphabet, n)
        part = int(rng.integers(1, alphabet + 1))
        np.testing.assert_array_equal(ck.symbol_probabilities(counts, ctx, part),
                                      ref.symbol_probabilities(want, ctx, part))
        before = want.sum()
        ck.symbol_update(counts, ctx, symbols, limit)
        ref.symbol_update(want, ctx, symbols, limit)
        halved |= want.sum() < before + n
        np.testing.assert_array_equal(counts, want)
    assert halved


@pytest.mark.parametrize("h, w", [(1, 1), (1, 7), (5, 1), (13, 17), (33, 65)])
@pytest.mark.parametrize("maxval", [255, 1023])
@pytest.mark.parametrize("step", [1, 3, 9])
def test_intra_cells_is_the_cells_intra_cost(h, w, maxval, step):
    """search_frame's per-cell MED costs (row by row, branch-free) are motion._intra_cost of each
    cell, over the whole frame or a band of cell rows."""
    from triadic.kernels.motion import COST, _intra_cells, _intra_cost

    rng = np.random.default_rng(h * w + maxval + step)
    cur = rng.integers(0, maxval + 1, (h, w)).astype(np.int32)
    gh, gw = -(-h // 16) * 4, -(-w // 16) * 4
    want = np.zeros((gh, gw), np.int64)
    for cy in range(min(gh, -(-h // 4))):
        for cx in range(min(gw, -(-w // 4))):
            y0, x0 = 4 * cy, 4 * cx
            want[cy, cx] = _intra_cost(cur, y0, x0, min(y0 + 4, h), min(x0 + 4, w), maxval, COST, step)
    i64 = np.int64
    assert np.array_equal(_intra_cells(cur, 4, gh, gw, maxval, COST, step, i64(0), i64(gh)), want)
    band = np.zeros_like(want)
    band[4:8] = want[4:8]
    assert np.array_equal(_intra_cells(cur, 4, gh, gw, maxval, COST, step, i64(4), i64(8)), band)


@pytest.mark.parametrize("num_digits", [1, 2, 5, 11, 20])
def test_encoder_digits_are_ternary_digits(num_digits):
    """The encoder's digit planes (kernels/encode.digits, plane by plane) are ternary._digits."""
    from triadic.kernels.encode import digits
    from triadic.kernels.ternary import _digits

    top = (3 ** num_digits - 1) // 2
    rng = np.random.default_rng(num_digits)
    values = rng.integers(-min(top, 1 << 20), min(top, 1 << 20) + 1, 4099).astype(np.int32)
    values[:3] = [-min(top, (1 << 31) - 1), 0, min(top, (1 << 31) - 1)]
    assert np.array_equal(digits(values, num_digits), _digits(values, num_digits))


@pytest.mark.parametrize("h, w, kblock", [(1, 1, 4), (3, 5, 4), (4, 8, 4), (17, 33, 4), (9, 10, 3), (6, 7, 8)])
@pytest.mark.parametrize("num_digits", [1, 3, 12])
def test_block_digits_is_the_digits_of_each_blocks_largest_residual(h, w, kblock, num_digits):
    """The K map: per kblock x kblock block (cut short at the plane's edges), how many balanced
    ternary digits its largest |q| needs; zero blocks need none."""
    top = (3 ** num_digits - 1) // 2
    rng = np.random.default_rng(h * w * num_digits)
    q = rng.integers(-top, top + 1, (h, w)).astype(np.int32)
    q[rng.random((h, w)) < 0.5] = 0
    q[: kblock // 2, :] = 0  # whole blocks of zeros, blocks whose largest value lies in one row
    q.flat[0] = -top
    q[-1, -1] = top
    want = np.zeros((-(-h // kblock), -(-w // kblock)), np.int8)
    for by in range(want.shape[0]):
        for bx in range(want.shape[1]):
            largest = int(np.abs(q[by * kblock:(by + 1) * kblock, bx * kblock:(bx + 1) * kblock]).max())
            digits = 0
            while (3 ** digits - 1) // 2 < largest:
                digits += 1
            want[by, bx] = digits
    assert np.array_equal(ck.block_digits(q, kblock), want)


@pytest.mark.parametrize("h, w", [(1, 1), (1, 2), (2, 1), (3, 5), (17, 33)])
def test_half_plane_is_the_padded_2x2_mean(h, w):
    """The coarse search's plane: 2x2 means rounded down, odd edges replicated."""
    from triadic.kernels.motion import half_plane

    a = np.random.default_rng(h * w).integers(0, 65536, (h, w)).astype(np.int32)
    p = np.pad(a, ((0, h & 1), (0, w & 1)), mode="edge")
    want = (p[0::2, 0::2] + p[1::2, 0::2] + p[0::2, 1::2] + p[1::2, 1::2]) >> 2
    assert np.array_equal(half_plane(a), want)


@pytest.mark.parametrize("h, w, bh, bw", [(1, 1, 4, 4), (9, 7, 2, 2), (24, 31, 4, 4), (13, 20, 4, 2)])
@pytest.mark.parametrize("seed", range(3))
def test_intra_leaf_costs_are_the_codecs_residuals_costed(h, w, bh, bw, seed):
    """choose_intra's estimate on inter frames (motion.intra_leaf_costs): at every INTRA_WP cell,
    the cost of the residual the codec itself would code there with the weighted predictor
    (kernels/encode.residual_lossless, other cells inter with a perfect T) and of MED's
    (motion._intra_cost over the cell); zero at every other cell."""
    from triadic.kernels.motion import COST, _causal_cost, _intra_cost, intra_leaf_costs

    rng = np.random.default_rng(seed)
    maxval = 255
    # differences stay below maxval / 2, so the codec's wrapped residual is the plain one
    src = (100 + rng.integers(0, 40, (h, w))).astype(np.int32)
    modes = _chart(rng, h, w, bh, bw)[0]
    modes[modes != INTRA] = INTER
    modes[modes == INTRA] = INTRA_WP
    modes[::3] = INTER  # rows without a weighted-predictor cell restart its state
    if seed == 2:
        modes[:] = INTRA_WP
    got = intra_leaf_costs(src, modes, bh, bw, maxval, COST, 1)
    q = residual_lossless(src, src.copy(), np.zeros((3, h, w), np.int32), modes, bh, bw, maxval)
    for cy, cx in np.ndindex(modes.shape):
        y0, x0 = cy * bh, cx * bw
        y1, x1 = min(h, y0 + bh), min(w, x0 + bw)
        if modes[cy, cx] != INTRA_WP or y0 >= h or x0 >= w:
            assert got[0, cy, cx] == got[1, cy, cx] == 0
            continue
        assert got[0, cy, cx] == _intra_cost(src, y0, x0, y1, x1, maxval, COST, 1)
        assert got[1, cy, cx] == sum(_causal_cost(COST, int(r), 1) for r in q[y0:y1, x0:x1].ravel())
