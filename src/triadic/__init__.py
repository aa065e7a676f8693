"""triadic: lossless and near-lossless video compression on balanced-ternary residuals."""

from .errors import CorruptStreamError, InputError, TriadicError, UnsupportedFormatError, VersionError
from .params import Frame, PixelFormat, pixel_format

__version__ = "0.1.0"
