"""Every code block in README.md and docs/*.md runs (STYLE.md §11).

Python blocks run in one namespace per file; bash blocks run in one shell per file. Blocks that
install (pip) are the README's two commands, run by CI itself, and are skipped here.
"""

import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(path, language):
    return [body for lang, body in FENCE.findall(path.read_text()) if lang == language]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_python_blocks_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__doc__"}
    for body in blocks(path, "python"):
        exec(compile(body, str(path), "exec"), namespace)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_bash_blocks_run(path, tmp_path):
    script = "\n".join(b for b in blocks(path, "bash") if "pip install" not in b)
    if not script.strip():
        return
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
