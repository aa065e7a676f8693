"""Faults and load: interrupted and failing writes leave no partial output, encodes are
deterministic (runs, NUMBA_NUM_THREADS, jobs), and memory does not grow with the video's length.

The signal tests run the real command line in a subprocess, slowed down per frame so the signal
lands mid-stream, and check that the target name never holds anything and no temporary file stays.
"""

import errno
import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import triadic
from conftest import make_frames
from triadic import cli
from triadic import container as tc

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")

# Runs the CLI with a pause after each frame written (encode: a chunk; decode: a sink frame), and
# prints "frame" on stdout after each, so the parent can signal mid-stream.
SLOW_CLI = textwrap.dedent("""
    import sys, time
    from triadic import cli, container, io

    def slow(cls, name):
        original = getattr(cls, name)
        def wrapper(self, *args, **kwargs):
            out = original(self, *args, **kwargs)
            print("frame", flush=True)
            time.sleep(0.05)
            return out
        setattr(cls, name, wrapper)

    slow(container.ContainerWriter, "write_frame")
    slow(io.VideoSink, "write")
    sys.exit(cli.main(sys.argv[1:]))
""")


def leftovers(folder, keep):
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A small video on disk (FFV1 .mkv, 40 frames) and its .tri."""
    folder = tmp_path_factory.mktemp("clip")
    tri = folder / "clip.tri"
    triadic.encode(make_frames("yuv420p", 32, 48, 40, seed=11), tri, keyint=8)
    mkv = folder / "clip.mkv"
    assert cli.main(["decode", str(tri), str(mkv), "--quiet"]) == 0
    return mkv, tri


def run_and_signal(argv, sig, after=3, group=False):
    """Run the slowed CLI in its own process group; signal it (or, like Ctrl-C, its whole group)
    after ``after`` frames; return (exit status, stderr) once every process of the group is gone."""
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", SLOW_CLI, *map(str, argv)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        for _ in range(after):
            line = proc.stdout.readline()
            assert line == "frame\n", (line, proc.stderr.read())
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # worker processes must not outlive the command
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("worker processes outlived the interrupted command")
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


@pytest.mark.parametrize("command, sig", [
    ("encode", signal.SIGINT), ("encode", signal.SIGTERM), ("encode-jobs", signal.SIGINT),
    ("encode-jobs", signal.SIGTERM), ("decode-y4m", signal.SIGINT), ("decode-mkv", signal.SIGTERM),
    ("decode-png", signal.SIGTERM)])
def test_signal_leaves_no_partial_output(tmp_path, clip, command, sig):
    """SIGINT goes to the whole process group (as Ctrl-C does), SIGTERM to the command alone."""
    mkv, tri = clip
    target = tmp_path / {"encode": "out.tri", "encode-jobs": "out.tri", "decode-y4m": "out.y4m",
                         "decode-mkv": "out.mkv", "decode-png": "frames"}[command]
    if command.startswith("encode"):
        argv = ["encode", mkv, target, "--keyint", "4", "--quiet"]
        argv += ["--jobs", "2"] if command == "encode-jobs" else ["--jobs", "1"]
    else:
        argv = ["decode", tri, target, "--quiet", "--jobs", "1"]
    returncode, err = run_and_signal(argv, sig, group=sig == signal.SIGINT)
    assert returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig], err
    assert err.strip() in ("triadic: interrupted", "triadic: terminated"), err
    assert leftovers(tmp_path, keep=set()) == [], "partial output or temporary file left behind"


@pytest.mark.parametrize("interrupt,code,line", [(cli._Terminated, 143, "triadic: terminated"),
                                                  (KeyboardInterrupt, 130, "triadic: interrupted")])
def test_a_signal_inside_a_numba_callback_still_stops_cleanly(monkeypatch, capsys, interrupt, code, line):
    """A signal handler that runs while numba calls back into Python (numba's _numba_unpickle,
    from inside a kernel) reaches the CLI as a SystemError caused by the KeyboardInterrupt; seen
    with SIGTERM during an encode. It gets the same one line and exit status, no traceback; any
    other SystemError still propagates."""
    def stopped_in_numba(args):
        try:
            try:
                raise interrupt()
            except KeyboardInterrupt as exc:
                raise SystemError("<function _numba_unpickle> returned a result with an exception set") from exc
        except SystemError as exc:
            raise SystemError("CPUDispatcher(<function code_planes>) returned a result with an exception set") from exc

    monkeypatch.setattr(cli, "_encode", stopped_in_numba)
    assert cli.main(["encode", "in.mp4", "out.tri"]) == code
    assert capsys.readouterr().err.strip() == line

    def broken(args):
        raise SystemError("not an interrupt")

    monkeypatch.setattr(cli, "_encode", broken)
    with pytest.raises(SystemError, match="not an interrupt"):
        cli.main(["encode", "in.mp4", "out.tri"])


def test_sigkill_never_leaves_a_partial_file_under_the_target_name(tmp_path, clip):
    """SIGKILL cannot be caught: a hidden temporary file may stay, the target name never appears."""
    mkv, _ = clip
    target = tmp_path / "out.tri"
    returncode, _ = run_and_signal(["encode", mkv, target, "--jobs", "1", "--quiet"], signal.SIGKILL)
    assert returncode == -signal.SIGKILL
    assert not target.exists()
    assert all(name.startswith(".") for name in leftovers(tmp_path, keep=set()))


class _FullDisk:
    """A file whose writes fail with ENOSPC once ``room`` bytes have been written."""

    def __init__(self, file, room):
        self._file, self._room = file, room

    def write(self, data):
        self._room -= len(data)
        if self._room < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self._file.write(data)

    def __getattr__(self, name):
        return getattr(self._file, name)


@pytest.mark.parametrize("room", [0, 100, 3000])
def test_disk_full_while_encoding(tmp_path, monkeypatch, room):
    create = tc._create_exclusive

    def failing(directory, stem, mode="xb"):
        path, file = create(directory, stem, mode)
        return path, _FullDisk(file, room)

    monkeypatch.setattr(tc, "_create_exclusive", failing)
    target = tmp_path / "out.tri"
    with pytest.raises(triadic.InputError, match="No space left on device"):
        triadic.encode(make_frames("gray", 32, 32, 4, kind="noise"), target, keyint=2)
    assert leftovers(tmp_path, keep=set()) == []


@pytest.mark.parametrize("output", ["out.y4m", "out.mkv", "frames"])
def test_write_error_while_decoding(tmp_path, clip, monkeypatch, capsys, output):
    from triadic import io

    _, tri = clip
    calls = []

    def failing(self, frame):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io._AvWriter, "write", failing)
    monkeypatch.setattr(io._PngWriter, "write", failing)
    assert cli.main(["decode", str(tri), str(tmp_path / output), "--jobs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("triadic: error: No space left on device") and err.count("\n") == 1
    assert leftovers(tmp_path, keep=set()) == []


def _limited(limit):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


@pytest.mark.parametrize("command", ["encode", "decode"])
def test_file_size_limit_in_a_real_process(tmp_path, clip, command):
    """A real write failure from the kernel (RLIMIT_FSIZE: EFBIG, like a full disk)."""
    mkv, tri = clip
    out = tmp_path / ("out.tri" if command == "encode" else "out.y4m")
    argv = [sys.executable, "-m", "triadic", command, str(mkv if command == "encode" else tri),
            str(out), "--quiet", "--jobs", "1"]
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env,
                          preexec_fn=_limited(20_000))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("triadic: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert leftovers(tmp_path, keep=set()) == []


# --------------------------------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------------------------------

DETERMINISM = textwrap.dedent("""
    import hashlib, json, sys
    import numpy as np
    import triadic
    sys.path.insert(0, sys.argv[1])
    from conftest import make_frames
    out = {}
    cases = {
        "yuv420p": (make_frames("yuv420p", 37, 45, 6, seed=3), dict(keyint=3)),
        "rgb24-slow": (make_frames("rgb24", 24, 20, 3, seed=4), dict(preset="slow")),
        "near-lossless": (make_frames("yuv444p", 20, 28, 3, seed=5), dict(max_error=4)),
        "noise": (make_frames("gray16le", 17, 19, 3, seed=6, kind="noise"), dict(keyint=2)),
    }
    if len(sys.argv) > 3:
        cases["clip"] = (triadic.sample_clip("carphone"), dict(frames=6, keyint=4))
    for name, (frames, params) in cases.items():
        path = sys.argv[2] + "/" + name + ".tri"
        triadic.encode(frames, path, jobs=1, **params)
        data = open(path, "rb").read()
        h = hashlib.sha256()
        for frame in triadic.decode(path, jobs=1):
            for plane in frame.planes:
                h.update(plane.tobytes())
        out[name] = [hashlib.sha256(data).hexdigest(), h.hexdigest()]
    print(json.dumps(out))
