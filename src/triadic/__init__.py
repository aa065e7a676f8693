"""triadic: lossless and near-lossless video compression on balanced-ternary residuals.

    import triadic
    triadic.encode("clip.mp4", "clip.tri")          # any video, image folder, array or Frames
    for frame in triadic.decode("clip.tri"): ...    # Frame: .planes (numpy), .pix_fmt
    triadic.info("clip.tri")                        # header, sizes, rho_k and bits per plane
    triadic.check(open("clip.tri", "rb").read(16))  # is this a .tri stream?
"""

from .codec import analyse, check, decode, encode, info
from .errors import CorruptStreamError, InputError, TriadicError, UnsupportedFormatError, VersionError
from .io import open_source as read_frames
from .io import sample_clip
from .params import Frame, PixelFormat, pixel_format

__version__ = "0.5.0"

__all__ = [
    "encode", "decode", "info", "check", "analyse", "read_frames", "sample_clip",
    "Frame", "PixelFormat", "pixel_format",
    "TriadicError", "InputError", "UnsupportedFormatError", "CorruptStreamError", "VersionError",
]
