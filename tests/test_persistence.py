"""Saving and loading an index: identical results, atomic writes, clear errors for broken directories."""

from __future__ import annotations

import json

import pytest

from tokenflow_rag import FaissStore, IntentRetriever, RuleClassifier, build_index, load_index, save_index
from tokenflow_rag.errors import IndexStoreError
from tokenflow_rag.index import MANIFEST

QUERIES = ["refund status", "支付失败怎么办", "tell me about the company", "where is my package and the SMS?"]


@pytest.fixture
def saved(tmp_path, faiss_retriever, embedder):
    path = tmp_path / "index"
    save_index(faiss_retriever, path)
    return path


@pytest.mark.parametrize("partition_by_intent", [False, True])
def test_round_trip_gives_identical_results(saved, faiss_retriever, embedder, partition_by_intent):
    loaded = load_index(saved, embedder=embedder, classifier=RuleClassifier(), partition_by_intent=partition_by_intent)
    assert loaded.store.partition_by_intent is partition_by_intent
    for q in QUERIES:
        a, b = faiss_retriever.retrieve(q), loaded.retrieve(q)
        if partition_by_intent:  # chunks of exactly equal score (here 0.0) may come in another order
            assert sorted(a.ids) == sorted(b.ids)
        else:
            assert a.ids == b.ids
        assert [round(sc.score, 5) for sc in a.chunks] == [round(sc.score, 5) for sc in b.chunks]
        assert a.accounting == b.accounting
    assert [c.intents for c in loaded.store] == [c.intents for c in faiss_retriever.store]


def test_saved_files_are_not_pickles(saved):
    names = sorted(p.name for p in saved.iterdir())
    assert names == ["chunks.jsonl", "taxonomy.yaml", "tokenflow_index.json", "vectors.faiss"]
    manifest = json.loads((saved / MANIFEST).read_text())
    assert manifest["chunks"] == 11 and manifest["embedder"] == "hashing-256"


def test_missing_directory(tmp_path):
    with pytest.raises(IndexStoreError, match="does not exist"):
        load_index(tmp_path / "nope")


@pytest.mark.parametrize("victim", ["tokenflow_index.json", "chunks.jsonl", "vectors.faiss"])
def test_half_written_directory(saved, embedder, victim):
    (saved / victim).unlink()
    with pytest.raises(IndexStoreError, match="missing|not a complete"):
        load_index(saved, embedder=embedder)


def test_corrupt_files(saved, embedder):
    (saved / "vectors.faiss").write_bytes(b"garbage")
    with pytest.raises(IndexStoreError, match="corrupt or truncated"):
        load_index(saved, embedder=embedder)


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("[]", "not a tokenflow index"),
        ('{"format": "tokenflow-index", "format_version": 1}', "field 'chunks' is missing"),
        ('{"format": "tokenflow-index", "format_version": 1, "chunks": 11, "embedder": 3, "dim": 256}', "'embedder'"),
    ],
)
def test_a_hand_edited_manifest_is_a_clear_error(saved, embedder, manifest, message):
    (saved / MANIFEST).write_text(manifest, encoding="utf-8")
    with pytest.raises(IndexStoreError, match=message):
        load_index(saved, embedder=embedder)


def test_truncated_chunks_file(saved, embedder):
    lines = (saved / "chunks.jsonl").read_text(encoding="utf-8").splitlines()
    (saved / "chunks.jsonl").write_text("\n".join(lines[:-2]) + "\n", encoding="utf-8")
    with pytest.raises(IndexStoreError, match="inconsistent"):
        load_index(saved, embedder=embedder)


