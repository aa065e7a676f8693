"""encode / decode / info: the pipeline, in order.

    frame ─colour─▶ planes ─search (encoder)─▶ chart ─predict─▶ residual q ─planes─▶ ANS ─▶ chunk

Everything after the chart is shared by both directions: ``_Segment.code`` codes the chart and
every channel's ternary planes with whichever coder it is given, and keeps the state the next
frame's contexts read (previous residuals, K maps, chart, reference planes). The state is reset at
every keyframe, so segments are independent.
"""

from __future__ import annotations

import collections
import itertools
import operator
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from concurrent.futures import Future, wait
from typing import Callable, Iterator, NamedTuple

import numpy as np

from . import colour
from .chart import CELL, Chart, code_chart
from .container import ContainerReader, ContainerWriter
from .entropy import Decoder, Encoder
from .errors import CorruptStreamError, InputError
from .kernels import context as ck
from .kernels.predict import _decode_plane, motion_compensate
from .kernels.transform import levels_to_residual, mark_levels, residual_to_levels
from .model import MAX_LAGS, ContextModel
from .params import EncodeParams, Frame, PixelFormat, StreamHeader, validate_frame
from .planes import PlaneStats, code_residual, tries_raw


@dataclass
class FrameLog:
    """What one frame cost and which chart it used."""

    index: int
    keyframe: bool
    side_bits: float = 0.0
    residual_bits: float = 0.0
    bytes: int = 0
    chart: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """The per-frame chart log: bits, and the leaves' modes, lags and tree depths."""
        chart = self.chart or {"modes": [], "lags": [], "depths": [], "families": [], "bi": 0,
                               "intra_wp": 0}
        return {"index": self.index, "keyframe": self.keyframe, "bytes": self.bytes,
                "side_bits": round(self.side_bits, 1), "residual_bits": round(self.residual_bits, 1),
                "modes": dict(zip(("intra", "inter", "inter_med"), chart["modes"])),
                "lags": {str(lag + 1): n for lag, n in enumerate(chart["lags"])},
                "families": dict(zip(("translation", "similarity", "affine"), chart["families"])),
                "bi": chart["bi"],
                "intra_wp": chart["intra_wp"],
                "depths": chart["depths"]}


#: Edge replication around reference planes before quarter-sample interpolation.
PAD = 8
_NONE3 = np.zeros((1, 1, 1), np.int32)
_EMPTY = np.zeros((1, 1), np.int32)


