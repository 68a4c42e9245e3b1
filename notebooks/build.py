"""Regenerate the notebooks: ``python notebooks/build.py`` (all) or ``python notebooks/build.py 01``.

Each notebook's source is a percent-format script in ``notebooks/src/`` (``# %%`` starts a code cell,
``# %% [markdown]`` a Markdown cell whose lines start with ``# ``), so reviews see plain Python diffs.
The script builds the .ipynb, executes it top to bottom with nbclient, and writes it with its outputs
(plots included) next to this file, through a temporary file so a failed run leaves the old one intact.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
TIMEOUT_S = 600


def parse_cells(text: str) -> list[nbformat.NotebookNode]:
    """Split a percent-format script into notebook cells."""
    cells: list[nbformat.NotebookNode] = []
    kind, lines = None, []  # type: ignore[var-annotated]

    def flush() -> None:
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(body))
        elif kind == "code" and body.strip():
            cells.append(nbformat.v4.new_code_cell(body))

    for line in text.splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind is not None:
            lines.append(line)
    flush()
    return cells


def build(source: Path, *, execute: bool = True) -> Path:
    """Build (and run) one notebook; returns the .ipynb path."""
    nb = nbformat.v4.new_notebook()
    nb.cells = parse_cells(source.read_text(encoding="utf-8"))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    if execute:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        NotebookClient(
            nb, timeout=TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}
        ).execute()
    target = HERE / f"{source.stem}.ipynb"
    tmp = target.with_suffix(".ipynb.tmp")
    nbformat.write(nb, str(tmp))
    tmp.replace(target)
    return target


def main(argv: list[str]) -> int:
    sources = sorted(SOURCES.glob("*.py"))
    if argv:
        sources = [s for s in sources if any(s.stem.startswith(a) for a in argv)]
    for source in sources:
        start = time.perf_counter()
        path = build(source)
        print(f"{path.relative_to(HERE.parent)}: executed in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
