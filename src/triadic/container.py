"""The .tri container: a versioned, self-describing file of CRC-checked frame chunks.

Layout (all integers little-endian; docs/bitstream.md is the full specification)::

    file    = header  chunk*  index  trailer
    header  = MAGIC(8) major:u16 minor:u16 length:u32  fields(length bytes)  crc:u32
    chunk   = length:u32 flags:u8 payload(length bytes) crc:u32      crc over length, flags, payload
    index   = 0xFFFFFFFF "TRIX" count:u32 (offset:u64 flags:u8)*count crc:u32
    trailer = "TRIEND\\0\\0" index_offset:u64

The header fields are described once, in :data:`FIELDS`; that table drives packing, unpacking,
validation and the field table of the documentation. The codec hands this module opaque frame
payloads; nothing here knows what they contain.

Reading follows RFC 9043's security considerations: every length, count, offset and dimension read
from a file is checked against the bytes that remain and the limits in :mod:`triadic.params`
before anything is read or allocated, and only :class:`CorruptStreamError` (or its subclass
:class:`VersionError`) and :class:`InputError` escape.
"""

from __future__ import annotations

import operator
import os
import struct
import zlib
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Iterator

import numpy as np

from .errors import CorruptStreamError, InputError, TriadicError, VersionError
from .params import MAX_DIMENSION, MAX_ERRORS, MAX_FRAMES, MAX_PIXELS, StreamHeader, pixel_format

__all__ = [
    "MAGIC",
    "VERSION_MAJOR",
    "VERSION_MINOR",
    "FIELDS",
    "Field",
    "check",
    "ContainerWriter",
    "ContainerReader",
]

# --------------------------------------------------------------------------------------------------
# Constants of the format
# --------------------------------------------------------------------------------------------------

#: PNG-style signature: a high-bit byte (catches 7-bit transfers), the name, CR LF (catches
#: CRLF -> LF conversion), ^Z (stops DOS `type`), LF (catches LF -> CRLF conversion).
MAGIC = b"\x89TRI\r\n\x1a\n"

#: A decoder rejects a file whose major version it does not know ...
VERSION_MAJOR = 5
#: ... and reads a file with a higher minor version, ignoring header bytes it does not know.
VERSION_MINOR = 0
#: Earlier major versions a triadic release wrote, and which release reads them.
OLDER_VERSIONS = {1: "read by triadic 0.1", 2: "read by triadic 0.2", 3: "read by triadic 0.3",
                  4: "read by triadic 0.4"}

#: Header fields may grow in later minor versions, but never past this (a sanity bound on reads).
MAX_HEADER_LENGTH = 1 << 16
#: Longest pixel format name in the header.
MAX_PIX_FMT_LENGTH = 32

#: Chunk flag bit 0: the frame starts a closed segment (a keyframe; random access point).
FLAG_KEYFRAME = 0x01
#: Every other flag bit is reserved, written as 0 and rejected when set.
FLAGS_RESERVED = 0xFF & ~FLAG_KEYFRAME

#: A frame chunk length of 0xFFFFFFFF is not a frame: it marks the index chunk.
INDEX_MARKER = 0xFFFFFFFF
INDEX_TAG = b"TRIX"
TRAILER_TAG = b"TRIEND\x00\x00"
#: Largest frame payload (the index marker is the one length value a frame cannot have).
MAX_PAYLOAD = INDEX_MARKER - 1

#: Colour transform codes (header field colour_transform); other values are reserved.
COLOUR_TRANSFORMS = {"none": 0, "ycocg-r": 1}

_PREFIX = struct.Struct("<8sHHI")  # magic, major, minor, header length
_U32 = struct.Struct("<I")
_CHUNK_HEAD = struct.Struct("<IB")  # length, flags
_INDEX_HEAD = struct.Struct("<I4sI")  # marker, tag, count
_INDEX_ENTRY = struct.Struct("<QB")  # offset, flags
_TRAILER = struct.Struct("<8sQ")  # tag, index offset
_INDEX_DTYPE = np.dtype([("offset", "<u8"), ("flags", "u1")])  # packed, itemsize 9

_CRC_SIZE = _U32.size
_INDEX_MIN_SIZE = _INDEX_HEAD.size + _CRC_SIZE  # an index of zero frames
_BLOCK = 1 << 16  # read size when checksumming long regions
_INDEX_SPILL = 1 << 20  # bytes of index entries the writer keeps in memory before spilling to disk
_SALVAGE_BUDGET = 4  # salvage checksums at most this many times the file size while resynchronising

assert _PREFIX.size == 16 and _CHUNK_HEAD.size == 5 and _INDEX_HEAD.size == 12
assert _INDEX_ENTRY.size == _INDEX_DTYPE.itemsize == 9 and _TRAILER.size == 16


# --------------------------------------------------------------------------------------------------
# The header field table
# --------------------------------------------------------------------------------------------------

_INT_TYPES = {"u8": struct.Struct("<B"), "u16": struct.Struct("<H"), "u32": struct.Struct("<I")}


