"""The rate model of DESIGN.md §1.7, computed from what ``triadic.info`` reports.

All rates are in bits per pixel of the frame (the unit of bpppf): a channel's per-sample figures are
weighted by its samples per frame over width × height, so a 4:2:0 chroma channel weighs 1/4.

- measured: the file's bits (container included) over width × height × frames;
- estimate (the formalism's): r_side + log2(3) · Σ_k ρ_k;
- memoryless: r_side + Σ_k [h(ρ_k) + ρ_k], what a coder without context would pay for magnitude
  planes with P(nonzero) = ρ_k plus one sign bit per nonzero digit.
"""

from __future__ import annotations

from triadic.planes import plane_rate_models


def channel_index(channel, order: list) -> int:
    """Index of a channel given as an int (itself) or a name ("Y", "U", "Co"...: first-seen order).

    ``triadic.info`` lists channels in plane order, so first-seen order is plane order.
    """
    if isinstance(channel, int):
        return channel
    if channel not in order:
        order.append(channel)
    return order.index(channel)


def rate_breakdown(info: dict, samples_per_frame: list[int], width: int, height: int,
                   frames: int, file_bytes: int | None = None) -> dict:
    """Per-channel, per-plane ρ_k and bits, and the three rates side by side.

    ``info`` is ``triadic.info(path)``; ``samples_per_frame[c]`` is the sample count of channel c in
    one frame (from the frames' plane shapes; a plane entry's own "samples", the clip total, wins).
    """
    pixels = width * height * frames
    frame_pixels = width * height
    side_bits = float(info.get("side_bits") or 0.0)
    residual_bits = info.get("residual_bits")
    r_side = side_bits / pixels

    order: list = []
    channels: dict[int, dict] = {}
    for entry in info.get("planes") or []:
        name = entry.get("channel", 0)
        c = channel_index(name, order)
        if entry.get("samples"):
            n = entry["samples"] / frames
        else:
            n = samples_per_frame[c] if c < len(samples_per_frame) else samples_per_frame[-1]
        ch = channels.setdefault(c, {
            "channel": name if isinstance(name, str) else ("Y", "U", "V")[c] if c < 3 else str(c),
            "samples_per_frame": n,
            "weight": n / frame_pixels,
            "planes": [],
        })
        rho = float(entry.get("rho", 0.0))
        bits = entry.get("bits")
        ch["planes"].append({
            "k": int(entry.get("k", len(ch["planes"]))),
            "rho": rho,
            "bits": None if bits is None else float(bits),
            # bits per pixel of the frame spent on this plane (measured), and what the two models say
            "rate": None if bits is None else float(bits) / pixels,
            "estimate": ch["weight"] * plane_rate_models(rho)[0],
            "memoryless": ch["weight"] * plane_rate_models(rho)[1],
        })

    out_channels = []
    estimate = memoryless = r_side
    plane_bits_known = True
    plane_bits = 0.0
    for c in sorted(channels):
        ch = channels[c]
        ch["planes"].sort(key=lambda p: p["k"])
        ch["estimate"] = sum(p["estimate"] for p in ch["planes"])
        ch["memoryless"] = sum(p["memoryless"] for p in ch["planes"])
        if all(p["rate"] is not None for p in ch["planes"]):
            ch["rate"] = sum(p["rate"] for p in ch["planes"])
            plane_bits += sum(p["bits"] for p in ch["planes"])
        else:
            ch["rate"] = None
            plane_bits_known = False
        estimate += ch["estimate"]
        memoryless += ch["memoryless"]
        out_channels.append(ch)

    if residual_bits is None and plane_bits_known and out_channels:
        residual_bits = plane_bits
    coded = None if residual_bits is None else (side_bits + float(residual_bits)) / pixels
    return {
        "side": r_side,
        "residual": None if residual_bits is None else float(residual_bits) / pixels,
        # measured: whole file; coded: side + residual streams only (no headers, index, CRCs)
        "measured": None if file_bytes is None else 8.0 * file_bytes / pixels,
        "coded": coded,
        "estimate": estimate,
        "memoryless": memoryless,
        "channels": out_channels,
    }
