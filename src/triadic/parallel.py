"""Segment-parallel encoding and decoding in worker processes.

A keyframe resets every piece of coding state (context counts, references, previous residuals),
so a segment (a keyframe and the frames up to the next one) is coded by a fresh
:class:`~triadic.codec.FrameEncoder` / :class:`~triadic.codec.FrameDecoder` exactly as the serial
coder codes it. Worker processes code whole segments; the parent reads the input, hands out
segments and collects the results in order, so the output (the chunk payloads, hence the file)
is byte for byte what ``jobs=1`` produces.

Memory stays bounded, whatever the length of the video: encoding holds the raw frames of at most
``jobs + 1`` segments (``jobs`` being coded, one waiting for a worker) and the payloads of at most
``2 jobs + 1``; decoding holds at most ``jobs + 1`` segments. A segment whose frames
would take more than :data:`MAX_SEGMENT_BYTES` is coded in-process instead.

Failure: a worker that dies (killed, out of memory) raises :class:`WorkerError`; an interrupt
(KeyboardInterrupt, SIGTERM turned into one by the CLI) or any error kills the workers at once.
The container writer's ``with`` block then removes its temporary file, so no partial output is
left. Workers ignore SIGINT: Ctrl-C reaches the whole process group, and the parent alone decides.
Workers are forked (see :func:`_context`), or, when other threads run, forked from a fork server:
then, as with any ``multiprocessing`` program, a script must guard its top level with
``if __name__ == "__main__":``.

The pool of workers is kept between calls with the same ``jobs`` (a warm pool skips loading the
numba kernels again); :func:`shutdown` ends it, and it ends with the interpreter.
"""

from __future__ import annotations

import atexit
import collections
import hashlib
import itertools
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Iterable, Iterator

from .codec import FrameDecoder, FrameEncoder, FrameLog
from .errors import InputError, TriadicError
from .params import EncodeParams, Frame, StreamHeader

#: A segment whose raw frames take more than this is coded in-process (bounded memory).
MAX_SEGMENT_BYTES = 1 << 30
#: With ``jobs=None``, segments smaller than this many samples are coded in-process: starting
#: workers costs more than it saves on tiny pictures.
AUTO_MIN_SAMPLES = 1 << 22
#: What a worker needs beyond the frames it is handed, for the default ``jobs``: the interpreter
#: and the kernels, plus per luma sample the reference window, the search's quarter-sample planes
#: and the work buffers. One process peaked at 800 MB resident encoding 1920x1080 (8 frames) and
#: 424 MB decoding it, at 2.3 GB and 1.15 GB on 3840x2160 (6 frames), some 150 MB of it before
#: the first frame: 270-330 bytes per luma sample encoding, 130-160 decoding.
WORKER_BYTES = 200 << 20
ENCODE_BYTES_PER_SAMPLE = 350
DECODE_BYTES_PER_SAMPLE = 160


class WorkerError(TriadicError):
    """A worker process died (killed, out of memory) before it returned its segment, or runs
    other triadic code than this process (the package changed on disk meanwhile)."""


def _code_fingerprint() -> str:
    """A hash of the package's files (code and priors) as they are now.

    Workers that were not forked from this process import triadic afresh (a fork server, a Dask
    worker, another machine); one that finds another fingerprint than the parent's refuses to
    work, since its bytes could differ."""
    root = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".py", ".npz")):
                path = os.path.join(folder, name)
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                digest.update(f"{os.path.relpath(path, root)}:{len(data)}:".encode())
                digest.update(data)
    return digest.hexdigest()[:16]


#: What this process imported (see :func:`_code_fingerprint`).
FINGERPRINT = _code_fingerprint()


