"""Hybrid classifier: fusion, calibrated thresholds, and degrading to rules instead of crashing."""

from __future__ import annotations

import json
import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from tokenflow_rag.classifiers.backbone import make_tiny_backbone  # noqa: E402
from tokenflow_rag.classifiers.calibration import Calibration, IntentCalibration  # noqa: E402
from tokenflow_rag.classifiers.hybrid import HybridClassifier, HybridConfig, load_default_hybrid  # noqa: E402
from tokenflow_rag.classifiers.neural import NeuralConfig, default_model_dir  # noqa: E402
from tokenflow_rag.classifiers.rules import RuleClassifier  # noqa: E402
from tokenflow_rag.classifiers.trainer import IntentTrainer, TrainingArguments  # noqa: E402
from tokenflow_rag.errors import ConfigError, ModelLoadError  # noqa: E402
from tokenflow_rag.evaluation.datasets import LabeledText  # noqa: E402
from tokenflow_rag.taxonomy import Taxonomy, default_taxonomy  # noqa: E402

ROWS = [
    LabeledText("退款多久到账", ("refund",)),
    LabeledText("refund my money back", ("refund",)),
    LabeledText("支付失败怎么办", ("payment",)),
    LabeledText("how do I pay by card", ("payment",)),
    LabeledText("快递到哪了 and send me an sms", ("notification", "shipping")),
    LabeledText("你好", ()),
]
TEXTS = ["退款多久到账? I also never got the SMS", "hello there", "库存", "x" * 3000]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    backbone = make_tiny_backbone(tmp_path_factory.mktemp("bert"), "bert")
    config = NeuralConfig(backbone=str(backbone), cjk_vocab=60, max_length=16)
    args = TrainingArguments(epochs=1, batch_size=3, progress=False)
    hybrid = IntentTrainer(default_taxonomy(), config, args).train(ROWS, ROWS[:4])
    out = tmp_path_factory.mktemp("models") / "tiny"
    hybrid.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def hybrid(model_dir: Path) -> HybridClassifier:
    return HybridClassifier.from_pretrained(model_dir, strict=True)


def test_scores_are_calibrated_fusion_of_rules_and_model(hybrid: HybridClassifier) -> None:
    assert hybrid.ngrams is not None  # tokenflow train fits the n-gram part by default
    for p in hybrid.predict(TEXTS):
        assert set(p.components) == {"rules", "neural", "ngrams"}
        for name, score in p.scores.items():
            assert 0.0 <= score <= 1.0
            model = (p.components["neural"][name] + p.components["ngrams"][name]) / 2
            fused = 0.3 * p.components["rules"][name] + 0.7 * model
            assert math.isclose(score, hybrid.calibration.intents[name].apply(fused), rel_tol=1e-6)
    first = hybrid.predict(TEXTS[:1])[0]
    assert first.evidence["refund"][0] == "退款"  # rule keywords are the evidence


def test_none_only_when_no_intent_passes(hybrid: HybridClassifier) -> None:
    thresholds = hybrid.calibration.thresholds
    for p in hybrid.predict(TEXTS):
        passing = {n for n, s in p.scores.items() if s >= thresholds[n]}
        assert set(p.intents) == passing
        assert p.is_none == (not passing)


def test_thresholds_are_per_intent_and_saved(model_dir: Path, hybrid: HybridClassifier) -> None:
    saved = json.loads((model_dir / "calibration.json").read_text())
    assert saved["hybrid"]["rule_weight"] == 0.3 and saved["hybrid"]["neural_weight"] == 0.7
    assert set(saved["hybrid"]["intents"]) == set(default_taxonomy().names)
    assert set(saved["neural"]) == set(default_taxonomy().names)
    assert hybrid.calibration == Calibration.from_dict(saved["hybrid"]["intents"])


def _one_warning(action):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = action()
    relevant = [w for w in caught if "keyword rules only" in str(w.message)]
    assert len(relevant) == 1, [str(w.message) for w in caught]
    return result, str(relevant[0].message)


