"""The notebooks run top to bottom on a few frames of a real clip, and are committed without outputs."""

import json
import pathlib

import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_three_notebooks():
    assert [p.name for p in NOTEBOOKS] == ["01_quickstart.ipynb", "02_anatomy.ipynb", "03_benchmarks.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_are_stripped(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, \
                f"{path.name}: clear outputs before committing (Kernel > Restart & Clear Output)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, monkeypatch, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    # the kernel inherits the environment: three frames keep every notebook to a few seconds
    monkeypatch.setenv("TRIADIC_NB_FRAMES", "3")
    # what the notebook writes to a temporary folder goes to pytest's, which pytest cleans up
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv("TRIADIC_NB_CLIP", raising=False)
    monkeypatch.delenv("TRIADIC_BENCH_RESULTS", raising=False)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert images >= {"01_quickstart.ipynb": 1, "02_anatomy.ipynb": 8, "03_benchmarks.ipynb": 1}[path.name]
