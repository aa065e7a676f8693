"""Pass coding with constriction's ANS: the only module that imports constriction.

``Encoder`` and ``Decoder`` share one interface so that the code that walks the passes is
written once and runs in both directions: ``bits(values, p1)`` and ``symbols(values, probs)``
take the symbols to write (encoder) or ``None`` (decoder) and return the symbols either way.
ANS is a stack, so the encoder records every pass and writes them in reverse at ``finish``.
Binary decisions go three at a time, as one symbol over 8 outcomes (kernels/triples.py), unit by
unit: a stripe of a pass (the encoder's ``encode_bits`` records a whole pass and its stripe size,
the decoder's stripe loop calls ``stripe_decoder``'s function once per stripe) or one call of
``bits``. A unit's probabilities are all known before its first decision, so the code length is
the same, and constriction decodes a symbol over 8 outcomes in about the time of one bit.
"""

from __future__ import annotations

import functools
import threading

import numpy as np
import constriction

from .errors import CorruptStreamError
from .kernels import triples

_CATEGORICAL = constriction.stream.model.Categorical(perfect=False)


def _information(values: np.ndarray, p: np.ndarray) -> float:
    """Ideal code length in bits of binary ``values`` under P(1) = p."""
    q = np.where(values != 0, p, 1.0 - p)
    return float(-np.log2(np.maximum(q, 1e-300)).sum())


_SCRATCH = threading.local()


def _scratch(name: str, rows: int) -> np.ndarray:
    """A (rows, 8) float buffer that this thread reuses under ``name``: a fresh one per pass
    costs more in page faults than the products written into it."""
    buf = getattr(_SCRATCH, name, None)
    if buf is None or buf.shape[0] < rows:
        buf = np.empty((max(rows, 1 << 12), 8))
        setattr(_SCRATCH, name, buf)
    return buf[:rows]


#: encode_planes's (symbols, table) buffers not held by an Encoder, for any thread (an Encoder
#: coding in one thread may be finished in another: Encoder.append). At most _PLANE_BUFFERS_KEPT kept.
_PLANE_BUFFERS: list[tuple[np.ndarray, np.ndarray]] = []
_PLANE_BUFFERS_LOCK = threading.Lock()
_PLANE_BUFFERS_KEPT = 4


