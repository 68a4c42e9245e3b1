"""The package surface: lazy imports and the pinned public API."""

from __future__ import annotations

import json
import subprocess
import sys

import tokenflow_rag

HEAVY = ["torch", "faiss", "llama_index", "langchain_core", "langchain", "transformers", "peft", "sklearn"]


def test_import_loads_no_heavy_library():
    code = f"import sys, json, tokenflow_rag; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_core_retrieval_path_loads_no_framework():
    code = (
        "import sys, json, tokenflow_rag as t\n"
        "t.IntentRetriever, t.RuleClassifier, t.KPolicy, t.load_corpus\n"
        "print(json.dumps([m for m in ('torch', 'llama_index', 'langchain_core') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_public_api_is_pinned():
    assert tokenflow_rag.__all__ == [
        "__version__",
        "Accounting",
        "ChromaStore",
        "Chunk",
        "Embedder",
        "FaissStore",
        "HashingEmbedder",
        "InMemoryStore",
        "Intent",
        "IntentClassifier",
        "IntentPrediction",
        "IntentRetriever",
        "KPolicy",
        "MilvusStore",
        "RetrievalResult",
        "RuleClassifier",
        "SavingsTracker",
        "ScoredChunk",
        "Taxonomy",
        "TokenCounter",
        "TokenFlowError",
        "VectorStore",
        "build_index",
        "default_taxonomy",
        "get_embedder",
        "get_token_counter",
        "load_classifier",
        "load_corpus",
        "load_default_classifier",
        "load_index",
        "load_taxonomy",
        "save_index",
        "tag_chunks",
    ]
    for name in tokenflow_rag.__all__:
        assert getattr(tokenflow_rag, name) is not None


def test_version_has_one_source():
    from importlib.metadata import version

    assert version("tokenflow-rag") == tokenflow_rag.__version__


def test_errors_subclass_builtins():
    from tokenflow_rag import errors

    assert issubclass(errors.TaxonomyError, ValueError)
    assert issubclass(errors.InvalidQueryError, ValueError)
    assert issubclass(errors.MissingDependencyError, ImportError)
    assert issubclass(errors.IndexStoreError, OSError)
    for cls in (errors.TaxonomyError, errors.DataFormatError, errors.ModelLoadError, errors.ConfigError):
        assert issubclass(cls, errors.TokenFlowError)
