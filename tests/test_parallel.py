"""Segment-parallel encoding and decoding (triadic.parallel): the same bytes and frames as one
process, errors where the serial decoder raises them, no partial output, bounded read-ahead."""

import hashlib
import os
import threading
import time

import numpy as np
import pytest

import triadic
import triadic.search
from conftest import make_frames
from triadic import cli, codec, parallel
from triadic.container import ContainerReader, ContainerWriter
from triadic.errors import CorruptStreamError, InputError


@pytest.fixture(scope="module")
def clip():
    """11 frames, keyint 3: four segments, the last one short."""
    frames = make_frames("yuv420p", 40, 56, 11, seed=7)
    return frames


def digest(frames):
    h = hashlib.sha256()
    for f in frames:
        for p in f.planes:
            h.update(p.tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("pix_fmt,keyint,max_error", [("yuv420p", 3, 0), ("rgb24", 2, 0),
                                                       ("gray16le", 4, 0), ("yuv444p", 3, 4)])
def test_jobs_2_writes_the_same_bytes_as_jobs_1(tmp_path, pix_fmt, keyint, max_error):
    frames = make_frames(pix_fmt, 24, 36, 9, seed=3)
    one = codec.encode(frames, tmp_path / "1.tri", keyint=keyint, max_error=max_error, jobs=1)
    two = codec.encode(frames, tmp_path / "2.tri", keyint=keyint, max_error=max_error, jobs=2)
    assert (tmp_path / "1.tri").read_bytes() == (tmp_path / "2.tri").read_bytes()
    assert one["frames_log"] == two["frames_log"]  # frame numbers and costs come back in order
    decoded = list(codec.decode(tmp_path / "2.tri", jobs=2))
    assert digest(decoded) == digest(codec.decode(tmp_path / "1.tri", jobs=1))
    if max_error == 0:
        assert all(a.equals(b) for a, b in zip(frames, decoded))


@pytest.mark.parametrize("pix_fmt,max_error", [("yuv420p", 0), ("rgb24", 0), ("gray16le", 0), ("yuv444p", 4)])
def test_one_segment_with_jobs_2_reconstructs_in_a_thread_the_same_frames(tmp_path, pix_fmt, max_error):
    frames = make_frames(pix_fmt, 24, 36, 5, seed=4)
    codec.encode(frames, tmp_path / "x.tri", keyint=60, max_error=max_error, jobs=1)
    with ContainerReader(tmp_path / "x.tri") as reader:
        assert parallel.plan_jobs(2, reader.header) == 1  # one segment: one process, two threads
        threaded = codec.FrameDecoder(reader.header, threads=True)
        try:
            got = [threaded.decode(payload, keyframe) for _, keyframe, payload in reader.frames()]
        finally:
            threaded.close()
    assert digest(got) == digest(codec.decode(tmp_path / "x.tri", jobs=1))
    assert digest(codec.decode(tmp_path / "x.tri", jobs=2)) == digest(got)
    if max_error == 0:
        assert all(a.equals(b) for a, b in zip(frames, got))


def _threaded_decode(monkeypatch, path):
    """decode_chunks's one-process, two-thread decode of ``path`` (whatever plan_jobs would
    give), and how many frames it started during the frame before them."""
    monkeypatch.setattr(parallel, "plan_jobs", lambda *args, **kwargs: 1)
    started = []
    look_ahead = codec.FrameDecoder._look_ahead
    monkeypatch.setattr(codec.FrameDecoder, "_look_ahead",
                        lambda self, *args: started.append(1) or look_ahead(self, *args))
    monkeypatch.setattr(parallel, "available_cores", lambda: 2)
    return list(codec.decode(path, jobs=2)), len(started)


@pytest.mark.parametrize("pix_fmt,max_error", [("yuv420p", 0), ("rgb24", 0), ("yuv444p", 4)])
def test_the_decoder_starts_the_next_frame_during_this_one(tmp_path, monkeypatch, pix_fmt, max_error):
    """Its chart decoded after this frame's luma residual, its luma predicted by the second
    thread: the frames of the serial decoder, across keyframes."""
    frames = make_frames(pix_fmt, 24, 36, 8, seed=5)
    codec.encode(frames, tmp_path / "x.tri", keyint=3, max_error=max_error, jobs=1)
    got, started = _threaded_decode(monkeypatch, tmp_path / "x.tri")
    # frames 2, 4, 5 and 7: not the keyframes 0, 3 and 6, nor 1 (during the stream's first
    # frame the window has no buffers yet)
    assert started == 4
    assert digest(got) == digest(codec.decode(tmp_path / "x.tri", jobs=1))
    if max_error == 0:
        assert all(a.equals(b) for a, b in zip(frames, got))


def test_the_decoder_starts_the_next_frame_on_real_footage(tmp_path, monkeypatch, carphone):
    """carphone's P frames are levels leaves (their luma residual is coded as H.264 levels)."""
    codec.encode(carphone, tmp_path / "x.tri", frames=6, jobs=1)
    got, started = _threaded_decode(monkeypatch, tmp_path / "x.tri")
    assert started == 4
    assert digest(got) == digest(codec.decode(tmp_path / "x.tri", jobs=1))


def test_the_second_thread_works_out_the_context_sources(tmp_path, monkeypatch):
    """With two threads, every inter frame's context sources (all three channels) come from the
    second thread, its luma's during the frame before, and the frames are the serial decoder's."""
    frames = make_frames("yuv420p", 24, 36, 6, seed=9)
    codec.encode(frames, tmp_path / "x.tri", keyint=60, jobs=1)
    threads = []
    sources = codec._Segment.context_sources
    monkeypatch.setattr(codec._Segment, "context_sources", lambda self, c, *args: threads.append(
        (c, threading.current_thread() is threading.main_thread())) or sources(self, c, *args))
    got, started = _threaded_decode(monkeypatch, tmp_path / "x.tri")
    assert started == 4  # frames 2-5 started during the frame before
    # the lumas of frames 0 and 1 (no frame before 0; during it, the window has no buffers yet)
    # in this thread; every chroma's, and the luma's of the frames started early, in the other
    assert sorted(threads) == sorted([(0, True)] * 2 + [(0, False)] * 4 + [(1, False), (2, False)] * 6)
    assert threads[:4] == [(0, True), (1, False), (2, False), (0, True)]
    assert digest(got) == digest(codec.decode(tmp_path / "x.tri", jobs=1))
    assert all(a.equals(b) for a, b in zip(frames, got))


@pytest.mark.parametrize("damaged", [b"", b"\x01\x02\x03", bytes(range(256)) * 8])
def test_a_next_frame_that_does_not_decode_fails_as_it_would_alone(tmp_path, damaged):
    """Its chart decoded ahead or not, a damaged frame raises when its own turn comes, naming
    it, after the frames before it."""
    frames = make_frames("yuv420p", 24, 36, 5, seed=6)
    codec.encode(frames, tmp_path / "x.tri", keyint=60, jobs=1)
    with ContainerReader(tmp_path / "x.tri") as reader:
        chunks = [(keyframe, payload) for _, keyframe, payload in reader.frames()]
        header = reader.header
    chunks[3] = (False, damaged)

    def run(decoder, ahead):
        got = []
        try:
            for i, (keyframe, payload) in enumerate(chunks):
                following = chunks[i + 1][1] if ahead and i + 1 < len(chunks) else None
                got.append(decoder.decode(payload, keyframe, following=following))
        except CorruptStreamError as exc:
            return got, str(exc)
        finally:
            decoder.close()
        return got, None

    alone, error = run(codec.FrameDecoder(header), False)
    ahead, error_ahead = run(codec.FrameDecoder(header, threads=True), True)
    assert error is not None and error_ahead == error
    assert len(ahead) == len(alone) >= 3 and digest(ahead) == digest(alone)


def test_damaged_payloads_decode_alike_with_and_without_the_read_ahead(tmp_path):
    """Random damage (bytes flipped, payloads cut) to frames of a stream, CRCs bypassed: the
    decoder that reads each next frame's chart ahead gives the frames and the error of the
    serial one, whichever frame the damage is in."""
    frames = make_frames("yuv420p", 24, 36, 6, seed=8)
    codec.encode(frames, tmp_path / "x.tri", keyint=4, jobs=1)
    with ContainerReader(tmp_path / "x.tri") as reader:
        chunks = [(keyframe, payload) for _, keyframe, payload in reader.frames()]
        header = reader.header
    rng = np.random.default_rng(11)

    def run(chunks, threads):
        decoder = codec.FrameDecoder(header, threads=threads)
        got = []
        try:
            for i, (keyframe, payload) in enumerate(chunks):
                following = chunks[i + 1][1] if threads and i + 1 < len(chunks) and not chunks[i + 1][0] else None
                got.append(decoder.decode(payload, keyframe, following=following))
        except CorruptStreamError as exc:
            return digest(got), len(got), str(exc)
        finally:
            decoder.close()
        return digest(got), len(got), None

    errors = 0
    for _ in range(40):
        damaged = list(chunks)
        k = int(rng.integers(1, len(chunks)))
        keyframe, payload = damaged[k]
        data = bytearray(payload)
        if rng.random() < 0.3:
            data = data[:int(rng.integers(0, len(data)))]
        else:
            for at in rng.integers(0, len(data), size=int(rng.integers(1, 4))):
                data[at] ^= 1 << int(rng.integers(0, 8))
        damaged[k] = (keyframe, bytes(data))
        alone = run(damaged, False)
        assert run(damaged, True) == alone
        errors += alone[2] is not None
    assert errors >= 20  # (most damage is found; the rest decodes to other frames, alike)


def test_the_payload_read_ahead_must_be_the_next_one_decoded(tmp_path):
    frames = make_frames("yuv420p", 24, 36, 4, seed=6)
    codec.encode(frames, tmp_path / "x.tri", keyint=60, jobs=1)
    with ContainerReader(tmp_path / "x.tri") as reader:
        payloads = [payload for _, _, payload in reader.frames()]
        decoder = codec.FrameDecoder(reader.header, threads=True)
    try:
        decoder.decode(payloads[0], True)
        decoder.decode(payloads[1], False, following=payloads[2])
        with pytest.raises(RuntimeError, match="was not the next payload"):
            decoder.decode(payloads[3], False)
    finally:
        decoder.close()


def _encoding(frames, **params):
    """EncodeParams and the stream header of encoding ``frames`` with them."""
    params = triadic.params.EncodeParams(**params)
    return params, codec._header_for(triadic.io.open_source(frames), params)


def _payloads(frames, header, params, threads, skip_next=(), ahead=2):
    """Each frame's payload from one FrameEncoder, told the ``ahead`` frames after it (1 or 2),
    none at ``skip_next``."""
    encoder = codec.FrameEncoder(header, params, threads)
    try:
        return [encoder.encode(f, *([] if i in skip_next else frames[i + 1:i + 1 + ahead]))[0]
                for i, f in enumerate(frames)]
    finally:
        encoder.close()


@pytest.mark.parametrize("pix_fmt,keyint,max_error", [("yuv420p", 4, 0), ("rgb24", 60, 0),
                                                       ("gray16le", 3, 0), ("yuv420p", 4, 4),
                                                       ("yuv444p", 60, 13)])
def test_the_search_thread_gives_the_same_bytes(monkeypatch, pix_fmt, keyint, max_error):
    """threads=2 searches the next frames while this one is coded: the same payloads, lossless
    and near-lossless, across keyframes, told one frame ahead or two, and when the caller does
    not pass the next frames (at frames 2 and 5: the next frame is searched in turn, as without
    the thread, unless its search was queued two frames before)."""
    frames = make_frames(pix_fmt, 40, 56, 9, seed=11)
    params, header = _encoding(frames, keyint=keyint, max_error=max_error)
    one = _payloads(frames, header, params, 1)
    searched_in = []
    choose_chart = triadic.search.choose_chart

    def spy(*args, **kwargs):
        searched_in.append(threading.current_thread().name.startswith("triadic-search"))
        return choose_chart(*args, **kwargs)

    monkeypatch.setattr(triadic.search, "choose_chart", spy)
    inter = sum(i % keyint != 0 for i in range(len(frames)))
    for ahead in (1, 2):
        searched_in.clear()
        assert _payloads(frames, header, params, 2, ahead=ahead) == one
        assert searched_in == [True] * inter
    searched_in.clear()
    assert _payloads(frames, header, params, 2, skip_next=(2, 5), ahead=1) == one
    assert sum(searched_in) == inter - sum((i + 1) % keyint != 0 for i in (2, 5))
    searched_in.clear()
    assert _payloads(frames, header, params, 2, skip_next=(2, 5)) == one
    # lossless, frame 3 and 6 were queued with frames 1 and 4
    skipped = [i + 1 for i in (2, 5) if (i + 1) % keyint != 0 and (max_error or i % keyint == 0)]
    assert sum(searched_in) == inter - len(skipped)


def test_the_search_thread_runs_two_frames_ahead_when_lossless(monkeypatch):
    """Lossless, coding frame n, the search of frame n + 2 is queued (the segment's frame 1 and
    2 with its keyframe), and waits for n's luma residual; near-lossless, frame n + 1's is queued
    once n's luma is quantised."""
    frames = make_frames("yuv420p", 40, 56, 9, seed=11)
    queued = []
    queue_search = codec.FrameEncoder._queue_search

    def spy(self, number, *args):
        queued.append((self.count, number))
        return queue_search(self, number, *args)

    monkeypatch.setattr(codec.FrameEncoder, "_queue_search", spy)
    for max_error, expected in ((0, [(0, 1), (0, 2), (1, 3), (4, 5), (4, 6), (5, 7)]),
                                (4, [(0, 1), (1, 2), (2, 3), (4, 5), (5, 6), (6, 7)])):
        params, header = _encoding(frames, keyint=4, max_error=max_error)
        queued.clear()
        assert _payloads(frames, header, params, 2) == _payloads(frames, header, params, 1)
        assert queued == expected


def test_the_coding_thread_derives_the_next_planes_when_the_search_is_the_longer_thread(monkeypatch):
    """Lossless, when the coding thread has to wait for a frame's search, it derives the planes
    of the next frame itself (in the search thread they would wait behind the next search): the
    same payloads."""
    frames = make_frames("yuv420p", 40, 56, 7, seed=13)
    params, header = _encoding(frames, keyint=60)
    one = _payloads(frames, header, params, 1)
    choose_chart, add = triadic.search.choose_chart, triadic.search.ReferencePlanes.add
    derived_in = []

    def slow_search(*args, **kwargs):
        time.sleep(0.2)
        return choose_chart(*args, **kwargs)

    def add_spy(self, slot, *args):
        derived_in.append(threading.current_thread().name)
        return add(self, slot, *args)

    monkeypatch.setattr(triadic.search, "choose_chart", slow_search)
    monkeypatch.setattr(triadic.search.ReferencePlanes, "add", add_spy)
    assert _payloads(frames, header, params, 2) == one
    # frames 0 and 1 before the first search is waited for (frame 1 codes while 2 and 3 are
    # searched), the last frame never: the coding thread derives frames 2 to 5
    assert derived_in[:2] == ["triadic-search_0"] * 2
    assert derived_in[2:] == ["MainThread"] * 4


@pytest.mark.parametrize("max_error", [0, 4])
def test_the_coding_thread_searches_bands_while_it_waits_for_a_search(monkeypatch, max_error):
    """When the coding thread has to wait for a frame's search, it searches some of that frame's
    bands itself: the same payloads."""
    from triadic.kernels import motion

    frames = make_frames("yuv420p", 136, 56, 6, seed=3)  # 9 rows of root blocks: two bands
    params, header = _encoding(frames, keyint=60, max_error=max_error)
    one = _payloads(frames, header, params, 1)
    search_frame = motion.search_frame
    searched_in = []

    def slow_band(*args):
        searched_in.append(threading.current_thread().name)
        time.sleep(0.1)
        return search_frame(*args)

    monkeypatch.setattr(motion, "search_frame", slow_band)
    assert _payloads(frames, header, params, 2) == one
    assert len(searched_in) == 2 * 5
    assert "MainThread" in searched_in and any(t.startswith("triadic-search") for t in searched_in)


def test_shared_work_runs_every_task_once_and_passes_on_errors():
    """codec._SharedWork: the offering thread gets every task's result in order, whichever thread
    ran it; an error reaches it, and the waiting thread gets the error of what it waits for."""
    from concurrent.futures import ThreadPoolExecutor

    work = codec._SharedWork()
    ran = []
    last_ran = threading.Event()

    def task(i):
        def run():
            ran.append((i, threading.current_thread().name))
            if i == 0:  # held up until the last one has run: the other thread runs that one
                assert last_ran.wait(30)
            if i == 2:
                last_ran.set()
            if i == 3:
                raise ValueError("band 3")
            return i * i
        return run

    with ThreadPoolExecutor(1, thread_name_prefix="offering") as pool:
        assert work.wait(pool.submit(work.run, [task(i) for i in range(3)])) == [0, 1, 4]
        assert sorted(i for i, _ in ran) == [0, 1, 2]
        assert len({name for _, name in ran}) == 2
        with pytest.raises(ValueError, match="band 3"):
            work.wait(pool.submit(work.run, [task(3), task(4)]))


def test_a_frame_that_fails_does_not_leave_the_search_after_it_waiting():
    """The search of frame n + 2 waits for frame n's luma residual: if working that out fails,
    the error goes to it too, and the encoder closes (no thread waits forever)."""
    frames = make_frames("yuv420p", 40, 56, 6, seed=5)
    params, header = _encoding(frames, keyint=60)
    encoder = codec.FrameEncoder(header, params, 2)
    failure = RuntimeError("luma residual failed")
    outcome = []

    def run():
        try:
            encoder.encode(frames[0], frames[1], frames[2])
            encoder.encode(frames[1], frames[2], frames[3])
            encoder._plane_residual = lambda c, *args: (_ for _ in ()).throw(failure)
            encoder.encode(frames[2], frames[3], frames[4])
        except RuntimeError as exc:
            outcome.append(exc)
            after = encoder._after.chart
            outcome.append(after.exception(timeout=60))
        finally:
            encoder.close()
            outcome.append("closed")

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(120)
    assert not worker.is_alive()
    assert outcome == [failure, failure, "closed"]


@pytest.mark.parametrize("max_error", [0, 4])
def test_the_chroma_thread_gives_the_same_bytes(monkeypatch, max_error):
    """threads=2 also codes the chroma planes in a third thread while the luma is coded (the same
    payloads); a frame whose residual may go raw (noise: its trial takes back every count) is
    coded in one thread."""
    def pattern(t, step, h, w):  # a smooth picture moving by (-1, 2), sampled every ``step`` samples
        y, x = np.mgrid[0:h * step:step, 0:w * step:step]
        return np.round(128 + 100 * np.sin((x + 2 * t) / 5.0) * np.cos((y - t) / 7.0)).astype(np.uint8)

    # without noise, so that no residual may go raw
    smooth = [triadic.Frame((pattern(t, 1, 40, 56), pattern(t, 2, 20, 28), pattern(t + 1, 2, 20, 28)), "yuv420p")
              for t in range(4)]
    noise = make_frames("yuv420p", 40, 56, 2, seed=6, kind="noise")
    frames = smooth[:2] + noise + smooth[2:]
    params, header = _encoding(frames, keyint=60, max_error=max_error)
    one = _payloads(frames, header, params, 1)
    coded_in = []  # per channel coded, in the order of frames: (its shape, in the chroma thread)
    code_residual = codec.code_residual

    def spy(coder, model, chan, shape, *args, **kwargs):
        coded_in.append((shape, threading.current_thread().name.startswith("triadic-chroma")))
        return code_residual(coder, model, chan, shape, *args, **kwargs)

    monkeypatch.setattr(codec, "code_residual", spy)
    assert _payloads(frames, header, params, 2) == one
    # a frame's luma and chroma are coded at once, in either order; its chroma planes are the smaller
    by_frame = [[threaded for _, threaded in sorted(coded_in[3 * i:3 * i + 3], key=lambda c: -c[0][0])]
                for i in range(len(frames))]
    assert all(f in ([False, True, True], [False, False, False]) for f in by_frame)
    assert by_frame[-1] == [False, True, True]
    if max_error == 0:  # lossless noise may go raw: one thread
        assert by_frame[2] == by_frame[3] == [False, False, False]


@pytest.mark.parametrize("pix_fmt,keyint,max_error", [("yuv420p", 4, 0), ("yuv444p", 60, 1), ("gray8", 60, 0)])
def test_the_other_threads_take_the_chroma_residuals_and_the_next_references_planes(monkeypatch, pix_fmt,
                                                                                    keyint, max_error):
    """On pictures of at least THREAD_TASK_MIN_SAMPLES (here every one), threads=2 predicts the
    chroma planes and works out their residuals in the chroma thread, and derives each
    reference's planes in the search thread, before the search of the frame after it: the same
    payloads as one thread."""
    frames = make_frames(pix_fmt, 40, 56, 9, seed=12)
    params, header = _encoding(frames, keyint=keyint, max_error=max_error)
    one = _payloads(frames, header, params, 1)
    monkeypatch.setattr(codec, "THREAD_TASK_MIN_SAMPLES", 1)
    residual_in, derived_in = [], []
    plane_residual, add = codec.FrameEncoder._plane_residual, triadic.search.ReferencePlanes.add

    def residual_spy(self, c, *args):
        residual_in.append((c, threading.current_thread().name))
        return plane_residual(self, c, *args)

    def add_spy(self, *args):
        derived_in.append(threading.current_thread().name)
        return add(self, *args)

    monkeypatch.setattr(codec.FrameEncoder, "_plane_residual", residual_spy)
    monkeypatch.setattr(triadic.search.ReferencePlanes, "add", add_spy)
    assert _payloads(frames, header, params, 2) == one
    assert all(name.startswith("triadic-chroma") == (c > 0) for c, name in residual_in)
    assert len(residual_in) == len(frames) * len(frames[0].planes)
    # every frame but a segment's last is derived once, for the search of the frame after it: in
    # the search thread, or (lossless) in the coding thread while it waits for the search
    assert len(derived_in) == sum(n % keyint != 0 for n in range(1, len(frames)))
    assert all(name.startswith("triadic-search") or (name == "MainThread" and not max_error) for name in derived_in)


def test_a_worker_takes_over_the_last_segments_buffers_with_the_same_results(monkeypatch):
    """encode_segment and decode_segment with reuse=True, as worker tasks call them: each
    encoder and decoder takes over the buffers the last one left in the process, whatever
    frames, size or threads that one coded, and writes (decodes) what a fresh one does."""
    spare = {}
    monkeypatch.setattr(parallel, "_SPARE", spare)
    clips = [make_frames("yuv420p", 40, 56, 5, seed=1), make_frames("yuv420p", 40, 56, 4, seed=2),
             make_frames("yuv420p", 24, 32, 3, seed=3)]
    for frames, threads, max_error in ((0, 1, 0), (1, 1, 0), (1, 2, 0), (1, 1, 4), (2, 1, 0), (0, 1, 0)):
        frames = clips[frames]
        params, header = _encoding(frames, keyint=60, max_error=max_error)
        fresh = parallel.encode_segment(header, params, 0, list(frames), threads)
        taken = spare.get("encode")
        window = spare.get("decode")
        reused = parallel.encode_segment(header, params, 0, list(frames), threads, reuse=True)
        assert [p for p, _, _ in reused] == [p for p, _, _ in fresh]
        assert taken is None or spare["encode"].planes is taken.planes
        chunks = [(i, i == 0, p) for i, (p, _, _) in enumerate(fresh)]
        decoded, error = parallel.decode_segment(header, list(chunks), reuse=True)
        assert error is None and all(a.equals(b) for a, b in zip(decoded, parallel.decode_segment(header, chunks)[0]))
        if frames is clips[1]:  # the size of the last: the reference rings too
            assert spare["encode"].refs is taken.refs and spare["decode"] is window
    assert spare["encode"].planes.phases.shape[3:] == (40 + 2 * codec.PAD, 56 + 2 * codec.PAD)


def test_the_search_thread_on_real_footage_and_its_end(tmp_path, carphone):
    """A single segment with jobs=2 is coded in this process with the search thread: the bytes
    of jobs=1, and no thread is left running afterwards (a live one would make later process
    pools fork-serve)."""
    before = threading.active_count()
    for max_error in (0, 4):
        codec.encode(carphone, tmp_path / "1.tri", frames=8, max_error=max_error, jobs=1)
        codec.encode(carphone, tmp_path / "2.tri", frames=8, max_error=max_error, jobs=2)
        assert (tmp_path / "1.tri").read_bytes() == (tmp_path / "2.tri").read_bytes()
    assert threading.active_count() == before


def test_real_footage_three_jobs_and_a_short_last_segment(tmp_path, carphone):
    codec.encode(carphone, tmp_path / "1.tri", frames=7, keyint=2, jobs=1)
    codec.encode(carphone, tmp_path / "3.tri", frames=7, keyint=2, jobs=3)
    assert (tmp_path / "1.tri").read_bytes() == (tmp_path / "3.tri").read_bytes()
    assert digest(codec.decode(tmp_path / "3.tri", jobs=3)) == digest(codec.decode(tmp_path / "1.tri", jobs=1))


def test_cli_jobs(tmp_path, clip, capsys):
    codec.encode(clip, tmp_path / "ref.tri", keyint=3, jobs=1)
    y4m = str(tmp_path / "clip.y4m")
    assert cli.main(["decode", str(tmp_path / "ref.tri"), y4m, "--jobs", "2", "--quiet"]) == 0
    for jobs in ("1", "2"):
        assert cli.main(["encode", y4m, str(tmp_path / f"{jobs}.tri"), "--keyint", "3",
                         "--jobs", jobs, "--quiet"]) == 0
    assert (tmp_path / "1.tri").read_bytes() == (tmp_path / "2.tri").read_bytes()
    assert cli.main(["verify", y4m, str(tmp_path / "2.tri"), "--jobs", "2"]) == 0
    assert "bit-exact: yes" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["encode", y4m, "x.tri", "--jobs", "0"])


