"""MilvusStore against the real Milvus engine (Milvus Lite, in-process): pushdown, persistence, schema."""

from __future__ import annotations

import numpy as np
import pytest

from tokenflow_rag import Chunk, HashingEmbedder, IntentRetriever
from tokenflow_rag.errors import ConfigError
from tokenflow_rag.stores import VectorStore

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")
from tokenflow_rag.stores.milvus import MilvusStore  # noqa: E402

EMB = HashingEmbedder(dim=64)
UNTAGGED = [Chunk(f"blog-{i}", f"refund refund story number {i}") for i in range(8)]
TAGGED = [
    Chunk("policy", "Refund policy: money back within 5 days", {"intents": ["refund"]}),
    Chunk("cards", "Which payment cards we accept", {"intents": ["payment"]}),
    Chunk("ship", "Shipping and courier tracking", {"intents": ["shipping"]}),
]


@pytest.fixture
def store(tmp_path):
    store = MilvusStore(str(tmp_path / "milvus.db"), collection="docs")
    chunks = UNTAGGED + TAGGED
    store.add(chunks, EMB.embed_documents([c.text for c in chunks]))
    yield store
    store.close()


def test_is_a_vector_store(store):
    assert isinstance(store, VectorStore)


def test_pushdown_returns_only_tagged_hits_without_overfetching(store, monkeypatch):
    query = EMB.embed_query("refund refund")
    assert all(h.chunk.id.startswith("blog") for h in store.search(query, 2))

    calls = []
    original = store._client.search
    monkeypatch.setattr(store._client, "search", lambda *a, **kw: calls.append(kw) or original(*a, **kw))
    hits = store.search(query, 2, intents={"refund", "payment"})
    assert {h.chunk.id for h in hits} == {"policy", "cards"}
    assert calls[0]["limit"] == 2  # asked Milvus for k, not k * overfetch
    assert calls[0]["filter"] == 'ARRAY_CONTAINS_ANY(intents, ["payment", "refund"])'


def test_retriever_pushes_down_and_needs_no_top_up(store):
    result = IntentRetriever(store, EMB).retrieve("how long does a refund take?", k=1)
    assert result.ids == ["policy"]
    assert result.accounting.filter_mode == "pushdown"
    assert result.accounting.topped_up == 0


def test_tags_live_in_an_array_field(store):
    fields = {f["name"]: f for f in store._client.describe_collection("docs")["fields"]}
    assert fields["intents"]["type"].name == "ARRAY"
    assert fields["intents"]["element_type"].name == "VARCHAR"


def test_persists_in_the_db_file(store, tmp_path):
    store.close()
    reopened = MilvusStore(str(tmp_path / "milvus.db"), collection="docs")
    try:
        assert len(reopened) == len(UNTAGGED) + len(TAGGED)
        assert {c.id: c for c in reopened}["cards"].intents == ("payment",)
        with pytest.raises(ConfigError, match="dimension"):
            reopened.search(np.ones(8, np.float32), 1)
    finally:
        reopened.close()


def test_limits_are_clear_errors(store):
    with pytest.raises(ConfigError, match="characters"):
        store.add([Chunk("huge", "x" * 70_000)], EMB.embed_documents(["x"]))
    with pytest.raises(ConfigError, match="duplicate"):
        store.add([TAGGED[0]], EMB.embed_documents(["x"]))