class _Segment:
    """Coding state shared by encoder and decoder; one frame at a time."""

    def __init__(self, header: StreamHeader):
        fmt = header.format
        self.header = header
        self.fmt = fmt
        self.shapes = [fmt.plane_shape(i, header.height, header.width) for i in range(fmt.planes)]
        self.shifts = [(0, 0) if i == 0 or fmt.colour != "none" else (fmt.chroma_shift[1], fmt.chroma_shift[0])
                       for i in range(fmt.planes)]  # (sy, sx)
        self.maxima = colour.plane_maxima(fmt.colour, fmt.bit_depth, fmt.planes)
        self.step = 3 ** EncodeParams(max_error=header.max_error).dropped_planes
        self.stats = [PlaneStats() for _ in range(fmt.planes)]
        self.refs: list[np.ndarray] | None = None   # per plane: (MAX_LAGS, h, w) ring of frames
        self.reset()

    def reset(self) -> None:
        """A keyframe: the statistics and the window start again. The window keeps its buffers
        (not their frames: a slot is read only once a frame of the new segment is in it), so
        that the pages of its full-size planes are not faulted in again every segment."""
        self.model = ContextModel()
        self.available = 0                           # decoded frames in the window
        self.head = -1                               # ring slot of the latest frame
        self.prev_q: list[np.ndarray] | None = None
        self.prev_kb: list[np.ndarray] | None = None
        self.prev_chart: Chart | None = None

    def adopt_window(self, refs: list[np.ndarray] | None) -> None:
        """Take over the window buffers ``refs`` of another segment's frames of this size (a
        worker's next segment: see reset), if they fit."""
        if refs is not None and [r.shape[1:] for r in refs] == self.shapes:
            self.refs = refs

    def lag_slots(self, head: int | None = None, available: int | None = None) -> np.ndarray:
        """Ring slot of the frame at lag l, at index l - 1, for every lag available (with the
        window's newest frame in slot ``head`` and ``available`` frames in it: by default now)."""
        head = self.head if head is None else head
        available = self.available if available is None else available
        return np.array([(head - lag + 1) % MAX_LAGS for lag in range(1, available + 1)], dtype=np.int64)

    def code(self, coder, chart: Chart | None, qs: list[np.ndarray] | None, log: FrameLog,
             ts: list[tuple] | None = None, on_residual: Callable | None = None, summarise: bool = True,
             pool=None, chroma=None, ahead: "_Lookahead | None" = None, sources: dict | None = None):
        """Code (or decode, when ``chart`` and ``qs`` are None) one frame's chart and residuals;
        ``on_residual(c, q, coded, chart, ts)`` hears of each channel's residual as soon as it is
        coded (``coded``: as coded, levels and all; ``q``: as samples).
        ``summarise``: put the chart's summary in the log (a decoder that keeps no logs skips it).
        ``pool``: an executor that predicts the planes after the first while the first is decoded.
        ``chroma``: (encoding) an executor that codes the planes after the first while the first
        is coded, into a part of ``coder`` appended after it: the same passes in the same order.
        The two channel classes adapt separate counts; not when a residual may go raw (its trial
        takes back every count).
        ``ahead``: (decoding) the chart, already decoded from ``coder``, and the luma's prediction
        (FrameDecoder._look_ahead).
        ``sources``: (decoding) per channel, a future of its context_sources, if another thread
        works them out (FrameDecoder); the others are worked out here."""
        h, w = self.shapes[0]
        if ahead is None:
            chart, bits = code_chart(coder, self.model, chart, self.prev_chart, self.header.block_size, h, w,
                                     0 if log.keyframe else self.available)
        else:
            chart, bits = ahead.chart, ahead.bits
        log.side_bits += bits
        if ts is None:  # the encoder passes the T it already predicted with
            ts = self.motion_compensated(chart, pool, None if ahead is None else ahead.luma)
        coded: list = [None] * len(self.shapes)  # per channel: q, its K map, side and residual bits
        # (encoding) per channel, whether its residual may go raw (planes.tries_raw), worked out once
        trials = [None] * len(self.shapes) if qs is None else [tries_raw(coder, q, self.modulus(c))
                                                                for c, q in enumerate(qs)]
        if chroma is not None and qs is not None and len(self.shapes) > 1 and not any(trials):
            part = coder.part()
            luma_q = np.ascontiguousarray(qs[0], dtype=np.int32)  # what coding the luma gives back
            later = chroma.submit(lambda: [self._code_channel(part, c, chart, qs[c], luma_q, ts, False)
                                           for c in range(1, len(self.shapes))])
            try:
                coded[0] = self._code_channel(coder, 0, chart, qs[0], None, ts, False)
            except BaseException:
                wait([later])  # nothing may still code once this fails
                raise
            coded[1:] = later.result()
            coder.append(part)
        out_q, out_kb = [], []
        residuals = []  # decoding: the residuals as samples (a levels leaf's plane holds levels)
        for c in range(len(self.shapes)):
            if coded[c] is None:
                coded[c] = self._code_channel(coder, c, chart, None if qs is None else qs[c],
                                              out_q[0] if c else None, ts, trials[c],
                                              sources.get(c) if sources is not None else None)
            q, kb, side_bits, residual_bits = coded[c]
            log.side_bits += side_bits
            log.residual_bits += residual_bits
            out_q.append(q)
            out_kb.append(kb)
            if c == 0 and chart.qp >= 0 and qs is None:
                q = q.copy()
                if not levels_to_residual(q, chart.transform, CELL, chart.qp):
                    raise CorruptStreamError("a levels block is out of range")
            residuals.append(q)
            if on_residual is not None:
                on_residual(c, q, out_q[c], chart, ts)
        if summarise:
            log.chart = chart.summary()
        self.prev_q, self.prev_kb, self.prev_chart = out_q, out_kb, chart
        self.ts = ts
        return chart, residuals

    def modulus(self, c: int) -> int:
        """Lossless, the range m of plane c's residuals (they lie in [-m/2, m/2)); else 0."""
        return self.maxima[c] + 1 if self.step == 1 else 0

    def _code_channel(self, coder, c: int, chart: Chart, q: np.ndarray | None, luma_q: np.ndarray | None,
                      ts: list | None, raw_trial: bool | None, sources: Future | None = None) -> tuple:
        """Code (or decode: ``q`` None) channel c's residual after its context sources (the
        chroma's read ``luma_q``, this frame's luma residual; ``sources``: a future of them, if
        another thread works them out), with code_residual's ``raw_trial``; returns the
        residual, its K map and the side and residual bits it took."""
        shape = self.shapes[c]
        e16, cls, shape_of_t = sources.result() if sources is not None else self.channel_sources(c, chart, luma_q, ts)
        stats = self.stats[c]
        side_before = stats.side_bits
        residual_before = sum(stats.bits.values())
        q, kb = code_residual(coder, self.model, min(c, 1), shape, q, e16, cls, shape_of_t,
                              self.prev_kb[c] if self.prev_kb is not None else None, stats, self.modulus(c),
                              raw_trial)
        return q, kb, stats.side_bits - side_before, sum(stats.bits.values()) - residual_before

    def channel_sources(self, c: int, chart: Chart, luma_q: np.ndarray | None, ts: list | None) -> tuple:
        """context_sources of channel c of the frame being coded, from the segment's state (the
        previous frame's residual, the newest reference) and ``ts`` (motion_compensated's; a
        future in it is waited for)."""
        t = ts[c] if ts is not None else None
        if isinstance(t, Future):
            t = t.result()
        return self.context_sources(c, chart, self.prev_q[c] if self.prev_q is not None else None, luma_q,
                                    t[0] if t is not None else None, self.refs[c][self.head] if t is not None else None)

    def context_sources(self, c: int, chart: Chart, prev_q: np.ndarray | None, luma_q: np.ndarray | None,
                        t: np.ndarray | None, newest: np.ndarray | None) -> tuple:
        """Channel c's per-sample context sources, which code_residual reads: e16 (from
        ``prev_q``, the previous frame's residual of the channel, if any, and for the chroma
        ``luma_q``, this frame's luma residual as coded), the sample classes of ``chart``, and
        on inter frames the shape of the prediction ``t`` (``newest``: the channel's latest
        reference; T's texture is mixed into e16)."""
        shape = self.shapes[c]
        sy, sx = self.shifts[c]
        use_prev = prev_q is not None
        use_luma = c > 0
        e16 = ck.expected_magnitude(prev_q if use_prev else _EMPTY, luma_q if use_luma else _EMPTY,
                                    sy, sx, use_prev, use_luma) if (use_prev or use_luma) \
            else np.full(shape, -1, np.int32)
        cls = self.sample_classes(c, chart)
        shape_of_t = ck.mix_prediction_activity(e16, t, newest, cls) if t is not None \
            else np.full(shape, ck.FLAT, np.uint8)
        return e16, cls, shape_of_t

    def sample_classes(self, c: int, chart: Chart) -> np.ndarray:
        """Per sample of plane c, its context class: its leaf's plane mode (chart.plane_modes),
        marked at motion boundaries (kernels/context.py, EDGE); luma levels leaves' samples have
        classes of their own."""
        sy, sx = self.shifts[c]
        h, w = self.shapes[c]
        cls = ck.sample_classes(chart.plane_modes(), chart.lags, chart.mvy, chart.mvx, CELL >> sy, CELL >> sx,
                                h, w)
        if c == 0 and chart.qp >= 0:
            mark_levels(cls, chart.transform, CELL, ck.LEVELS_4X4, ck.LEVELS_8X8)
        return cls

    def push_reference(self, planes: list[np.ndarray], placed: int = 0) -> None:
        """The reconstructed frame joins the window (its first ``placed`` planes are there
        already: next_luma_prediction put them)."""
        if self.refs is None:
            self.refs = [np.zeros((MAX_LAGS,) + p.shape, np.int32) for p in planes]
        self.head = (self.head + 1) % MAX_LAGS
        self.available = min(self.available + 1, MAX_LAGS)
        for c, p in enumerate(planes[placed:], placed):
            self.refs[c][self.head] = p

    def next_luma_prediction(self, chart: Chart, luma: Callable[[], np.ndarray]) -> tuple:
        """motion_compensate's (T, edges) of the luma for the next frame's ``chart``, before this
        frame has joined the window: ``luma()`` gives this frame's luma reconstruction, which goes
        into the slot push_reference will give it (push_reference(..., placed=1) then leaves it)."""
        head = (self.head + 1) % MAX_LAGS
        self.refs[0][head] = luma()
        slots = self._slot_grids(chart, head, min(self.available + 1, MAX_LAGS))
        return motion_compensate(*self._motion_args(0, chart, slots, head))

    def _slot_grids(self, chart: Chart, head: int, available: int) -> tuple[np.ndarray, np.ndarray]:
        """Per chart cell, the ring slots of its lag and of its second lag (0 for lag 0: no
        reference), with the window's newest frame in slot ``head`` and ``available`` frames in it."""
        table = np.zeros(MAX_LAGS + 1, np.int64)
        table[1:available + 1] = self.lag_slots(head, available)
        return table[chart.lags], table[chart.lags2]

    def _motion_args(self, c: int, chart: Chart, slots: tuple, head: int) -> tuple:
        """motion_compensate's arguments for plane c under ``chart`` (``slots``: _slot_grids's)."""
        sy, sx = self.shifts[c]
        return (self.refs[c], chart.modes, slots[0], chart.mvy, chart.mvx, chart.bi, slots[1], chart.mv2[0],
                chart.mv2[1], CELL >> sy, CELL >> sx, 2 + sy, 2 + sx, PAD, head,
                self.maxima[c] if (sy, sx) == (0, 0) else -1)

    def motion_compensated(self, chart: Chart, pool=None, luma=None) -> list | None:
        """Per plane, (T, edges) from motion_compensate (None on keyframes); with an executor
        ``pool``, the planes after the first as its futures (motion_compensate releases the GIL).
        ``luma``: the luma's, or a future of it, if the caller has it already."""
        if self.available == 0:
            return None
        slots = self._slot_grids(chart, self.head, self.available)
        out = [] if luma is None else [luma]
        for c in range(len(out), len(self.shapes)):
            args = self._motion_args(c, chart, slots, self.head)
            out.append(pool.submit(motion_compensate, *args) if pool is not None and c else motion_compensate(*args))
        return out

    def plane_args(self, c: int, chart: Chart, ts: list | None):
        """The arguments after the samples of _encode_plane / _decode_plane for plane c
        (``ts``: motion_compensated's, whose futures are waited for)."""
        sy, sx = self.shifts[c]
        if ts is None:
            t, edges = _EMPTY, _NONE3
        else:
            t, edges = ts[c].result() if isinstance(ts[c], Future) else ts[c]
        return (t, edges, chart.plane_modes(), CELL >> sy, CELL >> sx, self.maxima[c], self.step)


