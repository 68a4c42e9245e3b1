"""tokenflow embedders exposed to LlamaIndex and LangChain give the same vectors as the core."""

from __future__ import annotations

import numpy as np

from tokenflow_rag import HashingEmbedder


def test_llamaindex_embedding_matches_core():
    from tokenflow_rag.integrations.llamaindex import TokenFlowEmbedding

    core = HashingEmbedder(dim=32)
    model = TokenFlowEmbedding(core)
    assert np.allclose(model.get_query_embedding("退款多久"), core.embed_query("退款多久"))
    assert np.allclose(model.get_text_embedding_batch(["a b", "支付"]), core.embed_documents(["a b", "支付"]))
    assert model.model_name == core.name


async def test_langchain_embeddings_match_core():
    from tokenflow_rag.integrations.langchain import TokenFlowEmbeddings

    core = HashingEmbedder(dim=32)
    model = TokenFlowEmbeddings(core)
    assert np.allclose(model.embed_query("refund"), core.embed_query("refund"))
    assert np.allclose(await model.aembed_documents(["a", "支付"]), core.embed_documents(["a", "支付"]))
