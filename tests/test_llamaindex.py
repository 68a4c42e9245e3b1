"""The LlamaIndex adapter, end to end and offline: a local hashing embedding, LlamaIndex's MockLLM."""

from __future__ import annotations

import asyncio
import logging

import pytest

pytest.importorskip("llama_index.core")
from llama_index.core import Document, StorageContext, VectorStoreIndex  # noqa: E402
from llama_index.core.base.base_retriever import BaseRetriever  # noqa: E402
from llama_index.core.base.embeddings.base import BaseEmbedding  # noqa: E402
from llama_index.core.instrumentation import get_dispatcher  # noqa: E402
from llama_index.core.instrumentation.event_handlers import BaseEventHandler  # noqa: E402
from llama_index.core.llms import MockLLM  # noqa: E402
from llama_index.core.query_engine import RetrieverQueryEngine  # noqa: E402
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode  # noqa: E402
from llama_index.core.vector_stores import SimpleVectorStore  # noqa: E402

from tokenflow_rag import HashingEmbedder, RuleClassifier  # noqa: E402
from tokenflow_rag.integrations.llamaindex import TokenFlowRetrievalEvent, TokenFlowRetriever, tag_nodes  # noqa: E402


@pytest.fixture(autouse=True)
def _rule_default_classifier(monkeypatch):
    """These tests pin adapter behaviour: the default classifier is the deterministic rules here."""
    import tokenflow_rag.classifiers as classifiers

    monkeypatch.setattr(
        classifiers, "load_default_classifier", lambda taxonomy=None: classifiers.RuleClassifier(taxonomy)
    )


LOGGER = "tokenflow_rag.integrations"
TEXTS = {
    "ref-1": "Refunds go back to the original card within 5 business days.",
    "ref-2": "To request a refund, open the order and press the refund button.",
    "ref-3": "Refund status shows pending until the bank confirms the refund.",
    "pay-1": "We accept credit card, PayPal and Apple Pay payments.",
    "ship-1": "Couriers deliver parcels within 2 days; track the parcel online.",
    "auth-1": "Reset your password from the login page.",
    "misc-1": "The cafeteria opens at noon and serves soup.",
    "misc-2": "Team offsite photos are in the shared drive.",
}
REFUND_QUERY = "how long does a refund take to reach my card?"


class HashEmbedding(BaseEmbedding):
    """tokenflow's offline hashing embedder as a LlamaIndex embedding."""

    embed_dim: int = 128

    def _get_query_embedding(self, query: str) -> list[float]:
        return HashingEmbedder(dim=self.embed_dim).embed_query(query).tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_query_embedding(text)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


EMBED = HashEmbedding(embed_dim=128)


class CountingClassifier:
    """The rule classifier, counting the texts it is asked about."""

    def __init__(self) -> None:
        self.inner, self.texts = RuleClassifier(), []

    @property
    def taxonomy(self):
        return self.inner.taxonomy

    def predict(self, texts):
        self.texts.extend(texts)
        return self.inner.predict(texts)


class BrokenClassifier(CountingClassifier):
    def predict(self, texts):
        raise RuntimeError("model server down")


def _nodes(metadata=None) -> list[TextNode]:
    return [TextNode(id_=i, text=t, metadata=dict(metadata or {})) for i, t in TEXTS.items()]


def _index(nodes=None, vector_store=None) -> VectorStoreIndex:
    context = StorageContext.from_defaults(vector_store=vector_store) if vector_store is not None else None
    return VectorStoreIndex(nodes if nodes is not None else _nodes(), storage_context=context, embed_model=EMBED)


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# -- wrapping an existing index ------------------------------------------------------------------
def test_untagged_index_is_tagged_at_wrap_time_without_rebuilding(caplog):
    index = _index()
    classifier = CountingClassifier()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        retriever = TokenFlowRetriever.from_index(index, classifier=classifier)
    assert len(classifier.texts) == len(TEXTS)  # the whole docstore, once
    assert len(_warnings(caplog)) == 1 and "no intent tags" in _warnings(caplog)[0]

    nodes = retriever.retrieve(REFUND_QUERY)
    assert sorted(n.node.node_id for n in nodes) == ["ref-1", "ref-2", "ref-3"]
    accounting = nodes[0].node.metadata["tokenflow"]
    assert accounting["intents"] == ["refund"] and accounting["k"] == 3 and accounting["topped_up"] == 0
    assert accounting["filter_mode"] == "post-filter"  # the store itself holds no tags
    assert accounting["tokens"] < accounting["baseline_tokens"]
    # The user's index is untouched: no tags were written into it.
    assert all("intents" not in n.metadata for n in index.docstore.docs.values())

    before = len(classifier.texts)
    retriever.retrieve(REFUND_QUERY)
    assert len(classifier.texts) == before + 1  # only the query: node tags are cached by id


