"""Character n-gram model: scikit-learn's features and fit, numpy prediction, safe files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tokenflow_rag.classifiers.ngrams import VOCABULARY_FILE, WEIGHTS_FILE, CharNgramModel
from tokenflow_rag.errors import ConfigError, ModelLoadError

TEXTS = [
    "退款多久到账",
    "我要退款 refund please",
    "支付失败怎么办",
    "how do I pay by card",
    "快递到哪了  and\tsend me an SMS",
    "你好",
    "I want my money back",
    "payment declined again!!!",
]
INTENTS = [["refund"], ["refund"], ["payment"], ["payment"], ["shipping", "notification"], [], ["refund"], ["payment"]]
LABELS = ["notification", "payment", "refund", "shipping", "inventory"]


@pytest.fixture(scope="module")
def model() -> CharNgramModel:
    return CharNgramModel.fit(TEXTS, INTENTS, LABELS)


def test_features_are_scikit_learns_char_wb_tfidf(model: CharNgramModel) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True).fit(TEXTS)
    analyzer = vectorizer.build_analyzer()
    queries = [*TEXTS, "Refund   REFUND refund", "a", "ab", "", "完全没见过的字"]
    expected = vectorizer.transform(queries).toarray()
    for row, text in enumerate(queries):
        assert model.ngrams(text) == analyzer(text)
        columns, values = model.features(text)
        dense = np.zeros(len(model.index), dtype=np.float32)
        dense[columns] = values
        order = [vectorizer.vocabulary_[g] for g in sorted(model.index, key=model.index.__getitem__)]
        assert np.allclose(dense, expected[row, order], atol=2e-3)  # idf kept at half precision


def test_scores_follow_the_training_labels(model: CharNgramModel) -> None:
    scores = model.raw_scores(["退款到账了吗", "card payment failed", "where is my parcel"])
    refund, payment = LABELS.index("refund"), LABELS.index("payment")
    assert scores.shape == (3, len(LABELS)) and ((scores >= 0) & (scores <= 1)).all()
    assert scores[0].argmax() == refund and scores[1].argmax() == payment
    # inventory is on no training text: a constant "no", not a failed fit
    assert scores[:, LABELS.index("inventory")].max() < 1e-6
    assert model.raw_scores([]).shape == (0, len(LABELS))
    assert model.raw_scores([""])[0] == pytest.approx(1 / (1 + np.exp(-model.intercept)), abs=1e-6)


def test_saved_and_loaded_model_scores_exactly_alike(model: CharNgramModel, tmp_path: Path) -> None:
    model.write_files(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {VOCABULARY_FILE, WEIGHTS_FILE}
    loaded = CharNgramModel.from_directory(tmp_path, LABELS)
    assert loaded is not None
    assert np.array_equal(loaded.raw_scores(TEXTS), model.raw_scores(TEXTS))
    assert CharNgramModel.from_directory(tmp_path / "elsewhere", LABELS) is None  # no n-gram part: fine


@pytest.mark.parametrize("damage", ["missing_weights", "corrupt_weights", "corrupt_json", "other_labels"])
def test_broken_files_are_a_clear_load_error(model: CharNgramModel, tmp_path: Path, damage: str) -> None:
    model.write_files(tmp_path)
    labels = LABELS
    if damage == "missing_weights":
        (tmp_path / WEIGHTS_FILE).unlink()
    elif damage == "corrupt_weights":
        (tmp_path / WEIGHTS_FILE).write_bytes(b"\x00" * 32)
    elif damage == "corrupt_json":
        (tmp_path / VOCABULARY_FILE).write_text("{", encoding="utf-8")
    else:
        labels = ["parking", "checkout"]
    with pytest.raises(ModelLoadError, match="tokenflow train"):
        CharNgramModel.from_directory(tmp_path, labels)


def test_bad_arguments_are_clear() -> None:
    with pytest.raises(ConfigError, match="as many intent lists as texts"):
        CharNgramModel.fit(["a", "b"], [["refund"]], LABELS)
    with pytest.raises(ConfigError, match="shapes disagree"):
        CharNgramModel(["refund"], ["a", "b"], np.ones(2), np.ones((1, 3)), np.zeros(1))
