"""Files shipped inside the package, under ``tokenflow_rag/data``: labelled data and the default model."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def package_data(name: str = "") -> Path:
    """Path of ``tokenflow_rag/data/<name>`` (the folder itself when ``name`` is empty)."""
    return Path(str(resources.files("tokenflow_rag").joinpath("data", *filter(None, name.split("/")))))
