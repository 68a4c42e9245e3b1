"""sample_corpus/ is what the issue promises: bilingual, >= 80 chunks over >= 8 intents, >= 60 labelled queries."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tokenflow_rag import default_taxonomy, load_corpus
from tokenflow_rag.demo import load_queries

REPO = Path(__file__).resolve().parents[1]

CJK = re.compile(r"[\u4e00-\u9fff]")


def test_corpus_shape():
    chunks = load_corpus(REPO / "sample_corpus" / "docs")
    assert len(chunks) >= 80
    zh = sum(bool(CJK.search(c.text)) for c in chunks)
    assert 0.3 < zh / len(chunks) < 0.7
    labels = [
        json.loads(line)
        for line in (REPO / "sample_corpus" / "chunk_intents.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    by_id = {row["id"]: row["intents"] for row in labels}
    assert set(by_id) == {c.id for c in chunks}
    intents = {i for tags in by_id.values() for i in tags}
    assert len(intents) >= 8 and intents <= set(default_taxonomy().names)
    assert sum(len(tags) == 2 for tags in by_id.values()) >= 5


def test_queries_are_labelled_and_point_at_real_chunks():
    ids = {c.id for c in load_corpus(REPO / "sample_corpus" / "docs")}
    queries = load_queries(REPO / "sample_corpus" / "queries.jsonl")
    assert len(queries) >= 60
    assert sum(len(q["intents"]) >= 2 for q in queries) >= len(queries) / 3
    assert {q["lang"] for q in queries} == {"en", "zh"}
    for q in queries:
        assert set(q["gold"]) <= ids, q["id"]
        assert set(q["intents"]) <= set(default_taxonomy().names), q["id"]
