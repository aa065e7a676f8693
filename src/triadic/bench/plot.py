"""Plots of a benchmark run, made from results.json alone (benchmarks write data, plots read data).

    python benchmarks/plot.py DIR [--out IMG_DIR]

writes, into IMG_DIR (default DIR):

- ``rho_planes.png``: the ρ_k "money plot": ρ_k per plane and channel, and where the bits go,
  plane by plane, with the cumulative measured rate against the two rate models;
- ``bpppf.png``: lossless bits per pixel per frame of every codec, per clip;
- ``speed.png``: encode and decode frames per second of every codec, per clip;
- ``frame_bits.png``: triadic's side and residual bits, frame by frame;
- ``rd.png``: PSNR and the largest error against bpppf for the lossy and near-lossless sweeps,
  with the PSNR range of the BD-rate against SVT-AV1 shaded;
- ``jpegls_ratio.png``: triadic's near-lossless rate over JPEG-LS's at NEAR = E.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

TRIADIC_COLOUR = "#d62728"
CHANNEL_COLOURS = {"Y": "#1f77b4", "U": "#2ca02c", "V": "#ff7f0e", "Co": "#2ca02c", "Cg": "#ff7f0e"}
FAMILY_STYLE = {
    "svtav1-crf": ("SVT-AV1 p8 (crf sweep)", "#9467bd", "o"),
    "jpegls-near": ("JPEG-LS per frame (NEAR = E)", "#8c564b", "s"),
    "triadic-near": ("triadic (max_error = E)", TRIADIC_COLOUR, "D"),
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grid(plt, n: int, rows: int = 1, width: float = 5.2, height: float = 4.2, **kw):
    fig, axes = plt.subplots(rows, n, figsize=(width * n, height * rows), squeeze=False, **kw)
    return fig, axes


def _clip_title(clip: dict) -> str:
    return f"{clip['name']} ({clip['width']}×{clip['height']}, {clip['frames']} frames)"


def _save(fig, path: str) -> str:
    """Write ``fig`` as a palette PNG: line plots need few colours, and the files stay small."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=90, bbox_inches="tight", format="png")
    _pyplot().close(fig)
    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=128).save(path, optimize=True)
    return path


