"""Running triadic itself through its public API: encode, decode, info (never its internals).

The codec is passed in as a module-like object (``api``) so that the benchmark's plumbing can be
tested before, and independently of, the codec.
"""

from __future__ import annotations

import inspect
import os
import tempfile
import time

from .frames import Clip, synthetic_clip
from .peers import compare
from .rates import rate_breakdown

#: What triadic is asked for by default (the codec's own defaults, spelled out for the record).
DEFAULT_SETTINGS = {"keyint": 60, "preset": "medium"}
#: The presets the "triadic-presets" group runs besides the default (speed against rate, same run).
OTHER_PRESETS = ("fast", "slow")


def available(api) -> str | None:
    """None when ``api`` has encode, decode and info; otherwise what is missing."""
    if api is None:
        return "triadic is not importable"
    missing = [name for name in ("encode", "decode", "info", "Frame") if not hasattr(api, name)]
    return f"triadic has no {', '.join(missing)} yet" if missing else None


def accepts_max_error(api) -> bool:
    """True when ``api.encode`` takes a ``max_error`` keyword (near-lossless mode exists)."""
    try:
        params = inspect.signature(api.encode).parameters
    except (TypeError, ValueError):
        return False
    return "max_error" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _takes(func, name: str) -> bool:
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def single_process(api) -> dict:
    """``jobs=1`` when the installed triadic can code segments in parallel: the peers run on one
    thread, so triadic runs in one process (with 30 frames and keyint 60 there is one segment
    anyway)."""
    return {"jobs": 1} if _takes(api.encode, "jobs") else {}


def _frames(api, clip: Clip):
    return [api.Frame(planes=tuple(p), pix_fmt=clip.pix_fmt) for p in clip.frames]


def _decoded_planes(frames) -> list:
    return [tuple(f.planes) for f in frames]


def encode_decode(api, clip: Clip, folder: str, **settings) -> dict:
    """Encode ``clip`` to a file with ``settings``, decode it, compare; sizes, times and ``info``."""
    path = os.path.join(folder, f"{clip.name}.tri")
    frames = _frames(api, clip)
    jobs = single_process(api)
    start = time.perf_counter()
    report = api.encode(frames, path, **settings, **jobs)
    encode_s = time.perf_counter() - start
    del frames
    start = time.perf_counter()
    decoded = _decoded_planes(api.decode(path, **jobs) if _takes(api.decode, "jobs") else api.decode(path))
    decode_s = time.perf_counter() - start
    size = os.path.getsize(path)
    check = compare(clip.frames, decoded)
    info = api.info(path)
    os.remove(path)
    return {"bytes": size, "encode_s": encode_s, "decode_s": decode_s, "report": report,
            "info": info, **check}


def warm_up(api, pix_fmt: str) -> float:
    """Encode and decode a tiny clip once so JIT compilation is not counted in the timings."""
    clip = synthetic_clip(frames=2, width=32, height=32)
    clip.pix_fmt = pix_fmt
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="triadic-bench-") as folder:
        encode_decode(api, clip, folder, **DEFAULT_SETTINGS)
    return time.perf_counter() - start


def _jsonable(value):
    """``value`` with numpy scalars and arrays turned into plain Python (for results.json)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def lossless(api, clip: Clip, folder: str, settings: dict | None = None) -> tuple[dict, dict]:
    """triadic's lossless row (same fields as a peer's) and its detail: rates, ρ_k, per-frame bits."""
    settings = dict(DEFAULT_SETTINGS if settings is None else settings)
    out = encode_decode(api, clip, folder, **settings)
    info = out["info"]
    samples = [int(p.size) for p in clip.frames[0]]
    rates = rate_breakdown(info, samples, clip.width, clip.height, len(clip.frames), out["bytes"])
    frames_log = [{"frame": i, **_jsonable(entry)} for i, entry in enumerate(info.get("frames_log") or [])]
    row = {key: out[key] for key in ("bytes", "encode_s", "decode_s", "exact", "frames_decoded",
                                     "mismatched_frames", "max_error", "psnr", "psnr_y")}
    row["settings"] = settings
    detail = {
        "rates": rates,
        "frames_log": frames_log,
        "side_bits": _jsonable(info.get("side_bits")),
        "residual_bits": _jsonable(info.get("residual_bits")),
        "bit_depth": _jsonable(info.get("bit_depth")),
        "encode_report": _jsonable({k: v for k, v in (out["report"] or {}).items()
                                    if not isinstance(v, (list, dict))}),
    }
    return row, detail


def near_lossless(api, clip: Clip, folder: str, max_error: int) -> dict:
    """One point of triadic's near-lossless sweep: bytes, times and distortion."""
    settings = dict(DEFAULT_SETTINGS, max_error=max_error)
    out = encode_decode(api, clip, folder, **settings)
    row = {key: out[key] for key in ("bytes", "encode_s", "decode_s", "frames_decoded",
                                     "max_error", "psnr", "psnr_y", "samples")}
    row["settings"] = settings
    # every sample of every frame compared with the source (yuv420p: no colour transform)
    row["bound_held"] = (out["frames_decoded"] == len(clip.frames)
                         and out["samples"] == sum(p.size for f in clip.frames for p in f)
                         and out["max_error"] <= max_error)
    return row
