"""Fuzzing the decoder: only triadic's own errors may escape, on any input, in bounded time.

The engine is tests/fuzzing.py (seeds, raw and CRC-preserving structural mutations, symbol-level
re-encoding, the oracle). Here it runs for a fixed budget: hypothesis drives the mutations
in-process, and a subprocess repeats a fixed number of inputs with numba's bounds checking on, so
a kernel that reads or writes out of bounds raises instead of silently reading garbage.
``python benchmarks/fuzz.py`` runs the same engine for as long as you like.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzzing
import triadic
from triadic import codec
from triadic.errors import CorruptStreamError

HERE = os.path.dirname(os.path.abspath(__file__))

#: In-process hypothesis budget (examples per test); each input decodes in a few milliseconds.
EXAMPLES = int(os.environ.get("TRIADIC_FUZZ_EXAMPLES", "250"))
#: Inputs the bounds-checked subprocess tries.
BOUNDSCHECK_INPUTS = int(os.environ.get("TRIADIC_FUZZ_BOUNDSCHECK_INPUTS", "200"))
#: numba's cache does not key on bounds checking: bounds-checked code gets its own cache (kept).
BOUNDSCHECK_CACHE = os.path.join(tempfile.gettempdir(), f"triadic-numba-boundscheck-{os.getuid()}")
#: Per-input limit (a hang is a failure). Generous: a loaded CI machine is slow.
LIMIT = timedelta(seconds=5)


@pytest.fixture(scope="module")
def seeds():
    seeds = fuzzing.make_seeds()
    for data in seeds.values():  # load every decoder kernel before any per-input deadline runs
        fuzzing.run_one(data)
    return seeds


@pytest.fixture(scope="module")
def parsed(seeds):
    return {name: fuzzing.parse(data) for name, data in seeds.items()}


def assert_no_crash(what, data):
    out = fuzzing.run_one(data)
    assert out.kind != "crash", f"{what}: {out.message}"
    assert out.seconds < LIMIT.total_seconds(), f"{what}: took {out.seconds:.1f} s"


def test_seeds_round_trip_through_the_rebuilder(seeds, parsed):
    """build(parse(x)) is byte-exact, so structural mutations differ from valid files only where
    they mean to; and every seed decodes."""
    for name, data in seeds.items():
        assert fuzzing.build(parsed[name]) == data, name
        assert fuzzing.run_one(data).kind == "ok", name


@settings(max_examples=EXAMPLES, deadline=LIMIT, database=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(rng=st.randoms(use_true_random=False))
def test_fuzz_structural(rng, seeds, parsed):
    """CRC-valid mutations: the payload decoder is what gets attacked."""
    name = rng.choice(sorted(seeds))
    base = parsed[name]
    stream = fuzzing.Stream(dict(base.values), [list(c) for c in base.chunks])
    steps = []
    for _ in range(rng.choice([1, 1, 2, 3])):
        mutation = rng.choice(fuzzing.STRUCTURAL)
        steps.append(mutation.__name__)
        if stream.chunks:
            mutation(rng, stream, seeds)
    assert_no_crash(f"{name}: {' + '.join(steps)}", fuzzing.build(stream))


@settings(max_examples=EXAMPLES // 2, deadline=LIMIT, database=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(rng=st.randoms(use_true_random=False))
def test_fuzz_raw(rng, seeds):
    """Bit flips, insertions, deletions, truncations and splices of whole files."""
    name = rng.choice(sorted(seeds))
    data = seeds[name]
    mutation = rng.choice(fuzzing.RAW)
    mutated = mutation(rng, data, seeds)
    assert_no_crash(f"{name}: {mutation.__name__}", mutated)
    if mutated not in seeds.values():  # the container's CRCs leave no raw damage undetected
        assert fuzzing.run_one(mutated).kind == "rejected" or _same_frames(mutated, data)


def _same_frames(a, b):
    fa, fb = list(triadic.decode(a)), list(triadic.decode(b))
    return len(fa) == len(fb) and all(x.equals(y) for x, y in zip(fa, fb))


def test_fuzz_with_bounds_checking(tmp_path):
    """A fixed set of inputs under NUMBA_BOUNDSCHECK=1 (encoder kernels too: the seeds are encoded
    in the subprocess), with a hard per-input limit. numba's cache does not key on bounds checking,
    so the subprocess compiles into its own cache directory (kept between runs)."""
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=BOUNDSCHECK_CACHE)
    cmd = [sys.executable, os.path.join(HERE, "fuzzing.py"), "--seed", str(int(time.time()) % 1000),
           "--seconds", "60", "--inputs", str(BOUNDSCHECK_INPUTS), "--limit", "20",
           "--crash-dir", str(tmp_path)]
    # a hang fails through the per-input limit; this timeout only has to outlast a cold cache,
    # whose compilation of every kernel with bounds checking took 4.5 min on an idle 2-core machine
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"fuzz worker died (hang or crash):\n{proc.stderr[-3000:]}"
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["inputs"] > 0
    assert not report["crashes"], (
        f"{len(report['crashes'])} crashes under bounds checking (reproduce with "
        f"fuzzing.reproduce({report['seed']}, N)): {report['crashes'][:3]}")


def test_codec_tests_pass_with_bounds_checking():
    """tests/test_codec.py (every pixel format, odd sizes down to 1x1, 16-bit extremes, real
    footage) again with NUMBA_BOUNDSCHECK=1: the encoder's kernels too stay inside their arrays."""
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=BOUNDSCHECK_CACHE)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                           os.path.join(HERE, "test_codec.py")], env=env, capture_output=True,
                          text=True, timeout=600, cwd=os.path.dirname(HERE))
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_every_single_bit_flip_is_detected(seeds):
    """CRC-32 per chunk, header and index: flip each bit of a small stream; all must be rejected."""
    counts = fuzzing.flip_detection(seeds["gray16le-noise"])
    print(f"single-bit flips detected: {counts['detected']}/{counts['bits']} = {counts['rate']:.2%}")
    assert counts["crash"] == 0 and counts["rate"] == 1.0, counts