def test_tagged_index_pushes_metadata_filters_down(monkeypatch):
    seen = []
    original = SimpleVectorStore.query
    monkeypatch.setattr(SimpleVectorStore, "query", lambda self, q, **kw: seen.append(q) or original(self, q, **kw))
    index = _index(tag_nodes(_nodes(), RuleClassifier()))
    nodes = TokenFlowRetriever.from_index(index).retrieve(REFUND_QUERY)
    assert sorted(n.node.node_id for n in nodes) == ["ref-1", "ref-2", "ref-3"]
    assert nodes[0].node.metadata["tokenflow"]["filter_mode"] == "pushdown"
    filtered = [q for q in seen if q.filters is not None]
    assert filtered[0].similarity_top_k == 3  # k, not k * overfetch
    (flt,) = filtered[0].filters.filters
    assert (flt.key, flt.operator.value, flt.value) == ("intents", "any", ["refund"])


def test_tags_and_accounting_never_reach_the_llm_or_the_embedder():
    for node in TokenFlowRetriever.from_index(_index(tag_nodes(_nodes(), RuleClassifier()))).retrieve(REFUND_QUERY):
        assert "refund" in node.node.metadata["intents"]
        for mode in (MetadataMode.LLM, MetadataMode.EMBED):
            text = node.node.get_content(metadata_mode=mode)
            assert "refund" in text.lower() and "tokenflow" not in text and "intents" not in text


def test_explicit_k_wins_over_intent_sizing():
    retriever = TokenFlowRetriever.from_index(_index(), k=1)
    nodes = retriever.retrieve(REFUND_QUERY)
    assert len(nodes) == 1 and nodes[0].node.metadata["tokenflow"]["k_reason"] == "explicit k from the caller"
    assert len(TokenFlowRetriever.from_index(_index(), base_k=2).retrieve("hello there")) == 2  # policy knobs


def test_async_retrieve_matches_sync():
    retriever = TokenFlowRetriever.from_index(_index())
    sync = [n.node.node_id for n in retriever.retrieve(REFUND_QUERY)]
    assert [n.node.node_id for n in asyncio.run(retriever.aretrieve(REFUND_QUERY))] == sync


def test_wraps_any_retriever_with_over_fetch():
    class KeywordRetriever(BaseRetriever):
        """A non-vector retriever: the nodes sharing most words with the query."""

        def __init__(self, nodes):
            self.nodes, self.similarity_top_k = nodes, 2
            super().__init__()

        def _retrieve(self, query_bundle):
            words = set(query_bundle.query_str.lower().split())
            scored = [NodeWithScore(node=n, score=len(words & set(n.text.lower().split()))) for n in self.nodes]
            return sorted(scored, key=lambda s: -s.score)[: self.similarity_top_k]

    inner = KeywordRetriever(_nodes())
    nodes = TokenFlowRetriever(inner).retrieve("the refund for my card")
    assert sorted(n.node.node_id for n in nodes) == ["ref-1", "ref-2", "ref-3"]
    assert nodes[0].node.metadata["tokenflow"]["filter_mode"] == "post-filter"
    assert inner.similarity_top_k == 2  # the user's retriever is not mutated


# -- in a query engine ---------------------------------------------------------------------------
class _Collect(BaseEventHandler):
    events: list = []

    @classmethod
    def class_name(cls) -> str:
        return "Collect"

    def handle(self, event, **kwargs) -> None:
        if isinstance(event, TokenFlowRetrievalEvent):
            self.events.append(event)