@pytest.mark.parametrize("damage", ["missing", "corrupt_weights", "corrupt_json", "corrupt_ngrams", "other_taxonomy"])
def test_broken_model_degrades_to_rules_with_one_warning(model_dir: Path, tmp_path: Path, damage: str) -> None:
    import shutil

    target = tmp_path / "m"
    shutil.copytree(model_dir, target)
    taxonomy = None
    if damage == "missing":
        shutil.rmtree(target)
    elif damage == "corrupt_weights":
        (target / "adapter_model.safetensors").write_bytes(b"\x00" * 64)
    elif damage == "corrupt_json":
        (target / "tokenflow_model.json").write_text("{", encoding="utf-8")
    elif damage == "corrupt_ngrams":
        (target / "ngrams.safetensors").write_bytes(b"\x00" * 64)
    else:
        taxonomy = Taxonomy.from_dict({"name": "hotel", "intents": {"parking": {"keywords": ["parking"]}}})

    def load_and_serve():  # type: ignore[no-untyped-def]
        clf = HybridClassifier.from_pretrained(target, taxonomy)
        return clf, clf.predict(["where can I park my car", "退款"]) + clf.predict(["refund"])

    (clf, predictions), message = _one_warning(load_and_serve)
    assert clf.is_degraded and len(predictions) == 3
    rules = RuleClassifier(clf.taxonomy)
    assert predictions[0] == rules.predict(["where can I park my car"])[0]
    with pytest.raises(ModelLoadError):
        HybridClassifier.from_pretrained(target, taxonomy, strict=True)