@dataclass(frozen=True)
class Field:
    """One header field: how it is stored, what it means, which values are allowed.

    ``type`` is ``u8``/``u16``/``u32`` or ``str8`` (a u8 byte count followed by that many ASCII
    bytes). ``since_minor`` is the minor version that introduced the field; a file with a lower
    minor version does not hold it and reads as ``default``. ``derive``, when set, computes the
    field from the others: the writer stores the derived value and the reader insists on it, so
    redundant self-description (bit depth, colour transform) can never contradict the format.
    """

    name: str
    type: str
    meaning: str
    allowed: str
    ok: Callable[[Any], bool]
    since_minor: int = 0
    default: Any = None
    derive: Callable[[dict], Any] | None = None


def _known_format(name: str) -> bool:
    try:
        pixel_format(name)
    except TriadicError:
        return False
    return True


def _pix_fmt_ok(name: Any) -> bool:
    return (
        isinstance(name, str)
        and 1 <= len(name) <= MAX_PIX_FMT_LENGTH
        and name.isascii()
        and _known_format(name)
    )


FIELDS: tuple[Field, ...] = (
    Field("width", "u32", "Frame width in samples (luma / first plane).",
          f"1 to {MAX_DIMENSION}; width x height at most {MAX_PIXELS}",
          lambda v: 1 <= v <= MAX_DIMENSION),
    Field("height", "u32", "Frame height in samples (luma / first plane).",
          f"1 to {MAX_DIMENSION}; width x height at most {MAX_PIXELS}",
          lambda v: 1 <= v <= MAX_DIMENSION),
    Field("pix_fmt", "str8", "Pixel format name, as FFmpeg spells it (e.g. yuv420p10le).",
          f"1 to {MAX_PIX_FMT_LENGTH} ASCII bytes naming a format triadic supports",
          _pix_fmt_ok),
    Field("bit_depth", "u8", "Bits per sample; redundant with pix_fmt and checked against it.",
          "1 to 16, equal to the bit depth of pix_fmt",
          lambda v: 1 <= v <= 16,
          derive=lambda values: pixel_format(values["pix_fmt"]).bit_depth),
    Field("colour_transform", "u8",
          "Reversible colour transform applied before prediction; redundant with pix_fmt.",
          "0 = none, 1 = YCoCg-R (rgb family); 2 to 255 reserved; must match pix_fmt",
          lambda v: v in COLOUR_TRANSFORMS.values(),
          derive=lambda values: COLOUR_TRANSFORMS[pixel_format(values["pix_fmt"]).colour]),
    Field("frame_rate_num", "u32", "Frame rate numerator (frames per second = num / den).",
          "1 to 4294967295", lambda v: v >= 1),
    Field("frame_rate_den", "u32", "Frame rate denominator.",
          "1 to 4294967295", lambda v: v >= 1),
    Field("frame_count", "u32",
          "Number of frame chunks. Written as 0 while encoding, patched when the file is closed.",
          f"0 to {MAX_FRAMES}; must equal the chunks present and the index count",
          lambda v: 0 <= v <= MAX_FRAMES),
    Field("keyint", "u32", "Nominal distance between keyframes (segment length), in frames.",
          f"1 to {MAX_FRAMES}", lambda v: 1 <= v <= MAX_FRAMES),
    Field("max_error", "u32", "Per-sample error bound E; 0 is lossless.",
          ", ".join(map(str, MAX_ERRORS)) + " (E = (3^j - 1) / 2)",
          lambda v: v in MAX_ERRORS),
    Field("block_size", "u16", "Largest prediction block (root of the partition quadtree).",
          "8, 16, 32 or 64", lambda v: v in (8, 16, 32, 64)),
)

_FIELD_NAMES = tuple(f.name for f in FIELDS)


def _header_values(header: StreamHeader, frame_count: int | None = None) -> dict:
    """The field values of ``header`` (derived fields filled in); InputError if it is invalid."""
    if not isinstance(header, StreamHeader):
        raise InputError(f"expected a StreamHeader, got {type(header).__name__}")
    try:
        rate = Fraction(header.frame_rate)
        values = {
            "width": operator.index(header.width),
            "height": operator.index(header.height),
            "pix_fmt": header.pix_fmt,
            "frame_rate_num": rate.numerator,
            "frame_rate_den": rate.denominator,
            "frame_count": operator.index(header.frame_count if frame_count is None else frame_count),
            "keyint": operator.index(header.keyint),
            "max_error": operator.index(header.max_error),
            "block_size": operator.index(header.block_size),
        }
    except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
        raise InputError(f"invalid stream header: {exc}") from None
    if _pix_fmt_ok(values["pix_fmt"]):
        values["pix_fmt"] = pixel_format(values["pix_fmt"]).name  # files hold the canonical name
    for f in FIELDS:
        if f.derive is not None:
            values[f.name] = f.derive(values) if _pix_fmt_ok(values["pix_fmt"]) else None
    _check_values(values, InputError)
    return values


def _check_values(values: dict, error: type[TriadicError]) -> None:
    """Raise ``error`` unless every field (and every relation between fields) is allowed."""
    for f in FIELDS:
        value = values[f.name]
        if f.type == "str8":
            good = _pix_fmt_ok(value) if f.name == "pix_fmt" else isinstance(value, str)
        else:
            limit = 1 << (8 * _INT_TYPES[f.type].size)
            good = isinstance(value, int) and 0 <= value < limit and f.ok(value)
        if not good:
            raise error(f"header field {f.name} = {value!r} is not allowed ({f.allowed})")
    pixels = values["width"] * values["height"]
    if pixels > MAX_PIXELS:
        raise error(
            f"frame size {values['width']}x{values['height']} has {pixels} pixels; "
            f"the limit is {MAX_PIXELS}"
        )
    for f in FIELDS:
        if f.derive is not None and values[f.name] != f.derive(values):
            raise error(
                f"header field {f.name} = {values[f.name]} contradicts pix_fmt "
                f"{values['pix_fmt']!r} (which implies {f.derive(values)})"
            )


