"""The context model: adaptive integer counts that turn contexts into probabilities.

Encoder and decoder hold one ``ContextModel`` each and update it identically, so the
probabilities they hand the entropy coder agree bit for bit. The model is reset at every
segment start (keyframe), which makes segments independently decodable.
"""

from __future__ import annotations

import pathlib

import numpy as np

from .kernels import context as ck
from .kernels.transform import MAX_QP
from .params import MAX_REFERENCES

#: A binary context's counts are halved once they pass this total (the adaptation rate).
BINARY_LIMIT = 1 << 13
#: Row stripes a pass is split into; counts are updated between stripes.
STRIPES = 16
#: Smallest stripe, in symbols (tiny stripes cost Python overhead and gain nothing).
MIN_STRIPE = 256

#: Alphabet of the per-channel top plane K (0..MAX_DIGITS), plus RAW: the channel's residuals
#: follow as plain bits (chosen by the encoder when contexts cannot beat that, e.g. pure noise).
MAX_DIGITS = 12
RAW = MAX_DIGITS + 1
#: Motion vector difference classes: 0, then (sign, bit length 1..16).
MV_CLASSES = 33
#: Reference lags a chart may use: 1 (the previous frame) .. MAX_LAGS.
MAX_LAGS = MAX_REFERENCES
#: Deepest quadtree (a 64-sample root split down to 4-sample leaves).
MAX_TREE_DEPTH = 4


class BinaryCounts:
    """Adaptive probabilities of a binary symbol under ``size`` contexts."""

    def __init__(self, size: int, limit: int = BINARY_LIMIT):
        self.counts = np.zeros((size, 2), dtype=np.int32)
        self.limit = limit

    def probabilities(self, ctx: np.ndarray) -> np.ndarray:
        return ck.count_probabilities(self.counts, ctx)

    def update(self, ctx: np.ndarray, bits: np.ndarray) -> None:
        ck.count_update(self.counts, ctx, bits, self.limit)

    def update_then_probabilities(self, ctx: np.ndarray, bits: np.ndarray, next_ctx: np.ndarray) -> np.ndarray:
        """``update(ctx, bits)``, then ``probabilities(next_ctx)``, in one kernel call."""
        return ck.count_update_probabilities(self.counts, ctx, bits, self.limit, next_ctx)


class SymbolCounts:
    """Adaptive probabilities of a symbol from a small alphabet under a few contexts."""

    def __init__(self, contexts: int, alphabet: int, limit: int = 1 << 12):
        self.counts = np.zeros((contexts, alphabet), dtype=np.int64)
        self.limit = limit

    def probabilities(self, ctx: np.ndarray, alphabet: int | None = None) -> np.ndarray:
        """Unnormalised probabilities of the first ``alphabet`` symbols (default: all)."""
        return ck.symbol_probabilities(self.counts, np.asarray(ctx, np.int64),
                                       self.counts.shape[1] if alphabet is None else alphabet)

    def update(self, ctx: np.ndarray, symbols: np.ndarray) -> None:
        ck.symbol_update(self.counts, np.asarray(ctx, np.int64), np.asarray(symbols, np.int64), self.limit)


#: The binary context families, by attribute name of ContextModel.
BINARY_FAMILIES = ("magnitude", "sign", "block", "split", "intra_wp")
#: The categorical families with learned priors (the chart's symbols).
SYMBOL_FAMILIES = ("mode", "lag", "family", "mv_class")
#: Start each segment from the learned priors (benchmarks/train_priors.py); off only for training.
USE_PRIORS = True
_PRIORS: dict[str, np.ndarray] | None = None


def _priors() -> dict[str, np.ndarray]:
    """The trained initial counts shipped with the package (part of the bitstream format)."""
    global _PRIORS
    if _PRIORS is None:
        path = pathlib.Path(__file__).with_name("priors.npz")
        _PRIORS = dict(np.load(path)) if path.exists() else {}
    return _PRIORS


def prior_counts(name: str) -> np.ndarray | None:
    """The learned initial counts of a family (an attribute name of ContextModel), if shipped."""
    return _priors().get(name)


class ContextModel:
    """All adaptive statistics of one segment, starting from the learned priors."""

    def __init__(self) -> None:
        self.magnitude = BinaryCounts(ck.NUM_MAGNITUDE_CONTEXTS)
        self.sign = BinaryCounts(ck.NUM_SIGN_CONTEXTS)
        self.block = BinaryCounts(ck.NUM_BLOCK_CONTEXTS)
        self.top_digit = SymbolCounts(ck.CHANNEL_CLASSES, RAW + 1)
        self.mode = SymbolCounts(4, 3)
        self.split = BinaryCounts(3 * MAX_TREE_DEPTH, limit=1 << 10)
        self.lag = SymbolCounts(1, MAX_LAGS)
        self.mv_class = SymbolCounts(2 + 6 + 2, MV_CLASSES)  # vector y, x; 6 warp parameters; 2nd vector
        self.bi = BinaryCounts(1, limit=1 << 10)
        self.family = SymbolCounts(1, 3)
        self.intra_wp = BinaryCounts(3, limit=1 << 10)  # context: the previous frame's flag there, or 2
        self.levels_qp = SymbolCounts(1, 2 + MAX_QP)  # the frame's H.264 quantiser + 1, or 0 (chart.py)
        self.transform = SymbolCounts(1, 3)  # an INTER leaf's: none, 4x4 or 8x8 levels
        if USE_PRIORS:
            for name, table in _priors().items():
                counts = getattr(self, name).counts
                if table.shape == counts.shape:
                    counts[:] = table


def snapshot(model: "ContextModel") -> list[np.ndarray]:
    """Copies of every count table, for ``restore`` (the encoder's trial codings)."""
    return [table.counts.copy() for table in vars(model).values()]


def restore(model: "ContextModel", saved: list[np.ndarray]) -> None:
    for table, counts in zip(vars(model).values(), saved):
        table.counts[:] = counts


def stripe_size(n: int) -> int:
    """Symbols per stripe of a pass of n symbols (the last stripe may be shorter)."""
    return max(MIN_STRIPE, -(-n // STRIPES))


def stripes(n: int) -> list[slice]:
    """The stripes a pass of n symbols is coded in (count updates happen between them)."""
    size = stripe_size(n)
    return [slice(i, min(n, i + size)) for i in range(0, n, size)]