def test_decoder_error_names_the_damaged_frame(seeds, parsed):
    """A payload that passes its CRC but is nonsense: the error names the frame, chained if it was
    unexpected, and the frames before it decoded."""
    base = parsed["yuv420p-odd"]
    stream = fuzzing.Stream(dict(base.values), [list(c) for c in base.chunks])
    stream.chunks[2][1] = b"\x01\x00\x00\x00" * 3
    got = []
    with pytest.raises(CorruptStreamError, match=r"^frame 2 is damaged"):
        for frame in triadic.decode(fuzzing.build(stream)):
            got.append(frame)
    assert len(got) == 2


def test_parallel_decode_names_the_damaged_frame(tmp_path):
    """With worker processes too: the frame is named and only triadic's error reaches the caller."""
    from conftest import make_frames

    path = tmp_path / "p.tri"
    triadic.encode(make_frames("yuv420p", 40, 48, 9, seed=2), path, keyint=3, jobs=1)
    stream = fuzzing.parse(path.read_bytes())
    stream.chunks[5][1] = b"\x01\x00\x00\x00" * 3
    with pytest.raises(CorruptStreamError, match=r"^frame 5 is damaged"):
        list(triadic.decode(fuzzing.build(stream), jobs=2))


def test_salvage_skips_to_the_next_keyframe(seeds, parsed):
    """salvage yields every frame: intact ones decoded, lost ones (damaged, or depending on a
    damaged one) as None; the intact ones equal a clean decode."""
    data = seeds["yuv420p-odd"]  # keyint 2: frames 0 and 2 are keyframes
    clean = list(triadic.decode(data))
    base = parsed["yuv420p-odd"]
    for broken, lost in ((0, [0, 1]), (1, [1]), (2, [2, 3]), (3, [3])):
        stream = fuzzing.Stream(dict(base.values), [list(c) for c in base.chunks])
        stream.chunks[broken][1] = b"\x01\x00\x00\x00" * 3  # CRC intact, payload nonsense
        for damaged in (fuzzing.build(stream), _flip_in_chunk(data, broken)):
            out = list(codec.salvage(damaged))
            assert [i for i, f in out] == [0, 1, 2, 3]
            assert [i for i, f in out if f is None] == lost
            assert all(f.equals(clean[i]) for i, f in out if f is not None)


def _flip_in_chunk(data, i):
    from triadic.container import ContainerReader

    with ContainerReader(data) as reader:
        offset = reader.index()[i][0]
    damaged = bytearray(data)
    damaged[offset + 7] ^= 0x20
    return bytes(damaged)


@pytest.mark.parametrize("damage", ["truncate", "insert", "length+index", "zeros"])
def test_salvage_finds_chunks_without_the_index(seeds, damage):
    """Without a usable index the chunks are walked by length and resynchronised by CRC; frames
    are still numbered exactly."""
    from triadic.container import ContainerReader

    data = seeds["gray-motion"]  # 5 frames, keyint 4: keyframes 0 and 4
    with ContainerReader(data) as reader:
        offsets = [o for o, _ in reader.index()]
    clean = list(triadic.decode(data))
    b = bytearray(data)
    if damage == "truncate":
        b = b[: offsets[3] + 20]
        lost = [3, 4]
    elif damage == "insert":  # every later offset shifts: index and trailer point wrong
        b[offsets[2] + 9:offsets[2] + 9] = b"junk"
        lost = [2, 3]
    elif damage == "length+index":
        b[offsets[1] + 2] ^= 0x40
        b[-20] ^= 0x01
        lost = [1, 2, 3]
    else:
        b[offsets[1]:offsets[2] + 12] = bytes(offsets[2] + 12 - offsets[1])
        lost = [1, 2, 3]
    out = list(codec.salvage(bytes(b)))
    assert [i for i, f in out if f is None] == lost
    assert all(f.equals(clean[i]) for i, f in out if f is not None)


def test_cli_salvage(tmp_path, seeds, capsys):
    from triadic import cli

    good = tmp_path / "good.tri"
    good.write_bytes(seeds["yuv420p-odd"])
    bad = tmp_path / "bad.tri"
    bad.write_bytes(_flip_in_chunk(seeds["yuv420p-odd"], 1))
    out = tmp_path / "out.y4m"
    assert cli.main(["decode", str(bad), str(out)]) == 2  # default: all or nothing
    err = capsys.readouterr().err
    assert err.startswith("triadic: error: frame 1 ") and err.count("\n") == 1 and not out.exists()
    assert cli.main(["decode", str(bad), str(out), "--salvage", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "lost 1 of 4 frames: 1;" in err
    assert len(list(triadic.read_frames(out))) == 3
    assert cli.main(["decode", str(good), str(tmp_path / "all.y4m"), "--salvage", "--quiet"]) == 0
    # nothing salvageable: exit 2 and no output
    stream = fuzzing.parse(seeds["yuv420p-odd"])
    for chunk in stream.chunks:
        chunk[1] = b"\x01\x00\x00\x00"
    bad.write_bytes(fuzzing.build(stream))
    none = tmp_path / "none.y4m"
    assert cli.main(["decode", str(bad), str(none), "--salvage"]) == 2
    assert not none.exists() and "nothing to salvage" in capsys.readouterr().err