""")


def _determinism_run(tmp_path, threads, clip):
    folder = tmp_path / f"threads{threads}"
    folder.mkdir()
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads),
               PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    argv = [sys.executable, "-c", DETERMINISM, os.path.dirname(__file__), str(folder)]
    proc = subprocess.run(argv + (["clip"] if clip else []), capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_identical_bytes_across_runs_and_numba_threads(tmp_path):
    try:
        triadic.sample_clip("carphone")
        clip = True
    except triadic.TriadicError:
        clip = False
    one = _determinism_run(tmp_path, 1, clip)
    two = _determinism_run(tmp_path, 2, clip)
    assert one == two, "NUMBA_NUM_THREADS changed the output"
    # and a third run, in this process (whatever its thread count), agrees with both
    frames = make_frames("yuv420p", 37, 45, 6, seed=3)
    triadic.encode(frames, tmp_path / "here.tri", keyint=3, jobs=1)
    assert hashlib.sha256((tmp_path / "here.tri").read_bytes()).hexdigest() == one["yuv420p"][0]


def test_identical_bytes_across_jobs(tmp_path):
    frames = make_frames("yuv420p", 40, 56, 9, seed=8)
    sizes = set()
    for jobs in (1, 2):
        path = tmp_path / f"jobs{jobs}.tri"
        triadic.encode(frames, path, keyint=3, jobs=jobs)
        sizes.add(path.read_bytes())
        decoded = list(triadic.decode(path, jobs=3 - jobs))
        assert all(a.equals(b) for a, b in zip(frames, decoded)) and len(decoded) == len(frames)
    assert len(sizes) == 1


# --------------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------------

MEMORY = textwrap.dedent("""
    import itertools, json, resource, sys
    import triadic
    sys.path.insert(0, sys.argv[1])
    from conftest import make_frames
    mode, frames, path = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    marks = {}
    if mode == "encode":
        def source():
            for i, frame in enumerate(itertools.cycle(make_frames("yuv420p", 72, 96, 10, seed=12))):
                if i in (10, frames):
                    marks[i] = peak()
                if i == frames:
                    return
                yield frame
        triadic.encode(source(), path, keyint=10, jobs=1)
    else:
        for i, frame in enumerate(triadic.decode(path, jobs=1), 1):
            if i == 10:
                marks[i] = peak()
    marks[frames] = peak()
    print(json.dumps(marks))
