"""Pictures of the p-adic collapse: one function per picture of the formalism (after its §12).

    from triadic import viz
    fig = viz.barcode("clip.tri", pixel=(72, 88))     # a .tri file ...
    fig = viz.money("clip.mp4", frames=10)            # ... or any video triadic.encode reads
    fig.savefig("money.png")

Every function takes a ``.tri`` file, or a video (path, image folder/glob or array) that is first
encoded to a temporary ``.tri`` with ``frames`` (default 30) and the other ``encode`` options, and
returns a :class:`matplotlib.figure.Figure`. Figures are built without pyplot, so nothing is shown
or kept alive behind the caller's back; save them with ``fig.savefig`` (or :func:`plot`).

The seven pictures, in the formalism's order (``KINDS``):

1. ``barcode``  residual trits of one pixel (or block) over time, one row per plane k;
2. ``planes``   the fold of one plane k of one frame: magnitude M_k and the masked sign plane;
3. ``sheet``    the 9-sheet T²: how often each digit pair occurs, and the 9 → 5 (27 → 14) fold;
4. ``depth``    the p-adic depth K(p) (digits needed per sample) as a heat map over the frame;
5. ``mdl``      description length per frame: side info and residual bits, and the chosen modes;
6. ``money``    ρ_k per plane, cumulative rate, and the three rate models beside the measured rate;
7. ``tree``     the 3-adic tree walk of a pixel's (or block's) digits, edge width by frequency.

Residual planes are the codec's own (after the colour transform, before reconstruction). In a
near-lossless stream the j lowest planes are never coded (max_error = (3^j - 1)/2); the pictures
number planes as digits of the residual, so the first coded plane is k = j.

matplotlib is an optional dependency (``pip install 'triadic[viz]'``), imported on first use.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from typing import Iterator

import numpy as np

from .errors import InputError, TriadicError
from .planes import plane_rate_models

KINDS = ("barcode", "planes", "sheet", "depth", "mdl", "money", "tree")

#: Frames encoded when a picture is asked of a video rather than of a .tri file.
DEFAULT_FRAMES = 30


# One palette for digits everywhere: -1 blue, 0 near white, +1 red.
NEG, ZERO, POS = "#2c7bb6", "#f4f4f4", "#d7191c"
#: Display names and colours of the chart's prediction modes (keys of a frame log's "modes").
MODES = {
    "intra": ("intra (MED)", "#b07aa1"),
    "inter": ("inter (motion)", "#4e79a7"),
    "inter_med": ("inter + spatial correction", "#59a14f"),
}
CHANNEL_COLOURS = ("#4c4c4c", "#4e79a7", "#e15759", "#59a14f")
# Rate models, in the same colours in every picture.
MEASURED, FORMALISM, MEMORYLESS = "#222222", "#f28e2b", "#76b7b2"


class DependencyError(TriadicError, ImportError):
    """An optional dependency (matplotlib) is missing."""


def _needs_matplotlib(func):
    """Fail with a clear message (and a TriadicError, so the CLI prints one line) without matplotlib."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise DependencyError("triadic.viz needs matplotlib: pip install 'triadic[viz]'") from None
        return func(*args, **kwargs)

    return wrapper


