"""The fuzzing engine behind tests/test_fuzz.py and benchmarks/fuzz.py.

Seeds are small valid streams of several formats. Mutations come in two kinds:

* raw: bit flips, byte insertions and deletions, truncations, splices of two streams. The
  container's CRCs catch almost all of these, so they exercise the container reader;
* structural: the stream is parsed into header fields and frame payloads, a payload (or the
  header, or the chunk order and flags) is mutated, and the file is rebuilt with every CRC, the
  index and the trailer recomputed. The container then accepts the file and the payload decoder
  (chart, K, block/magnitude/sign passes, prediction) is what gets fuzzed: the real attack surface,
  since CRCs stop accidents, not forgeries.

The oracle (:func:`run_one`) decodes the result. A ``TriadicError`` is a correct rejection; any
other exception is a crash, and so is a ``TriadicError`` whose ``__cause__`` is not one (the
decoder's safety net turned an unexpected exception into a clean error: fine for users, but a bug
for the fuzzer to report). Every mutation takes a ``random.Random``-like object, so hypothesis
(``st.randoms()``) and a plain seeded ``random.Random`` drive the same code.
"""

from __future__ import annotations

import os
import random
import struct
import sys
import tempfile
import time
import traceback
import zlib
from dataclasses import dataclass

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

import triadic
from triadic import container as tc
from triadic.errors import TriadicError
from triadic.params import MAX_ERRORS, PIXEL_FORMATS

#: Largest frame a structural header mutation may declare (keeps every input fast).
MAX_FUZZ_PIXELS = 64 * 64


# --------------------------------------------------------------------------------------------------
# Seeds
# --------------------------------------------------------------------------------------------------

def _seed_specs():
    import h264like
    from conftest import make_frames

    # (name, frames, encode parameters): every colour path, odd sizes, inter frames with motion,
    # near-lossless, 16-bit samples; each stream a few hundred bytes so one decode takes ~1 ms.
    rng = np.random.default_rng(7)
    base = np.cumsum(np.cumsum(rng.integers(-2, 3, (40, 48)), axis=0), axis=1)
    base = (base - base.min()) * 255 // max(1, base.max() - base.min())
    moving = [triadic.Frame((np.ascontiguousarray(np.roll(base, (t, 2 * t), (0, 1))[4:28, 4:36],
                                                  dtype=np.uint8),), "gray")
              for t in range(5)]  # texture moving by whole pels: the search finds real vectors
    return [
        ("gray-motion", moving, dict(keyint=4)),
        ("yuv420p-odd", make_frames("yuv420p", 19, 21, 4, seed=1), dict(keyint=2)),
        ("rgb24", make_frames("rgb24", 11, 13, 3, seed=2), dict(keyint=3)),
        ("yuv444p-near", make_frames("yuv444p", 16, 16, 3, seed=3), dict(keyint=3, max_error=4)),
        ("gray16le-noise", make_frames("gray16le", 7, 9, 2, seed=4, kind="noise"), dict(keyint=2)),
        ("yuv422p10le", make_frames("yuv422p10le", 12, 10, 3, seed=5), dict(keyint=60, block_size=8)),
        ("h264like-levels", h264like.frames(h=16, w=32, count=3), dict()),  # levels leaves
    ]


def make_seeds() -> dict[str, bytes]:
    """Small valid .tri streams, by name."""
    seeds = {}
    with tempfile.TemporaryDirectory(prefix="triadic-fuzz-") as tmp:
        for name, frames, params in _seed_specs():
            path = os.path.join(tmp, name + ".tri")
            triadic.encode(frames, path, **params)
            with open(path, "rb") as f:
                seeds[name] = f.read()
    return seeds


# --------------------------------------------------------------------------------------------------
# Parsing and CRC-correct rebuilding
# --------------------------------------------------------------------------------------------------

@dataclass
class Stream:
    """A parsed valid stream: header fields and (keyframe flag byte, payload) per chunk."""

    values: dict
    chunks: list[list]  # [flags, payload]


