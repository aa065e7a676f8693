"""Tests of the .tri container: round trips, versioning, and robustness against damaged input.

The reference builder below writes .tri bytes with nothing but struct and zlib, from the layout in
docs/bitstream.md, so the writer is checked against an independent reading of the specification
and the reader can be fed files that are well-formed except for one chosen field.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import sys
import tracemalloc
import zlib
from fractions import Fraction
from pathlib import Path

import pytest

try:
    import triadic  # noqa: F401
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triadic import container
from triadic.container import MAGIC, VERSION_MAJOR, ContainerReader, ContainerWriter, check
from triadic.errors import CorruptStreamError, InputError, VersionError
from triadic.params import MAX_ERRORS, MAX_PIXELS, PIXEL_FORMATS, StreamHeader

ROOT = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------------------------------
# An independent reference writer (struct + zlib only)
# --------------------------------------------------------------------------------------------------

SIGNATURE = b"\x89TRI\r\n\x1a\n"

DEFAULT_FIELDS = dict(
    width=176, height=144, pix_fmt="yuv420p", bit_depth=8, colour_transform=0,
    frame_rate_num=30000, frame_rate_den=1001, frame_count=None, keyint=60, max_error=0,
    block_size=16,
)


def ref_header(major=5, minor=0, extra=b"", pix_fmt_bytes=None, **fields) -> bytes:
    f = {**DEFAULT_FIELDS, **fields}
    pix = f["pix_fmt"].encode("ascii") if pix_fmt_bytes is None else pix_fmt_bytes
    body = (
        struct.pack("<II", f["width"], f["height"])
        + bytes([len(pix)]) + pix
        + struct.pack("<BBIIIIIH", f["bit_depth"], f["colour_transform"], f["frame_rate_num"],
                      f["frame_rate_den"], f["frame_count"], f["keyint"], f["max_error"],
                      f["block_size"])
        + extra
    )
    head = SIGNATURE + struct.pack("<HHI", major, minor, len(body)) + body
    return head + struct.pack("<I", zlib.crc32(head))


def ref_chunk(payload: bytes, flags: int, length: int | None = None) -> bytes:
    head = struct.pack("<IB", len(payload) if length is None else length, flags)
    return head + payload + struct.pack("<I", zlib.crc32(head + payload))


def ref_file(payloads, keyframes=None, *, flags=None, index_entries=None, index_count=None,
             trailer_tag=b"TRIEND\0\0", tail=b"", **header) -> bytes:
    """A complete .tri file; every argument can be bent to make exactly one thing wrong."""
    if flags is None:
        keyframes = keyframes or [i == 0 for i in range(len(payloads))]
        flags = [1 if k else 0 for k in keyframes]
    header.setdefault("frame_count", len(payloads))
    out = bytearray(ref_header(**header))
    entries = []
    for payload, flag in zip(payloads, flags):
        entries.append((len(out), flag))
        out += ref_chunk(payload, flag)
    if index_entries is not None:
        entries = index_entries
    index_offset = len(out)
    count = len(entries) if index_count is None else index_count
    index = struct.pack("<I4sI", 0xFFFFFFFF, b"TRIX", count)
    index += b"".join(struct.pack("<QB", o, f) for o, f in entries)
    out += index + struct.pack("<I", zlib.crc32(index))
    out += struct.pack("<8sQ", trailer_tag, index_offset) + tail
    return bytes(out)


HEADER = StreamHeader(
    width=176, height=144, pix_fmt="yuv420p", frame_rate=Fraction(30000, 1001), frame_count=0,
    keyint=60, max_error=0, block_size=16,
)
PAYLOADS = [b"first keyframe", b"", b"x" * 7]  # an empty payload on purpose
KEYFRAMES = [True, False, True]


def write(path, payloads=PAYLOADS, keyframes=KEYFRAMES, header=HEADER) -> bytes:
    with ContainerWriter(path, header) as writer:
        for payload, keyframe in zip(payloads, keyframes):
            writer.write_frame(payload, keyframe)
    assert writer.bytes_written == os.path.getsize(path)
    return Path(path).read_bytes()


@pytest.fixture
def small(tmp_path) -> bytes:
    return write(tmp_path / "small.tri")


def read_all(source):
    """Everything a reader exposes: header, streamed frames, index, and every frames_from."""
    with ContainerReader(source) as reader:
        frames = list(reader.frames())
        index = reader.index()
        starts = [list(reader.frames_from(n)) for n in range(reader.header.frame_count)]
        return reader.header, frames, index, starts


def assert_corrupt(source, match=None):
    """Opening and every way of reading ``source`` raises CorruptStreamError (and nothing else)."""
    for action in ("frames", "index", "frames_from"):
        with pytest.raises(CorruptStreamError, match=match):
            with ContainerReader(source) as reader:
                if action == "frames":
                    list(reader.frames())
                elif action == "index":
                    reader.index()
                else:
                    for n in range(reader.header.frame_count):
                        list(reader.frames_from(n))
                    reader.index()


# --------------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------------

def test_magic_is_png_style():
    assert MAGIC == SIGNATURE and len(MAGIC) == 8
    assert MAGIC[0] & 0x80 and b"\r\n" in MAGIC and b"\x1a" in MAGIC and MAGIC.endswith(b"\n")
    assert check(MAGIC + b"rest") and check(bytearray(MAGIC)) and check(memoryview(MAGIC))
    assert not check(b"") and not check(MAGIC[:7]) and not check(b"\x89PNG\r\n\x1a\n")
    assert not check("not bytes") and not check(None)


def test_round_trip(tmp_path, small):
    header, frames, index, starts = read_all(tmp_path / "small.tri")
    assert header == HEADER.replace(frame_count=3)
    assert frames == [(0, True, PAYLOADS[0]), (1, False, b""), (2, True, PAYLOADS[2])]
    assert [k for _, k in index] == KEYFRAMES
    assert index[0][0] == len(ref_header(frame_count=3))
    # frames_from starts at the keyframe at or before the frame asked for
    assert [s[0][0] for s in starts] == [0, 0, 2]
    assert starts[1] == frames and starts[2] == frames[2:]
    with ContainerReader(small) as reader:  # bytes source reads the same as a path
        assert reader.file_size == len(small) and reader.version == (VERSION_MAJOR, 0)
        assert read_all(small) == (header, frames, index, starts)


def test_writer_matches_reference_bytes(small):
    assert small == ref_file(PAYLOADS, KEYFRAMES)


def test_golden_bytes(small):
    """Pins the exact bitstream; a change here is a format change (bump the version)."""
    digest = hashlib.sha256(small).hexdigest()
    assert digest == "1b593e8b664b54b45ee7eccc0ed1df8373746ab34b6409a2ec55f7aeca0b3b6e", small.hex()


def test_zero_frames(tmp_path):
    data = write(tmp_path / "empty.tri", [], [])
    assert data == ref_file([])
    header, frames, index, _ = read_all(data)
    assert header.frame_count == 0 and frames == [] and index == []
    with ContainerReader(data) as reader, pytest.raises(InputError, match="out of range"):
        reader.frames_from(0)


def test_writer_canonicalises_and_patches_header(tmp_path):
    header = HEADER.replace(pix_fmt="gray8", frame_count=99, frame_rate=Fraction(50, 2))
    with ContainerWriter(tmp_path / "g.tri", header) as writer:
        writer.write_frame(b"a", True)
        writer.write_frame(bytearray(b"b"), True)
        writer.write_frame(memoryview(b"cd"), False)
    assert writer.header.frame_count == 3 and writer.header.pix_fmt == "gray"
    with ContainerReader(tmp_path / "g.tri") as reader:
        assert reader.header.pix_fmt == "gray" and reader.header.frame_count == 3
        assert reader.header.frame_rate == 25 and reader.header.bit_depth == 8
        assert [p for _, _, p in reader.frames()] == [b"a", b"b", b"cd"]


def test_every_pixel_format_round_trips(tmp_path):
    for name in PIXEL_FORMATS:
        header = HEADER.replace(pix_fmt=name, width=3, height=5)
        data = write(tmp_path / f"{name}.tri", [b"k"], [True], header)
        assert read_all(data)[0] == header.replace(frame_count=1)


@st.composite
def headers(draw):
    width = draw(st.integers(1, 1 << 15))
    height = draw(st.integers(1, min(1 << 15, MAX_PIXELS // width)))
    return StreamHeader(
        width=width, height=height, pix_fmt=draw(st.sampled_from(sorted(PIXEL_FORMATS))),
        frame_rate=Fraction(draw(st.integers(1, 2**32 - 1)), draw(st.integers(1, 2**32 - 1))),
        frame_count=0, keyint=draw(st.integers(1, 1 << 31)),
        max_error=draw(st.sampled_from(MAX_ERRORS)), block_size=draw(st.sampled_from([8, 16, 32, 64])),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=headers(), frames=st.lists(st.tuples(st.binary(max_size=64), st.booleans()), max_size=12))
def test_round_trip_property(tmp_path, header, frames):
    frames = [(p, k or i == 0) for i, (p, k) in enumerate(frames)]
    data = write(tmp_path / "p.tri", [p for p, _ in frames], [k for _, k in frames], header)
    assert data == ref_file(
        [p for p, _ in frames], [k for _, k in frames], width=header.width, height=header.height,
        pix_fmt=header.pix_fmt, bit_depth=header.bit_depth,
        colour_transform={"none": 0, "ycocg-r": 1}[header.colour_transform],
        frame_rate_num=header.frame_rate.numerator, frame_rate_den=header.frame_rate.denominator,
        keyint=header.keyint, max_error=header.max_error, block_size=header.block_size,
    )
    got_header, got, index, starts = read_all(data)
    assert got_header == header.replace(frame_count=len(frames))
    assert [(p, k) for _, k, p in got] == frames
    assert [k for _, k in index] == [k for _, k in frames]
    for n, run in enumerate(starts):
        start = max(i for i in range(n + 1) if frames[i][1])
        assert run == got[start:]


def test_index_spills_to_disk_with_same_bytes(tmp_path, monkeypatch):
    payloads = [bytes([i]) * (i % 5) for i in range(40)]
    keyframes = [i % 7 == 0 for i in range(40)]
    expected = write(tmp_path / "a.tri", payloads, keyframes)
    monkeypatch.setattr(container, "_INDEX_SPILL", 18)  # spill every two entries
    seen = []
    with ContainerWriter(tmp_path / "b.tri", HEADER) as writer:
        for payload, keyframe in zip(payloads, keyframes):
            writer.write_frame(payload, keyframe)
            seen.append(sorted(os.listdir(tmp_path)))
    assert any(any(".idx-tmp-" in n for n in names) for names in seen)
    assert (tmp_path / "b.tri").read_bytes() == expected
    assert sorted(os.listdir(tmp_path)) == ["a.tri", "b.tri"]


# --------------------------------------------------------------------------------------------------
# Versions
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("minor", [1, 7, 0xFFFF])
def test_higher_minor_with_extra_header_bytes_is_read(minor):
    data = ref_file(PAYLOADS, KEYFRAMES, minor=minor, extra=b"fields from the future")
    header, frames, index, _ = read_all(data)
    assert header == HEADER.replace(frame_count=3)
    assert [p for _, _, p in frames] == PAYLOADS
    with ContainerReader(data) as reader:
        assert reader.version == (VERSION_MAJOR, minor)


def test_extra_header_bytes_at_known_minor_are_rejected():
    assert_corrupt(ref_file(PAYLOADS, KEYFRAMES, extra=b"?"), match="unexpected bytes")


@pytest.mark.parametrize("major", [6, 7, 0xFFFF])
def test_newer_major_is_rejected(major):
    data = ref_file(PAYLOADS, KEYFRAMES, major=major)
    with pytest.raises(VersionError, match=rf"newer triadic \(format v{major}\); this one reads v5"):
        ContainerReader(data)
    with pytest.raises(VersionError) as info:
        ContainerReader(data)
    assert "damaged" not in str(info.value)  # the CRC holds: it really is a newer file
    # a newer major whose header does not even checksum may be damage; the message says so
    damaged = bytearray(data)
    damaged[20] ^= 1
    with pytest.raises(VersionError, match="or its header is damaged"):
        ContainerReader(bytes(damaged))


@pytest.mark.parametrize("major", [1, 2, 3, 4])
def test_older_major_is_rejected_naming_the_release_that_reads_it(major):
    with pytest.raises(VersionError, match=rf"older triadic \(format v{major}, read by triadic 0.{major}\); this one reads v5"):
        ContainerReader(ref_file(PAYLOADS, KEYFRAMES, major=major))


def test_major_zero_is_rejected():
    with pytest.raises(VersionError, match="v0"):
        ContainerReader(ref_file(PAYLOADS, KEYFRAMES, major=0))


# --------------------------------------------------------------------------------------------------
# Not a .tri file
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("data, match", [
    (b"", "not a .tri file .it is empty"),
    (b"RIFF\x00\x00\x00\x00WAVEfmt ", "not a .tri file"),
    (b"\x89PNG\r\n\x1a\n" + bytes(40), "not a .tri file"),
    (b"\x89TRI\n\x1a\n" + bytes(40), "line-ending"),
    (b"\x09TRI\r\n\x1a\n" + bytes(40), "high bit"),
    (b"x", "not a .tri file"),
    (MAGIC[:5], "truncated inside its signature"),
])
def test_not_a_tri_file(tmp_path, data, match):
    with pytest.raises(CorruptStreamError, match=match):
        ContainerReader(data)
    (tmp_path / "f.tri").write_bytes(data)
    with pytest.raises(CorruptStreamError, match=match):
        ContainerReader(tmp_path / "f.tri")


def test_bad_sources(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        ContainerReader(tmp_path / "missing.tri")
    with pytest.raises(InputError, match="directory"):
        ContainerReader(tmp_path)
    with pytest.raises(InputError, match="path or bytes"):
        ContainerReader(12345)


# --------------------------------------------------------------------------------------------------
# Truncation and bit flips
# --------------------------------------------------------------------------------------------------

def test_truncation_at_every_byte(small):
    for cut in range(len(small)):
        assert_corrupt(small[:cut])


def test_truncation_through_files(tmp_path, small):
    for cut in (0, 3, 15, 40, 59, 60, 72, 81, len(small) - 17, len(small) - 16, len(small) - 1):
        path = tmp_path / f"cut{cut}.tri"
        path.write_bytes(small[:cut])
        assert_corrupt(path)


def test_cut_at_a_chunk_boundary_is_not_a_shorter_video(small):
    with ContainerReader(small) as reader:
        boundary = reader.index()[2][0]  # the file cut just before frame 2's chunk
    with ContainerReader(small[:boundary]) as reader:
        frames = reader.frames()
        assert next(frames)[2] == PAYLOADS[0] and next(frames)[2] == PAYLOADS[1]
        with pytest.raises(CorruptStreamError, match="ends after 2 of 3 frames, without the frame index"):
            next(frames)


def test_truncated_payload_message():
    data = ref_file(PAYLOADS, KEYFRAMES)[:-(59 + 4 + 5)]  # index+trailer, CRC, 5 payload bytes
    with ContainerReader(data) as reader, pytest.raises(
        CorruptStreamError, match=r"frame 2 is truncated: chunk says 7 bytes, 2 remain"
    ):
        list(reader.frames())


def test_every_bit_flip_is_detected(small):
    """No single-bit flip anywhere yields different data silently; in this format all are caught."""
    original = read_all(small)
    caught = 0
    for bit in range(8 * len(small)):
        damaged = bytearray(small)
        damaged[bit // 8] ^= 1 << (bit % 8)
        try:
            result = read_all(bytes(damaged))
        except CorruptStreamError:
            caught += 1
        else:
            assert result == original, f"bit {bit} changed the data silently"
    assert caught == 8 * len(small)


def test_crc_mismatch_message():
    data = bytearray(ref_file(PAYLOADS, KEYFRAMES))
    data[len(ref_header(frame_count=3)) + 5] ^= 0x40  # first byte of frame 0's payload
    with ContainerReader(bytes(data)) as reader, pytest.raises(
        CorruptStreamError, match=r"^frame 0 is damaged \(CRC mismatch\)$"
    ):
        list(reader.frames())


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_random_damage_never_passes_silently(data):
    clean = ref_file(PAYLOADS, KEYFRAMES)
    start = data.draw(st.integers(0, len(clean) - 1))
    junk = data.draw(st.binary(min_size=1, max_size=12))
    damaged = clean[:start] + junk + clean[start + len(junk):]
    if data.draw(st.booleans()):
        damaged = damaged[: data.draw(st.integers(0, len(damaged)))]
    try:
        result = read_all(damaged)
    except CorruptStreamError:
        return
    assert result == read_all(clean)


@settings(max_examples=300, deadline=None)
@given(rest=st.binary(max_size=200))
def test_garbage_after_magic_raises_only_corrupt_stream_error(rest):
    with pytest.raises(CorruptStreamError):
        read_all(MAGIC + rest)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=80), minor=st.integers(0, 3))
def test_garbage_header_with_valid_crc_raises_only_corrupt_stream_error(body, minor):
    head = MAGIC + struct.pack("<HHI", 1, minor, len(body)) + body
    with pytest.raises(CorruptStreamError):
        read_all(head + struct.pack("<I", zlib.crc32(head)) + ref_file([])[-32:])


# --------------------------------------------------------------------------------------------------
# Absurd values with valid CRCs: rejected before anything is allocated
# --------------------------------------------------------------------------------------------------

ABSURD_HEADERS = [
    dict(width=0), dict(height=0), dict(width=2**32 - 1), dict(height=(1 << 15) + 1),
    dict(width=1 << 15, height=1 << 15),  # each side allowed, but more than MAX_PIXELS
    dict(frame_count=2**32 - 1), dict(keyint=0), dict(max_error=2), dict(max_error=2**32 - 1),
    dict(block_size=7), dict(block_size=0xFFFF), dict(frame_rate_den=0), dict(frame_rate_num=0),
    dict(pix_fmt="yuv999p"), dict(pix_fmt=""), dict(pix_fmt="y" * 200),
    dict(pix_fmt_bytes=b"yuv\xff20p"), dict(bit_depth=10), dict(colour_transform=1),
    dict(colour_transform=7),
]


@pytest.mark.parametrize("fields", ABSURD_HEADERS, ids=lambda f: ",".join(f"{k}={v!r}"[:30] for k, v in f.items()))
def test_absurd_header_fields_are_rejected_cheaply(fields):
    data = ref_file(PAYLOADS, KEYFRAMES, **fields)
    tracemalloc.start()
    try:
        with pytest.raises(CorruptStreamError, match="header|frame size"):
            ContainerReader(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_absurd_header_length_is_rejected_cheaply():
    data = bytearray(ref_file(PAYLOADS, KEYFRAMES))
    data[12:16] = struct.pack("<I", 2**32 - 1)
    tracemalloc.start()
    try:
        with pytest.raises(CorruptStreamError, match="header claims 4294967295 bytes"):
            ContainerReader(bytes(data))
        assert tracemalloc.get_traced_memory()[1] < 1 << 20
    finally:
        tracemalloc.stop()


def test_huge_chunk_length_is_rejected_cheaply():
    head = ref_header(frame_count=2)
    data = head + ref_chunk(b"k", 1) + ref_chunk(b"abc", 0, length=0xFFFFFFF0) + bytes(30)
    tracemalloc.start()
    try:
        with ContainerReader(data) as reader, pytest.raises(
            CorruptStreamError, match=r"frame 1 is truncated: chunk says 4294967280 bytes, \d+ remain"
        ):
            list(reader.frames())
        assert tracemalloc.get_traced_memory()[1] < 1 << 20
    finally:
        tracemalloc.stop()


def test_huge_index_count_is_rejected_cheaply():
    data = ref_file(PAYLOADS, KEYFRAMES, index_count=2**32 - 1)
    tracemalloc.start()
    try:
        assert_corrupt(data, match="index")
        assert tracemalloc.get_traced_memory()[1] < 1 << 20
    finally:
        tracemalloc.stop()


# --------------------------------------------------------------------------------------------------
# Well-formed chunks that do not add up
# --------------------------------------------------------------------------------------------------

def test_reserved_flag_bits_are_rejected():
    data = ref_file(PAYLOADS, flags=[1, 0x80, 1])
    with ContainerReader(data) as reader, pytest.raises(CorruptStreamError, match="reserved flag"):
        list(reader.frames())
    assert_corrupt(data, match="reserved flag")


def test_first_frame_must_be_a_keyframe():
    assert_corrupt(ref_file(PAYLOADS, flags=[0, 0, 1]), match="frame 0 is not a keyframe")


@pytest.mark.parametrize("frame_count", [0, 2, 4])
def test_header_frame_count_must_match_the_chunks(frame_count):
    assert_corrupt(ref_file(PAYLOADS, KEYFRAMES, frame_count=frame_count))


def test_index_count_must_match():
    good = ref_file(PAYLOADS, KEYFRAMES)
    with ContainerReader(good) as reader:
        entries = [(o, int(k)) for o, k in reader.index()]
    assert_corrupt(ref_file(PAYLOADS, KEYFRAMES, index_entries=entries[:2]))


@pytest.mark.parametrize("tamper", ["offset", "flag", "order", "huge"])
def test_index_that_lies_about_the_chunks(tamper):
    with ContainerReader(ref_file(PAYLOADS, KEYFRAMES)) as reader:
        entries = [(o, int(k)) for o, k in reader.index()]
    if tamper == "offset":
        entries[1] = (entries[1][0] + 1, entries[1][1])
    elif tamper == "flag":
        entries[1] = (entries[1][0], 1)
    elif tamper == "huge":
        entries[2] = (2**64 - 1, 1)
    else:
        entries[1], entries[2] = entries[2], entries[1]
    data = ref_file(PAYLOADS, KEYFRAMES, index_entries=entries)
    with ContainerReader(data) as reader, pytest.raises(CorruptStreamError, match="index"):
        list(reader.frames())  # a streaming read compares the index with the chunks it saw
    with ContainerReader(data) as reader, pytest.raises(CorruptStreamError):
        reader.index()
        for n in range(3):
            list(reader.frames_from(n))


def test_trailing_bytes_and_bad_trailer():
    assert_corrupt(ref_file(PAYLOADS, KEYFRAMES, tail=b"\0"))
    assert_corrupt(ref_file(PAYLOADS, KEYFRAMES, trailer_tag=b"TRIEND\0\1"))


def test_reader_closed_mid_iteration(small):
    reader = ContainerReader(small)
    frames = reader.frames()
    next(frames)
    reader.close()
    with pytest.raises(InputError, match="closed"):
        next(frames)


def test_frames_from_rejects_bad_arguments(small):
    with ContainerReader(small) as reader:
        for bad in (-1, 3, 10**20):
            with pytest.raises(InputError, match="out of range"):
                reader.frames_from(bad)
        with pytest.raises(InputError):
            reader.frames_from("1")


# --------------------------------------------------------------------------------------------------
# Writer: temporary file, abort, misuse
# --------------------------------------------------------------------------------------------------

def test_writer_uses_a_temporary_file(tmp_path):
    with ContainerWriter(tmp_path / "out.tri", HEADER) as writer:
        writer.write_frame(b"k", True)
        assert os.listdir(tmp_path) == [f".out.tri.tmp-{os.getpid()}"]
    assert os.listdir(tmp_path) == ["out.tri"]


def test_exception_inside_with_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with ContainerWriter(tmp_path / "out.tri", HEADER) as writer:
            writer.write_frame(b"k", True)
            raise RuntimeError("encoder failed")
    assert os.listdir(tmp_path) == []


def test_abort_leaves_an_existing_target_untouched(tmp_path, monkeypatch):
    target = tmp_path / "out.tri"
    target.write_bytes(b"old contents")
    monkeypatch.setattr(container, "_INDEX_SPILL", 9)
    writer = ContainerWriter(target, HEADER)
    for _ in range(3):
        writer.write_frame(b"k", True)
    writer.abort()
    writer.abort()  # twice is fine
    assert target.read_bytes() == b"old contents" and os.listdir(tmp_path) == ["out.tri"]
    with pytest.raises(InputError, match="aborted"):
        writer.write_frame(b"k", True)
    with pytest.raises(InputError, match="aborted"):
        writer.close()


def test_dropped_writer_removes_its_temporary_file(tmp_path):
    writer = ContainerWriter(tmp_path / "out.tri", HEADER)
    writer.write_frame(b"k", True)
    del writer
    assert os.listdir(tmp_path) == []


def test_close_replaces_an_existing_target(tmp_path):
    target = tmp_path / "out.tri"
    target.write_bytes(b"old contents")
    write(target)
    assert read_all(target)[0].frame_count == 3 and os.listdir(tmp_path) == ["out.tri"]


def test_failed_rename_cleans_up(tmp_path, monkeypatch):
    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(container.os, "replace", broken_replace)
    with pytest.raises(InputError, match="No space left"):
        with ContainerWriter(tmp_path / "out.tri", HEADER) as writer:
            writer.write_frame(b"k", True)
    assert os.listdir(tmp_path) == []


def test_writer_misuse(tmp_path):
    with pytest.raises(InputError, match="max_error"):
        ContainerWriter(tmp_path / "a.tri", HEADER.replace(max_error=3))
    with pytest.raises(InputError, match="pix_fmt"):
        ContainerWriter(tmp_path / "a.tri", HEADER.replace(pix_fmt="nv12"))
    with pytest.raises(InputError, match="frame size"):
        ContainerWriter(tmp_path / "a.tri", HEADER.replace(width=1 << 15, height=1 << 15))
    with pytest.raises(InputError):
        ContainerWriter(tmp_path / "a.tri", HEADER.replace(frame_rate=Fraction(1, 2**40)))
    with pytest.raises(InputError, match="directory"):
        ContainerWriter(tmp_path, HEADER)
    with pytest.raises(InputError, match="does not exist"):
        ContainerWriter(tmp_path / "no" / "a.tri", HEADER)
    assert os.listdir(tmp_path) == []
    with ContainerWriter(tmp_path / "a.tri", HEADER) as writer:
        with pytest.raises(InputError, match="first frame"):
            writer.write_frame(b"x", False)
        with pytest.raises(InputError, match="bytes"):
            writer.write_frame("text", True)
        writer.write_frame(b"x", True)
    writer.close()  # closing twice is fine
    with pytest.raises(InputError, match="closed"):
        writer.write_frame(b"x", True)


# --------------------------------------------------------------------------------------------------
# The specification document
# --------------------------------------------------------------------------------------------------

DOC = ROOT / "docs" / "bitstream.md"


def test_doc_code_blocks_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:  # blocks run in order and share names, like a notebook
        exec(compile(block, str(DOC), "exec"), namespace)


def test_doc_field_table_matches_the_code():
    text = DOC.read_text()
    table = text[text.index("| field |"):]
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \| (\d+\.\d+) \|", table, flags=re.M)
    assert rows == [(f.name, f.type, f"1.{f.since_minor}") for f in container.FIELDS]