def test_query_engine_end_to_end_with_mock_llm():
    retriever = TokenFlowRetriever.from_index(_index(tag_nodes(_nodes(), RuleClassifier())))
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())
    handler = _Collect(events=[])
    root = get_dispatcher()
    root.add_event_handler(handler)
    try:
        response = engine.query(REFUND_QUERY)
    finally:
        root.event_handlers.remove(handler)
    assert sorted(n.node.node_id for n in response.source_nodes) == ["ref-1", "ref-2", "ref-3"]
    for node in response.source_nodes:
        accounting = node.node.metadata["tokenflow"]
        assert accounting["intents"] == ["refund"] and accounting["k"] == 3 and accounting["tokens"] > 0
    # MockLLM echoes its prompt: the context is there, the tags and the accounting are not.
    assert (
        "original card" in str(response) and "tokenflow" not in str(response) and "RuleClassifier" not in str(response)
    )
    assert [e.accounting["intents"] for e in handler.events] == [["refund"]]
    assert retriever.savings.queries == 1 and retriever.savings.tokens_saved > 0
    assert "saved" in retriever.savings.summary()


# -- real vector stores through LlamaIndex ---------------------------------------------------------
def test_faiss_store_rejects_filters_so_the_core_post_filters(caplog):
    faiss = pytest.importorskip("faiss")
    from llama_index.vector_stores.faiss import FaissVectorStore

    index = _index(tag_nodes(_nodes(), RuleClassifier()), FaissVectorStore(faiss_index=faiss.IndexFlatIP(128)))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        nodes = TokenFlowRetriever.from_index(index).retrieve(REFUND_QUERY)
    assert sorted(n.node.node_id for n in nodes) == ["ref-1", "ref-2", "ref-3"]
    assert nodes[0].node.metadata["tokenflow"]["filter_mode"] == "post-filter"
    assert _warnings(caplog) == []  # known up front: not a failure


def test_chroma_store_pushdown_with_flag_filters(tmp_path, monkeypatch):
    chromadb = pytest.importorskip("chromadb")
    from llama_index.vector_stores.chroma import ChromaVectorStore

    collection = chromadb.PersistentClient(path=str(tmp_path)).get_or_create_collection("li_docs")
    store = ChromaVectorStore(chroma_collection=collection)
    index = _index(tag_nodes(_nodes(), RuleClassifier(), vector_store=store), store)
    wheres = []
    original = ChromaVectorStore._query
    monkeypatch.setattr(
        ChromaVectorStore,
        "_query",
        lambda self, *a, where, **kw: wheres.append(where) or original(self, *a, where=where, **kw),
    )
    nodes = TokenFlowRetriever.from_index(index).retrieve(REFUND_QUERY)
    assert sorted(n.node.node_id for n in nodes) == ["ref-1", "ref-2", "ref-3"]
    assert nodes[0].node.metadata["tokenflow"]["filter_mode"] == "pushdown"
    assert {"intent__refund": {"$eq": 1}} in wheres


def test_untagged_chroma_store_is_detected_on_the_first_query(tmp_path, caplog):
    chromadb = pytest.importorskip("chromadb")
    from llama_index.vector_stores.chroma import ChromaVectorStore

    store = ChromaVectorStore(
        chroma_collection=chromadb.PersistentClient(path=str(tmp_path)).get_or_create_collection("raw")
    )
    retriever = TokenFlowRetriever.from_index(_index(vector_store=store))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        nodes = retriever.retrieve(REFUND_QUERY)
        retriever.retrieve(REFUND_QUERY)
    assert len(_warnings(caplog)) == 1
    assert sorted(n.node.node_id for n in nodes) == ["ref-1", "ref-2", "ref-3"]
    assert nodes[0].node.metadata["tokenflow"]["filter_mode"] == "post-filter"


def test_milvus_lite_store_pushdown(tmp_path):
    pytest.importorskip("milvus_lite")
    from llama_index.vector_stores.milvus import MilvusVectorStore

    store = MilvusVectorStore(uri=str(tmp_path / "li.db"), dim=128, collection_name="li_docs", overwrite=True)
    try:
        index = _index(tag_nodes(_nodes(), RuleClassifier(), vector_store=store), store)
        nodes = TokenFlowRetriever.from_index(index).retrieve(REFUND_QUERY)
        assert sorted(n.node.node_id for n in nodes) == ["ref-1", "ref-2", "ref-3"]
        assert nodes[0].node.metadata["tokenflow"]["filter_mode"] == "pushdown"
    finally:
        store.client.close()


