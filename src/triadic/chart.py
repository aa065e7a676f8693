"""The chart g_t of a frame (the formalism's chosen predictor) and its coding as side information.

A chart partitions the frame into root blocks (``root`` luma samples, the header's block_size),
each a quadtree down to CELL x CELL leaves. Every leaf has a prediction mode, and inter leaves a
reference lag (1 = previous frame), a warp family (translation, similarity, affine), a base motion
vector in quarter luma samples at the leaf's centre and, for warps, 2 or 4 parameters. The chart
is held as per-cell grids (a cell is CELL x CELL luma samples): every cell carries the vector the
warp gives at its centre, which is all the prediction kernels read; subsampled planes use the
same cells, smaller in samples.

Side information is coded with ANS under adaptive counts, in this order: split flags depth by depth
(context: depth and the previous frame's depth there), leaf modes (context: the previous frame's
mode there; not coded on keyframes, whose leaves are all intra), the intra leaves' predictor flags
(MED or the weighted predictor; context: the previous frame's flag there), lags of inter leaves, warp families of inter leaves of at least WARP_MIN samples,
warp parameters, then base vector differences against the median of the left, top and top-right
neighbours' cell vectors (class symbols plus raw mantissa bits), bi-prediction flags, second lags
and vectors, and last the frame's H.264 quantiser (or none) and, with one, each INTER leaf's
transform: none, or levels in 4x4 or 8x8 blocks (kernels/transform.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .errors import CorruptStreamError
from .kernels import transform
from .kernels.predict import AFFINE, INTER, INTRA, INTRA_WP, NUM_FAMILIES, NUM_MODES, SIMILARITY, TRANSLATION, cell_offset, warp_vector
from .kernels import context as ck
from .kernels import triples
from .model import MAX_LAGS, ContextModel, SymbolCounts, stripe_size, stripes

#: Smallest leaf, and the granularity of the chart grids, in luma samples.
CELL = 4
#: Largest motion vector component a decoder accepts (quarter luma samples).
MAX_MV = 1 << 14
#: Smallest leaf (luma samples) that may carry a warp; smaller leaves are translations.
WARP_MIN = 16
#: Largest |warp parameter| a decoder accepts (1/256 quarter samples per luma sample).
MAX_WARP = 1 << 12


@dataclass(frozen=True, eq=False)
class Chart:
    """Per-cell grids of one frame: leaf depth, mode, lag, warp family, the leaf's base vector
    and warp parameters (the same in every cell of a leaf) and the cell's own vector."""

    root: int
    depth: np.ndarray
    modes: np.ndarray
    lags: np.ndarray
    mvy: np.ndarray
    mvx: np.ndarray
    family: np.ndarray = None
    base: np.ndarray = None   # (2, gh, gw): the leaf's base vector (y, x)
    warp: np.ndarray = None   # (4, gh, gw): the leaf's p0..p3
    bi: np.ndarray = None     # 1 where the leaf averages a second reference
    lags2: np.ndarray = None  # the second reference's lag (0 without one)
    mv2: np.ndarray = None    # (2, gh, gw): the second reference's vector (y, x)
    wp: np.ndarray = None     # 1 where an intra leaf uses the weighted predictor instead of MED
    transform: np.ndarray = None  # levels leaves: kernels/transform.T4 or T8 (NONE elsewhere)
    qp: int = -1              # the H.264 quantiser of the levels leaves (-1: the frame has none)

    def __post_init__(self) -> None:
        shape = self.depth.shape
        if self.wp is None:
            object.__setattr__(self, "wp", np.zeros(shape, np.int8))
        if self.transform is None:
            object.__setattr__(self, "transform", np.zeros(shape, np.int8))
        if self.bi is None:
            object.__setattr__(self, "bi", np.zeros(shape, np.int8))
        if self.lags2 is None:
            object.__setattr__(self, "lags2", np.zeros(shape, np.int8))
        if self.mv2 is None:
            object.__setattr__(self, "mv2", np.zeros((2,) + shape, np.int32))
        if self.family is None:
            object.__setattr__(self, "family", np.zeros(shape, np.int8))
        if self.base is None:
            object.__setattr__(self, "base", np.stack([self.mvy, self.mvx]).astype(np.int32))
        if self.warp is None:
            object.__setattr__(self, "warp", np.zeros((4,) + shape, np.int32))

    @classmethod
    def empty(cls, height: int, width: int, root: int) -> "Chart":
        n = root // CELL
        shape = (-(-height // root) * n, -(-width // root) * n)
        z8 = np.zeros(shape, np.int8)
        return cls(root, z8, z8.copy(), z8.copy(), np.zeros(shape, np.int32), np.zeros(shape, np.int32))

    @property
    def max_depth(self) -> int:
        return int(np.log2(self.root // CELL))

    def leaves(self) -> tuple[np.ndarray, np.ndarray]:
        """(cy, cx) of every leaf's top-left cell, in coding order."""
        return _leaf_cells(self.depth, self.root // CELL)

    def plane_modes(self) -> np.ndarray:
        """The modes the plane kernels read: INTRA_WP where an intra leaf uses the weighted predictor."""
        kept = self.__dict__.get("_plane_modes")  # a final chart's, worked out once (_keep_plane_modes)
        if kept is not None:
            return kept
        return np.where((self.modes == INTRA) & (self.wp != 0), np.int8(INTRA_WP), self.modes)

    def _keep_plane_modes(self) -> None:
        """A chart that is complete and never changes (the decoder's; the encoder's coded one,
        search.choose_intra's): plane_modes (read twice per channel) is worked out once. (The
        charts the encoder's search builds change: not for them.)"""
        object.__setattr__(self, "_plane_modes", self.plane_modes())

    def summary(self) -> dict:
        """Histograms of the leaves' modes, lags and depths (for the per-frame log)."""
        cy, cx = self.leaves()
        modes = self.modes[cy, cx]
        inter = modes != INTRA
        return {"modes": np.bincount(modes, minlength=NUM_MODES).tolist(),
                "lags": np.bincount(self.lags[cy, cx][inter], minlength=MAX_LAGS + 1)[1:].tolist(),
                "families": np.bincount(self.family[cy, cx][inter], minlength=NUM_FAMILIES).tolist(),
                "bi": int(self.bi[cy, cx][inter].sum()),
                "intra_wp": int(self.wp[cy, cx][~inter].sum()),
                "depths": np.bincount(self.depth[cy, cx], minlength=self.max_depth + 1).tolist()}


@njit(cache=True)
def _deinterleave(z):
    y = 0
    x = 0
    bit = 0
    while z:
        x |= (z & 1) << bit
        z >>= 1
        y |= (z & 1) << bit
        z >>= 1
        bit += 1
    return y, x


@njit(cache=True)
def _tree_cells(depth, n, d):
    """Top-left cells, root blocks in raster order and z-order inside each, of the leaves
    (d < 0) or of the tree nodes at depth d (those whose ancestors all split)."""
    gh, gw = depth.shape
    out_y = np.empty(gh * gw, dtype=np.int32)
    out_x = np.empty(gh * gw, dtype=np.int32)
    zy = np.empty(n * n, dtype=np.int64)  # z-order of a root block's cells, worked out once
    zx = np.empty(n * n, dtype=np.int64)
    for z in range(n * n):
        zy[z], zx[z] = _deinterleave(z)
    k = 0
    for ry in range(0, gh, n):
        for rx in range(0, gw, n):
            for z in range(n * n):
                dy = zy[z]
                dx = zx[z]
                cy = ry + dy
                cx = rx + dx
                size = n >> (depth[cy, cx] if d < 0 else d)  # a power of two: a mask, not a division
                if (dy | dx) & (size - 1) or (d >= 0 and depth[cy, cx] < d):
                    continue
                out_y[k] = cy
                out_x[k] = cx
                k += 1
    return out_y[:k], out_x[:k]


def _leaf_cells(depth, n):
    return _tree_cells(depth, n, -1)


def _nodes_at(depth, n, d):
    return _tree_cells(depth, n, d)


@njit(cache=True)
def _walk_vectors(depth, modes, lags, family, base, warp, mvy, mvx, n, leaf_y, leaf_x,
                  leaf_modes, leaf_lags, leaf_family, leaf_warp, dy, dx, decoding):
    """Visit the leaves in order, filling the grids from the leaf values (and back).

    Encoding: the grids hold the chart; fills dy/dx (base vector minus the median prediction
    from the neighbouring cells' vectors) per leaf. Decoding: fills every grid from the leaf
    values and dy/dx, rendering each cell's vector from its leaf's warp.
    """
    gh, gw = depth.shape
    done = np.zeros((gh, gw), dtype=np.uint8)
    for i in range(leaf_y.size):
        cy = leaf_y[i]
        cx = leaf_x[i]
        size = n >> depth[cy, cx]
        if decoding:
            mode = leaf_modes[i]
        else:
            mode = modes[cy, cx]
        vy = 0
        vx = 0
        if mode != INTRA:
            ly = lx = ty = tx = ry = rx = 0
            if cx > 0 and done[cy, cx - 1] and modes[cy, cx - 1] != INTRA:
                ly, lx = mvy[cy, cx - 1], mvx[cy, cx - 1]
            if cy > 0 and done[cy - 1, cx] and modes[cy - 1, cx] != INTRA:
                ty, tx = mvy[cy - 1, cx], mvx[cy - 1, cx]
            if cy > 0 and cx + size < gw and done[cy - 1, cx + size]:
                if modes[cy - 1, cx + size] != INTRA:
                    ry, rx = mvy[cy - 1, cx + size], mvx[cy - 1, cx + size]
            elif cy > 0 and cx > 0 and done[cy - 1, cx - 1] and modes[cy - 1, cx - 1] != INTRA:
                ry, rx = mvy[cy - 1, cx - 1], mvx[cy - 1, cx - 1]
            py = max(min(ly, ty), min(max(ly, ty), ry))
            px = max(min(lx, tx), min(max(lx, tx), rx))
            if decoding:
                vy = dy[i] + py
                vx = dx[i] + px
            else:
                dy[i] = base[0, cy, cx] - py
                dx[i] = base[1, cy, cx] - px
        for yy in range(cy, min(gh, cy + size)):
            for xx in range(cx, min(gw, cx + size)):
                done[yy, xx] = 1
                if decoding:
                    modes[yy, xx] = mode
                    inter = mode != INTRA
                    lags[yy, xx] = leaf_lags[i] if inter else 0
                    family[yy, xx] = leaf_family[i] if inter else 0
                    base[0, yy, xx] = vy
                    base[1, yy, xx] = vx
                    for j in range(4):
                        warp[j, yy, xx] = leaf_warp[i, j]
                    if inter and leaf_family[i] != TRANSLATION:
                        wy, wx = warp_vector(vy, vx, leaf_warp[i, 0], leaf_warp[i, 1],
                                             leaf_warp[i, 2], leaf_warp[i, 3],
                                             cell_offset(yy, cy, size, CELL),
                                             cell_offset(xx, cx, size, CELL))
                        mvy[yy, xx] = wy
                        mvx[yy, xx] = wx
                    else:
                        mvy[yy, xx] = vy
                        mvx[yy, xx] = vx


@njit(cache=True)
def _split(depth, ny, nx, got, size, deeper):
    """The decoder's split flags of the nodes at one depth: the size x size cells of each node
    (ny[i], nx[i]) whose flag got[i] is set go one level ``deeper``."""
    gh, gw = depth.shape
    for i in range(ny.size):
        if got[i]:
            for yy in range(ny[i], min(gh, ny[i] + size)):
                for xx in range(nx[i], min(gw, nx[i] + size)):
                    depth[yy, xx] = deeper


@njit(cache=True)
def _fill_leaves(grid, depth, n, leaf_y, leaf_x, values):
    """Set every cell of leaf i of ``grid`` to values[i]."""
    gh, gw = grid.shape
    for i in range(leaf_y.size):
        cy = leaf_y[i]
        cx = leaf_x[i]
        size = n >> depth[cy, cx]
        for yy in range(cy, min(gh, cy + size)):
            for xx in range(cx, min(gw, cx + size)):
                grid[yy, xx] = values[i]


_NO_SYMBOLS = np.zeros(0, dtype=np.int32)


def _code_symbols(coder, counts: SymbolCounts, ctx: np.ndarray, values: np.ndarray | None,
                  alphabet: int | None = None) -> tuple[np.ndarray, float]:
    """Code a pass of categorical symbols stripe by stripe, adapting the counts between stripes
    (like planes.code_bits), over the first ``alphabet`` symbols (default: all)."""
    if values is not None and ctx.size and hasattr(coder, "encode_symbols"):
        # the encoder knows the whole pass: one kernel call adapts the counts stripe by stripe
        values = np.ascontiguousarray(values, dtype=np.int32)
        alphabet = counts.counts.shape[1] if alphabet is None else alphabet
        return values, coder.encode_symbols(values, counts, np.asarray(ctx, np.int64), stripe_size(ctx.size),
                                            alphabet)
    out = np.empty(ctx.size, dtype=np.int32)
    if values is None and ctx.size and not coder.measure and hasattr(coder, "stripe_decoder"):
        # the decoder's loop, as planes.code_bits's: one kernel call between stripes
        # (kernels/context.symbol_step: the stripe's symbols counted, the next stripe's
        # probabilities), constriction's own call per stripe
        n, size = ctx.size, stripe_size(ctx.size)
        alphabet = counts.counts.shape[1] if alphabet is None else alphabet
        table, limit, step = counts.counts, counts.limit, ck.symbol_step
        ctx = np.asarray(ctx, np.int64)
        last = (n - 1) // size * size  # the last stripe's start; the stripes before it are full
        probs = np.empty((min(size, n), alphabet))
        full = probs[:size]
        step(table, ctx, _NO_SYMBOLS, -size, size, limit, out, probs, alphabet)
        decode = coder.stripe_decoder()
        try:
            for start in range(0, last, size):
                step(table, ctx, decode(full), start, size, limit, out, probs, alphabet)
            step(table, ctx, decode(probs[:n - last]), last, size, limit, out, probs, alphabet)
        except Exception as exc:  # constriction raises on exhausted or invalid streams
            raise coder.damaged(exc) from None
        return out, 0.0
    bits = 0.0
    for s in stripes(ctx.size):
        probs = counts.probabilities(ctx[s], alphabet)
        got = coder.symbols(None if values is None else values[s], probs)
        counts.update(ctx[s], got)
        out[s] = got
        bits += coder.last_bits
    return out, bits


@njit(cache=True)
def _raw_bit_probabilities(length):
    """The triple probabilities (kernels/triples.py) of _code_ints's raw bits, for the decoder to
    read them in one coder call: the call for bit j (j = 0, 1, ...) codes bit j of every value
    with length - 1 > j at P(1) = 1/2, its decisions in triples of its own (the last padded with
    decisions of P(1) = 0): the rows of the calls one after the other."""
    starts = _raw_bit_starts(length)
    count = starts[1:] - starts[:-1]
    rows = 0
    for j in range(count.size):
        rows += (count[j] + 2) // 3
    p1 = np.zeros(3 * rows)
    at = 0
    for j in range(count.size):
        p1[at:at + count[j]] = 0.5
        at += 3 * ((count[j] + 2) // 3)
    out = np.empty((rows, 8))
    triples.triple_probabilities(p1, max(p1.size, 1), out)
    return out


@njit(cache=True)
def _raw_bit_starts(length):
    """Where each of _code_ints's raw-bit calls starts among all their bits, and last where the
    final one ends: call j (j = 0, 1, ...) holds bit j of every value with length - 1 > j."""
    calls = 0
    for i in range(length.size):
        calls = max(calls, length[i] - 1)
    starts = np.zeros(calls + 1, dtype=np.int64)
    for i in range(length.size):
        for j in range(length[i] - 1):
            starts[j + 1] += 1
    for j in range(calls):
        starts[j + 1] += starts[j]
    return starts


@njit(cache=True)
def _raw_bits_in(mag, length, symbols):
    """mag |= the raw bits of _code_ints from the triple ``symbols`` of _raw_bit_probabilities's
    rows: bit j of value i, in value order, call by call."""
    row = 0
    for j in range(16):
        m = 0  # decisions of the call for bit j so far
        for i in range(length.size):
            if length[i] - 1 > j:
                mag[i] |= np.int64((symbols[row + m // 3] >> (2 - m % 3)) & 1) << j
                m += 1
        if m == 0:
            break
        row += (m + 2) // 3


@njit(cache=True)
def _int_classes(values):
    """_code_ints's class symbol of each int32 value (0 for zero, else 2L - 1 positive or 2L
    negative, L the bit length of |v|) and L."""
    n = values.size
    cls = np.empty(n, dtype=np.int32)
    length = np.empty(n, dtype=np.int64)
    for i in range(n):
        v = np.int64(values[i])
        m = abs(v)
        bits = 0
        while m >> bits:
            bits += 1
        length[i] = bits
        cls[i] = 0 if v == 0 else 2 * bits - (1 if v > 0 else 0)
    return cls, length


@njit(cache=True)
def _raw_bit_calls(values, length):
    """_code_ints's raw bits as its coder calls take them (_raw_bit_starts), in value order within
    a call: the calls' bits one after the other (int32), and where each call starts."""
    starts = _raw_bit_starts(length)
    out = np.empty(starts[-1], dtype=np.int32)
    at = starts[:-1].copy()
    for i in range(length.size):
        m = abs(np.int64(values[i]))
        for j in range(length[i] - 1):
            out[at[j]] = (m >> j) & 1
            at[j] += 1
    return out, starts


def _code_ints(coder, model: ContextModel, ctx: np.ndarray, values: np.ndarray | None,
               n: int) -> tuple[np.ndarray, float]:
    """Code n signed integers (vector components, warp parameters) as classes plus raw bits.

    The class is 0 for zero, else 2L-1 (positive) or 2L (negative) with L the bit length of |v|;
    the L-1 bits below the leading one follow, bit j of every value that has one in turn.
    ``ctx`` is each class symbol's context (which quantity it is).
    """
    if n == 0:  # nothing to code (often: warp parameters, second vectors)
        return np.zeros(0, dtype=np.int32), 0.0
    if values is not None:
        values = np.ascontiguousarray(values, dtype=np.int32)
        cls, length = _int_classes(values)
        _, side = _code_symbols(coder, model.mv_class, ctx, cls)
        return values, side + coder.raw_bits(*_raw_bit_calls(values, length))
    cls, side = _code_symbols(coder, model.mv_class, ctx, None)
    length = (cls.astype(np.int64) + 1) // 2
    if int(length.max(initial=0)) > 16:
        raise CorruptStreamError("motion vector difference out of range")
    mag = np.where(length > 0, np.int64(1) << np.maximum(length - 1, 0), 0)
    if not coder.measure and hasattr(coder, "stripe_decoder"):
        # the decoder reads every bit position's call in one coder call (the same triples)
        probs = _raw_bit_probabilities(length)
        if probs.shape[0]:
            try:
                symbols = coder.stripe_decoder()(probs)
            except Exception as exc:  # constriction raises on exhausted or invalid streams
                raise coder.damaged(exc) from None
            _raw_bits_in(mag, length, symbols)
        return np.where(cls % 2 == 1, mag, -mag).astype(np.int32), side
    for j in range(int(length.max(initial=0)) - 1):
        has = length - 1 > j
        got = coder.bits(None, np.full(int(has.sum()), 0.5))
        side += coder.last_bits
        mag[has] |= got.astype(np.int64) << j
    return np.where(cls % 2 == 1, mag, -mag).astype(np.int32), side


def _code_lags(coder, model: ContextModel, lags: np.ndarray | None, n: int,
               references: int) -> tuple[np.ndarray, float]:
    """Code n reference lags, each 1..min(MAX_LAGS, references): a lag may not reach before the
    segment start, so the first inter frame of a segment spends nothing on them."""
    ctx = np.zeros(n, dtype=np.int64)
    alphabet = min(MAX_LAGS, references)
    if alphabet <= 1:
        return np.ones(n, dtype=np.int32), 0.0
    got, bits = _code_symbols(coder, model.lag, ctx, lags - 1 if lags is not None else None, alphabet)
    return got + 1, bits


def code_chart(coder, model: ContextModel, chart: Chart | None, prev: Chart | None,
               root: int, height: int, width: int, references: int) -> tuple[Chart, float]:
    """Code a frame's chart (None when decoding); returns the chart and its side bits.

    ``references`` is the number of decoded frames a lag may reach back to.
    """
    out = chart if chart is not None else Chart.empty(height, width, root)
    n = root // CELL
    side = 0.0
    # 1. the partition: split flags, depth by depth
    depth = out.depth if chart is not None else out.depth  # decoding fills it in place
    for d in range(out.max_depth):
        ny, nx = _nodes_at(depth, n, d)
        if prev is not None:
            ctx = d * 3 + np.where(prev.depth[ny, nx] > d, 1, 0)
        else:
            ctx = np.full(ny.size, d * 3 + 2)
        want = (depth[ny, nx] > d).astype(np.int32) if chart is not None else None
        got = coder.bits(want, model.split.probabilities(ctx))
        side += coder.last_bits
        model.split.update(ctx, got)
        if chart is None:
            _split(depth, ny, nx, got, n >> d, d + 1)
    # 2. leaf modes (a keyframe's leaves are all intra), 3. intra flags: the weighted predictor
    #    or MED, 4. lags of inter leaves, ...
    ly, lx = _leaf_cells(depth, n)
    if references:
        ctx = prev.modes[ly, lx].astype(np.int64) if prev is not None else np.full(ly.size, NUM_MODES)
        modes, bits = _code_symbols(coder, model.mode, ctx, out.modes[ly, lx] if chart is not None else None)
        side += bits
        if modes.size and int(modes.max()) >= NUM_MODES:
            raise CorruptStreamError("unknown prediction mode")
    else:
        modes = np.full(ly.size, INTRA, dtype=np.int32)
    inter = modes != INTRA
    wctx = prev.wp[ly, lx][~inter].astype(np.int64) if prev is not None else np.full(int((~inter).sum()), 2)
    wp = coder.bits(out.wp[ly, lx][~inter] if chart is not None else None, model.intra_wp.probabilities(wctx))
    side += coder.last_bits
    model.intra_wp.update(wctx, wp)
    if chart is None:
        leaf_wp = np.zeros(ly.size, np.int8)
        leaf_wp[~inter] = wp
        _fill_leaves(out.wp, depth, n, ly, lx, leaf_wp)
    count = int(inter.sum())
    lags, bits = _code_lags(coder, model, out.lags[ly, lx][inter] if chart is not None else None,
                            count, references)
    side += bits
    dy = np.zeros(ly.size, np.int32)
    dx = np.zeros(ly.size, np.int32)
    leaf_lags = np.zeros(ly.size, np.int8)
    leaf_lags[inter] = lags
    # 4. warp families of inter leaves big enough to carry one, 5. their parameters
    leaf_size = (n >> depth[ly, lx].astype(np.int64)) * CELL
    warpable = inter & (leaf_size >= WARP_MIN)
    fctx = np.zeros(int(warpable.sum()), dtype=np.int64)
    fam, bits = _code_symbols(coder, model.family, fctx,
                              out.family[ly, lx][warpable] if chart is not None else None)
    side += bits
    if fam.size and int(fam.max()) >= NUM_FAMILIES:
        raise CorruptStreamError("unknown warp family")
    leaf_family = np.zeros(ly.size, np.int8)
    leaf_family[warpable] = fam
    leaf_warp = np.zeros((ly.size, 4), np.int32)
    similar = leaf_family == SIMILARITY
    affine = leaf_family == AFFINE
    stored = out.warp[:, ly, lx].T if chart is not None else None
    for param, (rows, column) in enumerate(((similar, 0), (similar, 2), (affine, 0), (affine, 1),
                                            (affine, 2), (affine, 3))):
        k = int(rows.sum())
        values, bits = _code_ints(coder, model, np.full(k, 2 + param),
                                  stored[rows, column] if chart is not None else None, k)
        leaf_warp[rows, column] = values
        side += bits
    if chart is None:  # similarity: p3 = p0 (zoom), p1 = -p2 (rotation)
        leaf_warp[similar, 3] = leaf_warp[similar, 0]
        leaf_warp[similar, 1] = -leaf_warp[similar, 2]
        if leaf_warp.size and int(np.abs(leaf_warp).max()) > MAX_WARP:
            raise CorruptStreamError("warp parameter out of range")
    # 6. base vector differences
    if chart is not None:
        _walk_vectors(depth, out.modes, out.lags, out.family, out.base, out.warp, out.mvy, out.mvx,
                      n, ly, lx, modes.astype(np.int8), leaf_lags, leaf_family, leaf_warp, dy, dx, False)
    for component, d in ((0, dy), (1, dx)):
        values, bits = _code_ints(coder, model, np.full(count, component),
                                  d[inter] if chart is not None else None, count)
        d[inter] = values
        side += bits
    if chart is None:
        _walk_vectors(depth, out.modes, out.lags, out.family, out.base, out.warp, out.mvy, out.mvx,
                      n, ly, lx, modes.astype(np.int8), leaf_lags, leaf_family, leaf_warp, dy, dx, True)
        if count and max(int(np.abs(out.mvy).max()), int(np.abs(out.mvx).max())) > MAX_MV:
            raise CorruptStreamError("motion vector out of range")
    # 7. bi-prediction of inter translation leaves: flag, second lag, second vector (predicted
    #    by the first vector scaled to the second lag)
    can_bi = inter & (leaf_family == TRANSLATION)
    bctx = np.zeros(int(can_bi.sum()), dtype=np.int64)
    flags = coder.bits(out.bi[ly, lx][can_bi] if chart is not None else None,
                       model.bi.probabilities(bctx))
    side += coder.last_bits
    model.bi.update(bctx, flags)
    two = np.zeros(ly.size, bool)
    two[np.flatnonzero(can_bi)[flags != 0]] = True
    k = int(two.sum())
    lag2, bits = _code_lags(coder, model, out.lags2[ly, lx][two] if chart is not None else None,
                            k, references)
    side += bits
    lag1 = out.lags[ly, lx][two].astype(np.int64)
    vectors = []
    for component in (0, 1):
        first = out.base[component, ly, lx][two].astype(np.int64)
        pred = np.floor_divide(2 * first * lag2 + lag1, 2 * lag1)
        values, bits = _code_ints(coder, model, np.full(k, 8 + component),
                                  (out.mv2[component, ly, lx][two] - pred) if chart is not None else None, k)
        side += bits
        vectors.append(values + pred)
    if chart is None:
        if k and max(int(np.abs(vectors[0]).max()), int(np.abs(vectors[1]).max())) > MAX_MV:
            raise CorruptStreamError("motion vector out of range")
        sel_y, sel_x = ly[two], lx[two]
        _fill_leaves(out.bi, depth, n, sel_y, sel_x, np.ones(k, np.int8))
        _fill_leaves(out.lags2, depth, n, sel_y, sel_x, lag2.astype(np.int8))
        _fill_leaves(out.mv2[0], depth, n, sel_y, sel_x, vectors[0].astype(np.int32))
        _fill_leaves(out.mv2[1], depth, n, sel_y, sel_x, vectors[1].astype(np.int32))
    # 8. levels leaves: the frame's H.264 quantiser (0: none, else qp + 1), then each INTER
    #    leaf's transform (kernels/transform.py)
    if references:
        side += _code_levels_leaves(coder, model, chart, out, depth, n, ly, lx, modes)
    if chart is None:
        out._keep_plane_modes()
    return out, side


def _code_levels_leaves(coder, model: ContextModel, chart: Chart | None, out: Chart, depth: np.ndarray,
                        n: int, ly: np.ndarray, lx: np.ndarray, modes: np.ndarray) -> float:
    """The chart's last part: its quantiser symbol and the INTER leaves' transforms."""
    one = np.zeros(1, dtype=np.int64)
    qp_symbol, side = _code_symbols(coder, model.levels_qp, one,
                                    np.array([out.qp + 1]) if chart is not None else None)
    qp = int(qp_symbol[0]) - 1
    if qp < 0:
        return side
    inter = np.flatnonzero(modes == INTER)
    ctx = np.zeros(inter.size, dtype=np.int64)
    got, bits = _code_symbols(coder, model.transform, ctx,
                              out.transform[ly[inter], lx[inter]] if chart is not None else None)
    side += bits
    if chart is None:
        if got.size and int(got.max()) > transform.T8:
            raise CorruptStreamError("unknown transform")
        small = (n >> depth[ly[inter], lx[inter]].astype(np.int64)) * CELL < 8
        if np.any(small & (got == transform.T8)):
            raise CorruptStreamError("an 8x8 transform in a leaf smaller than 8x8")
        object.__setattr__(out, "qp", qp)
        _fill_leaves(out.transform, depth, n, ly[inter], lx[inter], got.astype(np.int8))
    return side
