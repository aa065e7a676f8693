"""Golden streams: the exact bytes of small encodes are pinned, so every bitstream change is made
on purpose (constriction's tests pin compressed words; CompressAI keeps tests/expected/).

tests/expected/golden.json holds, per case, the SHA-256 of the input planes, of the .tri file
and of the decoded planes, and the format version that wrote it; tests/expected/<case>.tri is the
stream itself, which the current decoder must still decode to the recorded planes.

To accept a deliberate change, regenerate and commit:

    TRIADIC_REGEN_GOLDEN=1 python -m pytest tests/test_golden.py
    git add -f tests/expected     # *.tri is in .gitignore

and follow docs/bitstream.md §8: a change that a reader of the previous version cannot read
bumps the major version (``VERSION_MAJOR`` in src/triadic/container.py); compatible additions
bump the minor version.
"""

import hashlib
import json
import os
import pathlib

import numpy as np
import pytest

import h264like
import triadic
from triadic import container as tc
from triadic.params import Frame

EXPECTED = pathlib.Path(__file__).parent / "expected"
GOLDEN = EXPECTED / "golden.json"
REGEN = os.environ.get("TRIADIC_REGEN_GOLDEN") == "1"

HOW_TO_REGENERATE = (
    "If the change is deliberate, regenerate the golden files and commit them:\n"
    "    TRIADIC_REGEN_GOLDEN=1 python -m pytest tests/test_golden.py\n"
    "    git add -f tests/expected\n"
    "and apply docs/bitstream.md §8 (versioning): a stream that a reader of the previous version "
    "cannot read needs a new major version (VERSION_MAJOR in src/triadic/container.py, now "
    f"{tc.VERSION_MAJOR}); a compatible addition a new minor version (now {tc.VERSION_MINOR})."
)


def _texture(h, w, t, seed, top=255):
    """Integer-only content (no floating point: the same on every platform): a texture moving
    by whole and half pels, a ramp, and a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = ((x * 7 + y * 3 + ((x + t) * (y + 2 * t)) // 5) % 64) * (top // 64)
    noise = rng.integers(0, max(2, top // 40), (h, w))
    return np.clip(base + noise + ((x + 3 * t) * top) // (4 * w), 0, top)


def _frames(pix_fmt, h, w, count, seed):
    fmt = triadic.pixel_format(pix_fmt)
    frames = []
    for t in range(count):
        planes = []
        for i in range(fmt.planes):
            ph, pw = fmt.plane_shape(i, h, w)
            planes.append(_texture(ph, pw, t, seed + i, fmt.max_value).astype(fmt.dtype))
        frames.append(Frame(tuple(planes), fmt.name))
    return frames


def _noise(pix_fmt, h, w, count, seed):
    fmt = triadic.pixel_format(pix_fmt)
    rng = np.random.default_rng(seed)
    return [Frame(tuple(rng.integers(0, fmt.max_value + 1, fmt.plane_shape(i, h, w)).astype(fmt.dtype)
                        for i in range(fmt.planes)), fmt.name) for _ in range(count)]


def _clip():
    path = triadic.sample_clip("carphone")  # the dev extra installs the clips
    # a 64x48 corner keeps the stored stream small; real content, real motion
    return [Frame((f.planes[0][:48, :64].copy(), f.planes[1][:24, :32].copy(), f.planes[2][:24, :32].copy()),
                  f.pix_fmt) for f in triadic.read_frames(path, frames=3)]


CASES = {
    "gray-inter": (lambda: _frames("gray", 24, 40, 4, 1), dict(keyint=3)),
    "yuv420p-odd": (lambda: _frames("yuv420p", 19, 33, 3, 2), dict()),
    "yuv422p10le": (lambda: _frames("yuv422p10le", 16, 20, 2, 3), dict(preset="fast")),
    "rgb24-slow": (lambda: _frames("rgb24", 12, 16, 2, 4), dict(preset="slow")),
    "yuv444p-near4": (lambda: _frames("yuv444p", 16, 24, 3, 5), dict(max_error=4)),
    "gray16le-noise": (lambda: _noise("gray16le", 9, 7, 2, 6), dict(keyint=1)),
    "carphone-3": (_clip, dict(keyint=2)),
    "h264like-levels": (lambda: h264like.frames(h=32, w=48, count=3), dict()),
}


def _planes_sha(frames):
    h = hashlib.sha256()
    for frame in frames:
        h.update(frame.pix_fmt.encode())
        for plane in frame.planes:
            h.update(np.ascontiguousarray(plane, dtype=plane.dtype.newbyteorder("<")).tobytes())
    return h.hexdigest()


def _load():
    return json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_stream(case, tmp_path):
    make, params = CASES[case]
    frames = make()
    path = tmp_path / f"{case}.tri"
    triadic.encode(frames, path, jobs=1, **params)
    data = path.read_bytes()
    got = {"input_sha256": _planes_sha(frames), "tri_sha256": hashlib.sha256(data).hexdigest(),
           "tri_bytes": len(data), "decoded_sha256": _planes_sha(triadic.decode(path, jobs=1)),
           "version": f"{tc.VERSION_MAJOR}.{tc.VERSION_MINOR}", "params": params}
    if REGEN:
        EXPECTED.mkdir(exist_ok=True)
        golden = _load()
        golden[case] = got
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
        (EXPECTED / f"{case}.tri").write_bytes(data)
        return
    want = _load().get(case)
    assert want is not None, f"no golden entry for {case!r}.\n{HOW_TO_REGENERATE}"
    assert got["input_sha256"] == want["input_sha256"], (
        f"{case}: the test's input frames changed (the generator, numpy or PyAV), not the codec.\n"
        f"{HOW_TO_REGENERATE}")
    assert got["tri_sha256"] == want["tri_sha256"], (
        f"{case}: the bitstream changed: {want['tri_bytes']} -> {got['tri_bytes']} bytes, sha256 "
        f"{want['tri_sha256'][:12]} -> {got['tri_sha256'][:12]} (golden written by format "
        f"v{want['version']}).\n{HOW_TO_REGENERATE}")
    assert got["decoded_sha256"] == want["decoded_sha256"], f"{case}: decoding changed"


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_file_still_decodes(case):
    """The stored stream decodes to the recorded planes: a decoder-side change cannot silently
    alter what existing files decode to."""
    path = EXPECTED / f"{case}.tri"
    want = _load().get(case)  # (regenerating: what test_golden_stream, run before, has just written)
    assert want is not None and path.exists(), f"no golden file for {case!r}.\n{HOW_TO_REGENERATE}"
    try:
        got = _planes_sha(triadic.decode(path, jobs=1))
    except triadic.VersionError as exc:
        pytest.fail(f"{case}: {exc}\nThe golden files predate a version change.\n{HOW_TO_REGENERATE}")
    except triadic.CorruptStreamError as exc:
        pytest.fail(f"{case}: the stored golden stream no longer decodes ({exc}). Either the decoder "
                    f"broke, or the bitstream changed without a version bump.\n{HOW_TO_REGENERATE}")
    assert got == want["decoded_sha256"], (
        f"{case}: the stored golden stream decodes to different planes.\n{HOW_TO_REGENERATE}")
