"""Frozen descriptions shared by every layer: pixel formats, frames, the stream header, coding params.

Nothing here computes; it only names and validates.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .errors import InputError, UnsupportedFormatError


# --------------------------------------------------------------------------------------------------
# Pixel formats
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PixelFormat:
    """How a pixel format lays out its planes.

    ``planes`` is the number of planes a :class:`Frame` of this format holds, in the order the
    format names them (Y, U, V for yuv; R, G, B for the rgb family; one plane for gray).
    ``chroma_shift`` is (log2 horizontal, log2 vertical) subsampling of planes 1 and 2.
    ``colour`` names the reversible transform the codec applies before prediction ("none" or
    "ycocg-r"); the decoder undoes it, so frames come back in the source's own planes.
    """

    name: str
    planes: int
    bit_depth: int
    chroma_shift: tuple[int, int] = (0, 0)
    colour: str = "none"

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8) if self.bit_depth <= 8 else np.dtype(np.uint16)

    @property
    def max_value(self) -> int:
        return (1 << self.bit_depth) - 1

    def plane_shape(self, index: int, height: int, width: int) -> tuple[int, int]:
        """Shape (rows, columns) of plane ``index``; subsampled sizes round up (odd sizes work)."""
        if index == 0 or self.planes < 3:
            return height, width
        sx, sy = self.chroma_shift
        return -(-height >> sy), -(-width >> sx)


def _formats() -> dict[str, PixelFormat]:
    table: dict[str, PixelFormat] = {}

    def add(fmt: PixelFormat) -> None:
        table[fmt.name] = fmt

    add(PixelFormat("gray", 1, 8))
    for depth in (10, 12, 14, 16):
        add(PixelFormat(f"gray{depth}le", 1, depth))
    for sub, shift in (("420", (1, 1)), ("422", (1, 0)), ("444", (0, 0))):
        add(PixelFormat(f"yuv{sub}p", 3, 8, shift))
        add(PixelFormat(f"yuvj{sub}p", 3, 8, shift))  # full-range flavour, same planes
        for depth in (9, 10, 12, 14, 16):
            add(PixelFormat(f"yuv{sub}p{depth}le", 3, depth, shift))
    add(PixelFormat("rgb24", 3, 8, colour="ycocg-r"))
    add(PixelFormat("rgb48le", 3, 16, colour="ycocg-r"))
    add(PixelFormat("gbrp", 3, 8, colour="ycocg-r"))
    for depth in (9, 10, 12, 14, 16):
        add(PixelFormat(f"gbrp{depth}le", 3, depth, colour="ycocg-r"))
    return table


PIXEL_FORMATS: dict[str, PixelFormat] = _formats()

#: Names accepted for a format that PyAV may also spell differently.
FORMAT_ALIASES = {"gray8": "gray", "gray16": "gray16le", "rgb48": "rgb48le", "y8": "gray"}


def pixel_format(name: str) -> PixelFormat:
    """The :class:`PixelFormat` called ``name``, or an error listing the supported ones."""
    fmt = PIXEL_FORMATS.get(FORMAT_ALIASES.get(name, name))
    if fmt is None:
        raise UnsupportedFormatError(
            f"pixel format {name!r} is not supported; supported: {', '.join(PIXEL_FORMATS)}"
        )
    return fmt


# --------------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Frame:
    """One video frame: its planes in the pixel format's own order, native dtype, C-contiguous.

    For rgb-family formats the planes are R, G, B (whatever the packed or planar layout of the
    file); for yuv they are Y, U, V; gray has one plane. 8-bit formats hold uint8, deeper ones
    uint16 (native byte order).
    """

    planes: tuple[np.ndarray, ...]
    pix_fmt: str

    @property
    def format(self) -> PixelFormat:
        return pixel_format(self.pix_fmt)

    @property
    def width(self) -> int:
        return int(self.planes[0].shape[1])

    @property
    def height(self) -> int:
        return int(self.planes[0].shape[0])

    def to_ndarray(self) -> np.ndarray:
        """The frame as one array: (H, W) for gray, (H, W, 3) for rgb, stacked planes for yuv.

        For yuv the result is the concatenation of the flattened planes (like a raw .yuv frame).
        """
        fmt = self.format
        if fmt.planes == 1:
            return self.planes[0]
        if fmt.colour != "none":
            return np.stack(self.planes, axis=-1)
        return np.concatenate([p.ravel() for p in self.planes])

    def equals(self, other: "Frame") -> bool:
        """True when both frames hold the same samples in the same format."""
        return self.pix_fmt == other.pix_fmt and len(self.planes) == len(other.planes) and all(
            a.shape == b.shape and np.array_equal(a, b) for a, b in zip(self.planes, other.planes)
        )


def validate_frame(frame: Frame, fmt: PixelFormat, height: int, width: int) -> None:
    """Raise :class:`InputError` unless ``frame`` has the planes, shapes and range of ``fmt``."""
    if len(frame.planes) != fmt.planes:
        raise InputError(f"frame has {len(frame.planes)} planes, {fmt.name} needs {fmt.planes}")
    for i, plane in enumerate(frame.planes):
        want = fmt.plane_shape(i, height, width)
        if plane.shape != want:
            raise InputError(
                f"frame size changed mid-stream: plane {i} is {plane.shape[1]}x{plane.shape[0]}, "
                f"expected {want[1]}x{want[0]}"
            )
        if fmt.bit_depth not in (8, 16) and plane.size and int(plane.max()) > fmt.max_value:
            raise InputError(f"sample {int(plane.max())} exceeds {fmt.bit_depth}-bit range")


# --------------------------------------------------------------------------------------------------
# Coding parameters and the stream header
# --------------------------------------------------------------------------------------------------

#: Allowed near-lossless bounds: E = (3^j - 1) / 2, i.e. the j lowest ternary planes dropped.
MAX_ERRORS = (0, 1, 4, 13, 40, 121)

#: Earlier frames a leaf may reference (the decoder's window of reconstructed frames).
MAX_REFERENCES = 4

#: What each preset searches (encoder only; the decoder never needs to know): the motion search
#: range in luma samples, how many earlier frames leaves may reference, the smallest leaf, and
#: how many quarter-sample steps each vector then takes by estimated bits rather than SAD.
#: Every preset tries intra, INTER and INTER_MED per leaf and warps on leaves of WARP_MIN
#: samples and more; bi-prediction needs two lags, so "fast" has none. Once the search got
#: cheap, the residual coding took most of the time, and it grows with the rate: "fast" keeps
#: 8-sample leaves (smaller files than 16 at about the same speed) and gains on "medium" by one lag.
#: "slow" pays for the steps by estimated bits (0.5-3.4% smaller files than "medium", a search
#: 2-3x as long); with them 4-sample leaves cost more side bits than they save (+0.2 to +0.4%).
PRESETS = {
    "fast": dict(search_range=8, lags=1, min_leaf=8, descent=0),
    "medium": dict(search_range=32, lags=4, min_leaf=8, descent=0),
    "slow": dict(search_range=64, lags=4, min_leaf=8, descent=8),
}
DEFAULT_PRESET = "medium"

#: Hard limits the decoder checks before allocating anything.
MAX_DIMENSION = 1 << 15
MAX_PIXELS = 1 << 26  # 8192 x 8192: covers 8K UHD; decoding needs ~125 bytes per pixel
MAX_FRAMES = 1 << 31


@dataclass(frozen=True)
class EncodeParams:
    """What the caller may choose when encoding."""

    keyint: int = 60
    preset: str = DEFAULT_PRESET
    max_error: int = 0
    block_size: int = 16
    references: int | None = None  # reference frames the search may use; None: the preset's

    def __post_init__(self) -> None:
        if not 1 <= self.keyint <= 1 << 16:
            raise InputError(f"keyint must be between 1 and 65536, got {self.keyint}")
        if self.preset not in PRESETS:
            raise InputError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if self.max_error not in MAX_ERRORS:
            raise InputError(
                f"max_error must be one of {', '.join(map(str, MAX_ERRORS))}, got {self.max_error}"
            )
        if self.block_size not in (8, 16, 32, 64):
            raise InputError(f"block_size must be 8, 16, 32 or 64, got {self.block_size}")
        if self.references is not None and not 1 <= self.references <= MAX_REFERENCES:
            raise InputError(f"references must be between 1 and {MAX_REFERENCES}, got {self.references}")

    @property
    def search_range(self) -> int:
        return int(PRESETS[self.preset]["search_range"])

    @property
    def lags(self) -> int:
        """How many earlier frames the search may reference (the decoder keeps MAX_REFERENCES)."""
        return self.references or int(PRESETS[self.preset]["lags"])

    @property
    def min_leaf(self) -> int:
        """Smallest quadtree leaf the search tries, in luma samples."""
        return int(PRESETS[self.preset]["min_leaf"])

    @property
    def descent(self) -> int:
        """The most quarter-sample steps each vector takes by estimated bits after the search
        by SAD (0: none; kernels/motion.py, _descend)."""
        return int(PRESETS[self.preset]["descent"])

    @property
    def dropped_planes(self) -> int:
        """j, the number of low ternary planes the near-lossless quantiser drops."""
        return MAX_ERRORS.index(self.max_error)


@dataclass(frozen=True)
class StreamHeader:
    """Everything a decoder needs before the first frame. Packed by ``container``."""

    width: int
    height: int
    pix_fmt: str
    frame_rate: Fraction
    frame_count: int
    keyint: int
    max_error: int
    block_size: int

    @property
    def format(self) -> PixelFormat:
        return pixel_format(self.pix_fmt)

    @property
    def bit_depth(self) -> int:
        return self.format.bit_depth

    @property
    def colour_transform(self) -> str:
        return self.format.colour

    def replace(self, **changes) -> "StreamHeader":
        return dataclasses.replace(self, **changes)
