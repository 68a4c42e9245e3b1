# %% [markdown]
# # tokenflow_rag as a LangChain runnable
#
# `TokenFlowRetriever` is a LangChain `BaseRetriever`, so it is a `Runnable`: `invoke`, `batch`, `ainvoke`,
# and LCEL composition all work. Here it indexes the bilingual `sample_corpus/` into LangChain's
# `InMemoryVectorStore`, tagging every chunk while indexing so the store filters by intent itself.
# The chat model is a fake that needs no network; swap in yours.

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough

from tokenflow_rag import load_corpus
from tokenflow_rag.integrations.langchain import TokenFlowEmbeddings, TokenFlowRetriever

chunks = load_corpus(Path("..") / "sample_corpus" / "docs")
retriever = TokenFlowRetriever.from_texts(
    [c.text for c in chunks],
    TokenFlowEmbeddings(),  # tokenflow's offline multilingual embedder as LangChain Embeddings
    ids=[c.id for c in chunks],
)
print(f"indexed {len(chunks)} chunks")

# %% [markdown]
# ## In an LCEL chain


# %%
def format_docs(docs):
    return "\n\n".join(doc.page_content for doc in docs)


prompt = ChatPromptTemplate.from_template("Answer from this context only:\n{context}\n\nQuestion: {question}")
llm = FakeListChatModel(responses=["(the model's answer would be here)"] * 100)
chain = {"context": retriever | format_docs, "question": RunnablePassthrough()} | prompt | llm | StrOutputParser()
print(chain.invoke("How do I get my money back for a cancelled order?"))

# %% [markdown]
# ## Batch and async
# `batch` runs queries concurrently; `ainvoke` awaits one. Each document carries the accounting.

# %%
questions = [
    "Which payment methods do you accept?",
    "支持哪些支付方式？",
    "My parcel says delivered but I never got it",
    "快递显示签收了但我没收到",
    "How do I turn on two-factor authentication?",
    "怎么开启两步验证",
    "Do flash sale items count toward free shipping?",
    "what's the weather like today?",
]
results = retriever.batch(questions)


async_docs = await retriever.ainvoke("退款多久到账")  # notebooks allow top-level await
print("async:", [d.id for d in async_docs])

rows = []
for q, docs in zip(questions, results):
    acc = docs[0].metadata["tokenflow"]
    rows.append(
        {
            "query": q,
            "intents": ", ".join(acc["intents"]) or "none (fallback)",
            "k": acc["k"],
            "tokens": acc["tokens"],
            "fixed top-5 tokens": acc["baseline_tokens"],
        }
    )
table = pd.DataFrame(rows)
table

# %%
ax = table[["tokens", "fixed top-5 tokens"]].plot.bar(figsize=(9, 3.5), color=["#e76f51", "#bbbbbb"], rot=0)
ax.set_xticklabels([f"Q{i + 1}" for i in range(len(table))])
ax.set_ylabel("prompt tokens (cl100k_base)")
ax.set_title("Context tokens per query through the LangChain retriever")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## An explicit k always wins, and the session's savings

# %%
docs = retriever.invoke("退款多久到账", k=1)
print(len(docs), docs[0].metadata["tokenflow"]["k_reason"])
print(retriever.savings.summary())
