"""The peers triadic is measured against: video codecs through PyAV, image codecs through imagecodecs.

Each peer encodes the clip's shared frames, then its output is decoded again and compared with those
frames plane by plane. A lossless peer whose output differs is reported with ``exact: false``; it is
never silently counted. Sizes are the coded packets plus the codec's extradata (its global headers),
without any container around them.
"""

from __future__ import annotations

import ctypes
import glob
import os
import re
import time
from dataclasses import dataclass, field

import numpy as np

from .frames import Clip, Planes, plane_arrays, to_video_frame


@dataclass(frozen=True)
class Peer:
    """One codec configuration.

    ``kind`` is "video" (PyAV encoder ``encoder``, decoded by ``decoder``) or "image" (imagecodecs,
    every plane of every frame coded on its own). ``options`` are the encoder's AVOptions (video) or
    keyword arguments (image); they are part of the cache key.
    """

    key: str
    label: str
    kind: str
    encoder: str
    decoder: str = ""
    options: dict = field(default_factory=dict)
    lossless: bool = True
    #: Only these pixel formats are accepted (None: any).
    pix_fmts: tuple[str, ...] | None = None

    def settings(self) -> dict:
        return {"kind": self.kind, "encoder": self.encoder, "decoder": self.decoder,
                "options": dict(self.options)}


def _av1_decoder() -> str:
    import av

    for name in ("libdav1d", "libaom-av1", "av1"):
        try:
            av.codec.Codec(name, "r")
            return name
        except Exception:
            continue
    return "av1"


def lossless_peers() -> list[Peer]:
    """The lossless peers of DESIGN.md §3, with settings checked bit-exact on PyAV 18.1."""
    av1 = _av1_decoder()
    return [
        # level 3, range coder with the default state table, large context model, slice CRCs.
        Peer("ffv1", "FFV1", "video", "ffv1", "ffv1",
             {"level": "3", "coder": "1", "context": "1", "slicecrc": "1"}),
        # qp 0 is x264's lossless mode (High 4:4:4 Predictive profile, transform bypass).
        Peer("x264-medium", "x264 medium", "video", "libx264", "h264",
             {"qp": "0", "preset": "medium"}),
        Peer("x264-veryslow", "x264 veryslow", "video", "libx264", "h264",
             {"qp": "0", "preset": "veryslow"}),
        Peer("x265", "x265 medium", "video", "libx265", "hevc",
             {"preset": "medium", "x265-params": "lossless=1:log-level=error"}),
        Peer("vp9", "VP9", "video", "libvpx-vp9", "vp9",
             {"lossless": "1", "deadline": "good", "cpu-used": "1", "row-mt": "1"}),
        # crf=0 is NOT lossless in SVT-AV1; lossless=1 is. 4:2:0 only.
        Peer("svtav1-p8", "SVT-AV1 p8", "video", "libsvtav1", av1,
             {"preset": "8", "svtav1-params": "lossless=1"}, pix_fmts=("yuv420p", "yuv420p10le")),
        Peer("svtav1-p4", "SVT-AV1 p4", "video", "libsvtav1", av1,
             {"preset": "4", "svtav1-params": "lossless=1"}, pix_fmts=("yuv420p", "yuv420p10le")),
        Peer("jpegxl", "JPEG XL e7", "image", "jpegxl", options={"lossless": True, "effort": 7}),
        Peer("jpegls", "JPEG-LS", "image", "jpegls", options={}),
    ]


#: SVT-AV1 CRF sweep of the lossy comparison (preset 8). Not 0: FFmpeg's libsvtav1 reads crf=0 as
#: "unset" and falls back to SVT-AV1's default (35); crf=0 is not lossless either way.
SVTAV1_CRFS = (1, 5, 10, 20, 30, 40, 50)

#: Near-lossless error bounds E = (3^j - 1) / 2 swept for JPEG-LS (NEAR = E) and triadic: every
#: E triadic accepts but 0 (JPEG-LS takes NEAR up to 127 at 8 bits).
NEAR_LOSSLESS = (1, 4, 13, 40, 121)


def lossy_peers(crfs=SVTAV1_CRFS, nears=NEAR_LOSSLESS) -> list[tuple[Peer, str, int]]:
    """(peer, swept parameter name, value) for every point of the lossy sweep."""
    av1 = _av1_decoder()
    points = []
    for crf in crfs:
        points.append((Peer(f"svtav1-p8-crf{crf}", f"SVT-AV1 p8 crf {crf}", "video", "libsvtav1", av1,
                            {"preset": "8", "crf": str(crf)}, lossless=False,
                            pix_fmts=("yuv420p", "yuv420p10le")), "crf", crf))
    for near in nears:
        # imagecodecs.jpegls_encode(data, level=NEAR): CharLS's near-lossless parameter
        points.append((Peer(f"jpegls-near{near}", f"JPEG-LS NEAR={near}", "image", "jpegls",
                            options={"level": near}, lossless=False), "near", near))
    return points


