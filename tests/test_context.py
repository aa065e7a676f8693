"""Context kernels of the plane passes (kernels/context.py) against their definitions."""

import numpy as np
import pytest


def _block_contexts_naive(is_open, prev_kb, use_prev, k, chan):
    """The block pass's candidates and contexts as defined: the open blocks among the 3 x 3
    around a block (at most 3), the previous frame's K there against k + 1, plane and channel."""
    from triadic.kernels import context as ck

    nby, nbx = is_open.shape
    idx, ctx = [], []
    for by in range(nby):
        for bx in range(nbx):
            if is_open[by, bx]:
                continue
            c = min(int(is_open[max(0, by - 1):by + 2, max(0, bx - 1):bx + 2].sum()), 3)
            if use_prev:
                d = int(prev_kb[by, bx]) - (k + 1)
                t = 0 if d <= -2 else (1 if d == -1 else (2 if d == 0 else 3))
            else:
                t = 4
            idx.append(by * nbx + bx)
            ctx.append(((c * 5 + t) * ck.K_CLASSES + min(k, ck.K_CLASSES - 1)) * ck.CHANNEL_CLASSES + chan)
    return np.array(idx, np.int32), np.array(ctx, np.int32)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (6, 1), (9, 13)])
def test_block_contexts_match_their_definition(shape):
    from triadic.kernels import context as ck

    rng = np.random.default_rng(shape[0] * 31 + shape[1])
    for density in (0.0, 0.3, 0.8, 1.0):
        is_open = (rng.random(shape) < density).astype(np.int8)
        prev_kb = rng.integers(0, 6, shape).astype(np.int8)
        for use_prev in (True, False):
            for k, chan in ((0, 0), (1, 1), (4, 0)):
                got = ck.block_contexts(is_open, prev_kb, use_prev, k, chan)
                want = _block_contexts_naive(is_open, prev_kb, use_prev, k, chan)
                np.testing.assert_array_equal(got[0], want[0])
                np.testing.assert_array_equal(got[1], want[1])