# -- bad input: one warning, the plain top-k, never empty, never an exception in a query engine ------
def test_classifier_that_raises_gives_plain_top_k(caplog):
    index = _index(tag_nodes(_nodes(), RuleClassifier()))
    engine = RetrieverQueryEngine.from_args(
        TokenFlowRetriever.from_index(index, classifier=BrokenClassifier()), llm=MockLLM()
    )
    with caplog.at_level(logging.WARNING):
        response = engine.query(REFUND_QUERY)
    assert len(response.source_nodes) == 5  # base_k
    assert response.source_nodes[0].node.metadata["tokenflow"]["fallback"] is True
    assert len(_warnings(caplog)) == 1 and "model server down" in _warnings(caplog)[0]


def test_store_that_rejects_the_filter_is_filtered_after_the_search(caplog):
    class PickyStore(SimpleVectorStore):
        def query(self, query, **kwargs):
            if query.filters is not None:
                raise NotImplementedError("no metadata filters here")
            return super().query(query, **kwargs)

    index = _index(tag_nodes(_nodes(), RuleClassifier()), PickyStore())
    engine = RetrieverQueryEngine.from_args(TokenFlowRetriever.from_index(index), llm=MockLLM())
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        first = engine.query(REFUND_QUERY)
        second = engine.query(REFUND_QUERY)
    assert len(_warnings(caplog)) == 1 and "rejected the intent filter" in _warnings(caplog)[0]
    for response in (first, second):  # the query that met the rejection too: no filler instead of matches
        assert sorted(n.node.node_id for n in response.source_nodes) == ["ref-1", "ref-2", "ref-3"]
        assert response.source_nodes[0].node.metadata["tokenflow"]["filter_mode"] == "post-filter"


def test_tags_under_another_key_without_on_the_fly_tagging_gives_plain_top_k(caplog):
    index = _index(_nodes({"intent": "refund"}))
    retriever = TokenFlowRetriever.from_index(index, tag_missing=False)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        nodes = retriever.retrieve(REFUND_QUERY)
        retriever.retrieve(REFUND_QUERY)
    assert len(nodes) == 3 and nodes[0].node.metadata["tokenflow"]["topped_up"] == 3
    assert len(_warnings(caplog)) == 1 and "tag_missing=False" in _warnings(caplog)[0]


def test_empty_index_returns_nothing_without_error():
    assert TokenFlowRetriever.from_index(_index([])).retrieve(REFUND_QUERY) == []


def test_rejects_what_it_cannot_wrap():
    with pytest.raises(TypeError, match="BaseRetriever or VectorStoreIndex"):
        TokenFlowRetriever("not a retriever")
    with pytest.raises(TypeError, match="VectorStoreIndex"):
        TokenFlowRetriever.from_index(_index().as_retriever())


def test_documents_from_a_plain_pipeline():
    index = VectorStoreIndex.from_documents([Document(text=t) for t in TEXTS.values()], embed_model=EMBED)
    nodes = TokenFlowRetriever.from_index(index).retrieve(REFUND_QUERY)
    assert len(nodes) == 3 and all("refund" in n.node.metadata["intents"] for n in nodes)


# -- the user's own retriever settings are kept --------------------------------------------------
def _regional_nodes() -> list[TextNode]:
    nodes = tag_nodes(_nodes(), RuleClassifier())
    for node in nodes:
        node.metadata["region"] = "us" if node.node_id == "ref-1" else "eu"
    return nodes


def _eu_only():
    from llama_index.core.vector_stores import MetadataFilter, MetadataFilters

    return MetadataFilters(filters=[MetadataFilter(key="region", value="eu")])


def test_a_wrapped_retrievers_filters_are_combined_with_the_intent_filter():
    index = _index(_regional_nodes())
    for retriever in (
        TokenFlowRetriever(index.as_retriever(filters=_eu_only())),
        TokenFlowRetriever.from_index(index, filters=_eu_only()),
    ):
        nodes = retriever.retrieve(REFUND_QUERY)
        assert {"ref-2", "ref-3"} <= {n.node.node_id for n in nodes}
        assert all(n.node.metadata["region"] == "eu" for n in nodes)
        assert nodes[0].node.metadata["tokenflow"]["filter_mode"] == "pushdown"


def test_a_wrapped_retrievers_filters_hold_on_chroma_with_flag_filters(tmp_path):
    chromadb = pytest.importorskip("chromadb")
    from llama_index.vector_stores.chroma import ChromaVectorStore

    collection = chromadb.PersistentClient(path=str(tmp_path)).get_or_create_collection("regions")
    store = ChromaVectorStore(chroma_collection=collection)
    nodes = _regional_nodes()
    for node in nodes:  # the flag encoding Chroma needs
        node.metadata.pop("intents")
    index = _index(tag_nodes(nodes, RuleClassifier(), vector_store=store), store)
    found = TokenFlowRetriever(index.as_retriever(filters=_eu_only())).retrieve(REFUND_QUERY)
    assert {"ref-2", "ref-3"} <= {n.node.node_id for n in found}
    assert all(n.node.metadata["region"] == "eu" for n in found)