# --------------------------------------------------------------------------------------------------
# Encoder
# --------------------------------------------------------------------------------------------------

#: Luma samples from which a two-thread encoder hands small tasks to its other threads: the chroma
#: planes' prediction and residual, the next reference's planes (carphone's 176x144 frames took
#: 9% longer so, bikes' 640x272 4% less, bigbuckbunny's 1280x720 5-10% less).
THREAD_TASK_MIN_SAMPLES = 1 << 16


class _Charts(NamedTuple):
    """A frame's charts, as the encoder chooses them one from the other."""

    searched: Chart | None  # the search's (None: a keyframe's), which the next frame's search plan reads
    vectors: Chart  # that with levels leaves (search.choose_levels), whose vectors the next search reads
    coded: Chart  # that with its intra leaves' predictors (search.choose_intra): the one coded


class _Ahead(NamedTuple):
    """The search thread's work on the next frame."""

    number: int  # the frame's number
    planes: list  # its colour planes
    luma: np.ndarray | None  # lossless: its luma reconstruction (FrameEncoder._colour_planes)
    chart: Future  # of its _Charts


class EncoderBuffers(NamedTuple):
    """A FrameEncoder's largest arrays, which a later one coding frames of the same size may take
    over (``FrameEncoder(buffers=...)``): it writes them before it reads them, and the pages are
    not faulted in again (a worker's segments; a new encoder's first writes to some 100 MB of
    planes at 720p cost 6-8% of a six-frame segment)."""

    planes: object  # search.ReferencePlanes
    refs: list[np.ndarray] | None  # _Segment.refs


class _SharedWork:
    """The bands of a frame's search (search.choose_chart's ``run``), shared between the search
    thread, which offers them all and runs them one by one, and the coding thread, which takes
    them too while it waits for that search (``wait``): when the searches take longer than the
    coding (bikes), both cores search. Each band's result goes to its place, so the chart does not
    depend on who searched what."""

    def __init__(self):
        self._offered: collections.deque = collections.deque()  # (Future, function of no argument)
        self._changed = threading.Condition()

    def run(self, tasks: list[Callable]) -> list:
        """What ``tasks`` return, in order; this thread runs every one the other does not take."""
        futures = [Future() for _ in tasks]
        with self._changed:
            self._offered.extend(zip(futures, tasks))
            self._changed.notify_all()
        while self._run_one():
            pass
        return [future.result() for future in futures]

    def wait(self, future: Future):
        """``future``'s result, running offered tasks until it is done."""
        future.add_done_callback(self._notify)
        while True:
            with self._changed:
                while not self._offered and not future.done():
                    self._changed.wait()
            if future.done():
                return future.result()
            self._run_one()

    def _run_one(self) -> bool:
        """Run the next offered task, if any (False: none)."""
        with self._changed:
            if not self._offered:
                return False
            future, task = self._offered.popleft()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(task())
        except BaseException as exc:
            future.set_exception(exc)
        return True

    def _notify(self, _future: Future) -> None:
        with self._changed:
            self._changed.notify_all()


