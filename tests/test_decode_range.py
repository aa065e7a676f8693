"""Decoding a range of frames: ``decode(start=, frames=)`` and ``triadic decode --start --frames``
give exactly the frames of a full decode, seeking to the segment that holds the first one."""

import pytest

import triadic
from conftest import make_frames
from triadic import cli, container


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    """9 frames in segments of 4 (keyframes 0, 4, 8), and the full decode to compare with."""
    path = tmp_path_factory.mktemp("range") / "r.tri"
    triadic.encode(make_frames("yuv420p", 20, 28, 9), path, keyint=4)
    return path, list(triadic.decode(path, jobs=1))


@pytest.mark.parametrize("start", range(9))
@pytest.mark.parametrize("frames", [None, 1, 2, 5, 100])
def test_range_is_a_slice_of_the_full_decode(stream, start, frames):
    path, full = stream
    want = full[start:] if frames is None else full[start:start + frames]
    got = list(triadic.decode(path, start=start, frames=frames, jobs=1))
    assert len(got) == len(want) and all(a.equals(b) for a, b in zip(got, want))


@pytest.mark.parametrize("start, frames", [(1, None), (5, 3), (0, 6)])
def test_range_with_segments_in_processes(stream, start, frames):
    path, full = stream
    want = full[start:] if frames is None else full[start:start + frames]
    got = list(triadic.decode(path, start=start, frames=frames, jobs=2))
    assert len(got) == len(want) and all(a.equals(b) for a, b in zip(got, want))


def test_range_decodes_only_from_the_keyframe_before_start(stream, monkeypatch):
    path, _ = stream
    seen = []
    chunks = container.ContainerReader._chunks

    def spy(self, pos, i, index):
        for item in chunks(self, pos, i, index):
            seen.append(item[0])
            yield item

    monkeypatch.setattr(container.ContainerReader, "_chunks", spy)
    assert len(list(triadic.decode(path, start=6, frames=2, jobs=1))) == 2
    assert seen == [4, 5, 6, 7]  # the segment's keyframe, up to the last frame asked for


@pytest.mark.parametrize("bad, message", [
    (dict(start=9), "frame 9 is out of range: the stream has 9 frames"),
    (dict(start=-1), "start must be at least 0"),
    (dict(frames=0), "frames must be at least 1"),
    (dict(start=2.0), "start must be an integer"),
    (dict(frames="3"), "frames must be an integer"),
])
def test_bad_range_is_a_clear_input_error(stream, bad, message):
    with pytest.raises(triadic.InputError, match=message):
        list(triadic.decode(stream[0], **bad))


def test_cli_decode_range(stream, tmp_path, capsys):
    path, full = stream
    out = tmp_path / "part.y4m"
    assert cli.main(["decode", str(path), str(out), "--start", "3", "--frames", "4"]) == 0
    assert "4 frames" in capsys.readouterr().out
    got = list(triadic.read_frames(str(out)))
    assert len(got) == 4 and all(a.equals(b) for a, b in zip(got, full[3:7]))


@pytest.mark.parametrize("argv, message", [
    (["--start", "9"], "triadic: error: --start 9 is out of range: the stream has 9 frames"),
    (["--salvage", "--start", "2"], "triadic: error: --salvage decodes the whole file; "
                                     "it cannot be combined with --start or --frames"),
])
def test_cli_bad_range(stream, tmp_path, capsys, argv, message):
    out = tmp_path / "bad.y4m"
    assert cli.main(["decode", str(stream[0]), str(out), *argv]) == 2
    assert capsys.readouterr().err == message + "\n"
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["--start", "-1"], "argument --start: expected a frame number (0 or more), got -1"),
    (["--frames", "0"], "argument --frames: expected a positive integer, got 0"),
])
def test_cli_bad_range_arguments(stream, tmp_path, capsys, argv, message):
    out = tmp_path / "bad.y4m"
    with pytest.raises(SystemExit) as exc:
        cli.main(["decode", str(stream[0]), str(out), *argv])
    assert exc.value.code == 2 and message in capsys.readouterr().err
    assert not out.exists()
