"""The retriever core: restricted search with and without pushdown, top-up, budgets, accounting, bad input."""

from __future__ import annotations

import logging

import pytest

from tokenflow_rag import FaissStore, IntentPrediction, IntentRetriever, KPolicy, RuleClassifier
from tokenflow_rag.errors import ConfigError, InvalidQueryError


@pytest.fixture(params=["faiss", "memory"])
def retriever(request, faiss_retriever, memory_retriever):
    return faiss_retriever if request.param == "faiss" else memory_retriever


def test_results_are_restricted_to_predicted_intents(retriever):
    result = retriever.retrieve("How long does a refund take?")
    acc = result.accounting
    assert acc.intents == ("refund",)
    assert not acc.fallback
    assert acc.k == 3
    tagged = [sc for sc in result.chunks if "refund" in sc.chunk.intents]
    assert {sc.chunk.id for sc in tagged} == {"ref-1", "ref-2"}
    # only two refund chunks exist: the third slot is topped up from the nearest other neighbours
    assert acc.topped_up == 1 and len(result) == 3


def test_pushdown_and_post_filter_agree(faiss_retriever, memory_retriever):
    for query in ["payment failed with my credit card", "短信通知怎么关闭", "where is my package", "退款多久到账"]:
        a, b = faiss_retriever.retrieve(query), memory_retriever.retrieve(query)
        assert a.ids == b.ids
        assert a.accounting.filter_mode == "pushdown"
        assert b.accounting.filter_mode == "post-filter"


def test_parent_query_finds_children(retriever):
    result = retriever.retrieve("payment help", k=6)
    assert set(result.accounting.searched_intents) == {"payment", "refund"}
    assert {"ref-1", "ref-2"} & set(result.ids)


def test_none_falls_back_to_plain_base_k(retriever):
    result = retriever.retrieve("tell me about the company")
    acc = result.accounting
    assert acc.fallback and acc.intents == () and acc.filter_mode == "none"
    assert len(result) == retriever.policy.base_k
    assert acc.tokens == acc.baseline_tokens


def test_explicit_k_wins(retriever):
    assert len(retriever.retrieve("refund status", k=1)) == 1
    assert len(retriever.retrieve("tell me about the company", k=2)) == 2


def test_accounting_counts_real_tokens(retriever):
    result = retriever.retrieve("refund status")
    counter = retriever.token_counter
    assert result.accounting.tokens == sum(counter.count(sc.chunk.text) for sc in result.chunks)
    plain = retriever.store.search(retriever.embedder.embed_query("refund status"), retriever.policy.base_k)
    assert result.accounting.baseline_tokens == sum(counter.count(sc.chunk.text) for sc in plain)
    data = result.to_dict()
    for key in ("intents", "k", "tokens", "baseline_tokens", "chunks", "k_reason", "fallback"):
        assert key in data
    assert set(data["chunks"][0]) == {"id", "text", "score", "intents"}


def test_token_budget_is_a_hard_cap(retriever):
    free = retriever.retrieve("payment failed", k=5)
    budget = free.accounting.tokens // 2
    capped = retriever.retrieve("payment failed", k=5, token_budget=budget)
    assert capped.accounting.tokens <= budget
    assert capped.accounting.dropped_for_budget == len(free) - len(capped) > 0
    assert capped.ids == [i for i in free.ids if i in capped.ids]  # rank order kept
    nothing = retriever.retrieve("payment failed", token_budget=1)
    assert len(nothing) == 0 and nothing.accounting.dropped_for_budget > 0


def test_low_confidence_falls_back(small_chunks, embedder):
    store = FaissStore()
    store.add(small_chunks, embedder.embed_documents([c.text for c in small_chunks]))
    strict = IntentRetriever(store, embedder, RuleClassifier(), policy=KPolicy(min_confidence=0.95))
    acc = strict.retrieve("refund").accounting
    assert acc.fallback and "confidence" in acc.k_reason


class _BrokenClassifier:
    taxonomy = RuleClassifier().taxonomy

    def predict(self, texts):
        raise RuntimeError("model exploded")


def test_classifier_failure_falls_back_with_a_warning(small_chunks, embedder, caplog):
    store = FaissStore()
    store.add(small_chunks, embedder.embed_documents([c.text for c in small_chunks]))
    retriever = IntentRetriever(store, embedder, _BrokenClassifier())
    with caplog.at_level(logging.WARNING):
        result = retriever.retrieve("refund")
    assert result.accounting.fallback and len(result) == 5
    assert "model exploded" in caplog.text


def test_retrieve_with_prediction_and_batch(retriever):
    forced = retriever.retrieve_with_prediction("anything", IntentPrediction({"shipping": 1.0}, ("shipping",)))
    assert all("shipping" in sc.chunk.intents for sc in forced.chunks[:2])
    batch = retriever.retrieve_batch(["refund status", "快递到哪了"])
    assert [r.ids for r in batch] == [retriever.retrieve("refund status").ids, retriever.retrieve("快递到哪了").ids]


async def test_async_matches_sync(retriever):
    assert (await retriever.aretrieve("refund status")).ids == retriever.retrieve("refund status").ids


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        ("\x00\x01", "empty"),
        (None, "must be a str"),
        (42, "must be a str"),
        (b"refund", "got bytes"),
        ("refund \ud83d please", "invalid Unicode at character 7"),  # a cut-off emoji, as JSON can carry
        ("refund \udcff", "invalid Unicode"),  # undecodable bytes from a command line
    ],
)
def test_bad_queries_raise_clear_errors(retriever, query, message):
    with pytest.raises(InvalidQueryError, match=message):
        retriever.retrieve(query)