class FrameEncoder:
    """Turns frames into chunk payloads, one at a time (memory: the reference window).

    ``threads`` > 1: while a frame is coded, a second thread searches the next ones (given to
    ``encode`` as ``next_frame`` and ``after_next``) and chooses their charts (_inter_charts),
    each search after deriving the planes of the frame before it. A search needs the luma
    reconstruction and the charts of the frame before, the coded chart of the one before that
    and a residual's statistics, nothing that the coding of later frames produces: the same
    inputs, the same chart, the same bytes. Lossless, the reconstruction is the source, so the
    search of the frame after next is queued when this frame starts; it waits in the search
    thread for the next frame's charts and for this frame's luma residual, which is worked out
    before this frame's coding. So the search thread runs ahead of the coding and does not wait
    for it to hand over each frame (bigbuckbunny, whose coding and searches take about as long).
    When the coding thread has to wait for a search all the same, it searches bands of that frame
    too (_SharedWork).
    Near-lossless, the next frame's search needs this frame's quantised luma plane, and starts
    once that is done (the other planes and the entropy coding overlap it). A third thread
    predicts the chroma planes and works out their residuals while this one does the luma's, then
    codes them while this one codes the luma (_Segment.code). ``close`` ends the threads.
    """

    def __init__(self, header: StreamHeader, params: EncodeParams, threads: int = 1,
                 buffers: EncoderBuffers | None = None):
        from . import search  # encoder only: the decoder never imports the search
        from .kernels.encode import residual_lossless, residual_near_lossless

        self._search = search
        self._residual = residual_lossless
        self._residual_near_lossless = residual_near_lossless
        # the search's planes derived from each reference, in slot number % slots, derived when a
        # search first needs them (so the last frame of a segment or clip costs none); with the
        # search thread one slot more than the window, so that the next frame's planes can be
        # derived while the search reads the window's
        self._planes = buffers.planes if buffers is not None else search.ReferencePlanes()
        self._slots = MAX_LAGS + (threads > 1)
        self._derived = [-1] * self._slots  # the frame number whose planes each slot holds
        self.params = params
        self.segment = _Segment(header)
        if buffers is not None:
            self.segment.adopt_window(buffers.refs)
        self.count = 0
        self._ahead = None  # the search thread
        self._older: Chart | None = None  # the chart before the segment's previous one
        self._older_q: np.ndarray | None = None  # and the luma residual before the previous one
        self._before: _Charts | None = None  # the previous frame's charts
        self._next: _Ahead | None = None  # the search of the next frame, queued
        self._after: _Ahead | None = None  # and of the frame after it
        self._chroma = None  # the thread that does the chroma planes while this one does the luma
        self._shared = None  # the bands of the search running now, which the coding thread may take
        if threads > 1:
            from concurrent.futures import ThreadPoolExecutor

            self._shared = _SharedWork()
            self._ahead = ThreadPoolExecutor(1, thread_name_prefix="triadic-search")
            self._chroma = ThreadPoolExecutor(1, thread_name_prefix="triadic-chroma")

    def close(self) -> None:
        """End the search and chroma threads, if any (a live thread makes process pools fork-serve)."""
        for pool in (self._ahead, self._chroma):
            if pool is not None:
                pool.shutdown(wait=True)
        self._ahead = self._chroma = None

    def buffers(self) -> EncoderBuffers:
        """This encoder's largest arrays, for another one once this one is done with them."""
        return EncoderBuffers(self._planes, self.segment.refs)

    def _derive(self, number: int, luma: np.ndarray) -> None:
        """Frame ``number``'s reference planes in their slot, unless they are there already."""
        slot = number % self._slots
        if self._derived[slot] != number:
            self._planes.add(slot, luma, PAD, self.segment.maxima[0], self._slots)
            self._derived[slot] = number

    def _window_slots(self, number: int, available: int) -> np.ndarray:
        """The plane slots of frame ``number``'s references: the ``available`` frames before it,
        up to the preset's lags."""
        lags = min(available, self.params.lags)
        return np.array([(number - lag) % self._slots for lag in range(1, lags + 1)], dtype=np.int64)

    def _window(self, number: int, available: int) -> np.ndarray:
        """_window_slots, derived from the reference ring where they are not yet."""
        ring = self.segment.lag_slots()  # ring slot of the frame at lag l from the newest in it
        slots = self._window_slots(number, available)
        for lag in range(1, slots.size + 1):
            self._derive(number - lag, self.segment.refs[0][ring[lag - 1]])
        return slots

    def _last_q(self) -> np.ndarray | None:
        """The luma residual of the segment's last coded frame (None at its start)."""
        return self.segment.prev_q[0] if self.segment.prev_q is not None else None

    def _choose_chart(self, cur: np.ndarray, refs: np.ndarray, window: np.ndarray, prev: Chart | None,
                      older: Chart | None, residual: np.ndarray | None, plan) -> Chart:
        """search.choose_chart of luma plane ``cur`` with this encoder's settings and planes
        (``window``: the reference slots, ``plan``: search.search_plan's)."""
        seg, p = self.segment, self.params
        return self._search.choose_chart(cur, refs, window, PAD, prev, seg.header.block_size, p.min_leaf,
                                         p.search_range, seg.maxima[0], seg.step, self._planes, older, residual,
                                         p.descent, plan, self._shared.run if self._shared is not None else None)

    def _search_plan(self, position: int, lags: int, before: _Charts) -> tuple[np.ndarray, bool]:
        """search.search_plan of the frame at ``position`` in its segment, with ``lags``
        references, after the frame whose charts are ``before``. After a frame with levels leaves,
        the slow preset tries bi-prediction all the same: its leaves start from vectors walked by
        estimated bits, and pay there (carphone 2.889 bpppf with them, 2.914 without)."""
        return self._search.search_plan(position, before.searched, lags,
                                        before.vectors.qp >= 0 and self.params.descent == 0)

    def _colour_planes(self, frame: Frame) -> tuple[list, np.ndarray | None]:
        """A frame's colour planes and, lossless, its luma reconstruction (the source, as int32:
        converted once for the search's levels leaves, the planes derived from it and the
        residual)."""
        seg = self.segment
        planes = colour.forward(seg.fmt.colour, seg.fmt.bit_depth, list(frame.planes))
        return planes, np.ascontiguousarray(planes[0], dtype=np.int32) if seg.step == 1 else None

    def _queue_search(self, number: int, frame: Frame, prev_luma: np.ndarray, before, older: Chart | None,
                      residual) -> _Ahead:
        """Queue the search of frame ``number`` (a later frame of this one's segment) in the
        search thread, with what the frame before it leaves: ``prev_luma``, its luma
        reconstruction (the thread first derives its planes; the window's older frames are
        derived already), and ``before``, its _Charts (or a Future of them); ``older``, the coded
        chart of the frame before that; ``residual``, a luma residual's statistics (or a Future
        of it; see _inter_charts' callers)."""
        planes, luma = self._colour_planes(frame)
        window = self._window_slots(number, min(self.segment.available + number - self.count, MAX_LAGS))

        def search() -> _Charts:
            self._derive(number - 1, prev_luma)
            charts = before.result() if isinstance(before, Future) else before
            plan = self._search_plan(number % self.params.keyint, window.size, charts)
            # (``refs``: any array says "not a keyframe"; the search reads only self._planes)
            return self._inter_charts(planes, luma, prev_luma, window, charts.vectors, older,
                                      residual.result() if isinstance(residual, Future) else residual, plan)

        return _Ahead(number, planes, luma, self._ahead.submit(search))

    def _take_ahead(self, number: int) -> _Ahead | None:
        """The queued search of frame ``number``, if any; queued searches of other frames (a
        caller that skipped one) are waited for and dropped."""
        ahead, self._next, self._after = self._next, self._after, None
        if ahead is not None and ahead.number != number:
            wait([a.chart for a in (ahead, self._next) if a is not None])
            ahead = self._next = None
        return ahead

    def _plane_residual(self, c: int, plane: np.ndarray, chart: Chart, ts: list | None,
                        luma: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Plane c's residual q under ``chart`` and its reconstruction (lossless: the source,
        ``luma`` for the luma); ``ts``: the planes' (T, edges), or futures of them."""
        seg = self.segment
        if seg.step > 1:
            return self._residual_near_lossless(np.ascontiguousarray(plane, dtype=np.int32),
                                                *seg.plane_args(c, chart, ts))
        rec = luma if c == 0 else np.ascontiguousarray(plane, dtype=np.int32)
        return self._residual(rec, *seg.plane_args(c, chart, ts)[:-1]), rec

    def _inter_charts(self, planes: list[np.ndarray], luma: np.ndarray | None, refs: np.ndarray, window: np.ndarray,
                      prev: Chart | None, older: Chart | None, residual: np.ndarray | None, plan) -> _Charts:
        """An inter frame's charts from its colour ``planes`` and ``luma`` (_colour_planes's; the
        rest: _choose_chart's): in the search thread for the next frame, so that the coding
        thread finds them all done."""
        seg = self.segment
        searched = self._choose_chart(planes[0], refs, window, prev, older, residual, plan)
        vectors = searched
        if luma is not None:  # lossless: levels leaves, read from the reconstruction (the source)
            vectors = self._search.choose_levels(searched, luma, self._planes, window, PAD, seg.maxima[0], seg.step)
        coded = self._search.choose_intra(vectors, planes, seg.shifts, seg.maxima, seg.step, False,
                                          self.params.min_leaf)
        return _Charts(searched, vectors, coded)

    def encode(self, frame: Frame, next_frame: Frame | None = None,
               after_next: Frame | None = None) -> tuple[bytes, bool, FrameLog]:
        """Code ``frame``; ``next_frame`` and ``after_next`` (the two after it, if the caller has
        them) let the search thread start on them (see the class)."""
        seg = self.segment
        keyint = self.params.keyint
        keyframe = self.count % keyint == 0
        ahead = self._take_ahead(self.count)
        search_was_behind = ahead is not None and not ahead.chart.done()  # (this thread waits for it)
        if keyframe:
            seg.reset()
        planes, luma = (ahead.planes, ahead.luma) if ahead is not None else self._colour_planes(frame)
        h, w = seg.shapes[0]
        if keyframe:
            vectors = Chart.empty(h, w, seg.header.block_size)
            charts = _Charts(None, vectors, self._search.choose_intra(vectors, planes, seg.shifts, seg.maxima,
                                                                      seg.step, True, self.params.min_leaf))
        elif ahead is not None:
            charts = self._shared.wait(ahead.chart)
        else:
            window = self._window(self.count, seg.available)
            charts = self._inter_charts(planes, luma, seg.refs[0], window, seg.prev_chart, self._older,
                                        self._older_q if seg.step == 1 else self._last_q(),
                                        self._search_plan(self.count % keyint, window.size, self._before))
        self._before = charts
        _, vectors, chart = charts
        searching = (self._ahead is not None and next_frame is not None
                     and (self.count + 1) % keyint != 0)
        luma_q = None  # (lossless) this frame's luma residual, for the search of the frame after next
        if searching and luma is not None:
            if self._next is None:  # (else queued with the frame before)
                self._next = self._queue_search(self.count + 1, next_frame, luma, charts, seg.prev_chart,
                                                self._last_q())
            if after_next is not None and (self.count + 2) % keyint != 0:
                if search_was_behind:
                    # the search thread is the longer one (bikes): the planes of the next frame
                    # here, in a slot that the search running now does not read
                    self._derive(self.count + 1, self._next.luma)
                luma_q = Future()
                self._after = self._queue_search(self.count + 2, after_next, self._next.luma, self._next.chart,
                                                 chart, luma_q)
        # the chroma planes' prediction and residual in the chroma thread meanwhile (not on small
        # pictures, whose tasks cost more to hand over than they take)
        pool = self._chroma if h * w >= THREAD_TASK_MIN_SAMPLES else None
        try:
            ts = seg.motion_compensated(chart, pool)
            chroma = [pool.submit(self._plane_residual, c, planes[c], chart, ts, None)
                      for c in range(1, len(planes))] if pool is not None else []
            q, rec = self._plane_residual(0, planes[0], chart, ts, luma)
            if seg.step == 1 and chart.qp >= 0 and not residual_to_levels(q, rec, ts[0][0], chart.transform, CELL,
                                                                          chart.qp):
                raise AssertionError("a levels leaf the search chose has no exact levels")
        except BaseException as exc:
            if luma_q is not None:  # the search waiting for it fails too, and does not wait forever
                luma_q.set_exception(exc)
            raise
        if luma_q is not None:
            luma_q.set_result(q)  # (what _last_q will give, as coded: levels blocks hold levels)
        if seg.step > 1 and searching:
            self._next = self._queue_search(self.count + 1, next_frame, rec, charts, seg.prev_chart, q)
        qs, recs = [q], [rec]
        for c in range(1, len(planes)):
            q, rec = chroma[c - 1].result() if chroma else self._plane_residual(c, planes[c], chart, ts, None)
            qs.append(q)
            recs.append(rec)
        coder = Encoder(measure=True)
        log = FrameLog(self.count, keyframe)
        self._older = seg.prev_chart  # (None after a keyframe's reset)
        self._older_q = self._last_q()
        seg.code(coder, chart, qs, log, ts, chroma=self._chroma)
        seg.push_reference(recs)
        payload = coder.finish()
        log.bytes = len(payload)
        self.count += 1
        return payload, keyframe, log


