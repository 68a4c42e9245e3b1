"""The notebooks run top to bottom, offline, and match their sources in notebooks/src/."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

_spec = importlib.util.spec_from_file_location("notebook_build", NOTEBOOKS / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

SOURCES = sorted((NOTEBOOKS / "src").glob("*.py"))


def test_every_source_has_a_committed_notebook():
    assert len(SOURCES) >= 4
    for source in SOURCES:
        assert (NOTEBOOKS / f"{source.stem}.ipynb").is_file(), f"run: python notebooks/build.py {source.stem[:2]}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_is_in_sync_and_runs(source):
    committed = nbformat.read(str(NOTEBOOKS / f"{source.stem}.ipynb"), as_version=4)
    expected = [c.source for c in build.parse_cells(source.read_text(encoding="utf-8"))]
    assert [c.source for c in committed.cells] == expected, (
        f"stale notebook: run python notebooks/build.py {source.stem[:2]}"
    )
    assert any(o.get("data", {}).get("image/png") for c in committed.cells for o in c.get("outputs", [])), (
        "no plot output"
    )
    nbclient.NotebookClient(
        committed, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
