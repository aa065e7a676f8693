"""The search's side-information estimates: lag and mode costs learnt from the previous charts,
and the search following them."""

import dataclasses
import math

import numpy as np
import pytest

from conftest import make_frames
from triadic import search
from triadic.chart import CELL, Chart
from triadic.kernels.predict import INTER, INTER_MED, INTRA, NUM_MODES
from triadic.model import prior_counts

ROOT = 16


def _chart(modes: np.ndarray, lags: np.ndarray, depth: int = 0) -> Chart:
    """A chart of ROOT x ROOT leaves (depth 0) or of half-size leaves (depth 1), given per leaf."""
    n = ROOT // CELL >> depth
    grow = np.ones((n, n), np.int8)
    base = Chart.empty(modes.shape[0] * n * CELL, modes.shape[1] * n * CELL, ROOT)
    return dataclasses.replace(base, depth=np.full(base.depth.shape, depth, np.int8),
                               modes=np.kron(modes.astype(np.int8), grow),
                               lags=np.kron(lags.astype(np.int8), grow))


def _bits(counts: np.ndarray) -> np.ndarray:
    return np.round(-256.0 * np.log2(counts / counts.sum(axis=-1, keepdims=True))).astype(np.int64)


def test_lag_costs_count_the_previous_charts_leaves():
    # six leaves of depth 1 (a quarter of a root block each): lag 1 four times, lag 3 twice,
    # and two intra leaves, which do not count
    modes = np.array([[INTER, INTER, INTER, INTRA], [INTER, INTER, INTER, INTRA]])
    lags = np.array([[1, 1, 3, 0], [1, 1, 3, 0]])
    prev = _chart(modes, lags, depth=1)
    prior = prior_counts("lag")[0].astype(np.float64) + 1.0
    expected = _bits(prior * (24.0 / prior.sum()) + np.array([4.0, 0.0, 2.0, 0.0]))
    assert np.array_equal(search.lag_costs(4, prev), expected)
    # fewer lags: only theirs count, the prior cut to them
    prior2 = prior[:2] * (24.0 / prior[:2].sum())
    assert np.array_equal(search.lag_costs(2, prev), _bits(prior2 + np.array([4.0, 0.0])))
    assert np.array_equal(search.lag_costs(1, prev), [0])


def test_lag_costs_follow_what_the_chart_uses():
    no_history = search.lag_costs(4, None)
    assert no_history[0] < no_history[1] <= no_history[2]  # the prior: the previous frame mostly
    ones = np.ones((4, 4))
    only_lag_1 = search.lag_costs(4, _chart(ones * INTER, ones))
    only_lag_2 = search.lag_costs(4, _chart(ones * INTER, ones * 2))
    assert only_lag_1[0] < no_history[0] and only_lag_1[1] > no_history[1]
    assert only_lag_2[1] < only_lag_2[0]


def test_mode_costs_count_transitions_per_leaf():
    prior = prior_counts("mode").astype(np.float64) + 1.0
    start = prior * (24.0 / prior.sum(axis=1, keepdims=True))
    older = _chart(np.array([[INTRA, INTER], [INTER, INTER_MED]]), np.array([[0, 1], [1, 1]]))
    prev = _chart(np.array([[INTER, INTER], [INTRA, INTER_MED]]), np.array([[1, 1], [0, 2]]))
    expected = start.copy()
    for ctx, mode in [(INTRA, INTER), (INTER, INTER), (INTER, INTRA), (INTER_MED, INTER_MED)]:
        expected[ctx, mode] += 1.0
    assert np.array_equal(search.mode_costs(prev, older), _bits(expected))
    # without both charts (after a keyframe) or with an all-intra previous chart: the prior alone
    assert np.array_equal(search.mode_costs(prev, None), _bits(start))
    intra = _chart(np.zeros((2, 2)), np.zeros((2, 2)))
    assert np.array_equal(search.mode_costs(intra, older), _bits(start))
    assert search.mode_costs(None, None).shape == (NUM_MODES + 1, NUM_MODES)


