"""docs/cli.md is what docs/gen_cli.py makes of the argparse help (regenerate: python docs/gen_cli.py)."""

import importlib.util
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_cli", ROOT / "docs" / "gen_cli.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_doc_is_up_to_date(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    committed = (ROOT / "docs" / "cli.md").read_text()
    made_with = re.search(r"\(Python (\d+\.\d+)\)", committed).group(1)
    rendered = load_generator().render()
    if made_with != f"{sys.version_info.major}.{sys.version_info.minor}":
        # argparse words its help differently across Python versions: compare what it documents,
        # every command and option, instead of the text
        def documented(text):
            return sorted(set(re.findall(r"^usage: triadic[\w ]*|--[a-z][a-z-]*", text, re.M)))
        assert documented(rendered) == documented(committed), \
            "docs/cli.md is out of date: run python docs/gen_cli.py"
        return
    assert rendered == committed, "docs/cli.md is out of date: run python docs/gen_cli.py"


def test_every_command_and_picture_is_documented():
    from triadic import viz

    text = (ROOT / "docs" / "cli.md").read_text()
    for command in ("encode", "decode", "info", "verify", "plot"):
        assert f"## triadic {command}\n" in text
    for kind in viz.KINDS:
        assert f"| `{kind}` |" in text
