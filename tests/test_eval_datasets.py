"""Benchmark loaders: every format on its fixture, every malformed file named in its error."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from tokenflow_rag.errors import ConfigError, DataFormatError
from tokenflow_rag.evaluation.datasets import (
    LABELED_FORMATS,
    MIX_JOINERS,
    LabeledText,
    load_labeled,
    mix_from_single,
    register_labeled_format,
)
from tokenflow_rag.evaluation.retrieval_datasets import (
    RETRIEVAL_FORMATS,
    RetrievalDataset,
    load_crosswoz_retrieval,
    load_dstc9,
    load_dstc11,
    load_retrieval,
)

FIXTURES = Path(__file__).parent / "fixtures" / "eval"
BROKEN = FIXTURES / "broken"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _rows(rows: list[LabeledText]) -> list[tuple[str, tuple[str, ...]]]:
    return [(r.text, r.intents) for r in rows]


# -- classification formats ---------------------------------------------------------------------


def test_labeled_text_normalises_intents() -> None:
    assert LabeledText("x", ("b", "a", "b", "None")).intents == ("a", "b")
    assert LabeledText("x", ("none",)).is_none
    with pytest.raises(ConfigError, match="string"):
        LabeledText("x", "payment")  # type: ignore[arg-type]


def test_jsonl_drops_none_dedups_sorts_and_strips() -> None:
    assert _rows(load_labeled("jsonl", [FIXTURES / "labeled.jsonl"])) == [
        ("I want a refund for my last order", ("order", "refund")),
        ("hello there", ()),
        ("track my parcel", ("shipping",)),
        ("what's the weather like", ()),
        ("pay now please", ("payment",)),
    ]


def test_jsonl_reads_the_prototype_prompt_output_shape() -> None:
    assert _rows(load_labeled("jsonl", str(FIXTURES / "prototype.jsonl"))) == [
        ("帮我查一下订单状态", ("order_management",)),
        ("付款成功后给我发短信通知", ("notification", "payment")),
        ("今天天气不错", ()),
    ]


def test_csv_splits_intents_on_pipe_and_semicolon() -> None:
    assert _rows(load_labeled("csv", [FIXTURES / "labeled.csv"])) == [
        ("refund my order, please", ("order", "refund")),
        ("hello", ()),
        ("pay and notify me", ("notification", "payment")),
        ("nothing to do here", ()),
    ]


def test_snips_joins_tokens_and_splits_intents_on_hash() -> None:
    # The fixture's last example has no trailing blank line, which real files sometimes lack.
    assert _rows(load_labeled("snips", [FIXTURES / "snips.txt"])) == [
        ("play some jazz", ("PlayMusic",)),
        ("will it rain in paris", ("GetWeather",)),
        ("book a table and play jazz", ("BookRestaurant", "PlayMusic")),
    ]


def test_nlupp_concatenates_folds_and_missing_intents_mean_none() -> None:
    rows = load_labeled("nlupp", [FIXTURES / "nlupp_fold0.json", FIXTURES / "nlupp_fold1.json"])
    assert _rows(rows) == [
        ("why is the sauna closed these days?", ("spa", "why", "wrong_notworking_notshowing")),
        ("we get in on friday around 6 p.m.", ()),
        ("can i bring my dog", ("pets",)),
        ("is there parking and wifi", ("parking", "wifi")),
    ]


def test_clinc_splits_and_oos_is_none() -> None:
    train = load_labeled("clinc", [FIXTURES / "clinc.json"], split="train")
    assert _rows(train)[-1] == ("tell me a secret", ())
    assert len(train) == 4
    # No "test" list in the released file: split="test" falls back to val + oos_val.
    assert _rows(load_labeled("clinc", [FIXTURES / "clinc.json"])) == [
        ("show my balance", ("balance",)),
        ("boil pasta for how long", ("cook_time",)),
        ("recommend a musical", ()),
    ]
    assert _rows(load_labeled("clinc", [FIXTURES / "clinc_with_test.json"])) == [
        ("send money to dad", ("transfer",)),
        ("how much is in checking", ("balance",)),
        ("what is the meaning of life", ()),
    ]


def test_clinc_with_domains_maps_intents_to_domains() -> None:
    rows = load_labeled("clinc", [FIXTURES / "clinc.json"], split="train", domains=FIXTURES / "clinc_domains.json")
    assert [r.intents for r in rows] == [("banking",), ("banking",), ("kitchen_and_dining",), ()]


def test_domains_missing_an_intent_names_the_domains_file_and_the_intent() -> None:
    with pytest.raises(DataFormatError, match=r"clinc_domains_missing\.json: intent 'transfer' \(example 1 of"):
        load_labeled("clinc", [FIXTURES / "clinc.json"], split="train", domains=BROKEN / "clinc_domains_missing.json")


CROSSWOZ_ROWS = [
    ("你好，推荐一家吃驴杂汤的餐馆。", ("餐馆",)),
    ("附近有什么景点？评分高的酒店呢？", ("酒店", "餐馆")),
    ("谢谢，再见！", ()),  # only General acts (thank, bye): none
    ("从故宫坐地铁去北京贵都大酒店，再叫辆出租。", ("出租", "地铁")),
    ("好的", ()),
]


def _zip(tmp_path: Path, *members: str) -> Path:
    archive = tmp_path / "val.json.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in members:
            zf.write(FIXTURES / "crosswoz_dialogues.json", arcname=name)
    return archive


def test_crosswoz_reads_user_turns_from_a_zip(tmp_path: Path) -> None:
    assert _rows(load_labeled("crosswoz", [_zip(tmp_path, "val.json")])) == CROSSWOZ_ROWS
    assert _rows(load_labeled("crosswoz", [FIXTURES / "crosswoz_dialogues.json"])) == CROSSWOZ_ROWS


def test_crosswoz_zip_must_hold_one_json(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"val\.json\.zip: the zip must hold exactly one \.json"):
        load_labeled("crosswoz", [_zip(tmp_path, "a.json", "b.json")])


BROKEN_CASES = [
    ("jsonl", "bad_json.jsonl", r"bad_json\.jsonl: line 2: invalid JSON"),
    ("jsonl", "missing_text.jsonl", r"missing_text\.jsonl: line 2: field 'text' is missing"),
    ("jsonl", "missing_intents.jsonl", r"missing_intents\.jsonl: line 2: field 'intents' is missing"),
    ("jsonl", "empty_text.jsonl", r"empty_text\.jsonl: line 3: field 'text' must be a non-empty string"),
    ("jsonl", "string_intents.jsonl", r"string_intents\.jsonl: line 2: field 'intents' is the string 'payment'"),
    ("jsonl", "nonstring_intent.jsonl", r"nonstring_intent\.jsonl: line 1: field 'output' item 1 must be"),
    ("csv", "bad_header.csv", r"bad_header\.csv: line 1: header .* must be exactly 'text,intents'"),
    ("csv", "bad_columns.csv", r"bad_columns\.csv: line 3: has 3 columns"),
    ("csv", "not_utf8.csv", r"not_utf8\.csv: byte \d+ is not valid UTF-8"),
    ("snips", "snips_no_blank.txt", r"snips_no_blank\.txt: line 3: expected 'token BIO-slot'"),
    ("snips", "snips_no_tokens.txt", r"snips_no_tokens\.txt: line 5: intent line 'GetWeather' has no"),
    ("nlupp", "nlupp_not_list.json", r"nlupp_not_list\.json: expected a JSON list"),
    ("nlupp", "nlupp_string_intents.json", r"nlupp_string_intents\.json: item 1: field 'intents' is the string"),
    ("nlupp", "nlupp_truncated.json", r"nlupp_truncated\.json: line \d+, column \d+: invalid JSON"),
    ("clinc", "clinc_bad_pair.json", r"clinc_bad_pair\.json: val\[1\]: expected a \[text, intent\] pair"),
    ("clinc", "clinc_train_only.json", r"clinc_train_only\.json: has no 'test' or 'val' list for split='test'"),
    ("crosswoz", "crosswoz_bad_act.json", r"crosswoz_bad_act\.json: dialogue 7, turn 2: dialog_act\[0\]"),
    ("crosswoz", "crosswoz_bad_role.json", r"crosswoz_bad_role\.json: dialogue 7, turn 0: expected .*'role'"),
]


@pytest.mark.parametrize(("fmt", "name", "pattern"), BROKEN_CASES, ids=[c[1] for c in BROKEN_CASES])
def test_malformed_files_name_file_row_and_field(fmt: str, name: str, pattern: str) -> None:
    with pytest.raises(DataFormatError, match=pattern):
        load_labeled(fmt, [BROKEN / name])


def test_data_format_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        load_labeled("jsonl", [BROKEN / "bad_json.jsonl"])


def test_unknown_format_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown format 'tsv'; known formats: clinc, crosswoz, csv, jsonl"):
        load_labeled("tsv", [FIXTURES / "labeled.jsonl"])


def test_bad_arguments_are_rejected_before_reading() -> None:
    with pytest.raises(ConfigError, match="split must be"):
        load_labeled("clinc", [FIXTURES / "clinc.json"], split="val")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="paths is empty"):
        load_labeled("jsonl", [])
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        load_labeled("jsonl", [FIXTURES / "labeled.jsonl", FIXTURES / "nope.jsonl"])


def test_an_empty_file_warns(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.warns(UserWarning, match="holds no examples"):
        assert load_labeled("jsonl", [tmp_path / "empty.jsonl"]) == []


def test_a_new_format_registers_in_one_line(tmp_path: Path) -> None:
    @register_labeled_format("lines-test")
    def _lines(path: Path, split: str) -> list[LabeledText]:
        return [LabeledText(line, ()) for line in path.read_text(encoding="utf-8").splitlines()]

    try:
        (tmp_path / "x.txt").write_text("a\nb\n", encoding="utf-8")
        assert len(load_labeled("lines-test", [tmp_path / "x.txt"])) == 2
    finally:
        del LABELED_FORMATS["lines-test"]


# -- mix_from_single ----------------------------------------------------------------------------

SINGLES = [
    LabeledText("play jazz", ("PlayMusic",)),
    LabeledText("will it rain", ("GetWeather",)),
    LabeledText("book a table", ("BookRestaurant",)),
    LabeledText("rate this book", ("RateBook",)),
    LabeledText("hello", ()),
    LabeledText("fares for flights", ("atis_airfare", "atis_flight")),
]


def test_mix_is_deterministic_given_the_seed() -> None:
    assert mix_from_single(SINGLES, seed=3, n=50) == mix_from_single(SINGLES, seed=3, n=50)
    assert mix_from_single(SINGLES, seed=3, n=50) != mix_from_single(SINGLES, seed=4, n=50)
    assert len(mix_from_single(SINGLES, seed=0)) == len(SINGLES)


def test_mix_joins_distinct_single_intent_utterances_with_the_published_joiners() -> None:
    by_text = {ex.text: ex.intents for ex in SINGLES}
    joiner = re.compile("|".join(re.escape(j) for j in sorted(MIX_JOINERS, key=len, reverse=True)))
    sizes: Counter[int] = Counter()
    for ex in mix_from_single(SINGLES, seed=0, n=2000):
        parts = joiner.split(ex.text)
        sizes[len(parts)] += 1
        if len(parts) == 1:
            assert by_text[ex.text] == ex.intents
            continue
        intents = [by_text[p] for p in parts]
        assert all(len(i) == 1 for i in intents), "only single-intent utterances are joined"
        assert len({i[0] for i in intents}) == len(parts), "joined utterances have different intents"
        assert ex.intents == tuple(sorted(i[0] for i in intents))
    assert set(sizes) == {1, 2, 3}
    assert sizes[1] / 2000 == pytest.approx(0.3, abs=0.05)
    assert sizes[2] / 2000 == pytest.approx(0.5, abs=0.05)


def test_mix_uses_every_joiner() -> None:
    texts = " | ".join(ex.text for ex in mix_from_single(SINGLES, seed=1, n=200))
    assert " and then " in texts and ", " in texts and re.search(r" and (?!then)", texts)


def test_mix_needs_two_intents_and_a_positive_n() -> None:
    with pytest.raises(ConfigError, match="at least two different intents"):
        mix_from_single([LabeledText("a", ("x",)), LabeledText("b", ("x",))], seed=0)
    with pytest.raises(ConfigError, match="n must be >= 1"):
        mix_from_single(SINGLES, seed=0, n=0)


# -- retrieval formats --------------------------------------------------------------------------


def _dstc11(labels: str = "labels.json") -> RetrievalDataset:
    folder = FIXTURES / "dstc11"
    labels_path = folder / labels if labels == "labels.json" else BROKEN / labels
    return load_dstc11(folder / "knowledge.json", folder / "logs.json", labels_path)


def test_dstc11_documents_are_faqs_and_whole_reviews() -> None:
    ds = load_dstc11(*(FIXTURES / "dstc11" / n for n in ("knowledge.json", "logs.json", "labels.json")))
    docs = ds.docs_by_id()
    assert sorted(docs) == [
        "hotel:0:faq:0",
        "hotel:0:faq:1",
        "hotel:0:review:0",
        "restaurant:19250:faq:3",
        "restaurant:19250:review:0",
    ]
    assert docs["hotel:0:faq:1"].text == "Q: Is there parking? A: Free parking is available."
    assert docs["hotel:0:review:0"].text.endswith("Would return. Ten out of ten.")  # sentence "10" after "9"
    assert dict(docs["restaurant:19250:review:0"].metadata) == {
        "domain": "restaurant",
        "entity_id": "19250",
        "entity_name": "SAFFRON TANDOORI",
        "doc_type": "review",
    }


def test_dstc11_queries_are_target_turns_with_review_sentences_mapped_to_reviews() -> None:
    ds = load_dstc11(*(FIXTURES / "dstc11" / n for n in ("knowledge.json", "logs.json", "labels.json")))
    assert [q.id for q in ds.queries] == ["1", "2"]
    q = ds.queries[0]
    assert q.text == "Can I bring my kids and is parking easy?"
    assert q.history == ("U: I need a guest house in the north.", "S: Alder Guest House is nice.")
    assert q.gold == ("hotel:0:faq:0", "hotel:0:review:0")  # two sentences of one review: one gold doc
    assert [m["doc_type"] for m in q.gold_metadata] == ["faq", "review"]
    assert ds.stats["non_target_instances"] == 1


@pytest.mark.parametrize(
    ("labels", "pattern"),
    [
        ("dstc11_labels_short.json", r"logs\.json has 3 instances but .*dstc11_labels_short\.json has 2 labels"),
        ("dstc11_labels_unknown_doc.json", r"unknown_doc\.json: item 1: knowledge\[0\] points to 'hotel:0:faq:99'"),
        ("dstc11_labels_no_doc_type.json", r"no_doc_type\.json: item 2: knowledge\[0\] lacks field 'doc_type'"),
        ("dstc11_labels_bad_target.json", r"bad_target\.json: item 0: field 'target' must be true or false"),
    ],
)
def test_dstc11_label_errors_name_the_files_and_item(labels: str, pattern: str) -> None:
    with pytest.raises(DataFormatError, match=pattern):
        _dstc11(labels)


def test_dstc9_keeps_domain_wide_snippets_under_star() -> None:
    ds = load_dstc9(*(FIXTURES / "dstc9" / n for n in ("knowledge.json", "logs.json", "labels.json")))
    assert [d.id for d in ds.docs] == ["hotel:0:0", "hotel:0:1", "taxi:*:1"]
    assert "entity_name" not in ds.docs_by_id()["taxi:*:1"].metadata
    assert [(q.id, q.gold) for q in ds.queries] == [("1", ("taxi:*:1",)), ("2", ("hotel:0:0", "hotel:0:1"))]
    assert ds.queries[1].gold_metadata[0]["entity_name"] == "ALDER GUEST HOUSE"


def test_crosswoz_retrieval_documents_and_gold(tmp_path: Path) -> None:
    ds = load_crosswoz_retrieval(_zip(tmp_path, "val.json"), FIXTURES / "crosswoz_db")
    assert sorted(d.id for d in ds.docs) == sorted(
        ["景点:故宫", "酒店:北京贵都大酒店", "餐馆:讲礼驴肉馆", "地铁:故宫", "地铁:北京贵都大酒店"]
    )  # taxi_db.json is a template: no documents
    hotel = ds.docs_by_id()["酒店:北京贵都大酒店"]
    assert "地址：北京西城区广安门内大街217号" in hotel.text and "酒店设施：宽带上网、吹风机、健身房" in hotel.text
    assert "前门大街等" in ds.docs_by_id()["景点:故宫"].text  # nearby lists cut to five
    assert "评分" not in ds.docs_by_id()["餐馆:讲礼驴肉馆"].text  # null fields are left out
    assert [(q.id, q.gold) for q in ds.queries] == [
        ("101:0", ("餐馆:讲礼驴肉馆",)),
        ("101:2", ("餐馆:讲礼驴肉馆", "景点:故宫", "酒店:北京贵都大酒店")),
        ("102:0", ("地铁:故宫", "地铁:北京贵都大酒店")),  # route markers stripped, taxi ignored
    ]
    assert ds.queries[1].history == ("U: 你好，推荐一家吃驴杂汤的餐馆。", "S: 推荐讲礼驴肉馆。")
    assert ds.stats["gold_missing_from_database"] == 1


def test_crosswoz_retrieval_needs_the_database_files(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "crosswoz_db", tmp_path / "db")
    (tmp_path / "db" / "metro_db.json").unlink()
    with pytest.raises(FileNotFoundError, match="metro_db.json is missing"):
        load_crosswoz_retrieval(FIXTURES / "crosswoz_dialogues.json", tmp_path / "db")
    (tmp_path / "db" / "metro_db.json").write_text(json.dumps([["故宫"]]), encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"metro_db\.json: item 0: expected \[name, \{fields\}\]"):
        load_crosswoz_retrieval(FIXTURES / "crosswoz_dialogues.json", tmp_path / "db")


def test_load_retrieval_dispatches_by_name_and_checks_the_path_keywords() -> None:
    folder = FIXTURES / "dstc9"
    paths = {n: folder / f"{n}.json" for n in ("knowledge", "logs", "labels")}
    assert load_retrieval("dstc9", **paths).name == "dstc9"
    assert set(RETRIEVAL_FORMATS) == {"dstc9", "dstc11", "crosswoz"}
    with pytest.raises(ConfigError, match="known formats: crosswoz, dstc11, dstc9"):
        load_retrieval("msmarco", **paths)
    with pytest.raises(ConfigError, match="takes the paths knowledge, logs, labels; got knowledge"):
        load_retrieval("dstc11", knowledge=paths["knowledge"])


# -- the real data sets, when ../shared is there ------------------------------------------------


@pytest.mark.skipif(not (SHARED / "snips_atis").is_dir(), reason="../shared/datasets/snips_atis is absent")
def test_real_mixatis_dev_loads() -> None:
    rows = load_labeled("snips", [SHARED / "snips_atis" / "MixATIS_clean" / "dev.txt"])
    assert len(rows) == 759
    assert max(len(r.intents) for r in rows) == 3


@pytest.mark.skipif(not (SHARED / "dstc11_track5").is_dir(), reason="../shared/datasets/dstc11_track5 is absent")
def test_real_dstc11_val_loads() -> None:
    root = SHARED / "dstc11_track5"
    ds = load_dstc11(root / "knowledge.json", root / "val" / "logs.json", root / "val" / "labels.json")
    assert (len(ds.docs), len(ds.queries)) == (4299, 2129)
