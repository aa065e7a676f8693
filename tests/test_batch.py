"""triadic batch on a Dask LocalCluster of 2 worker processes: the same files as serial encoding,
a worker that dies mid-task is replaced and its task rerun, failures and interrupts leave no
partial output."""

import os
import time
from fractions import Fraction

import pytest

distributed = pytest.importorskip("distributed")

from conftest import make_frames  # noqa: E402
from triadic import batch, cli, codec, parallel  # noqa: E402
from triadic.params import EncodeParams  # noqa: E402
from triadic.io import open_sink  # noqa: E402

KEYINT = 3


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=40) as cluster, \
            distributed.Client(cluster) as client:
        yield cluster, client


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Three small y4m files (7, 4 and 2 frames) and their serial encodings."""
    folder = tmp_path_factory.mktemp("videos")
    paths = []
    for name, count, seed in (("a", 7, 1), ("b", 4, 2), ("c", 2, 3)):
        path = folder / f"{name}.y4m"
        with open_sink(str(path), pix_fmt="yuv420p", width=40, height=24,
                       frame_rate=Fraction(25)) as sink:
            for frame in make_frames("yuv420p", 24, 40, count, seed=seed):
                sink.write(frame)
        paths.append(str(path))
    expected = {}
    for path in paths:
        out = folder / (os.path.basename(path)[:-4] + ".tri")
        codec.encode(path, out, keyint=KEYINT, jobs=1)
        expected[os.path.basename(out)] = out.read_bytes()
    return paths, expected


def test_batch_writes_what_serial_encoding_writes(tmp_path, cluster, videos):
    _, client = cluster
    paths, expected = videos
    done = []
    reports = batch.encode(paths, tmp_path, client=client, keyint=KEYINT, window=2,
                           done=done.append)
    assert [r["frames"] for r in reports] == [7, 4, 2]
    assert sorted(r["input"] for r in done) == sorted(paths)
    assert sorted(os.listdir(tmp_path)) == sorted(expected)
    for name, data in expected.items():
        assert (tmp_path / name).read_bytes() == data


def test_a_worker_that_dies_mid_task_is_replaced_and_nothing_is_lost(tmp_path, cluster, videos):
    _, client = cluster
    paths, expected = videos
    marker = str(tmp_path / "crashed")

    class CrashOnce(distributed.WorkerPlugin):
        """Kill the worker process the first time it starts a triadic task."""

        def transition(self, key, start, finish, **kwargs):
            if finish == "executing" and str(key).startswith("triadic-") and not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(1)

    client.register_plugin(CrashOnce(), name="crash-once")
    try:
        out = tmp_path / "out"
        out.mkdir()
        reports = batch.encode(paths[:1], out, client=client, keyint=KEYINT)
    finally:
        client.unregister_worker_plugin("crash-once")
    assert os.path.exists(marker), "no worker was killed"
    assert "error" not in reports[0]
    assert (out / "a.tri").read_bytes() == expected["a.tri"]
    client.wait_for_workers(2, timeout=60)


def test_a_bad_input_fails_alone(tmp_path, cluster, videos):
    _, client = cluster
    paths, expected = videos
    broken = tmp_path / "broken.y4m"
    broken.write_bytes(b"YUV4MPEG2 nonsense\n")
    out = tmp_path / "out"
    out.mkdir()
    reports = batch.encode([paths[1], str(broken)], out, client=client, keyint=KEYINT)
    assert "error" in reports[1] and "error" not in reports[0]
    assert os.listdir(out) == ["b.tri"]
    assert (out / "b.tri").read_bytes() == expected["b.tri"]


def test_an_interrupt_leaves_no_partial_output(tmp_path, cluster, videos):
    _, client = cluster
    paths, _ = videos

    def interrupt(report):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        batch.encode(paths, tmp_path, client=client, keyint=KEYINT, window=1, done=interrupt)
    # the first output was complete before the interrupt; nothing else, and no temporary file
    assert os.listdir(tmp_path) in ([], ["a.tri"])
    wait_for_no_tasks(client)


def wait_for_no_tasks(client, timeout=60.0):
    """Wait until the scheduler has forgotten every task. A cancel reaches the scheduler later,
    and distributed broadcasts it to every client: a client connecting in the same 2 ms gets two
    messages in its handshake and fails an assertion (seen in CI on the next test)."""
    deadline = time.monotonic() + timeout
    while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)):
        assert time.monotonic() < deadline, "the scheduler still holds tasks"
        time.sleep(0.05)


def test_same_stem_twice_is_refused(tmp_path, videos):
    paths, _ = videos
    with pytest.raises(batch.InputError, match="both be written"):
        batch.encode([paths[0], paths[0]], tmp_path, client=object())


def test_cli_batch_on_a_scheduler(tmp_path, cluster, videos, capsys):
    local, _ = cluster
    paths, expected = videos
    code = cli.main(["batch", "encode", *paths, "--out", str(tmp_path / "new"),
                     "--scheduler", local.scheduler_address, "--keyint", str(KEYINT)])
    assert code == 0
    assert capsys.readouterr().out.count(" frames ") == 3
    for name, data in expected.items():
        assert (tmp_path / "new" / name).read_bytes() == data
    assert cli.main(["batch", "encode", str(tmp_path / "missing.y4m"), "--out", str(tmp_path),
                     "--scheduler", local.scheduler_address]) == 2


def test_cli_batch_starts_a_local_cluster(tmp_path, videos, capsys):
    paths, expected = videos
    assert cli.main(["batch", "encode", paths[2], "--out", str(tmp_path), "--jobs", "2",
                     "--keyint", str(KEYINT), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert (tmp_path / "c.tri").read_bytes() == expected["c.tri"]


def test_a_local_cluster_has_no_more_workers_than_the_memory_holds(tmp_path, videos, monkeypatch):
    """Every core, but no more workers than the free memory holds for the largest picture among
    the inputs (an input that cannot be opened counts for nothing)."""
    paths, _ = videos
    big = str(tmp_path / "big.y4m")
    with open_sink(big, pix_fmt="yuv420p", width=1920, height=1080, frame_rate=Fraction(25)) as sink:
        for frame in make_frames("yuv420p", 1080, 1920, 1, seed=4):
            sink.write(frame)
    params = EncodeParams(keyint=KEYINT)
    worker = (parallel.WORKER_BYTES + parallel.ENCODE_BYTES_PER_SAMPLE * 1920 * 1080
              + 2 * (1920 * 1080 * 3 // 2) * KEYINT)  # parallel.memory_jobs's reckoning
    monkeypatch.setattr(parallel, "available_cores", lambda: 8)
    monkeypatch.setattr(parallel, "available_memory", lambda: 3 * worker + 1)
    assert batch.local_workers(paths, params) == 8  # small pictures: every core
    assert batch.local_workers(paths + [big, str(tmp_path / "missing.y4m")], params) == 3


def test_a_failed_scheduler_handshake_is_retried(monkeypatch):
    attempts = []

    class FlakyClient:
        """Fails the handshake as distributed does when a broadcast shares it, ``failures`` times."""
        failures = 1

        def __init__(self, address, timeout):
            attempts.append(address)
            if len(attempts) <= self.failures:
                raise AssertionError

    monkeypatch.setattr(distributed, "Client", FlakyClient)
    client, cluster = batch.start_client("tcp://127.0.0.1:1")
    assert isinstance(client, FlakyClient) and cluster is None and len(attempts) == 2
    attempts.clear()
    FlakyClient.failures = 3
    with pytest.raises(batch.InputError, match="refused the handshake three times"):
        batch.start_client("tcp://127.0.0.1:1")
    assert len(attempts) == 3