def _header_for(source, params: EncodeParams) -> StreamHeader:
    return StreamHeader(width=source.width, height=source.height, pix_fmt=source.pix_fmt,
                        frame_rate=Fraction(source.frame_rate), frame_count=0,
                        keyint=params.keyint, max_error=params.max_error, block_size=params.block_size)


def encode(source, dest, *, frames: int | None = None, keyint: int = 60, preset: str = "medium",
           max_error: int = 0, block_size: int = 16, references: int | None = None,
           progress: Callable[[int, int | None], None] | None = None, jobs: int | None = None) -> dict:
    """Encode a video (path, image folder/glob, array or iterable of Frames) into ``dest`` (.tri).

    ``jobs`` processes encode segments (keyint frames) in parallel, with the same bytes as
    ``jobs=1``; None: every core, when the pictures are large enough to gain, as many as the free
    memory holds (triadic.parallel.plan_jobs).
    Coded in one process (one segment, say), ``jobs`` other than 1 searches the next frames in a
    second thread while the current one is coded, and codes its chroma in a third while its luma
    is coded (FrameEncoder), the same bytes again.
    Returns a report: bytes, frames, width, height, pix_fmt, bpppf, seconds, and per-frame logs.
    """
    from contextlib import closing

    from .io import open_source
    from .parallel import check_jobs, encode_frames

    params = EncodeParams(keyint=keyint, preset=preset, max_error=max_error, block_size=block_size,
                          references=references)
    if frames is not None and frames < 1:
        raise InputError(f"--frames must be at least 1, got {frames}")
    check_jobs(jobs)
    start = time.perf_counter()
    logs: list[FrameLog] = []
    with open_source(source, frames=frames) as src:
        header = _header_for(src, params)
        fmt = header.format

        def checked():
            for frame in src:
                validate_frame(frame, fmt, header.height, header.width)
                yield frame

        with ContainerWriter(dest, header) as writer, \
                closing(encode_frames(checked(), header, params, jobs)) as coded:
            for payload, keyframe, log in coded:
                writer.write_frame(payload, keyframe)
                logs.append(log)
                if progress:
                    progress(len(logs), src.frame_count)
            if not logs:
                raise InputError("the source has no frames")
        size = writer.bytes_written
    pixels = header.width * header.height * len(logs)
    return {"bytes": size, "frames": len(logs), "width": header.width, "height": header.height,
            "pix_fmt": header.pix_fmt, "bpppf": 8.0 * size / pixels,
            "seconds": time.perf_counter() - start, "frames_log": [l.as_dict() for l in logs]}