def parse(data: bytes) -> Stream:
    with tc.ContainerReader(data) as reader:
        values = tc._header_values(reader.header)
        chunks = [[tc.FLAG_KEYFRAME if key else 0, payload] for _, key, payload in reader.frames()]
    return Stream(values, chunks)


def build(stream: Stream) -> bytes:
    """A file with these header fields and chunks; every CRC, the index and the trailer are right."""
    values = dict(stream.values, frame_count=len(stream.chunks))
    body = tc._pack_fields(values)
    out = bytearray(tc._PREFIX.pack(tc.MAGIC, tc.VERSION_MAJOR, tc.VERSION_MINOR, len(body)) + body)
    out += struct.pack("<I", zlib.crc32(out))
    entries = bytearray()
    for flags, payload in stream.chunks:
        entries += struct.pack("<QB", len(out), flags)
        head = struct.pack("<IB", len(payload), flags)
        out += head + payload + struct.pack("<I", zlib.crc32(payload, zlib.crc32(head)))
    index_offset = len(out)
    index = struct.pack("<I4sI", tc.INDEX_MARKER, tc.INDEX_TAG, len(stream.chunks)) + entries
    out += index + struct.pack("<I", zlib.crc32(index))
    out += struct.pack("<8sQ", tc.TRAILER_TAG, index_offset)
    return bytes(out)


# --------------------------------------------------------------------------------------------------
# Mutations
# --------------------------------------------------------------------------------------------------

_INTERESTING = [0, 1, 2, 3, 4, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE,
                0xFFFFFFFF]


def _random_bytes(rng, n: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(n))


def _words(rng, n: int) -> bytes:
    kind = rng.randrange(3)
    if kind == 0:
        return _random_bytes(rng, 4 * n)
    if kind == 1:
        return struct.pack(f"<{n}I", *(rng.choice(_INTERESTING) for _ in range(n)))
    return struct.pack(f"<{n}I", *([rng.getrandbits(32)] * n))


# raw mutations: bytes -> bytes ------------------------------------------------------------------

def raw_bit_flips(rng, data: bytes, seeds) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice([1, 1, 1, 2, 3, 8])):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def raw_byte_set(rng, data: bytes, seeds) -> bytes:
    out = bytearray(data)
    at = rng.randrange(len(out))
    value = rng.choice(_INTERESTING)
    raw = struct.pack("<I", value & 0xFFFFFFFF)[: rng.choice([1, 2, 4])]
    out[at:at + len(raw)] = raw
    return bytes(out[: max(len(data), at + len(raw))])


def raw_insert(rng, data: bytes, seeds) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + _random_bytes(rng, rng.choice([1, 2, 3, 4, 9, 40])) + data[at:]


def raw_delete(rng, data: bytes, seeds) -> bytes:
    at = rng.randrange(len(data))
    return data[:at] + data[at + rng.choice([1, 2, 3, 4, 9, 40]):]


def raw_truncate(rng, data: bytes, seeds) -> bytes:
    return data[: rng.randrange(len(data))]


def raw_duplicate(rng, data: bytes, seeds) -> bytes:
    a = rng.randrange(len(data))
    b = min(len(data), a + rng.randrange(1, 64))
    return data[:b] + data[a:b] + data[b:]


def raw_splice(rng, data: bytes, seeds) -> bytes:
    other = rng.choice(list(seeds.values()))
    return data[: rng.randrange(len(data) + 1)] + other[rng.randrange(len(other)):]


RAW = [raw_bit_flips, raw_byte_set, raw_insert, raw_delete, raw_truncate, raw_duplicate, raw_splice]


# structural mutations: Stream -> Stream (CRCs recomputed by build) ------------------------------

def _pick(rng, stream: Stream) -> int:
    return rng.randrange(len(stream.chunks))


def pay_bit_flips(rng, stream, seeds):
    i = _pick(rng, stream)
    payload = bytearray(stream.chunks[i][1])
    if payload:
        for _ in range(rng.choice([1, 1, 2, 4, 16])):
            payload[rng.randrange(len(payload))] ^= 1 << rng.randrange(8)
    stream.chunks[i][1] = bytes(payload)