def _check_fingerprint(expected: str) -> None:
    if expected != FINGERPRINT:
        raise WorkerError("triadic changed on disk while it was running (a worker imported other "
                          "code than the parent): run again")


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def available_memory(meminfo: str = "/proc/meminfo", cgroup: str = "/sys/fs/cgroup") -> int | None:
    """Bytes that new processes may still take: the kernel's MemAvailable, or less where the
    cgroup this process runs in has a lower limit (a container's: cgroup v2's memory.max, or
    v1's memory/memory.limit_in_bytes, less what it uses); None where neither is known (not
    Linux)."""
    found = []
    try:
        with open(meminfo) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in (("memory.max", "memory.current"),
                                   ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        try:
            with open(os.path.join(cgroup, limit_file)) as f:
                limit = f.read().strip()
            if limit != "max":  # (v1 writes a huge number for no limit: MemAvailable is less)
                with open(os.path.join(cgroup, usage_file)) as f:
                    found.append(max(0, int(limit) - int(f.read().strip())))
        except (OSError, ValueError):
            pass
    return min(found) if found else None


def memory_jobs(header: StreamHeader, decoding: bool = False) -> int | None:
    """How many workers the available memory holds (at least 1), each with its working set and
    two copies of a segment's raw frames (its own, and the parent's while it waits); None when
    the available memory is not known."""
    free = available_memory()
    if free is None:
        return None
    per_sample = DECODE_BYTES_PER_SAMPLE if decoding else ENCODE_BYTES_PER_SAMPLE
    worker = (WORKER_BYTES + per_sample * header.width * header.height
              + 2 * frame_bytes(header) * header.keyint)
    return max(1, free // worker)


def check_jobs(jobs: int | None) -> None:
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
        raise InputError(f"jobs must be a positive integer or None, got {jobs!r}")


def frame_bytes(header: StreamHeader) -> int:
    """Bytes of one raw frame (all planes, native sample size)."""
    fmt = header.format
    item = fmt.dtype.itemsize
    return sum(item * h * w for h, w in (fmt.plane_shape(i, header.height, header.width)
                                         for i in range(fmt.planes)))


def plan_jobs(jobs: int | None, header: StreamHeader, decoding: bool = False) -> int:
    """How many processes to code (``decoding``: decode) a stream with this header (1: in-process).

    ``None`` means every core, when the segments are large enough to pay for the workers, and no
    more workers than the available memory holds (:func:`memory_jobs`): on a machine with many
    cores and large pictures, all cores at once would be killed for memory.
    ``header.frame_count`` (0 when unknown, as while encoding) of at most one segment needs none.
    """
    check_jobs(jobs)
    per_frame = frame_bytes(header)
    if jobs is None:
        jobs = available_cores()
        samples = per_frame // header.format.dtype.itemsize * header.keyint
        if samples < AUTO_MIN_SAMPLES:
            return 1
        jobs = min(jobs, memory_jobs(header, decoding) or jobs)
    if per_frame * header.keyint > MAX_SEGMENT_BYTES:
        return 1
    if 0 < header.frame_count <= header.keyint:
        return 1
    return jobs


# --------------------------------------------------------------------------------------------------
# The pool
# --------------------------------------------------------------------------------------------------

_POOL: tuple[int, ProcessPoolExecutor] | None = None


def _watch_parent(parent: int) -> None:
    """Exit when the parent is gone (killed with SIGKILL, it cannot stop its workers; and a forked
    worker keeps the task pipe open itself, so it would wait for work forever)."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


_WORKER_THREADS = 1  # a worker process's share of the cores (_init_worker)


def _init_worker(threads: int) -> None:
    global _WORKER_THREADS
    _WORKER_THREADS = threads
    # The parent handles Ctrl-C (sent to the whole process group) and kills the workers itself;
    # SIGTERM must kill a worker, not raise (a CLI parent forked with its SIGTERM handler).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True,
                     name="triadic-watch-parent").start()
    try:  # jobs processes x threads numba threads each: no oversubscription
        import numba

        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    except Exception:  # noqa: BLE001 - only a tuning
        pass


def _context():
    """fork while this process runs no other Python thread (quick, and the workers inherit the
    loaded kernels; it is also what lets a script without an ``if __name__ == "__main__"`` guard
    use the workers); otherwise the fork server, whose workers never inherit a lock that another
    thread held at the fork."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and sys.platform.startswith("linux") and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["triadic.parallel"])  # imported once, in the server
        return ctx
    return multiprocessing.get_context("spawn")


def _pool(jobs: int) -> ProcessPoolExecutor:
    global _POOL
    if _POOL is not None and _POOL[0] == jobs:
        return _POOL[1]
    shutdown()
    threads = max(1, available_cores() // jobs)
    executor = ProcessPoolExecutor(max_workers=jobs, mp_context=_context(),
                                   initializer=_init_worker, initargs=(threads,))
    _POOL = (jobs, executor)
    return executor


def _kill(executor: ProcessPoolExecutor) -> None:
    """Stop every worker now (running segments included) and release the pool."""
    processes = list((getattr(executor, "_processes", None) or {}).values())
    for process in processes:
        try:
            process.kill()
        except Exception:  # noqa: BLE001 - already gone
            pass
    executor.shutdown(wait=True, cancel_futures=True)


def shutdown(kill: bool = False) -> None:
    """End the worker pool (idle workers exit; with ``kill``, running ones are killed)."""
    global _POOL
    pool, _POOL = _POOL, None
    if pool is not None:
        if kill:
            _kill(pool[1])
        else:
            pool[1].shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown, True)


class _Lease:
    """The shared pool for one encode or decode. Leaving by an exception (an error, an interrupt,
    the consumer closing a generator) kills the workers, so nothing keeps running behind it."""

    def __init__(self, jobs: int):
        self.jobs = jobs
        self.executor = _pool(jobs)

    def __enter__(self) -> "_Lease":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            shutdown(kill=True)
        return False

    def submit(self, fn, *args) -> Future:
        try:
            return self.executor.submit(fn, *args)
        except BrokenProcessPool as exc:
            raise WorkerError(f"a worker process died ({exc})") from None

    @staticmethod
    def result(future: Future, what: str):
        try:
            return future.result()
        except BrokenProcessPool:
            raise WorkerError(f"a worker process died while coding {what} "
                              f"(killed, or out of memory?)") from None


# --------------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------------

def _encode_task(fingerprint: str, header, params, start, frames):
    _check_fingerprint(fingerprint)
    return encode_segment(header, params, start, frames, _WORKER_THREADS, reuse=True)


def _decode_task(fingerprint: str, header, chunks):
    _check_fingerprint(fingerprint)
    return decode_segment(header, chunks, reuse=True)


#: A worker process's buffers from its last segment, for its next one (``reuse``): the encoder's
#: (codec.EncoderBuffers) and the decoder's window of reference frames.
_SPARE: dict = {}


def encode_segment(header: StreamHeader, params: EncodeParams, start: int, frames: list[Frame],
                   threads: int = 1, reuse: bool = False) -> list[tuple[bytes, bool, FrameLog]]:
    """Payloads of the segment of ``frames`` that starts at frame ``start`` (a keyframe: a
    multiple of keyint), with ``threads`` threads (FrameEncoder). A worker task; also what
    :mod:`triadic.batch` runs on Dask workers. ``reuse`` (a worker's task, whose process codes
    segment after segment): the encoder takes over the buffers the last one left in this
    process, and leaves its own (codec.EncoderBuffers)."""
    encoder = FrameEncoder(header, params, threads, _SPARE.pop("encode", None) if reuse else None)
    encoder.count = start  # frame numbers in the logs, and where the keyframes fall
    out = []
    try:
        for i, (frame, following, after) in enumerate(_with_next(frames)):
            frames[i] = None  # release each frame once it is coded (the window holds the next two)
            out.append(encoder.encode(frame, following, after))
    finally:
        encoder.close()
        if reuse:
            _SPARE["encode"] = encoder.buffers()
    return out


def _with_next(frames: Iterable[Frame]) -> Iterator[tuple[Frame, Frame | None, Frame | None]]:
    """Each frame with the two after it (None beyond the last): the encoder's search thread
    starts on them while the current one is coded."""
    frames = iter(frames)
    window = list(itertools.islice(frames, 3))
    while window:
        yield tuple(window + [None, None])[:3]
        window = window[1:] + list(itertools.islice(frames, 1))


def _segments(frames: Iterable[Frame], size: int) -> Iterator[list[Frame]]:
    frames = iter(frames)
    while True:
        # islice, not a list kept in this frame: a suspended generator must not pin a segment
        segment = list(itertools.islice(frames, size))
        if not segment:
            return
        yield segment
        del segment


def encode_frames(frames: Iterable[Frame], header: StreamHeader, params: EncodeParams,
                  jobs: int | None = 1) -> Iterator[tuple[bytes, bool, FrameLog]]:
    """(payload, keyframe, log) per frame, in order: what ``FrameEncoder.encode`` returns, with
    segments coded in ``jobs`` processes (see :func:`plan_jobs`). Close the generator (or let it
    finish) to release the workers."""
    threads = available_cores() if jobs is None else min(jobs, available_cores())  # in-process
    jobs = plan_jobs(jobs, header)
    if jobs == 1:
        encoder = FrameEncoder(header, params, threads)
        try:
            for frame, following, after in _with_next(frames):
                yield encoder.encode(frame, following, after)
        finally:
            encoder.close()
        return
    segments = _segments(frames, params.keyint)
    first = next(segments, None)
    if first is None:
        return
    second = next(segments, None)
    if second is None:  # a single segment: no workers needed
        yield from encode_segment(header, params, 0, first, threads)
        return
    queue = collections.deque([first, second])
    first = second = None
    with _Lease(jobs) as pool:
        pending: collections.deque = collections.deque()  # (start, count, future), in order
        start = 0
        exhausted = False
        while pending or not exhausted:
            while pending and pending[0][2].done():  # write what is ready, in order
                yield from _encoded(pool, *pending.popleft())
            unfinished = [f for _, _, f in pending if not f.done()]
            # Raw frames live only in unfinished segments: at most jobs + 1 of them (one waiting
            # for a worker, so none idles). Finished ones hold payloads until the segments before
            # them are written; 2 jobs + 1 in all keeps that bounded behind a slow segment.
            if not exhausted and len(unfinished) <= jobs and len(pending) <= 2 * jobs:
                segment = queue.popleft() if queue else next(segments, None)
                if segment is None:
                    exhausted = True
                    continue
                count = len(segment)
                future = pool.submit(_encode_task, FINGERPRINT, header, params, start, segment)
                pending.append((start, count, future))
                start += count
                segment = None
            elif unfinished:
                wait(unfinished, return_when=FIRST_COMPLETED)


def _encoded(pool: _Lease, start: int, count: int, future: Future):
    return pool.result(future, f"frames {start}-{start + count - 1}")


# --------------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------------

def decode_segment(header: StreamHeader, chunks: list[tuple[int, bool, bytes]], reuse: bool = False
                   ) -> tuple[list[Frame], Exception | None]:
    """The frames of one segment's chunks, and the error that stopped it (None: all decoded).

    Frames before a damaged one are returned with the error, so the caller yields them first,
    as the serial decoder would. ``reuse``: as encode_segment's (the window's buffers)."""
    decoder = FrameDecoder(header)
    if reuse:
        decoder.segment.adopt_window(_SPARE.pop("decode", None))
    frames: list[Frame] = []
    try:
        for i, (index, keyframe, payload) in enumerate(chunks):
            frames.append(decoder.decode(payload, keyframe, index if i == 0 else None))
            chunks[i] = None
    except TriadicError as exc:
        return frames, exc
    finally:
        if reuse:
            _SPARE["decode"] = decoder.segment.refs
    return frames, None


def decode_chunks(chunks: Iterable[tuple[int, bool, bytes]], header: StreamHeader,
                  jobs: int | None = 1) -> Iterator[Frame]:
    """Frames of ``(index, keyframe, payload)`` chunks (``ContainerReader.frames()``), in order,
    with segments decoded in ``jobs`` processes; errors surface where the serial decoder raises
    them, after every frame before the damage."""
    asked = jobs
    jobs = plan_jobs(jobs, header, decoding=True)
    if jobs == 1:
        # one process; more cores asked for (one segment, say): a thread reconstructs planes
        # (and, given the next payload, decodes the next frame's start meanwhile)
        decoder = FrameDecoder(header, threads=asked != 1 and available_cores() > 1)
        chunks = iter(chunks)
        deferred: Exception | None = None
        try:
            item = next(chunks, None)
            while item is not None:
                try:
                    following = next(chunks, None)
                except Exception as exc:  # noqa: BLE001 - raised after the frame before it
                    deferred, following = exc, None
                _, keyframe, payload = item
                yield decoder.decode(payload, keyframe, following=following[2] if following and not following[1]
                                     else None)
                item = following
            if deferred is not None:
                raise deferred
        finally:
            decoder.close()
        return
    limit = header.keyint  # a longer run without keyframe is decoded in-process (bounded memory)
    with _Lease(jobs) as pool:
        pending: collections.deque = collections.deque()
        segment: list = []
        inline: FrameDecoder | None = None
        deferred: Exception | None = None
        chunks = iter(chunks)
        while True:
            try:
                item = next(chunks, None)
            except Exception as exc:  # noqa: BLE001 - raised after the frames before it
                deferred = exc
                item = None
            if item is None:
                break
            index, keyframe, payload = item
            if not isinstance(payload, bytes):
                payload = bytes(payload)
            if keyframe:
                inline = None
                if segment:
                    future = pool.submit(_decode_task, FINGERPRINT, header, segment)
                    pending.append((segment[0][0], future))
                    segment = []
                    while len(pending) > jobs:
                        yield from _decoded(pool, *pending.popleft())
            if inline is not None:
                yield inline.decode(payload, keyframe)
                continue
            segment.append((index, keyframe, payload))
            if len(segment) > limit:  # longer than keyint: finish this segment in-process
                while pending:
                    yield from _decoded(pool, *pending.popleft())
                inline = FrameDecoder(header)
                for i, (index, keyframe, payload) in enumerate(segment):
                    yield inline.decode(payload, keyframe, index if i == 0 else None)
                segment = []
        if segment:
            future = pool.submit(_decode_task, FINGERPRINT, header, segment)
            pending.append((segment[0][0], future))
            segment = []
        while pending:
            yield from _decoded(pool, *pending.popleft())
        if deferred is not None:
            raise deferred


def _decoded(pool: _Lease, start: int, future: Future) -> Iterator[Frame]:
    frames, error = pool.result(future, f"the segment at frame {start}")
    yield from frames
    if error is not None:
        raise error
