"""results.md: the benchmark's tables in Markdown, made from results.json alone."""

from __future__ import annotations

import json
import sys

from .rd import summarise


#: Display names of the lossy sweeps (the "family" field of a lossy row).
FAMILY_LABELS = {"svtav1-crf": "SVT-AV1 p8", "jpegls-near": "JPEG-LS", "triadic-near": "triadic"}


def _num(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _fps(value) -> str:
    if value is None:
        return "–"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 1 else f"{value:.2f}"


def _codec_order(results: dict, section: str = "lossless") -> list[tuple[str, str]]:
    """(codec key, label) in first-seen order over all clips, triadic first."""
    seen: dict[str, str] = {}
    for clip in results["clips"]:
        for row in clip.get(section, []):
            seen.setdefault(row["codec"], row.get("label", row["codec"]))
    keys = sorted(seen, key=lambda k: (k != "triadic", not k.startswith("triadic")))
    return [(k, seen[k]) for k in keys]


def _row(clip: dict, codec: str, section: str = "lossless") -> dict | None:
    for row in clip.get(section, []):
        if row["codec"] == codec:
            return row
    return None


def _triadic_bpppf(clip: dict) -> float | None:
    row = _row(clip, "triadic")
    if row is None or not row.get("exact") or row.get("bpppf") is None:
        return None
    return row["bpppf"]


def lossless_table(results: dict) -> str:
    clips = results["clips"]
    head = "| codec | " + " | ".join(f"{c['name']} ({c['frames']} fr.)" for c in clips) + " |"
    lines = [head, "|---|" + "---|" * len(clips)]
    for key, label in _codec_order(results):
        cells = []
        for clip in clips:
            row = _row(clip, key)
            if row is None:
                cells.append("–")
            elif row.get("error"):
                cells.append("failed")
            else:
                cell = _num(row["bpppf"])
                ref = _triadic_bpppf(clip)
                if ref and key != "triadic":
                    cell += f" ({row['bpppf'] / ref:.2f}×)"
                if not row.get("exact"):
                    cell += " **not exact**"
                cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def speed_table(results: dict) -> str:
    clips = results["clips"]
    head = "| codec | " + " | ".join(c["name"] for c in clips) + " |"
    lines = [head, "|---|" + "---|" * len(clips)]
    for key, label in _codec_order(results):
        cells = []
        for clip in clips:
            row = _row(clip, key)
            if row is None or row.get("error"):
                cells.append("–")
            else:
                mark = " †" if row.get("cached") else ""
                cells.append(f"{_fps(row.get('encode_fps'))} / {_fps(row.get('decode_fps'))}{mark}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if any(row.get("cached") for clip in clips for row in clip.get("lossless", [])):
        lines += ["", "† from the cache: timed in the run that computed it, not in this one."]
    return "\n".join(lines)


def exact_table(results: dict) -> str:
    lines = ["| clip | codec | bytes | exact | frames decoded | max error |", "|---|---|---|---|---|---|"]
    for clip in results["clips"]:
        for row in clip.get("lossless", []):
            if row.get("error"):
                lines.append(f"| {clip['name']} | {row['label']} | – | failed: {row['error']} | – | – |")
                continue
            lines.append(f"| {clip['name']} | {row['label']} | {row['bytes']} | "
                         f"{'yes' if row.get('exact') else '**no**'} | {row.get('frames_decoded')} | "
                         f"{row.get('max_error')} |")
    return "\n".join(lines)


def rate_model_table(results: dict) -> str:
    lines = ["| clip | measured (file) | coded (side + residual) | side | estimate r_side + log2(3)·Σρ_k "
             "| memoryless r_side + Σ[h(ρ_k)+ρ_k] |", "|---|---|---|---|---|---|"]
    any_row = False
    for clip in results["clips"]:
        tri = clip.get("triadic") or {}
        rates = tri.get("rates")
        if not rates:
            continue
        any_row = True
        lines.append(f"| {clip['name']} | {_num(rates.get('measured'))} | {_num(rates.get('coded'))} | "
                     f"{_num(rates.get('side'))} | {_num(rates.get('estimate'))} | "
                     f"{_num(rates.get('memoryless'))} |")
    return "\n".join(lines) if any_row else ""


def plane_table(results: dict) -> str:
    """ρ_k and bits per pixel per plane, per clip and channel."""
    blocks = []
    for clip in results["clips"]:
        rates = (clip.get("triadic") or {}).get("rates")
        if not rates or not rates.get("channels"):
            continue
        lines = [f"**{clip['name']}**", "", "| channel | k | ρ_k | measured bits/px | estimate | memoryless |",
                 "|---|---|---|---|---|---|"]
        for ch in rates["channels"]:
            for p in ch["planes"]:
                lines.append(f"| {ch['channel']} | {p['k']} | {p['rho']:.4f} | {_num(p.get('rate'), 4)} | "
                             f"{p['estimate']:.4f} | {p['memoryless']:.4f} |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def lossy_table(results: dict) -> str:
    lines = ["| clip | codec | setting | bpppf | PSNR all planes (dB) | PSNR Y (dB) | max abs error |",
             "|---|---|---|---|---|---|---|"]
    any_row = False
    for clip in results["clips"]:
        for row in clip.get("lossy", []):
            any_row = True
            if row.get("error"):
                lines.append(f"| {clip['name']} | {row['label']} | {row['param']}={row['value']} | "
                             f"failed: {row['error']} | | | |")
                continue
            psnr = "∞" if row.get("psnr") is None and row.get("max_error") == 0 else _num(row.get("psnr"), 2)
            psnr_y = "∞" if row.get("psnr_y") is None and row.get("max_error") == 0 else _num(row.get("psnr_y"), 2)
            family = FAMILY_LABELS.get(row.get("family"), row["label"])
            lines.append(f"| {clip['name']} | {family} | "
                         f"{row['param']}={row['value']} | {_num(row['bpppf'])} | {psnr} | {psnr_y} | "
                         f"{row.get('max_error')} |")
    return "\n".join(lines) if any_row else ""


def _rd(clip: dict) -> dict | None:
    """The clip's near-lossless summary (recomputed for results written before it existed)."""
    if clip.get("rd"):
        return clip["rd"]
    if any(r.get("family") == "triadic-near" for r in clip.get("lossy", [])):
        return summarise(clip)
    return None


def _pct(value) -> str:
    return "–" if value is None else f"{value:+.1f}%"


def jpegls_table(results: dict) -> str:
    """triadic against JPEG-LS at NEAR = E: rates, their ratio, distortion, the bound check."""
    lines = ["| clip | E = NEAR | triadic bpppf | JPEG-LS bpppf | triadic / JPEG-LS | PSNR triadic / JPEG-LS (dB) "
             "| max error triadic / JPEG-LS | bound held (samples checked) |",
             "|---|---|---|---|---|---|---|---|"]
    any_row = False
    for clip in results["clips"]:
        rd = _rd(clip)
        for row in (rd or {}).get("jpegls", []):
            any_row = True
            ratio = "–" if row["ratio"] is None else f"{row['ratio']:.2f} ({100 * (row['ratio'] - 1):+.0f}%)"
            held = {True: "yes", False: "**no**", None: "–"}[row.get("bound_held")]
            if row.get("samples"):
                held += f" ({row['samples']:,})"
            lines.append(f"| {clip['name']} | {row['near']} | {_num(row['triadic_bpppf'])} | "
                         f"{_num(row['jpegls_bpppf'])} | {ratio} | {_num(row['triadic_psnr'], 2)} / "
                         f"{_num(row['jpegls_psnr'], 2)} | {row['triadic_max_error']} / "
                         f"{'–' if row['jpegls_max_error'] is None else row['jpegls_max_error']} | {held} |")
    return "\n".join(lines) if any_row else ""


def _bd_cell(bd: dict | None) -> str:
    if not bd:
        return "no overlap"
    return (f"{_pct(bd['bd_rate'])} over {bd['psnr_lo']:.2f}–{bd['psnr_hi']:.2f} dB "
            f"({bd['test_points']} triadic / {bd['anchor_points']} other points inside)")


def bd_table(results: dict) -> str:
    """BD-rate of triadic against SVT-AV1 (whole PSNR overlap and above 45 dB) and JPEG-LS."""
    lines = ["| clip | against SVT-AV1, whole overlap | against SVT-AV1, above 45 dB | against JPEG-LS |",
             "|---|---|---|---|"]
    any_row = False
    for clip in results["clips"]:
        rd = _rd(clip)
        if not rd:
            continue
        any_row = True
        lines.append(f"| {clip['name']} | {_bd_cell(rd.get('bd_rate'))} | {_bd_cell(rd.get('bd_rate_high'))} | "
                     f"{_bd_cell(rd.get('bd_rate_jpegls'))} |")
    return "\n".join(lines) if any_row else ""


def matched_table(results: dict) -> str:
    """Each triadic point against SVT-AV1's rate at the same PSNR (interpolated on its curve)."""
    lines = ["| clip | E | PSNR (dB) | triadic bpppf | SVT-AV1 bpppf at that PSNR | triadic / SVT-AV1 |",
             "|---|---|---|---|---|---|"]
    any_row = False
    for clip in results["clips"]:
        for row in (_rd(clip) or {}).get("matched", []):
            any_row = True
            ratio = "outside SVT-AV1's range" if row["ratio"] is None else f"{row['ratio']:.2f}"
            lines.append(f"| {clip['name']} | {row['max_error']} | {_num(row['psnr'], 2)} | "
                         f"{_num(row['bpppf'])} | {_num(row['anchor_bpppf'])} | {ratio} |")
    return "\n".join(lines) if any_row else ""


def versions_block(results: dict) -> str:
    v = results.get("versions", {})
    libs = ", ".join(f"{k} {val}" for k, val in v.get("ffmpeg_libraries", {}).items())
    enc = ", ".join(f"{k} {val}" for k, val in v.get("encoders", {}).items())
    items = [
        f"triadic {v.get('triadic')}" + (f" (git {v['triadic_git']})" if v.get("triadic_git") else ""),
        f"PyAV {v.get('pyav')} (FFmpeg {v.get('ffmpeg')}: {libs})",
        f"encoders: {enc}",
        *(f"{k} bitstream banner: {val}" for k, val in v.get("encoder_banners", {}).items()),
        f"imagecodecs {v.get('imagecodecs')} ({v.get('jpegxl')}, {v.get('jpegls')})",
        f"numpy {v.get('numpy')}, Python {v.get('python')}",
    ]
    return "\n".join(f"- {item}" for item in items)


def markdown(results: dict) -> str:
    """The whole results.md."""
    settings = results.get("settings", {})
    host = results.get("host", {})
    parts = [
        "# triadic benchmark results",
        "",
        f"Run {results.get('created')} on {host.get('platform')} ({host.get('cpu_count')} CPUs); "
        f"peers with {settings.get('threads')} thread(s); triadic "
        f"{', '.join(f'{k}={v}' for k, v in (settings.get('triadic') or {}).items())}."
        + (f" Elapsed {results['elapsed_s']:.0f} s." if results.get("elapsed_s") else ""),
        "",
        "## Lossless rate (bpppf: bits per pixel per frame, chroma included; lower is better)",
        "",
        "In brackets: the codec's rate over triadic's. **not exact** marks a codec whose decoded "
        "frames differ from the input.",
        "",
        lossless_table(results),
        "",
        "## Speed (frames per second, encode / decode, same run and frames)",
        "",
        speed_table(results),
    ]
    rate_model = rate_model_table(results)
    if rate_model:
        parts += ["", "## triadic: measured rate against the rate model (bits per pixel per frame)", "",
                  rate_model, "", plane_table(results)]
    lossy = lossy_table(results)
    if lossy:
        parts += ["", "## Lossy and near-lossless points", "", lossy]
    jpegls = jpegls_table(results)
    if jpegls:
        parts += ["", "## Near-lossless: triadic against JPEG-LS at NEAR = E", "",
                  "Both bound every sample's error by E. The ratio is triadic's rate over JPEG-LS's "
                  "(below 1: triadic is smaller). *bound held*: every sample of every frame of "
                  "triadic's output was compared with the source and is within ±E.", "", jpegls]
    bd = bd_table(results)
    if bd:
        parts += ["", "## BD-rate of triadic against SVT-AV1", "",
                  "Bjøntegaard delta rate (PCHIP of log10 bpppf over PSNR of Y, U and V pooled), over "
                  "the PSNR range where both curves have points; negative: triadic needs fewer bits "
                  "for the same PSNR. The count of measured points inside the range says how much "
                  "of the figure is interpolation.", "", bd, "", matched_table(results)]
    parts += ["", "## Bit-exactness check", "", exact_table(results),
              "", "## Versions", "", versions_block(results)]
    return "\n".join(parts)


DOC_BEGIN = "<!-- bench-results:begin -->"
DOC_END = "<!-- bench-results:end -->"


def update_doc(doc_path: str, results: dict) -> None:
    """Replace the part of ``doc_path`` between the bench-results markers with this run's tables."""
    with open(doc_path, encoding="utf-8") as f:
        text = f.read()
    if DOC_BEGIN not in text or DOC_END not in text:
        raise SystemExit(f"{doc_path}: no {DOC_BEGIN} ... {DOC_END} markers")
    body = markdown(results).split("\n", 1)[1].replace("\n## ", "\n### ")
    head, rest = text.split(DOC_BEGIN, 1)
    _, tail = rest.split(DOC_END, 1)
    with open(doc_path, "w", encoding="utf-8") as f:
        f.write(f"{head}{DOC_BEGIN}\n{body.strip()}\n{DOC_END}{tail}")


def main(argv=None) -> int:
    """Print results.md for a run, or write its tables into a document.

    ``python -m triadic.bench.report DIR [--doc docs/benchmarks.md]``
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m triadic.bench.report",
                                     description="Markdown tables of a benchmark run (from results.json).")
    parser.add_argument("dir", nargs="?", default="bench-out",
                        help="folder holding results.json, or the file itself (default bench-out)")
    parser.add_argument("--doc", default=None,
                        help="write the tables between the bench-results markers of this file instead")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    path = args.dir if args.dir.endswith(".json") else f"{args.dir.rstrip('/')}/results.json"
    with open(path, encoding="utf-8") as f:
        results = json.load(f)
    if args.doc:
        update_doc(args.doc, results)
    else:
        print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