@pytest.mark.parametrize("dear", [INTER, INTER_MED])
def test_the_search_follows_the_mode_costs(dear, monkeypatch):
    """A mode whose symbol is made to cost 2^20 bits is never chosen (leaves, bi-prediction and
    warps alike), and the other inter mode takes its place."""
    frames = [f.planes[0].astype(np.int32) for f in make_frames("gray", 48, 64, 3, seed=4)]
    refs = np.stack([frames[1], frames[0]])
    lag_slots = np.array([0, 1], np.int64)

    def chart():
        return search.choose_chart(frames[2], refs, lag_slots, 8, None, ROOT, 8, 16, 255)

    free = chart()
    assert (free.modes == INTER).any() and (free.modes == INTER_MED).any()
    table = np.full((NUM_MODES + 1, NUM_MODES), 256, np.int64)
    table[:, dear] = 1 << 28
    monkeypatch.setattr(search, "mode_costs", lambda prev, older: table)
    forced = chart()
    other = INTER_MED if dear == INTER else INTER
    assert not (forced.modes == dear).any()
    assert (forced.modes == other).sum() > (free.modes == other).sum()


@pytest.mark.parametrize("step", [1, 9, 27])
def test_residual_costs_half_measured(step):
    from triadic.kernels import motion

    residual = np.array([0] * 90 + [1] * 6 + [-1] * 2 + [3] * 1 + [-200] * 1)
    # E = 1 (step 3), or no residual yet: the fixed curve
    for s, r in ((3, residual), (step, None), (step, residual[:0])):
        assert search.residual_costs(s, r) is motion.COST
    table = search.residual_costs(step, residual)
    top = 64
    counts = np.zeros(top + 1)
    counts[[0, 1, 3, top]] = [90, 8, 1, 1]  # |-200| counts at the top magnitude
    bits = -np.log2((counts + 0.5) / (100 + 0.5 * (top + 1))) + (np.arange(top + 1) > 0)
    curve = motion.COST / 256.0
    # measured: each magnitude's bits up to the top, the fixed curve's steps beyond, never
    # decreasing (2, never seen, costs more than 3, which then costs what 2 does)
    measured = np.concatenate([bits[:top], curve[top:] - curve[top - 1] + bits[top - 1]])
    measured = np.maximum.accumulate(measured)
    assert measured[3] == bits[2] > bits[3]
    expected = np.round(256 * (0.5 * measured + 0.5 * curve)).astype(np.int64)  # half and half
    assert np.array_equal(table, expected)
    assert (np.diff(table) >= 0).all() and table[0] < motion.COST[0]  # a zero: under 1 bit
    assert table[1] > motion.COST[1]  # a nonzero magnitude among so many zeros: dearer


def test_bi_prediction_tries_every_partner_of_the_best_lag():
    """A held frame (lag 2 repeats lag 1, as in cartoons) is the second best lag on its own but a
    useless partner: the search must pair lag 1 with lag 3, of which the frame is the mean."""
    a, c = (f.planes[0].astype(np.int32) for f in make_frames("gray", 64, 64, 2, seed=7, kind="noise"))
    cur = (a + c + 1) >> 1
    refs = np.stack([a, a, c])
    chart = search.choose_chart(cur, refs, np.array([0, 1, 2], np.int64), 8, None, ROOT, 8, 16, 255)
    cy, cx = chart.leaves()
    bi = chart.bi[cy, cx] == 1
    assert bi.mean() > 0.9
    pairs = {tuple(sorted((int(l1), int(l2)))) for l1, l2 in zip(chart.lags[cy, cx][bi], chart.lags2[cy, cx][bi])}
    assert pairs == {(1, 3)}
    # ... with the vectors that make it exact: zero
    assert not chart.mvy[cy, cx][bi].any() and not chart.mv2[:, cy, cx][:, bi].any()
    # and a search told not to try bi-prediction chooses none, nor lag 3 where it is not to
    alone = search.choose_chart(cur, refs, np.array([0, 1, 2], np.int64), 8, None, ROOT, 8, 16, 255,
                                plan=(np.ones(3, np.bool_), False))
    assert not alone.bi.any() and (alone.lags[cy, cx] > 0).all()
    no3 = search.choose_chart(cur, refs, np.array([0, 1, 2], np.int64), 8, None, ROOT, 8, 16, 255,
                              plan=(np.array([True, True, False]), True))
    assert not (no3.lags == 3).any() and not (no3.lags2 == 3).any()
    alone1 = search.choose_chart(cur, refs, np.array([0, 1, 2], np.int64), 8, None, ROOT, 8, 16, 255,
                                 plan=(np.zeros(3, np.bool_), True))
    assert set(np.unique(alone1.lags[cy, cx])) <= {0, 1}  # lag 1 always
    assert set(np.unique(alone1.lags2[cy, cx][alone1.bi[cy, cx] == 1])) <= {1}  # and with itself only