def _pack_fields(values: dict) -> bytes:
    out = bytearray()
    for f in FIELDS:
        value = values[f.name]
        if f.type == "str8":
            raw = value.encode("ascii")
            out += _INT_TYPES["u8"].pack(len(raw)) + raw
        else:
            out += _INT_TYPES[f.type].pack(value)
    return bytes(out)


def _unpack_fields(body: bytes, minor: int) -> tuple[dict, int]:
    """Field values from the header body of a file with minor version ``minor``; bytes used."""
    values: dict = {}
    pos = 0

    def take(n: int, name: str) -> bytes:
        nonlocal pos
        if pos + n > len(body):
            raise CorruptStreamError(
                f"the header is too short: it ends inside field {name} "
                f"({len(body)} header bytes)"
            )
        pos += n
        return body[pos - n:pos]

    for f in FIELDS:
        if f.since_minor > minor:
            values[f.name] = f.default
        elif f.type == "str8":
            (size,) = _INT_TYPES["u8"].unpack(take(1, f.name))
            raw = take(size, f.name)
            try:
                values[f.name] = raw.decode("ascii")
            except UnicodeDecodeError:
                raise CorruptStreamError(f"header field {f.name} is not ASCII: {raw!r}") from None
        else:
            codec = _INT_TYPES[f.type]
            (values[f.name],) = codec.unpack(take(codec.size, f.name))
    return values, pos


def _pack_header(values: dict, major: int = VERSION_MAJOR, minor: int = VERSION_MINOR,
                 extra: bytes = b"") -> bytes:
    """The complete header: prefix, fields (plus ``extra`` bytes a later minor version adds), CRC."""
    body = _pack_fields(values) + extra
    head = _PREFIX.pack(MAGIC, major, minor, len(body)) + body
    return head + _U32.pack(zlib.crc32(head))


def _header_from_values(values: dict) -> StreamHeader:
    return StreamHeader(
        width=values["width"],
        height=values["height"],
        pix_fmt=values["pix_fmt"],
        frame_rate=Fraction(values["frame_rate_num"], values["frame_rate_den"]),
        frame_count=values["frame_count"],
        keyint=values["keyint"],
        max_error=values["max_error"],
        block_size=values["block_size"],
    )


def check(data: Any) -> bool:
    """True if ``data`` (bytes-like) starts with the .tri signature. A sniff, not a validation."""
    try:
        view = memoryview(data)
    except TypeError:
        return False
    if not view.contiguous:
        return False
    return bytes(view.cast("B")[: len(MAGIC)]) == MAGIC


def _signature_problem(start: bytes) -> str:
    """Why ``start`` (the first bytes of a file) is not the .tri signature, as readable as we can."""
    if not start:
        return "not a .tri file (it is empty)"
    if len(start) < len(MAGIC) and MAGIC.startswith(start):
        return f"the file is truncated inside its signature ({len(start)} bytes)"
    if start.startswith(b"\x89TRI\n") or start.startswith(b"\x89TRI\r\r\n"):
        return "not a .tri file: its signature went through a text-mode line-ending conversion"
    if start.startswith(b"\x09TRI\r\n"):
        return "not a .tri file: its signature lost its high bit (a 7-bit transfer?)"
    return f"not a .tri file (it starts with {start[:len(MAGIC)]!r}, expected {MAGIC!r})"


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------

def _create_exclusive(directory: str, stem: str, mode: str = "xb") -> tuple[str, Any]:
    """Create a new file ``stem`` (or ``stem-1``, ``stem-2`` ...) in ``directory``; never clobber."""
    for attempt in range(1000):
        path = os.path.join(directory, stem if attempt == 0 else f"{stem}-{attempt}")
        try:
            return path, open(path, mode)
        except FileExistsError:
            continue
    raise InputError(f"cannot create a temporary file {stem!r} in {directory}")


