"""End to end through the library: every pixel format, odd sizes, edge cases, real footage."""

import sys

import numpy as np
import pytest

import triadic
from conftest import make_frames
from triadic.params import Frame


def round_trip(frames, tmp_path, **params):
    path = tmp_path / "x.tri"
    report = triadic.encode(frames, path, **params)
    out = list(triadic.decode(path))
    assert len(out) == len(frames) == report["frames"]
    for a, b in zip(frames, out):
        assert a.equals(b), "decoded frame differs"
    return report


@pytest.mark.parametrize("pix_fmt", ["gray", "gray16le", "yuv420p", "yuv422p", "yuv444p",
                                     "yuv420p10le", "yuv444p12le", "rgb24", "rgb48le", "gbrp"])
def test_every_format_is_bit_exact(pix_fmt, tmp_path):
    round_trip(make_frames(pix_fmt, 23, 37, 3), tmp_path, keyint=2)


@pytest.mark.parametrize("shape", [(1, 1), (1, 17), (17, 1), (2, 3), (33, 65)])
def test_odd_sizes(shape, tmp_path):
    round_trip(make_frames("yuv420p", *shape, 2), tmp_path)


def test_sixteen_bit_extremes(tmp_path):
    rng = np.random.default_rng(3)
    frames = []
    for t in range(3):
        p = np.where(rng.random((19, 21)) < 0.5, 0, 65535).astype(np.uint16)
        frames.append(Frame((p,), "gray16le"))
    frames.append(Frame((np.full((19, 21), 65535, np.uint16),), "gray16le"))
    round_trip(frames, tmp_path)
    rgb = [Frame(tuple(np.where(rng.random((9, 11)) < 0.5, 0, 65535).astype(np.uint16) for _ in range(3)), "rgb48le")
           for _ in range(2)]
    round_trip(rgb, tmp_path)


def test_pure_noise(tmp_path):
    report = round_trip(make_frames("yuv420p", 96, 128, 3, kind="noise"), tmp_path)
    # raw is 8 bits x 1.5 samples per pixel = 12; channels the contexts cannot compress fall
    # back to plain bits, so only the side information (K, chart) comes on top
    assert report["bpppf"] < 12.3
    report = round_trip(make_frames("gray16le", 40, 40, 2, kind="noise"), tmp_path)
    assert report["bpppf"] < 16.6


def test_static_video_costs_almost_nothing_after_the_first_frame(tmp_path):
    frame = make_frames("yuv420p", 64, 64, 1)[0]
    report = round_trip([frame] * 8, tmp_path)
    sizes = [f["bytes"] for f in report["frames_log"]]
    assert max(sizes[1:]) * 20 < sizes[0]


def test_scene_cut_and_one_frame(tmp_path):
    a = make_frames("yuv420p", 40, 56, 3, seed=1)
    b = make_frames("yuv420p", 40, 56, 3, seed=2, kind="noise")
    round_trip(a + b + a, tmp_path, keyint=4)
    round_trip(a[:1], tmp_path)


def test_a_real_scene_cut_is_predicted_intra(carphone, tmp_path):
    """Cutting from carphone to a different (turned) part of it: the frame after the cut is
    predicted intra almost everywhere and costs about what it costs as a keyframe (the MDL search
    pays for inter prediction only where it helps; the contexts learnt before the cut are kept)."""
    frames = list(triadic.read_frames(carphone, frames=52))
    turned = [triadic.Frame(planes=tuple(np.ascontiguousarray(p[::-1, ::-1]) for p in f.planes),
                            pix_fmt=f.pix_fmt) for f in frames[50:52]]
    log = round_trip(frames[:2] + turned, tmp_path)["frames_log"]
    cut = log[2]
    assert not cut["keyframe"]
    assert cut["modes"]["intra"] >= 0.9 * sum(cut["modes"].values())
    alone = triadic.encode(turned[:1], tmp_path / "k.tri")["frames_log"][0]
    assert cut["bytes"] <= 1.03 * alone["bytes"]


def test_decoder_measures_the_bits_the_encoder_spent(carphone, tmp_path):
    """info's per-frame side and residual bits (measured while decoding) are the encoder's, also
    for passes with no symbols (a frame without intra leaves codes no intra flags)."""
    report = triadic.encode(carphone, tmp_path / "c.tri", frames=4)
    decoded = triadic.info(tmp_path / "c.tri")["frames_log"]
    for enc, dec in zip(report["frames_log"], decoded):
        assert (enc["side_bits"], enc["residual_bits"]) == (dec["side_bits"], dec["residual_bits"])


