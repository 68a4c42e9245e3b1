"""ChromaStore against a real embedded, persistent Chroma: pushdown, persistence, the shared tag encoding."""

from __future__ import annotations

import numpy as np
import pytest

from tokenflow_rag import Chunk, HashingEmbedder, IntentRetriever
from tokenflow_rag.errors import ConfigError
from tokenflow_rag.stores import VectorStore

chromadb = pytest.importorskip("chromadb")
from tokenflow_rag.stores.chroma import ChromaStore  # noqa: E402

EMB = HashingEmbedder(dim=64)
# Many untagged neighbours that mention refunds, two tagged chunks: only a filter inside Chroma finds the tagged
# ones with k=2 (a post-filter of the plain top-2 would find none).
UNTAGGED = [Chunk(f"blog-{i}", f"refund refund story number {i}") for i in range(8)]
TAGGED = [
    Chunk("policy", "Refund policy: money back within 5 days", {"intents": ["refund"]}),
    Chunk("cards", "Which payment cards we accept", {"intents": ["payment"]}),
    Chunk("ship", "Shipping and courier tracking", {"intents": ["shipping"]}),
]


def _build(path) -> ChromaStore:
    store = ChromaStore(path, collection="docs")
    chunks = UNTAGGED + TAGGED
    store.add(chunks, EMB.embed_documents([c.text for c in chunks]))
    return store


def test_is_a_vector_store(tmp_path):
    assert isinstance(ChromaStore(tmp_path), VectorStore)


def test_pushdown_returns_only_tagged_hits_without_overfetching(tmp_path, monkeypatch):
    store = _build(tmp_path)
    query = EMB.embed_query("refund refund")
    assert all(h.chunk.id.startswith("blog") for h in store.search(query, 2))

    calls = []
    original = store._collection.query
    monkeypatch.setattr(store._collection, "query", lambda **kw: calls.append(kw) or original(**kw))
    hits = store.search(query, 2, intents={"refund", "payment"})
    assert {h.chunk.id for h in hits} == {"policy", "cards"}
    assert calls[0]["n_results"] == 2  # asked Chroma for k, not k * overfetch
    assert calls[0]["where"] == {"$or": [{"intent__payment": 1}, {"intent__refund": 1}]}


def test_retriever_pushes_down_and_needs_no_top_up(tmp_path):
    result = IntentRetriever(_build(tmp_path), EMB).retrieve("how long does a refund take?", k=1)
    assert result.ids == ["policy"]
    assert result.accounting.filter_mode == "pushdown"
    assert result.accounting.topped_up == 0


def test_persists_across_clients(tmp_path):
    _build(tmp_path)
    reopened = ChromaStore(tmp_path, collection="docs")
    assert len(reopened) == len(UNTAGGED) + len(TAGGED)
    assert [h.chunk.id for h in reopened.search(EMB.embed_query("shipping courier"), 1, intents={"shipping"})] == [
        "ship"
    ]
    with pytest.raises(ConfigError, match="dimension"):
        reopened.add([Chunk("x", "y")], np.ones((1, 8), np.float32))


def test_flags_encoding_is_stored_and_readable_by_other_clients(tmp_path):
    _build(tmp_path)
    raw = chromadb.PersistentClient(path=str(tmp_path)).get_collection("docs")
    md = raw.get(ids=["policy"], include=["metadatas"])["metadatas"][0]
    assert md["intents"] == "refund" and md["intent__refund"] == 1
    # A record written by another client (as LangChain's Chroma would) is read back with its tags.
    raw.add(
        ids=["foreign"],
        embeddings=[EMB.embed_query("refund form")],
        documents=["refund form"],
        metadatas=[{"intents": "refund", "intent__refund": 1, "author": "ops"}],
    )
    store = ChromaStore(tmp_path, collection="docs")
    foreign = {c.id: c for c in store}["foreign"]
    assert foreign.intents == ("refund",) and foreign.metadata["author"] == "ops"


def test_bad_collection_name_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="collection"):
        ChromaStore(tmp_path, collection="x")