class ContainerWriter:
    """Writes a .tri file: header now, one chunk per :meth:`write_frame`, index on :meth:`close`.

    Output goes to a hidden temporary file in the target's directory, which :meth:`close` renames
    onto ``path`` once it is complete and synced, so ``path`` never holds a partial file.
    :meth:`abort` (or leaving the ``with`` block by an exception) deletes the temporary file and
    leaves ``path`` as it was.
    """

    def __init__(self, path: str | os.PathLike, header: StreamHeader) -> None:
        try:
            self.path = os.fspath(path)
        except TypeError:
            raise InputError(f"output path must be a path, got {type(path).__name__}") from None
        self._values = _header_values(header, frame_count=0)
        self.header = header.replace(pix_fmt=self._values["pix_fmt"], frame_count=0)
        directory, name = os.path.split(os.path.abspath(self.path))
        if not name or os.path.isdir(self.path):
            raise InputError(f"cannot write {self.path}: it is a directory")
        if not os.path.isdir(directory):
            raise InputError(f"cannot write {self.path}: directory {directory} does not exist")
        self._directory, self._name = directory, name
        self.frame_count = 0
        self.bytes_written = 0
        self._entries = bytearray()  # index entries not yet spilled
        self._spill: Any = None
        self._spill_path: str | None = None
        self._state = "open"
        try:
            self._tmp_path, self._file = _create_exclusive(directory, f".{name}.tmp-{os.getpid()}")
        except OSError as exc:
            raise InputError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self._head = _pack_header(self._values)
        self._write(self._head)

    def __del__(self) -> None:
        # A writer dropped without close() never produced a complete file: remove its temp file.
        try:
            if getattr(self, "_state", None) == "open":
                self.abort()
        except Exception:
            pass

    # context manager -------------------------------------------------------------------------

    def __enter__(self) -> "ContainerWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            self.abort()
        else:
            self.close()
        return False

    # writing ---------------------------------------------------------------------------------

    def _fail(self, exc: OSError) -> InputError:
        self.abort()
        return InputError(f"cannot write {self.path}: {exc.strerror or exc}")

    def _write(self, data) -> None:
        try:
            self._file.write(data)
        except OSError as exc:
            raise self._fail(exc) from None
        self.bytes_written += len(data)

    def _require_open(self) -> None:
        if self._state != "open":
            raise InputError(f"the writer for {self.path} is {self._state}")

    def write_frame(self, payload, keyframe: bool) -> None:
        """Append one frame chunk. The first frame must be a keyframe (a stream starts a segment)."""
        self._require_open()
        try:
            view = memoryview(payload)
        except TypeError:
            raise InputError(f"frame payload must be bytes, got {type(payload).__name__}") from None
        view = view.cast("B") if view.contiguous else memoryview(view.tobytes())
        if len(view) > MAX_PAYLOAD:
            raise InputError(f"frame payload of {len(view)} bytes exceeds {MAX_PAYLOAD}")
        if self.frame_count >= MAX_FRAMES:
            raise InputError(f"a stream holds at most {MAX_FRAMES} frames")
        if self.frame_count == 0 and not keyframe:
            raise InputError("the first frame of a stream must be a keyframe")
        flags = FLAG_KEYFRAME if keyframe else 0
        head = _CHUNK_HEAD.pack(len(view), flags)
        crc = zlib.crc32(view, zlib.crc32(head))
        offset = self.bytes_written
        self._write(head)
        self._write(view)
        self._write(_U32.pack(crc))
        self._entries += _INDEX_ENTRY.pack(offset, flags)
        if len(self._entries) >= _INDEX_SPILL:
            self._spill_entries()
        self.frame_count += 1

    def _spill_entries(self) -> None:
        """Move the in-memory index entries to a side file, so memory does not grow with length."""
        try:
            if self._spill is None:
                self._spill_path, self._spill = _create_exclusive(
                    self._directory, f".{self._name}.idx-tmp-{os.getpid()}", "x+b"
                )
            self._spill.write(self._entries)
        except OSError as exc:
            raise self._fail(exc) from None
        self._entries.clear()

    def close(self) -> None:
        """Write index and trailer, patch frame_count, sync, and rename onto the target path."""
        if self._state == "closed":
            return
        self._require_open()
        try:
            index_offset = self.bytes_written
            head = _INDEX_HEAD.pack(INDEX_MARKER, INDEX_TAG, self.frame_count)
            crc = zlib.crc32(head)
            self._write(head)
            if self._spill is not None:
                self._spill.flush()
                self._spill.seek(0)
                while block := self._spill.read(_BLOCK):
                    crc = zlib.crc32(block, crc)
                    self._write(block)
            crc = zlib.crc32(self._entries, crc)
            self._write(self._entries)
            self._write(_U32.pack(crc))
            self._write(_TRAILER.pack(TRAILER_TAG, index_offset))
            values = dict(self._values, frame_count=self.frame_count)
            patched = _pack_header(values)
            assert len(patched) == len(self._head)  # frame_count is fixed-width
            self._file.seek(0)
            self._file.write(patched)
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._tmp_path, self.path)
        except OSError as exc:
            raise self._fail(exc) from None
        except BaseException:
            self.abort()
            raise
        self._state = "closed"
        self._drop_spill()
        self.header = self.header.replace(frame_count=self.frame_count)
        self._sync_directory()

    def _sync_directory(self) -> None:
        """Make the rename durable where the platform allows it (POSIX); best effort."""
        try:
            fd = os.open(self._directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def _drop_spill(self) -> None:
        if self._spill is not None:
            try:
                self._spill.close()
                os.remove(self._spill_path)
            except OSError:
                pass
            self._spill = None

    def abort(self) -> None:
        """Delete the temporary file; the target path is left as it was. Safe to call twice."""
        if self._state != "open":
            return
        self._state = "aborted"
        try:
            self._file.close()
        except OSError:
            pass
        try:
            os.remove(self._tmp_path)
        except OSError:
            pass
        self._drop_spill()


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------

class _Source:
    """Bounded random access to a file or a bytes-like object; reads never pass the end."""

    def __init__(self, source: Any) -> None:
        self._file = None
        self._view = None
        if isinstance(source, (str, os.PathLike)):
            self.name = os.fspath(source)
            try:
                self._file = open(source, "rb")
                self.size = os.fstat(self._file.fileno()).st_size
            except FileNotFoundError:
                raise InputError(f"{self.name}: no such file") from None
            except IsADirectoryError:
                raise InputError(f"{self.name} is a directory, not a .tri file") from None
            except OSError as exc:
                if self._file is not None:
                    self._file.close()
                raise InputError(f"cannot read {self.name}: {exc.strerror or exc}") from None
        else:
            try:
                view = memoryview(source)
            except TypeError:
                raise InputError(
                    f"expected a path or bytes, got {type(source).__name__}"
                ) from None
            self._view = (view if view.contiguous else memoryview(view.tobytes())).cast("B")
            self.name = "the stream"
            self.size = len(self._view)
        self.closed = False

    def read(self, offset: int, n: int, what: str) -> bytes:
        """Exactly ``n`` bytes at ``offset``, or CorruptStreamError naming ``what`` as truncated."""
        if self.closed:
            raise InputError(f"the reader for {self.name} is closed")
        if offset < 0 or n < 0 or offset + n > self.size:
            raise CorruptStreamError(f"{what} is truncated (the file ends at byte {self.size})")
        if self._view is not None:
            return bytes(self._view[offset:offset + n])
        try:
            self._file.seek(offset)
            data = self._file.read(n)
        except OSError as exc:
            raise InputError(f"cannot read {self.name}: {exc.strerror or exc}") from None
        if len(data) != n:  # the file shrank under us
            raise CorruptStreamError(f"{what} is truncated (the file ends early)")
        return data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._file is not None:
                self._file.close()
            self._view = None


class ContainerReader:
    """Reads a .tri file from a path or bytes.

    The constructor validates the signature, the version, the header CRC and every header field.
    :meth:`frames` streams from the start without the index; :meth:`index` and :meth:`frames_from`
    use the index at the end. Damage anywhere raises :class:`CorruptStreamError`.
    """

    def __init__(self, source: Any) -> None:
        self._src = _Source(source)
        try:
            self._read_header()
        except BaseException:
            self._src.close()
            raise
        self._index: list[tuple[int, bool]] | None = None
        self._index_offset: int | None = None

    @property
    def file_size(self) -> int:
        return self._src.size

    def __enter__(self) -> "ContainerReader":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.close()
        return False

    def close(self) -> None:
        self._src.close()

    # header ----------------------------------------------------------------------------------

    def _read_header(self) -> None:
        src = self._src
        start = src.read(0, min(src.size, len(MAGIC)), "the signature")
        if start != MAGIC:
            raise CorruptStreamError(_signature_problem(start))
        if src.size < _PREFIX.size:
            raise CorruptStreamError(
                f"the file is truncated inside its header ({src.size} bytes)"
            )
        _, major, minor, length = _PREFIX.unpack(src.read(0, _PREFIX.size, "the header"))
        if major != VERSION_MAJOR:
            raise VersionError(self._version_problem(major, minor, length))
        if length > MAX_HEADER_LENGTH:
            raise CorruptStreamError(
                f"the header claims {length} bytes, more than the {MAX_HEADER_LENGTH} allowed "
                "(damaged header)"
            )
        end = _PREFIX.size + length
        if end + _CRC_SIZE > src.size:
            raise CorruptStreamError(
                f"the file is truncated inside its header: the header needs {end + _CRC_SIZE} "
                f"bytes, the file has {src.size}"
            )
        head = src.read(0, end, "the header")
        (stored,) = _U32.unpack(src.read(end, _CRC_SIZE, "the header CRC"))
        if zlib.crc32(head) != stored:
            raise CorruptStreamError("the header is damaged (CRC mismatch)")
        values, used = _unpack_fields(head[_PREFIX.size:], minor)
        if used != length and minor <= VERSION_MINOR:
            raise CorruptStreamError(
                f"the header holds {length - used} unexpected bytes after its fields "
                f"(format v{major}.{minor} defines {used})"
            )
        _check_values(values, CorruptStreamError)
        self.version = (major, minor)
        self.header = _header_from_values(values)
        self.data_offset = end + _CRC_SIZE  # where the first chunk (or the index) starts

    def _version_problem(self, major: int, minor: int, length: int) -> str:
        supported = f"this one reads v{VERSION_MAJOR}"
        if major in OLDER_VERSIONS:
            return (f"{self._src.name} was written by an older triadic (format v{major}, "
                    f"{OLDER_VERSIONS[major]}); {supported}")
        if major < VERSION_MAJOR:
            return (
                f"{self._src.name} declares format v{major}.{minor}, which no triadic wrote; "
                f"{supported} (damaged header?)"
            )
        message = (
            f"{self._src.name} was written by a newer triadic (format v{major}); {supported}; "
            "upgrade triadic to read it"
        )
        # If the header CRC still holds under this version's layout, the version really is newer; otherwise say it may not be.
        end = _PREFIX.size + length
        genuine = length <= MAX_HEADER_LENGTH and end + _CRC_SIZE <= self._src.size and (
            zlib.crc32(self._src.read(0, end, "the header"))
            == _U32.unpack(self._src.read(end, _CRC_SIZE, "the header CRC"))[0]
        )
        return message if genuine else message + " (or its header is damaged)"

    # streaming -------------------------------------------------------------------------------

    def frames(self) -> Iterator[tuple[int, bool, bytes]]:
        """(index, keyframe, payload) for every frame from the start; CRC-checked, one at a time.

        Ends by checking the index chunk and trailer, so a file cut anywhere (even exactly between
        two chunks) raises instead of reading as a shorter video.
        """
        return self._chunks(self.data_offset, 0, None)

    def frames_from(self, frame_number: int) -> Iterator[tuple[int, bool, bytes]]:
        """Like :meth:`frames`, starting at the keyframe at or before ``frame_number``."""
        start = self.keyframe_before(frame_number)
        return self._chunks(self.index()[start][0], start, self.index())

    def keyframe_before(self, frame_number: int) -> int:
        """The number of the keyframe at or before ``frame_number`` (from the index)."""
        try:
            frame_number = operator.index(frame_number)
        except TypeError:
            raise InputError(f"frame number must be an integer, got {frame_number!r}") from None
        index = self.index()
        if not 0 <= frame_number < len(index):
            raise InputError(
                f"frame {frame_number} is out of range: the stream has {len(index)} frames"
            )
        start = frame_number
        while not index[start][1]:  # index[0] is a keyframe, checked by index()
            start -= 1
        return start

    def _chunks(self, pos: int, i: int, index: list | None) -> Iterator[tuple[int, bool, bytes]]:
        src, count = self._src, self.header.frame_count
        seen = 0  # CRC32 of the index entries the chunks seen so far imply (when from the start)
        while True:
            remaining = src.size - pos
            if remaining == 0:
                raise CorruptStreamError(
                    f"the file is truncated: it ends after {i} of {count} frames, "
                    "without the frame index"
                )
            if remaining < _CHUNK_HEAD.size:
                raise CorruptStreamError(
                    f"the file is truncated after {i} frames, inside the chunk header at byte {pos}"
                )
            head = src.read(pos, _CHUNK_HEAD.size, f"frame {i}")
            length, flags = _CHUNK_HEAD.unpack(head)
            if length == INDEX_MARKER:
                if index is None:
                    self._end_of_stream(pos, i, seen)
                elif pos != self._index_offset or i != count:
                    raise CorruptStreamError(
                        f"the frame index starts at byte {pos}, after {i} frames; the trailer "
                        f"says byte {self._index_offset}, after {count} frames"
                    )
                return
            if i >= count:
                raise CorruptStreamError(
                    f"the header says the stream holds {count} frames, but another frame chunk "
                    f"follows at byte {pos} (the frame index should be there)"
                )
            left = remaining - _CHUNK_HEAD.size
            if length > left:
                raise CorruptStreamError(
                    f"frame {i} is truncated: chunk says {length} bytes, {left} remain"
                )
            if length + _CRC_SIZE > left:
                raise CorruptStreamError(f"frame {i} is truncated: its CRC is cut off")
            if index is not None and pos != index[i][0]:
                raise CorruptStreamError(
                    f"frame {i} starts at byte {pos}, but the index says byte {index[i][0]}"
                )
            payload = src.read(pos + _CHUNK_HEAD.size, length, f"frame {i}")
            (stored,) = _U32.unpack(src.read(pos + _CHUNK_HEAD.size + length, _CRC_SIZE,
                                             f"frame {i}"))
            if zlib.crc32(payload, zlib.crc32(head)) != stored:
                raise CorruptStreamError(f"frame {i} is damaged (CRC mismatch)")
            if flags & FLAGS_RESERVED:
                raise CorruptStreamError(
                    f"frame {i} has reserved flag bits set (flags 0x{flags:02x}); "
                    "written by an incompatible writer?"
                )
            keyframe = bool(flags & FLAG_KEYFRAME)
            if i == 0 and not keyframe:
                raise CorruptStreamError("frame 0 is not a keyframe; a stream must start a segment")
            if index is not None and keyframe != index[i][1]:
                raise CorruptStreamError(f"frame {i}'s keyframe flag disagrees with the index")
            seen = zlib.crc32(_INDEX_ENTRY.pack(pos, flags), seen)
            yield i, keyframe, payload
            pos += _CHUNK_HEAD.size + length + _CRC_SIZE
            i += 1

    def _end_of_stream(self, pos: int, frames_seen: int, seen_crc: int) -> None:
        """Check the index chunk a streaming read ends at against the chunks it has read."""
        count = self.header.frame_count
        if frames_seen != count:
            raise CorruptStreamError(
                f"the file holds {frames_seen} frames, but its header says {count}"
            )
        _, entries_crc, _ = self._read_index_chunk(pos, keep=False)
        if entries_crc != seen_crc:
            raise CorruptStreamError("the frame index does not match the frame chunks")

    # index -----------------------------------------------------------------------------------

    def _read_index_chunk(self, pos: int, keep: bool) -> tuple[int, int, bytes | None]:
        """Check the index chunk at ``pos`` and the trailer after it.

        Returns (count, CRC32 of the entries alone, the entries if ``keep``).
        """
        src = self._src
        if src.size - pos < _INDEX_HEAD.size:
            raise CorruptStreamError(f"the frame index at byte {pos} is truncated")
        head = src.read(pos, _INDEX_HEAD.size, "the frame index")
        marker, tag, count = _INDEX_HEAD.unpack(head)
        if marker != INDEX_MARKER or tag != INDEX_TAG:
            raise CorruptStreamError(f"no frame index at byte {pos} (damaged index or trailer)")
        if count > MAX_FRAMES:
            raise CorruptStreamError(f"the frame index claims {count} frames (damaged index)")
        size = _INDEX_MIN_SIZE + count * _INDEX_ENTRY.size
        end = pos + size
        if end + _TRAILER.size > src.size:
            raise CorruptStreamError(
                f"the frame index is truncated: {count} entries and the trailer need "
                f"{size + _TRAILER.size} bytes, {src.size - pos} remain"
            )
        if end + _TRAILER.size < src.size:
            raise CorruptStreamError(
                f"{src.size - end - _TRAILER.size} unexpected bytes follow the frame index "
                "(damaged index or trailing garbage)"
            )
        crc = zlib.crc32(head)
        entries_crc = 0
        kept = bytearray() if keep else None
        at, stop = pos + _INDEX_HEAD.size, end - _CRC_SIZE
        step = _BLOCK - _BLOCK % _INDEX_ENTRY.size
        while at < stop:
            block = src.read(at, min(step, stop - at), "the frame index")
            crc = zlib.crc32(block, crc)
            entries_crc = zlib.crc32(block, entries_crc)
            if kept is not None:
                kept += block
            at += len(block)
        (stored,) = _U32.unpack(src.read(stop, _CRC_SIZE, "the frame index"))
        if crc != stored:
            raise CorruptStreamError("the frame index is damaged (CRC mismatch)")
        tag, offset = _TRAILER.unpack(src.read(end, _TRAILER.size, "the trailer"))
        if tag != TRAILER_TAG or offset != pos:
            raise CorruptStreamError("the trailer is damaged")
        if count != self.header.frame_count:
            raise CorruptStreamError(
                f"the frame index lists {count} frames, but the header says "
                f"{self.header.frame_count}"
            )
        return count, entries_crc, None if kept is None else bytes(kept)

    def index(self) -> list[tuple[int, bool]]:
        """(file offset, keyframe) of every frame chunk, from the index at the end of the file."""
        if self._index is None:
            src = self._src
            if src.size < self.data_offset + _INDEX_MIN_SIZE + _TRAILER.size:
                raise CorruptStreamError(
                    "the file is truncated: it is too short to hold the frame index and trailer"
                )
            tag, offset = _TRAILER.unpack(src.read(src.size - _TRAILER.size, _TRAILER.size,
                                                   "the trailer"))
            if tag != TRAILER_TAG:
                raise CorruptStreamError(
                    "the trailer is missing or damaged (was the file truncated?)"
                )
            if not self.data_offset <= offset <= src.size - _TRAILER.size - _INDEX_MIN_SIZE:
                raise CorruptStreamError(
                    f"the trailer points at byte {offset}, outside the frame data (damaged)"
                )
            count, _, entries = self._read_index_chunk(offset, keep=True)
            table = np.frombuffer(entries, dtype=_INDEX_DTYPE)
            offsets, flags = table["offset"], table["flags"]
            if count == 0:
                if offset != self.data_offset:
                    raise CorruptStreamError("the frame index of an empty stream is misplaced")
            else:
                smallest = _CHUNK_HEAD.size + _CRC_SIZE  # a chunk with an empty payload
                if int(offsets[0]) != self.data_offset:
                    raise CorruptStreamError("the frame index does not start at the first frame")
                # every offset inside the frame data first, so the int64 differences are exact
                if int(offsets.max()) + smallest > offset or np.any(
                    np.diff(offsets.astype(np.int64)) < smallest
                ):
                    raise CorruptStreamError("the frame index holds impossible offsets (damaged)")
                if np.any(flags & FLAGS_RESERVED):
                    raise CorruptStreamError("the frame index has reserved flag bits set")
                if not flags[0] & FLAG_KEYFRAME:
                    raise CorruptStreamError("the frame index says frame 0 is not a keyframe")
            self._index = list(zip(offsets.tolist(), (flags & FLAG_KEYFRAME).astype(bool).tolist()))
            self._index_offset = offset
        return list(self._index)

    # salvage ---------------------------------------------------------------------------------

    def salvage(self) -> Iterator[tuple[int, bool, bytes | None]]:
        """(index, keyframe, payload) for every frame 0 .. frame_count - 1 of a damaged file, in
        order; the payload is None (and keyframe False) when the frame's chunk is damaged or missing.

        For ``decode --salvage``. Only the header must be intact; damage after it never raises.
        Chunks are found through the index when it is intact, else by walking their lengths. A
        damaged chunk whose length still leads to an intact chunk costs one frame; otherwise the
        walk resynchronises on the next chunk whose CRC holds, and numbers the chunks it finds by
        the index entries (matched by offset) or, for the run that ends at the index, backwards
        from ``frame_count``. Work is bounded: resynchronisation checksums at most
        ``_SALVAGE_BUDGET`` times the file size.
        """
        count = self.header.frame_count
        try:
            index = self.index()
        except CorruptStreamError:
            index = None
        if index is not None:
            ends = [offset for offset, _ in index[1:]] + [self._index_offset]
            for i, ((offset, keyframe), end) in enumerate(zip(index, ends)):
                found = self._salvage_chunk(offset, end)
                good = found is not None and found[0] == keyframe
                yield i, keyframe and good, found[1] if good else None
            return
        located = self._salvage_walk()
        for i in range(count):
            found = self._salvage_chunk(located[i], None) if i in located else None
            yield i, found is not None and found[0], None if found is None else found[1]

    def _salvage_crc_ok(self, pos: int, length: int, budget: list[int] | None) -> bool:
        """Whether the chunk at ``pos`` with payload ``length`` checks, read in blocks."""
        if budget is not None:
            budget[0] -= length + _CHUNK_HEAD.size
            if budget[0] < 0:
                return False
        crc, at, stop = 0, pos, pos + _CHUNK_HEAD.size + length
        while at < stop:
            block = self._src.read(at, min(_BLOCK, stop - at), "a frame")
            crc = zlib.crc32(block, crc)
            at += len(block)
        return crc == _U32.unpack(self._src.read(stop, _CRC_SIZE, "a frame"))[0]

    def _salvage_size(self, pos: int, budget: list[int] | None = None) -> int | None:
        """Size of the intact chunk at ``pos`` (-1 for the index marker), or None."""
        src = self._src
        if pos < self.data_offset or src.size - pos < _INDEX_HEAD.size:
            return None
        length, flags = _CHUNK_HEAD.unpack(src.read(pos, _CHUNK_HEAD.size, "a frame"))
        if length == INDEX_MARKER:
            return -1 if src.read(pos + 4, 4, "the frame index") == INDEX_TAG else None
        size = _CHUNK_HEAD.size + length + _CRC_SIZE
        if flags & FLAGS_RESERVED or size > src.size - pos:
            return None
        return size if self._salvage_crc_ok(pos, length, budget) else None

    def _salvage_chunk(self, pos: int, end: int | None) -> tuple[bool, bytes] | None:
        size = self._salvage_size(pos)
        if size is None or size < 0 or (end is not None and pos + size != end):
            return None
        length, flags = _CHUNK_HEAD.unpack(self._src.read(pos, _CHUNK_HEAD.size, "a frame"))
        return bool(flags & FLAG_KEYFRAME), self._src.read(pos + _CHUNK_HEAD.size, length, "a frame")

    def _salvage_walk(self) -> dict[int, int]:
        """Frame number -> offset of every intact chunk found without a usable index."""
        src, count = self._src, self.header.frame_count
        budget = [_SALVAGE_BUDGET * src.size + (1 << 24)]
        runs: list[tuple[list[int | None], bool]] = []  # chunk offsets (None: lost), ends at index
        run: list[int | None] = []
        pos, marker = self.data_offset, None
        while pos is not None and len(run) <= count:
            size = self._salvage_size(pos)
            if size == -1:
                marker = pos
                break
            if size is not None:
                run.append(pos)
                pos += size
                continue
            # damaged: skip it by its own length if that lands on something intact
            if src.size - pos >= _CHUNK_HEAD.size:
                (length,) = _U32.unpack(src.read(pos, 4, "a frame"))
                after = pos + _CHUNK_HEAD.size + length + _CRC_SIZE
                if length != INDEX_MARKER and self._salvage_size(after) is not None:
                    run.append(None)
                    pos = after
                    continue
            runs.append((run, False))
            run = []
            pos = self._salvage_resync(pos + 1, budget)
        runs.append((run, marker is not None))
        entries: dict[int, int] = {}
        if marker is not None and src.size - marker >= _INDEX_HEAD.size:
            (stored,) = _U32.unpack(src.read(marker + 8, 4, "the frame index"))
            if stored == count and marker + _INDEX_MIN_SIZE + count * _INDEX_ENTRY.size <= src.size:
                raw = src.read(marker + _INDEX_HEAD.size, count * _INDEX_ENTRY.size, "the frame index")
                table = np.frombuffer(raw, dtype=_INDEX_DTYPE)
                entries = {int(o): i for i, o in enumerate(table["offset"].tolist())}
        located: dict[int, int] = {}
        next_free = 0
        for number, (offsets, at_index) in enumerate(runs):
            if not offsets:
                continue
            first = next(((entries.get(o), j) for j, o in enumerate(offsets)
                          if o is not None and o in entries), None)
            if number == 0:
                start = 0
            elif first is not None:
                start = first[0] - first[1]
            elif at_index:
                start = count - len(offsets)
            else:
                continue  # cannot be placed: its frames count as lost
            if start < next_free or start + len(offsets) > count:
                continue
            for j, o in enumerate(offsets):
                if o is not None:
                    located[start + j] = o
            next_free = start + len(offsets)
        return located

    def _salvage_resync(self, pos: int, budget: list[int]) -> int | None:
        """The first offset at or after ``pos`` holding an intact chunk or the index marker."""
        src = self._src
        window = 1 << 20
        while budget[0] > 0 and src.size - pos >= _INDEX_HEAD.size:
            n = min(window + 8, src.size - pos)
            buf = np.frombuffer(src.read(pos, n, "a frame"), dtype=np.uint8)
            m = n - 8
            b = buf.astype(np.int64)
            length = b[0:m] | b[1:m + 1] << 8 | b[2:m + 2] << 16 | b[3:m + 3] << 24
            room = src.size - pos - np.arange(m, dtype=np.int64)
            plausible = ((buf[4:m + 4] <= FLAG_KEYFRAME) & (length + 9 <= room)) | (length == INDEX_MARKER)
            for q in np.flatnonzero(plausible).tolist():
                if self._salvage_size(pos + q, budget) is not None:
                    return pos + q
                if budget[0] <= 0:
                    return None
            pos += m
        return None