def _fps_label(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def _lossless_rows(clip: dict) -> list[dict]:
    return [r for r in clip.get("lossless", []) if not r.get("error") and r.get("bpppf") is not None]


def _best_peer(clip: dict) -> dict | None:
    """The smallest exact lossless rate of another codec (triadic's other presets are not peers)."""
    rows = [r for r in _lossless_rows(clip) if not r["codec"].startswith("triadic") and r.get("exact")]
    return min(rows, key=lambda r: r["bpppf"]) if rows else None


# --------------------------------------------------------------------------------------------------

def plot_rho(results: dict, path: str) -> str | None:
    """ρ_k per plane (top) and the rate per plane with cumulative rates (bottom), one column per clip."""
    clips = [c for c in results["clips"] if ((c.get("triadic") or {}).get("rates") or {}).get("channels")]
    if not clips:
        return None
    plt = _pyplot()
    fig, axes = _grid(plt, len(clips), rows=2, height=3.8)
    for col, clip in enumerate(clips):
        rates = clip["triadic"]["rates"]
        channels = rates["channels"]
        top, bottom = axes[0][col], axes[1][col]
        kmax = max(p["k"] for ch in channels for p in ch["planes"])
        ks = list(range(kmax + 1))

        for ch in channels:
            pts = [(p["k"], p["rho"]) for p in ch["planes"] if p["rho"] > 0]
            if pts:
                top.semilogy(*zip(*pts), marker="o", color=CHANNEL_COLOURS.get(ch["channel"]),
                             label=f"{ch['channel']} (weight {ch['weight']:.2f})")
        top.set_title(_clip_title(clip), fontsize=10)
        top.set_xlabel("ternary plane k (0 = least significant)")
        top.set_ylabel("ρ_k: fraction of nonzero digits")
        top.set_xticks(ks)
        top.grid(True, which="major", alpha=0.3)
        top.legend(fontsize=8, title="channel", title_fontsize=8)

        # per-plane measured rate, stacked by channel
        base = [0.0] * len(ks)
        width = 0.6
        for ch in channels:
            per_k = {p["k"]: (p.get("rate") or 0.0) for p in ch["planes"]}
            heights = [per_k.get(k, 0.0) for k in ks]
            bottom.bar(ks, heights, width, bottom=base, color=CHANNEL_COLOURS.get(ch["channel"]),
                       alpha=0.55, label=f"{ch['channel']} measured, this plane")
            base = [b + h for b, h in zip(base, heights)]

        def cumulative(field: str) -> list[float]:
            total, out = rates["side"], []
            for k in ks:
                total += sum(p.get(field) or 0.0 for ch in channels for p in ch["planes"] if p["k"] == k)
                out.append(total)
            return out

        bottom.plot(ks, cumulative("rate"), "k-o", ms=4, label="cumulative, measured")
        bottom.plot(ks, cumulative("estimate"), "--", color="#7f7f7f",
                    label="cumulative, estimate r_side + log2(3)·Σρ_k")
        bottom.plot(ks, cumulative("memoryless"), ":", color="#17becf", lw=2,
                    label="cumulative, memoryless r_side + Σ[h(ρ_k)+ρ_k]")
        best = _best_peer(clip)
        if best is not None:
            bottom.axhline(best["bpppf"], color="#9467bd", lw=1, label="best lossless peer (named)")
            bottom.annotate(f"{best['label']} {best['bpppf']:.2f}", (0.02, best["bpppf"]),
                            xycoords=("axes fraction", "data"), textcoords="offset points",
                            xytext=(0, 2), va="bottom", fontsize=7, color="#9467bd",
                            bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.8))
        bottom.set_xlabel("ternary plane k (cumulative: side info + planes 0..k)")
        bottom.set_ylabel("bits per pixel per frame")
        bottom.set_xticks(ks)
        bottom.grid(True, axis="y", alpha=0.3)
        bottom.set_title(f"measured {rates.get('coded') or 0:.3f}, estimate {rates['estimate']:.3f}, "
                         f"memoryless {rates['memoryless']:.3f} bpppf (side {rates['side']:.3f})",
                         fontsize=9)
    handles, labels = axes[1][0].get_legend_handles_labels()
    fig.suptitle("triadic: where the bits go, ternary plane by plane", fontsize=12)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    return _save(fig, path)


def plot_bpppf(results: dict, path: str) -> str | None:
    """Horizontal bars of lossless bpppf, best first, one panel per clip."""
    clips = [c for c in results["clips"] if _lossless_rows(c)]
    if not clips:
        return None
    plt = _pyplot()
    n_rows = max(len(_lossless_rows(c)) for c in clips)
    fig, axes = _grid(plt, len(clips), height=0.9 + 0.38 * n_rows)
    for ax, clip in zip(axes[0], clips):
        rows = sorted(_lossless_rows(clip), key=lambda r: r["bpppf"], reverse=True)
        labels = [r["label"] + ("" if r.get("exact") else " (NOT exact)") for r in rows]
        values = [r["bpppf"] for r in rows]
        colours = [TRIADIC_COLOUR if r["codec"] == "triadic" else "#7f7f7f" for r in rows]
        bars = ax.barh(labels, values, color=colours)
        for bar, row in zip(bars, rows):
            if not row.get("exact"):
                bar.set_hatch("//")
                bar.set_facecolor("white")
                bar.set_edgecolor("#7f7f7f")
        ax.bar_label(bars, fmt="%.2f", padding=2, fontsize=8)
        ax.set_xlim(0, max(values) * 1.18)
        ax.set_xlabel("bits per pixel per frame (lossless, lower is better)")
        ax.set_title(_clip_title(clip), fontsize=10)
        ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle("Lossless rate of every codec on the same frames", fontsize=12)
    fig.tight_layout()
    return _save(fig, path)