# --------------------------------------------------------------------------------------------------
# Running a peer
# --------------------------------------------------------------------------------------------------

@dataclass
class Coded:
    """What one encode + decode produced."""

    bytes: int
    encode_s: float
    decode_s: float
    decoded: list[Planes]
    encoder_info: str = ""


def run_peer(peer: Peer, clip: Clip, threads: int = 1) -> Coded:
    """Encode ``clip`` with ``peer``, decode it back; both timed on the same frames."""
    if peer.pix_fmts is not None and clip.pix_fmt not in peer.pix_fmts:
        raise ValueError(f"{peer.label} takes only {', '.join(peer.pix_fmts)}, not {clip.pix_fmt}")
    if peer.kind == "video":
        return _run_video(peer, clip, threads)
    if peer.kind == "image":
        return _run_image(peer, clip, threads)
    raise ValueError(f"unknown peer kind {peer.kind!r}")


def _configure_threads(ctx, threads: int) -> None:
    # thread_count 0 lets the library pick; 1 keeps every codec single-threaded like triadic.
    ctx.thread_count = threads
    ctx.thread_type = "AUTO" if threads != 1 else "NONE"


def _run_video(peer: Peer, clip: Clip, threads: int) -> Coded:
    import av
    from av.codec.context import Flags

    if peer.encoder == "libsvtav1":
        os.environ.setdefault("SVT_LOG", "1")  # errors only; SVT-AV1 prints its banner otherwise
    enc = av.CodecContext.create(peer.encoder, "w")
    enc.width = clip.width
    enc.height = clip.height
    enc.pix_fmt = clip.pix_fmt
    # An explicit 1/fps time base and pts = frame index: no frame is dropped or duplicated.
    enc.time_base = 1 / clip.rate
    enc.framerate = clip.rate
    _configure_threads(enc, threads)
    # Global headers go to extradata, as a muxer would ask; FFV1 level 3 needs them to decode.
    enc.flags |= int(Flags.global_header)
    enc.options = dict(peer.options)
    av_frames = [to_video_frame(p, clip.pix_fmt, pts=i) for i, p in enumerate(clip.frames)]

    packets: list[bytes] = []
    start = time.perf_counter()
    enc.open()
    for frame in av_frames:
        packets.extend(bytes(p) for p in enc.encode(frame))
    packets.extend(bytes(p) for p in enc.encode(None))
    encode_s = time.perf_counter() - start
    extradata = bytes(enc.extradata or b"")
    size = sum(map(len, packets)) + len(extradata)
    info = _encoder_banner(peer.encoder, extradata + (packets[0] if packets else b""))
    del av_frames

    dec = av.CodecContext.create(peer.decoder, "r")
    if extradata:
        dec.extradata = extradata
    # FFV1's decoder refuses to open without the coded size (a demuxer would fill it in).
    dec.width = clip.width
    dec.height = clip.height
    _configure_threads(dec, threads)
    decoded: list[Planes] = []
    start = time.perf_counter()
    for data in packets:
        for frame in dec.decode(av.Packet(data)):
            decoded.append(plane_arrays(frame, clip.pix_fmt))
    for frame in dec.decode(None):
        decoded.append(plane_arrays(frame, clip.pix_fmt))
    decode_s = time.perf_counter() - start
    return Coded(size, encode_s, decode_s, decoded, info)


def _run_image(peer: Peer, clip: Clip, threads: int) -> Coded:
    import imagecodecs

    encode = getattr(imagecodecs, f"{peer.encoder}_encode")
    decode = getattr(imagecodecs, f"{peer.encoder}_decode")
    options = dict(peer.options)
    if peer.encoder == "jpegxl":
        options["numthreads"] = threads if threads > 0 else os.cpu_count()
    start = time.perf_counter()
    coded = [[encode(plane, **options) for plane in frame] for frame in clip.frames]
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    decoded = [tuple(np.asarray(decode(b)) for b in frame) for frame in coded]
    decode_s = time.perf_counter() - start
    return Coded(sum(len(b) for frame in coded for b in frame), encode_s, decode_s, decoded)


# --------------------------------------------------------------------------------------------------
# Versions
# --------------------------------------------------------------------------------------------------

def _encoder_banner(encoder: str, head: bytes) -> str:
    """x264 and x265 write their version into an SEI (extradata or first packet); read it back."""
    patterns = {"libx264": rb"x264 - core [0-9]+( r[0-9]+ [0-9a-f]+)?",
                "libx265": rb"x265 \(build [0-9]+\) - [^:\s]+"}
    pattern = patterns.get(encoder)
    if pattern is None:
        return ""
    match = re.search(pattern, head)
    return match.group(0).decode("ascii", "replace") if match else ""