""")


def _peaks_kib(tmp_path, mode, frames):
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    path = tmp_path / "long.tri"
    proc = subprocess.run([sys.executable, "-c", MEMORY, os.path.dirname(__file__), mode, str(frames),
                           str(path)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {int(k): v for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}


def test_peak_memory_does_not_grow_with_length(tmp_path):
    """Peak RSS after 10 and after 100 frames of the same (looped) clip, in one process each for
    encode and decode; benchmarks/memory.py measures 30 vs 300 frames of a real clip."""
    for mode in ("encode", "decode"):
        peaks = _peaks_kib(tmp_path, mode, 100)
        growth = peaks[100] - peaks[10]
        print(f"{mode}: peak RSS {peaks[10] / 1024:.1f} MiB after 10 frames, "
              f"{peaks[100] / 1024:.1f} MiB after 100")
        assert growth < 4 * 1024, f"{mode}: peak RSS grew by {growth / 1024:.1f} MiB over 90 frames"


def test_decoder_keeps_no_frames_beyond_its_window(tmp_path):
    """Frames handed out by decode (and frames taken in by encode) are freed once the caller
    drops them: nothing accumulates with the length of the video."""
    import gc
    import weakref

    frames = make_frames("gray", 16, 16, 30, seed=13)
    alive_in = []

    def source():
        for frame in frames:
            copy = triadic.Frame(tuple(p.copy() for p in frame.planes), frame.pix_fmt)
            alive_in.append(weakref.ref(copy.planes[0]))
            yield copy

    triadic.encode(source(), tmp_path / "w.tri", keyint=60, jobs=1)
    alive_out = []
    for frame in triadic.decode(tmp_path / "w.tri", jobs=1):
        alive_out.append(weakref.ref(frame.planes[0]))
    del frame
    gc.collect()
    assert sum(r() is not None for r in alive_in) <= 4, "encode keeps its input frames"
    assert sum(r() is not None for r in alive_out) <= 4, "decode keeps the frames it yielded"