def _take_plane_buffers(rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The smallest spare buffers of at least ``rows`` rows, or new ones."""
    with _PLANE_BUFFERS_LOCK:
        fits = [i for i, b in enumerate(_PLANE_BUFFERS) if b[0].size >= rows]
        if fits:
            return _PLANE_BUFFERS.pop(min(fits, key=lambda i: _PLANE_BUFFERS[i][0].size))
    rows = max(1 << 14, rows)  # (grown by the kernel if a frame needs more)
    return np.empty(rows, dtype=np.int32), np.empty((rows, 8))


def _give_back_plane_buffers(buffers: tuple[np.ndarray, np.ndarray]) -> None:
    with _PLANE_BUFFERS_LOCK:
        _PLANE_BUFFERS.append(buffers)
        if len(_PLANE_BUFFERS) > _PLANE_BUFFERS_KEPT:  # drop the smallest
            _PLANE_BUFFERS.pop(min(range(len(_PLANE_BUFFERS)), key=lambda i: _PLANE_BUFFERS[i][0].size))


def _triple_probabilities(p1: np.ndarray, unit: int) -> np.ndarray:
    """The triples' probabilities (kernels/triples.py), in this thread's scratch buffer."""
    out = _scratch("probs", triples.rows(p1.size, unit))
    triples.triple_probabilities(p1, unit, out)
    return out


class Encoder:
    """Records passes, then writes them as one ANS stream."""

    def __init__(self, measure: bool = False):
        # (binary?, values, probabilities, unit): binary passes go in triples, per unit of
        # ``unit`` decisions (the decoder's calls)
        self._passes: list[tuple[bool, np.ndarray, np.ndarray, int]] = []
        self.measure = measure
        self.last_bits = 0.0
        self.total_bits = 0.0  # ideal bits of everything recorded (when measuring)
        self._pass_kernel = None
        # encode_planes's passes, as finish hands them to constriction: triple symbols and their
        # probabilities, rows [0, _rows) in use (records hold slices of them)
        self._symbols: np.ndarray | None = None
        self._table: np.ndarray | None = None
        self._rows = 0
        self._parts: list[Encoder] = []  # appended parts (their buffers go back at finish)
        self._finished: bytes | None = None

    def bits(self, values: np.ndarray, p1: np.ndarray) -> np.ndarray:
        values = np.ascontiguousarray(values, dtype=np.int32)
        self._passes.append((True, values, p1, max(values.size, 1)))
        if self.measure:
            self.last_bits = _information(values, p1)
            self.total_bits += self.last_bits
        return values

    def encode_bits(self, values: np.ndarray, counts, ctx: np.ndarray, size: int) -> float:
        """A whole binary pass of int32 ``values`` under adaptive ``counts`` (model.BinaryCounts)
        and contexts ``ctx``, the counts updated between stripes of ``size`` symbols as
        planes.code_bits does stripe by stripe; returns its ideal bits (the same passes, in
        fewer calls: consecutive binary passes are coded as one anyway)."""
        if self._pass_kernel is None:
            from .kernels.encode import LOG2, pass_probabilities

            self._pass_kernel = pass_probabilities
            self._log2 = LOG2
        p1, bits = self._pass_kernel(counts.counts, ctx, values, counts.limit, size, self._log2)
        self._passes.append((True, values, p1, size))
        if self.measure:
            self.last_bits = bits
            self.total_bits += bits
        return bits

    def raw_bits(self, bits: np.ndarray, starts: np.ndarray) -> float:
        """Binary passes of plain bits (P(1) = 1/2), call i holding int32 bits[starts[i]:starts[i + 1]],
        each recorded as ``bits`` would record it (its own triples); returns their bits, one each."""
        half = np.full(bits.size, 0.5)
        for i in range(starts.size - 1):
            a, b = int(starts[i]), int(starts[i + 1])
            self._passes.append((True, bits[a:b], half[:b - a], max(b - a, 1)))
        if self.measure:
            self.last_bits = float(bits.size)
            self.total_bits += self.last_bits
        return float(bits.size)

    def encode_symbols(self, values: np.ndarray, counts, ctx: np.ndarray, size: int, alphabet: int) -> float:
        """A whole categorical pass of int32 ``values`` over the first ``alphabet`` symbols, under
        adaptive ``counts`` (model.SymbolCounts) and int64 contexts ``ctx``, the counts updated
        between stripes of ``size`` symbols as chart._code_symbols does stripe by stripe; returns
        its ideal bits. One record: ANS codes symbol by symbol, so the words are those of one call
        per stripe."""
        from .kernels.encode import symbol_pass_probabilities

        probs, bits = symbol_pass_probabilities(counts.counts, ctx, values, counts.limit, size, alphabet)
        self._passes.append((False, values, probs, 0))
        if self.measure:
            self.last_bits = bits
            self.total_bits += bits
        return bits

    def encode_planes(self, model, chan: int, top: int, digits: np.ndarray, kb: np.ndarray, e16: np.ndarray,
                      cls: np.ndarray, shape_of_t: np.ndarray, prev_kb: np.ndarray | None, stats) -> tuple:
        """planes._code_planes's passes of one channel once its top plane is coded (``top`` >= 1),
        from its digit planes and K map, in one kernel call (kernels/encode.code_planes: the same
        context kernels, the same passes and counts, the same bits): the passes go in as finish
        would write them. Returns (V, K map) as _code_planes does; ``stats`` hears of each plane."""
        from .kernels.encode import LOG2, code_planes
        from .model import MIN_STRIPE, STRIPES

        if self._symbols is None:
            self._symbols, self._table = _take_plane_buffers(2 * e16.size)
        use_prev = prev_kb is not None
        start = self._rows
        (v, kb_out, nonzero, bits, self._symbols, self._table, self._rows, self.total_bits, last,
         passes) = code_planes(digits, kb, top, chan, e16, cls, shape_of_t, prev_kb if use_prev else kb, use_prev,
                               model.block.counts, model.block.limit, model.magnitude.counts,
                               model.magnitude.limit, model.sign.counts, model.sign.limit, LOG2, MIN_STRIPE,
                               STRIPES, self._symbols, self._table, start, self.total_bits, self.measure)
        if self._rows > start:
            self._passes.append((None, self._symbols[start:self._rows], self._table[start:self._rows], 0))
        if passes and self.measure:
            self.last_bits = last
        if stats is not None:
            for k in range(top - 1, -1, -1):
                stats.add(k, int(nonzero[k]), float(bits[k]))
        return v, kb_out

    def symbols(self, values: np.ndarray, probs: np.ndarray) -> np.ndarray:
        values = np.ascontiguousarray(values, dtype=np.int32)
        self._passes.append((False, values, probs, 0))
        if self.measure:
            norm = probs / probs.sum(axis=1, keepdims=True)
            self.last_bits = float(-np.log2(norm[np.arange(values.size), values]).sum())
            self.total_bits += self.last_bits
        return values

    def mark(self) -> tuple[int, float, int]:
        """A point to come back to: lets the encoder try a coding and take it back."""
        return len(self._passes), self.total_bits, self._rows

    def rollback(self, mark: tuple[int, float, int]) -> None:
        """Forget everything recorded since ``mark``."""
        del self._passes[mark[0]:]
        self.total_bits = mark[1]
        self._rows = mark[2]

    def finish(self) -> bytes:
        """The ANS stream of every pass recorded. A run of consecutive binary passes goes to the
        coder in one call, their triples and triple probabilities concatenated: ANS codes symbol
        by symbol, so the words are those of one call per pass (the decoder still reads unit by
        unit), without the per-call overhead of each (about a sixth of a small frame's finish)."""
        if self._finished is not None:
            return self._finished
        coder = constriction.stream.stack.AnsCoder()
        passes = [p for p in self._passes if p[1].size]
        end = len(passes)
        while end > 0:  # ANS is a stack: the last pass first
            binary, values, probs, unit = passes[end - 1]
            if binary is None:  # encode_planes's passes, already triples
                coder.encode_reverse(values, _CATEGORICAL, probs)
                end -= 1
                continue
            if not binary:
                coder.encode_reverse(values, _CATEGORICAL, probs)
                end -= 1
                continue
            start = end - 1
            while start > 0 and passes[start - 1][0] is True:
                start -= 1
            counts = [triples.rows(p[1].size, p[3]) for p in passes[start:end]]
            total = sum(counts)
            symbols = np.empty(total, dtype=np.int32)
            table = _scratch("finish_probs", total)
            row = 0
            for (_, values, probs, unit), rows in zip(passes[start:end], counts):
                triples.pack_triples(values, unit, symbols[row:row + rows])
                triples.triple_probabilities(probs, unit, table[row:row + rows])
                row += rows
            coder.encode_reverse(symbols, _CATEGORICAL, table)
            end = start
        words = coder.get_compressed()
        self._finished = words.astype("<u4", copy=False).tobytes()
        for encoder in [self] + self._parts:  # the buffers go back (the records read them no more)
            if encoder._symbols is not None:
                _give_back_plane_buffers((encoder._symbols, encoder._table))
                encoder._symbols = encoder._table = None
        self._parts = []
        return self._finished

    def part(self) -> "Encoder":
        """An encoder for passes that another thread codes meanwhile: ``append`` then records
        them after this one's, as if they had been coded here in that order (the same stream)."""
        return Encoder(self.measure)

    def append(self, part: "Encoder") -> None:
        """Record the passes of ``part`` (from ``part()``) after those recorded so far."""
        self._passes.extend(part._passes)
        part._passes = []
        if self.measure:
            self.total_bits += part.total_bits
            self.last_bits = part.last_bits
        self._parts.append(part)  # its buffers hold its records until finish


class Decoder:
    """Reads passes back from an ANS stream, in the order the encoder recorded them."""

    def __init__(self, data: bytes, measure: bool = False):
        if len(data) % 4:
            raise CorruptStreamError("ANS stream length is not a multiple of 4 bytes")
        words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        try:
            self._coder = constriction.stream.stack.AnsCoder(words)
        except ValueError as exc:  # e.g. a last word of zero, which no encoder writes
            raise CorruptStreamError(f"ANS stream is damaged ({exc})") from None
        self.measure = measure
        self.last_bits = 0.0

    def bits(self, values, p1: np.ndarray) -> np.ndarray:
        if p1.size == 0:
            self.last_bits = 0.0
            return np.zeros(0, dtype=np.int32)
        try:
            symbols = self._coder.decode(_CATEGORICAL, _triple_probabilities(p1, p1.size))
        except Exception as exc:  # constriction raises on exhausted or invalid streams
            raise self.damaged(exc) from None
        out = triples.unpack_triples(symbols, p1.size)
        if self.measure:
            self.last_bits = _information(out, p1)
        return out

    def stripe_decoder(self):
        """``decode(probs)``: the triple symbols of one stripe from their probabilities (a
        non-empty (rows, 8) array, kernels/triples.py), not measured, as constriction's own call
        (no Python frame per stripe: planes.code_bits's loop). A damaged stream raises whatever
        constriction raises: the caller passes it to ``damaged``."""
        return functools.partial(self._coder.decode, _CATEGORICAL)

    @staticmethod
    def damaged(exc: Exception) -> CorruptStreamError:
        """The error to raise for an exception out of ``stripe_decoder``'s calls."""
        return exc if isinstance(exc, CorruptStreamError) else CorruptStreamError(f"ANS stream is damaged ({exc})")

    def finish(self) -> None:
        """Check that the frame used its stream exactly: an encoder's words decode to an empty coder."""
        if not self._coder.is_empty():
            raise CorruptStreamError(
                f"ANS stream is damaged ({self._coder.num_valid_bits()} bits left after the last symbol)")

    def symbols(self, values, probs: np.ndarray) -> np.ndarray:
        if probs.shape[0] == 0:
            self.last_bits = 0.0
            return np.zeros(0, dtype=np.int32)
        try:
            out = np.asarray(self._coder.decode(_CATEGORICAL, probs), dtype=np.int32)
        except Exception as exc:
            raise CorruptStreamError(f"ANS stream is damaged ({exc})") from None
        if self.measure:
            norm = probs / probs.sum(axis=1, keepdims=True)
            self.last_bits = float(-np.log2(norm[np.arange(out.size), out]).sum())
        return out
