"""Reading corpora and tagging chunks."""

from __future__ import annotations

import json
import re

import pytest

from tokenflow_rag import Chunk, RuleClassifier, load_corpus, tag_chunks
from tokenflow_rag.corpus import INDEX_FORMAT, INDEX_MANIFEST, MAX_CHUNK_CHARS
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


def _words(text: str) -> str:
    return "".join(text.split())


def _assert_txt_chunks(chunks, stem: str, text: str) -> None:
    assert [c.id for c in chunks] == [f"{stem}#{n}" for n in range(1, len(chunks) + 1)]
    assert max(len(c.text) for c in chunks) <= MAX_CHUNK_CHARS
    assert "".join(_words(c.text) for c in chunks) == _words(text)  # nothing lost, nothing repeated


def test_long_txt_without_blank_lines_is_cut_at_line_breaks(tmp_path):
    lines = [f"Line {i}: refunds go back to the original payment method." for i in range(2000)]
    text = "\n".join(lines)
    (tmp_path / "log.txt").write_text(text, encoding="utf-8")
    chunks = load_corpus(tmp_path)
    _assert_txt_chunks(chunks, "log", text)
    assert len(chunks) > 1
    for chunk in chunks:
        assert set(chunk.text.split("\n")) <= set(lines)  # whole lines only


@pytest.mark.parametrize(
    ("sentence", "end"),
    [
        ("Refunds are returned to the original payment method within five days! ", "!"),
        ("退款将在五个工作日内原路退回。", "。"),
    ],
)
def test_long_paragraph_without_line_breaks_is_cut_at_sentence_ends(tmp_path, sentence, end):
    text = "Intro paragraph.\n\n" + sentence * 300 + "\n\nClosing paragraph."
    (tmp_path / "p.txt").write_text(text, encoding="utf-8")
    chunks = load_corpus(tmp_path)
    _assert_txt_chunks(chunks, "p", text)
    assert chunks[0].text.startswith("Intro paragraph.") and chunks[-1].text.endswith("Closing paragraph.")
    assert all(c.text.endswith((end, "paragraph.")) for c in chunks)  # every cut is at a sentence end


def test_long_text_without_sentences_is_cut_at_spaces_then_anywhere(tmp_path):
    words = " ".join(f"word{i}" for i in range(1000))
    (tmp_path / "a.txt").write_text(words, encoding="utf-8")
    (tmp_path / "b.txt").write_text("退" * 4500, encoding="utf-8")
    chunks = load_corpus(tmp_path)
    a = [c for c in chunks if c.id.startswith("a#")]
    _assert_txt_chunks(a, "a", words)
    assert all(re.fullmatch(r"word\d+( word\d+)*", c.text) for c in a)  # no word cut in two
    b = [c for c in chunks if c.id.startswith("b#")]
    _assert_txt_chunks(b, "b", "退" * 4500)
    assert [len(c.text) for c in b] == [MAX_CHUNK_CHARS, MAX_CHUNK_CHARS, 500]


def test_packed_txt_chunks_count_the_blank_lines_between_paragraphs(tmp_path):
    (tmp_path / "t.txt").write_text("\n\n".join(["x" * 666] * 3), encoding="utf-8")  # 1,998 + 4 separators
    chunks = load_corpus(tmp_path)
    assert [len(c.text) for c in chunks] == [666 + 2 + 666, 666]


def test_markdown_sections_stay_whole_whatever_their_length(tmp_path):
    body = "Refunds are returned within five days. " * 100
    (tmp_path / "m.md").write_text(f"# M\n\n## Long\n{body}\n", encoding="utf-8")
    chunks = load_corpus(tmp_path)
    assert [c.id for c in chunks] == ["m#long"] and len(chunks[0].text) > MAX_CHUNK_CHARS


def test_generated_jsonl_ids_use_the_relative_path(tmp_path):
    for folder in ("billing", "shipping"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "faq.jsonl").write_text('{"text": "one"}\n\n{"text": "two"}\n', encoding="utf-8")
    assert [c.id for c in load_corpus(tmp_path)] == [
        "billing/faq#1",
        "billing/faq#3",
        "shipping/faq#1",
        "shipping/faq#3",
    ]
    assert [c.id for c in load_corpus(tmp_path / "billing" / "faq.jsonl")] == ["faq#1", "faq#3"]


def test_duplicate_ids_name_their_files_and_the_fix(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "faq.jsonl").write_text('{"id": "q1", "text": "one"}\n', encoding="utf-8")
    (tmp_path / "b.jsonl").write_text('{"id": "q1", "text": "two"}\n', encoding="utf-8")
    with pytest.raises(DataFormatError) as info:
        load_corpus(tmp_path)
    message = str(info.value)
    assert "'q1' in a/faq.jsonl, b.jsonl" in message and "unique across the corpus" in message

    (tmp_path / "b.jsonl").unlink()
    (tmp_path / "d.md").write_text("## Same\na\n## Same\nb\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"'d#same' in d\.md\b.*headings.*unique within a Markdown file"):
        load_corpus(tmp_path)


def test_hidden_directories_are_skipped(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("## Ok\nfine", encoding="utf-8")
    for hidden in (".git", ".venv/lib", "docs/.cache"):
        (tmp_path / hidden).mkdir(parents=True)
        (tmp_path / hidden / "notes.md").write_text("## Ok\nsecret", encoding="utf-8")
    assert [c.id for c in load_corpus(tmp_path)] == ["docs/page#ok"]
    assert [c.id for c in load_corpus(tmp_path / "docs" / ".cache")] == ["notes#ok"]  # asked for by name


def test_manifest_name_and_marker_match_save_index():
    from tokenflow_rag import index

    assert (INDEX_MANIFEST, INDEX_FORMAT) == (index.MANIFEST, "tokenflow-index")


def test_an_index_saved_inside_the_corpus_is_not_read_back(tmp_path):
    from tokenflow_rag.index import build_index, read_manifest, save_index

    (tmp_path / "refunds.md").write_text("## Window\nRefunds take five days.\n", encoding="utf-8")
    (tmp_path / "faq.jsonl").write_text('{"id": "q1", "text": "How do I pay?"}\n', encoding="utf-8")
    for _ in range(2):  # `tokenflow index corp --out corp/index`, twice
        chunks = load_corpus(tmp_path)
        assert [c.id for c in chunks] == ["q1", "refunds#window"]
        save_index(
            build_index(chunks, embedder="hashing", classifier=RuleClassifier(), progress=False), tmp_path / "index"
        )
    assert read_manifest(tmp_path / "index")["chunks"] == 2

    # A folder that only looks like an index (another tool's manifest) is still corpus.
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / INDEX_MANIFEST).write_text(json.dumps({"format": "something-else"}), encoding="utf-8")
    (tmp_path / "other" / "notes.txt").write_text("kept", encoding="utf-8")
    assert "other/notes#1" in {c.id for c in load_corpus(tmp_path)}


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
