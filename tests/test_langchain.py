"""The LangChain adapter, offline: a local hashing embedding, fake chat models, real stores."""

from __future__ import annotations

import asyncio
import logging

import pytest

pytest.importorskip("langchain_core")
from langchain_core.callbacks import BaseCallbackHandler  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import Embeddings  # noqa: E402
from langchain_core.language_models.fake_chat_models import FakeListChatModel  # noqa: E402
from langchain_core.output_parsers import StrOutputParser  # noqa: E402
from langchain_core.prompts import ChatPromptTemplate  # noqa: E402
from langchain_core.runnables import RunnablePassthrough  # noqa: E402
from langchain_core.vectorstores import InMemoryVectorStore  # noqa: E402

from tokenflow_rag import HashingEmbedder, KPolicy, RuleClassifier  # noqa: E402
from tokenflow_rag.integrations.langchain import ACCOUNTING_EVENT, TokenFlowRetriever  # noqa: E402


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
IDS, DOCS = list(TEXTS), list(TEXTS.values())
REFUND_QUERY = "how long does a refund take to reach my card?"
REFUNDS = ["ref-1", "ref-2", "ref-3"]


class HashEmbeddings(Embeddings):
    """tokenflow's offline hashing embedder as LangChain embeddings."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return HashingEmbedder(dim=128).embed_documents(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return HashingEmbedder(dim=128).embed_query(text).tolist()


EMBED = HashEmbeddings()


class CountingClassifier:
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


def _untagged_store(metadata=None) -> InMemoryVectorStore:
    store = InMemoryVectorStore(EMBED)
    store.add_texts(DOCS, metadatas=[dict(metadata or {}) for _ in DOCS], ids=IDS)
    return store


def _ids(docs: list[Document]) -> list[str]:
    return sorted(d.id for d in docs)


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# -- indexing and retrieval ----------------------------------------------------------------------
def test_from_texts_tags_while_indexing_and_pushes_the_filter_down():
    retriever = TokenFlowRetriever.from_texts(DOCS, EMBED, ids=IDS)
    assert all("intents" in record["metadata"] for record in retriever.vectorstore.store.values())
    docs = retriever.invoke(REFUND_QUERY)
    assert _ids(docs) == REFUNDS
    accounting = docs[0].metadata["tokenflow"]
    assert accounting["filter_mode"] == "pushdown" and accounting["k"] == 3 and accounting["topped_up"] == 0
    assert accounting["tokens"] < accounting["baseline_tokens"]
    assert all("refund" in d.metadata["intents"] for d in docs)


def test_from_documents_keeps_ids_and_user_tags():
    docs = [
        Document(page_content=t, id=i, metadata={"intents": ["payment"]} if i == "misc-1" else {})
        for i, t in TEXTS.items()
    ]
    retriever = TokenFlowRetriever.from_documents(docs, EMBED)
    assert retriever.vectorstore.get_by_ids(["misc-1"])[0].metadata["intents"] == ["payment"]  # the user's tag wins
    assert "misc-1" in _ids(retriever.invoke("which payment methods?"))


def test_untagged_store_is_tagged_on_the_fly_and_cached(caplog):
    classifier = CountingClassifier()
    retriever = TokenFlowRetriever(vectorstore=_untagged_store(), classifier=classifier)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        docs = retriever.invoke(REFUND_QUERY)
    assert _ids(docs) == REFUNDS
    assert docs[0].metadata["tokenflow"]["filter_mode"] == "post-filter"
    assert len(_warnings(caplog)) == 1 and "no intent tags" in _warnings(caplog)[0]
    before = len(classifier.texts)
    retriever.invoke(REFUND_QUERY)
    assert len(classifier.texts) == before + 1  # only the query: documents' tags are cached by id
    assert "intents" not in retriever.vectorstore.get_by_ids(["ref-1"])[0].metadata  # the store is untouched


def test_explicit_k_in_constructor_and_invoke_wins():
    retriever = TokenFlowRetriever.from_texts(DOCS, EMBED, ids=IDS, k=2)
    assert len(retriever.invoke(REFUND_QUERY)) == 2
    docs = retriever.invoke(REFUND_QUERY, k=1)
    assert len(docs) == 1 and docs[0].metadata["tokenflow"]["k_reason"] == "explicit k from the caller"
    no_intent = TokenFlowRetriever.from_texts(DOCS, EMBED, policy=KPolicy(base_k=4))
    assert len(no_intent.invoke("hello there")) == 4


def test_ainvoke_and_batch():
    retriever = TokenFlowRetriever.from_texts(DOCS, EMBED, ids=IDS)
    assert _ids(asyncio.run(retriever.ainvoke(REFUND_QUERY))) == REFUNDS
    refunds, passwords = retriever.batch([REFUND_QUERY, "I forgot my password"])
    assert _ids(refunds) == REFUNDS and "auth-1" in _ids(passwords)
    assert retriever.savings.queries == 3


def test_lcel_chain_with_a_fake_chat_model():
    retriever = TokenFlowRetriever.from_texts(DOCS, EMBED, ids=IDS)
    prompts = []

    class Spy(BaseCallbackHandler):
        def on_chat_model_start(self, serialized, messages, **kwargs):
            prompts.append(messages[0][0].content)

    def format_docs(docs: list[Document]) -> str:
        return "\n".join(d.page_content for d in docs)

    prompt = ChatPromptTemplate.from_template("Answer from the context.\n{context}\nQuestion: {question}")
    llm = FakeListChatModel(responses=["About 5 business days."])
    chain = {"context": retriever | format_docs, "question": RunnablePassthrough()} | prompt | llm | StrOutputParser()
    assert chain.invoke(REFUND_QUERY, config={"callbacks": [Spy()]}) == "About 5 business days."
    assert "original card" in prompts[0] and "cafeteria" not in prompts[0]
    assert "tokenflow" not in prompts[0] and "intents" not in prompts[0]


def test_accounting_reaches_callbacks_and_the_savings_tracker():
    events = []

    class Collect(BaseCallbackHandler):
        def on_custom_event(self, name, data, *, run_id, **kwargs):
            events.append((name, data, run_id))

    retriever = TokenFlowRetriever.from_texts(DOCS, EMBED, ids=IDS)
    retriever.invoke(REFUND_QUERY, config={"callbacks": [Collect()]})
    asyncio.run(retriever.ainvoke("where is my parcel?", config={"callbacks": [Collect()]}))
    assert [(name, data["intents"]) for name, data, _ in events] == [
        (ACCOUNTING_EVENT, ["refund"]),
        (ACCOUNTING_EVENT, ["shipping"]),
    ]
    assert {"k", "tokens", "baseline_tokens", "fallback", "scores"} <= set(events[0][1])
    assert retriever.savings.queries == 2 and "2 queries" in retriever.savings.summary()


# -- real stores through LangChain ---------------------------------------------------------------
def test_chroma_pushdown_through_the_filter_argument(tmp_path, monkeypatch):
    langchain_chroma = pytest.importorskip("langchain_chroma")
    retriever = TokenFlowRetriever.from_texts(
        DOCS,
        EMBED,
        ids=IDS,
        vectorstore_cls=langchain_chroma.Chroma,
        store_kwargs={"persist_directory": str(tmp_path), "collection_name": "lc_docs"},
    )
    calls = []
    original = langchain_chroma.Chroma.similarity_search_with_score
    monkeypatch.setattr(
        langchain_chroma.Chroma,
        "similarity_search_with_score",
        lambda self, q, k=4, **kw: calls.append((k, kw.get("filter"))) or original(self, q, k=k, **kw),
    )
    docs = retriever.invoke(REFUND_QUERY)
    assert _ids(docs) == REFUNDS and docs[0].metadata["tokenflow"]["filter_mode"] == "pushdown"
    assert (3, {"intent__refund": 1}) in calls  # k itself, with the flag filter


def test_chroma_store_written_by_langchain_is_read_by_chroma_store(tmp_path):
    langchain_chroma = pytest.importorskip("langchain_chroma")
    from tokenflow_rag.stores.chroma import ChromaStore

    TokenFlowRetriever.from_texts(
        DOCS,
        EMBED,
        ids=IDS,
        vectorstore_cls=langchain_chroma.Chroma,
        store_kwargs={"persist_directory": str(tmp_path), "collection_name": "shared"},
    )
    store = ChromaStore(tmp_path, collection="shared")
    vector = HashingEmbedder(dim=128).embed_query(REFUND_QUERY)
    assert sorted(h.chunk.id for h in store.search(vector, 3, intents={"refund"})) == REFUNDS


@pytest.mark.filterwarnings("ignore:.*ORM-style PyMilvus API:FutureWarning")
def test_milvus_lite_pushdown_through_expr(tmp_path):
    pytest.importorskip("milvus_lite")
    langchain_milvus = pytest.importorskip("langchain_milvus")
    try:
        retriever = TokenFlowRetriever.from_texts(
            DOCS,
            EMBED,
            ids=IDS,
            vectorstore_cls=langchain_milvus.Milvus,
            store_kwargs={"connection_args": {"uri": str(tmp_path / "lc.db")}, "collection_name": "lc_docs"},
        )
    except Exception as exc:
        if type(exc).__name__ == "ConnectionNotExistException":
            pytest.skip("langchain-milvus 0.3.3 cannot connect with pymilvus 2.6 (langchain-ai/langchain-milvus#130)")
        raise
    docs = retriever.invoke(REFUND_QUERY)
    assert _ids(docs) == REFUNDS and docs[0].metadata["tokenflow"]["filter_mode"] == "pushdown"


# -- bad input: one warning, the plain top-k, never empty -----------------------------------------
def test_classifier_that_raises_gives_plain_top_k(caplog):
    store = TokenFlowRetriever.from_texts(DOCS, EMBED, ids=IDS).vectorstore
    retriever = TokenFlowRetriever(vectorstore=store, classifier=BrokenClassifier())
    with caplog.at_level(logging.WARNING):
        docs = retriever.invoke(REFUND_QUERY)
    assert len(docs) == 5 and docs[0].metadata["tokenflow"]["fallback"] is True
    assert len(_warnings(caplog)) == 1 and "model server down" in _warnings(caplog)[0]


def test_store_that_rejects_the_filter_is_filtered_after_the_search(caplog):
    class PickyStore(InMemoryVectorStore):
        def similarity_search_with_score(self, query, k=4, **kwargs):
            if kwargs.get("filter") is not None:
                raise ValueError("filters are not supported")
            return super().similarity_search_with_score(query, k=k, **kwargs)

    retriever = TokenFlowRetriever.from_texts(DOCS, EMBED, ids=IDS, vectorstore_cls=PickyStore)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        first = retriever.invoke(REFUND_QUERY)
        second = retriever.invoke(REFUND_QUERY)
    assert len(_warnings(caplog)) == 1 and "rejected the intent filter" in _warnings(caplog)[0]
    for docs in (first, second):  # the query that met the rejection too: no filler instead of matches
        assert _ids(docs) == REFUNDS and docs[0].metadata["tokenflow"]["filter_mode"] == "post-filter"


def test_tags_under_another_key_without_on_the_fly_tagging_gives_plain_top_k(caplog):
    retriever = TokenFlowRetriever(vectorstore=_untagged_store({"intent": "refund"}), tag_missing=False)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        docs = retriever.invoke(REFUND_QUERY)
        retriever.invoke("where is my parcel?")
    assert len(docs) == 3 and docs[0].metadata["tokenflow"]["topped_up"] == 3
    assert len(_warnings(caplog)) == 1 and "tag_missing=False" in _warnings(caplog)[0]


def test_empty_store_returns_nothing_without_error():
    assert TokenFlowRetriever(vectorstore=InMemoryVectorStore(EMBED)).invoke(REFUND_QUERY) == []


def test_bad_k_is_rejected_at_construction():
    with pytest.raises(ValueError):
        TokenFlowRetriever(vectorstore=InMemoryVectorStore(EMBED), k=0)


def test_bad_input_that_is_the_callers_mistake_still_raises():
    retriever = TokenFlowRetriever.from_texts(DOCS, EMBED, ids=IDS)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        retriever.invoke(REFUND_QUERY, k=0)
    with pytest.raises(ValueError, match="empty"):
        retriever.invoke("   ")


# -- the user's own search settings are kept -----------------------------------------------------
def _regional_retriever(**kwargs) -> TokenFlowRetriever:
    """Refund docs in two regions; misc docs in 'eu'."""
    regions = {"ref-1": "us", "ref-2": "eu", "ref-3": "eu"}
    metadatas = [{"region": regions.get(i, "eu")} for i in IDS]
    return TokenFlowRetriever.from_texts(DOCS, EMBED, metadatas, ids=IDS, **kwargs)


def _eu_only(doc) -> bool:
    return doc.metadata.get("region") == "eu"


def test_a_filter_in_search_kwargs_is_combined_with_the_intent_filter():
    docs = _regional_retriever(search_kwargs={"filter": _eu_only}).invoke(REFUND_QUERY)
    assert {"ref-2", "ref-3"} <= set(_ids(docs)) and all(d.metadata["region"] == "eu" for d in docs)
    assert docs[0].metadata["tokenflow"]["filter_mode"] == "pushdown"


def test_a_filter_given_to_invoke_applies_to_that_query():
    retriever = _regional_retriever()
    docs = retriever.invoke(REFUND_QUERY, filter=_eu_only)
    assert all(d.metadata["region"] == "eu" for d in docs) and {"ref-2", "ref-3"} <= set(_ids(docs))
    assert "ref-1" in _ids(retriever.invoke(REFUND_QUERY))  # the next query has no filter
    assert retriever.invoke(REFUND_QUERY, verbose=True)  # LangChain's own keyword is not a search argument


def test_a_filter_on_a_store_that_cannot_take_the_intent_filter_still_applies():
    class PlainStore(InMemoryVectorStore):  # not a class tokenflow pushes its filter into
        pass

    store = PlainStore(EMBED)
    store.add_texts(DOCS, metadatas=[{"region": "us" if i == "ref-1" else "eu"} for i in IDS], ids=IDS)
    retriever = TokenFlowRetriever(vectorstore=store, search_kwargs={"filter": _eu_only})
    docs = retriever.invoke(REFUND_QUERY)
    assert docs[0].metadata["tokenflow"]["filter_mode"] == "post-filter"
    assert all(d.metadata["region"] == "eu" for d in docs) and {"ref-2", "ref-3"} <= set(_ids(docs))


def test_chroma_combines_the_users_where_filter_with_the_intent_filter(tmp_path):
    langchain_chroma = pytest.importorskip("langchain_chroma")
    retriever = _regional_retriever(
        vectorstore_cls=langchain_chroma.Chroma,
        store_kwargs={"persist_directory": str(tmp_path), "collection_name": "regions"},
        search_kwargs={"filter": {"region": "eu"}},
    )
    docs = retriever.invoke(REFUND_QUERY)
    assert all(d.metadata["region"] == "eu" for d in docs) and {"ref-2", "ref-3"} <= set(_ids(docs))
    assert docs[0].metadata["tokenflow"]["filter_mode"] == "pushdown"


def test_unknown_settings_and_k_in_search_kwargs_are_errors_not_ignored():
    store = InMemoryVectorStore(EMBED)
    with pytest.raises(ValueError, match="filter"):  # pydantic: extra fields are forbidden
        TokenFlowRetriever(vectorstore=store, filter=_eu_only)
    with pytest.raises(ValueError, match="k is sized per query"):
        TokenFlowRetriever(vectorstore=store, search_kwargs={"k": 2})


def test_settings_changed_after_construction_take_effect_on_the_copy_only():
    retriever = TokenFlowRetriever.from_texts(DOCS, EMBED, ids=IDS)
    budgeted = retriever.model_copy(update={"token_budget": 20})
    narrow = retriever.model_copy(update={"policy": KPolicy(base_k=1, max_k=1)})
    assert sum(d.metadata["tokenflow"]["tokens"] for d in budgeted.invoke(REFUND_QUERY)[:1]) <= 20
    assert len(budgeted.invoke(REFUND_QUERY)) < 3 and len(narrow.invoke(REFUND_QUERY)) == 1
    assert _ids(retriever.invoke(REFUND_QUERY)) == REFUNDS  # the original is unchanged
    other = TokenFlowRetriever.from_texts(["Reset your password from the login page."], EMBED, ids=["pw"])
    retriever.vectorstore = other.vectorstore
    assert _ids(retriever.invoke("I forgot my password")) == ["pw"]


# -- documents added later, stores that give less ------------------------------------------------
def test_documents_added_to_the_store_after_tagging_are_still_found(caplog):
    retriever = TokenFlowRetriever.from_texts(DOCS, EMBED, ids=IDS)
    assert retriever.invoke(REFUND_QUERY)[0].metadata["tokenflow"]["filter_mode"] == "pushdown"
    new = "how long does a refund take to reach my card? Refunds take 5 business days."
    retriever.vectorstore.add_texts([new], ids=["new"])  # behind the retriever's back: no tags
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        first, second = retriever.invoke(REFUND_QUERY), retriever.invoke(REFUND_QUERY)
    assert "new" in _ids(first) and "new" in _ids(second)
    assert second[0].metadata["tokenflow"]["filter_mode"] == "post-filter"
    assert any("no intent tags" in w for w in _warnings(caplog))


def test_add_documents_tags_them_so_the_filter_stays_in_the_store():
    retriever = TokenFlowRetriever.from_texts(DOCS, EMBED, ids=IDS)
    retriever.add_documents([Document("Refunds of gift cards take 10 days.", id="gift")])
    assert "refund" in retriever.vectorstore.get_by_ids(["gift"])[0].metadata["intents"]
    docs = retriever.invoke("refund of my gift card")
    assert "gift" in _ids(docs) and docs[0].metadata["tokenflow"]["filter_mode"] == "pushdown"


def test_documents_without_ids_and_the_same_text_stay_apart():
    class NoIdStore(InMemoryVectorStore):
        def similarity_search_with_score(self, query, k=4, **kwargs):
            pairs = super().similarity_search_with_score(query, k=k, **kwargs)
            return [(Document(d.page_content, metadata=d.metadata), s) for d, s in pairs]

    store = NoIdStore(EMBED)
    text = "Refunds go back to the original card within 5 business days."
    store.add_texts([text, text], metadatas=[{"source": "a.pdf"}, {"source": "b.pdf"}])
    docs = TokenFlowRetriever(vectorstore=store).invoke(REFUND_QUERY)
    assert sorted(d.metadata["source"] for d in docs) == ["a.pdf", "b.pdf"]


def test_a_store_without_scored_search_is_ranked_by_its_order(caplog):
    from langchain_core.vectorstores import VectorStore

    class MinimalStore(VectorStore):  # only what LangChain requires of a vector store
        def __init__(self):
            self.inner = _untagged_store()

        def similarity_search(self, query, k=4, **kwargs):
            return self.inner.similarity_search(query, k=k, **kwargs)

        @classmethod
        def from_texts(cls, texts, embedding, metadatas=None, **kwargs):
            raise NotImplementedError

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        docs = TokenFlowRetriever(vectorstore=MinimalStore()).invoke(REFUND_QUERY)
    assert _ids(docs) == REFUNDS
    assert any("similarity_search_with_score" in w for w in _warnings(caplog))


def test_a_failing_store_is_a_clear_error():
    class DownStore(InMemoryVectorStore):
        def similarity_search_with_score(self, query, k=4, **kwargs):
            raise ConnectionError("connection refused")

    from tokenflow_rag.errors import IndexStoreError

    with pytest.raises(IndexStoreError, match="DownStore failed to search .*connection refused"):
        TokenFlowRetriever(vectorstore=DownStore(EMBED)).invoke(REFUND_QUERY)