def test_jobs_are_checked_and_planned():
    with pytest.raises(InputError):
        parallel.check_jobs(0)
    with pytest.raises(InputError):
        parallel.check_jobs(1.5)
    header = triadic.params.StreamHeader(width=64, height=48, pix_fmt="yuv420p", frame_rate=25,
                                         frame_count=0, keyint=60, max_error=0, block_size=16)
    assert parallel.plan_jobs(None, header) == 1           # tiny pictures: in-process
    assert parallel.plan_jobs(2, header) == 2
    assert parallel.plan_jobs(2, header.replace(frame_count=60)) == 1  # one segment
    big = header.replace(width=1280, height=720)
    if parallel.memory_jobs(big) is None or parallel.memory_jobs(big) >= parallel.available_cores():
        assert parallel.plan_jobs(None, big) == parallel.available_cores()
    assert parallel.plan_jobs(2, big.replace(keyint=1 << 16)) == 1  # a segment over the memory cap


def test_available_memory_reads_the_kernel_and_the_cgroup(tmp_path):
    """MemAvailable, or a cgroup v2 or v1 limit less its usage where that is lower."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       32000000 kB\nMemFree:  100 kB\nMemAvailable:   20000000 kB\n")
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    assert parallel.available_memory(str(meminfo), str(cgroup)) == 20000000 * 1024  # no cgroup files
    (cgroup / "memory.max").write_text("max\n")
    (cgroup / "memory.current").write_text("1000\n")
    assert parallel.available_memory(str(meminfo), str(cgroup)) == 20000000 * 1024  # no limit
    (cgroup / "memory.max").write_text(f"{8 << 30}\n")
    (cgroup / "memory.current").write_text(f"{1 << 30}\n")
    assert parallel.available_memory(str(meminfo), str(cgroup)) == 7 << 30  # the container's is lower
    assert parallel.available_memory(str(tmp_path / "none"), str(cgroup)) == 7 << 30
    assert parallel.available_memory(str(tmp_path / "none"), str(tmp_path / "none")) is None
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)
    (v1 / "memory" / "memory.limit_in_bytes").write_text(f"{(1 << 63) - 4096}\n")  # v1's "no limit"
    (v1 / "memory" / "memory.usage_in_bytes").write_text(f"{1 << 30}\n")
    assert parallel.available_memory(str(meminfo), str(v1)) == 20000000 * 1024
    (v1 / "memory" / "memory.limit_in_bytes").write_text(f"{4 << 30}\n")
    assert parallel.available_memory(str(meminfo), str(v1)) == 3 << 30  # a cgroup v1 container's


def test_default_jobs_fit_in_memory(monkeypatch):
    """Every core by default, but no more workers than the available memory holds; jobs asked
    for are taken as asked."""
    uhd = triadic.params.StreamHeader(width=3840, height=2160, pix_fmt="yuv420p", frame_rate=25,
                                      frame_count=0, keyint=60, max_error=0, block_size=16)
    monkeypatch.setattr(parallel, "available_cores", lambda: 16)
    frames = 2 * parallel.frame_bytes(uhd) * uhd.keyint  # a segment, in the worker and the parent
    encoder = parallel.WORKER_BYTES + parallel.ENCODE_BYTES_PER_SAMPLE * 3840 * 2160 + frames
    decoder = parallel.WORKER_BYTES + parallel.DECODE_BYTES_PER_SAMPLE * 3840 * 2160 + frames
    monkeypatch.setattr(parallel, "available_memory", lambda: 5 * encoder + 1)
    assert parallel.plan_jobs(None, uhd) == 5
    assert parallel.plan_jobs(None, uhd, decoding=True) == (5 * encoder + 1) // decoder > 5
    assert parallel.plan_jobs(12, uhd) == 12
    monkeypatch.setattr(parallel, "available_memory", lambda: encoder // 2)
    assert parallel.plan_jobs(None, uhd) == 1  # in-process: too little memory for even one worker
    monkeypatch.setattr(parallel, "available_memory", lambda: 1 << 50)
    assert parallel.plan_jobs(None, uhd) == 16
    monkeypatch.setattr(parallel, "available_memory", lambda: None)  # not known: every core
    assert parallel.plan_jobs(None, uhd) == 16


def test_read_ahead_is_bounded(tmp_path):
    """The parent holds the raw frames of at most jobs + 1 segments (jobs being coded, one
    waiting) and reads at most 2 jobs + 1 segments ahead of what is written."""
    import weakref

    keyint, jobs = 2, 2
    frames = make_frames("gray", 16, 16, 14, seed=1)
    pulled = []

    def source():
        for f in frames:
            copy = triadic.Frame(tuple(p.copy() for p in f.planes), f.pix_fmt)
            pulled.append(weakref.ref(copy))
            yield copy

    ahead, alive = [], []

    def progress(done, total):
        ahead.append(len(pulled) - done)
        alive.append(sum(r() is not None for r in pulled))

    codec.encode(source(), tmp_path / "x.tri", keyint=keyint, jobs=jobs, progress=progress)
    assert max(alive) <= (jobs + 1) * keyint
    assert keyint <= max(ahead) <= (2 * jobs + 1) * keyint


def test_a_dead_worker_leaves_no_output(tmp_path, clip):
    def kill_a_worker(done, total):
        if done == 1:
            _, executor = parallel._POOL
            next(iter(executor._processes.values())).kill()

    target = tmp_path / "x.tri"
    with pytest.raises(parallel.WorkerError, match="worker process died"):
        codec.encode(clip, target, keyint=2, jobs=2, progress=kill_a_worker)
    assert os.listdir(tmp_path) == []
    codec.encode(clip, target, keyint=2, jobs=2)  # a new pool replaces the broken one
    assert digest(codec.decode(target, jobs=2)) == digest(clip)


def test_an_interrupt_kills_the_workers_and_leaves_no_output(tmp_path, clip):
    def interrupt(done, total):
        if done == 2:
            raise KeyboardInterrupt

    codec.encode(clip, tmp_path / "warm.tri", keyint=2, jobs=2)
    _, executor = parallel._POOL
    workers = list(executor._processes.values())
    with pytest.raises(KeyboardInterrupt):
        codec.encode(clip, tmp_path / "x.tri", keyint=2, jobs=2, progress=interrupt)
    assert sorted(os.listdir(tmp_path)) == ["warm.tri"]
    assert parallel._POOL is None
    for worker in workers:
        worker.join(timeout=10)
        assert not worker.is_alive()


def test_closing_a_parallel_decode_early_releases_the_workers(tmp_path, clip):
    codec.encode(clip, tmp_path / "x.tri", keyint=2, jobs=1)
    frames = codec.decode(tmp_path / "x.tri", jobs=2)
    assert next(frames).equals(clip[0])
    frames.close()
    assert parallel._POOL is None
    assert digest(codec.decode(tmp_path / "x.tri", jobs=2)) == digest(clip)


def rewrite(path, out, change):
    """Copy a .tri with ``change(index, payload) -> payload`` applied (valid CRCs)."""
    with ContainerReader(path) as reader:
        header = reader.header
        chunks = list(reader.frames())
    with ContainerWriter(out, header) as writer:
        for index, keyframe, payload in chunks:
            writer.write_frame(change(index, bytes(payload)), keyframe)


def outcome(path, jobs):
    """(digest of the frames decoded before the error, error type, message)."""
    got = []
    try:
        for frame in codec.decode(path, jobs=jobs):
            got.append(frame)
    except CorruptStreamError as exc:
        return len(got), digest(got), type(exc), str(exc)
    return len(got), digest(got), None, None


def test_a_damaged_payload_fails_at_the_same_frame(tmp_path, clip):
    codec.encode(clip, tmp_path / "x.tri", keyint=3, jobs=1)
    # frame 7 (segment 6-8) does not decode; its CRC is valid
    rewrite(tmp_path / "x.tri", tmp_path / "bad.tri",
            lambda i, p: p[:8] + bytes(8) + p[16:] if i == 7 else p)
    serial = outcome(tmp_path / "bad.tri", 1)
    assert serial[2] is CorruptStreamError and "frame 7" in serial[3]
    assert outcome(tmp_path / "bad.tri", 2) == serial


def test_a_damaged_chunk_fails_after_the_same_frames(tmp_path, clip):
    codec.encode(clip, tmp_path / "x.tri", keyint=3, jobs=1)
    data = bytearray((tmp_path / "x.tri").read_bytes())
    with ContainerReader(tmp_path / "x.tri") as reader:
        offset = reader.index()[8][0]
    data[offset + 12] ^= 0x40  # a CRC error in the chunk of frame 8, found by the reader
    (tmp_path / "crc.tri").write_bytes(bytes(data))
    serial = outcome(tmp_path / "crc.tri", 1)
    assert serial[0] == 8 and serial[2] is CorruptStreamError
    assert outcome(tmp_path / "crc.tri", 2) == serial
    (tmp_path / "cut.tri").write_bytes(bytes(data[:offset + 3]))  # truncated inside frame 8
    assert outcome(tmp_path / "cut.tri", 2) == outcome(tmp_path / "cut.tri", 1)


def test_a_run_longer_than_keyint_is_decoded_in_process(tmp_path, clip):
    """Keyframes further apart than the header's keyint (not written by triadic, but valid)."""
    codec.encode(clip, tmp_path / "x.tri", keyint=6, jobs=1)
    with ContainerReader(tmp_path / "x.tri") as reader:
        header = reader.header
        chunks = list(reader.frames())
    with ContainerWriter(tmp_path / "y.tri", header.replace(keyint=2)) as writer:
        for index, keyframe, payload in chunks:
            writer.write_frame(payload, keyframe)
    assert digest(codec.decode(tmp_path / "y.tri", jobs=2)) == digest(clip)


