"""Batches on Dask: encode many videos (and the segments of long ones) across a cluster.

    triadic batch encode a.mp4 b.mp4 ... --out DIR [--scheduler ADDRESS] [--jobs N]

This process (the driver) reads every input in turn and cuts it into segments of ``keyint``
frames; each segment is one Dask task, :func:`triadic.parallel.encode_segment`, the same code a
local worker process runs, so every output is byte for byte what ``triadic encode --jobs 1``
writes. The driver writes each ``DIR/<name>.tri`` from the tasks' payloads in order, through the
container writer: a temporary file renamed when complete, so an output either is whole or is not
there. Frames travel with the tasks, so the workers need no access to the inputs or the output
folder, only the same triadic installed (a task checks a hash of the package's code and priors).

Bounded memory: at most ``window`` segments are in flight over all inputs (default: the cluster's
worker threads + 1). Failures: a task that raises is retried (``retries``); a task whose worker
dies is rescheduled by the scheduler on another worker (its frames are part of the task, so
nothing is lost), up to the scheduler's ``distributed.scheduler.allowed-failures``. An input that
still fails is reported and left without output; the others go on.

Without a scheduler address a :class:`distributed.LocalCluster` of ``jobs`` single-threaded
worker processes runs on this machine (default: every core, but no more workers than the free
memory holds for the largest picture among the inputs: :func:`local_workers`).
"""

from __future__ import annotations

import collections
import logging
import os
import time
import uuid
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

from .container import ContainerWriter
from .errors import InputError, TriadicError
from .parallel import FINGERPRINT
from .params import EncodeParams, validate_frame


def _task(fingerprint: str, header, params, start: int, frames: list):
    """One segment on a Dask worker, which must run the client's triadic code to the byte."""
    from .parallel import FINGERPRINT, encode_segment

    if fingerprint != FINGERPRINT:
        raise TriadicError(f"this Dask worker runs other triadic code than the client (fingerprint "
                           f"{FINGERPRINT}, client {fingerprint}): install the same triadic "
                           f"everywhere (and restart workers that imported an older one)")
    return encode_segment(header, params, start, frames, reuse=True)


@dataclass
class _Output:
    """One input's progress: its writer, segments submitted and written, and its outcome."""

    source: str
    path: str
    start: float
    writer: ContainerWriter | None = None
    header: object = None
    submitted: int = 0      # segments handed to the cluster
    written: int = 0        # segments written, in order
    frames: int = 0
    reading: bool = True
    announced: bool = False
    error: str | None = None
    report: dict = field(default_factory=dict)

    def fail(self, error: BaseException | str) -> None:
        """Record the first error and drop the partial output (the writer removes its temp file)."""
        if self.error is None:
            if isinstance(error, TriadicError):
                error = str(error)
            elif isinstance(error, BaseException):
                error = f"{type(error).__name__}: {error}"
            self.error = error
        if self.writer is not None:
            self.writer.abort()
            self.writer = None

    def maybe_close(self) -> None:
        if self.error is None and not self.reading and self.written == self.submitted \
                and self.writer is not None:
            writer, self.writer = self.writer, None
            if self.frames == 0:
                writer.abort()
                self.error = "the source has no frames"
                return
            writer.close()
            h = self.header
            size = writer.bytes_written
            seconds = time.perf_counter() - self.start
            self.report = {"input": self.source, "output": self.path, "frames": self.frames,
                           "bytes": size, "width": h.width, "height": h.height,
                           "pix_fmt": h.pix_fmt, "bpppf": 8.0 * size / (h.width * h.height * self.frames),
                           "seconds": seconds}


def output_paths(inputs: Sequence[str], out_dir: str) -> list[str]:
    """``out_dir/<stem>.tri`` per input; two inputs with the same stem are refused."""
    paths, seen = [], {}
    for source in inputs:
        stem = os.path.splitext(os.path.basename(os.path.normpath(str(source))))[0] or "video"
        if stem in seen:
            raise InputError(f"{seen[stem]} and {source} would both be written to {stem}.tri")
        seen[stem] = source
        paths.append(os.path.join(out_dir, stem + ".tri"))
    return paths


