"""Shared fixtures: a tiny bilingual tagged corpus over the hashing embedder (no model, no network)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


@pytest.fixture
def small_chunks():
    from tokenflow_rag import Chunk

    rows = [
        ("pay-1", "Payment methods: we accept credit cards, Alipay and WeChat Pay.", ["payment"]),
        ("pay-2", "支付失败时请检查银行卡余额，或更换支付方式。", ["payment"]),
        ("ref-1", "Refunds go back to the original payment method within 5 business days.", ["refund"]),
        ("ref-2", "退款会在5个工作日内原路退回。", ["refund"]),
        ("ntf-1", "Notifications: we send an SMS and an email when a payment succeeds.", ["notification", "payment"]),
        ("ntf-2", "短信通知和邮件提醒可以在设置中关闭。", ["notification"]),
        ("shp-1", "Shipping: couriers deliver within 2 days; tracking numbers arrive by email.", ["shipping"]),
        ("shp-2", "快递发货后可以在订单详情查看物流信息。", ["shipping"]),
        ("ord-1", "Cancel an order before it ships from the order history page.", ["order_management"]),
        ("gen-1", "About us: ShopLane is a small online shop founded in 2020.", []),
        ("gen-2", "Rate limits: the API allows 100 requests per minute per key.", []),
    ]
    return [Chunk(i, t, {"intents": tags}) for i, t, tags in rows]


@pytest.fixture
def embedder():
    from tokenflow_rag import HashingEmbedder

    return HashingEmbedder(dim=256)


@pytest.fixture
def faiss_retriever(small_chunks, embedder):
    from tokenflow_rag import FaissStore, IntentRetriever, RuleClassifier

    store = FaissStore()
    store.add(small_chunks, embedder.embed_documents([c.text for c in small_chunks]))
    return IntentRetriever(store, embedder, RuleClassifier())


@pytest.fixture
def memory_retriever(small_chunks, embedder):
    from tokenflow_rag import InMemoryStore, IntentRetriever, RuleClassifier

    store = InMemoryStore()
    store.add(small_chunks, embedder.embed_documents([c.text for c in small_chunks]))
    return IntentRetriever(store, embedder, RuleClassifier())
