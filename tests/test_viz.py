"""triadic.viz: every picture draws on real footage, and what it draws is the codec's own data."""

import io
import math
import os
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import triadic
from triadic import viz
from triadic.cli import main
from triadic.errors import InputError, TriadicError
from triadic.planes import to_digits


@pytest.fixture(scope="module")
def tri(tmp_path_factory, carphone):
    path = tmp_path_factory.mktemp("viz") / "carphone.tri"
    triadic.encode(carphone, path, frames=3)
    return str(path)


@pytest.fixture(scope="module")
def near(tmp_path_factory):
    """A near-lossless (max_error 4: j = 2 dropped planes) gray stream of a moving pattern."""
    y, x = np.mgrid[0:40, 0:48]
    video = np.stack([np.clip(128 + 90 * np.sin((x + 3 * t) / 6) * np.cos((y - t) / 5), 0, 255)
                      for t in range(3)]).astype(np.uint8)
    path = tmp_path_factory.mktemp("viz") / "near.tri"
    triadic.encode(video, path, max_error=4)
    return str(path)


def residuals(path, channel=0):
    return [np.asarray(a.residuals[channel], dtype=np.int64) for a in triadic.analyse(path)]


def image(fig, title):
    """The image drawn in the axes whose title contains ``title``."""
    for ax in fig.axes:
        if title in ax.get_title() and ax.images:
            return np.asarray(ax.images[0].get_array())
    raise AssertionError(f"no image titled {title!r}")


def png_bytes(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50)
    return buf.getvalue()


@pytest.mark.parametrize("kind", viz.KINDS)
def test_every_picture_draws_on_real_footage(tri, kind):
    fig = getattr(viz, kind)(tri)
    assert fig.axes
    assert fig._suptitle is not None and "carphone.tri" in fig._suptitle.get_text()
    for ax in fig.axes:
        if ax.images or ax.patches or ax.lines or ax.collections:
            assert ax.get_xlabel() or ax.get_ylabel() or not ax.get_xticks().size
    assert png_bytes(fig).startswith(b"\x89PNG")


def test_barcode_rows_are_the_pixels_digits(tri):
    fig = viz.barcode(tri, pixel=(70, 90))
    rows = np.asarray(fig.axes[1].images[0].get_array())          # (K, T), k = 0 first
    series = np.array([r[70, 90] for r in residuals(tri)])
    digits = to_digits(series, rows.shape[0])
    assert np.array_equal(rows, digits)
    assert rows.shape[0] >= max(1, int(np.abs(series).max()).bit_length() and 1)
    block = viz.barcode(tri, pixel=(70, 90), block=4)
    share = np.asarray(block.axes[1].images[0].get_array())
    assert share.min() >= 0 and share.max() <= 1


def test_planes_show_the_fold_of_plane_k(tri):
    fig = viz.planes(tri, frame=1, plane=1)
    r = residuals(tri)[1]
    s = to_digits(r, max(2, to_digits(r).shape[0]))[1]
    assert np.array_equal(image(fig, "magnitude"), s != 0)
    assert np.array_equal(image(fig, "sign"), s)
    assert any(f"ρ_1 = {(s != 0).mean():.3f}" in ax.get_title() for ax in fig.axes)


def test_depth_is_the_digits_needed(tri):
    fig = viz.depth(tri, frame=2)
    kmap = image(fig, "depth K(p)")
    r = residuals(tri)[2]
    assert kmap.shape == r.shape
    bound = (3 ** kmap - 1) // 2                       # K digits hold |R| <= (3^K - 1)/2 ...
    assert (np.abs(r) <= bound).all()
    below = (3 ** np.maximum(kmap - 1, 0) - 1) // 2    # ... and K - 1 do not
    assert (np.abs(r)[kmap > 0] > below[kmap > 0]).all()
    assert (kmap[r == 0] == 0).all()


@pytest.mark.parametrize("d", [1, 2, 3, 4])
def test_inversion_orbits(d):
    classes = viz.orbits(d)
    assert len(classes) == (3 ** d + 1) // 2           # 2, 5, 14, 41
    members = [u for cls in classes for u in cls]
    assert len(members) == len(set(members)) == 3 ** d
    for cls in classes:
        assert {tuple(-v for v in u) for u in cls} == set(cls)


def test_sheet_counts_every_sample(tri):
    for pair in ("planes", "spatial"):
        fig = viz.sheet(tri, plane=0, pair=pair, frame=1)
        grid = np.asarray(fig.axes[0].images[0].get_array())
        assert grid.shape == (3, 3)
        assert math.isclose(grid.sum(), 1.0, rel_tol=1e-9)
    fig = viz.sheet(tri, plane=0, frame=1)
    r = residuals(tri)[1]
    d = to_digits(r, max(3, to_digits(r).shape[0]))
    expect = np.mean((d[0] == 0) & (d[1] == 0))
    assert math.isclose(np.asarray(fig.axes[0].images[0].get_array())[1, 1], expect)
    with pytest.raises(InputError):
        viz.sheet(tri, pair="diagonal")


