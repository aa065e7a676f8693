"""The command line, and every kind of bad input the issue lists: exit 2, one line, no output."""

import json
import subprocess
import sys

import numpy as np
import pytest

import triadic
from conftest import make_frames
from triadic import cli, container


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def stream(tmp_path):
    """A small valid stream of 5 frames with a keyframe every 2."""
    path = tmp_path / "ok.tri"
    triadic.encode(make_frames("yuv420p", 24, 32, 5), path, keyint=2)
    return path


def assert_bad(capsys, tmp_path, argv, output=None):
    code, out, err = run(capsys, *argv)
    assert code == 2, (code, out, err)
    assert err.startswith("triadic: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    if output is not None:
        assert not output.exists(), "partial output left behind"
        assert not [p for p in output.parent.iterdir() if p.name.startswith(".")], "temporary file left behind"


def test_encode_decode_info_verify(capsys, tmp_path, carphone):
    tri = tmp_path / "c.tri"
    code, out, _ = run(capsys, "encode", carphone, tri, "--frames", 3, "--keyint", 2)
    assert code == 0 and "bpppf" in out
    code, out, _ = run(capsys, "info", tri, "--json")
    meta = json.loads(out)
    for key in ("width", "height", "frames", "pix_fmt", "bit_depth", "bytes", "bpppf",
                "side_bits", "residual_bits", "planes"):
        assert key in meta
    assert meta["frames"] == 3 and {"channel", "k", "rho", "bits"} <= set(meta["planes"][0])
    code, out, _ = run(capsys, "verify", carphone, tri, "--frames", 3)
    assert code == 0 and "bit-exact: yes" in out
    for name in ("out.y4m", "out.mkv", "frames"):
        code, _, _ = run(capsys, "decode", tri, tmp_path / name, "--quiet")
        assert code == 0 and (tmp_path / name).exists()
    code, out, _ = run(capsys, "verify", tmp_path / "out.mkv", tri)
    assert code == 0 and "bit-exact: yes" in out


def test_verify_reports_mismatch(capsys, tmp_path, carphone):
    tri = tmp_path / "c.tri"
    run(capsys, "encode", carphone, tri, "--frames", 2)
    other = tmp_path / "other.mkv"
    triadic.encode(make_frames("yuv420p", 144, 176, 2), tmp_path / "o.tri")
    run(capsys, "decode", tmp_path / "o.tri", other)
    code, out, _ = run(capsys, "verify", other, tri)
    assert code == 1 and "bit-exact: no" in out


def test_console_script_has_no_traceback(tmp_path):
    empty = tmp_path / "empty.tri"
    empty.write_bytes(b"")
    proc = subprocess.run([sys.executable, "-m", "triadic", "decode", str(empty), str(tmp_path / "o.y4m")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_empty_file_and_wrong_magic(capsys, tmp_path):
    bad = tmp_path / "bad.tri"
    for content in (b"", b"GIF89a" + bytes(100)):
        bad.write_bytes(content)
        assert_bad(capsys, tmp_path, ["decode", bad, tmp_path / "o.y4m"], tmp_path / "o.y4m")
        assert_bad(capsys, tmp_path, ["info", bad])


def test_unknown_major_version(capsys, tmp_path, stream):
    data = bytearray(stream.read_bytes())
    data[8:10] = (container.VERSION_MAJOR + 1).to_bytes(2, "little")
    bad = tmp_path / "newer.tri"
    bad.write_bytes(bytes(data))
    code, _, err = run(capsys, "decode", bad, tmp_path / "o.y4m")
    assert code == 2 and "newer" in err


def test_truncation_everywhere(capsys, tmp_path, stream):
    data = stream.read_bytes()
    with container.ContainerReader(stream) as reader:
        offsets = [offset for offset, _ in reader.index()]
    cuts = sorted({o for o in offsets} | {o + 3 for o in offsets} | {o + 20 for o in offsets}
                  | {10, 30, len(data) - 1, len(data) - 10, len(data) - 20})
    bad = tmp_path / "cut.tri"
    out = tmp_path / "o.y4m"
    for cut in cuts:
        bad.write_bytes(data[:cut])
        assert_bad(capsys, tmp_path, ["decode", bad, out], out)


def test_bit_flips_in_header_and_payload(capsys, tmp_path, stream):
    data = stream.read_bytes()
    with container.ContainerReader(stream) as reader:
        offsets = [offset for offset, _ in reader.index()]
    bad = tmp_path / "flip.tri"
    out = tmp_path / "o.y4m"
    for pos in [20, 24, 30] + [o + 7 for o in offsets] + [offsets[-1] + 12]:
        flipped = bytearray(data)
        flipped[pos] ^= 0x10
        bad.write_bytes(bytes(flipped))
        assert_bad(capsys, tmp_path, ["decode", bad, out], out)


def test_absurd_header_fails_before_allocating(capsys, tmp_path, stream):
    import struct
    import zlib

    data = stream.read_bytes()
    body_length = struct.unpack_from("<I", data, 12)[0]
    end = 16 + body_length
    bad = tmp_path / "huge.tri"
    # width and height are the first two u32 fields; frame_count follows the pix_fmt string
    frame_count_at = 16 + 8 + 1 + data[24] + 1 + 1 + 8
    for offset, value in ((16, 1 << 30), (20, 1 << 30), (frame_count_at, (1 << 32) - 1)):
        head = bytearray(data[:end])
        struct.pack_into("<I", head, offset, value)
        bad.write_bytes(bytes(head) + struct.pack("<I", zlib.crc32(head)) + data[end + 4:])
        assert_bad(capsys, tmp_path, ["decode", bad, tmp_path / "o.y4m"], tmp_path / "o.y4m")


def test_non_video_and_zero_frames(capsys, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n" * 50)
    out = tmp_path / "x.tri"
    assert_bad(capsys, tmp_path, ["encode", text, out], out)
    empty_dir = tmp_path / "nothing"
    empty_dir.mkdir()
    assert_bad(capsys, tmp_path, ["encode", empty_dir, out], out)
    with pytest.raises(triadic.InputError):
        triadic.encode(np.zeros((0, 8, 8), np.uint8), out)
    assert not out.exists()


def test_frame_size_change_mid_stream(capsys, tmp_path):
    import imageio.v3 as iio

    frames = tmp_path / "frames"
    frames.mkdir()
    iio.imwrite(frames / "a0.png", np.zeros((16, 16), np.uint8))
    iio.imwrite(frames / "a1.png", np.zeros((16, 16), np.uint8))
    iio.imwrite(frames / "a2.png", np.zeros((8, 16), np.uint8))
    out = tmp_path / "x.tri"
    assert_bad(capsys, tmp_path, ["encode", frames, out], out)


def test_bad_options(capsys, tmp_path, stream):
    with pytest.raises(SystemExit) as exc:
        cli.main(["encode", str(stream), str(tmp_path / "o.tri"), "--max-error", "3"])
    assert exc.value.code == 2
    assert "--max-error must be one of" in capsys.readouterr().err
    carphone = triadic.sample_clip("carphone")
    assert_bad(capsys, tmp_path, ["encode", carphone, tmp_path / "r.tri", "--refs", "5"], tmp_path / "r.tri")
    with pytest.raises(SystemExit) as exc:
        cli.main(["encode", str(carphone), str(tmp_path / "b.tri"), "--block-size", "12"])
    assert exc.value.code == 2
    assert "--block-size: invalid choice: 12" in capsys.readouterr().err
    assert_bad(capsys, tmp_path, ["decode", stream, tmp_path / "o.xyz"], tmp_path / "o.xyz")


def _triadic(*argv, stdin: bytes = b""):
    return subprocess.run([sys.executable, "-m", "triadic", *map(str, argv)], input=stdin,
                          capture_output=True)


def test_encode_reads_a_y4m_pipe_from_stdin(tmp_path, stream):
    """`triadic decode A.tri - | triadic encode - B.tri`: the same frames in B."""
    y4m = _triadic("decode", stream, "-")
    assert y4m.returncode == 0 and y4m.stdout.startswith(b"YUV4MPEG2")
    out = tmp_path / "piped.tri"
    proc = _triadic("encode", "-", out, "--keyint", 2, stdin=y4m.stdout)
    assert proc.returncode == 0, proc.stderr
    want, got = list(triadic.decode(stream)), list(triadic.decode(out))
    assert len(got) == len(want) == 5 and all(a.equals(b) for a, b in zip(got, want))
    proc = _triadic("encode", "-", out, "--frames", 2, stdin=y4m.stdout)
    assert proc.returncode == 0 and triadic.info(out, detail=False)["frames"] == 2


@pytest.mark.parametrize("stdin", [b"", b"not a video at all\n" * 10])
def test_encode_from_bad_stdin_is_one_line(tmp_path, stdin):
    out = tmp_path / "o.tri"
    proc = _triadic("encode", "-", out, stdin=stdin)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and err.startswith("triadic: error: stdin: ") and err.count("\n") == 1
    assert not out.exists() and not list(tmp_path.iterdir())


def test_verify_and_batch_refuse_stdin(capsys, tmp_path):
    assert_bad(capsys, tmp_path, ["verify", "-"])
    assert_bad(capsys, tmp_path, ["batch", "encode", "-", "--out", tmp_path / "out"])


class _Terminal:
    """A stand-in for stderr on a terminal: Progress draws only there."""

    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_first_run_says_it_is_compiling(monkeypatch, tmp_path):
    """On a first run (kernels not in numba's cache) the progress line says that it is compiling
    when no frame is done within COMPILE_NOTICE_AFTER seconds, on a line of its own; a frame done
    sooner, a failure before it, --quiet or a compiled cache say nothing."""
    import time

    from triadic.kernels.predict import _decode_plane

    monkeypatch.setattr(cli, "COMPILE_NOTICE_AFTER", 0.05)
    term = _Terminal()
    monkeypatch.setattr(cli.sys, "stderr", term)
    slow = cli.Progress("encode", quiet=False, compiling=True)
    time.sleep(0.5)
    slow(1, 3)
    slow.done()
    assert term.text.startswith("encode: first run on this machine: compiling triadic's kernels")
    assert "\n\rencode [" in term.text and term.text.endswith("\n")

    for quiet, compiling, first_frame in ((False, True, True), (False, True, False), (True, True, False),
                                          (False, False, False)):
        term.text = ""
        progress = cli.Progress("decode", quiet=quiet, compiling=compiling)
        if first_frame:
            progress(1, 3)
        progress.done()  # a failure ends it here (the commands' finally)
        time.sleep(0.2)
        assert "compiling" not in term.text

    assert cli.kernels_compiled(object()) is True  # numba's cache unreadable this way: say nothing
    path = tmp_path / "tiny.tri"  # after a decode, numba's cache holds the kernel
    triadic.encode([triadic.Frame((np.zeros((8, 8), np.uint8),), "gray")] * 2, path, jobs=1)
    list(triadic.decode(path))
    assert cli.kernels_compiled(_decode_plane)