def test_odd_queries_still_work(retriever, caplog):
    assert len(retriever.retrieve("🙂 refund 🙂")) > 0
    assert len(retriever.retrieve("re\x00fund\x07 please")) > 0
    with caplog.at_level(logging.WARNING):
        huge = retriever.retrieve("refund " * 150_000)  # ~1 MB
    assert len(huge) > 0 and "truncated" in caplog.text


def test_bad_construction(small_chunks, embedder):
    with pytest.raises(ConfigError, match="store must implement"):
        IntentRetriever(object(), embedder)
    with pytest.raises(ConfigError, match="token_budget"):
        IntentRetriever(FaissStore(), embedder, token_budget=0)
    store = FaissStore()
    store.add(small_chunks, embedder.embed_documents([c.text for c in small_chunks]))
    from tokenflow_rag import HashingEmbedder

    with pytest.raises(ConfigError, match="dimension"):
        IntentRetriever(store, HashingEmbedder(dim=64)).retrieve("refund")


@pytest.mark.parametrize("budget", [0, -5, 1.5, "100", True])
def test_a_bad_per_query_token_budget_is_a_clear_error(retriever, budget):
    with pytest.raises(ConfigError, match="token_budget must be a positive integer"):
        retriever.retrieve("refund status", token_budget=budget)


def test_a_match_the_stores_filter_missed_is_merged_in_from_the_plain_search(faiss_retriever):
    class ForgetfulStore(FaissStore):
        """Filters like an approximate index or stale tags can: one matching chunk never passes the filter."""

        def search(self, vector, k, *, intents=None):
            hits = super().search(vector, k + 1, intents=intents)
            return [sc for sc in hits if intents is None or sc.chunk.id != "ref-1"][:k]

    store = ForgetfulStore()
    chunks = list(faiss_retriever.store)
    store.add(chunks, faiss_retriever.embedder.embed_documents([c.text for c in chunks]))
    retriever = IntentRetriever(store, faiss_retriever.embedder, RuleClassifier())
    query = "refunds go back to the original payment method"
    result = retriever.retrieve(query)
    assert {"ref-1", "ref-2"} <= set(result.ids) and result.accounting.filter_mode == "pushdown"
    assert result.ids.index("ref-1") < len(result) - result.accounting.topped_up  # a match, ahead of the filler
    untracked = IntentRetriever(store, faiss_retriever.embedder, RuleClassifier(), track_baseline=False)
    plain_only = untracked.retrieve(query)  # no plain search to merge from: ref-1 arrives only as filler, if at all
    assert "ref-1" not in plain_only.ids[: len(plain_only) - plain_only.accounting.topped_up]


def test_retrieve_batch_embeds_queries_as_queries(small_chunks):
    from tokenflow_rag import HashingEmbedder

    class PrefixingEmbedder(HashingEmbedder):
        """Embeds queries and documents differently, as E5 / BGE-style models do."""

        def embed_query(self, text):
            return super().embed_query("query: " + text)

    embedder = PrefixingEmbedder(dim=256)
    store = FaissStore()
    store.add(small_chunks, embedder.embed_documents([c.text for c in small_chunks]))
    retriever = IntentRetriever(store, embedder, RuleClassifier())
    queries = ["refund status", "where is my package", "tell me about the company"]
    batch = retriever.retrieve_batch(queries)
    for query, result in zip(queries, batch):
        single = retriever.retrieve(query)
        assert result.ids == single.ids and [sc.score for sc in result] == pytest.approx([sc.score for sc in single])


def test_bad_construction_and_batch_arguments_are_clear_errors(small_chunks, faiss_retriever):
    store = faiss_retriever.store
    for overfetch in (1, 2.5, "4"):
        with pytest.raises(ConfigError, match="overfetch must be an integer >= 2"):
            IntentRetriever(store, faiss_retriever.embedder, overfetch=overfetch)
    with pytest.raises(ConfigError, match="CallableTokenCounter"):
        IntentRetriever(store, faiss_retriever.embedder, token_counter=len)
    with pytest.raises(InvalidQueryError, match="list of queries"):
        faiss_retriever.retrieve_batch("refund status")


def test_numpy_integers_are_integers(faiss_retriever):
    import numpy as np

    result = faiss_retriever.retrieve("refund status", k=np.int64(2), token_budget=np.int32(10_000))
    assert len(result) == 2 and result.accounting.token_budget == 10_000
    assert KPolicy(base_k=np.int64(4)).base_k == 4
    with pytest.raises(ConfigError, match="base_k must be a positive integer"):
        KPolicy(base_k=True)
    with pytest.raises(ConfigError, match="min_confidence"):
        KPolicy(min_confidence="0.5")


def test_savings_summary_says_when_more_was_sent_than_the_baseline():
    from tokenflow_rag import Accounting, SavingsTracker

    tracker = SavingsTracker()
    tracker.record(Accounting(("refund",), {}, 0.9, 6, "budgets", False, "pushdown", tokens=130, baseline_tokens=100))
    assert "30 more sent" in tracker.summary() and "saved -" not in tracker.summary()
    tracker.record(Accounting(("refund",), {}, 0.9, 3, "budgets", False, "pushdown", tokens=40, baseline_tokens=100))
    assert "saved 30 (15.0%)" in tracker.summary()


@pytest.mark.parametrize("dim", [0, -1, 2.5])
def test_hashing_embedder_needs_a_positive_dimension(dim):
    from tokenflow_rag import HashingEmbedder

    with pytest.raises(ConfigError, match="dim must be a positive integer"):
        HashingEmbedder(dim=dim)