@pytest.mark.parametrize("references, block_size", [(1, 64), (2, 8)])
def test_references_and_block_size(carphone, tmp_path, references, block_size):
    """M, the reference frames a leaf may use, and the root block are the caller's to choose."""
    frames = list(triadic.read_frames(carphone, frames=5))
    report = round_trip(frames, tmp_path, references=references, block_size=block_size)
    used = [int(lag) for f in report["frames_log"] for lag, n in f["lags"].items() if n]
    assert used and max(used) <= references
    assert triadic.info(tmp_path / "x.tri")["block_size"] == block_size


@pytest.mark.parametrize("preset", ["fast", "slow"])
def test_presets(preset, tmp_path):
    round_trip(make_frames("yuv420p", 48, 64, 3), tmp_path, preset=preset, keyint=3)


def test_numpy_array_source(tmp_path):
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (3, 20, 30), dtype=np.uint8)
    triadic.encode(video, tmp_path / "a.tri")
    out = [f.planes[0] for f in triadic.decode(tmp_path / "a.tri")]
    assert np.array_equal(np.stack(out), video)


def test_deterministic_output(tmp_path):
    frames = make_frames("yuv420p", 40, 48, 4)
    triadic.encode(frames, tmp_path / "a.tri")
    triadic.encode(frames, tmp_path / "b.tri")
    assert (tmp_path / "a.tri").read_bytes() == (tmp_path / "b.tri").read_bytes()


def test_real_clip_beats_raw_and_is_exact(carphone, tmp_path):
    source = list(triadic.read_frames(carphone, frames=8))
    report = round_trip(source, tmp_path, keyint=5)
    assert report["bpppf"] < 4.6  # FFV1 needs 5.02 on this clip


def test_info_reports_planes(tmp_path):
    frames = make_frames("yuv420p", 32, 32, 3)
    triadic.encode(frames, tmp_path / "a.tri")
    meta = triadic.info(tmp_path / "a.tri")
    assert meta["frames"] == 3 and meta["pix_fmt"] == "yuv420p" and meta["bit_depth"] == 8
    assert {p["channel"] for p in meta["planes"]} == {"Y", "U", "V"}
    assert all(0.0 <= p["rho"] <= 1.0 for p in meta["planes"])
    total = meta["side_bits"] + meta["residual_bits"]
    assert abs(total - 8 * meta["bytes"]) < 0.1 * 8 * meta["bytes"]  # ideal bits ~ actual bits
    assert len(meta["frames_log"]) == 3


def test_check_sniffs_magic(tmp_path):
    triadic.encode(make_frames("gray", 8, 8, 1), tmp_path / "a.tri")
    assert triadic.check((tmp_path / "a.tri").read_bytes()[:16])
    assert not triadic.check(b"RIFF....WAVEfmt ")


def test_decoder_does_not_import_the_search(tmp_path):
    triadic.encode(make_frames("gray", 8, 8, 2), tmp_path / "a.tri")
    code = (
        "import sys, triadic\n"
        f"list(triadic.decode({str(tmp_path / 'a.tri')!r}))\n"
        "assert 'triadic.search' not in sys.modules and 'triadic.kernels.motion' not in sys.modules\n"
    )
    import subprocess
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bad_params(tmp_path):
    frames = make_frames("gray", 8, 8, 1)
    for params in ({"keyint": 0}, {"preset": "ludicrous"}, {"max_error": 3}):
        with pytest.raises(triadic.InputError):
            triadic.encode(frames, tmp_path / "a.tri", **params)
        assert not (tmp_path / "a.tri").exists()


def test_zoom_uses_warps_and_stays_exact(tmp_path):
    from scipy import ndimage

    rng = np.random.default_rng(0)
    base = ndimage.gaussian_filter(rng.random((160, 160)) * 255, 3)
    base = (base - base.min()) / (base.max() - base.min()) * 255
    frames = []
    for t in range(4):
        z = 1 + 0.03 * t
        img = ndimage.affine_transform(base, np.eye(2) / z, offset=(80 - 80 / z, 80 - 80 / z), order=3)
        frames.append(Frame((np.clip(np.round(img[16:144, 16:144]), 0, 255).astype(np.uint8),), "gray"))
    report = round_trip(frames, tmp_path, block_size=64, preset="slow")
    warped = sum(f["families"]["similarity"] + f["families"]["affine"] for f in report["frames_log"])
    assert warped > 0, "no leaf chose a warp on a zooming clip"
