"""Ternary digit planes of a residual, their fold, and the passes that code them.

``code_residual`` walks the passes of one channel of one frame and is the same code in both
directions: given a coder that encodes it reads the residual's digits, given one that decodes it
rebuilds them. See kernels/context.py for the pass structure.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import numpy as np

from .errors import CorruptStreamError
from .kernels import context as ck
from .kernels import ternary as kt
from .kernels import triples as kt3
from .model import MAX_DIGITS, RAW, BinaryCounts, ContextModel, restore, snapshot, stripe_size, stripes


# --------------------------------------------------------------------------------------------------
# Digits and fold (public wrappers of the kernels)
# --------------------------------------------------------------------------------------------------

def num_digits(max_abs: int) -> int:
    """Smallest K such that every |r| <= max_abs fits in K balanced-ternary digits."""
    if max_abs < 0:
        raise ValueError("max_abs must be >= 0")
    return int(kt._num_digits(int(max_abs)))


def to_digits(values: np.ndarray, k: int | None = None) -> np.ndarray:
    """Balanced-ternary digit planes S_k of an integer array: shape (K, *values.shape), int8."""
    values = np.asarray(values)
    flat = np.ascontiguousarray(values, dtype=np.int64).ravel()
    need = num_digits(int(np.abs(flat).max())) if flat.size else 0
    k = need if k is None else k
    if k < need:
        raise ValueError(f"{k} digits cannot hold |r| = {int(np.abs(flat).max())}")
    return kt._digits(flat, k).reshape((k,) + values.shape)


def from_digits(digits: np.ndarray) -> np.ndarray:
    """Inverse of ``to_digits``: sum_k S_k 3^k (int32)."""
    digits = np.asarray(digits, dtype=np.int8)
    shape = digits.shape[1:]
    flat = np.ascontiguousarray(digits.reshape(digits.shape[0], int(np.prod(shape))))
    return kt._undigits(flat).reshape(shape)


def fold(digits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """q(s) = (m, sigma): magnitude planes M in {0,1} and sign planes in {-1,+1} (0 off support)."""
    digits = np.asarray(digits, dtype=np.int8)
    return (digits != 0).astype(np.uint8), digits.copy()


def unfold(magnitude: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """Inverse of ``fold``: the digit is the sign where the magnitude is 1, else 0."""
    return np.where(np.asarray(magnitude) != 0, np.asarray(sign, dtype=np.int8), 0).astype(np.int8)


# --------------------------------------------------------------------------------------------------
# The rate model of a plane (DESIGN.md §1.7)
# --------------------------------------------------------------------------------------------------

LOG2_3 = math.log2(3.0)


def binary_entropy(p: float) -> float:
    """h(p) in bits (0 at p = 0 and p = 1)."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log2(p) + (1.0 - p) * math.log2(1.0 - p))


def plane_rate_models(rho: float) -> tuple[float, float]:
    """Bits per sample of a plane with nonzero-digit density rho: the formalism's estimate
    log2(3)·rho, and a memoryless coder's h(rho) + rho (it also pays for where the zeros are)."""
    return LOG2_3 * rho, binary_entropy(rho) + rho


# --------------------------------------------------------------------------------------------------
# Pass coding
# --------------------------------------------------------------------------------------------------

@dataclass
class PlaneStats:
    """What one channel's planes cost: per plane k, nonzero digits and bits (when measured)."""

    samples: int = 0
    side_bits: float = 0.0
    nonzero: dict[int, int] = field(default_factory=dict)
    bits: dict[int, float] = field(default_factory=dict)

    def copy(self) -> "PlaneStats":
        return PlaneStats(self.samples, self.side_bits, dict(self.nonzero), dict(self.bits))

    def restore(self, saved: "PlaneStats") -> None:
        self.samples, self.side_bits = saved.samples, saved.side_bits
        self.nonzero, self.bits = dict(saved.nonzero), dict(saved.bits)

    def add(self, k: int, nonzero: int, bits: float) -> None:
        self.nonzero[k] = self.nonzero.get(k, 0) + nonzero
        self.bits[k] = self.bits.get(k, 0.0) + bits


_NO_BITS = np.zeros(0, dtype=np.int32)