# --------------------------------------------------------------------------------------------------
# Decoder
# --------------------------------------------------------------------------------------------------

class _Lookahead(NamedTuple):
    """The next frame's start, decoded during this one (FrameDecoder._look_ahead)."""

    payload: bytes
    coder: Decoder | None
    chart: Chart | None
    bits: float
    luma: Future | None  # its luma's (T, edges)
    sources: Future | None  # its luma's context sources (_Segment.context_sources)
    error: Exception | None  # what decoding its chart raised


class FrameDecoder:
    """Turns chunk payloads back into frames, in order.

    ``threads``: a second thread predicts the planes after the first (motion_compensate) while
    the first one's residual is being decoded, works out the chroma's context sources once the
    luma residual is decoded, and reconstructs each channel but the last (_decode_plane) while
    the next channel's residual is being decoded (a chroma channel it has not started by the
    frame's end, this thread rebuilds itself). Given the next frame's payload (``decode``'s
    ``following``), this thread decodes the next frame's chart once this frame's luma residual
    is decoded, and the second thread predicts the next frame's luma as soon as this frame's luma
    is rebuilt, and works out its context sources. The kernels of both threads release the GIL.
    The same frames; the residual's entropy decoding stays one sequential stream (the critical
    path). ``close`` ends the thread.
    """

    def __init__(self, header: StreamHeader, measure: bool = False, threads: bool = False):
        self.segment = _Segment(header)
        self.measure = measure
        self.count = 0
        self.logs: list[FrameLog] = []
        self._pool = None
        self._ahead: _Lookahead | None = None
        if threads:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(1, thread_name_prefix="triadic-reconstruct")

    def close(self) -> None:
        """End the reconstruction thread, if any (a live thread makes process pools fork-serve)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def decode(self, payload: bytes, keyframe: bool, index: int | None = None,
               following: bytes | None = None) -> Frame:
        """The next frame (or frame ``index``, after a gap: salvage). Damage raises
        CorruptStreamError naming the frame; an unexpected exception from a damaged payload is
        wrapped into one (chained, so the fuzz tests still see it). ``following``: the payload
        of the frame after this one, if it is not a keyframe (with threads: see the class)."""
        if index is not None:
            self.count = index
        seg = self.segment
        ahead, self._ahead = self._ahead, None
        if ahead is not None and not keyframe and (index is not None or ahead.payload is not payload):
            raise RuntimeError("FrameDecoder.decode: ``following`` was not the next payload decoded")
        if keyframe:  # (the model starts again: whatever a look-ahead decoded is dropped)
            ahead = None
            seg.reset()
        elif seg.available == 0:
            raise CorruptStreamError(f"frame {self.count} is not a keyframe but follows no reference")
        try:
            if ahead is not None and ahead.error is not None:
                raise ahead.error
            return self._decode(payload, keyframe, ahead, following if self._pool is not None else None)
        except CorruptStreamError as exc:
            raise CorruptStreamError(f"frame {self.count} is damaged: {exc}") from exc.__cause__
        except Exception as exc:  # noqa: BLE001 - a payload with a valid CRC can still be nonsense
            raise CorruptStreamError(f"frame {self.count} is damaged: its payload does not decode "
                                     f"({type(exc).__name__}: {exc})") from exc

    def _decode(self, payload: bytes, keyframe: bool, ahead: _Lookahead | None, following: bytes | None) -> Frame:
        seg = self.segment
        coder = Decoder(payload, measure=self.measure) if ahead is None else ahead.coder
        log = FrameLog(self.count, keyframe, bytes=len(payload))
        started = {}
        sources = {0: ahead.sources} if ahead is not None else {}

        def hook(c, q, coded, chart, ts):
            if c == 0:  # the chroma's context sources, first (this thread decodes the next chart meanwhile)
                for k in range(1, len(seg.shapes)):
                    sources[k] = self._pool.submit(seg.channel_sources, k, chart, coded, ts)
            if c + 1 < len(seg.shapes) and self._in_range(c, q):  # else as without threads
                started[c] = self._pool.submit(_decode_plane, q, *seg.plane_args(c, chart, ts))
                if c == 0 and following is not None and seg.refs is not None:
                    self._ahead = self._look_ahead(following, chart, started[0], coded)
        chart, qs = seg.code(coder, None, None, log, on_residual=hook if self._pool is not None else None,
                            summarise=self.measure, pool=self._pool, ahead=ahead, sources=sources)
        coder.finish()
        for c, q in enumerate(qs):
            if not self._in_range(c, q, seg.prev_kb[c] if c or chart.qp < 0 else None):
                raise CorruptStreamError(f"channel {c} has a residual beyond the sample range")
        # this thread rebuilds the channels it did not hand over, then those the other thread has not
        # started (not the luma: the next frame's prediction waits for that future)
        rebuilt = {c: _decode_plane(q, *seg.plane_args(c, chart, seg.ts)) for c, q in enumerate(qs) if c not in started}
        for c, future in started.items():
            rebuilt[c] = _decode_plane(qs[c], *seg.plane_args(c, chart, seg.ts)) if c and future.cancel() \
                else future.result()
        recs = [rebuilt[c] for c in range(len(qs))]
        placed = int(self._ahead is not None and self._ahead.luma is not None)
        if placed:  # the next frame's prediction puts the luma in the window (its errors are that frame's)
            wait([self._ahead.luma])
        seg.push_reference(recs, placed)
        if self.measure:
            self.logs.append(log)
        self.count += 1
        planes = colour.inverse(seg.fmt.colour, seg.fmt.bit_depth, recs, seg.fmt.dtype)
        return Frame(tuple(planes), seg.header.pix_fmt)

    def _look_ahead(self, payload: bytes, chart: Chart, luma: Future, luma_q: np.ndarray) -> _Lookahead:
        """The next frame's chart, decoded from ``payload`` now (it reads only this frame's
        chart and the chart's own counts), and in the second thread, once ``luma`` (this frame's
        luma reconstruction) is done, its luma's prediction and context sources (``luma_q``: this
        frame's luma residual as coded); what decoding the chart raises waits for the next frame."""
        seg = self.segment
        h, w = seg.shapes[0]
        try:
            coder = Decoder(payload, measure=self.measure)
            ahead, bits = code_chart(coder, seg.model, None, chart, seg.header.block_size, h, w,
                                     min(seg.available + 1, MAX_LAGS))
        except Exception as exc:  # noqa: BLE001 - the next frame's error, raised as decode's are
            return _Lookahead(payload, None, None, 0.0, None, None, exc)
        prediction = self._pool.submit(seg.next_luma_prediction, ahead, luma.result)
        newest = seg.refs[0][(seg.head + 1) % MAX_LAGS]  # where next_luma_prediction puts this frame's luma
        sources = self._pool.submit(lambda: seg.context_sources(0, ahead, luma_q, None, prediction.result()[0], newest))
        return _Lookahead(payload, coder, ahead, bits, prediction, sources, None)

    def _in_range(self, c: int, q: np.ndarray, kb: np.ndarray | None = None) -> bool:
        """Lossless: the kernel wraps p + q into range once, so |q| must be < 2^b. With the
        channel's K map ``kb`` (per block, the ternary digits of its residuals, at most K: |q| <=
        (3^K - 1) / 2), a small enough K answers without reading q."""
        seg = self.segment
        top = seg.maxima[c]
        if seg.step != 1 or not q.size:
            return True
        if kb is not None and kb.size and (3 ** int(kb.max()) - 1) // 2 <= top:
            return True
        return int(q.min()) >= -top - 1 and int(q.max()) <= top


