"""Encoder only: choose each frame's chart by estimated description length (MDL).

Per root block, a quadtree down to the preset's smallest leaf; per leaf, intra or inter with a
reference lag, a quarter-sample vector and INTER or INTER_MED, bi-prediction, and warps for
leaves of at least WARP_MIN samples; bottom-up pruning keeps a split only when it pays for its
side information (kernels/motion.py), priced from what the previous frames' charts and
residual cost (lag_costs, mode_costs, residual_costs); lags after the first and bi-prediction
only where the frame before took them (search_plan). ``ReferencePlanes`` keeps what the search
derives from each reference (its quarter-sample plane split by phase, its half-resolution plane),
computed once when the frame joins the window. The decoder never imports this module.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from .chart import CELL, WARP_MIN, Chart
from .kernels import motion
from .kernels.predict import INTRA, INTRA_WP, NUM_MODES, wp_prediction
from .model import prior_counts

#: Estimated bits (1/256) of one leaf's intra flag, and of one more split flag.
_FLAG_COST = 256
#: residual_costs: the quantiser step priced by the fixed curve alone (E = 1), and the magnitudes
#: counted one by one.
_FIXED_STEP = 3
_MEASURED_MAGNITUDES = 64
#: ... and the measured part's weight against motion.COST's.
_MEASURED_WEIGHT = 0.5
#: Weight, in leaves, of a learned prior in lag_costs and mode_costs (the priors' own strength).
_PRIOR_STRENGTH = 24.0


def _half(plane: np.ndarray) -> np.ndarray:
    """2x2 mean (rounded down), odd edges padded by replication."""
    return motion.half_plane(np.ascontiguousarray(plane))


class ReferencePlanes:
    """Encoder-only planes derived from each reference of the window, computed once when the
    frame joins it (not once per frame that searches it): the quarter-sample plane (H.264's
    interpolation, padded by ``pad``) split by phase (``motion.upsample_phases``) and the
    2x2-averaged plane of the coarse search."""

    def __init__(self) -> None:
        self.phases: np.ndarray | None = None  # (slots, 4, 4, H + 2 pad, W + 2 pad)
        self.halves: np.ndarray | None = None  # (slots, ceil(H/2), ceil(W/2))

    def add(self, slot: int, ref: np.ndarray, pad: int, maxval: int, slots: int) -> None:
        """Reference ``ref`` (luma, int32) is now in ring slot ``slot`` of ``slots``."""
        hq, wq = ref.shape[0] + 2 * pad, ref.shape[1] + 2 * pad
        # the narrowest type that holds the samples: the search reads these planes all over
        # (a block's sub-sample positions are in different phases), so the fewer bytes, the
        # fewer cache misses (uint8 against uint16: bikes' search ~10% faster)
        dtype = np.uint8 if maxval <= 0xFF else (np.uint16 if maxval <= 0xFFFF else np.int32)
        half = _half(ref)
        if self.phases is None or self.phases.shape != (slots, 4, 4, hq, wq) or self.phases.dtype != dtype:
            self.phases = np.empty((slots, 4, 4, hq, wq), dtype)
            self.halves = np.zeros((slots,) + half.shape, np.int32)
        motion.upsample_phases(ref, pad, maxval, self.phases[slot])
        self.halves[slot] = half


#: The search's bands: a frame of R rows of root blocks is searched as min(MAX_BANDS, max(1, R //
#: BAND_ROOTS)) bands of about equal height, each apart from the others (motion.search_frame),
#: so that two threads may share a frame's search (codec.FrameEncoder). Whatever the threads, the
#: same bands: the same chart. (Each band's top row predicts its vectors without the row above:
#: files 0.0-0.1% larger with four bands than with one.)
BAND_ROOTS = 4
MAX_BANDS = 4


def search_bands(h: int, root: int) -> list[tuple[int, int]]:
    """The search's bands of a frame ``h`` luma rows high: [(first cell row, end cell row), ...]."""
    rows = -(-h // root)
    count = min(MAX_BANDS, max(1, rows // BAND_ROOTS))
    n = root // CELL
    return [(b * rows // count * n, (b + 1) * rows // count * n) for b in range(count)]


def choose_chart(cur: np.ndarray, refs: np.ndarray | None, lag_slots: np.ndarray, pad: int,
                 prev: Chart | None, root: int, min_leaf: int, search_range: int, maxval: int,
                 step: int = 1, planes: ReferencePlanes | None = None, older: Chart | None = None,
                 residual: np.ndarray | None = None, descent: int = 0,
                 plan: tuple[np.ndarray, bool] | None = None, run=None) -> Chart:
    """The chart of luma plane ``cur`` given the reference stack (None: a keyframe, all intra).

    ``lag_slots[l - 1]`` is the slot of ``refs`` holding the frame at lag l; costs are
    estimated for residuals quantised with ``step`` (3^j in near-lossless mode). ``planes`` holds
    the derived planes of every slot in ``lag_slots`` (the encoder keeps them up to date); without
    it they are derived here. ``prev`` (the previous frame's chart: vector candidates, mode
    contexts, lag shares), ``older`` (the chart before it: how modes follow modes) and
    ``residual`` (the previous frame's quantised luma residual) price the side information and,
    near-lossless, the residual as the coder will (lag_costs, mode_costs, residual_costs).
    ``descent``: the most quarter-sample steps each vector then takes by estimated bits (the
    preset's; motion.search_frame). ``plan``: which lags the search tries, and whether it tries
    bi-prediction (search_plan; None: everything). ``run``: given the bands' searches (functions
    of no argument), returns what they return, in order (None: one after the other, here).
    """
    h, w = cur.shape
    chart = Chart.empty(h, w, root)
    if refs is None or lag_slots.size == 0:
        return chart
    if planes is None:
        planes = ReferencePlanes()
        for slot in lag_slots:
            planes.add(int(slot), refs[slot], pad, maxval, len(refs))
    prev_modes = prev.modes if prev is not None else np.full(chart.modes.shape, NUM_MODES, np.int8)
    prev_mvy = prev.mvy if prev is not None else chart.mvy
    prev_mvx = prev.mvx if prev is not None else chart.mvx
    sums = motion._box_sums(planes.halves[lag_slots[0]], max(1, search_range // 2))
    args = (cur, planes.phases, planes.halves, _half(cur), sums, lag_slots.astype(np.int64),
            lag_costs(lag_slots.size, prev), mode_costs(prev, older), pad, root, CELL,
            min_leaf, search_range, prev_modes, prev_mvy, prev_mvx, maxval, residual_costs(step, residual), step,
            WARP_MIN, descent, *(plan or (np.ones(lag_slots.size, np.bool_), True)), True)
    bands = search_bands(h, root)
    searches = [functools.partial(motion.search_frame, *args, np.int64(r0), np.int64(r1)) for r0, r1 in bands]
    parts = run(searches) if run is not None else [search() for search in searches]
    grids = parts[0]
    for (r0, r1), part in zip(bands[1:], parts[1:]):
        for grid, band in zip(grids, part):
            grid[..., r0:r1, :] = band[..., r0:r1, :]
    return Chart(root, *grids)


#: Every how many frames of a segment the search tries each lag and bi-prediction whatever the
#: frame before chose (search_plan), and the share of the cells (percent) that must have taken a
#: lag or bi-prediction in the frame before for the search to try it on the other frames.
PROBE_EVERY = 8
KEEP_PERCENT = 1


def search_plan(position: int, last: Chart | None, lags: int, levels: bool = False) -> tuple[np.ndarray, bool]:
    """Which of ``lags`` lags the search of the frame at ``position`` in its segment (0: the
    keyframe) tries (lag 1 always), and whether it tries bi-prediction, given ``last``, the chart
    the search chose for the frame before (before levels and intra leaves; None: not searched),
    and ``levels``, whether the frame before took levels leaves (choose_levels: an H.264 decode).

    Each lag after the first is about a sixth of the search's time, bi-prediction a fifth, and
    some footage hardly takes them: bigbuckbunny predicts at most 0.4% of a frame's cells from
    lag 2, 3 or 4 and bi-predicts at most 0.25%, where carphone and bikes take each lag for
    1-50% of their cells and bi-predict 0.6-50% of them. So a frame tries a lag, or
    bi-prediction, when at least KEEP_PERCENT of the cells of the frame before took it (a
    bi-predicted cell takes both its lags) or the frame before did not have that lag. The
    segment's frame 2 (the first with two references) tries everything; after it, each lag l
    > 1 is tried on the frames at 2 (l - 1) modulo PROBE_EVERY and bi-prediction on those at
    0, one thing per frame, so that no frame's search takes much longer than the others'. (When
    every PROBE_EVERY-th frame tried everything, its search took 2.5-3.5 times as long on
    bigbuckbunny, and in a two-thread encode the coding thread waited for it: 0.2-0.5 s of the
    2.0-2.8 s of 24 frames.) The rule reads only what every encoder of the segment has in the
    same order, so the bytes do not depend on the search thread.

    After a frame with levels, bi-prediction is not tried: the search prices leaves by their
    samples before choose_levels finds the levels, and a bi-predicted leaf takes the place of a
    single vector that could have been a levels leaf. On carphone, an H.264 decode, the frames
    with levels bi-predicted 8,736 cells and had 1,316 fewer levels cells; the clip's side
    information grew by 12.1 kbit and its residual fell by only 7.0 kbit (0.23% of the file).
    A bi flag priced at up to 12 bits instead of 1 did not help: the leaves it kept cost
    0.26% over none. (The slow preset, whose bi-predicted leaves start from vectors walked by
    estimated bits, gains from them there: FrameEncoder does not pass ``levels`` for it.)"""
    if position == 2 or last is None:
        return np.ones(lags, np.bool_), position == 2 and not levels
    probe = position % PROBE_EVERY
    bi = last.bi == 1
    enough = KEEP_PERCENT * last.lags.size
    # (lag ``position`` and beyond were not there for the frame before to take)
    on = np.array([l == 1 or l >= position or probe == 2 * (l - 1)
                   or 100 * np.count_nonzero((last.lags == l) | (bi & (last.lags2 == l))) >= enough
                   for l in range(1, lags + 1)], np.bool_)
    return on, (probe == 0 or 100 * np.count_nonzero(bi) >= enough) and not levels


#: Estimated bits (1/256) of splitting a leaf into four for levels leaves: a split flag and three
#: more leaves' mode, lag and vector.
_LEVELS_SPLIT_COST = 256 * 28


def choose_levels(chart: Chart, cur: np.ndarray, planes: ReferencePlanes, lag_slots: np.ndarray, pad: int,
                  maxval: int, step: int) -> Chart:
    """``chart`` with levels leaves (kernels/transform.py) where the frame is an H.264 decode.

    Lossless only. The frame's quantiser is the one at which the most residual blocks of the
    INTER leaves are exact H.264 inverse transforms (motion.detect_qp; none: the chart as it
    is). Then every leaf looks, near its own and its neighbours' vectors at every lag, for the
    vector the source's encoder used, whose residual is levels, and takes it where the levels
    cost less (motion.levels_leaves); a leaf that the source's encoder cut into four may be
    split for it. The split's side information is a guess (_LEVELS_SPLIT_COST), not tuned.
    """
    if step != 1 or lag_slots.size == 0:
        return chart
    ly, lx = chart.leaves()
    n = chart.root // CELL
    cur = np.ascontiguousarray(cur, dtype=np.int32)
    slots = lag_slots.astype(np.int64)
    qp = motion.detect_qp(cur, planes.phases, slots, pad, ly, lx, chart.depth, chart.modes,
                          chart.lags, chart.mvy, chart.mvx, chart.family, chart.bi, n, CELL)
    qp = int(qp)
    if qp < 0:
        return chart
    grids = {name: getattr(chart, name).copy()
             for name in ("depth", "modes", "lags", "mvy", "mvx", "family", "base", "warp", "bi", "lags2", "mv2")}
    tgrid = motion.levels_leaves(cur, planes.phases, slots, pad, ly, lx, grids["depth"], grids["modes"],
                                 grids["lags"], grids["mvy"], grids["mvx"], grids["family"], grids["base"],
                                 grids["warp"], grids["bi"], grids["lags2"], grids["mv2"], n, CELL, chart.max_depth,
                                 qp, motion.COST, maxval, _LEVELS_SPLIT_COST)
    if not tgrid.any():
        return chart
    return dataclasses.replace(chart, **grids, transform=tgrid, qp=qp)


def residual_costs(step: int, residual: np.ndarray | None) -> np.ndarray:
    """The search's table of estimated bits (1/256) of a residual by its magnitude (quantised
    with ``step``): half motion.COST's fixed curve, half the magnitudes' frequencies in
    ``residual`` (a recent frame's quantised luma residual, FrameEncoder's): -log2 of each
    magnitude's share up to _MEASURED_MAGNITUDES (plus a sign bit), the curve's steps beyond,
    never decreasing. The curve alone without a residual, and at E = 1 (step 3), where the
    measured half cost bigbuckbunny 1%. (Half: the frequencies are the frame's as a whole, while
    the coder's contexts make a nonzero residual cheaper where there are many; wholly measured,
    bikes' frames 60-89 at E = 4 grew by 4%.)"""
    if step == _FIXED_STEP or residual is None or not residual.size:
        return motion.COST
    top = _MEASURED_MAGNITUDES
    counts = motion.magnitude_counts(np.ascontiguousarray(residual), top)
    share = (counts + 0.5) / (counts.sum() + 0.5 * (top + 1))
    bits = -np.log2(share) + (np.arange(top + 1) > 0)
    return motion.blended_cost_table(bits, motion.COST, _MEASURED_WEIGHT)


def lag_costs(lags: int, prev: Chart | None) -> np.ndarray:
    """Estimated bits (1/256) of an inter leaf's reference lag, 1 .. ``lags``: the lag's share
    among the previous chart's inter leaves (counted per leaf, as the chart codes them), smoothed
    by its learned prior at the priors' strength (_PRIOR_STRENGTH counts). The chart codes lags
    under adaptive counts, so a lag that few leaves take costs more than a flat estimate says
    (and its search stops sooner)."""
    if lags <= 1:
        return np.zeros(1, np.int64)
    counts = _prior("lag", (1, lags))[0]
    if prev is not None:
        lag = prev.lags.astype(np.int64)
        inter = (lag >= 1) & (lag <= lags)
        cells = (prev.root // CELL >> prev.depth.astype(np.int64)) ** 2  # of each cell's leaf
        counts += np.bincount(lag[inter] - 1, weights=1.0 / cells[inter], minlength=lags)[:lags]
    return _bits(counts)


def mode_costs(prev: Chart | None, older: Chart | None) -> np.ndarray:
    """Estimated bits (1/256) of a leaf's mode symbol (column: INTRA, INTER, INTER_MED) under its
    context, the previous frame's mode there (row; NUM_MODES: none): the learned prior of each
    row at the priors' strength, plus how the previous chart's leaves followed the modes of the
    chart before it."""
    counts = _prior("mode", (NUM_MODES + 1, NUM_MODES))
    if prev is not None and older is not None and (prev.modes != INTRA).any():
        cy, cx = prev.leaves()
        np.add.at(counts, (older.modes[cy, cx].astype(np.int64), prev.modes[cy, cx].astype(np.int64)), 1.0)
    return _bits(counts)


def _prior(name: str, shape: tuple[int, int]) -> np.ndarray:
    """The learned prior counts of family ``name`` cut to ``shape``, one more each (all ones
    without priors), each row scaled to _PRIOR_STRENGTH counts."""
    prior = prior_counts(name)
    table = (0.0 if prior is None else prior[:shape[0], :shape[1]].astype(np.float64)) + np.ones(shape)
    return table * (_PRIOR_STRENGTH / table.sum(axis=-1, keepdims=True))


def _bits(counts: np.ndarray) -> np.ndarray:
    """-log2 of each count's share of its row, in 1/256 bit."""
    return np.round(-256.0 * np.log2(counts / counts.sum(axis=-1, keepdims=True))).astype(np.int64)


def intra_cell_costs(planes: list[np.ndarray], shifts: list[tuple[int, int]], maxima: list[int],
                     grid: tuple[int, int], step: int) -> np.ndarray:
    """Per chart cell of a keyframe, the estimated bits (1/256) of every plane predicted by MED
    (index 0) and by the weighted predictor (index 1), its state kept at every sample from row 0
    on (predict.wp_prediction), as a keyframe whose cells all used it would keep it."""
    total = np.zeros((2,) + grid, dtype=np.int64)
    for plane, (sy, sx), maxval in zip(planes, shifts, maxima):
        plane = np.ascontiguousarray(plane, dtype=np.int32)
        total += motion.intra_cell_costs(plane, wp_prediction(plane, maxval), CELL >> sy, CELL >> sx,
                                         grid[0], grid[1], maxval, motion.COST, step)
    return total


def _block_sums(grid: np.ndarray, size: int) -> np.ndarray:
    gh, gw = grid.shape
    return grid.reshape(gh // size, size, gw // size, size).sum(axis=(1, 3))


def _expand(grid: np.ndarray, size: int) -> np.ndarray:
    """Every entry of ``grid`` as a size x size block of cells."""
    return np.repeat(np.repeat(grid, size, axis=0), size, axis=1)


def _final(chart: Chart) -> Chart:
    """The chart the encoder codes (choose_intra's): it no longer changes, so its plane modes,
    which every channel reads twice, are worked out once."""
    chart._keep_plane_modes()
    return chart


def choose_intra(chart: Chart, planes: list[np.ndarray], shifts: list[tuple[int, int]],
                 maxima: list[int], step: int, keyframe: bool, min_leaf: int) -> Chart:
    """``chart`` with every intra leaf's predictor chosen, MED or the weighted predictor, by
    estimated bits (intra_cell_costs on keyframes, motion.intra_leaf_costs on inter frames).

    A keyframe's chart is all intra and gets its quadtree here too, pruned bottom-up from
    ``min_leaf`` luma samples: a block splits when its four children, each with its own predictor,
    cost less than the block with one; all its planes count. An inter frame's few intra leaves
    choose by luma alone, costed at their own cells only, with the weighted predictor's state
    kept as the codec keeps it were every one of them to use it (motion.intra_leaf_costs)."""
    n = chart.root // CELL
    gh, gw = chart.depth.shape
    wp = np.zeros((gh, gw), np.int8)
    if not keyframe:
        candidates = np.where(chart.modes == INTRA, np.int8(INTRA_WP), chart.modes)
        costs = motion.intra_leaf_costs(np.ascontiguousarray(planes[0], dtype=np.int32), candidates, CELL,
                                        CELL, maxima[0], motion.COST, step)
        cy, cx = chart.leaves()
        intra = chart.modes[cy, cx] == INTRA
        cy, cx = cy[intra], cx[intra]
        sizes = n >> chart.depth[cy, cx].astype(np.int64)
        motion.leaf_predictors(costs, cy.astype(np.int64), cx.astype(np.int64), sizes, wp)
        return _final(dataclasses.replace(chart, wp=wp))
    costs = intra_cell_costs(planes, shifts, maxima, (gh, gw), step)
    smallest = max(1, min(n, min_leaf // CELL))
    best = None
    splits = {}
    choices = {}
    size = smallest
    while size <= n:
        med, weighted_cost = _block_sums(costs[0], size), _block_sums(costs[1], size)
        leaf = np.minimum(med, weighted_cost) + _FLAG_COST + (_FLAG_COST if size > smallest else 0)
        choices[size] = weighted_cost < med
        if best is None:
            best = leaf
        else:
            children = _block_sums(best, 2)
            splits[size] = children < leaf
            best = np.where(splits[size], children, leaf)
        size *= 2
    depth = np.zeros((gh, gw), np.int8)
    size, d = n, 0
    while True:
        here = depth == d
        wp[here & _expand(choices[size], size)] = 1
        if size == smallest:
            break
        deeper = _expand(splits[size], size) & here
        depth[deeper] = d + 1
        wp[deeper] = 0
        size //= 2
        d += 1
    return _final(dataclasses.replace(chart, depth=depth, wp=wp))
