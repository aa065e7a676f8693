"""Levels leaves: footage decoded from H.264 coded as its own transform levels (kernels/transform.py)."""

import numpy as np
import pytest

import h264like
import triadic
from triadic import search
from triadic.codec import analyse
from triadic.kernels import transform

# --------------------------------------------------------------------------------------------------
# The standard's inverse transforms, written out from ITU-T H.264 8.5.12 and 8.5.13 in plain
# Python integers (flat scaling matrices), against which the kernels are checked.
# --------------------------------------------------------------------------------------------------

NORM4 = [[10, 16, 13], [11, 18, 14], [13, 20, 16], [14, 23, 18], [16, 25, 20], [18, 29, 23]]
NORM8 = [[20, 18, 32, 19, 25, 24], [22, 19, 35, 21, 28, 26], [26, 23, 42, 24, 33, 31],
         [28, 25, 45, 26, 35, 33], [32, 28, 51, 30, 40, 38], [36, 32, 58, 34, 46, 43]]


def _scale4(qp, i, j):
    m = NORM4[qp % 6]
    return 16 * (m[0] if i % 2 == 0 and j % 2 == 0 else m[1] if i % 2 == 1 and j % 2 == 1 else m[2])


def _scale8(qp, i, j):
    m = NORM8[qp % 6]
    if i % 4 == 0 and j % 4 == 0:
        v = m[0]
    elif i % 2 == 1 and j % 2 == 1:
        v = m[1]
    elif i % 4 == 2 and j % 4 == 2:
        v = m[2]
    elif (i % 4 == 0 and j % 2 == 1) or (i % 2 == 1 and j % 4 == 0):
        v = m[3]
    elif (i % 4 == 0 and j % 4 == 2) or (i % 4 == 2 and j % 4 == 0):
        v = m[4]
    else:
        v = m[5]
    return 16 * v


