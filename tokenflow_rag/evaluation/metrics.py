"""Multi-label intent metrics, with "no intent" scored as a class of its own.

Intent sets are compared as sets: order and duplicates do not matter, and the label "none" (any
case) is the same as the empty set. Micro and macro F1 cover real intents only; how well a
classifier says "none" is reported separately (``none_precision`` / ``none_recall``), because a
retriever that wrongly answers "none" skips intent filtering while a wrong intent filters badly,
and the two mistakes cost different things.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TypedDict

from tokenflow_rag.errors import ConfigError
from tokenflow_rag.taxonomy import NONE_INTENT

__all__ = ["IntentScores", "MultilabelReport", "map_to_parents", "multilabel_report"]


class IntentScores(TypedDict):
    """Precision, recall and F1 of one intent; ``support`` counts its gold occurrences."""

    precision: float
    recall: float
    f1: float
    support: int


class MultilabelReport(TypedDict):
    """What :func:`multilabel_report` returns (a plain dict, JSON-serialisable)."""

    n: int
    micro_precision: float
    micro_recall: float
    micro_f1: float
    macro_f1: float
    exact_match: float
    per_intent: dict[str, IntentScores]
    none_precision: float
    none_recall: float
    none_support: int
    none_predicted: int


def multilabel_report(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    labels: Sequence[str] | None = None,
) -> MultilabelReport:
    """Score predicted intent sets against gold ones.

    Args:
        gold: One collection of intents per example; ``()`` or ``("none",)`` means no intent.
        pred: The predictions, aligned with ``gold``.
        labels: The intents to score (default: every intent seen in ``gold`` or ``pred``). Intents
            outside it are ignored by the micro and per-intent scores, as in scikit-learn; exact match
            always compares the full sets.

    Returns:
        ``n``; ``micro_precision/recall/f1`` over all (example, intent) decisions; ``macro_f1``, the mean
        F1 over the intents present in gold or pred; ``exact_match``, the share of examples whose sets are
        equal; ``per_intent`` {intent: precision, recall, f1, support}; ``none_precision`` and
        ``none_recall`` with "no intent" as the positive class, and their counts ``none_support`` (gold)
        and ``none_predicted``. A ratio with a zero denominator is 0.0.

    Raises:
        ConfigError: ``gold`` and ``pred`` differ in length or are empty, or an item is a bare string.

    >>> r = multilabel_report([["pay"], ["pay", "ship"], []], [["pay"], ["pay"], []])
    >>> r["exact_match"], r["micro_f1"], r["none_recall"]
    (0.6666666666666666, 0.8, 1.0)
    """
    if len(gold) != len(pred):
        raise ConfigError(f"gold has {len(gold)} items but pred has {len(pred)}; they must be aligned")
    if not gold:
        raise ConfigError("gold and pred are empty; there is nothing to score")
    gold_sets = [_intent_set(g, "gold", i) for i, g in enumerate(gold)]
    pred_sets = [_intent_set(p, "pred", i) for i, p in enumerate(pred)]
    scored = _intent_set(labels, "labels", None) if labels is not None else set().union(*gold_sets, *pred_sets)

    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for g, p in zip(gold_sets, pred_sets):
        tp.update(g & p)
        fp.update(p - g)
        fn.update(g - p)

    per_intent: dict[str, IntentScores] = {}
    present_f1 = []
    for label in sorted(scored):
        precision, recall = _ratio(tp[label], tp[label] + fp[label]), _ratio(tp[label], tp[label] + fn[label])
        f1 = _f1(precision, recall)
        per_intent[label] = IntentScores(precision=precision, recall=recall, f1=f1, support=tp[label] + fn[label])
        if tp[label] + fp[label] + fn[label]:
            present_f1.append(f1)

    tp_all = sum(tp[label] for label in scored)
    micro_p = _ratio(tp_all, tp_all + sum(fp[label] for label in scored))
    micro_r = _ratio(tp_all, tp_all + sum(fn[label] for label in scored))
    gold_none = sum(1 for g in gold_sets if not g)
    pred_none = sum(1 for p in pred_sets if not p)
    both_none = sum(1 for g, p in zip(gold_sets, pred_sets) if not g and not p)
    return MultilabelReport(
        n=len(gold_sets),
        micro_precision=micro_p,
        micro_recall=micro_r,
        micro_f1=_f1(micro_p, micro_r),
        macro_f1=sum(present_f1) / len(present_f1) if present_f1 else 0.0,
        exact_match=sum(1 for g, p in zip(gold_sets, pred_sets) if g == p) / len(gold_sets),
        per_intent=per_intent,
        none_precision=_ratio(both_none, pred_none),
        none_recall=_ratio(both_none, gold_none),
        none_support=gold_none,
        none_predicted=pred_none,
    )


def map_to_parents(labels: Iterable[str], parent_of: Mapping[str, str]) -> tuple[str, ...]:
    """Replace fine labels by their parents, to score a fine taxonomy against a coarser label set.

    A label that is already a parent (a value of ``parent_of``) is kept; "none" is dropped.

    Args:
        labels: Intent names, e.g. a prediction.
        parent_of: ``{child: parent}``.

    Returns:
        The parents, sorted and deduplicated.

    Raises:
        ConfigError: A label is neither a key nor a value of ``parent_of``.

    >>> map_to_parents(["refund", "card_payment", "none"], {"refund": "payment", "card_payment": "payment"})
    ('payment',)
    """
    if isinstance(labels, str):
        raise ConfigError(f"labels must be a collection of intent names, got the string {labels!r}")
    parents = set()
    for label in labels:
        if label.lower() == NONE_INTENT:
            continue
        if label in parent_of:
            parents.add(parent_of[label])
        elif label in set(parent_of.values()):
            parents.add(label)
        else:
            raise ConfigError(f"label {label!r} has no parent in parent_of and is not a parent itself; add it")
    return tuple(sorted(parents))


def _intent_set(intents: Iterable[str], name: str, index: int | None) -> set[str]:
    where = name if index is None else f"{name}[{index}]"
    if isinstance(intents, str):
        raise ConfigError(f"{where} is the string {intents!r}; pass a collection of intents, e.g. [{intents!r}]")
    return {intent for intent in intents if intent.lower() != NONE_INTENT}


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0
