"""LangChain's standard retriever suite (langchain-tests) run against TokenFlowRetriever."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_tests")
from langchain_core.embeddings import DeterministicFakeEmbedding  # noqa: E402
from langchain_core.vectorstores import InMemoryVectorStore  # noqa: E402
from langchain_tests.integration_tests import RetrieversIntegrationTests  # noqa: E402

from tokenflow_rag.integrations.langchain import TokenFlowRetriever  # noqa: E402


@pytest.fixture(autouse=True)
def _rule_default_classifier(monkeypatch):
    """These tests pin adapter behaviour: the default classifier is the deterministic rules here."""
    import tokenflow_rag.classifiers as classifiers

    monkeypatch.setattr(
        classifiers, "load_default_classifier", lambda taxonomy=None: classifiers.RuleClassifier(taxonomy)
    )


# The suite's one async test carries no marker of its own: pytest-asyncio (strict mode) runs it under this
# module mark, which its sync tests merely tolerate.
pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings(
        "ignore:The test <Function .* is marked with '@pytest.mark.asyncio':pytest.PytestWarning"
    ),
]

TEXTS = [
    "Refunds go back to the original card within 5 business days.",
    "To request a refund, open the order and press the refund button.",
    "We accept credit card, PayPal and Apple Pay payments.",
    "Couriers deliver parcels within 2 days; track the parcel online.",
    "Reset your password from the login page.",
    "The cafeteria opens at noon and serves soup.",
]


def _store() -> InMemoryVectorStore:
    return TokenFlowRetriever.from_texts(TEXTS, DeterministicFakeEmbedding(size=32)).vectorstore


class TestTokenFlowRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[TokenFlowRetriever]:
        return TokenFlowRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"vectorstore": _store()}

    @property
    def retriever_query_example(self) -> str:
        # A refund query: intent sizing alone would return the refund chunks (2) topped up to k=3,
        # so the explicit k of the suite (1 and 3) must win for the counts to match.
        return "how long does a refund take?"
