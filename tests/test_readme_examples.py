"""The README's copy-paste examples run as written, offline: the code blocks are taken from README.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(section: str) -> str:
    """The first ```python block under the README heading ``## <section>``."""
    text = README.read_text(encoding="utf-8")
    part = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", part, re.S)
    assert match, f"no python block under '## {section}'"
    return match.group(1)


def _run(section: str, capsys, monkeypatch, tmp_path) -> str:
    monkeypatch.chdir(tmp_path)  # an example that writes files writes them here
    exec(compile(_block(section), f"README.md ## {section}", "exec"), {"__name__": "__main__"})
    return capsys.readouterr().out


def test_llamaindex_example(capsys, monkeypatch, tmp_path):
    pytest.importorskip("llama_index.core")
    out = _run("LlamaIndex", capsys, monkeypatch, tmp_path)
    sources = [line for line in out.splitlines() if line.startswith("[")]
    assert len(sources) == 3 and all("'refund'" in line for line in sources)
    assert "{'intents': ['refund'], 'k': 3, " in out and "saved" in out


def test_langchain_example(capsys, monkeypatch, tmp_path):
    pytest.importorskip("langchain_core")
    out = _run("LangChain", capsys, monkeypatch, tmp_path)
    assert out.splitlines()[0] == "Refunds reach your card within 5 business days."
    sources = [line for line in out.splitlines() if line.startswith("[")]
    assert len(sources) == 3 and all("'refund'" in line for line in sources)
    assert "explicit k from the caller" in out and "3 queries" in out


def test_quickstart_example(capsys, monkeypatch, tmp_path):
    repo = README.parent
    code = _block("Quickstart (Python)").replace('"sample_corpus/docs"', repr(str(repo / "sample_corpus" / "docs")))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md quickstart", "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    assert "tokens instead of" in out and (tmp_path / "my_index" / "tokenflow_index.json").is_file()
