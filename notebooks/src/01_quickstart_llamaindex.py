# %% [markdown]
# # Quickstart: tokenflow_rag in a LlamaIndex query engine
#
# This notebook indexes the bilingual `sample_corpus/` (ShopLane's API and policy docs, Chinese and English),
# swaps the index's retriever for tokenflow's intent-aware `TokenFlowRetriever`, and asks questions in both
# languages. For every query we show the predicted intents, the k that was chosen and why, and the prompt
# tokens sent compared with a fixed top-k retriever.
#
# Everything runs offline: the embedding model is tokenflow's embedded multilingual encoder and the LLM is
# LlamaIndex's `MockLLM` (swap in your own LLM; retrieval is what we measure here).

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from llama_index.core import Settings, VectorStoreIndex
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import TextNode

from tokenflow_rag import load_corpus
from tokenflow_rag.integrations.llamaindex import TokenFlowEmbedding, TokenFlowRetriever

CORPUS = Path("..") / "sample_corpus"
Settings.embed_model = TokenFlowEmbedding()  # offline, reads Chinese and English
Settings.llm = MockLLM(max_tokens=32)

# %% [markdown]
# ## Build an ordinary LlamaIndex index
# One node per `## section` of the Markdown docs. Nothing tokenflow-specific yet: this is the index you already have.

# %%
chunks = load_corpus(CORPUS / "docs")
nodes = [TextNode(id_=c.id, text=c.text, metadata={"source": c.metadata["source"]}) for c in chunks]
index = VectorStoreIndex(nodes)
print(f"{len(nodes)} nodes indexed")

# %% [markdown]
# ## Swap in the intent-aware retriever
# `from_index` wraps the existing index: nodes are tagged with intents once (cached by node id), no rebuild.
# The fixed baseline is the plain top-5 a default `as_retriever(similarity_top_k=5)` would send.

# %%
retriever = TokenFlowRetriever.from_index(index, base_k=5)
engine = RetrieverQueryEngine.from_args(retriever)

questions = [
    "How long does a refund take to reach my card?",
    "退款多久能到账？",
    "I paid but never got the confirmation SMS",
    "支付成功了但是没收到短信通知",
    "Is the blue hoodie in stock, and when will it ship?",
    "忘记密码了怎么重置",
    "Can I stack two coupons on one order?",
    "你们公司在哪里？",
]
rows = []
for q in questions:
    response = engine.query(q)
    acc = response.source_nodes[0].node.metadata["tokenflow"]
    rows.append(
        {
            "query": q,
            "intents": ", ".join(acc["intents"]) or "none (fallback)",
            "k": acc["k"],
            "tokens": acc["tokens"],
            "fixed top-5 tokens": acc["baseline_tokens"],
            "top source": response.source_nodes[0].node.node_id,
        }
    )
table = pd.DataFrame(rows)
table

# %% [markdown]
# ## Tokens per query: tokenflow vs fixed top-5

# %%
ax = table.set_index(pd.Index([f"Q{i + 1}" for i in range(len(table))]))[["tokens", "fixed top-5 tokens"]].plot.bar(
    figsize=(9, 3.5), color=["#2a9d8f", "#bbbbbb"], rot=0
)
ax.set_ylabel("prompt tokens (cl100k_base)")
ax.set_title("Context tokens sent per query")
plt.tight_layout()
plt.show()
print(retriever.savings.summary())

# %% [markdown]
# ## Why that k?
# Every node carries the accounting, including the reason for k and whether the plain fallback was taken.
# The accounting keys are excluded from the text sent to the LLM.

# %%
response = engine.query("我的包裹到哪了？物流一直没更新")
acc = response.source_nodes[0].node.metadata["tokenflow"]
print({key: acc[key] for key in ("intents", "k", "k_reason", "filter_mode", "fallback", "tokens", "baseline_tokens")})
for source in response.source_nodes:
    print(f"{source.score:.3f}", source.node.node_id, source.node.metadata["intents"])