def test_a_wrapped_retrievers_top_k_and_node_ids_are_kept():
    index = _index(_regional_nodes())
    plain = TokenFlowRetriever(index.as_retriever(similarity_top_k=7)).retrieve("hello there")
    assert len(plain) == 7 and plain[0].node.metadata["tokenflow"]["baseline_k"] == 7  # the plain fallback's k
    assert len(TokenFlowRetriever.from_index(index, similarity_top_k=2).retrieve("hello there")) == 2
    from llama_index.core.retrievers import VectorIndexRetriever

    for retriever in (
        TokenFlowRetriever(VectorIndexRetriever(index, node_ids=["ref-1", "misc-1"])),
        TokenFlowRetriever.from_index(index, node_ids=["ref-1", "misc-1"]),
    ):
        assert {n.node.node_id for n in retriever.retrieve(REFUND_QUERY)} <= {"ref-1", "misc-1"}


def test_unknown_options_are_errors_that_list_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['top_k'\].*similarity_top_k"):
        TokenFlowRetriever.from_index(_index(), top_k=3)
    with pytest.raises(ValueError, match="set them on your"):
        TokenFlowRetriever(_index().as_retriever(), filters=_eu_only())


def test_nodes_inserted_after_tagging_are_still_found():
    index = _index(tag_nodes(_nodes(), RuleClassifier()))
    retriever = TokenFlowRetriever.from_index(index)
    assert retriever.retrieve(REFUND_QUERY)[0].node.metadata["tokenflow"]["filter_mode"] == "pushdown"
    index.insert_nodes([TextNode(id_="new", text="how long does a refund take to reach my card? 5 days.")])
    first, second = retriever.retrieve(REFUND_QUERY), retriever.retrieve(REFUND_QUERY)
    assert "new" in {n.node.node_id for n in first} and "new" in {n.node.node_id for n in second}


def test_a_query_bundles_own_embedding_is_searched_with():
    from llama_index.core.schema import QueryBundle

    index = _index(tag_nodes(_nodes(), RuleClassifier()))
    retriever = TokenFlowRetriever.from_index(index, k=1)
    hyde = QueryBundle(REFUND_QUERY, custom_embedding_strs=[TEXTS["ref-3"]])  # a HyDE-style document
    assert [n.node.node_id for n in retriever.retrieve(hyde)] == ["ref-3"]
    given = QueryBundle(REFUND_QUERY, embedding=EMBED.get_text_embedding(TEXTS["ref-2"]))
    assert [n.node.node_id for n in retriever.retrieve(given)] == ["ref-2"]
    assert retriever.retrieve(given)[0].node.metadata["tokenflow"]["intents"] == ["refund"]  # from the question


def test_faiss_l2_scores_are_similarities_a_cutoff_can_use():
    faiss = pytest.importorskip("faiss")
    from llama_index.core.postprocessor import SimilarityPostprocessor
    from llama_index.vector_stores.faiss import FaissVectorStore

    index = _index(tag_nodes(_nodes(), RuleClassifier()), FaissVectorStore(faiss_index=faiss.IndexFlatL2(128)))
    nodes = TokenFlowRetriever.from_index(index).retrieve(REFUND_QUERY)
    scores = [n.score for n in nodes]
    assert all(0 < s <= 1 for s in scores) and scores == sorted(scores, reverse=True)
    assert len(SimilarityPostprocessor(similarity_cutoff=0.0).postprocess_nodes(nodes)) == len(nodes)


def test_a_wrapped_retriever_is_searched_once_when_it_returns_all_it_has():
    class CountingRetriever(BaseRetriever):
        def __init__(self, nodes):
            self.nodes, self.calls = nodes, 0
            super().__init__()

        def _retrieve(self, query_bundle):
            self.calls += 1
            return [NodeWithScore(node=n, score=1.0 / (1 + i)) for i, n in enumerate(self.nodes[:4])]

    inner = CountingRetriever(_nodes())
    TokenFlowRetriever(inner).retrieve(REFUND_QUERY)
    assert inner.calls == 1
