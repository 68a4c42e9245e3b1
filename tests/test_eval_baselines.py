"""Baseline classifiers learn a tiny separable set, handle degenerate labels and explain bad input."""

from __future__ import annotations

import re
import sys
import zlib

import numpy as np
import pytest

from tokenflow_rag.errors import ConfigError, MissingDependencyError
from tokenflow_rag.evaluation.baselines import EmbeddingLogRegBaseline, TfidfLogRegBaseline

TEXTS = [
    "refund my money",
    "i want a refund now",
    "money back refund please",
    "track my parcel",
    "where is my parcel track it",
    "parcel tracking number",
    "refund and track parcel",
    "track parcel then refund",
    "hello there",
    "good morning friend",
]
LABELS = [
    ["refund"],
    ["refund"],
    ["refund"],
    ["shipping"],
    ["shipping"],
    ["shipping"],
    ["refund", "shipping"],
    ["shipping", "refund"],
    ["none"],
    [],
]
EXPECTED = [tuple(sorted(x for x in labels if x != "none")) for labels in LABELS]


def hashing_embed(texts: list[str]) -> np.ndarray:
    """Deterministic bag-of-words embedding: crc32 of each word picks a dimension (hash() is salted)."""
    vectors = np.zeros((len(texts), 64))
    for i, text in enumerate(texts):
        for word in re.findall(r"\w+", text.lower()):
            vectors[i, zlib.crc32(word.encode()) % 64] += 1.0
    return vectors


@pytest.fixture(params=["tfidf", "embedding"])
def make(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    pytest.importorskip("sklearn")
    if request.param == "tfidf":
        return lambda **kw: TfidfLogRegBaseline(**kw)
    return lambda **kw: EmbeddingLogRegBaseline(hashing_embed, **kw)


def test_learns_a_tiny_separable_multilabel_set(make) -> None:  # type: ignore[no-untyped-def]
    clf = make().fit(TEXTS, LABELS)
    assert clf.classes_ == ("refund", "shipping")
    assert clf.predict(TEXTS) == EXPECTED
    proba = clf.predict_proba(["refund my money", "hello there"])
    assert proba.shape == (2, 2)
    assert proba[0, 0] > 0.5 > proba[0, 1]
    assert (proba[1] < 0.5).all()


def test_tfidf_reads_chinese_without_segmentation() -> None:
    pytest.importorskip("sklearn")
    texts = ["我要退款", "申请退款", "退款到账", "查询物流", "物流到哪了", "快递物流信息", "你好", "早上好"]
    labels = [["refund"]] * 3 + [["shipping"]] * 3 + [[], []]
    clf = TfidfLogRegBaseline().fit(texts, labels)
    assert clf.predict(["退款", "物流", "你好"]) == [("refund",), ("shipping",), ()]


def test_an_intent_on_every_example_is_a_constant(make) -> None:  # type: ignore[no-untyped-def]
    clf = make().fit(["refund a", "refund b", "refund and ship"], [["refund"], ["refund"], ["refund", "ship"]])
    proba = clf.predict_proba(["anything"])
    assert clf.classes_ == ("refund", "ship")
    assert proba[0, 0] == 1.0
    assert clf.predict(["anything"])[0][0] == "refund"


def test_no_intent_at_all_predicts_none(make) -> None:  # type: ignore[no-untyped-def]
    clf = make().fit(["hello", "hi"], [[], ["none"]])
    assert clf.classes_ == ()
    assert clf.predict(["hello"]) == [()]
    assert clf.predict_proba(["hello"]).shape == (1, 0)


def test_threshold_changes_what_is_predicted() -> None:
    pytest.importorskip("sklearn")
    strict = TfidfLogRegBaseline(threshold=0.999).fit(TEXTS, LABELS)
    assert strict.predict(["refund my money"]) == [()]


@pytest.mark.parametrize(
    ("kwargs", "texts", "labels", "pattern"),
    [
        ({}, TEXTS, LABELS[:-1], "texts has 10 items but labels has 9"),
        ({}, [], [], "texts is empty"),
        ({}, ["a"], ["refund"], r"labels\[0\] is the string 'refund'"),
        ({}, "refund", [["refund"]], "texts must be a list of strings"),
        ({"threshold": 1.5}, TEXTS, LABELS, r"threshold must be in \(0, 1\)"),
    ],
)
def test_bad_fit_arguments_are_named(make, kwargs, texts, labels, pattern) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=pattern):
        make(**kwargs).fit(texts, labels)


def test_predict_before_fit_says_to_fit(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=r"not fitted yet; call fit"):
        make().predict(["x"])


def test_embed_returning_the_wrong_shape_is_named() -> None:
    pytest.importorskip("sklearn")
    clf = EmbeddingLogRegBaseline(lambda texts: np.zeros(len(texts)))
    with pytest.raises(ConfigError, match=r"embed returned an array of shape \(10,\) for 10 texts"):
        clf.fit(TEXTS, LABELS)


def test_missing_scikit_learn_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import fail as if the package were not installed.
    for name in ("sklearn", "sklearn.linear_model", "sklearn.feature_extraction", "sklearn.feature_extraction.text"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingDependencyError, match=re.escape("pip install scikit-learn")) as info:
        TfidfLogRegBaseline().fit(TEXTS, LABELS)
    assert isinstance(info.value, ImportError)
    assert isinstance(info.value.__cause__, ImportError)
