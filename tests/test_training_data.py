"""Strict training-data reading: every bad row is named with its file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokenflow_rag.classifiers.calibration import Calibration, IntentCalibration, best_threshold
from tokenflow_rag.classifiers.training_data import fingerprint, load_training_data, split_dev
from tokenflow_rag.errors import ConfigError, DataFormatError
from tokenflow_rag.evaluation.datasets import LabeledText
from tokenflow_rag.taxonomy import default_taxonomy

TAX = default_taxonomy()


def _jsonl(tmp_path: Path, rows: list, name: str = "train.jsonl") -> Path:
    path = tmp_path / name
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8"
    )
    return path


def test_reads_jsonl_and_csv(tmp_path: Path) -> None:
    jsonl = _jsonl(
        tmp_path,
        [
            {"text": "退款多久到账", "intents": ["refund"]},
            {"text": "hello", "intents": []},
            {"text": "hi", "intents": ["none"]},
        ],
    )
    csv = tmp_path / "more.csv"
    csv.write_text('text,intents\n"pay, then ship",payment|shipping\nwhere is my coupon,promotion\n', encoding="utf-8")
    rows = load_training_data([jsonl, csv], TAX)
    assert [r.intents for r in rows] == [("refund",), (), (), ("payment", "shipping"), ("promotion",)]
    assert rows[3].text == "pay, then ship"


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ({"text": "x", "intents": ["paymnet"]}, "line 2, field 'intents': unknown intent(s) 'paymnet'"),
        ({"text": "   ", "intents": []}, "line 2, field 'text': empty text"),
        ({"text": "x", "intents": "payment"}, "line 2, field 'intents': got the string 'payment'"),
        ({"intents": []}, "line 2, field 'text': missing"),
        ({"text": "x"}, "line 2, field 'intents': missing"),
        ({"text": 3, "intents": []}, "line 2, field 'text': expected a string"),
        ({"text": "x", "intents": ["none", "payment"]}, "line 2, field 'intents': 'none' cannot be combined"),
        ("{not json", "line 2: invalid JSON"),
    ],
)
def test_bad_jsonl_rows_name_line_and_field(tmp_path: Path, row: object, needle: str) -> None:
    path = _jsonl(tmp_path, [{"text": "ok", "intents": []}, row])
    with pytest.raises(DataFormatError) as err:
        load_training_data(path, TAX)
    assert str(path) in str(err.value)
    assert needle in str(err.value)


def test_duplicate_rows_name_both_lines(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path,
        [
            {"text": "Refund  me", "intents": ["refund"]},
            {"text": "x", "intents": []},
            {"text": "refund me", "intents": []},
        ],
    )
    with pytest.raises(DataFormatError, match=r"line 3, field 'text': duplicate of .*line 1"):
        load_training_data(path, TAX)


def test_wrong_csv_header(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("query,labels\nhello,payment\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"line 1, header.*'text,intents'"):
        load_training_data(path, TAX)


def test_csv_unknown_intent_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("text,intents\nhello,payment\nbye,shiping\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"line 3, field 'intents': unknown intent\(s\) 'shiping'"):
        load_training_data(path, TAX)
    with pytest.raises(DataFormatError, match="does not exist"):
        load_training_data(tmp_path / "nope.jsonl", TAX)


def test_split_is_stratified_and_seeded() -> None:
    rows = [LabeledText(f"text {i}", (("payment",), ("refund", "payment"), ())[i % 3]) for i in range(60)]
    train, dev = split_dev(rows, 0.2, seed=1)
    assert len(dev) == 12 and len(train) == 48
    assert {r.intents for r in dev} == {r.intents for r in rows}
    assert split_dev(rows, 0.2, seed=1) == (train, dev)
    assert split_dev(rows, 0.2, seed=2)[1] != dev
    assert fingerprint(rows) == fingerprint(list(rows)) != fingerprint(rows[1:])
    with pytest.raises(ConfigError, match="dev fraction"):
        split_dev(rows, 1.5, seed=0)


def test_calibration_is_monotone_and_picks_bounded_thresholds() -> None:
    scores = {"a": [0.95, 0.9, 0.85, 0.6, 0.55, 0.4, 0.3, 0.2, 0.1, 0.05], "b": [0.9] * 10}
    gold = {"a": [1, 1, 1, 1, 0, 0, 0, 0, 0, 0], "b": [1] * 10}
    cal = Calibration.fit(scores, gold)
    a = cal.intents["a"]
    probs = [a.apply(s) for s in scores["a"]]
    assert probs == sorted(probs, reverse=True) and all(0 < p < 1 for p in probs)
    assert 0.2 <= a.threshold <= 0.8
    assert cal.intents["b"] == IntentCalibration()  # too few negatives: identity, 0.5
    assert Calibration.from_dict(cal.to_dict()) == cal
    import numpy as np

    assert best_threshold(np.array([0.9, 0.1]), np.array([1, 0])) == 0.5  # a plateau: closest to 0.5
    with pytest.raises(ConfigError, match="threshold"):
        IntentCalibration(threshold=1.0)


def test_calibration_of_an_overconfident_model_tempers_it() -> None:
    import numpy as np

    # A network that says 0.999 or 0.001 and is right 80% of the time: its raw scores overstate it.
    # Newton's method without a line search used to jump to slopes in the hundreds here (a step
    # function with "probabilities" of 0 and 1).
    rng = np.random.default_rng(0)
    gold = rng.random(400) < 0.3
    right = rng.random(400) < 0.8
    raw = np.where(gold == right, 0.999, 0.001)
    cal = Calibration.fit({"x": raw.tolist()}, {"x": gold.astype(int).tolist()}).intents["x"]
    assert 0.05 < cal.a < 1.0
    high = float((gold & (raw > 0.5)).sum() / (raw > 0.5).sum())  # how often "0.999" is right
    assert cal.apply(0.999) == pytest.approx(high, abs=0.05)
