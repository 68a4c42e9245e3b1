"""Drop-in adapters for RAG frameworks, each a thin layer over :class:`tokenflow_rag.IntentRetriever`.

Import the one you use; neither is imported by ``tokenflow_rag`` itself:

* ``from tokenflow_rag.integrations.llamaindex import TokenFlowRetriever`` (LlamaIndex ``BaseRetriever``)
* ``from tokenflow_rag.integrations.langchain import TokenFlowRetriever`` (LangChain ``BaseRetriever``)
"""
