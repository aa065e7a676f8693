"""Pass coding with constriction's ANS: the only module that imports constriction.

``Encoder`` and ``Decoder`` share one interface so that the code that walks the passes is
written once and runs in both directions: ``bits(values, p1)`` and ``symbols(values, probs)``
take the symbols to write (encoder) or ``None`` (decoder) and return the symbols either way.
ANS is a stack, so the encoder records every pass and writes them in reverse at ``finish``.
"""

from __future__ import annotations

import functools

import numpy as np
import constriction

from .errors import CorruptStreamError

_BERNOULLI = constriction.stream.model.Bernoulli(perfect=False)
_CATEGORICAL = constriction.stream.model.Categorical(perfect=False)


def _information(values: np.ndarray, p: np.ndarray) -> float:
    """Ideal code length in bits of binary ``values`` under P(1) = p."""
    q = np.where(values != 0, p, 1.0 - p)
    return float(-np.log2(np.maximum(q, 1e-300)).sum())


class Encoder:
    """Records passes, then writes them as one ANS stream."""

    def __init__(self, measure: bool = False):
        self._passes: list[tuple[bool, np.ndarray, np.ndarray]] = []
        self.measure = measure
        self.last_bits = 0.0
        self.total_bits = 0.0  # ideal bits of everything recorded (when measuring)
        self._pass_kernel = None

    def bits(self, values: np.ndarray, p1: np.ndarray) -> np.ndarray:
        values = np.ascontiguousarray(values, dtype=np.int32)
        self._passes.append((True, values, p1))
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
        self._passes.append((True, values, p1))
        if self.measure:
            self.last_bits = bits
            self.total_bits += bits
        return bits

    def symbols(self, values: np.ndarray, probs: np.ndarray) -> np.ndarray:
        values = np.ascontiguousarray(values, dtype=np.int32)
        self._passes.append((False, values, probs))
        if self.measure:
            norm = probs / probs.sum(axis=1, keepdims=True)
            self.last_bits = float(-np.log2(norm[np.arange(values.size), values]).sum())
            self.total_bits += self.last_bits
        return values

    def mark(self) -> tuple[int, float]:
        """A point to come back to: lets the encoder try a coding and take it back."""
        return len(self._passes), self.total_bits

    def rollback(self, mark: tuple[int, float]) -> None:
        """Forget everything recorded since ``mark``."""
        del self._passes[mark[0]:]
        self.total_bits = mark[1]

    def finish(self) -> bytes:
        coder = constriction.stream.stack.AnsCoder()
        passes = self._passes
        i = len(passes)
        while i > 0:  # reverse order; consecutive binary passes go in one call
            j = i - 1
            if passes[j][0]:
                while j > 0 and passes[j - 1][0]:
                    j -= 1
                values = np.concatenate([p[1] for p in passes[j:i]])
                p1 = np.concatenate([p[2] for p in passes[j:i]])
                if values.size:
                    coder.encode_reverse(values, _BERNOULLI, p1)
            elif passes[j][1].size:
                coder.encode_reverse(passes[j][1], _CATEGORICAL, passes[j][2])
            i = j
        words = coder.get_compressed()
        return words.astype("<u4", copy=False).tobytes()


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
            out = np.asarray(self._coder.decode(_BERNOULLI, p1), dtype=np.int32)
        except Exception as exc:  # constriction raises on exhausted or invalid streams
            raise CorruptStreamError(f"ANS stream is damaged ({exc})") from None
        if self.measure:
            self.last_bits = _information(out, p1)
        return out

    def stripe_decoder(self):
        """``decode(p1)``: ``bits(None, p1)`` for a non-empty p1, not measured, as constriction's
        own call (no Python frame per stripe: planes.code_bits's loop). A damaged stream raises
        whatever constriction raises: the caller passes it to ``damaged``."""
        return functools.partial(self._coder.decode, _BERNOULLI)

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
