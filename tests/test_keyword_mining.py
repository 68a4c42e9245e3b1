"""Keyword mining: safe label names, matcher-consistent counting, precise keywords, valid taxonomies."""

from __future__ import annotations

import pytest

from tokenflow_rag.classifiers.keyword_mining import (
    LabelMap,
    candidate_ngrams,
    mine_keywords,
    mine_taxonomy,
    safe_label,
)
from tokenflow_rag.classifiers.rules import RuleClassifier
from tokenflow_rag.errors import ConfigError
from tokenflow_rag.evaluation.datasets import LabeledText
from tokenflow_rag.taxonomy import Taxonomy


def _rows(pairs):
    return [LabeledText(text, tuple(labels)) for text, labels in pairs]


MUSIC_WEATHER = _rows(
    [
        ("play some jazz", ["PlayMusic"]),
        ("play the new album by adele", ["PlayMusic"]),
        ("please play a song from the eighties", ["PlayMusic"]),
        ("playing rock music in the kitchen", ["PlayMusic"]),
        ("will it rain tomorrow in paris", ["GetWeather"]),
        ("what is the weather in oslo", ["GetWeather"]),
        ("is rain expected this weekend", ["GetWeather"]),
        ("weather forecast for the weekend", ["GetWeather"]),
        ("rain or sun in rome", ["GetWeather"]),
        ("what is the time", []),
        ("what is the capital of peru", []),
    ]
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("AddToPlaylist", "add_to_playlist"),
        ("SearchScreeningEvent", "search_screening_event"),
        ("atis_flight", "atis_flight"),
        ("card_arrival", "card_arrival"),
        ("景点", "u666f_u70b9"),
        ("Book-Restaurant ", "book_restaurant"),
        ("2fa", "l_2fa"),
        ("None", "l_none"),
        ("HTTPError", "http_error"),
    ],
)
def test_safe_label_is_a_valid_intent_name(raw: str, expected: str) -> None:
    name = safe_label(raw)
    assert name == expected
    Taxonomy.from_dict({"intents": {name: {}}})  # the loader accepts it


def test_label_map_round_trips_and_rejects_collisions() -> None:
    labels = ["AddToPlaylist", "atis_flight", "景点", "酒店"]
    label_map = LabelMap.from_labels(labels)
    assert label_map.to_raw(label_map.to_safe(labels)) == tuple(labels)
    with pytest.raises(ConfigError, match="both map to"):
        LabelMap.from_labels(["add_to_playlist", "AddToPlaylist"])
    with pytest.raises(ConfigError, match="non-empty"):
        safe_label("  ")


def test_candidates_follow_the_rule_matcher() -> None:
    grams = candidate_ngrams("Playing jazz, then rain!")
    assert {"playing", "play", "jazz", "playing jazz", "then rain", "rain"} <= grams
    assert "jazz then" not in grams  # a comma breaks the n-gram, as it breaks the matcher's keyword
    assert {"订酒", "酒店", "订酒店"} <= candidate_ngrams("我想订酒店")
    assert "酒" not in candidate_ngrams("我想订酒店")  # single characters are too ambiguous


def test_mined_keywords_are_precise_and_capped() -> None:
    keywords = mine_keywords(MUSIC_WEATHER, min_support=2, max_keywords=3)
    assert "play" in keywords["PlayMusic"]
    assert {"rain", "weather"} <= set(keywords["GetWeather"])
    assert all(len(v) <= 3 for v in keywords.values())
    flat = [kw for words in keywords.values() for kw in words]
    assert "the" not in flat and "what is" not in flat  # in both labels and in none: not discriminative
    assert "play some" not in flat and "playing" not in flat  # contained in "play", which already fires


def test_measured_precision_holds_when_the_rules_run() -> None:
    # Counting follows the matcher (stems, whole words), so each keyword's training precision is real.
    keywords = mine_keywords(MUSIC_WEATHER, min_support=2, min_precision=1.0)
    taxonomy = Taxonomy.from_dict(
        {"intents": {safe_label(label): {"keywords": words} for label, words in keywords.items() if words}}
    )
    rules = RuleClassifier(taxonomy)
    for label, words in keywords.items():
        for word in words:
            fired = [ex for ex in MUSIC_WEATHER if word in rules.scores(ex.text)[1].get(safe_label(label), ())]
            assert len(fired) >= 2
            assert all(label in ex.intents for ex in fired), (label, word)


def test_mined_taxonomy_classifies_and_keeps_labels_without_keywords() -> None:
    rows = [*MUSIC_WEATHER, LabeledText("one odd example", ("RateBook",))]
    taxonomy = mine_taxonomy(rows, name="snips", min_support=2)
    assert set(taxonomy.names) == {"play_music", "get_weather", "rate_book"}
    assert taxonomy["rate_book"].keywords == {}  # defined without keywords: the loader rejects an empty list
    assert "RateBook" in taxonomy["rate_book"].description
    rules = RuleClassifier(taxonomy)
    assert set(rules.predict(["play jazz and tell me if it will rain"])[0].intents) == {"play_music", "get_weather"}
    assert rules.predict(["what is the capital of chile"])[0].intents == ()


def test_chinese_labels_and_ngrams() -> None:
    rows = _rows(
        [
            ("帮我订一家酒店", ["酒店"]),
            ("这家酒店有停车场吗", ["酒店"]),
            ("推荐一个酒店", ["酒店"]),
            ("附近有什么景点", ["景点"]),
            ("这个景点门票多少", ["景点"]),
            ("景点开放时间", ["景点"]),
            ("谢谢你", []),
        ]
    )
    label_map = LabelMap.from_labels(["酒店", "景点"])
    taxonomy = mine_taxonomy(rows, label_map=label_map, min_support=3)
    assert "酒店" in taxonomy[safe_label("酒店")].all_keywords
    pred = RuleClassifier(taxonomy).predict(["酒店和景点都要"])[0]
    assert set(label_map.to_raw(pred.intents)) == {"酒店", "景点"}


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"min_support": 0}, "min_support"),
        ({"min_precision": 0}, "min_precision"),
        ({"max_keywords": 0}, "max_keywords"),
    ],
)
def test_knobs_are_validated(kwargs: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        mine_keywords(MUSIC_WEATHER, **kwargs)


def test_all_none_examples_are_an_error() -> None:
    with pytest.raises(ConfigError, match="at least one intent"):
        mine_taxonomy([LabeledText("hello", ())])