def test_failed_save_keeps_the_old_index(saved, faiss_retriever, embedder, monkeypatch):
    before = sorted((p.name, p.stat().st_size) for p in saved.iterdir())

    def boom(self, directory):
        (directory / "vectors.faiss").write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(FaissStore, "write_into", boom)
    with pytest.raises(OSError, match="disk full"):
        save_index(faiss_retriever, saved)
    assert sorted((p.name, p.stat().st_size) for p in saved.iterdir()) == before
    assert not [p for p in saved.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left behind
    monkeypatch.undo()
    assert (
        load_index(saved, embedder=embedder).retrieve("refund status").ids
        == faiss_retriever.retrieve("refund status").ids
    )


def test_wrong_embedder_is_refused(saved):
    from tokenflow_rag import HashingEmbedder

    with pytest.raises(IndexStoreError, match="built with"):
        load_index(saved, embedder=HashingEmbedder(dim=64))


def test_empty_store_cannot_be_saved(tmp_path, embedder):
    with pytest.raises(IndexStoreError, match="empty"):
        save_index(IntentRetriever(FaissStore(), embedder), tmp_path / "x")


def test_saved_files_get_ordinary_permissions(tmp_path):
    import os
    import stat

    from tokenflow_rag._io import atomic_directory, atomic_write_text

    # Temporaries are private; what replaces the target must be as readable as an ordinary file.
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "one.json", "{}")
        with atomic_directory(tmp_path / "folder") as tmp:
            atomic_write_text(tmp / "inside.json", "{}")
            os.close(os.open(tmp / "private.bin", os.O_CREAT | os.O_WRONLY, 0o600))  # as safetensors writes
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "one.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "folder" / "inside.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "folder" / "private.bin").stat().st_mode) == 0o644


# -- output paths that saving would wipe are refused before anything is written ------------------
@pytest.mark.parametrize("case", ["user_files", "a_file", "dot", "under_a_file"])
def test_save_index_refuses_a_path_it_would_wipe(tmp_path, monkeypatch, case):
    from tokenflow_rag import Chunk, HashingEmbedder, build_index, save_index
    from tokenflow_rag.errors import ConfigError

    retriever = build_index([Chunk("r1", "Refunds take 5 days")], embedder=HashingEmbedder(dim=16))
    notes = tmp_path / "project" / "notes.txt"
    notes.parent.mkdir()
    notes.write_text("mine", encoding="utf-8")
    target = {
        "user_files": notes.parent,
        "a_file": notes,
        "dot": tmp_path / "project" / ".",
        "under_a_file": notes / "index",
    }[case]
    monkeypatch.chdir(tmp_path / "project")
    with pytest.raises(ConfigError):
        save_index(retriever, target)
    assert notes.read_text(encoding="utf-8") == "mine"
    assert sorted(p.name for p in notes.parent.iterdir()) == ["notes.txt"]  # no temporary left behind
    with pytest.raises(ConfigError, match="names no new directory"):
        save_index(retriever, ".")
    save_index(retriever, tmp_path / "index")
    save_index(retriever, tmp_path / "index")  # a previous index may be replaced


def test_a_failed_swap_keeps_the_old_directory_and_leaves_no_temporary(tmp_path, monkeypatch):
    import os

    from tokenflow_rag._io import atomic_directory

    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old", encoding="utf-8")
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(src).endswith(".tmp"):
            raise OSError("device busy")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="device busy"), atomic_directory(target) as tmp:
        (tmp / "new.txt").write_text("new", encoding="utf-8")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert (target / "old.txt").read_text(encoding="utf-8") == "old"


def test_the_policy_and_token_budget_are_saved_with_the_index(tmp_path, small_chunks, embedder):
    from tokenflow_rag import KPolicy

    policy = KPolicy(base_k=4, max_k=6, min_confidence=0.9)
    retriever = build_index(small_chunks, embedder=embedder, policy=policy, token_budget=60)
    save_index(retriever, tmp_path / "idx")
    loaded = load_index(tmp_path / "idx", embedder=embedder, classifier=retriever.classifier)
    assert loaded.policy == policy and loaded.token_budget == 60
    for query in ("refund status", "短信通知怎么关闭", "tell me about the company"):
        assert loaded.retrieve(query).ids == retriever.retrieve(query).ids


def test_a_faiss_store_is_freed_once_dropped(small_chunks, embedder):
    import gc
    import weakref

    store = FaissStore()
    store.add(small_chunks, embedder.embed_documents([c.text for c in small_chunks]))
    store.search(embedder.embed_query("refund"), 2, intents={"refund"})  # caches an id selector
    ref = weakref.ref(store)
    del store
    gc.collect()
    assert ref() is None