def decode(src, *, start: int = 0, frames: int | None = None, jobs: int | None = None) -> Iterator[Frame]:
    """Frames of a .tri file (path or bytes), in order, as :class:`Frame` objects.

    ``start`` and ``frames`` pick a range: at most ``frames`` frames from frame ``start`` on (the
    default: all of them). A range seeks through the file's index to the segment that holds
    ``start`` and decodes from that keyframe, so the frames before it cost nothing.
    ``jobs`` processes decode segments in parallel (same frames; None: every core, when the
    pictures are large enough to gain, as many as the free memory holds). Close the generator
    to release them early. In one process (one segment, say), ``jobs`` other than 1
    reconstructs planes in a second thread.
    """
    from .parallel import check_jobs, decode_chunks

    check_jobs(jobs)
    start = _count("start", start, 0)
    frames = None if frames is None else _count("frames", frames, 1)
    with ContainerReader(src) as reader:
        if not start:
            chunks, skip = reader.frames(), 0
        else:
            chunks = reader.frames_from(start)  # from the keyframe at or before start
            skip = start - reader.keyframe_before(start)
        if frames is not None:
            chunks = itertools.islice(chunks, skip + frames)
        yield from itertools.islice(decode_chunks(chunks, reader.header, jobs), skip, None)


def _count(name: str, value, least: int) -> int:
    """``value`` as an int of at least ``least``, or an InputError that names ``name``."""
    try:
        value = operator.index(value)
    except TypeError:
        raise InputError(f"{name} must be an integer, got {value!r}") from None
    if value < least:
        raise InputError(f"{name} must be at least {least}, got {value}")
    return value


