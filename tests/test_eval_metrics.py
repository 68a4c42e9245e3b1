"""Multi-label metrics on hand-computed examples."""

from __future__ import annotations

import json
import re

import pytest

from tokenflow_rag.errors import ConfigError
from tokenflow_rag.evaluation.metrics import map_to_parents, multilabel_report

# Five examples worked out by hand:
#   a: tp 2 (ex0, ex1)            -> P 1, R 1, F1 1, support 2
#   b: tp 0, fp 1 (ex2), fn 2     -> P 0, R 0, F1 0, support 2
#   micro: tp 2, fp 1, fn 2       -> P 2/3, R 1/2, F1 4/7
#   exact: ex0 and ex4 ("none" == [])  -> 2/5
#   none: gold {ex2, ex4}, pred {ex3, ex4}, both {ex4} -> P 1/2, R 1/2
GOLD = [["a"], ["a", "b"], [], ["b"], ["none"]]
PRED = [["a"], ["a"], ["b"], [], []]


def test_report_matches_hand_computed_numbers() -> None:
    r = multilabel_report(GOLD, PRED)
    assert r["n"] == 5
    assert r["micro_precision"] == pytest.approx(2 / 3)
    assert r["micro_recall"] == pytest.approx(1 / 2)
    assert r["micro_f1"] == pytest.approx(4 / 7)
    assert r["macro_f1"] == pytest.approx(0.5)
    assert r["exact_match"] == pytest.approx(0.4)
    assert r["per_intent"]["a"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert r["per_intent"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert (r["none_precision"], r["none_recall"]) == (0.5, 0.5)
    assert (r["none_support"], r["none_predicted"]) == (2, 2)


def test_report_is_json_serialisable_and_ignores_order_and_duplicates() -> None:
    r = multilabel_report([["b", "a"]], [["a", "b", "a"]])
    assert r["exact_match"] == 1.0 and r["micro_f1"] == 1.0
    json.dumps(r)


def test_none_label_is_case_insensitive_and_never_an_intent() -> None:
    r = multilabel_report([["NONE"], ["None", "a"]], [[], ["a"]])
    assert set(r["per_intent"]) == {"a"}
    assert r["exact_match"] == 1.0
    assert r["none_recall"] == 1.0


def test_labels_restrict_micro_and_per_intent_but_not_exact_match() -> None:
    r = multilabel_report(GOLD, PRED, labels=["a", "c", "none"])
    assert set(r["per_intent"]) == {"a", "c"}
    assert r["per_intent"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert r["micro_f1"] == 1.0
    assert r["macro_f1"] == 1.0  # "c" occurs nowhere, so it does not drag the macro average down
    assert r["exact_match"] == pytest.approx(0.4)


def test_macro_averages_over_intents_present_in_gold_or_pred() -> None:
    # a: P 1/2 R 1 F1 2/3; b: only predicted, F1 0; c: gold only, F1 0 -> macro 2/9
    r = multilabel_report([["a"], ["c"]], [["a", "b"], ["a"]])
    assert r["per_intent"]["a"]["f1"] == pytest.approx(2 / 3)
    assert r["macro_f1"] == pytest.approx(2 / 9)


def test_zero_denominators_give_zero_not_nan() -> None:
    r = multilabel_report([[], []], [[], []])
    assert (r["micro_f1"], r["macro_f1"], r["exact_match"]) == (0.0, 0.0, 1.0)
    assert (r["none_precision"], r["none_recall"]) == (1.0, 1.0)
    r = multilabel_report([["a"]], [["a"]])
    assert (r["none_precision"], r["none_recall"], r["none_support"]) == (0.0, 0.0, 0)


@pytest.mark.parametrize(
    ("gold", "pred", "fragment"),
    [
        ([["a"]], [["a"], ["b"]], "gold has 1 items but pred has 2"),
        ([], [], "empty"),
        (["a"], [["a"]], "gold[0] is the string 'a'"),
        ([["a"]], ["a"], "pred[0] is the string 'a'"),
    ],
)
def test_report_rejects_misaligned_empty_or_string_input(
    gold: list[list[str]], pred: list[list[str]], fragment: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        multilabel_report(gold, pred)


def test_map_to_parents_dedups_sorts_and_keeps_parents() -> None:
    parent_of = {"refund": "payment", "card": "payment", "track": "order"}
    assert map_to_parents(["track", "refund", "card", "none"], parent_of) == ("order", "payment")
    assert map_to_parents(["payment"], parent_of) == ("payment",)
    assert map_to_parents([], parent_of) == ()


def test_map_to_parents_names_an_unknown_label() -> None:
    with pytest.raises(ConfigError, match="'weather'"):
        map_to_parents(["weather"], {"refund": "payment"})
    with pytest.raises(ConfigError, match="string"):
        map_to_parents("refund", {"refund": "payment"})


def test_parent_mapping_feeds_the_report() -> None:
    parent_of = {"refund": "payment", "card": "payment", "track": "order"}
    gold = [map_to_parents(g, parent_of) for g in [["refund"], ["track", "card"]]]
    pred = [map_to_parents(p, parent_of) for p in [["card"], ["track"]]]
    r = multilabel_report(gold, pred)
    assert r["exact_match"] == 0.5
    assert r["per_intent"]["payment"]["recall"] == 0.5