def pay_set_words(rng, stream, seeds):
    i = _pick(rng, stream)
    payload = stream.chunks[i][1]
    n = len(payload) // 4
    if n:
        at = rng.randrange(n)
        k = rng.choice([1, 1, 2, 8])
        payload = payload[: 4 * at] + _words(rng, k) + payload[4 * (at + k):]
    stream.chunks[i][1] = payload[: len(stream.chunks[i][1])] if n else payload


def pay_truncate(rng, stream, seeds):
    i = _pick(rng, stream)
    payload = stream.chunks[i][1]
    cut = rng.randrange(len(payload) + 1)
    if rng.random() < 0.8:
        cut -= cut % 4
    stream.chunks[i][1] = payload[:cut] if rng.random() < 0.5 else payload[len(payload) - cut:]


def pay_insert_words(rng, stream, seeds):
    i = _pick(rng, stream)
    payload = stream.chunks[i][1]
    at = 4 * rng.randrange(len(payload) // 4 + 1)
    stream.chunks[i][1] = payload[:at] + _words(rng, rng.choice([1, 2, 16, 200])) + payload[at:]


def pay_delete_words(rng, stream, seeds):
    i = _pick(rng, stream)
    payload = stream.chunks[i][1]
    at = 4 * rng.randrange(len(payload) // 4 + 1)
    stream.chunks[i][1] = payload[:at] + payload[at + 4 * rng.choice([1, 2, 16]):]


def pay_replace(rng, stream, seeds):
    i = _pick(rng, stream)
    n = rng.choice([0, 1, 2, 3, 8, 64, 1000])
    stream.chunks[i][1] = _words(rng, n) if rng.random() < 0.9 else _random_bytes(rng, n)


def pay_foreign(rng, stream, seeds):
    """A payload of another stream (another format, size or frame type) in this one."""
    other = parse(rng.choice(list(seeds.values())))
    stream.chunks[_pick(rng, stream)][1] = rng.choice(other.chunks)[1]


def chunks_shuffle(rng, stream, seeds):
    kind = rng.randrange(4)
    c = stream.chunks
    if kind == 0 and len(c) > 1:  # swap two
        a, b = rng.randrange(len(c)), rng.randrange(len(c))
        c[a], c[b] = c[b], c[a]
    elif kind == 1 and len(c) > 1:  # drop one
        del c[rng.randrange(len(c))]
    elif kind == 2:  # duplicate one
        i = rng.randrange(len(c))
        c.insert(rng.randrange(len(c) + 1), list(c[i]))
    else:  # a payload moved between frames keeps its bytes, not its frame type
        a, b = rng.randrange(len(c)), rng.randrange(len(c))
        c[a][1], c[b][1] = c[b][1], c[a][1]
    c[0][0] = tc.FLAG_KEYFRAME if rng.random() < 0.9 else c[0][0]


def flags_toggle(rng, stream, seeds):
    """Turn keyframes into inter frames and back (the payload stays: chart where none was coded)."""
    i = _pick(rng, stream)
    stream.chunks[i][0] ^= tc.FLAG_KEYFRAME


def header_change(rng, stream, seeds):
    """Decode the same payloads under another (valid) header: geometry, format, step, block size."""
    v = stream.values
    for _ in range(rng.choice([1, 1, 2, 3])):
        field = rng.choice(["size", "pix_fmt", "max_error", "block_size"])
        if field == "size":
            w = rng.choice([1, 2, 3, v["width"] - 1, v["width"] + 1, rng.randrange(1, 65)])
            h = rng.choice([1, 2, 3, v["height"] - 1, v["height"] + 1, rng.randrange(1, 65)])
            v["width"], v["height"] = max(1, w), max(1, h)
        elif field == "pix_fmt":
            v["pix_fmt"] = rng.choice(sorted(PIXEL_FORMATS))
        elif field == "max_error":
            v["max_error"] = rng.choice(MAX_ERRORS)
        else:
            v["block_size"] = rng.choice([8, 16, 32, 64])
    while v["width"] * v["height"] > MAX_FUZZ_PIXELS:
        v["width"] = max(1, v["width"] // 2)
    for f in tc.FIELDS:
        if f.derive is not None:
            v[f.name] = f.derive(v)


class _Recorder:
    """Decodes like ``entropy.Decoder``, perturbing some symbols (with ``rng``) and recording every
    pass, so that :meth:`payload` can re-encode exactly the symbols the decoder ended up using."""

    def __init__(self, data: bytes, rng=None):
        from triadic import entropy

        try:
            self._inner = entropy.Decoder(data)
        except TriadicError:
            self._inner = entropy.Decoder(b"")
        self._rng = rng
        self.passes: list[tuple[bool, np.ndarray, np.ndarray]] = []
        self.measure = False
        self.last_bits = 0.0

    def _touch(self, out: np.ndarray, alphabet: int) -> None:
        rng = self._rng
        if rng is None or not out.size or rng.random() > 0.3:
            return
        mode = rng.randrange(4)
        if mode == 0:  # everything extreme: all ones, the largest class
            out[:] = alphabet - 1
        elif mode == 1:
            out[:] = 0
        else:
            for _ in range(rng.choice([1, 1, 2, 5])):
                j = rng.randrange(out.size)
                out[j] = rng.choice([0, alphabet - 1, rng.randrange(alphabet)])

    def bits(self, values, p1):
        out = np.array(self._inner.bits(None, p1), dtype=np.int32)
        self._touch(out, 2)
        self.passes.append((True, out, p1))
        return out

    def symbols(self, values, probs):
        out = np.array(self._inner.symbols(None, probs), dtype=np.int32)
        self._touch(out, probs.shape[1] if probs.ndim == 2 else 1)
        self.passes.append((False, out, probs))
        return out

    def finish(self) -> None:
        pass

    def payload(self) -> bytes:
        from triadic import entropy

        enc = entropy.Encoder()
        for binary, values, probs in self.passes:
            (enc.bits if binary else enc.symbols)(values, probs)
        return enc.finish()


def symbolic(rng, stream, seeds):
    """Perturb decoded symbols of one frame (mode, vector class, K, block, magnitude and sign
    bits) and re-encode every frame with the codec's own ANS coder: the payloads are well-formed
    ANS streams, so the checks after entropy decoding and the prediction kernels see hostile
    values (huge vectors, residuals of 12 digits, charts where none were coded), as from a forger."""
    from triadic import codec

    header = tc._header_from_values(dict(stream.values, frame_count=len(stream.chunks)))
    target = rng.randrange(len(stream.chunks))
    decoder = codec.FrameDecoder(header)
    original = codec.Decoder
    now = {"frame": -1, "recorder": None}

    def factory(data, measure=False):
        now["recorder"] = _Recorder(data, rng if now["frame"] == target else None)
        return now["recorder"]

    codec.Decoder = factory
    try:
        for i, (flags, payload) in enumerate(stream.chunks):
            now["frame"], now["recorder"] = i, None
            try:
                decoder.decode(payload, bool(flags & tc.FLAG_KEYFRAME), i)
            except TriadicError:  # a check fired: the decoder will stop at the same symbol
                if now["recorder"] is not None:
                    stream.chunks[i][1] = now["recorder"].payload()
                break
            stream.chunks[i][1] = now["recorder"].payload()
    finally:
        codec.Decoder = original


STRUCTURAL = [symbolic, symbolic, symbolic, symbolic, pay_bit_flips, pay_set_words, pay_truncate, pay_insert_words, pay_delete_words,
              pay_replace, pay_foreign, chunks_shuffle, flags_toggle, header_change]


def mutate(rng, seeds: dict[str, bytes], parsed: dict[str, Stream] | None = None) -> tuple[str, bytes]:
    """One fuzz input: (description, bytes). Structural mutations get 3/4 of the inputs."""
    name = rng.choice(sorted(seeds))
    if rng.random() < 0.25:
        data = seeds[name]
        steps = []
        for _ in range(rng.choice([1, 1, 1, 2])):
            m = rng.choice(RAW)
            steps.append(m.__name__)
            if data:
                data = m(rng, data, seeds)
        return f"{name}: {' + '.join(steps)}", data
    base = parsed[name] if parsed is not None else parse(seeds[name])
    stream = Stream(dict(base.values), [list(c) for c in base.chunks])
    steps = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        m = rng.choice(STRUCTURAL)
        steps.append(m.__name__)
        if stream.chunks:
            m(rng, stream, seeds)
    return f"{name}: {' + '.join(steps)}", build(stream)


# --------------------------------------------------------------------------------------------------
# The oracle
# --------------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    kind: str            # "ok" (decoded), "rejected" (a TriadicError), "crash"
    message: str = ""
    frames: int = 0
    seconds: float = 0.0


def _frames_ok(frames, header) -> str:
    fmt = header.format
    for f in frames:
        shapes = [fmt.plane_shape(i, header.height, header.width) for i in range(fmt.planes)]
        if [p.shape for p in f.planes] != shapes or any(p.dtype != fmt.dtype for p in f.planes):
            return "a decoded frame has the wrong shape or dtype"
        if fmt.bit_depth not in (8, 16) and any(int(p.max(initial=0)) > fmt.max_value for p in f.planes):
            return "a decoded sample exceeds the bit depth"
    return ""


def run_one(data: bytes, salvage: bool = True) -> Outcome:
    """Decode ``data`` (and salvage it); classify what happened."""
    from triadic import codec

    start = time.perf_counter()
    out = Outcome("ok")
    try:
        frames = list(triadic.decode(data))
        out.frames = len(frames)
        with tc.ContainerReader(data) as reader:
            problem = _frames_ok(frames, reader.header)
        if problem:
            out = Outcome("crash", problem)
    except TriadicError as exc:
        cause = exc.__cause__
        if cause is not None and not isinstance(cause, TriadicError):
            out = Outcome("crash", f"{type(exc).__name__}({exc}) caused by "
                          + "".join(traceback.format_exception(cause)[-3:]).strip())
        else:
            out = Outcome("rejected", f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - that is what the fuzzer looks for
        out = Outcome("crash", "".join(traceback.format_exception(exc)[-4:]).strip())
    if salvage and out.kind != "crash" and hasattr(codec, "salvage"):
        try:
            for _ in codec.salvage(data):
                pass
        except TriadicError as exc:
            cause = exc.__cause__
            if cause is not None and not isinstance(cause, TriadicError):
                out = Outcome("crash", f"salvage: {exc} caused by {cause!r}")
        except Exception as exc:  # noqa: BLE001
            out = Outcome("crash", "salvage: " + "".join(traceback.format_exception(exc)[-4:]).strip())
    out.seconds = time.perf_counter() - start
    return out


# --------------------------------------------------------------------------------------------------
# A worker loop (used by test_fuzz.py in a subprocess, and by benchmarks/fuzz.py)
# --------------------------------------------------------------------------------------------------

def worker(seed: int, seconds: float, limit: float, max_inputs: int | None, crash_dir: str | None,
           start: int = 0, trace: str | None = None) -> dict:
    """Fuzz for ``seconds`` (or ``max_inputs``) from input number ``start``; every input is
    reproducible from (seed, number) with :func:`reproduce`.

    A hard per-input limit is enforced by faulthandler: an input that runs longer than ``limit``
    seconds (a hang, even inside a numba kernel) dumps the stacks and exits the process with
    status 1. With ``trace``, the number of the input under test is kept in that file (rewritten
    in place, 12 bytes), so the parent can name the input that hung or crashed the interpreter.
    """
    import faulthandler

    seeds = make_seeds()
    parsed = {name: parse(data) for name, data in seeds.items()}
    for data in seeds.values():  # compile the kernels before the clock starts
        run_one(data)
    counts = {"ok": 0, "rejected": 0, "crash": 0}
    crashes = []
    slowest, slowest_input = 0.0, None
    began = time.perf_counter()
    n = start
    marker = open(trace, "r+b" if os.path.exists(trace) else "w+b", buffering=0) if trace else None
    while time.perf_counter() - began < seconds and (max_inputs is None or n - start < max_inputs):
        what, data = mutate(random.Random(f"{seed}-{n}"), seeds, parsed)
        if marker is not None:
            marker.seek(0)
            marker.write(b"%11d\n" % n)
        faulthandler.dump_traceback_later(limit, exit=True)
        out = run_one(data)
        faulthandler.cancel_dump_traceback_later()
        if out.seconds > slowest:
            slowest, slowest_input = out.seconds, {"input": n, "what": what, "outcome": out.kind}
        counts[out.kind] += 1
        if out.kind == "crash":
            crashes.append({"input": n, "what": what, "message": out.message})
            if crash_dir:
                os.makedirs(crash_dir, exist_ok=True)
                with open(os.path.join(crash_dir, f"crash-{seed}-{n}.tri"), "wb") as f:
                    f.write(data)
        n += 1
    return {"seed": seed, "start": start, "inputs": n - start,
            "seconds": round(time.perf_counter() - began, 2),
            "slowest_input_seconds": round(slowest, 4), "slowest_input": slowest_input,
            "outcomes": counts, "crashes": crashes}


def reproduce(seed: int, number: int) -> tuple[str, bytes]:
    """The input ``number`` of worker ``seed``: (what was mutated, the bytes)."""
    seeds = make_seeds()
    return mutate(random.Random(f"{seed}-{number}"), seeds)


# --------------------------------------------------------------------------------------------------
# Single-bit-flip detection
# --------------------------------------------------------------------------------------------------

def flip_detection(data: bytes, recompute_crcs: bool = False) -> dict:
    """Flip every bit of ``data`` (or, with ``recompute_crcs``, every bit of every frame payload,
    with the CRCs, index and trailer made valid again) and decode each result.

    Counts: ``detected`` (a TriadicError), ``silent`` (decoded, to different frames) and
    ``harmless`` (decoded to the same frames), plus ``crash`` (anything else; must be 0).
    """
    def planes(stream):
        return [p.tobytes() for f in triadic.decode(stream) for p in f.planes]

    reference = planes(data)
    counts = {"bits": 0, "detected": 0, "silent": 0, "harmless": 0, "crash": 0}
    if recompute_crcs:
        stream = parse(data)
        variants = ((i, bit) for i, (_, payload) in enumerate(stream.chunks)
                    for bit in range(8 * len(payload)))
    else:
        variants = ((None, bit) for bit in range(8 * len(data)))
    for i, bit in variants:
        if i is None:
            damaged = bytearray(data)
            damaged[bit // 8] ^= 1 << (bit % 8)
            damaged = bytes(damaged)
        else:
            chunks = [list(c) for c in stream.chunks]
            payload = bytearray(chunks[i][1])
            payload[bit // 8] ^= 1 << (bit % 8)
            chunks[i][1] = bytes(payload)
            damaged = build(Stream(dict(stream.values), chunks))
        counts["bits"] += 1
        try:
            same = planes(damaged) == reference
            counts["harmless" if same else "silent"] += 1
        except TriadicError:
            counts["detected"] += 1
        except Exception:  # noqa: BLE001
            counts["crash"] += 1
    counts["rate"] = counts["detected"] / max(1, counts["bits"])
    return counts


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description="run one fuzz worker; prints a JSON summary")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--limit", type=float, default=10.0, help="hard per-input limit, seconds")
    parser.add_argument("--inputs", type=int, default=None)
    parser.add_argument("--start", type=int, default=0, help="number of the first input")
    parser.add_argument("--crash-dir", default=None)
    parser.add_argument("--trace", default=None, help="file that holds the input under test")
    args = parser.parse_args()
    print(json.dumps(worker(args.seed, args.seconds, args.limit, args.inputs, args.crash_dir,
                            args.start, args.trace)))