def plot_speed(results: dict, path: str) -> str | None:
    """Encode and decode frames per second (log scale), one panel per clip."""
    from matplotlib.patches import Patch

    clips = [c for c in results["clips"] if _lossless_rows(c)]
    if not clips:
        return None
    plt = _pyplot()
    n_rows = max(len(_lossless_rows(c)) for c in clips)
    fig, axes = _grid(plt, len(clips), height=0.9 + 0.45 * n_rows)
    for ax, clip in zip(axes[0], clips):
        rows = [r for r in _lossless_rows(clip) if r.get("encode_fps") and r.get("decode_fps")]
        rows.sort(key=lambda r: r["encode_fps"])
        ys = range(len(rows))
        h = 0.4
        enc = ax.barh([y + h / 2 for y in ys], [r["encode_fps"] for r in rows], h, label="encode",
                      color=["#d62728" if r["codec"] == "triadic" else "#1f77b4" for r in rows])
        dec = ax.barh([y - h / 2 for y in ys], [r["decode_fps"] for r in rows], h, label="decode",
                      color=["#ff9896" if r["codec"] == "triadic" else "#aec7e8" for r in rows])
        for bars in (enc, dec):
            ax.bar_label(bars, labels=[_fps_label(b.get_width()) for b in bars], padding=2, fontsize=7)
        ax.set_yticks(list(ys), [r["label"] for r in rows])
        ax.set_xscale("log")
        lo = min(min(r["encode_fps"], r["decode_fps"]) for r in rows)
        hi = max(max(r["encode_fps"], r["decode_fps"]) for r in rows)
        ax.set_xlim(lo / 2, hi * 4)
        ax.set_xlabel("frames per second (log scale, higher is faster)")
        ax.set_title(_clip_title(clip), fontsize=10)
        ax.grid(True, axis="x", which="both", alpha=0.2)
        ax.legend(handles=[Patch(color="#1f77b4", label="encode"), Patch(color="#aec7e8", label="decode"),
                           Patch(color="#d62728", label="triadic encode"),
                           Patch(color="#ff9896", label="triadic decode")],
                  fontsize=7, loc="lower right")
    threads = results.get("settings", {}).get("threads")
    fig.suptitle(f"Speed on the same frames (peers with {threads} thread(s); "
                 f"{results.get('host', {}).get('cpu_count')} CPUs)", fontsize=12)
    fig.tight_layout()
    return _save(fig, path)


def plot_frame_bits(results: dict, path: str) -> str | None:
    """triadic's side and residual bits per frame (per pixel), stacked; keyframes marked."""
    from matplotlib.ticker import MaxNLocator

    clips = [c for c in results["clips"] if (c.get("triadic") or {}).get("frames_log")]
    if not clips:
        return None
    plt = _pyplot()
    fig, axes = _grid(plt, len(clips), height=3.8)
    for ax, clip in zip(axes[0], clips):
        log = clip["triadic"]["frames_log"]
        px = clip["width"] * clip["height"]
        xs = [e.get("frame", i) for i, e in enumerate(log)]
        residual = [(e.get("residual_bits") or 0.0) / px for e in log]
        side = [(e.get("side_bits") or 0.0) / px for e in log]
        ax.bar(xs, residual, color="#1f77b4", label="residual planes")
        ax.bar(xs, side, bottom=residual, color=TRIADIC_COLOUR, label="side info")
        keys = [x for x, e in zip(xs, log) if e.get("keyframe")]
        top = max(r + s for r, s in zip(residual, side)) if log else 1.0
        for x in keys:
            ax.annotate("key", (x, top * 1.02), ha="center", fontsize=7, color="#555555")
        ax.set_ylim(0, top * 1.12)
        total_side = sum(side)
        share = total_side / max(1e-12, total_side + sum(residual))
        ax.set_title(f"{_clip_title(clip)}\nside info {100 * share:.1f}% of the coded bits", fontsize=10)
        ax.set_xlabel("frame")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("bits per pixel (this frame)")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
    fig.suptitle("triadic: side information against residual bits, frame by frame", fontsize=12)
    fig.tight_layout()
    return _save(fig, path)


def _curve_line(ax, rows: list[dict], colour, key: str = "psnr") -> None:
    """The PCHIP interpolation (log10 rate over PSNR) the BD-rate integrates, as a line."""
    import numpy as np

    from .rd import _log_rate, rd_curve

    rates, psnrs = rd_curve([(r["bpppf"], r.get(key)) for r in rows])
    if len(rates) < 2:
        return
    grid = np.linspace(psnrs[0], psnrs[-1], 200)
    ax.plot(10 ** _log_rate(rates, psnrs)(grid), grid, color=colour, lw=1.3)


