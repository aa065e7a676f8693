"""The exceptions triadic raises. Only these escape the public API."""


class TriadicError(Exception):
    """Base class of every error triadic raises on purpose."""


class InputError(TriadicError):
    """The input (a video, an image folder, an array, an option) cannot be used."""


class UnsupportedFormatError(InputError):
    """The input's pixel format is not one triadic codes."""


class CorruptStreamError(TriadicError):
    """A .tri stream is damaged, truncated or not a .tri stream at all."""


class VersionError(CorruptStreamError):
    """A .tri stream was written by a newer, incompatible version of triadic."""
