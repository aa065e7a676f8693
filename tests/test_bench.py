"""Smoke tests of the benchmark suite (triadic.bench): a tiny synthetic clip, two cheap peers and
triadic, through the same entry point as ``triadic bench``; then the plots from the JSON alone.
"""

from __future__ import annotations

import json
import math
import os

import av
import numpy as np
import pytest

pytest.importorskip("matplotlib")

from triadic.bench import SCHEMA
from triadic.bench.frames import load_clip, synthetic_clip, to_video_frame
from triadic.bench.peers import NEAR_LOSSLESS, Peer, compare
from triadic.bench.plot import PLOTS
from triadic.bench.plot import main as plot_main
from triadic.bench.rates import rate_breakdown
from triadic.planes import LOG2_3, binary_entropy
from triadic.bench.run import main as run_main

FRAMES = 3


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    """The synthetic clip written losslessly (FFV1 in Matroska), so the run decodes exactly it."""
    clip = synthetic_clip(frames=FRAMES, width=64, height=48)
    path = str(tmp_path_factory.mktemp("clip") / "synthetic.mkv")
    with av.open(path, "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = clip.width, clip.height, "yuv420p"
        for i, planes in enumerate(clip.frames):
            out.mux(stream.encode(to_video_frame(planes, pts=i)))
        out.mux(stream.encode(None))
    return path, clip


@pytest.fixture(scope="module")
def bench_out(clip_file, tmp_path_factory):
    path, _ = clip_file
    out = str(tmp_path_factory.mktemp("bench"))
    argv = [path, "--frames", str(FRAMES), "--out", out,
            "--codecs", "ffv1", "x264-medium", "triadic", "triadic-presets", "jpegls-near", "triadic-near"]
    assert run_main(argv) == 0
    with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
        first = json.load(f)
    assert run_main(argv) == 0  # second run: peers come from the cache, triadic runs again
    with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
        second = json.load(f)
    return out, first, second


def test_clip_file_decodes_to_the_synthetic_frames(clip_file):
    path, clip = clip_file
    loaded = load_clip(path, FRAMES)
    assert (loaded.width, loaded.height, len(loaded.frames)) == (64, 48, FRAMES)
    assert compare(clip.frames, loaded.frames)["exact"]


def test_results_schema(bench_out):
    out, results, _ = bench_out
    assert results["schema"] == SCHEMA
    for key in ("created", "host", "settings", "versions", "clips", "elapsed_s"):
        assert key in results
    versions = results["versions"]
    assert versions["pyav"] == av.__version__
    assert "libavcodec" in versions["ffmpeg_libraries"]
    assert versions["triadic"]
    (clip,) = results["clips"]
    assert (clip["width"], clip["height"], clip["frames"], clip["pix_fmt"]) == (64, 48, FRAMES, "yuv420p")
    assert clip["pixels"] == 64 * 48 * FRAMES
    codecs = [row["codec"] for row in clip["lossless"]]
    assert codecs == ["triadic", "triadic-fast", "triadic-slow", "ffv1", "x264-medium"]
    presets = {row["codec"]: row["settings"]["preset"] for row in clip["lossless"]
               if row["codec"].startswith("triadic")}
    assert presets == {"triadic": "medium", "triadic-fast": "fast", "triadic-slow": "slow"}
    for row in clip["lossless"]:
        assert row["error"] is None, row
        assert row["exact"] is True, row
        assert row["frames_decoded"] == FRAMES
        assert row["bpppf"] == pytest.approx(8 * row["bytes"] / clip["pixels"])
        assert row["encode_s"] > 0 and row["decode_s"] > 0
        assert row["encode_fps"] == pytest.approx(FRAMES / row["encode_s"])
    jpegls = [row for row in clip["lossy"] if row["family"] == "jpegls-near"]
    assert [row["value"] for row in jpegls] == list(NEAR_LOSSLESS) == [1, 4, 13, 40, 121]
    for row in jpegls:
        assert row["param"] == "near" and 0 < row["max_error"] <= row["value"]
        assert row["psnr"] is not None and row["psnr_y"] is not None
    near = [row for row in clip["lossy"] if row["family"] == "triadic-near"]
    if near:  # triadic's near-lossless mode exists
        assert [row["value"] for row in near] == list(NEAR_LOSSLESS)
        for row in near:
            assert row["error"] is None and row["param"] == "max_error"
            assert row["bound_held"] and row["max_error"] <= row["value"]
            assert row["samples"] == FRAMES * (64 * 48 + 2 * 32 * 24)
        rd = clip["rd"]
        assert [r["near"] for r in rd["jpegls"]] == list(NEAR_LOSSLESS)
        for r in rd["jpegls"]:
            jls = next(row for row in jpegls if row["value"] == r["near"])
            tri = next(row for row in near if row["value"] == r["near"])
            assert r["ratio"] == pytest.approx(tri["bpppf"] / jls["bpppf"])
        assert [r["max_error"] for r in rd["matched"]] == list(NEAR_LOSSLESS)


def test_triadic_rates(bench_out):
    _, results, _ = bench_out
    (clip,) = results["clips"]
    tri = clip["triadic"]
    assert tri["available"] is True
    rates = tri["rates"]
    assert [ch["channel"] for ch in rates["channels"]] == ["Y", "U", "V"]
    assert [ch["weight"] for ch in rates["channels"]] == pytest.approx([1.0, 0.25, 0.25])
    row = clip["lossless"][0]
    assert rates["measured"] == pytest.approx(row["bpppf"])
    assert rates["coded"] <= rates["measured"] + 1e-9
    # the three rates are recomputed here from the per-plane figures
    estimate = rates["side"] + sum(ch["weight"] * LOG2_3 * p["rho"]
                                   for ch in rates["channels"] for p in ch["planes"])
    memoryless = rates["side"] + sum(ch["weight"] * (binary_entropy(p["rho"]) + p["rho"])
                                     for ch in rates["channels"] for p in ch["planes"])
    assert rates["estimate"] == pytest.approx(estimate)
    assert rates["memoryless"] == pytest.approx(memoryless)
    assert len(tri["frames_log"]) == FRAMES
    assert all("side_bits" in e and "residual_bits" in e for e in tri["frames_log"])


def test_second_run_uses_the_cache(bench_out):
    _, first, second = bench_out
    rows1 = {r["codec"]: r for r in first["clips"][0]["lossless"] + first["clips"][0]["lossy"]}
    rows2 = {r["codec"]: r for r in second["clips"][0]["lossless"] + second["clips"][0]["lossy"]}
    for codec, row in rows2.items():
        assert row["cached"] is (not codec.startswith("triadic")), codec
        if row["cached"]:
            assert row["bytes"] == rows1[codec]["bytes"]


def test_markdown_table(bench_out):
    out, _, _ = bench_out
    with open(os.path.join(out, "results.md"), encoding="utf-8") as f:
        text = f.read()
    assert "| codec | synthetic (3 fr.) |" in text
    assert "| FFV1 |" in text and "| x264 medium |" in text and "| triadic |" in text
    assert "not exact" not in text.split("## Speed")[0].replace("**not exact** marks", "")
    assert "## Near-lossless: triadic against JPEG-LS at NEAR = E" in text
    assert "| synthetic | 121 |" in text


def test_plots_from_json_only(bench_out, tmp_path):
    out, _, _ = bench_out
    img = tmp_path / "img"
    assert plot_main([out, "--out", str(img)]) == 0
    written = sorted(os.listdir(img))
    assert written == sorted(PLOTS)
    for name in written:
        with open(img / name, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_without_triadic(clip_file, tmp_path):
    """Peers still run, triadic is reported missing, and the plots that need it are left out."""
    from triadic.bench.plot import plot_all
    from triadic.bench.run import parse_args, run

    path, _ = clip_file
    args = parse_args([path, "--frames", "2", "--out", str(tmp_path / "out"), "--codecs", "ffv1",
                       "triadic"])
    results = run(args, api=None)
    (clip,) = results["clips"]
    assert clip["triadic"] == {"available": False, "error": "triadic is not importable"}
    assert [row["codec"] for row in clip["lossless"]] == ["ffv1"]
    written = plot_all(results, str(tmp_path / "img"))
    assert sorted(os.path.basename(p) for p in written) == ["bpppf.png", "speed.png"]


def test_a_lossy_peer_is_reported_not_exact(tmp_path):
    from triadic.bench.cache import ResultCache
    from triadic.bench.run import _run_cached

    clip = synthetic_clip(frames=2)
    peer = Peer("x264-qp30", "x264 qp 30", "video", "libx264", "h264", {"qp": "30"})
    row = _run_cached(peer, clip, ResultCache(None), {}, threads=1)
    assert row["error"] is None
    assert row["exact"] is False and row["max_error"] > 0 and row["frames_decoded"] == 2


def test_a_failing_peer_is_reported():
    from triadic.bench.cache import ResultCache
    from triadic.bench.run import _run_cached

    clip = synthetic_clip(frames=1)
    peer = Peer("bogus", "bogus", "video", "libx264", "h264", {"preset": "no-such-preset"})
    row = _run_cached(peer, clip, ResultCache(None), {}, threads=1)
    assert row["error"] and row["exact"] is False and row["bpppf"] is None


def test_compare_counts_frames_and_errors():
    clip = synthetic_clip(frames=3)
    assert compare(clip.frames, clip.frames)["exact"]
    assert not compare(clip.frames, clip.frames[:2])["exact"]  # a dropped frame
    assert not compare(clip.frames, clip.frames + clip.frames[-1:])["exact"]  # a duplicated one
    bad = [tuple(p.copy() for p in f) for f in clip.frames]
    bad[1][2][0, 0] ^= 3
    result = compare(clip.frames, bad)
    assert not result["exact"] and result["mismatched_frames"] == 1 and result["max_error"] == 3
    assert result["psnr_y"] is None and math.isfinite(result["psnr"])


def test_rate_breakdown_by_hand():
    info = {
        "side_bits": 100.0, "residual_bits": 900.0,
        "planes": [
            {"channel": "Y", "k": 0, "rho": 0.5, "bits": 600.0},
            {"channel": "Y", "k": 1, "rho": 0.25, "bits": 200.0},
            {"channel": "U", "k": 0, "rho": 0.5, "bits": 50.0},
            {"channel": "V", "k": 0, "rho": 0.0, "bits": 50.0},
        ],
    }
    r = rate_breakdown(info, [16, 4, 4], width=4, height=4, frames=10, file_bytes=150)
    pixels = 160
    assert r["side"] == pytest.approx(100 / pixels)
    assert r["measured"] == pytest.approx(1200 / pixels)
    assert r["coded"] == pytest.approx(1000 / pixels)
    assert r["estimate"] == pytest.approx(100 / pixels + LOG2_3 * (0.75 + 0.25 * 0.5))
    assert r["memoryless"] == pytest.approx(100 / pixels + (1.5 + binary_entropy(0.25) + 0.25)
                                            + 0.25 * 1.5)
    assert binary_entropy(0.5) == 1.0 and binary_entropy(0.0) == 0.0
    y = r["channels"][0]
    assert y["rate"] == pytest.approx(800 / pixels)
    assert np.allclose([p["k"] for p in y["planes"]], [0, 1])


# --------------------------------------------------------------------------------------------------
# Bjøntegaard delta rate (triadic.bench.rd)
# --------------------------------------------------------------------------------------------------

def _loglinear(slope, psnrs=(30, 35, 40, 45, 50), offset=0.0):
    """Points with log10(rate) = (P - 30) * slope + offset: PCHIP reproduces them exactly."""
    return [(10 ** ((p - 30) * slope + offset), p) for p in psnrs]


def test_bd_rate_of_a_constant_factor():
    from triadic.bench.rd import bd_rate

    anchor = _loglinear(0.1)
    for factor in (2.0, 0.5, 1.0):
        bd = bd_rate(anchor, [(r * factor, p) for r, p in anchor])
        assert bd["bd_rate"] == pytest.approx(100 * (factor - 1), abs=1e-9)
        assert (bd["psnr_lo"], bd["psnr_hi"]) == (30, 50)
        assert bd["anchor_points"] == bd["test_points"] == 5


def test_bd_rate_known_case_and_range():
    """Two log-linear curves: the mean log-rate gap over [lo, hi] is (1/8 - 1/10) * mean(P - 30)."""
    from triadic.bench.rd import bd_rate

    anchor, test = _loglinear(1 / 10), _loglinear(1 / 8)
    assert bd_rate(anchor, test)["bd_rate"] == pytest.approx(100 * (10 ** (10 / 40) - 1))
    assert bd_rate(anchor, test, lo=40)["bd_rate"] == pytest.approx(100 * (10 ** (15 / 40) - 1))
    high = bd_rate(anchor, test, lo=40, hi=45)
    assert high["bd_rate"] == pytest.approx(100 * (10 ** (12.5 / 40) - 1))
    assert (high["psnr_lo"], high["psnr_hi"], high["test_points"]) == (40, 45, 2)
    # the overlap only: the test curve sampled over 38..60 dB
    shifted = _loglinear(1 / 8, psnrs=(38, 44, 52, 60))
    bd = bd_rate(anchor, shifted)
    assert (bd["psnr_lo"], bd["psnr_hi"]) == (38, 50)
    assert bd["bd_rate"] == pytest.approx(100 * (10 ** ((44 - 30) / 40) - 1))
    # swapping anchor and test inverts the ratio
    back = bd_rate(test, anchor)["bd_rate"]
    assert (1 + back / 100) * (1 + bd_rate(anchor, test)["bd_rate"] / 100) == pytest.approx(1)


def test_bd_rate_matches_a_fine_numerical_integral():
    """On curved data: the PCHIP integral against a Riemann sum of the same interpolation."""
    from scipy.interpolate import PchipInterpolator

    from triadic.bench.rd import bd_rate

    anchor = [(9487.76, 40.037), (4593.60, 38.615), (2486.44, 36.845), (1358.24, 34.851)]
    test = [(9787.80, 40.121), (4469.00, 38.651), (2451.52, 36.970), (1356.24, 34.987)]
    grid = np.linspace(34.987, 40.037, 200001)
    curves = [PchipInterpolator([p for _, p in pts][::-1], np.log10([r for r, _ in pts][::-1]))(grid)
              for pts in (anchor, test)]
    expected = 100 * (10 ** np.mean(curves[1] - curves[0]) - 1)
    assert bd_rate(anchor, test)["bd_rate"] == pytest.approx(expected, abs=1e-3)
    assert bd_rate(anchor, test)["bd_rate"] == pytest.approx(-4.4175, abs=1e-3)  # regression value


def test_bd_rate_edge_cases():
    from triadic.bench.rd import bd_rate, rate_at, rd_curve

    anchor = _loglinear(0.1)
    assert bd_rate(anchor, _loglinear(0.1, psnrs=(55, 60))) is None      # no overlap
    assert bd_rate(anchor, [(1.0, 40.0)]) is None                       # one point
    assert bd_rate(anchor, anchor, lo=49.99) is None                    # range too narrow
    # a dominated point (more bits, less PSNR) and an unusable one are dropped
    rates, psnrs = rd_curve([(1.0, 30.0), (2.0, 29.0), (3.0, 40.0), (4.0, None), (0.0, 45.0)])
    assert rates.tolist() == [1.0, 3.0] and psnrs.tolist() == [30.0, 40.0]
    assert rate_at(anchor, 40.0) == pytest.approx(10.0)
    assert rate_at(anchor, 29.0) is None and rate_at(anchor, 51.0) is None