def _log_x(ax) -> None:
    """Log x axis with plain numbers: 1-2-5 ticks over up to two decades, decades beyond."""
    import math

    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    lo, hi = ax.get_xlim()
    wide = lo > 0 and math.log10(hi / lo) > 2.2
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0,) if wide else (1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


#: The PSNR panel of rd.png starts here: below it no peer is compared (the points are in the tables).
PSNR_FLOOR = 18.0


def plot_rd(results: dict, path: str) -> str | None:
    """Per clip: PSNR against bpppf (top) and the largest error of any sample (bottom) for each
    lossy sweep; lossless rates as vertical lines; the BD-rate range shaded. Points below
    PSNR_FLOOR dB (E = 121) are left out of the PSNR panel, not out of the max-error one."""
    from .rd import HIGH_PSNR, summarise

    clips = [c for c in results["clips"] if any(not r.get("error") for r in c.get("lossy", []))]
    if not clips:
        return None
    plt = _pyplot()
    fig, axes = _grid(plt, len(clips), rows=2, height=4.4)
    for col, clip in enumerate(clips):
        top, bottom = axes[0][col], axes[1][col]
        families: dict[str, list[dict]] = {}
        for row in clip["lossy"]:
            if row.get("error") or not row.get("bpppf"):
                continue
            families.setdefault(row.get("family", row["codec"]), []).append(row)
        for family, rows in families.items():
            label, colour, marker = FAMILY_STYLE.get(family, (family, None, "o"))
            rows.sort(key=lambda r: r["bpppf"])
            finite = [r for r in rows if r.get("psnr") is not None and r["psnr"] >= PSNR_FLOOR]
            top.plot([r["bpppf"] for r in finite], [r["psnr"] for r in finite], marker=marker, ms=5,
                     color=colour, ls="none", label=label)
            _curve_line(top, finite, colour)
            for r in finite:
                top.annotate(f"{'crf' if r['param'] == 'crf' else 'E'}={r['value']}", (r["bpppf"], r["psnr"]),
                             textcoords="offset points", xytext=(4, -9), fontsize=6, color=colour)
            bottom.plot([r["bpppf"] for r in rows], [max(r.get("max_error") or 0, 0.5) for r in rows],
                        marker=marker, ms=5, color=colour, label=label)
        rd = clip.get("rd") or (summarise(clip) if "triadic-near" in families else None)
        bd = (rd or {}).get("bd_rate")
        notes = []
        if bd:
            top.axhspan(bd["psnr_lo"], bd["psnr_hi"], color="#bbbbbb", alpha=0.25, lw=0,
                        label="PSNR range of the BD-rate against SVT-AV1")
            notes.append(f"BD-rate vs SVT-AV1 {bd['bd_rate']:+.0f}% ({bd['psnr_lo']:.1f}–{bd['psnr_hi']:.1f} dB)")
            high = rd.get("bd_rate_high")
            notes.append(f"above {HIGH_PSNR:g} dB: {high['bd_rate']:+.0f}%" if high else
                         f"no overlap above {HIGH_PSNR:g} dB")
        top.axhline(HIGH_PSNR, color="#555555", ls=":", lw=1)
        if notes:
            top.text(0.02, 0.91, "\n".join(notes), transform=top.transAxes, ha="left", va="top",
                     fontsize=7, bbox=dict(boxstyle="square,pad=0.3", fc="white", ec="#cccccc", alpha=0.9))
        tri = next((r for r in _lossless_rows(clip) if r["codec"] == "triadic" and r.get("exact")), None)
        best = _best_peer(clip)
        lossless = []
        for row, colour, label in ((tri, TRIADIC_COLOUR, "triadic lossless"),
                                   (best, "#7f7f7f", "best lossless peer (see title)")):
            if row is not None:
                for ax in (top, bottom):
                    ax.axvline(row["bpppf"], color=colour, ls="--", lw=1, label=label)
                lossless.append(f"{row['label']} {row['bpppf']:.2f}")
        low = [f"{'crf' if r['param'] == 'crf' else 'E'}={r['value']}" for rows in families.values()
               for r in rows if r.get("psnr") is not None and r["psnr"] < PSNR_FLOOR]
        if low:
            top.text(0.02, 0.97, f"below {PSNR_FLOOR:g} dB, not shown: {', '.join(sorted(set(low)))}",
                     transform=top.transAxes, fontsize=6, va="top", color="#555555")
        for ax in (top, bottom):
            _log_x(ax)
            ax.set_xlabel("bits per pixel per frame (log scale)")
            ax.grid(True, which="both", alpha=0.2)
        top.set_ylabel("PSNR over Y, U and V (dB)")
        bottom.set_yscale("log")
        bottom.set_ylabel("largest |error| of any sample (log scale)")
        bottom.set_title("max error: triadic and JPEG-LS guarantee ≤ E", fontsize=9)
        suffix = f"\nlossless (dashed): {', '.join(lossless)} bpppf" if lossless else ""
        top.set_title(_clip_title(clip) + suffix, fontsize=10)
    handles: dict = {}
    for ax in axes.ravel():
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    fig.suptitle("Lossy and near-lossless: PSNR (up and left is better) and the largest error "
                 "(down and left is better) against rate", fontsize=12)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=6, fontsize=8,
               frameon=False)
    return _save(fig, path)