def _bundled_library(stem: str):
    """ctypes handle of a library bundled with the PyAV wheel (av.libs/), or the system one."""
    import av

    roots = [os.path.join(os.path.dirname(os.path.dirname(av.__file__)), "av.libs"),
             os.path.join(os.path.dirname(av.__file__), ".dylibs")]
    for root in roots:
        for path in sorted(glob.glob(os.path.join(root, f"{stem}*"))):
            try:
                return ctypes.CDLL(path)
            except OSError:
                continue
    try:
        return ctypes.CDLL(f"{stem}.so")
    except OSError:
        return None


def _c_string_function(lib, name: str) -> str:
    try:
        func = getattr(lib, name)
    except AttributeError:
        return ""
    func.restype = ctypes.c_char_p
    func.argtypes = []
    value = func()
    return value.decode("ascii", "replace") if value else ""


def library_versions() -> dict:
    """Versions of PyAV, FFmpeg's libraries, the external encoders and imagecodecs' codecs."""
    import av

    out: dict = {
        "pyav": av.__version__,
        "ffmpeg": getattr(av, "ffmpeg_version_info", ""),
        "ffmpeg_libraries": {k: ".".join(map(str, v)) for k, v in av.library_versions.items()},
    }
    encoders: dict[str, str] = {}
    lib = _bundled_library("libx265")
    if lib is not None:
        try:
            encoders["libx265"] = ctypes.c_char_p.in_dll(lib, "x265_version_str").value.decode()
        except (ValueError, AttributeError):
            pass
    lib = _bundled_library("libvpx")
    if lib is not None:
        encoders["libvpx"] = _c_string_function(lib, "vpx_codec_version_str")
    lib = _bundled_library("libSvtAv1Enc")
    if lib is not None:
        encoders["libsvtav1"] = _c_string_function(lib, "svt_av1_get_version")
    lib = _bundled_library("libdav1d")
    if lib is not None:
        encoders["libdav1d"] = _c_string_function(lib, "dav1d_version")
    lib = _bundled_library("libx264")
    if lib is not None:
        # x264 exports no version string; the soname carries X264_BUILD. The full banner is read
        # from the bitstream when x264 runs (see the peer's "encoder_info").
        encoders["libx264"] = f"build {os.path.basename(lib._name).rsplit('.so.', 1)[-1]}"
    out["encoders"] = {k: v for k, v in encoders.items() if v}
    try:
        import imagecodecs

        out["imagecodecs"] = imagecodecs.__version__
        out["jpegxl"] = imagecodecs.jpegxl_version()
        out["jpegls"] = imagecodecs.jpegls_version()
    except ImportError:
        pass
    out["numpy"] = np.__version__
    return out


# --------------------------------------------------------------------------------------------------
# Comparing decoded frames with the source
# --------------------------------------------------------------------------------------------------

def compare(source: list[Planes], decoded: list[Planes], bit_depth: int = 8) -> dict:
    """Bit-exactness and distortion of ``decoded`` against ``source``.

    PSNR pools the squared error over every sample of every frame (``psnr`` over all planes,
    ``psnr_y`` over luma only; None when identical, i.e. infinite); ``samples`` is how many samples
    were compared. A frame count mismatch makes the result not exact and the distortion is
    measured over the frames both have.
    """
    n = min(len(source), len(decoded))
    peak = float((1 << bit_depth) - 1)
    sq_all = sq_y = 0.0
    count_all = count_y = 0
    max_err = 0
    mismatched = 0
    shape_ok = True
    for a, b in zip(source[:n], decoded[:n]):
        frame_exact = True
        if len(a) != len(b):
            shape_ok = False
            mismatched += 1
            continue
        for i, (pa, pb) in enumerate(zip(a, b)):
            if pa.shape != pb.shape:
                shape_ok = False
                frame_exact = False
                continue
            diff = pa.astype(np.int64) - pb.astype(np.int64)
            sq = float(np.dot(diff.ravel(), diff.ravel()))
            if sq:
                frame_exact = False
                max_err = max(max_err, int(np.abs(diff).max()))
            sq_all += sq
            count_all += diff.size
            if i == 0:
                sq_y += sq
                count_y += diff.size
        mismatched += not frame_exact
    exact = shape_ok and len(source) == len(decoded) and mismatched == 0

    def psnr(sq: float, count: int):
        if count == 0:
            return None
        if sq == 0:
            return None  # identical: infinite PSNR, which JSON cannot hold
        return 10.0 * np.log10(peak * peak * count / sq)

    return {
        "exact": bool(exact),
        "frames_decoded": len(decoded),
        "mismatched_frames": mismatched + abs(len(source) - len(decoded)),
        "max_error": max_err,
        "samples": count_all,
        "psnr": psnr(sq_all, count_all),
        "psnr_y": psnr(sq_y, count_y),
    }