def _two_views(seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """A noise frame and the rounded mean of it at two vectors, half a sample to the left and
    half a sample to the right (the quarter-sample plane's, edges replicated as the codec's): no
    single quarter-sample vector gives that mean."""
    a = make_frames("gray", 64, 64, 1, seed=seed, kind="noise")[0].planes[0].astype(np.int32)
    planes = search.ReferencePlanes()
    pad = 8
    planes.add(0, a, pad, 255, 1)
    halves = planes.phases[0, 0, 2].astype(np.int32)  # (y, x) holds the sample at x + 1/2
    return a, (halves[pad:-pad, pad - 1:-pad - 1] + halves[pad:-pad, pad:-pad] + 1) >> 1


def test_bi_prediction_pairs_a_lag_with_itself():
    """With one reference, a frame that is the mean of it at two vectors is bi-predicted from that
    reference twice, mostly at those two vectors (-2 and +2 quarter samples)."""
    a, cur = _two_views()
    chart = search.choose_chart(cur, a[None], np.array([0], np.int64), 8, None, ROOT, 8, 16, 255)
    cy, cx = chart.leaves()
    bi = chart.bi[cy, cx] == 1
    assert bi.mean() > 0.9 and (chart.lags[cy, cx][bi] == 1).all() and (chart.lags2[cy, cx][bi] == 1).all()
    exact = ((chart.mvy[cy, cx] == 0) & (chart.mv2[0, cy, cx] == 0)
             & (np.minimum(chart.mvx[cy, cx], chart.mv2[1, cy, cx]) == -2)
             & (np.maximum(chart.mvx[cy, cx], chart.mv2[1, cy, cx]) == 2))
    assert exact[bi].mean() > 0.8  # (a few leaves stop at a pair next to it: the search is local)


@pytest.mark.parametrize("max_error", [0, 4])
def test_a_lag_paired_with_itself_decodes_exactly(tmp_path, max_error):
    """The same frames through the codec with one reference: the decoder rebuilds the same-lag
    bi-prediction (lossless: exactly; near-lossless: within the bound, as the encoder did)."""
    import triadic
    from triadic.codec import analyse

    a, b = _two_views(seed=6)
    # (frame 2: the first that tries bi-prediction, search.search_plan)
    frames = [triadic.Frame((np.ascontiguousarray(p, dtype=np.uint8),), "gray") for p in (a, a, b)]
    path = tmp_path / "same.tri"
    triadic.encode(frames, path, jobs=1, references=1, max_error=max_error)
    chart = list(analyse(path))[2].chart
    assert ((chart.bi == 1) & (chart.lags2 == 1) & (chart.lags == 1)).mean() > 0.5
    for f, g in zip(frames, triadic.decode(path, jobs=1)):
        assert int(np.abs(f.planes[0].astype(int) - g.planes[0].astype(int)).max()) <= max_error


def test_lags_and_bi_prediction_are_tried_where_the_frame_before_took_them():
    """A segment's frame 2 and every PROBE_EVERY-th frame after it try every lag and
    bi-prediction; other frames try a lag, or bi-prediction, only when the frame before took it
    for at least KEEP_PERCENT of its cells (a bi-predicted cell takes both its lags), or could
    not take it (a lag it did not have)."""
    empty = Chart.empty(64, 64, ROOT)
    need = -(-empty.lags.size * search.KEEP_PERCENT // 100)  # just enough cells
    lags = np.zeros_like(empty.lags)
    lags.flat[:need] = 3
    lags.flat[need:2 * need - 1] = 4  # one cell short
    bi = np.zeros_like(empty.bi)
    bi.flat[:need] = 1
    lags2 = np.zeros_like(empty.lags2)
    lags2.flat[:need] = 2
    last = dataclasses.replace(empty, lags=lags, bi=bi, lags2=lags2)
    on, try_bi = search.search_plan(5, last, 4)
    assert on.tolist() == [True, True, True, False] and try_bi
    on, try_bi = search.search_plan(5, last, 4, levels=True)
    assert on.tolist() == [True, True, True, False] and not try_bi  # bi-predicted cells still count
    bi.flat[0] = 0
    on, try_bi = search.search_plan(5, dataclasses.replace(last, bi=bi), 4)
    assert on.tolist() == [True, False, True, False] and not try_bi  # lag 2 only as a bi partner
    on, try_bi = search.search_plan(5, empty, 4)
    assert on.tolist() == [True, False, False, False] and not try_bi
    for position in range(1, 30):
        on, try_bi = search.search_plan(position, empty, 4)
        # frame 2 tries everything; later, one thing per frame: lag l at 2 (l - 1) modulo
        # PROBE_EVERY, bi-prediction at 0
        probe = position % search.PROBE_EVERY
        assert try_bi == (position == 2 or probe == 0)
        # lag 1 always; the lags the frame before did not have (it had position - 1)
        assert on.tolist() == [position == 2 or lag == 1 or lag >= position or probe == 2 * (lag - 1)
                               for lag in range(1, 5)]
        assert on.sum() + try_bi <= 2 or position <= 4  # the search's time stays even
        # after a frame with levels leaves, the same lags and never bi-prediction
        after_levels = search.search_plan(position, empty, 4, levels=True)
        assert after_levels[0].tolist() == on.tolist() and not after_levels[1]


def test_an_encode_that_stops_trying_lags_gives_the_same_bytes_with_a_search_thread(tmp_path, monkeypatch):
    """Frames that are their predecessor shifted take neither bi-prediction nor lags after the
    first, so the search stops trying them between probe frames; the search thread must make
    the same decisions."""
    import triadic

    decisions = []
    rule = search.search_plan

    def plan(*args):
        decisions.append(rule(*args))
        return decisions[-1]

    monkeypatch.setattr(search, "search_plan", plan)
    base = make_frames("gray", 48, 64, 1, seed=3, kind="noise")[0].planes[0]
    frames = [triadic.Frame(planes=(np.ascontiguousarray(np.roll(base, k, axis=1)),), pix_fmt="gray")
              for k in range(9)]
    one, two = tmp_path / "one.tri", tmp_path / "two.tri"
    triadic.encode(frames, one, jobs=1)
    serial, decisions[:] = decisions[:], []
    triadic.encode(frames, two, jobs=2)
    summary = [(on.tolist(), bi) for on, bi in serial]
    assert summary == [(on.tolist(), bi) for on, bi in decisions]
    assert any(bi for _, bi in summary) and not all(bi for _, bi in summary)
    assert any(len(on) > 1 and not all(on) for on, _ in summary)
    assert one.read_bytes() == two.read_bytes()
    assert all(f.equals(g) for f, g in zip(triadic.decode(one), frames))


@pytest.mark.parametrize("true_y, true_x", [(0, 11), (-14, 23), (9, -18)])
def test_vector_refinement_walks_to_the_least_sad(true_y, true_x):
    """A block whose best match lies several samples away while its only candidate is zero:
    integer steps walk to the nearest whole sample, the half step and quarter steps on from there
    (with one integer window and one quarter step, (0, 11) stopped at 7)."""
    from triadic.kernels import motion

    y, x = np.mgrid[0:64, 0:96]
    ref = np.round(128 + 100 * np.sin(x / 11.0) * np.cos(y / 13.0)).astype(np.int32)
    planes = search.ReferencePlanes()
    pad = 8
    planes.add(0, ref, pad, 255, 1)
    y0, x0 = 24, 32
    cur = np.zeros_like(ref)
    # the block as the quarter-sample plane shows it at the true vector (phase planes:
    # phases[slot, vy & 3, vx & 3] holds row pad + y + vy >> 2, column pad + x + vx >> 2)
    oy, ox = 4 * pad + true_y, 4 * pad + true_x
    cur[y0:y0 + 16, x0:x0 + 16] = planes.phases[0, oy & 3, ox & 3, y0 + (oy >> 2):y0 + (oy >> 2) + 16,
                                                x0 + (ox >> 2):x0 + (ox >> 2) + 16]
    zero = np.zeros(1, np.int32)
    vy, vx = motion._best_vector(cur, planes.phases, 0, pad, y0, x0, y0 + 16, x0 + 16, zero, zero,
                                 np.int64(0), np.int64(0), 32, np.int64(6))
    assert (vy, vx) == (true_y, true_x)


def test_descent_by_estimated_bits_matches_a_plain_descent():
    """motion._descend skips the neighbours of its previous position and stops each costing at a
    bound; neither may change where it ends: a plain walk (every neighbour, whole costs) agrees."""
    from triadic.kernels import motion

    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:64, 0:96]
    ref = np.clip(np.round(128 + 90 * np.sin(x / 7.0 + y / 19.0) + rng.normal(0, 3, (64, 96))), 0, 255)
    ref = ref.astype(np.int32)
    cur = np.roll(ref, (1, 2), axis=(0, 1)) + rng.integers(-2, 3, ref.shape).astype(np.int32)
    cur = np.clip(cur, 0, 255).astype(np.int32)
    planes = search.ReferencePlanes()
    planes.add(0, ref, 8, 255, 1)
    cost = motion.COST
    tb = np.empty((17, 17), np.int64)
    i64 = np.int64
    for y0, x0, start in ((16, 16, (0, 0)), (32, 48, (6, 5)), (8, 24, (-3, 9))):
        args = (cur, planes.phases, i64(0), i64(8), i64(y0), i64(x0), i64(y0 + 16), i64(x0 + 16))

        def costs(vy, vx):
            return motion._leaf_costs(*args, i64(vy), i64(vx), i64(255), cost, cost, i64(1), False, i64(0), i64(vy),
                                      i64(vx), tb, motion._NO_LIMIT)

        def bits(vy, vx):
            a, b = costs(vy, vx)
            return min(a + 300, b + 500) + 200 + motion._mvd_cost(i64(vy)) + motion._mvd_cost(i64(vx))

        vy, vx = start
        for _ in range(8):  # the plain walk
            best, move = bits(vy, vx), (vy, vx)
            for k in range(9):
                ty, tx = vy + k // 3 - 1, vx + k % 3 - 1
                if bits(ty, tx) < best:
                    best, move = bits(ty, tx), (ty, tx)
            if move == (vy, vx):
                break
            vy, vx = move
        a, b = costs(*start)
        got = motion._descend(*args, i64(start[0]), i64(start[1]), i64(0), i64(0), i64(200), i64(300), i64(500),
                              i64(255), cost, cost, i64(1), tb, a, b, i64(8))
        assert got[:2] == (vy, vx) and got[2:] == costs(vy, vx)
        assert (vy, vx) != start or start == (0, 0)


def _coarse_by_definition(cur2, ref2, y0, x0, y1, x1, r2):
    """The coarse search's winner by its definition: the first displacement in raster order with
    the least SAD of the block's 2x2-averaged samples against the reference, edges extended."""
    cy0, cx0 = y0 // 2, x0 // 2
    cy1, cx1 = max(cy0 + 1, (y1 + 1) // 2), max(cx0 + 1, (x1 + 1) // 2)
    h, w = ref2.shape
    block = cur2[cy0:cy1, cx0:cx1].astype(np.int64)
    ys, xs = np.arange(cy0, cy1), np.arange(cx0, cx1)
    best, winner = None, None
    for dy in range(-r2, r2 + 1):
        for dx in range(-r2, r2 + 1):
            moved = ref2[np.clip(ys + dy, 0, h - 1)][:, np.clip(xs + dx, 0, w - 1)]
            sad = int(np.abs(block - moved).sum())
            if best is None or sad < best:
                best, winner = sad, (2 * dy, 2 * dx)
    return winner


@pytest.mark.parametrize("kind", ["noise", "shifted", "flat"])
def test_coarse_search_finds_the_least_sad(kind):
    """_coarse_vector skips displacements by a lower bound on their SAD (quadrant sums);
    what it returns is still the full search's first least-SAD displacement, whatever the two
    seeds, for whole, edge and partial blocks."""
    from triadic.kernels import motion

    rng = np.random.default_rng(7)
    h2, w2, r2 = 23, 29, 5
    ref2 = rng.integers(0, 256, (h2, w2)).astype(np.int32)
    if kind == "shifted":  # the block's samples are in the reference, moved: an exact match exists
        cur2 = np.roll(ref2, (2, -3), axis=(0, 1))
    elif kind == "flat":  # ties everywhere: the raster order decides
        ref2[:] = 100
        cur2 = np.full_like(ref2, 100)
        cur2[::3] = 101
    else:
        cur2 = rng.integers(0, 256, (h2, w2)).astype(np.int32)
    refs2 = ref2[None]
    sums = motion._box_sums(ref2, r2)
    lb = np.empty(2 * r2 + 1, dtype=np.int64)
    for y0, x0, y1, x1 in [(16, 16, 32, 32), (0, 0, 16, 16), (32, 40, 46, 58), (8, 2, 12, 5), (44, 0, 46, 16)]:
        want = _coarse_by_definition(cur2, ref2, y0, x0, y1, x1, r2)
        seeds = [(0, 0), (-5, 5), (3, -1), (9, 9)]
        for seed, second in zip(seeds, [(0, 0), (3, -1), (-5, 5), (-9, 2)]):
            got = motion._coarse_vector(cur2, refs2, 0, y0, x0, y1, x1, r2, np.int64(seed[0]), np.int64(seed[1]),
                                        np.int64(second[0]), np.int64(second[1]), sums, lb)
            assert tuple(int(g) for g in got) == want, (kind, (y0, x0, y1, x1), seed, second)


@pytest.mark.parametrize("step", [1, 3, 9, 27, 81, 243])
def test_quantised_costs_are_the_costs_with_the_step(step):
    """search_frame costs near-lossless residuals from motion.quantised_costs's tables with step
    1: for every magnitude (and sign) a sample of the bit depth can have, the same bits as _cost
    and _causal_cost with the step, from the fixed curve and from a measured table alike, plus the
    weighted square of the magnitude's quantisation error (none when lossless, and at E = 121).
    The tables stop at the depth's largest magnitude (maxval + 1 entries)."""
    from triadic.kernels import motion

    planes = round(math.log(step, 3))
    weight = int(motion.DISTORTION_WEIGHT[min(planes, motion.DISTORTION_WEIGHT.size - 1)])
    assert (weight > 0) == (1 <= planes <= 4)
    measured = search.residual_costs(9, np.array([0] * 50 + [1] * 30 + [-2] * 15 + [5] * 5))
    for table in (motion.COST, measured):
        for maxval in (255, 1023, 65535):
            plain, causal = motion.quantised_costs(table, step, maxval + 1)
            assert plain.size == causal.size == maxval + 1
            magnitudes = sorted(set(range(300)) | {maxval // 2, maxval - 1, maxval})
            for r in [m for m in magnitudes if m <= maxval] + [-m for m in magnitudes if m <= maxval]:
                a = abs(r)
                error = a - step * round(a / step)  # (step is odd: no ties to round)
                extra = (weight * error * error) >> 6
                assert motion._cost(plain, r, 1) == motion._cost(table, r, step) + extra
                assert motion._causal_cost(causal, r, 1) - extra == motion._causal_cost(table, r, step)
            assert plain.min() == plain[0] and causal.min() == causal[0]  # search_frame's cost_min


def _compare_early_exit(monkeypatch) -> list:
    """search_frame made to search each frame with and without its early exit and to check that
    both give the same chart; returns the list of charts it gave."""
    from triadic.kernels import motion

    full_search = motion.search_frame
    charts = []

    def both(*args):  # (the early exit is the third argument from the end, before the band)
        fast = full_search(*args[:-3], True, *args[-2:])
        full = full_search(*args[:-3], False, *args[-2:])
        for a, b in zip(fast, full):
            assert np.array_equal(a, b)
        charts.append(fast)
        return fast

    monkeypatch.setattr(motion, "search_frame", both)
    return charts


@pytest.mark.parametrize("max_error", [0, 1, 4])
def test_the_search_skips_children_only_where_they_could_not_win(tmp_path, monkeypatch, max_error):
    """search_frame's early exit (a node's children left unsearched when no partition of it could
    cost less than the node as one leaf) gives the chart the full search gives, on frames with
    flat, static parts (where it exits: a search that let those children cost nothing would
    split them), moving noise, and edge blocks cut by the frame, at every root size, lossless and
    near-lossless."""
    import triadic

    exits = _compare_early_exit(monkeypatch)
    rng = np.random.default_rng(max_error)
    h, w = 76, 108
    y, x = np.mgrid[0:h, 0:w]
    frames = []
    for t in range(5):
        luma = np.full((h, w), 90, np.int32)  # flat and static on the left
        moving = (128 + 60 * np.sin((x + 3 * t) / 6.0) * np.cos(y / 9.0)).astype(np.int32)
        luma[:, 40:] = moving[:, 40:] + rng.integers(-3, 4, (h, w - 40))
        luma[50:, :30] = np.roll(luma[50:, :30], t, axis=1)  # a textured corner that moves
        luma[50:, :30] += (x[50:, :30] * 7 % 23).astype(np.int32)
        frames.append(triadic.Frame(planes=(np.clip(luma, 0, 255).astype(np.uint8),), pix_fmt="gray"))
    for block_size in (16, 32, 64):
        out = tmp_path / f"b{block_size}.tri"
        triadic.encode(frames, out, max_error=max_error, block_size=block_size, keyint=10)
        decoded = list(triadic.decode(out))
        assert all(np.abs(d.planes[0].astype(int) - f.planes[0].astype(int)).max() <= max_error
                   for d, f in zip(decoded, frames))
    assert len(exits) == 3 * 4


def test_the_search_with_early_exit_gives_the_same_charts_on_real_footage(tmp_path, monkeypatch, carphone):
    import triadic

    charts = _compare_early_exit(monkeypatch)
    for max_error in (0, 4):
        triadic.encode(carphone, tmp_path / f"e{max_error}.tri", frames=4, max_error=max_error)
    assert len(charts) == 2 * 3 * len(search.search_bands(144, 16))  # (two bands)


@pytest.mark.parametrize("root", [16, 32, 64])
@pytest.mark.parametrize("h", [1, 16, 63, 64, 136, 272, 720, 1088])
def test_the_search_bands_cover_the_frame_in_whole_root_blocks(h, root):
    bands = search.search_bands(h, root)
    rows = -(-h // root)
    n = root // CELL
    assert len(bands) == min(search.MAX_BANDS, max(1, rows // search.BAND_ROOTS))
    assert bands[0][0] == 0 and bands[-1][1] == rows * n
    assert all(a[1] == b[0] for a, b in zip(bands, bands[1:]))
    assert all(r0 % n == 0 and r1 > r0 for r0, r1 in bands)
    heights = [(r1 - r0) // n for r0, r1 in bands]
    assert max(heights) - min(heights) <= 1


def test_bands_searched_in_any_order_or_at_once_give_the_same_chart():
    """A frame of three bands: searched one after the other, last first, or in three threads at
    once, the same chart (no band reads what another writes)."""
    from concurrent.futures import ThreadPoolExecutor

    frames = make_frames("gray", 200, 72, 3, seed=4)
    cur, refs = frames[2].planes[0].astype(np.int32), np.stack([f.planes[0] for f in frames[:2]]).astype(np.int32)
    slots = np.array([1, 0], np.int64)
    assert len(search.search_bands(200, ROOT)) == 3

    def chart(run=None):
        return search.choose_chart(cur, refs, slots, 8, None, ROOT, 8, 16, 255, run=run)

    def last_first(tasks):
        return [t() for t in tasks[::-1]][::-1]

    with ThreadPoolExecutor(3) as pool:
        charts = [chart(), chart(last_first), chart(lambda tasks: list(pool.map(lambda t: t(), tasks)))]
    for other in charts[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(dataclasses.astuple(charts[0]), dataclasses.astuple(other)))
    assert (charts[0].modes != INTRA).any()


def test_the_search_gives_intra_cells_no_lag_even_outside_the_frame(tmp_path, monkeypatch):
    """Every intra cell of the chart the search returns has lag 0, the cells beyond a frame whose
    sides are not multiples of the root block too (a node wholly outside the frame once kept the
    lag of the node searched at its place in the previous root block: a lag in the encoder's chart
    that the decoder's has not, counted by the next frame's search plan and lag costs)."""
    import triadic
    from triadic.kernels import motion

    search_frame = motion.search_frame
    charts = []

    def kept(*args):
        charts.append(search_frame(*args))
        return charts[-1]

    monkeypatch.setattr(motion, "search_frame", kept)
    frames = make_frames("gray", 40, 72, 5, seed=11)  # 16-sample roots: the last row and column cut
    triadic.encode(frames, tmp_path / "x.tri", keyint=10)
    assert len(charts) == 4
    for depth, modes, lags, *_ in charts:
        assert (lags[modes == INTRA] == 0).all()
        assert (lags[modes != INTRA] > 0).all()
