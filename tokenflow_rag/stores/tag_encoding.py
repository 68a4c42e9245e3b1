"""How intent tags are written into a vector store's metadata, so that a match-any filter can run inside it.

Two encodings cover every store tokenflow_rag talks to:

* ``list`` (the core's own form): ``{"intents": ["payment", "refund"]}``. Filtered with FAISS's id
  selector, Milvus's ``ARRAY_CONTAINS_ANY(intents, [...])``, LlamaIndex's ``FilterOperator.ANY`` and a
  predicate in LangChain's ``InMemoryVectorStore``.
* ``flags``, for stores whose metadata must be flat scalars (Chroma as LlamaIndex writes it):
  ``{"intents": "payment,refund", "intent__payment": 1, "intent__refund": 1}``; the string keeps
  the order for people and for decoding, the flags carry the filter
  (``{"$or": [{"intent__payment": 1}, {"intent__refund": 1}]}``). Flags are the integer 1, not True:
  LlamaIndex's ``MetadataFilter`` accepts no booleans.

A record is *tagged* when the ``intents`` key is present, even when empty (a chunk about nothing in the
taxonomy); a record without it was never tagged, and the adapters tag it on the fly.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from tokenflow_rag.tagging import TAGGED_BY_KEY
from tokenflow_rag.types import INTENTS_KEY, split_tags

_T = TypeVar("_T")

FLAG = 1
"""Value of a set flag."""

FLAG_PREFIX = "intent__"
"""Prefix of the per-intent boolean keys of the ``flags`` encoding."""


@dataclass(frozen=True)
class TagEncoding:
    """One way of storing intent tags in a record's metadata.

    >>> FLAGS.encode(["payment"])
    {'intents': 'payment', 'intent__payment': 1}
    >>> FLAGS.decode({"intents": "payment"}), LIST.decode({"title": "untagged"})
    (('payment',), None)
    """

    name: str

    def encode(self, tags: Sequence[str]) -> dict[str, Any]:
        """Metadata entries that record ``tags``."""
        if self.name == "list":
            return {INTENTS_KEY: list(tags)}
        return {INTENTS_KEY: ",".join(tags), **{FLAG_PREFIX + t: FLAG for t in tags}}

    def decode(self, metadata: Mapping[str, Any]) -> tuple[str, ...] | None:
        """The tags in ``metadata`` (either encoding is read), or None when the record was never tagged."""
        value = metadata.get(INTENTS_KEY)
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):  # a list flattened to JSON by a store that only keeps scalars
                try:
                    return tuple(str(t) for t in json.loads(value))
                except ValueError:
                    pass
            return split_tags(value)
        if isinstance(value, (list, tuple)):
            return tuple(str(t) for t in value)
        flags = tuple(k[len(FLAG_PREFIX) :] for k, v in metadata.items() if k.startswith(FLAG_PREFIX) and v == FLAG)
        if flags or TAGGED_BY_KEY in metadata:
            return flags
        return None

    def keys(self, metadata: Mapping[str, Any]) -> list[str]:
        """The metadata keys that hold tags (kept out of the text sent to the LLM and the embedder)."""
        return [k for k in metadata if k in (INTENTS_KEY, TAGGED_BY_KEY) or k.startswith(FLAG_PREFIX)]


LIST = TagEncoding("list")
FLAGS = TagEncoding("flags")

ENCODINGS: dict[str, TagEncoding] = {"list": LIST, "flags": FLAGS}
"""Encodings by name."""

STORE_ENCODINGS: dict[str, TagEncoding] = {
    # Chroma through LlamaIndex accepts only flat scalar metadata, so every Chroma path uses flags:
    # a collection written by one framework is filtered the same way by the other and by ChromaStore.
    "ChromaStore": FLAGS,
    "ChromaVectorStore": FLAGS,
    "Chroma": FLAGS,
}
"""Encoding per store class name; a store not listed uses :data:`LIST`."""


def by_class_name(registry: Mapping[str, _T], store: Any) -> _T | None:
    """The registry entry of the store's class or its nearest base class listed, by name (no framework import)."""
    cls = store if isinstance(store, type) else type(store)
    return next((registry[c.__name__] for c in cls.__mro__ if c.__name__ in registry), None)


def encoding_for(store: Any) -> TagEncoding:
    """The encoding for a store instance or class."""
    return by_class_name(STORE_ENCODINGS, store) or LIST


def chroma_where(intents: Collection[str]) -> dict[str, Any]:
    """Chroma ``where`` clause matching records tagged with any of ``intents`` (flags encoding).

    >>> chroma_where(["payment"])
    {'intent__payment': 1}
    """
    clauses = [{FLAG_PREFIX + t: FLAG} for t in sorted(intents)]
    if not clauses:
        raise ValueError("chroma_where needs at least one intent")
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}


def milvus_expr(intents: Collection[str], field: str = INTENTS_KEY) -> str:
    """Milvus boolean expression matching records whose ``field`` array holds any of ``intents``.

    >>> milvus_expr(["refund", "payment"])
    'ARRAY_CONTAINS_ANY(intents, ["payment", "refund"])'
    """
    return f"ARRAY_CONTAINS_ANY({field}, {json.dumps(sorted(intents), ensure_ascii=False)})"