def test_inference_failure_serves_rules_with_one_warning(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clf = HybridClassifier.from_pretrained(model_dir)

    def boom(texts):  # type: ignore[no-untyped-def]
        raise RuntimeError("out of memory")

    monkeypatch.setattr(clf.neural, "raw_scores", boom)
    (first, second), message = _one_warning(lambda: (clf.predict(["退款"]), clf.predict(["退款"])))
    assert "out of memory" in message and first == second
    assert first[0].intents == ("refund",) and set(first[0].components) == {"rules"}


def test_a_one_off_inference_failure_keeps_the_model(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clf = HybridClassifier.from_pretrained(model_dir)
    real = clf.neural.raw_scores
    calls = []

    def fails_once(texts):  # type: ignore[no-untyped-def]
        calls.append(texts)
        if len(calls) == 1:
            raise RuntimeError("Already borrowed")
        return real(texts)

    monkeypatch.setattr(clf.neural, "raw_scores", fails_once)
    (first, second), _ = _one_warning(lambda: (clf.predict(["退款"]), clf.predict(["退款"])))
    assert set(first[0].components) == {"rules"}
    assert set(second[0].components) == {"rules", "neural", "ngrams"} and not clf.is_degraded


def test_a_model_that_keeps_failing_is_switched_off(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tokenflow_rag.classifiers.hybrid import MAX_FAILURES_IN_A_ROW

    clf = HybridClassifier.from_pretrained(model_dir)
    calls = []

    def boom(texts):  # type: ignore[no-untyped-def]
        calls.append(texts)
        raise RuntimeError("out of memory")

    monkeypatch.setattr(clf.neural, "raw_scores", boom)
    _one_warning(lambda: [clf.predict(["退款"]) for _ in range(MAX_FAILURES_IN_A_ROW + 2)])
    assert clf.is_degraded and "out of memory" in clf.degraded_reason
    assert len(calls) == MAX_FAILURES_IN_A_ROW  # not tried again once switched off


@pytest.mark.skipif(
    not (default_model_dir() / "tokenflow_model.json").is_file(), reason="no shipped model in this checkout"
)
def test_concurrent_predictions_match_sequential_ones() -> None:
    # The shipped model's fast tokenizer with long texts: the race needs encoding that takes a while.
    hybrid = load_default_hybrid()
    texts = ["退款多久到账? I also never got the SMS", "hello there", "库存", "x" * 3000, "how do I reset my password"]
    batches = [[texts[i % 5]] if i % 2 else [texts[j % 5] for j in range(i, i + 3)] for i in range(300)]
    expected = {tuple(b): hybrid.predict(b) for b in batches}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a failed inference would warn
        with ThreadPoolExecutor(max_workers=8) as pool:
            got = list(pool.map(hybrid.predict, batches))
    assert not hybrid.is_degraded
    for batch, predictions in zip(batches, got):
        assert [p.intents for p in predictions] == [p.intents for p in expected[tuple(batch)]]


def test_a_text_with_invalid_unicode_is_classified_by_the_whole_hybrid(hybrid: HybridClassifier) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a failed inference would warn
        (p,) = hybrid.predict(["refund \ud83d please"])
    assert set(p.components) == {"rules", "neural", "ngrams"} and not hybrid.is_degraded


def test_hybrid_config_validated() -> None:
    assert HybridConfig(rule_weight=0.5, neural_weight=0.5).rule_weight == 0.5
    with pytest.raises(ConfigError, match="must be 1"):
        HybridConfig(rule_weight=0.5)
    with pytest.raises(ConfigError, match=r"rule_weight must be a number in \[0, 1\]"):
        HybridConfig(rule_weight=-0.1, neural_weight=1.1)
    with pytest.raises(ConfigError, match="needs a neural model, rules, or both"):
        HybridClassifier()


def test_load_default_hybrid_other_taxonomy_is_rules() -> None:
    other = Taxonomy.from_dict({"name": "hotel", "intents": {"parking": {"keywords": ["parking"]}}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(load_default_hybrid(other), RuleClassifier)


def test_load_default_hybrid_broken_model_is_rules_with_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tokenflow_rag.classifiers.neural as neural_module

    monkeypatch.setattr(neural_module, "default_model_dir", lambda: tmp_path / "gone")
    clf, _ = _one_warning(load_default_hybrid)
    assert isinstance(clf, RuleClassifier)


@pytest.mark.skipif(
    not (default_model_dir() / "tokenflow_model.json").is_file(), reason="no shipped model in this checkout"
)
@pytest.mark.parametrize("quantize", [False, True])
def test_shipped_default_model_loads_offline_and_classifies(quantize: bool) -> None:
    clf = load_default_hybrid(quantize=quantize)
    assert isinstance(clf, HybridClassifier) and not clf.is_degraded
    assert clf.neural.quantized is quantize
    p = clf.predict(["退款多久能到账？另外我没收到短信通知", "How do I reset my password?", "今天天气怎么样"])
    assert set(p[0].intents) >= {"refund", "notification"}
    assert p[1].intents == ("user_auth",)
    assert p[2].is_none
    assert sum(f.stat().st_size for f in default_model_dir().iterdir()) < 8_000_000
    assert {f.suffix for f in default_model_dir().iterdir()} <= {".json", ".safetensors"}


def test_intent_calibration_identity_by_default() -> None:
    assert IntentCalibration().apply(0.3) == pytest.approx(0.3)


def test_fusion_weight_chosen_on_dev_is_the_best_one_there(model_dir: Path) -> None:
    hybrid = HybridClassifier.from_pretrained(model_dir, strict=True)
    dev = [
        *(LabeledText(t, ("refund",)) for t in ("退款多久到账", "我要退款", "refund please", "money back now")),
        *(LabeledText(t, ("payment",)) for t in ("支付失败", "付款不成功", "pay by card", "billing question")),
        *(LabeledText(t, ()) for t in ("你好", "hello", "天气不错", "good night")),
    ]
    report = hybrid.calibrate(dev, choose_weights=True)
    search = report["rule_weight"]["dev_micro_f1"]
    assert len(search) == 9 and report["hybrid"]["micro_f1"] == max(search.values())
    assert hybrid.config.rule_weight == report["rule_weight"]["chosen"]
    assert hybrid.config.rule_weight + hybrid.config.neural_weight == pytest.approx(1.0)
    best = [float(w) for w, f1 in search.items() if f1 == max(search.values())]
    assert hybrid.config.rule_weight == min(best, key=lambda w: abs(w - 0.3))  # ties: closest to configured
    assert "rule_weight" not in HybridClassifier.from_pretrained(model_dir, strict=True).calibrate(dev)


def test_recalibrate_keeps_the_previous_calibration_of_intents_too_rare_in_dev(model_dir: Path) -> None:
    hybrid = HybridClassifier.from_pretrained(model_dir, strict=True)
    old = hybrid.calibration.intents
    dev = [
        *(LabeledText(t, ("refund",)) for t in ("退款多久到账", "我要退款", "refund please", "money back now")),
        *(LabeledText(t, ()) for t in ("你好", "hello", "天气不错", "good night")),
    ]
    report = hybrid.recalibrate(dev)
    assert report["before"].keys() == report["hybrid"].keys() == {"micro_f1", "exact_match"}
    # Only refund has 3+ positives: it is fitted anew, every other intent keeps its old numbers.
    assert set(report["kept_previous"]) == set(hybrid.taxonomy.names) - {"refund"}
    assert report["uncalibrated"] == []
    for name in report["kept_previous"]:
        assert hybrid.calibration.intents[name] == old[name]
    fitted = Calibration.fit_matrix(
        np.array([[0.3 * r + 0.35 * net + 0.35 * ngr] for r, net, ngr in _refund_scores(hybrid, dev)]),
        np.array([[int("refund" in ex.intents)] for ex in dev]),
        ["refund"],
    )
    assert hybrid.calibration.intents["refund"] == fitted.intents["refund"]
    # New fusion weights make the old numbers meaningless: rare intents are then left uncalibrated.
    report = hybrid.recalibrate(dev, rule_weight=0.5)
    assert report["kept_previous"] == [] and set(report["uncalibrated"]) == set(hybrid.taxonomy.names) - {"refund"}
    assert hybrid.calibration.intents["payment"] == IntentCalibration()
    with pytest.raises(ConfigError, match="no examples"):
        hybrid.recalibrate([])


def _refund_scores(hybrid: HybridClassifier, dev: list[LabeledText]) -> list[tuple[float, float, float]]:
    """(rule, network, n-gram score) of "refund" for each dev text."""
    texts, column = [ex.text for ex in dev], hybrid.neural.labels.index("refund")
    network, ngrams = hybrid.neural.raw_scores(texts)[:, column], hybrid.ngrams.raw_scores(texts)[:, column]
    return [
        (hybrid.rules.scores(ex.text)[0]["refund"], float(net), float(ngr))
        for ex, net, ngr in zip(dev, network, ngrams)
    ]


def test_a_model_without_the_ngram_part_fuses_rules_and_network(model_dir: Path, tmp_path: Path) -> None:
    """Trained with ngrams=False (``tokenflow train --no-ngrams``), or saved before the n-gram part existed."""
    import shutil

    target = tmp_path / "no-ngrams"
    shutil.copytree(model_dir, target)
    for name in ("ngrams.json", "ngrams.safetensors"):
        (target / name).unlink()
    clf = HybridClassifier.from_pretrained(target, strict=True)
    assert clf.ngrams is None and clf.component_weights == {"rules": 0.3, "neural": 0.7}
    for p in clf.predict(TEXTS):
        assert set(p.components) == {"rules", "neural"}
        for name, score in p.scores.items():
            fused = 0.3 * p.components["rules"][name] + 0.7 * p.components["neural"][name]
            assert math.isclose(score, clf.calibration.intents[name].apply(fused), rel_tol=1e-9)
    # Half the model weight each, and saving keeps the part out.
    assert HybridClassifier.from_pretrained(model_dir, strict=True).component_weights == {
        "rules": 0.3,
        "neural": 0.35,
        "ngrams": 0.35,
    }
    clf.save_pretrained(tmp_path / "again")
    assert not (tmp_path / "again" / "ngrams.json").exists()


def test_trainer_without_ngrams(tmp_path: Path) -> None:
    backbone = make_tiny_backbone(tmp_path / "bert", "bert")
    config = NeuralConfig(backbone=str(backbone), cjk_vocab=60, max_length=16)
    args = TrainingArguments(epochs=1, batch_size=3, progress=False)
    hybrid = IntentTrainer(default_taxonomy(), config, args, ngrams=False).train(ROWS, ROWS[:4])
    assert hybrid.ngrams is None and hybrid.neural.metadata["ngrams"] is None
    assert "ngrams_at_0.5" not in hybrid.neural.metadata["dev"]


def test_ngram_model_must_match_the_network() -> None:
    from tokenflow_rag.classifiers.ngrams import CharNgramModel

    ngrams = CharNgramModel.fit(["refund me"], [["refund"]], ["refund"])
    with pytest.raises(ConfigError, match="n-gram model's intents"):
        HybridClassifier(None, RuleClassifier(default_taxonomy()), ngrams=ngrams)


def test_crossfit_predict_recalibrates_per_fold_and_restores_the_model(model_dir: Path) -> None:
    hybrid = HybridClassifier.from_pretrained(model_dir, strict=True)
    before = (hybrid.config, hybrid.calibration, hybrid.neural.calibration)
    dev = [
        *(LabeledText(t, ("refund",)) for t in ("退款多久到账", "我要退款", "refund please", "money back now")),
        *(LabeledText(t, ()) for t in ("你好", "hello", "天气不错", "good night")),
    ]
    intents, weights = hybrid.crossfit_predict(dev, 2, seed=1)
    assert len(intents) == len(dev) and len(weights) == 2
    assert all(set(i) <= set(hybrid.taxonomy.names) for i in intents)
    assert (hybrid.config, hybrid.calibration, hybrid.neural.calibration) == before
    assert hybrid.crossfit_predict(dev, 2, seed=1) == (intents, weights)  # seeded folds
    for folds in (1, 9, 2.0):
        with pytest.raises(ConfigError, match="folds must be an integer from 2 to the number of rows"):
            hybrid.crossfit_predict(dev, folds)  # type: ignore[arg-type]


def test_training_names_the_intents_it_has_no_or_few_examples_of() -> None:
    from tokenflow_rag.classifiers.trainer import _warn_about_rare_intents

    with pytest.warns(UserWarning) as caught:
        _warn_about_rare_intents(ROWS, default_taxonomy())
    messages = [str(w.message) for w in caught]
    assert (
        "no training example for intent(s) ['user_auth', 'inventory', 'order_management', 'promotion']"
        in (
            messages[0]  # taxonomy order
        )
    )
    assert "'refund': 2" in messages[1] and "'payment': 2" in messages[1]
