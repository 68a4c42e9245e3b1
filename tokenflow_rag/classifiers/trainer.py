"""Training the neural classifier and calibrating the hybrid on held-out dev data.

:class:`IntentTrainer` runs a plain PyTorch loop (no ``transformers.Trainer``: the loop is 40 lines and
keeps the dependency surface small): AdamW over the LoRA matrices, the head and the added character
rows, linear warm-up and decay, binary cross-entropy over one sigmoid per intent, evaluation on dev
after every epoch, early stopping on dev micro-F1, and the best epoch's weights restored at the end.
The same data and seed give the same model (seeded initialisation, shuffling and dropout).

Beside the network it fits the character n-gram model (:mod:`.ngrams`, seconds) on the same training
rows, then two calibrations on the dev split (:mod:`.calibration`): one for the neural scores alone
and one for the fused hybrid score, and returns a ready :class:`~.hybrid.HybridClassifier`.

The shipped default model is made with exactly::

    tokenflow train tokenflow_rag/data/intents_train.jsonl --dev tokenflow_rag/data/intents_dev.jsonl \
        --dev-fraction 0.15 --out tokenflow_rag/data/models/default --seed 13 --epochs 12 --rule-weight auto
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tokenflow_rag._optional import require
from tokenflow_rag.classifiers.backbone import resolve_device
from tokenflow_rag.classifiers.hybrid import HybridClassifier, HybridConfig
from tokenflow_rag.classifiers.neural import NeuralClassifier, NeuralConfig
from tokenflow_rag.classifiers.ngrams import CharNgramModel
from tokenflow_rag.classifiers.rules import RuleClassifier
from tokenflow_rag.classifiers.training_data import fingerprint, split_dev
from tokenflow_rag.errors import ConfigError
from tokenflow_rag.evaluation.datasets import LabeledText
from tokenflow_rag.taxonomy import Taxonomy, load_taxonomy

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingArguments:
    """Knobs of one training run.

    Args:
        epochs: Most epochs to run (early stopping usually ends sooner).
        batch_size: Examples per optimisation step.
        learning_rate: Peak learning rate of the LoRA matrices and the head.
        embedding_learning_rate: Peak learning rate of the added character rows (they start untrained,
            so they move faster than the adapters).
        weight_decay: AdamW weight decay (never applied to the character rows: unseen characters
            must keep their initialisation, not shrink to zero).
        warmup_ratio: Share of the steps with a linearly rising learning rate.
        patience: Epochs without a better dev micro-F1 before stopping.
        dev_fraction: Share of the data held out for early stopping and calibration.
        seed: Seed of everything random; same data + seed = same model.
        device: ``"auto"`` (CUDA, then MPS, else CPU) or a torch device string.
        progress: Show a progress bar (tqdm, on stderr).

    >>> TrainingArguments(epochs=3).patience
    3
    """

    epochs: int = 8
    batch_size: int = 32
    learning_rate: float = 5e-3
    embedding_learning_rate: float = 5e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    patience: int = 3
    dev_fraction: float = 0.15
    seed: int = 13
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        for name in ("learning_rate", "embedding_learning_rate"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 < value < 1:
                raise ConfigError(f"{name} must be in (0, 1), e.g. 2e-3; got {value!r}")
        if not 0 <= self.weight_decay < 1:
            raise ConfigError(f"weight_decay must be in [0, 1), got {self.weight_decay!r}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}")
        if not 0 < self.dev_fraction < 1:
            raise ConfigError(f"dev_fraction must be in (0, 1), e.g. 0.15; got {self.dev_fraction!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ConfigError(f"seed must be an integer, got {self.seed!r}")


class IntentTrainer:
    """Trains a neural classifier on labelled texts and calibrates the hybrid around it.

    Args:
        taxonomy: The intents to learn (default: the business taxonomy).
        config: Backbone and LoRA knobs of the neural part.
        args: Optimisation knobs.
        hybrid: Fusion weights of the hybrid.
        choose_weights: Choose the fusion weights on dev instead (see :meth:`.HybridClassifier.calibrate`);
            ``hybrid`` then only breaks ties.
        ngrams: Also fit the character n-gram model and average it with the network in the hybrid.

    >>> trainer = IntentTrainer(args=TrainingArguments(epochs=1, progress=False))  # doctest: +SKIP
    >>> hybrid = trainer.train(examples)  # doctest: +SKIP
    >>> hybrid.save_pretrained("models/mine")  # doctest: +SKIP
    """

    def __init__(
        self,
        taxonomy: Taxonomy | str | None = None,
        config: NeuralConfig | None = None,
        args: TrainingArguments | None = None,
        hybrid: HybridConfig | None = None,
        *,
        choose_weights: bool = False,
        ngrams: bool = True,
    ) -> None:
        self.taxonomy = load_taxonomy(taxonomy)
        self.config = config or NeuralConfig()
        self.args = args or TrainingArguments()
        self.hybrid_config = hybrid or HybridConfig()
        self.choose_weights = choose_weights
        self.ngrams = ngrams
        self.history: list[dict[str, float]] = []

    def train(self, examples: Sequence[LabeledText], dev: Sequence[LabeledText] | None = None) -> HybridClassifier:
        """Train on ``examples`` (split off a dev part unless ``dev`` is given); return the calibrated hybrid."""
        torch = require("torch")
        if dev is None:
            train, dev = split_dev(examples, self.args.dev_fraction, seed=self.args.seed)
        else:
            train, dev = list(examples), list(dev)
        if not train or not dev:
            raise ConfigError("training needs at least one train and one dev example")
        _warn_about_rare_intents(train, self.taxonomy)
        start = time.perf_counter()
        neural = NeuralClassifier(self.taxonomy, self.config, device=self.args.device).build(seed=self.args.seed)
        model = neural.trainable_model
        device = resolve_device(self.args.device)
        texts = [ex.text for ex in train]
        lengths = [
            len(ids) for ids in neural._tokenizer(texts, truncation=True, max_length=neural._max_length)["input_ids"]
        ]
        targets = torch.tensor(self._targets(train, neural.labels), dtype=torch.float32)
        optimizer = torch.optim.AdamW(self._param_groups(model))
        steps_per_epoch = math.ceil(len(train) / self.args.batch_size)
        total = steps_per_epoch * self.args.epochs
        warmup = max(1, int(self.args.warmup_ratio * total))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))
        )
        generator = torch.Generator().manual_seed(self.args.seed)
        best_f1, best_state, best_epoch, stale = -1.0, None, 0, 0
        bar = _progress(total, self.args.progress)
        self.history = []
        for epoch in range(1, self.args.epochs + 1):
            model.train()
            losses = []
            for idx in _length_bucketed_batches(lengths, self.args.batch_size, generator):
                batch = neural._tokenizer(
                    [texts[i] for i in idx],
                    truncation=True,
                    max_length=neural._max_length,
                    padding=True,
                    return_tensors="pt",
                ).to(device)
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets[idx].to(device))
                loss.backward()
                torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(loss.item())
                bar.update(1)
            dev_f1 = _micro_f1(neural.raw_scores([ex.text for ex in dev]) >= 0.5, self._targets(dev, neural.labels))
            self.history.append({"epoch": epoch, "loss": float(np.mean(losses)), "dev_micro_f1": dev_f1})
            bar.set_postfix(epoch=epoch, loss=f"{np.mean(losses):.4f}", dev_f1=f"{dev_f1:.4f}")
            logger.info("epoch %d: loss %.4f, dev micro-F1 %.4f", epoch, np.mean(losses), dev_f1)
            if dev_f1 > best_f1:
                best_f1, best_epoch, stale = dev_f1, epoch, 0
                best_state = {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}
            else:
                stale += 1
                if stale >= self.args.patience:
                    logger.info(
                        "early stop after epoch %d: best dev micro-F1 %.4f at epoch %d", epoch, best_f1, best_epoch
                    )
                    break
        bar.close()
        if best_state is not None:
            with torch.no_grad():
                for name, param in model.named_parameters():
                    if name in best_state:
                        param.copy_(best_state[name])
        neural.finalize()
        ngrams = None
        if self.ngrams:
            ngrams = CharNgramModel.fit(texts, [ex.intents for ex in train], neural.labels)
        hybrid = HybridClassifier(neural, RuleClassifier(self.taxonomy), self.hybrid_config, ngrams=ngrams)
        report = hybrid.calibrate(dev, choose_weights=self.choose_weights)
        neural.metadata = {
            "seed": self.args.seed,
            "args": {k: v for k, v in asdict(self.args).items() if k != "progress"},
            "hybrid": asdict(hybrid.config),
            "fusion_weights": "chosen on dev" if self.choose_weights else "configured",
            "ngrams": len(ngrams.index) if ngrams is not None else None,
            "train_examples": len(train),
            "dev_examples": len(dev),
            "data_sha256": fingerprint([*train, *dev]),
            "epochs_run": len(self.history),
            "best_epoch": best_epoch,
            "history": self.history,
            "dev": report,
            "train_seconds": round(time.perf_counter() - start, 1),
        }
        return hybrid

    def _param_groups(self, model: Any) -> list[dict[str, Any]]:
        rows, decay, no_decay = [], [], []
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            if "trainable_tokens_delta" in name:
                rows.append(param)
            elif param.ndim < 2:  # biases and norms: decaying them only hurts
                no_decay.append(param)
            else:
                decay.append(param)
        groups = [
            {"params": decay, "lr": self.args.learning_rate, "weight_decay": self.args.weight_decay},
            {"params": no_decay, "lr": self.args.learning_rate, "weight_decay": 0.0},
            {"params": rows, "lr": self.args.embedding_learning_rate, "weight_decay": 0.0},
        ]
        return [g for g in groups if g["params"]]

    def _targets(self, examples: Sequence[LabeledText], labels: Sequence[str]) -> np.ndarray:
        index = {name: i for i, name in enumerate(labels)}
        out = np.zeros((len(examples), len(labels)), dtype=np.float32)
        for row, ex in enumerate(examples):
            for name in ex.intents:
                out[row, index[name]] = 1.0
        return out


def _length_bucketed_batches(lengths: Sequence[int], batch_size: int, generator: Any) -> list[list[int]]:
    """Shuffled batches of similar-length texts: about half the padding of random batches, same randomness.

    The examples are shuffled, cut into pools of 16 batches, each pool sorted by length and cut into
    batches, and the batch order shuffled again, so every epoch still sees different neighbours.
    """
    import torch

    order = torch.randperm(len(lengths), generator=generator).tolist()
    pool = 16 * batch_size
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches.extend(chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size))
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def _micro_f1(pred: np.ndarray, gold: np.ndarray) -> float:
    tp = float((pred & (gold > 0)).sum())
    denom = float(pred.sum() + (gold > 0).sum())
    return 2 * tp / denom if denom else 1.0


def _progress(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="training", unit="step", disable=not enabled, leave=False)


FEW_EXAMPLES = 5
"""Below this many training examples an intent is reported as too rare for the network to learn."""


def _warn_about_rare_intents(train: Sequence[LabeledText], taxonomy: Taxonomy) -> None:
    """Say which intents the network will hardly learn: a dev score alone hides them (it has none of them either)."""
    counts = Counter(name for ex in train for name in ex.intents)
    missing = [name for name in taxonomy.names if counts[name] == 0]
    rare = {name: counts[name] for name in taxonomy.names if 0 < counts[name] < FEW_EXAMPLES}
    if missing:
        warnings.warn(
            f"no training example for intent(s) {missing}: the network cannot learn them and only their keyword "
            "rules will find them; add examples, or drop them from the taxonomy",
            stacklevel=3,
        )
    if rare:
        warnings.warn(
            f"few training examples for intent(s) {rare} (fewer than {FEW_EXAMPLES}): expect them to be "
            "found poorly; add examples",
            stacklevel=3,
        )