def plot_jpegls_ratio(results: dict, path: str) -> str | None:
    """triadic's rate over JPEG-LS's at NEAR = E, per clip and E (bars), with the 0.7 target."""
    from .rd import summarise

    data = []
    for clip in results["clips"]:
        if not any(r.get("family") == "triadic-near" for r in clip.get("lossy", [])):
            continue
        rows = [r for r in (clip.get("rd") or summarise(clip))["jpegls"] if r.get("ratio")]
        if rows:
            data.append((clip, rows))
    if not data:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(2.2 + 2.4 * len(data), 4.0))
    nears = sorted({r["near"] for _, rows in data for r in rows})
    width = 0.8 / len(nears)
    shades = plt.get_cmap("Reds")([0.35 + 0.6 * i / max(1, len(nears) - 1) for i in range(len(nears))])
    for i, near in enumerate(nears):
        xs, ys = [], []
        for c, (_, rows) in enumerate(data):
            row = next((r for r in rows if r["near"] == near), None)
            if row is not None:
                xs.append(c - 0.4 + width * (i + 0.5))
                ys.append(row["ratio"])
        bars = ax.bar(xs, ys, width * 0.92, color=shades[i], label=f"E = NEAR = {near}")
        ax.bar_label(bars, fmt="%.2f", padding=1, fontsize=7)
    ax.axhline(1.0, color="#555555", lw=1)
    ax.axhline(0.7, color="#555555", ls="--", lw=1, label="target: 30% below JPEG-LS")
    ax.set_xticks(range(len(data)), [_clip_title(c) for c, _ in data], fontsize=8)
    ax.set_ylabel("triadic bpppf / JPEG-LS bpppf (lower is better)")
    ax.set_ylim(0, max(1.15, max(r["ratio"] for _, rows in data for r in rows) * 1.15))
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="upper left")
    ax.set_title("Near-lossless, same guarantee |error| ≤ E: triadic's rate over JPEG-LS's "
                 "(per frame)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


PLOTS = {
    "rho_planes.png": plot_rho,
    "bpppf.png": plot_bpppf,
    "speed.png": plot_speed,
    "frame_bits.png": plot_frame_bits,
    "rd.png": plot_rd,
    "jpegls_ratio.png": plot_jpegls_ratio,
}


def plot_all(results: dict, out: str) -> list[str]:
    """Every plot the results allow; returns the paths written."""
    os.makedirs(out, exist_ok=True)
    written = []
    for name, func in PLOTS.items():
        path = func(results, os.path.join(out, name))
        if path:
            written.append(path)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/plot.py",
                                     description="Plot a benchmark run from its results.json.")
    parser.add_argument("dir", nargs="?", default="bench-out",
                        help="folder holding results.json, or the JSON file itself (default bench-out)")
    parser.add_argument("--out", default=None, help="folder for the PNGs (default: next to results.json)")
    args = parser.parse_args(argv)
    path = args.dir if args.dir.endswith(".json") else os.path.join(args.dir, "results.json")
    try:
        with open(path, encoding="utf-8") as f:
            results = json.load(f)
    except OSError as exc:
        parser.error(f"cannot read {path}: {exc.strerror}; run python benchmarks/run.py first")
    out = args.out or os.path.dirname(os.path.abspath(path))
    for written in plot_all(results, out):
        print(written, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