def test_with_other_threads_running_workers_come_from_the_fork_server(tmp_path, clip):
    import threading

    parallel.shutdown()
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        try:
            codec.encode(clip, tmp_path / "2.tri", keyint=4, jobs=2)
            assert parallel._POOL[1]._mp_context.get_start_method() == "forkserver"
        except parallel.WorkerError as exc:
            # the package changed on disk during the test session, and the worker imported the
            # new code: only a fork-served worker (a fresh interpreter) can, a forked one has ours
            if "changed on disk" not in str(exc):
                raise
    finally:
        stop.set()
        thread.join()
        parallel.shutdown()
    codec.encode(clip, tmp_path / "1.tri", keyint=4, jobs=1)
    assert (tmp_path / "1.tri").read_bytes() == (tmp_path / "2.tri").read_bytes()


def test_a_worker_with_other_code_refuses(clip):
    """A worker that imported triadic after it changed on disk would write other bytes."""
    header = triadic.params.StreamHeader(width=56, height=40, pix_fmt="yuv420p", frame_rate=25,
                                         frame_count=0, keyint=3, max_error=0, block_size=16)
    with pytest.raises(parallel.WorkerError, match="changed on disk"):
        parallel._encode_task("not this code", header, triadic.params.EncodeParams(keyint=3), 0,
                              list(clip[:3]))


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_workers_exit_when_the_parent_is_killed(tmp_path):
    """SIGKILL gives the parent no chance to stop its workers: they notice and exit."""
    import signal
    import subprocess
    import sys
    import time

    script = f"""
import os, signal, sys
sys.path.insert(0, {os.path.dirname(__file__)!r})
from conftest import make_frames
from triadic import codec, parallel

def progress(done, total):
    if done == 1:
        print(" ".join(str(p.pid) for p in parallel._POOL[1]._processes.values()), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

codec.encode(make_frames("gray", 16, 16, 12), {str(tmp_path / "x.tri")!r}, keyint=2, jobs=2,
             progress=progress)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == -signal.SIGKILL, run.stderr
    pids = [int(p) for p in run.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = [p for p in pids if _running(p)]
        if not alive:
            break
        time.sleep(0.1)
    assert not alive, "workers outlived their parent"
    assert not (tmp_path / "x.tri").exists()


def _running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
