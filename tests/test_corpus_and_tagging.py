"""Reading corpora and tagging chunks."""

from __future__ import annotations

import pytest

from tokenflow_rag import Chunk, RuleClassifier, load_corpus, tag_chunks
from tokenflow_rag.errors import DataFormatError, TaxonomyError
from tokenflow_rag.tagging import TAGGED_BY_KEY


def test_markdown_splits_at_level_two_headings(tmp_path):
    (tmp_path / "zh").mkdir()
    (tmp_path / "zh" / "refunds.md").write_text(
        "# 退款\n\n## 退款时效\n原路退回。\n\n## Refund API\nPOST /v1/refunds\n", encoding="utf-8"
    )
    chunks = load_corpus(tmp_path)
    assert [c.id for c in chunks] == ["zh/refunds#退款时效", "zh/refunds#refund-api"]
    assert chunks[0].text == "退款时效\n原路退回。"
    assert chunks[0].metadata["title"] == "退款"


def test_text_and_jsonl(tmp_path):
    (tmp_path / "a.txt").write_text("First paragraph.\n\nSecond paragraph.", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(
        '{"id": "x1", "text": "hello", "metadata": {"intents": ["payment"]}}\n', encoding="utf-8"
    )
    chunks = {c.id: c for c in load_corpus(tmp_path)}
    assert chunks["a#1"].text == "First paragraph.\n\nSecond paragraph."
    assert chunks["x1"].intents == ("payment",)


def test_unreadable_files_are_skipped_with_a_warning(tmp_path):
    (tmp_path / "good.md").write_text("## Ok\nfine", encoding="utf-8")
    (tmp_path / "empty.md").write_text("   \n", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.warns(UserWarning) as record:
        chunks = load_corpus(tmp_path)
    assert [c.id for c in chunks] == ["good#ok"]
    messages = " ".join(str(w.message) for w in record)
    assert "empty file" in messages and "binary file" in messages and "not UTF-8" in messages


def test_nothing_readable_is_an_error(tmp_path):
    (tmp_path / "empty.md").write_text("", encoding="utf-8")
    with pytest.warns(UserWarning), pytest.raises(DataFormatError, match="no chunks found"):
        load_corpus(tmp_path)
    with pytest.raises(DataFormatError, match="does not exist"):
        load_corpus(tmp_path / "missing")


def test_bad_jsonl_names_file_and_line(tmp_path):
    (tmp_path / "c.jsonl").write_text('{"id": "1", "text": "ok"}\n{"id": "2", "text": ""}\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"c\.jsonl, line 2: field 'text'"):
        load_corpus(tmp_path)


def test_duplicate_ids_are_refused(tmp_path):
    (tmp_path / "d.md").write_text("## Same\na\n## Same\nb\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="duplicate chunk id"):
        load_corpus(tmp_path)


def test_user_tags_win_and_others_are_classified():
    chunks = [
        Chunk("a", "Refunds take five days.", {"intents": ["shipping"]}),
        Chunk("b", "Refunds take five days."),
        Chunk("c", "Our office dog is called Biscuit."),
        Chunk("d", "text", {"intents": "payment, refund"}),
    ]
    tagged = {c.id: c for c in tag_chunks(chunks, RuleClassifier(), progress=False)}
    assert tagged["a"].intents == ("shipping",) and tagged["a"].metadata[TAGGED_BY_KEY] == "user"
    assert tagged["b"].intents == ("refund",) and tagged["b"].metadata[TAGGED_BY_KEY] == "RuleClassifier"
    assert tagged["c"].intents == ()
    assert tagged["d"].intents == ("payment", "refund")


def test_unknown_user_tag_is_an_error():
    with pytest.raises(TaxonomyError, match="chunk 'a'.*'weather'"):
        tag_chunks([Chunk("a", "x", {"intents": ["weather"]})], RuleClassifier(), progress=False)


def test_tagging_shows_progress_on_long_corpora(capsys):
    chunks = [Chunk(str(i), "refund policy text") for i in range(200)]
    tag_chunks(chunks, RuleClassifier(), batch_size=50, progress=True)
    assert "tagging chunks" in capsys.readouterr().err