def spec_inverse4(c, qp):
    """8.5.12.1 (scaling, qP < 24 rounds) and 8.5.12.2 (the transform) for a 4x4 list of lists."""
    if qp >= 24:
        d = [[(c[i][j] * _scale4(qp, i, j)) << (qp // 6 - 4) for j in range(4)] for i in range(4)]
    else:
        d = [[(c[i][j] * _scale4(qp, i, j) + 2 ** (3 - qp // 6)) >> (4 - qp // 6) for j in range(4)]
             for i in range(4)]
    f = [[0] * 4 for _ in range(4)]
    for i in range(4):
        e0, e1 = d[i][0] + d[i][2], d[i][0] - d[i][2]
        e2, e3 = (d[i][1] >> 1) - d[i][3], d[i][1] + (d[i][3] >> 1)
        f[i] = [e0 + e3, e1 + e2, e1 - e2, e0 - e3]
    r = [[0] * 4 for _ in range(4)]
    for j in range(4):
        g0, g1 = f[0][j] + f[2][j], f[0][j] - f[2][j]
        g2, g3 = (f[1][j] >> 1) - f[3][j], f[1][j] + (f[3][j] >> 1)
        for i, h in enumerate((g0 + g3, g1 + g2, g1 - g2, g0 - g3)):
            r[i][j] = (h + 32) >> 6
    return r


def _row8(d):
    a0, a4 = d[0] + d[4], d[0] - d[4]
    a2, a6 = (d[2] >> 1) - d[6], d[2] + (d[6] >> 1)
    b0, b2, b4, b6 = a0 + a6, a4 + a2, a4 - a2, a0 - a6
    a1 = -d[3] + d[5] - d[7] - (d[7] >> 1)
    a3 = d[1] + d[7] - d[3] - (d[3] >> 1)
    a5 = -d[1] + d[7] + d[5] + (d[5] >> 1)
    a7 = d[3] + d[5] + d[1] + (d[1] >> 1)
    b1, b7 = a1 + (a7 >> 2), a7 - (a1 >> 2)
    b3, b5 = a3 + (a5 >> 2), (a3 >> 2) - a5
    return [b0 + b7, b2 + b5, b4 + b3, b6 + b1, b6 - b1, b4 - b3, b2 - b5, b0 - b7]


def spec_inverse8(c, qp):
    """8.5.13.1 and 8.5.13.2 for an 8x8 list of lists."""
    if qp >= 36:
        d = [[(c[i][j] * _scale8(qp, i, j)) << (qp // 6 - 6) for j in range(8)] for i in range(8)]
    else:
        d = [[(c[i][j] * _scale8(qp, i, j) + 2 ** (5 - qp // 6)) >> (6 - qp // 6) for j in range(8)]
             for i in range(8)]
    g = [_row8(row) for row in d]
    cols = [_row8([g[i][j] for i in range(8)]) for j in range(8)]
    return [[(cols[j][i] + 32) >> 6 for j in range(8)] for i in range(8)]


@pytest.mark.parametrize("size", [4, 8])
@pytest.mark.parametrize("qp", [0, 5, 10, 17, 23, 24, 30, 35, 36, 45, 51])
def test_inverse_transform_is_the_standards(size, qp):
    rng = np.random.default_rng(size * 100 + qp)
    inverse, spec = (transform.inverse4, spec_inverse4) if size == 4 else (transform.inverse8, spec_inverse8)
    for _ in range(50):
        levels = rng.integers(-40, 41, (size, size)) * (rng.random((size, size)) < 0.5)
        got = np.empty(size * size, np.int64)
        inverse(levels.ravel().astype(np.int64), qp, got)
        assert got.reshape(size, size).tolist() == spec(levels.tolist(), qp)


@pytest.mark.parametrize("size, qp, least", [(4, 10, 0.93), (4, 26, 1.0), (8, 10, 0.93), (8, 12, 0.97),
                                             (8, 26, 1.0), (8, 40, 1.0)])
def test_levels_are_found_back_from_the_residual(size, qp, least):
    """The encoder's forward transforms find levels giving a block back exactly for (almost)
    every block of levels of the quantisers footage is coded at (at quantiser 10 a few blocks
    have a rounding the forward transform does not invert, and stay samples)."""
    rng = np.random.default_rng(size + qp)
    n = size * size
    found = 0
    for _ in range(400):
        levels = (rng.integers(-4, 5, n) * (rng.random(n) < 0.3)).astype(np.int64)
        residual = np.empty(n, np.int64)
        (transform.inverse4 if size == 4 else transform.inverse8)(levels, qp, residual)
        block = residual.reshape(size, size).astype(np.int32)
        again = np.empty(n, np.int64)
        if transform.block_levels(block, 0, 0, size, qp, again, np.empty(transform.LEVELS_WORK, np.int64)):
            back = np.empty(n, np.int64)
            (transform.inverse4 if size == 4 else transform.inverse8)(again, qp, back)
            assert np.array_equal(back, residual)  # found means exact
            found += 1
    assert found / 400 >= least


def test_levels_to_residual_refuses_damage():
    q = np.zeros((8, 8), np.int32)
    grid = np.array([[transform.T8, transform.T8], [transform.T8, transform.T8]], np.int8)
    q[0, 0] = transform.MAX_LEVEL + 1
    assert not transform.levels_to_residual(q.copy(), grid, 4, 10)
    q[0, 0] = 5
    assert transform.levels_to_residual(q, grid, 4, 10)
    # an 8x8 block that would reach past the plane
    assert not transform.levels_to_residual(np.zeros((4, 8), np.int32), grid[:1], 4, 10)


# --------------------------------------------------------------------------------------------------
# The codec
# --------------------------------------------------------------------------------------------------


def _encode(tmp_path, frames, name="a.tri", **kw):
    path = tmp_path / name
    report = triadic.encode(frames, path, **kw)
    return path, report


def test_h264_like_footage_is_coded_as_levels(tmp_path, monkeypatch):
    frames = h264like.frames()
    path, report = _encode(tmp_path, frames, jobs=1)
    decoded = list(triadic.decode(path, jobs=1))
    assert len(decoded) == len(frames) and all(a.equals(b) for a, b in zip(frames, decoded))
    charts = [fa.chart for fa in analyse(path)]
    assert charts[0].qp == -1  # a keyframe has no levels leaves
    for chart in charts[1:]:
        assert chart.qp == 10
        assert (chart.transform != transform.NONE).mean() > 0.75
    assert (path.read_bytes() == _encode(tmp_path, frames, "b.tri", jobs=2)[0].read_bytes())
    monkeypatch.setattr(search, "choose_levels", lambda chart, *args: chart)
    _, without = _encode(tmp_path, frames, "c.tri", jobs=1)
    assert report["bpppf"] < 0.9 * without["bpppf"]


def test_bi_prediction_is_not_tried_after_a_frame_with_levels(tmp_path, monkeypatch):
    """The search tries bi-prediction on a probe frame (the segment's frame 2) of footage without
    levels, but not after a frame with levels leaves (search.search_plan), with the search
    thread as without it; the slow preset still does."""
    seen = []
    rule = search.search_plan

    def plan(position, last, lags, levels=False):
        out = rule(position, last, lags, levels)
        seen.append((position, levels, out[1]))
        return out

    monkeypatch.setattr(search, "search_plan", plan)
    frames = h264like.frames(count=4)
    _encode(tmp_path, frames, jobs=1)
    assert seen == [(1, False, False), (2, True, False), (3, True, False)]
    seen.clear()
    _encode(tmp_path, frames, "b.tri", jobs=2)
    assert sorted(seen) == [(1, False, False), (2, True, False), (3, True, False)]
    seen.clear()
    _encode(tmp_path, frames, "s.tri", jobs=1, preset="slow")  # whose descent makes them pay
    assert seen[1] == (2, False, True)
    seen.clear()
    moving = [triadic.Frame((np.ascontiguousarray(np.roll(f.planes[0], 3 * k, axis=1)),), "gray")
              for k, f in enumerate(h264like.frames(count=1) * 4)]
    _encode(tmp_path, moving, "c.tri", jobs=1)
    assert seen[1] == (2, False, True)  # the probe frame, without levels before it


def test_levels_are_not_taken_for_other_footage(tmp_path):
    """Content that never went through H.264 (a synthetic texture moving by whole and half
    samples, with noise) finds no quantiser: the charts have no levels leaves."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:48, 0:64]
    frames = []
    for t in range(4):
        luma = ((x * 7 + y * 3 + ((x + t) * (y + 2 * t)) // 5) % 64) * 3 + rng.integers(0, 8, (48, 64))
        frames.append(triadic.Frame((luma.astype(np.uint8),), "gray"))
    path, _ = _encode(tmp_path, frames, jobs=1)
    assert all(fa.chart.qp == -1 for fa in analyse(path))


def test_near_lossless_has_no_levels_leaves(tmp_path):
    path, _ = _encode(tmp_path, h264like.frames(count=3), jobs=1, max_error=1)
    assert all(fa.chart.qp == -1 for fa in analyse(path))
    decoded = list(triadic.decode(path, jobs=1))
    for a, b in zip(h264like.frames(count=3), decoded):
        assert max(int(np.abs(p.astype(int) - q.astype(int)).max()) for p, q in zip(a.planes, b.planes)) <= 1


def test_real_h264_decode_is_coded_as_levels(tmp_path):
    """carphone (x264 at quantiser 10: P frames 10, B frames 12) finds its quantisers, and many of
    its leaves are levels leaves; the decode is exact."""
    frames = list(triadic.read_frames(triadic.sample_clip("carphone"), frames=5))
    path, _ = _encode(tmp_path, frames, jobs=1)
    assert all(a.equals(b) for a, b in zip(frames, triadic.decode(path, jobs=1)))
    charts = [fa.chart for fa in analyse(path)]
    assert [c.qp for c in charts] == [-1, 12, 10, 12, 10]
    assert (charts[2].transform != transform.NONE).mean() > 0.4