def start_client(scheduler: str | None = None, jobs: int | None = None):
    """A Dask client: connected to ``scheduler``, or to a new local cluster of ``jobs`` workers
    (single-threaded processes; default every core). Returns (client, cluster or None)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - dask is a dependency
        raise InputError("triadic batch needs dask.distributed: pip install 'dask[distributed]'") from None
    if scheduler:
        # distributed's handshake asserts that its first batch from the scheduler is one message;
        # a broadcast to every client (another client cancelling tasks) can share that batch.
        # Another attempt connects (three in all).
        for attempt in range(3):
            try:
                return Client(scheduler, timeout="30s"), None
            except OSError as exc:
                raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
            except AssertionError:
                if attempt == 2:
                    raise InputError(f"the Dask scheduler at {scheduler} refused the handshake "
                                     "three times") from None
    from .parallel import available_cores

    cluster = LocalCluster(n_workers=jobs or available_cores(), threads_per_worker=1,
                           processes=True, dashboard_address=":0", silence_logs=logging.ERROR)
    return Client(cluster), cluster


def local_workers(inputs: Sequence[str], params: EncodeParams, frames: int | None = None) -> int:
    """Workers for a local cluster: every core, but no more than the free memory holds for the
    largest picture among ``inputs`` (triadic.parallel.memory_jobs). An input that cannot be
    opened counts for nothing here: it fails on its own when it is encoded."""
    from .codec import _header_for
    from .io import open_source
    from .parallel import available_cores, memory_jobs

    jobs = available_cores()
    for source in inputs:
        try:
            with open_source(source, frames=frames) as src:
                header = _header_for(src, params)
        except (TriadicError, OSError):
            continue
        jobs = min(jobs, memory_jobs(header) or jobs)
    return jobs


def encode(inputs: Sequence[str], out_dir: str, *, scheduler: str | None = None,
           jobs: int | None = None, client=None, frames: int | None = None, keyint: int = 60,
           preset: str = "medium", max_error: int = 0, block_size: int = 16,
           references: int | None = None, retries: int = 2,
           window: int | None = None, done: Callable[[dict], None] | None = None) -> list[dict]:
    """Encode every input into ``out_dir`` on a Dask cluster; one report per input, in order.

    A report holds input, output, frames, bytes, width, height, pix_fmt, bpppf and seconds, or
    input, output and error for an input that failed (no output file). ``client`` (a
    ``distributed.Client``) overrides ``scheduler`` and ``jobs``; ``done`` is called with each
    report as its output is complete.
    """
    from .codec import _header_for
    from .io import open_source

    if not inputs:
        raise InputError("no inputs to encode")
    params = EncodeParams(keyint=keyint, preset=preset, max_error=max_error, block_size=block_size,
                          references=references)
    if frames is not None and frames < 1:
        raise InputError(f"--frames must be at least 1, got {frames}")
    if jobs is not None and jobs < 1:
        raise InputError(f"jobs must be a positive integer, got {jobs}")
    out_dir = os.fspath(out_dir)
    if not os.path.isdir(out_dir):
        raise InputError(f"output folder {out_dir} does not exist")
    paths = output_paths(inputs, out_dir)

    cluster, owned = None, client is None
    if owned:
        if jobs is None and not scheduler:
            jobs = local_workers(inputs, params, frames)
        client, cluster = start_client(scheduler, jobs)
    outputs: list[_Output] = []
    pending: collections.deque = collections.deque()  # (output, segment start, frames, future)
    try:
        if window is None:
            threads = sum(client.nthreads().values()) or 1
            window = threads + 1

        def finish_one() -> None:
            out, start, count, future = pending.popleft()
            try:
                if out.error is not None:
                    return
                try:
                    results = future.result()
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as exc:  # noqa: BLE001 - a failed task fails its input only
                    out.fail(f"frames {start}-{start + count - 1}: {type(exc).__name__}: {exc}")
                    return
                for payload, keyframe, _log in results:
                    out.writer.write_frame(payload, keyframe)
                out.written += 1
                out.maybe_close()
            finally:
                future.release()
                announce(out)

        def announce(out: _Output) -> None:
            finished = out.error is not None or (out.report and out.written == out.submitted)
            if finished and not out.reading and not out.announced:
                out.announced = True
                if done is not None:
                    done(_report(out))

        for source, path in zip(inputs, paths):
            out = _Output(str(source), path, time.perf_counter())
            outputs.append(out)
            try:
                with open_source(source, frames=frames) as src:
                    header = _header_for(src, params)
                    out.header = header
                    fmt = header.format
                    out.writer = ContainerWriter(path, header)
                    segment: list = []
                    for frame in src:
                        validate_frame(frame, fmt, header.height, header.width)
                        segment.append(frame)
                        if len(segment) == params.keyint:
                            _submit(client, out, header, params, segment, pending, retries)
                            segment = []
                            while len(pending) > window:
                                finish_one()
                    if segment:
                        _submit(client, out, header, params, segment, pending, retries)
                        segment = []
            except TriadicError as exc:
                out.fail(exc)
            except OSError as exc:
                out.fail(f"{exc.strerror or exc}")
            out.reading = False
            out.maybe_close()
            announce(out)
            while len(pending) > window:
                finish_one()
        while pending:
            finish_one()
    except BaseException:
        if pending:
            client.cancel([future for _, _, _, future in pending])
        for out in outputs:
            out.fail("interrupted")
        raise
    finally:
        if owned:
            client.close()
        if cluster is not None:
            cluster.close()
    return [_report(out) for out in outputs]


def _submit(client, out: _Output, header, params, segment: list, pending, retries: int) -> None:
    start = out.frames
    with warnings.catch_warnings():
        # frames travel inside the task on purpose: a task whose worker dies is rerun elsewhere
        warnings.filterwarnings("ignore", message=".*Large object.*")
        warnings.filterwarnings("ignore", message=".*large graph.*")
        future = client.submit(_task, FINGERPRINT, header, params, start, segment,
                               retries=retries, pure=False,
                               key=f"triadic-{os.path.basename(out.path)}-{start}-{uuid.uuid4().hex}")
    out.submitted += 1
    out.frames += len(segment)
    pending.append((out, start, len(segment), future))


def _report(out: _Output) -> dict:
    if out.error is not None:
        return {"input": out.source, "output": out.path, "error": out.error}
    return dict(out.report)