def code_bits(coder, counts: BinaryCounts, ctx: np.ndarray, values: np.ndarray | None) -> tuple[np.ndarray, float]:
    """Code one binary pass stripe by stripe, adapting the counts between stripes."""
    if values is not None and hasattr(coder, "encode_bits"):
        # the encoder knows the whole pass: one kernel call adapts the counts stripe by stripe
        values = np.ascontiguousarray(values, dtype=np.int32)
        return values, coder.encode_bits(values, counts, ctx, stripe_size(ctx.size)) if ctx.size else 0.0
    out = np.empty(ctx.size, dtype=np.int32)
    if values is None and ctx.size and not coder.measure and hasattr(coder, "stripe_decoder"):
        # the decoder's loop, with as little Python per stripe as it takes (no bits measured):
        # one kernel call between stripes (kernels/triples.decode_step: the stripe's decisions
        # from its triple symbols, the counts, the next stripe's triple probabilities), the
        # probabilities always in the same buffer
        n, size = ctx.size, stripe_size(ctx.size)
        table, limit, step = counts.counts, counts.limit, kt3.decode_step
        last = (n - 1) // size * size  # the last stripe's start; the stripes before it are full
        probs = np.empty(((min(size, n) + 2) // 3, 8))  # a stripe: its decisions in triples
        full = probs[:(size + 2) // 3]  # a full stripe's triples (when there are two stripes or more)
        step(table, ctx, _NO_BITS, -size, size, limit, out, probs)
        decode = coder.stripe_decoder()
        try:
            for start in range(0, last, size):
                step(table, ctx, decode(full), start, size, limit, out, probs)
            step(table, ctx, decode(probs[:(n - last + 2) // 3]), last, size, limit, out, probs)
        except Exception as exc:  # constriction raises on exhausted or invalid streams
            raise coder.damaged(exc) from None
        return out, 0.0
    bits = 0.0
    parts = stripes(ctx.size)
    p = counts.probabilities(ctx[parts[0]]) if parts else None
    for i, s in enumerate(parts):
        c = ctx[s]
        got = coder.bits(None if values is None else values[s], p)
        if i + 1 < len(parts):
            p = counts.update_then_probabilities(c, got, ctx[parts[i + 1]])
        else:
            counts.update(c, got)
        out[s] = got
        bits += coder.last_bits
    return out, bits


def code_residual(coder, model: ContextModel, chan: int, shape: tuple[int, int],
                  q: np.ndarray | None, e16: np.ndarray, cls: np.ndarray, shape_of_t: np.ndarray,
                  prev_kb: np.ndarray | None, stats: PlaneStats | None = None,
                  modulus: int = 0, raw_trial: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Code one channel's residual ``q`` (None when decoding): its ternary planes, or raw bits.

    ``e16``, ``cls`` and ``shape_of_t`` (the shape of T that sign contexts read, from
    kernels/context.mix_prediction_activity; all kernels/context.FLAT on keyframes) are the
    per-sample context sources the decoder holds before the residual. ``modulus`` (lossless only) is the plane's range m: residuals lie in [-m/2, m/2) and the
    encoder may send them as plain ceil(log2 m)-bit numbers when the planes would cost more;
    ``raw_trial``: tries_raw's answer, if the caller has it already (None: worked out here).
    Returns the residual (int32, ``shape``) and its K map (digits per KBLOCK block, int8).
    """
    if tries_raw(coder, q, modulus) if raw_trial is None else raw_trial:
        mark = coder.mark()
        saved = snapshot(model)
        saved_stats = stats.copy() if stats is not None else None
        out = _code_planes(coder, model, chan, shape, q, e16, cls, shape_of_t, prev_kb, stats)
        if coder.total_bits - mark[1] <= q.size * max(1, (modulus - 1).bit_length()):
            return out
        coder.rollback(mark)
        restore(model, saved)
        if stats is not None:
            stats.restore(saved_stats)
        return _code_planes(coder, model, chan, shape, q, e16, cls, shape_of_t, prev_kb, stats, modulus,
                            raw=True)
    return _code_planes(coder, model, chan, shape, q, e16, cls, shape_of_t, prev_kb, stats, modulus)


def tries_raw(coder, q: np.ndarray | None, modulus: int) -> bool:
    """Whether code_residual codes ``q`` both ways, as planes and as plain numbers, keeping the
    cheaper: it then takes back what it coded and every count of the model, so nothing else
    may code meanwhile."""
    return q is not None and bool(modulus) and coder.measure and _raw_may_win(q, modulus)


def _raw_may_win(q: np.ndarray, modulus: int) -> bool:
    """Whether the residual's plain ceil(log2 m)-bit numbers might cost less than its planes, so
    that the encoder has to code both and keep the cheaper (after a copy of every count table to
    go back to: some 2.5 MB per channel). With mu the mean |q|, the planes cost under the
    two-sided geometric entropy log2(2e mu + 2) bits per sample on real footage (at most 0.86 of
    it per channel and frame on the three public clips, lossless); the trial is skipped when that
    estimate is at most half the raw bits. Noise (mu near m/4) is still tried."""
    if not q.size:
        return False
    from .kernels.encode import abs_sum  # encoder only

    mu = int(abs_sum(q)) / q.size
    return 2.0 * math.log2(2.0 * math.e * mu + 2.0) > max(1, (modulus - 1).bit_length())


def _code_raw(coder, q, shape, modulus):
    """Residuals as plain numbers q + m//2 in [0, m), most significant bit first."""
    nbits = max(1, (modulus - 1).bit_length())
    n = shape[0] * shape[1]
    u = (q.ravel().astype(np.int64) + modulus // 2) if q is not None else np.zeros(n, np.int64)
    half = np.full(n, 0.5)
    for j in range(nbits - 1, -1, -1):
        got = coder.bits(((u >> j) & 1) if q is not None else None, half)
        if q is None:
            u |= got.astype(np.int64) << j
    if q is None and n and int(u.max()) >= modulus:
        raise CorruptStreamError("raw residual out of range")
    return (u - modulus // 2).astype(np.int32).reshape(shape)


_WORK = threading.local()


def _work_buffers(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """_code_planes's work arrays for an h x w plane, this thread's, reused from call to call:
    nz (h x w, uint8, not cleared: _code_planes clears it at every plane) and the per-phase
    samples, contexts and sign bases of plane_contexts ((PHASES, n) int32, n at least the
    samples of a phase). Fresh ones per channel and frame cost more in page faults than what is
    written into them (some 15 MB for a 720p luma plane). Nothing of them leaves _code_planes."""
    half = ((h + 1) // 2) * ((w + 1) // 2)
    work = getattr(_WORK, "buffers", None)
    if work is None or work[0].size < h * w or work[1].shape[1] < half:
        size = max(h * w, work[0].size if work is not None else 0)
        cap = max(half, work[1].shape[1] if work is not None else 0)
        work = (np.empty(size, dtype=np.uint8),) + tuple(np.empty((len(ck.PHASES), cap), dtype=np.int32)
                                                         for _ in range(3))
        _WORK.buffers = work
    return (work[0][:h * w].reshape(h, w),) + work[1:]


def _code_planes(coder, model, chan, shape, q, e16, cls, shape_of_t, prev_kb, stats, modulus=0, raw=False):
    h, w = shape
    encoding = q is not None
    kb_shape = (-(-h // ck.KBLOCK), -(-w // ck.KBLOCK))
    if encoding:
        top = RAW if raw else (num_digits(int(np.abs(q).max())) if q.size else 0)
    top = int(coder.symbols(np.array([top]) if encoding else None,
                            model.top_digit.probabilities(np.array([chan])))[0])
    model.top_digit.update(np.array([chan]), np.array([top]))
    if stats is not None:
        stats.samples += h * w
        stats.side_bits += coder.last_bits  # K itself is side information
    if top == RAW:
        if not modulus:
            raise CorruptStreamError("raw residuals in a near-lossless stream")
        q = _code_raw(coder, q, shape, modulus)
        if stats is not None:  # a raw channel's bits are counted on plane 0
            stats.add(0, int(np.count_nonzero(q)), h * w * max(1, (modulus - 1).bit_length()))
        return q, ck.block_digits(q, ck.KBLOCK)
    if top == 0:
        return np.zeros(shape, dtype=np.int32), np.zeros(kb_shape, dtype=np.int8)
    if top > MAX_DIGITS:
        raise CorruptStreamError(f"residual claims {top} ternary digits (at most {MAX_DIGITS})")

    if encoding:
        q = np.ascontiguousarray(q, dtype=np.int32)
        from .kernels.encode import digits as encoder_digits  # encoder only

        digits = encoder_digits(q.ravel(), top)
        kb = ck.block_digits(q, ck.KBLOCK)
        if hasattr(coder, "encode_planes"):  # the encoder's passes in one call (entropy.Encoder)
            return coder.encode_planes(model, chan, top, digits, kb, e16, cls, shape_of_t, prev_kb, stats)
    kb_out = np.zeros(kb_shape, dtype=np.int8)
    is_open = np.zeros(kb_shape, dtype=np.int8)
    use_prev = prev_kb is not None
    prev = prev_kb if use_prev else kb_out
    v = np.zeros(shape, dtype=np.int32)
    # per sample, its neighbours' nonzero digits at this plane so far (cleared at every plane),
    # and plane_contexts's per-phase samples and contexts, per plane, in the open blocks
    nz, pos_k, ctx_k, sbase_k = _work_buffers(h, w)

    for k in range(top - 1, -1, -1):
        pow3k = int(kt.POW3[k])
        # block pass: which blocks start at plane k
        idx, ctx = ck.block_contexts(is_open, prev, use_prev, k, chan)
        want = (kb.ravel()[idx] == k + 1).astype(np.int32) if encoding else None
        opened, bits_k = code_bits(coder, model.block, ctx, want)
        if not ck.open_blocks(is_open, kb_out, idx, opened, k) and k == top - 1 and idx.size:
            raise CorruptStreamError("top plane has no significant block")
        nonzero = 0
        nz.fill(0)
        counts = ck.plane_contexts(v, is_open, ck.KBLOCK, e16, cls, shape_of_t, k, chan, pow3k, pos_k, ctx_k,
                                   sbase_k)
        for phase in range(len(ck.PHASES)):
            n = counts[phase]
            pos, ctx = ck.magnitude_contexts(nz, pos_k[phase, :n], ctx_k[phase, :n], phase)
            d = digits[k, pos] if encoding else None
            mag, b = code_bits(coder, model.magnitude, ctx, None if d is None else (d != 0).astype(np.int32))
            bits_k += b
            where, sctx = ck.sign_contexts(nz, pos, mag, sbase_k[phase, :n], phase)
            sgn, b = code_bits(coder, model.sign, sctx, None if d is None else (d[mag != 0] > 0).astype(np.int32))
            bits_k += b
            ck.apply_signs(v, nz, where, sgn, pow3k)
            nonzero += where.size
        if stats is not None:
            stats.add(k, nonzero, bits_k)
    return v, kb_out