def _figure(**kwargs):
    """A pyplot-free Figure with an Agg canvas."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise DependencyError("triadic.viz needs matplotlib: pip install 'triadic[viz]'") from None
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


# --------------------------------------------------------------------------------------------------
# Opening a source
# --------------------------------------------------------------------------------------------------

def _is_tri(source) -> bool:
    if not isinstance(source, (str, os.PathLike)) or not os.path.isfile(source):
        return False
    from .codec import check

    with open(source, "rb") as f:
        return check(f.read(16))


@contextlib.contextmanager
def _stream(source, frames: int | None, encode_options: dict) -> Iterator[tuple[str, str]]:
    """(path of a .tri, a name for titles): the source itself, or a temporary encode of it."""
    if _is_tri(source):
        yield os.fspath(source), os.path.basename(os.fspath(source))
        return
    from .codec import encode

    name = os.path.basename(os.fspath(source)) if isinstance(source, (str, os.PathLike)) else "array"
    with tempfile.TemporaryDirectory(prefix="triadic-viz-") as tmp:
        path = os.path.join(tmp, "viz.tri")
        encode(source, path, frames=frames or DEFAULT_FRAMES, **encode_options)
        yield path, name


def _header(path: str) -> dict:
    from .codec import info

    return info(path, detail=False)


def _dropped(meta: dict) -> int:
    """j, the low planes a near-lossless stream never codes: max_error = (3^j - 1)/2."""
    return int(round(math.log(2 * int(meta.get("max_error") or 0) + 1, 3)))


def _analyses(path: str):
    from .codec import analyse

    return analyse(path)


def _frame_index(frame: int | None, count: int, default: int) -> int:
    if frame is None:
        return min(default, count - 1)
    frame = int(frame)
    if not 0 <= frame < count:
        raise InputError(f"frame {frame} is out of range: the stream has {count} frames (0..{count - 1})")
    return frame


def _at(path: str, t: int):
    """The FrameAnalysis of frame t (decoding stops there)."""
    for index, a in enumerate(_analyses(path)):
        if index == t:
            return a
    raise InputError(f"frame {t} is out of range")


def _channel_index(channel, names: list[str]) -> int:
    if channel is None:
        return 0
    if isinstance(channel, (int, np.integer)) or (isinstance(channel, str) and channel.isdigit()):
        c = int(channel)
        if not 0 <= c < len(names):
            raise InputError(f"channel {c} is out of range: the stream has channels {', '.join(names)}")
        return c
    for c, name in enumerate(names):
        if name.lower() == str(channel).lower():
            return c
    raise InputError(f"unknown channel {channel!r}: the stream has channels {', '.join(names)}")


def _channel_names(path: str) -> list[str]:
    for a in _analyses(path):
        return list(a.channels)
    raise InputError("the stream has no frames")


def parse_pixel(pixel) -> tuple[int, int] | None:
    """(y, x) from a tuple or a "Y,X" string; None stays None."""
    if pixel is None:
        return None
    if isinstance(pixel, str):
        parts = pixel.replace(" ", "").split(",")
        try:
            y, x = (int(p) for p in parts)
        except ValueError:
            raise InputError(f"--pixel expects Y,X (two integers), got {pixel!r}") from None
        return y, x
    y, x = pixel
    return int(y), int(x)


def _locate(pixel, meta: dict, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Frame coordinates (y, x) of ``pixel`` (default: the centre) and the same point in a plane
    of ``shape`` (chroma planes are subsampled)."""
    height, width = meta["height"], meta["width"]
    y, x = parse_pixel(pixel) or (height // 2, width // 2)
    if not (0 <= y < height and 0 <= x < width):
        raise InputError(f"pixel ({y}, {x}) is outside the {width}x{height} frame")
    return y, x, y * shape[0] // height, x * shape[1] // width


def _window(cy: int, cx: int, block: int, shape: tuple[int, int]) -> tuple[slice, slice]:
    """A block x block window containing (cy, cx), clipped to the plane."""
    block = max(1, int(block))
    y0 = min(max(0, cy - block // 2), max(0, shape[0] - block))
    x0 = min(max(0, cx - block // 2), max(0, shape[1] - block))
    return slice(y0, y0 + block), slice(x0, x0 + block)


def _digits(values: np.ndarray, k: int = 0) -> np.ndarray:
    """Digit planes of ``values`` with at least ``k`` planes (K, *shape)."""
    from .planes import num_digits, to_digits

    values = np.asarray(values, dtype=np.int64)
    need = num_digits(int(np.abs(values).max(initial=0)))
    return to_digits(values, max(need, k, 1))


def _depth(values: np.ndarray) -> np.ndarray:
    """Digits needed per sample: 0 for R = 0, else 1 + the highest nonzero plane (|R| <= (3^K-1)/2)."""
    mag = np.abs(np.asarray(values, dtype=np.int64))
    out = np.zeros(mag.shape, np.int64)
    bound = 0
    k = 0
    while (mag > bound).any():
        k += 1
        bound = (3 ** k - 1) // 2
        out[mag > (3 ** (k - 1) - 1) // 2] = k
    return out


def _plane_label(k: int) -> str:
    return f"k={k}  (×{3 ** k})"


def _digit_cmap():
    from matplotlib.colors import BoundaryNorm, ListedColormap

    return ListedColormap([NEG, ZERO, POS]), BoundaryNorm([-1.5, -0.5, 0.5, 1.5], 3)


def _image_axes(fig, n: int, aspect: float, extra: bool = False):
    """n image axes side by side (or stacked for wide frames), plus an optional narrow panel."""
    wide = aspect > 1.6
    if wide:
        gs = fig.add_gridspec(n, 2 if extra else 1, width_ratios=[3, 1] if extra else None)
        axes = [fig.add_subplot(gs[i, 0]) for i in range(n)]
        side = fig.add_subplot(gs[:, 1]) if extra else None
    else:
        gs = fig.add_gridspec(1, n + (1 if extra else 0), width_ratios=[1] * n + ([0.8] if extra else []))
        axes = [fig.add_subplot(gs[0, i]) for i in range(n)]
        side = fig.add_subplot(gs[0, n]) if extra else None
    return axes, side


def _image_figsize(n: int, aspect: float, extra: bool = False) -> tuple[float, float]:
    if aspect > 1.6:
        return (9.5 if extra else 8.0, 0.7 + n * (5.6 / aspect + 0.75))
    return (n * 4.2 + (3.6 if extra else 0.0), 2.0 + 3.4 / aspect)


# --------------------------------------------------------------------------------------------------
# 1. Residual trit barcode
# --------------------------------------------------------------------------------------------------

@_needs_matplotlib
def barcode(source, *, pixel=None, block: int = 1, channel="Y", frames: int | None = None,
            **encode_options):
    """Residual trits of one pixel (``block`` = 1) or of a block over time, one row per plane.

    ``pixel`` is (y, x) in frame coordinates (default: the centre). With a block the cells show the
    fraction of the block's digits that are nonzero (a local ρ_k).
    """
    with _stream(source, frames, encode_options) as (path, name):
        meta = _header(path)
        j = _dropped(meta)
        values, keys = [], []
        where = None
        peak = 0
        for a in _analyses(path):
            c = _channel_index(channel, a.channels)
            r = a.residuals[c]
            peak = max(peak, int(np.abs(r).max(initial=0)))
            if where is None:
                y, x, cy, cx = _locate(pixel, meta, r.shape)
                where = _window(cy, cx, block, r.shape)
                cname = a.channels[c]
            values.append(np.asarray(r[where], dtype=np.int64))
            keys.append(bool(a.log.keyframe))
    block = max(1, int(block))
    stack = np.stack(values)                                      # (T, b, b)
    # as many rows as the channel's deepest residual needs, so the quiet high planes show
    digits = _digits(stack, int(_depth(np.array([peak]))[0]))     # (K, T, b, b)
    K, T = digits.shape[0], digits.shape[1]
    scale = 3 ** j
    fig = _figure(figsize=(min(16.0, max(7.5, 3.5 + 0.32 * T)), 2.6 + 0.45 * (K + j)), layout="constrained")
    top, ax = fig.subplots(2, 1, sharex=True, height_ratios=[1, max(1.5, 0.55 * (K + j))])
    t = np.arange(T)
    rows = np.zeros((K + j, T))
    if block == 1:
        series = stack[:, 0, 0] * scale
        top.bar(t, series, color=np.where(series >= 0, POS, NEG), width=0.7)
        top.axhline(0, color="0.5", lw=0.6)
        top.set_ylabel("residual R_t")
        from matplotlib.ticker import MaxNLocator

        top.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        rows[j:] = digits[:, :, 0, 0]
        cmap, norm = _digit_cmap()
        image = ax.imshow(rows, cmap=cmap, norm=norm, aspect="auto", origin="lower",
                          extent=(-0.5, T - 0.5, -0.5, K + j - 0.5), interpolation="nearest")
        bar = fig.colorbar(image, ax=ax, ticks=[-1, 0, 1], fraction=0.04, pad=0.01)
        bar.ax.set_yticklabels(["−1", "0", "+1"])
        bar.set_label("digit S_k")
        if T <= 60:
            for k in range(j, K + j):
                for i in range(T):
                    if rows[k, i]:
                        ax.text(i, k, "+" if rows[k, i] > 0 else "−", ha="center", va="center",
                                color="white", fontsize=8, fontweight="bold")
        what = f"pixel (y={y}, x={x})"
    else:
        mean_abs = np.abs(stack.reshape(T, -1)).mean(axis=1) * scale
        top.bar(t, mean_abs, color="0.35", width=0.7)
        top.set_ylabel("mean |R_t|")
        rows[j:] = (digits != 0).reshape(K, T, -1).mean(axis=2)
        image = ax.imshow(rows, cmap="magma_r", vmin=0, vmax=1, aspect="auto", origin="lower",
                          extent=(-0.5, T - 0.5, -0.5, K + j - 0.5), interpolation="nearest")
        bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.01)
        bar.set_label("share of digits ≠ 0")
        what = f"{where[0].stop - where[0].start}×{where[1].stop - where[1].start} block at (y={y}, x={x})"
    ax.set_yticks(range(K + j), [_plane_label(k) for k in range(K + j)])
    ax.set_ylabel("ternary plane")
    ax.set_xlabel("frame t")
    if j:
        ax.axhspan(-0.5, j - 0.5, color="0.85", zorder=0)
        ax.text(T / 2 - 0.5, (j - 1) / 2, f"dropped (max error {meta['max_error']})", ha="center",
                va="center", fontsize=8, color="0.3")
    ticks = t if T <= 40 else t[:: max(1, T // 20)]
    ax.set_xticks(ticks, [f"{i}\nkey" if keys[i] else str(i) for i in ticks])
    fig.suptitle(f"Residual trit barcode: {cname} {what} of {name}, {T} frames\n"
                 "R_t = Σ_k S_k·3^k, one row per plane; quiet high planes = the prediction works",
                 fontsize=11)
    return fig


# --------------------------------------------------------------------------------------------------
# 2. Folded planes
# --------------------------------------------------------------------------------------------------

@_needs_matplotlib
def planes(source, *, frame: int | None = None, plane: int = 1, channel="Y",
           frames: int | None = None, **encode_options):
    """The fold of plane k of one frame: magnitude M_k = [S_k ≠ 0] and the sign on its support.

    ``frame`` defaults to the second frame (the first one predicted from another frame).
    """
    from matplotlib.patches import Patch

    with _stream(source, frames, encode_options) as (path, name):
        meta = _header(path)
        t = _frame_index(frame, meta["frames"], 1)
        a = _at(path, t)
    j = _dropped(meta)
    plane = int(plane)
    if plane < 0:
        raise InputError(f"plane must be >= 0, got {plane}")
    c = _channel_index(channel, a.channels)
    cname = a.channels[c]
    r = np.asarray(a.residuals[c], dtype=np.int64)
    if plane < j:
        s = np.zeros(r.shape, np.int8)
    else:
        d = _digits(r, plane - j + 1)
        s = d[plane - j]
    magnitude = (s != 0)
    rho = float(magnitude.mean())
    shown = np.asarray(a.frame.planes[c]) if meta.get("colour_transform") in (None, "none") else None
    h, w = r.shape
    aspect = w / h
    n = 3 if shown is not None else 2
    fig = _figure(figsize=_image_figsize(n, aspect), layout="constrained")
    axes, _ = _image_axes(fig, n, aspect)
    for ax in axes:
        ax.set_xlabel("x")
        ax.set_ylabel("y")
    if shown is not None:
        image = axes[0].imshow(shown, cmap="gray", interpolation="nearest")
        axes[0].set_title(f"decoded {cname}, frame {t}", fontsize=10)
        fig.colorbar(image, ax=axes[0], fraction=0.046, pad=0.02, label="sample value", shrink=0.9)
        axes = axes[1:]
    if aspect <= 1.6:   # legends under the images, else beside them
        below = dict(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8, ncol=3, frameon=False)
    else:
        below = dict(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    axes[0].imshow(magnitude, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    axes[0].set_title(f"magnitude M_{plane} = [S_{plane} ≠ 0]   ρ_{plane} = {rho:.3f}", fontsize=10)
    axes[0].legend(handles=[Patch(color="black", label="1: digit ≠ 0"),
                            Patch(facecolor="white", edgecolor="0.5", label="0: digit = 0")], **below)
    cmap, norm = _digit_cmap()
    axes[1].imshow(s, cmap=cmap, norm=norm, interpolation="nearest")
    pos, neg = int((s > 0).sum()), int((s < 0).sum())
    axes[1].set_title(f"sign Σ_{plane} on the support of M_{plane}", fontsize=10)
    axes[1].legend(handles=[Patch(color=POS, label=f"+1 ({pos})"), Patch(color=NEG, label=f"−1 ({neg})"),
                            Patch(facecolor=ZERO, edgecolor="0.5", label="off support")], **below)
    dropped = f" (planes below {j} dropped: max error {meta['max_error']})" if j else ""
    fig.suptitle(f"Fold of ternary plane k={plane} (×{3 ** plane}): {cname}, frame {t} of {name}"
                 f"{dropped}\nq(s) = (m, σ): where is the digit nonzero, and which way does it point",
                 fontsize=11)
    return fig


# --------------------------------------------------------------------------------------------------
# 3. The 9-sheet and its inversion fold
# --------------------------------------------------------------------------------------------------

def orbits(d: int) -> list[list[tuple[int, ...]]]:
    """The classes of T^d under the inversion u ~ -u: (3^d + 1)/2 of them, the fixed point first."""
    from itertools import product

    seen, out = set(), []
    for u in sorted(product((-1, 0, 1), repeat=d), key=lambda u: (sum(map(abs, u)), [-v for v in u])):
        if u in seen:
            continue
        neg = tuple(-v for v in u)
        seen.update((u, neg))
        out.append([u] if u == neg else [u, neg])
    return out


def _tuple_label(u) -> str:
    return "(" + ",".join({-1: "−", 0: "0", 1: "+"}[v] for v in u) + ")"


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


@_needs_matplotlib
def sheet(source, *, plane: int = 0, channel="Y", frame: int | None = None, pair: str = "planes",
          frames: int | None = None, **encode_options):
    """Frequencies on the 9-sheet T² and after the inversion fold (9 → 5; 27 → 14 for T³).

    ``pair="planes"`` pairs digits of one sample across planes, (S_k, S_k+1) and (S_k, S_k+1, S_k+2);
    ``pair="spatial"`` pairs plane k's digit with its right neighbours'. Counts pool every sample of
    the channel over all frames, or over ``frame`` alone.
    """
    if pair not in ("planes", "spatial"):
        raise InputError(f"pair must be 'planes' or 'spatial', got {pair!r}")
    plane = int(plane)
    if plane < 0:
        raise InputError(f"plane must be >= 0, got {plane}")
    counts3 = np.zeros((3, 3, 3), np.int64)
    with _stream(source, frames, encode_options) as (path, name):
        meta = _header(path)
        j = _dropped(meta)
        if frame is not None:
            _frame_index(frame, meta["frames"], 0)
        used = 0
        for t, a in enumerate(_analyses(path)):
            if frame is not None and t != int(frame):
                continue
            c = _channel_index(channel, a.channels)
            cname = a.channels[c]
            r = np.asarray(a.residuals[c], dtype=np.int64)
            if pair == "planes":
                d = _digits(r, max(0, plane - j) + 3)
                d = np.concatenate([np.zeros((j,) + r.shape, np.int8), d]) if j else d
                trip = (d[plane], d[plane + 1], d[plane + 2])
            else:
                d = _digits(r, max(0, plane - j) + 1)
                s = d[plane - j] if plane >= j else np.zeros(r.shape, np.int8)
                if s.shape[1] < 3:
                    raise InputError("the frame is too narrow for spatial triples")
                trip = (s[:, :-2], s[:, 1:-1], s[:, 2:])
            idx = ((trip[0].astype(np.int64) + 1) * 9 + (trip[1] + 1) * 3 + (trip[2] + 1)).ravel()
            counts3 += np.bincount(idx, minlength=27).reshape(3, 3, 3)
            used += 1
            if frame is not None:
                break
    total = counts3.sum()
    p3 = counts3 / max(1, total)
    p2 = p3.sum(axis=2)                                            # (first, second)

    fig = _figure(figsize=(15.5, 4.8), layout="constrained")
    gs = fig.add_gridspec(1, 3, width_ratios=[1.0, 1.05, 2.1])
    ax0, ax1, ax2 = (fig.add_subplot(gs[0, i]) for i in range(3))
    grid = p2.T[::-1]                              # rows: second digit +1 (top) .. -1; cols: first -1..+1
    top = max(float(grid.max()), 1e-12)
    image = ax0.imshow(grid, cmap="Blues", vmin=0, vmax=top)
    for row in range(3):
        for col in range(3):
            v = grid[row, col]
            ax0.text(col, row, f"{100 * v:.2f}%" if v < 0.1 else f"{100 * v:.1f}%", ha="center",
                     va="center", fontsize=9, color="white" if v > 0.6 * top else "black")
    ax0.set_xticks(range(3), ["−1", "0", "+1"])
    ax0.set_yticks(range(3), ["+1", "0", "−1"])
    first = f"S_{plane}"
    second = f"S_{plane + 1}" if pair == "planes" else f"S_{plane} of the right neighbour"
    ax0.set_xlabel(first + (" (this sample)" if pair == "spatial" else ""))
    ax0.set_ylabel(second)
    fig.colorbar(image, ax=ax0, fraction=0.046, pad=0.03, label="share of samples")
    h9 = _entropy(p2.ravel())
    ax0.set_title(f"T²: 9 states\nH = {h9:.3f} bits", fontsize=10)

    def fold_bars(ax, d, p):
        classes = orbits(d)
        mass = [(sum(p[tuple(v + 1 for v in u)] for u in cls), cls) for cls in classes]
        mass.sort(key=lambda m: -m[0])
        xs = np.arange(len(mass))
        lo = np.array([p[tuple(v + 1 for v in cls[0])] for _, cls in mass])
        hi = np.array([p[tuple(v + 1 for v in cls[1])] if len(cls) > 1 else 0.0 for _, cls in mass])
        ax.bar(xs, lo, color=FORMALISM, label="u as labelled")
        ax.bar(xs, hi, bottom=lo, color=MEMORYLESS, label="its negative −u")
        for x, (m, _) in zip(xs, mass):
            ax.text(x, m, f"{100 * m:.1f}%" if m >= 0.001 else f"{100 * m:.2f}%", ha="center",
                    va="bottom", fontsize=7 if d == 3 else 8)
        ax.set_ylim(0, max(m for m, _ in mass) * 1.15 or 1)
        ax.set_xticks(xs, [("±" if len(cls) > 1 else " ") + _tuple_label(cls[0]) for _, cls in mass],
                      rotation=90 if d == 3 else 0, fontsize=8 if d == 3 else 9, family="monospace")
        ax.set_ylabel("share of samples")
        h_class = _entropy(np.array([m for m, _ in mass]))
        ax.legend(fontsize=8, loc="upper right")
        return h_class, len(mass)

    h5, n5 = fold_bars(ax1, 2, p2)
    ax1.set_title(f"T²/±: 9 → {n5} classes\nH(class) = {h5:.3f} bits, + H(sign | class) = {h9 - h5:.3f}",
                  fontsize=10)
    ax1.set_xlabel("class (" + first + ", " + (f"S_{plane + 1}" if pair == "planes" else "right") + ")")
    h27 = _entropy(p3.ravel())
    h14, n14 = fold_bars(ax2, 3, p3)
    ax2.set_title(f"T³/±: 27 → {n14} classes (27 states: H = {h27:.3f} bits)\n"
                  f"H(class) = {h14:.3f} bits, + H(sign | class) = {h27 - h14:.3f}", fontsize=10)
    third = (f"S_{plane}, S_{plane + 1}, S_{plane + 2}" if pair == "planes"
             else f"S_{plane} at x, x+1, x+2")
    ax2.set_xlabel(f"class ({third})")
    scope = f"frame {int(frame)}" if frame is not None else f"{used} frames"
    kind = "across planes" if pair == "planes" else "spatial neighbours"
    fig.suptitle(f"The 9-sheet and the inversion fold u ~ −u: {cname} digits {kind}, "
                 f"{scope} of {name} ({total:,} samples)\n"
                 "each class pools a pattern and its negative; the split shows how symmetric the "
                 "residuals are (H = class entropy + what the sign adds)", fontsize=11)
    return fig


# --------------------------------------------------------------------------------------------------
# 4. p-adic depth map
# --------------------------------------------------------------------------------------------------

@_needs_matplotlib
def depth(source, *, frame: int | None = None, channel="Y", frames: int | None = None,
          **encode_options):
    """K(p), the ternary digits each residual needs (0 when R = 0), as a heat map over one frame."""
    from matplotlib.colors import BoundaryNorm

    with _stream(source, frames, encode_options) as (path, name):
        meta = _header(path)
        t = _frame_index(frame, meta["frames"], 1)
        a = _at(path, t)
    j = _dropped(meta)
    c = _channel_index(channel, a.channels)
    cname = a.channels[c]
    r = np.asarray(a.residuals[c], dtype=np.int64)
    kmap = _depth(r)
    kmap = np.where(kmap > 0, kmap + j, 0)
    top = max(int(kmap.max()), 1)
    shown = np.asarray(a.frame.planes[c]) if meta.get("colour_transform") in (None, "none") else None
    h, w = r.shape
    aspect = w / h
    n = 2 if shown is not None else 1
    fig = _figure(figsize=_image_figsize(n, aspect, extra=True), layout="constrained")
    axes, side = _image_axes(fig, n, aspect, extra=True)
    if shown is not None:
        image = axes[0].imshow(shown, cmap="gray", interpolation="nearest")
        axes[0].set_title(f"decoded {cname}, frame {t}", fontsize=10)
        fig.colorbar(image, ax=axes[0], fraction=0.046, pad=0.02, label="sample value", shrink=0.9)
    ax = axes[-1]
    import matplotlib

    cmap = matplotlib.colormaps["magma"].resampled(top + 1)
    norm = BoundaryNorm(np.arange(-0.5, top + 1.5), top + 1)
    image = ax.imshow(kmap, cmap=cmap, norm=norm, interpolation="nearest")
    bar = fig.colorbar(image, ax=ax, ticks=range(top + 1), fraction=0.046, pad=0.02)
    labels = ["0: R = 0"] + [f"{k}: |R| ≤ {(3 ** k - 1) // 2}" for k in range(1, top + 1)]
    bar.ax.set_yticklabels(labels, fontsize=8)
    ax.set_title(f"depth K(p) = digits needed, mean {kmap.mean():.2f}", fontsize=10)
    for axis in axes:
        axis.set_xlabel("x")
        axis.set_ylabel("y")
    share = np.bincount(kmap.ravel(), minlength=top + 1) / kmap.size
    side.barh(range(top + 1), share, color=[cmap(norm(k)) for k in range(top + 1)], edgecolor="0.3")
    for k, v in enumerate(share):
        side.text(v, k, f" {100 * v:.1f}%" if v >= 0.001 or v == 0 else " <0.1%", va="center", fontsize=8)
    side.set_yticks(range(top + 1), [str(k) for k in range(top + 1)])
    side.set_xlim(0, share.max() * 1.35 + 0.02)
    side.set_xlabel("share of samples")
    side.set_ylabel("depth K(p)")
    side.set_title("how deep the cylinders go", fontsize=10)
    dropped = f"; planes below {j} dropped (max error {meta['max_error']})" if j else ""
    fig.suptitle(f"p-adic depth map: {cname}, frame {t} of {name}{dropped}\n"
                 "dark = predicted well (few digits); bright = motion edges, occlusions, new content",
                 fontsize=11)
    return fig


# --------------------------------------------------------------------------------------------------
# 5. Description length per frame
# --------------------------------------------------------------------------------------------------

@_needs_matplotlib
def mdl(source, *, frames: int | None = None, **encode_options):
    """Side and residual bits of every frame, and the chart chosen for it: the share of leaves in
    each prediction mode, the share of the frame covered by each leaf size of the partition tree,
    and the reference lags of the inter leaves (whatever of these the frame log records)."""
    from .codec import info

    with _stream(source, frames, encode_options) as (path, name):
        meta = info(path)
    logs = meta["frames_log"]
    T = len(logs)
    pixels = meta["width"] * meta["height"]
    t = np.arange(T)
    side = np.array([l["side_bits"] for l in logs], float)
    residual = np.array([l["residual_bits"] for l in logs], float)
    total = np.array([8.0 * l["bytes"] for l in logs], float)
    keys = np.array([bool(l["keyframe"]) for l in logs])

    def table(field):
        """Per frame counts of a log field (a {name: count} dict or a list indexed by value)."""
        names: list = []
        for l in logs:
            value = l.get(field) or {}
            for key in (value if isinstance(value, dict) else range(len(value))):
                if key not in names:
                    names.append(key)
        rows = [[float((l.get(field) or {}).get(k, 0)) if isinstance(l.get(field), dict)
                 else float((l.get(field) or [])[k]) if k < len(l.get(field) or []) else 0.0
                 for k in names] for l in logs]
        return names, np.array(rows, float).reshape(T, len(names))

    panels = [("modes",) + table("modes")]
    names, counts = table("depths")
    if counts.size and counts[:, 1:].any():
        root = int(meta.get("block_size") or 16)
        # a leaf at depth d covers (root / 2^d)^2 pixels: weight counts by area
        area = counts / np.array([4.0 ** d for d in names])
        panels.append(("depths", [f"{root >> d}×{root >> d}" for d in names], area))
    names, counts = table("lags")
    if counts.size and counts.sum() and any(str(n) != "1" for n, c in zip(names, counts.sum(axis=0)) if c):
        panels.append(("lags", [f"lag {n}" for n in names], counts))

    fig = _figure(figsize=(min(16.0, max(9.0, 5.5 + 0.3 * T)), 5.4 + 1.25 * len(panels)), layout="constrained")
    axes = fig.subplots(2 + len(panels), 1, sharex=True, height_ratios=[2.2, 1.2] + [1.1] * len(panels))
    ax0, ax1 = axes[:2]
    ax0.bar(t, residual / 1e3, color="#9c9c9c", label="residual planes", width=0.75)
    ax0.bar(t, side / 1e3, bottom=residual / 1e3, color=FORMALISM, label="side info (chart, K)", width=0.75)
    ax0.plot(t, total / 1e3, "k_", ms=12, mew=1.5, label="frame chunk (bytes × 8)")
    ax0.set_ylabel("kbit per frame")
    second = ax0.secondary_yaxis("right", functions=(lambda v: v * 1e3 / pixels, lambda v: v * pixels / 1e3))
    second.set_ylabel("bits per pixel")
    ax0.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.08, 1.0))
    ax0.set_ylim(0, total.max() / 1e3 * 1.2 if T else 1)
    for i in np.flatnonzero(keys):
        ax0.annotate("keyframe", (i, total[i] / 1e3), xytext=(0, 3), textcoords="offset points",
                     ha="center", va="bottom", fontsize=7, color="0.3")
    ax1.bar(t, side, color=FORMALISM, width=0.75)
    mean_side = np.cumsum(side) / (t + 1)
    ax1.plot(t, mean_side, color="k", lw=1.2, label="mean so far\n(amortisation)")
    ax1.set_ylabel("side bits")
    ax1.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.08, 1.0))
    blues = ["#08519c", "#4292c6", "#9ecae1", "#deebf7", "#f7fbff"]
    greys = ["#252525", "#737373", "#bdbdbd", "#f0f0f0", "#ffffff"]
    titles = {"modes": ("share of leaves", "prediction mode"), "depths": ("share of frame", "leaf size"),
              "lags": ("share of inter leaves", "reference")}
    for ax, (field, names, counts) in zip(axes[2:], panels):
        shares = counts / np.maximum(1e-12, counts.sum(axis=1, keepdims=True))
        bottom = np.zeros(T)
        for i, key in enumerate(names):
            if field == "modes":
                label, colour = MODES.get(key, (str(key), None))
            else:
                label, colour = str(key), (blues if field == "depths" else greys)[min(i, 4)]
            ax.bar(t, shares[:, i], bottom=bottom, width=0.75, label=label, color=colour,
                   edgecolor="0.6" if field != "modes" else None, linewidth=0.3)
            bottom += shares[:, i]
        ax.set_ylim(0, 1)
        ylabel, title = titles[field]
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.08, 1.0), title=title, title_fontsize=8)
    axes[-1].set_xlabel("frame t")
    axes[-1].set_xticks(t if T <= 40 else t[:: max(1, T // 20)])
    fig.suptitle(f"Description length per frame (MDL): {name}, {T} frames, "
                 f"{meta['bpppf']:.3f} bpppf overall\n"
                 "what each frame costs, what its chart (side info) costs, and which chart the "
                 "encoder chose", fontsize=11)
    return fig


# --------------------------------------------------------------------------------------------------
# 6. The money plot
# --------------------------------------------------------------------------------------------------

def rate_model(meta: dict) -> dict:
    """The rate model of DESIGN.md §1.7 from ``triadic.info(path)``, in bits per pixel per frame.

    Per plane: ρ_k, the measured bits, the formalism's log2(3)·ρ_k and the memoryless h(ρ_k) + ρ_k,
    each channel's per-sample figures weighted by its samples / (W·H·frames). Totals: ``measured``
    (the file), ``side``, ``residual``, ``container`` (the rest: header, chunk framing, CRCs),
    ``formalism`` = side + log2(3)·Σρ_k and ``memoryless`` = side + Σ[h(ρ_k) + ρ_k].
    """
    pixels = meta["width"] * meta["height"] * max(1, meta["frames"])
    j = _dropped(meta)
    rows = []
    for p in meta.get("planes") or []:
        weight = p["samples"] / pixels
        rho = float(p["rho"])
        rows.append({"channel": p["channel"], "k": int(p["k"]) + j, "rho": rho, "weight": weight,
                     "measured": float(p["bits"]) / pixels,
                     "formalism": weight * plane_rate_models(rho)[0],
                     "memoryless": weight * plane_rate_models(rho)[1]})
    side = float(meta.get("side_bits") or 0.0) / pixels
    residual = float(meta.get("residual_bits") or 0.0) / pixels
    measured = 8.0 * meta["bytes"] / pixels
    return {"planes": rows, "side": side, "residual": residual, "measured": measured,
            "container": measured - side - residual,
            "formalism": side + sum(r["formalism"] for r in rows),
            "memoryless": side + sum(r["memoryless"] for r in rows)}


@_needs_matplotlib
def money(source, *, frames: int | None = None, **encode_options):
    """ρ_k per plane and channel, the cumulative rate over planes, and the three rate models."""
    from .codec import info

    with _stream(source, frames, encode_options) as (path, name):
        meta = info(path)
    model = rate_model(meta)
    rows = model["planes"]
    channels = list(dict.fromkeys(r["channel"] for r in rows))
    kmax = max((r["k"] for r in rows), default=0)
    ks = np.arange(kmax + 1)
    fig = _figure(figsize=(15.5, 4.8), layout="constrained")
    ax0, ax1, ax2 = fig.subplots(1, 3, width_ratios=[1.15, 1.15, 0.85])

    width = 0.8 / max(1, len(channels))
    for i, ch in enumerate(channels):
        rho = np.zeros(kmax + 1)
        for r in rows:
            if r["channel"] == ch:
                rho[r["k"]] = r["rho"]
        keep = rho > 0
        ax0.bar(ks[keep] - 0.4 + width * (i + 0.5), rho[keep], width=width,
                color=CHANNEL_COLOURS[i % len(CHANNEL_COLOURS)], label=ch)
    ax0.set_yscale("log")
    ax0.set_ylim(top=1.5)
    ax0.set_xticks(ks)
    ax0.set_xlabel("ternary plane k")
    ax0.set_ylabel("ρ_k = share of digits ≠ 0 (log scale)")
    ax0.legend(title="channel", fontsize=8)
    ax0.set_title("density of active trits per plane", fontsize=10)

    def per_k(field):
        out = np.zeros(kmax + 1)
        for r in rows:
            out[r["k"]] += r[field]
        return out

    for field, colour, label in (("formalism", FORMALISM, "formalism: log2(3)·Σρ_i"),
                                 ("memoryless", MEMORYLESS, "memoryless: Σ[h(ρ_i) + ρ_i]"),
                                 ("measured", MEASURED, "measured (context-coded)")):
        ax1.plot(ks, np.cumsum(per_k(field)), "o-", color=colour, label=label, lw=1.8, ms=4)
    ax1.set_xticks(ks)
    ax1.set_xlabel("ternary plane k")
    ax1.set_ylabel("rate of planes 0..k, bits per pixel")
    ax1.legend(fontsize=8, loc="lower right")
    ax1.set_title("cumulative rate of the planes 0..k (all channels)", fontsize=10)
    ax1.set_ylim(bottom=0)

    bars = [("measured", model["measured"]), ("formalism\nr_side + log2(3)Σρ", model["formalism"]),
            ("memoryless\nr_side + Σ[h(ρ)+ρ]", model["memoryless"])]
    xs = np.arange(3)
    ax2.bar(0, model["residual"], color="#9c9c9c", label=f"residual planes {model['residual']:.3f}")
    ax2.bar(0, model["side"], bottom=model["residual"], color=FORMALISM,
            label=f"side info (r_side) {model['side']:.3f}")
    ax2.bar(0, max(0.0, model["container"]), bottom=model["residual"] + model["side"], color="0.2",
            label=f"container {model['container']:.3f}")
    ax2.bar(1, model["formalism"], color=FORMALISM, alpha=0.55)
    ax2.bar(2, model["memoryless"], color=MEMORYLESS)
    for x, (_, v) in zip(xs, bars):
        ax2.text(x, v, f"{v:.3f}", ha="center", va="bottom", fontsize=9)
    ax2.set_xticks(xs, [b for b, _ in bars], fontsize=8)
    ax2.set_ylabel("bits per pixel per frame (bpppf)")
    ax2.set_ylim(0, max(v for _, v in bars) * 1.18 or 1)
    ax2.legend(fontsize=8, loc="upper left")
    ax2.set_title("the whole stream: measured against the models", fontsize=10)
    near = f", max error {meta['max_error']}" if meta.get("max_error") else ""
    fig.suptitle(f"The money plot: {name}, {meta['frames']} frames {meta['width']}×{meta['height']} "
                 f"{meta['pix_fmt']}{near}\nthe faster ρ_k falls, the cheaper the video; rates are "
                 "per pixel of the frame (chroma weighted by its share of samples)", fontsize=11)
    return fig


# --------------------------------------------------------------------------------------------------
# 7. The 3-adic tree walk
# --------------------------------------------------------------------------------------------------

@_needs_matplotlib
def tree(source, *, pixel=None, block: int = 8, channel="Y", frame: int | None = None,
         frames: int | None = None, **encode_options):
    """The 3-ary tree of digit prefixes d_0, d_1, ... of a pixel's residuals (over all frames, or
    ``frame``), pooled over a ``block`` × ``block`` neighbourhood; edge width by frequency.

    A walk stops where the residual is fully described (every higher digit is 0), so R = 0 stays at
    the root. Level k's nodes are the residues modulo 3^k: the clopen cylinders of Z_3.
    """
    from matplotlib.collections import LineCollection

    with _stream(source, frames, encode_options) as (path, name):
        meta = _header(path)
        j = _dropped(meta)
        if frame is not None:
            _frame_index(frame, meta["frames"], 0)
        values, where, used = [], None, 0
        for t, a in enumerate(_analyses(path)):
            if frame is not None and t != int(frame):
                continue
            c = _channel_index(channel, a.channels)
            r = a.residuals[c]
            if where is None:
                y, x, cy, cx = _locate(pixel, meta, r.shape)
                where = _window(cy, cx, block, r.shape)
                cname = a.channels[c]
            values.append(np.asarray(r[where], dtype=np.int64).ravel() * 3 ** j)
            used += 1
            if frame is not None:
                break
    values = np.concatenate(values)
    n = values.size
    lengths = _depth(values)
    digits = _digits(values)                                      # (K, n), LSB first
    K = max(int(lengths.max()), 1)
    fig = _figure(figsize=(max(9.0, min(18.0, 2.5 + 2.2 * K)), 2.2 + 1.1 * K), layout="constrained")
    ax = fig.add_subplot()
    # a node is a prefix (d_0..d_{L-1}); its x-interval is split in three for the next digit
    weights = 3 ** np.arange(digits.shape[0], dtype=np.int64)

    def prefixes(mask, level):
        """{prefix (d_0..d_level-1): count} over the residuals in ``mask``."""
        codes = ((digits[:level, mask].astype(np.int64) + 1) * weights[:level, None]).sum(axis=0)
        found, counts = np.unique(codes, return_counts=True)
        return {tuple(int(c // 3 ** i % 3) - 1 for i in range(level)): int(m) for c, m in zip(found, counts)}

    edges: dict[tuple, int] = {}       # the edge into a node, keyed by the node's prefix
    ends: dict[tuple, int] = {}        # walks that stop at a node
    for level in range(K + 1):
        if level:
            edges.update(prefixes(lengths >= level, level))
        ends.update(prefixes(lengths == level, level) if (lengths == level).any() else {})

    def centre(prefix):
        lo, span = 0.0, 1.0
        for d in prefix:
            span /= 3
            lo += (d + 1) * span
        return lo + span / 2

    segments, widths, colours = [], [], []
    for prefix, count in sorted(edges.items(), key=lambda e: e[1]):
        segments.append([(centre(prefix[:-1]), len(prefix) - 1), (centre(prefix), len(prefix))])
        widths.append(0.6 + 14.0 * math.sqrt(count / n))
        colours.append({-1: NEG, 0: "0.55", 1: POS}[prefix[-1]])
    ax.add_collection(LineCollection(segments, linewidths=widths, colors=colours, capstyle="round",
                                     zorder=1))
    for prefix, count in ends.items():
        share = count / n
        cx_, level = centre(prefix), len(prefix)
        ax.scatter([cx_], [level], s=20 + 600 * share, color="k", zorder=3, edgecolors="white",
                   linewidths=0.8)
        if share >= 0.02:
            value = sum(d * 3 ** (i + j) for i, d in enumerate(prefix))
            text = ("R = 0" if value == 0 else f"R = {value:+d}".replace("-", "−")) + f"\n{100 * share:.0f}%"
            ax.annotate(text, (cx_, level), xytext=(9, -2), textcoords="offset points", ha="left",
                        va="top", fontsize=7, zorder=4,
                        bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(K + 0.35, -0.3)
    ax.set_yticks(range(K + 1), ["root: nothing known"] +
                  [f"d_{k + j} known: R mod {3 ** (k + j + 1)}" for k in range(K)], fontsize=8)
    ax.set_xticks([])
    for spine in ("top", "right", "bottom"):
        ax.spines[spine].set_visible(False)
    from matplotlib.lines import Line2D

    ax.legend(handles=[Line2D([], [], color=NEG, lw=3, label="digit −1"),
                       Line2D([], [], color="0.55", lw=3, label="digit 0"),
                       Line2D([], [], color=POS, lw=3, label="digit +1"),
                       Line2D([], [], marker="o", color="k", lw=0, label="walk ends (higher digits 0)")],
              loc="lower left", fontsize=8, ncol=4, bbox_to_anchor=(0.0, -0.12))
    size = f"{where[0].stop - where[0].start}×{where[1].stop - where[1].start}"
    what = f"pixel (y={y}, x={x})" if size == "1×1" else f"{size} block at (y={y}, x={x})"
    scope = f"frame {int(frame)}" if frame is not None else f"{used} frames"
    dropped = f"; planes below {j} dropped" if j else ""
    fig.suptitle(f"3-adic tree walk: {cname} {what}, {scope} of {name} ({n} residuals{dropped})\n"
                 "each residual walks down its digits d_0, d_1, ... (−1 left, 0 middle, +1 right); "
                 "edge width ∝ √frequency", fontsize=11)
    return fig


# --------------------------------------------------------------------------------------------------
# One entry point for the command line
# --------------------------------------------------------------------------------------------------

_OPTIONS = {
    "barcode": ("pixel", "block", "channel"),
    "planes": ("frame", "plane", "channel"),
    "sheet": ("frame", "plane", "channel", "pair"),
    "depth": ("frame", "channel"),
    "mdl": (),
    "money": (),
    "tree": ("frame", "pixel", "block", "channel"),
}


def plot(kind: str, source, out: str, *, dpi: int = 130, **options) -> str:
    """Draw picture ``kind`` of ``source`` and save it to ``out`` (format from its extension).

    Options that ``kind`` does not take, or that are None, are ignored; the encode options
    (frames, keyint, preset, max_error) apply when ``source`` is a video. The file is written
    whole or not at all.
    """
    if kind not in KINDS:
        raise InputError(f"unknown picture {kind!r}: one of {', '.join(KINDS)}")
    encode_keys = ("frames", "keyint", "preset", "max_error", "block_size", "references")
    kwargs = {k: v for k, v in options.items()
              if v is not None and (k in _OPTIONS[kind] or k in encode_keys)}
    unknown = set(options) - set(encode_keys) - {o for opts in _OPTIONS.values() for o in opts}
    if unknown:
        raise TypeError(f"unknown options: {', '.join(sorted(unknown))}")
    fig = globals()[kind](source, **kwargs)
    out = os.fspath(out)
    ext = os.path.splitext(out)[1].lower().lstrip(".")
    formats = fig.canvas.get_supported_filetypes()
    if ext not in formats:
        raise InputError(f"cannot tell the picture format of {out!r}: use one of "
                         f".{', .'.join(sorted(formats))}")
    folder = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(prefix=".triadic-plot-", suffix="." + ext, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format=ext, dpi=dpi)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return out