def test_rate_model_is_design_1_7(tri):
    meta = triadic.info(tri)
    model = viz.rate_model(meta)
    pixels = meta["width"] * meta["height"] * meta["frames"]
    formalism = memoryless = meta["side_bits"] / pixels
    for p in meta["planes"]:
        w = p["samples"] / pixels
        rho = p["rho"]
        formalism += w * math.log2(3) * rho
        h = 0.0 if rho in (0, 1) else -(rho * math.log2(rho) + (1 - rho) * math.log2(1 - rho))
        memoryless += w * (h + rho)
    assert math.isclose(model["formalism"], formalism)
    assert math.isclose(model["memoryless"], memoryless)
    assert math.isclose(model["measured"], meta["bpppf"])
    assert math.isclose(model["side"] + model["residual"] + model["container"], model["measured"])
    assert model["container"] >= 0
    assert model["memoryless"] > model["measured"]      # context modelling beats a memoryless coder


def test_rate_model_agrees_with_the_benchmark(tri):
    rates = pytest.importorskip("triadic.bench.rates")
    meta = triadic.info(tri)
    shapes = [r.shape for r in next(iter(triadic.analyse(tri))).residuals]
    bench = rates.rate_breakdown(meta, [h * w for h, w in shapes], meta["width"], meta["height"],
                                 meta["frames"], meta["bytes"])
    model = viz.rate_model(meta)
    assert math.isclose(bench["estimate"], model["formalism"], rel_tol=1e-9)
    assert math.isclose(bench["memoryless"], model["memoryless"], rel_tol=1e-9)


def test_tree_walks_every_residual(tri):
    fig = viz.tree(tri, pixel=(70, 90), block=4)
    assert "(48 residuals" in fig._suptitle.get_text()       # 4x4 block over 3 frames
    one = viz.tree(tri, pixel=(70, 90), block=1, frame=2)
    assert "pixel (y=70, x=90), frame 2" in one._suptitle.get_text()


def test_video_input_is_encoded_first(carphone):
    fig = viz.money(carphone, frames=2)
    assert "carphone_pristine.mp4, 2 frames" in fig._suptitle.get_text()
    array = np.random.default_rng(1).integers(0, 256, (2, 24, 32), dtype=np.uint8)
    assert viz.depth(array, frame=1).axes


def test_near_lossless_planes_start_at_j(near):
    assert triadic.info(near)["max_error"] == 4
    fig = viz.barcode(near, pixel=(20, 20))
    rows = np.asarray(fig.axes[1].images[0].get_array())
    assert not rows[:2].any()                              # the two dropped planes are empty
    fig = viz.planes(near, plane=0)
    assert not image(fig, "sign").any()
    rows = viz.rate_model(triadic.info(near))["planes"]
    assert min(r["k"] for r in rows) >= 2
    for kind in ("sheet", "depth", "tree", "money", "mdl"):
        assert getattr(viz, kind)(near).axes


def test_bad_options(tri):
    with pytest.raises(InputError, match="out of range"):
        viz.planes(tri, frame=3)
    with pytest.raises(InputError, match="outside"):
        viz.barcode(tri, pixel=(144, 0))
    with pytest.raises(InputError, match="channel"):
        viz.depth(tri, channel="Cg")
    with pytest.raises(InputError, match="Y,X"):
        viz.tree(tri, pixel="1;2")
    assert viz.depth(tri, channel="V").axes and viz.depth(tri, channel=2).axes


def test_plot_writes_whole_files_only(tri, tmp_path):
    out = tmp_path / "depth.svg"
    assert viz.plot("depth", tri, out, frame=1, pixel=None, plane=7) == str(out)   # unused options ignored
    assert out.read_bytes().lstrip().startswith(b"<?xml")
    with pytest.raises(InputError, match="unknown picture"):
        viz.plot("pie", tri, tmp_path / "x.png")
    with pytest.raises(InputError, match="picture format"):
        viz.plot("mdl", tri, tmp_path / "x.txt")
    with pytest.raises(InputError):
        viz.plot("planes", tri, tmp_path / "x.png", frame=99)
    assert sorted(os.listdir(tmp_path)) == ["depth.svg"]


def test_cli_plot(tri, tmp_path, capsys):
    out = tmp_path / "tree.png"
    assert main(["plot", "tree", tri, "--pixel", "70,90", "--block", "2", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")
    bad = tmp_path / "bad.png"
    assert main(["plot", "planes", tri, "--frame", "7", "--out", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("triadic: error:") and err.count("\n") == 1
    assert not bad.exists()


def test_missing_matplotlib_is_one_clear_error(tri, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"triadic\[viz\]") as info:
        viz.money(tri)
    assert isinstance(info.value, TriadicError)
    assert main(["plot", "money", tri, "--out", str(tmp_path / "m.png")]) == 2
    assert "pip install" in capsys.readouterr().err
