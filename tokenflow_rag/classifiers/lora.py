"""LoRA settings from a few knobs, and the attention layers they attach to, found automatically.

:class:`LoraSettings` holds the knobs people actually turn (rank, alpha, dropout, target layers);
:func:`build_lora_config` turns them into a ``peft.LoraConfig`` for sequence classification, so the
rest of peft's options keep their defaults instead of being re-implemented here.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from tokenflow_rag.errors import ConfigError

# Attention projections per model family, tried in order. Query + value is the pairing of the LoRA
# paper and what peft's own defaults use for these families.
KNOWN_TARGETS: tuple[tuple[str, ...], ...] = (
    ("query", "value"),  # BERT, RoBERTa, XLM-R, ELECTRA, MiniLM
    ("q_proj", "v_proj"),  # Qwen2/3, Llama, Mistral, Gemma, BART
    ("q_lin", "v_lin"),  # DistilBERT
    ("query_proj", "value_proj"),  # DeBERTa v2/v3
    ("Wqkv",),  # ModernBERT
    ("c_attn",),  # GPT-2
)


@dataclass(frozen=True)
class LoraSettings:
    """The LoRA knobs of a neural intent classifier.

    Args:
        r: Rank of the low-rank update.
        alpha: Scaling numerator (the update is multiplied by ``alpha / r``).
        dropout: Dropout on the LoRA input during training.
        target_modules: Names of the linear layers to adapt, each the end of a layer's dotted path as
            peft matches them (``"query"``; ``"intermediate.dense"`` where a last name such as ``dense``
            is shared); ``None`` finds the attention query and value projections of BERT-like and
            Qwen/Llama-like backbones (see :data:`KNOWN_TARGETS`).

    >>> LoraSettings(r=4).alpha, LoraSettings(target_modules=["q_proj"]).target_modules
    (16, ('q_proj',))
    """

    r: int = 8
    alpha: int = 16
    dropout: float = 0.1
    target_modules: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.r, int) or isinstance(self.r, bool) or self.r < 1:
            raise ConfigError(f"r must be a positive integer (e.g. 8), got {self.r!r}")
        if not isinstance(self.alpha, int | float) or isinstance(self.alpha, bool) or self.alpha <= 0:
            raise ConfigError(f"alpha must be a positive number (e.g. 16 = 2 * r), got {self.alpha!r}")
        if not isinstance(self.dropout, int | float) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.target_modules is not None:
            if isinstance(self.target_modules, str) or not isinstance(self.target_modules, Sequence):
                raise ConfigError(
                    f"target_modules must be a list of layer names like ['query', 'value'], got {self.target_modules!r}"
                )
            names = tuple(self.target_modules)
            if not names or not all(isinstance(n, str) and n for n in names):
                raise ConfigError(f"target_modules must be non-empty layer names, got {self.target_modules!r}")
            object.__setattr__(self, "target_modules", names)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the inverse of :meth:`from_dict`)."""
        out = asdict(self)
        out["target_modules"] = list(self.target_modules) if self.target_modules else None
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoraSettings:
        """Build from a dict; unknown keys are dropped with a warning (peft's rule for saved configs)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            warnings.warn(f"ignoring unknown LoRA setting(s) {unknown}; known: {sorted(known)}", stacklevel=2)
        return cls(**{k: v for k, v in data.items() if k in known})


def linear_layer_paths(model: Any) -> list[str]:
    """Dotted paths of the model's ``torch.nn.Linear`` layers (the candidates for LoRA)."""
    import torch

    return [
        name
        for name, module in model.named_modules()
        # transformers' GPT-2 uses its own Conv1D for c_attn; peft adapts it too.
        if isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D"
    ]


def linear_layer_names(model: Any) -> list[str]:
    """Distinct last name parts of the model's linear layers."""
    return sorted({path.rsplit(".", 1)[-1] for path in linear_layer_paths(model)})


def _matches(target: str, path: str) -> bool:
    """peft's rule for a plain target name: the whole path, or its end after a dot."""
    return path == target or path.endswith("." + target)


def find_target_modules(model: Any) -> tuple[str, ...]:
    """The attention projections to adapt in ``model``, from :data:`KNOWN_TARGETS`.

    Raises:
        ConfigError: None of the known families matches; the message lists the linear layers found,
            to pick ``target_modules`` from.
    """
    available = set(linear_layer_names(model))
    for family in KNOWN_TARGETS:
        if set(family) <= available:
            return family
    raise ConfigError(
        f"cannot find attention projections to put LoRA on in {type(model).__name__}; "
        f"pass target_modules=[...] naming some of its linear layers: {', '.join(sorted(available)) or '(none)'}"
    )


def pooler_modules(model: Any) -> list[str]:
    """The pooler of BERT-like backbones (a dense layer over [CLS]), trained in full along with the head.

    Sentence-embedding checkpoints such as all-MiniLM-L6-v2 were trained with mean pooling, so their
    [CLS] pooler was never tuned for sentence meaning; training it (148k weights for MiniLM) makes the
    classifier converge in fewer epochs. Decoder backbones (Qwen) have no pooler: nothing is added.
    """
    return ["pooler"] if any(name.rsplit(".", 1)[-1] == "pooler" for name, _ in model.named_modules()) else []


def build_lora_config(settings: LoraSettings, model: Any, *, token_indices: Sequence[int] = ()) -> Any:
    """A ``peft.LoraConfig`` for multi-label sequence classification on ``model``.

    Args:
        settings: The knobs.
        model: The backbone with its classification head (target layers are looked up on it).
        token_indices: Rows of the input embedding to train as well (the characters added to the
            vocabulary); peft stores only these rows, so the adapter stays small.
    """
    from tokenflow_rag._optional import require

    peft = require("peft")
    targets = settings.target_modules or find_target_modules(model)
    paths = linear_layer_paths(model)
    missing = [t for t in targets if not any(_matches(t, path) for path in paths)]
    if missing:
        raise ConfigError(
            f"target_modules {missing} are not linear layers of {type(model).__name__}; "
            f"choose from: {', '.join(linear_layer_names(model))} (or the end of a dotted path where "
            "a name is shared, e.g. intermediate.dense)"
        )
    return peft.LoraConfig(
        task_type=peft.TaskType.SEQ_CLS,  # also keeps the new classification head trainable and saved
        modules_to_save=pooler_modules(model) or None,
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(targets),
        trainable_token_indices=list(token_indices) or None,
    )