def salvage(src) -> Iterator[tuple[int, Frame | None]]:
    """(frame number, Frame or None) for every frame of a damaged .tri file, in order.

    None marks a lost frame: its chunk is damaged or missing, its payload does not decode, or it
    depends on a lost frame (decoding resumes at the next intact keyframe, the next segment
    start). Only a damaged header (nothing can be decoded without it) raises.
    """
    with ContainerReader(src) as reader:
        decoder = FrameDecoder(reader.header)
        broken = True  # a keyframe is needed before anything decodes
        for index, keyframe, payload in reader.salvage():
            frame = None
            if payload is not None and (keyframe or not broken):
                try:
                    frame = decoder.decode(payload, keyframe, index)
                except CorruptStreamError:
                    frame = None
            broken = frame is None
            yield index, frame


@dataclass
class FrameAnalysis:
    """One decoded frame with what produced it: the chart, the residual of every codec plane
    as coded (int32; after the colour transform, before reconstruction; in the luma of levels
    leaves, their H.264 levels) and the frame's cost log."""

    frame: Frame
    residuals: list[np.ndarray]
    chart: Chart
    log: FrameLog
    channels: list[str]


def analyse(src) -> Iterator[FrameAnalysis]:
    """Decode a .tri file frame by frame, exposing residuals, charts and bits (for plots)."""
    with ContainerReader(src) as reader:
        decoder = FrameDecoder(reader.header, measure=True)
        names = _channel_names(decoder.segment.fmt)
        for index, keyframe, payload in reader.frames():
            frame = decoder.decode(payload, keyframe)
            seg = decoder.segment
            yield FrameAnalysis(frame, seg.prev_q, seg.prev_chart, decoder.logs[-1], names)


def read_header(src) -> StreamHeader:
    with ContainerReader(src) as reader:
        return reader.header


def info(src, *, detail: bool = True) -> dict:
    """Header fields, sizes and (with ``detail``) per-plane and per-frame statistics of a .tri file.

    ``detail`` decodes the stream to measure ρ_k and bits per plane, so it takes as long as decoding.
    """
    with ContainerReader(src) as reader:
        header = reader.header
        size = reader.file_size
        out = {"width": header.width, "height": header.height, "frames": header.frame_count,
               "pix_fmt": header.pix_fmt, "bit_depth": header.bit_depth,
               "colour_transform": header.colour_transform,
               "frame_rate": f"{header.frame_rate.numerator}/{header.frame_rate.denominator}",
               "keyint": header.keyint, "max_error": header.max_error,
               "block_size": header.block_size, "bytes": size,
               "bpppf": 8.0 * size / max(1, header.width * header.height * header.frame_count)}
        if not detail:
            return out
        decoder = FrameDecoder(header, measure=True)
        for index, keyframe, payload in reader.frames():
            decoder.decode(payload, keyframe)
    seg = decoder.segment
    names = _channel_names(seg.fmt)
    planes = []
    for c, stats in enumerate(seg.stats):
        for k in sorted(stats.bits, reverse=True):
            planes.append({"channel": names[c], "k": k, "rho": stats.nonzero[k] / max(1, stats.samples),
                           "bits": round(stats.bits[k], 1), "samples": stats.samples})
    logs = decoder.logs
    out["side_bits"] = round(sum(l.side_bits for l in logs), 1)
    out["residual_bits"] = round(sum(l.residual_bits for l in logs), 1)
    out["planes"] = planes
    out["frames_log"] = [l.as_dict() for l in logs]
    return out


def _channel_names(fmt: PixelFormat) -> list[str]:
    if fmt.planes == 1:
        return ["Y"]
    return ["Y", "Co", "Cg"] if fmt.colour == "ycocg-r" else ["Y", "U", "V"]


def check(data: bytes) -> bool:
    """True if ``data`` starts like a .tri stream (a magic sniff; nothing is decoded)."""
    from .container import check as container_check

    return container_check(data)
