"""Token counting with a real tokenizer: cl100k_base offline, or the target LLM's own tokenizer."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Protocol, runtime_checkable

from tokenflow_rag._optional import require
from tokenflow_rag.errors import ConfigError, MissingDependencyError


@runtime_checkable
class TokenCounter(Protocol):
    """Counts the tokens a text costs in a prompt."""

    name: str

    def count(self, text: str) -> int: ...


class TiktokenCounter:
    """OpenAI tiktoken encodings; ``cl100k_base`` works offline from the file llama-index-core ships.

    >>> TiktokenCounter().count("hello world")
    2
    """

    def __init__(self, encoding: str = "cl100k_base") -> None:
        self.name = encoding
        _point_tiktoken_at_bundled_cache()
        tiktoken = require("tiktoken")
        try:
            self._encoding = tiktoken.get_encoding(encoding)
        except Exception as exc:  # tiktoken raises bare errors when it cannot download
            raise ConfigError(
                f"tiktoken encoding {encoding!r} is not available offline; use 'cl100k_base' "
                "(bundled with llama-index-core) or an HF tokenizer path"
            ) from exc

    def count(self, text: str) -> int:
        return len(self._encoding.encode(text, disallowed_special=()))


class HFTokenCounter:
    """The tokenizer of a Hugging Face model (a local path, or a hub id already in the local cache)."""

    def __init__(self, name_or_path: str) -> None:
        self.name = name_or_path
        transformers = require("transformers")
        try:
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(name_or_path)
        except OSError as exc:
            raise ConfigError(f"cannot load tokenizer {name_or_path!r}: {exc}") from exc

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False))


class CallableTokenCounter:
    """Wrap any ``str -> int`` function (e.g. a vendor SDK's counter)."""

    def __init__(self, fn: Callable[[str], int], name: str = "custom") -> None:
        self.name = name
        self._fn = fn

    def count(self, text: str) -> int:
        return int(self._fn(text))


def _point_tiktoken_at_bundled_cache() -> None:
    if os.environ.get("TIKTOKEN_CACHE_DIR"):
        return
    spec = find_spec("llama_index.core")
    if spec is None or spec.origin is None:
        raise MissingDependencyError(
            "counting cl100k tokens offline needs the tiktoken file bundled with llama-index-core; "
            "run: pip install llama-index-core"
        )
    os.environ["TIKTOKEN_CACHE_DIR"] = str(Path(spec.origin).parent / "_static" / "tiktoken_cache")


@lru_cache(maxsize=8)
def get_token_counter(name: str = "cl100k_base") -> TokenCounter:
    """A cached counter by name: a tiktoken encoding, or ``hf:<path-or-id>`` for an HF tokenizer."""
    if name.startswith("hf:"):
        return HFTokenCounter(name[3:])
    return TiktokenCounter(name)
