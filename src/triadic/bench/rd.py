"""Rate-distortion summaries of a clip's lossy rows: Bjøntegaard delta rate and matched-NEAR ratios.

The Bjøntegaard delta rate (VCEG-M33) compares two rate-distortion curves by the average
horizontal gap between them: each curve's log10(rate) is interpolated as a function of PSNR, both
are integrated over the PSNR range where the curves overlap, and

    BD-rate = 10 ^ (mean over the range of log10 r_test(P) - log10 r_anchor(P)) - 1.

Negative means the test codec needs fewer bits than the anchor for the same PSNR. The interpolation
is piecewise cubic Hermite (PCHIP, as in the JCT-VC common test conditions since JCTVC-L1100)
rather than VCEG-M33's single cubic polynomial, which overshoots with few or uneven points.

Only points on the operational curve are used: a point that needs at least as many bits as another
for a lower or equal PSNR is dropped (it is dominated), so PSNR grows strictly with rate.
"""

from __future__ import annotations

import math

import numpy as np

#: The PSNR above which the design asks triadic to beat SVT-AV1 (DESIGN.md §4).
HIGH_PSNR = 45.0

#: Overlaps narrower than this (dB) are not worth a BD figure.
MIN_SPAN_DB = 0.05


def rd_curve(points) -> tuple[np.ndarray, np.ndarray]:
    """(rates, psnrs) of the operational curve through ``points`` [(rate, psnr), ...].

    Points without a finite positive rate or a finite PSNR are ignored; dominated points are
    dropped; the result is sorted with both rate and PSNR strictly increasing.
    """
    usable = sorted((float(r), float(p)) for r, p in points
                    if r is not None and p is not None and math.isfinite(r) and math.isfinite(p) and r > 0)
    rates, psnrs = [], []
    for r, p in usable:  # by rate, then PSNR
        if psnrs and p <= psnrs[-1]:
            continue  # no better than a cheaper point
        if rates and r == rates[-1]:
            rates.pop()
            psnrs.pop()
        rates.append(r)
        psnrs.append(p)
    return np.array(rates), np.array(psnrs)


def _log_rate(rates: np.ndarray, psnrs: np.ndarray):
    from scipy.interpolate import PchipInterpolator

    return PchipInterpolator(psnrs, np.log10(rates), extrapolate=False)


def rate_at(points, psnr: float) -> float | None:
    """The rate the curve through ``points`` needs for ``psnr`` (None outside its PSNR range)."""
    rates, psnrs = rd_curve(points)
    if len(rates) < 2 or not psnrs[0] <= psnr <= psnrs[-1]:
        return None
    return float(10 ** _log_rate(rates, psnrs)(psnr))


def bd_rate(anchor, test, lo: float | None = None, hi: float | None = None) -> dict | None:
    """BD-rate of ``test`` against ``anchor`` (each [(rate, psnr), ...]), in percent.

    The range is where both curves have PSNRs, cut to [lo, hi] when given. Returns None when a
    curve has fewer than two points or the range is narrower than MIN_SPAN_DB; otherwise
    ``bd_rate`` (percent), ``psnr_lo`` and ``psnr_hi`` (the range), and how many measured points
    of each curve lie inside it (``anchor_points``, ``test_points``; the rest is interpolation).
    """
    ra, pa = rd_curve(anchor)
    rt, pt = rd_curve(test)
    if len(ra) < 2 or len(rt) < 2:
        return None
    low = max(pa[0], pt[0], -math.inf if lo is None else lo)
    high = min(pa[-1], pt[-1], math.inf if hi is None else hi)
    if not high - low >= MIN_SPAN_DB:
        return None
    ia = _log_rate(ra, pa).integrate(low, high)
    it = _log_rate(rt, pt).integrate(low, high)
    mean = (it - ia) / (high - low)
    return {"bd_rate": float(100.0 * (10 ** mean - 1.0)), "psnr_lo": float(low), "psnr_hi": float(high),
            "anchor_points": int(np.sum((pa >= low) & (pa <= high))),
            "test_points": int(np.sum((pt >= low) & (pt <= high)))}


# --------------------------------------------------------------------------------------------------
# A clip's summary
# --------------------------------------------------------------------------------------------------

def _family(clip: dict, family: str) -> list[dict]:
    return [r for r in clip.get("lossy", []) if r.get("family") == family and not r.get("error")
            and r.get("bpppf") is not None]


def _points(rows: list[dict]) -> list[tuple[float, float]]:
    return [(r["bpppf"], r["psnr"]) for r in rows if r.get("psnr") is not None]


def summarise(clip: dict, anchor: str = "svtav1-crf", test: str = "triadic-near") -> dict:
    """The near-lossless summary of one clip entry of results.json (its ``rd`` field).

    - ``bd_rate``: triadic against SVT-AV1 over the whole PSNR overlap; ``bd_rate_high``: over
      the part of it above HIGH_PSNR dB; ``bd_rate_jpegls``: triadic against JPEG-LS;
    - ``matched``: for every triadic point, SVT-AV1's rate at the same PSNR (interpolated on its
      curve; None outside it) and the ratio triadic / SVT-AV1 (below 1: triadic needs fewer bits);
    - ``jpegls``: for every E, triadic's and JPEG-LS's rate at NEAR = E and their ratio.
    """
    av1 = _family(clip, anchor)
    tri = _family(clip, test)
    jls = {r["value"]: r for r in _family(clip, "jpegls-near")}
    av1_points, tri_points = _points(av1), _points(tri)
    matched = []
    for row in sorted(tri, key=lambda r: r["value"]):
        psnr = row.get("psnr")
        other = rate_at(av1_points, psnr) if psnr is not None else None
        matched.append({"max_error": row["value"], "psnr": psnr, "bpppf": row["bpppf"],
                        "anchor_bpppf": other, "ratio": row["bpppf"] / other if other else None})
    jpegls = []
    for row in sorted(tri, key=lambda r: r["value"]):
        ref = jls.get(row["value"])
        jpegls.append({
            "near": row["value"], "triadic_bpppf": row["bpppf"],
            "jpegls_bpppf": ref["bpppf"] if ref else None,
            "ratio": row["bpppf"] / ref["bpppf"] if ref and ref["bpppf"] else None,
            "triadic_psnr": row.get("psnr"), "jpegls_psnr": ref.get("psnr") if ref else None,
            "triadic_max_error": row.get("max_error"), "jpegls_max_error": ref.get("max_error") if ref else None,
            "bound_held": row.get("bound_held"), "samples": row.get("samples"),
        })
    return {
        "anchor": anchor, "test": test, "high_psnr": HIGH_PSNR,
        "bd_rate": bd_rate(av1_points, tri_points),
        "bd_rate_high": bd_rate(av1_points, tri_points, lo=HIGH_PSNR),
        "bd_rate_jpegls": bd_rate(_points(list(jls.values())), tri_points),
        "matched": matched,
        "jpegls": jpegls,
    }
