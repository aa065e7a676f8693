"""triadic's benchmark suite: triadic against lossless peers and SVT-AV1, on the same frames.

``triadic bench`` (or ``python benchmarks/run.py``) writes ``results.json`` and ``results.md``;
``python benchmarks/plot.py DIR`` turns ``results.json`` into PNG plots. The JSON schema is
documented in docs/benchmarks.md.

Modules: ``frames`` (clips, decoded once), ``peers`` (PyAV and imagecodecs codecs), ``rates`` (the
rate model of DESIGN.md §1.7), ``triadic_runner`` (triadic through its public API), ``cache``,
``run`` (the command), ``report`` (Markdown) and ``plot`` (matplotlib).
"""

#: Identifies the layout of results.json; bump the number when a field changes meaning.
SCHEMA = "triadic-bench/1"

__all__ = ["SCHEMA"]
