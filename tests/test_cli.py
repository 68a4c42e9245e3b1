"""The tokenflow command line: demo, index, query, and clean errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tokenflow_rag.cli import main

REPO = Path(__file__).resolve().parents[1]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def corpus(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "payments.md").write_text(
        "# Payments\n\n## Refund window\nRefunds are returned within 5 days.\n\n"
        "## 支付方式\n支持支付宝和微信支付。\n\n## About\nShopLane was founded in 2020.\n",
        encoding="utf-8",
    )
    return docs


def test_index_then_query_json(capsys, tmp_path, corpus):
    out_dir = tmp_path / "idx"
    code, out, _ = run(capsys, "index", str(corpus), "--out", str(out_dir), "--embedder", "hashing", "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["chunks"] == 3 and summary["tagged"] == 2

    code, out, _ = run(capsys, "query", str(out_dir), "how long do refunds take", "--json")
    assert code == 0
    data = json.loads(out)
    for key in ("intents", "k", "tokens", "baseline_tokens", "chunks"):
        assert key in data
    assert data["intents"] == ["refund"]
    assert data["chunks"][0]["id"] == "payments#refund-window"
    assert set(data["chunks"][0]) >= {"id", "text", "score", "intents"}

    code, out, _ = run(capsys, "query", str(out_dir), "支付方式有哪些", "-k", "1")
    assert code == 0 and "payments#支付方式" in out and "intents: payment" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["query", "/no/such/index", "refund"], "does not exist"),
        (["index", "/no/such/corpus", "--out", "{tmp}/idx"], "does not exist"),
    ],
)
def test_errors_are_one_line_without_traceback(capsys, tmp_path, argv, message):
    code, out, err = run(capsys, *(a.format(tmp=tmp_path) for a in argv))
    assert code == 2
    assert message in err and "Traceback" not in err


def test_empty_query_is_a_clear_error(capsys, tmp_path, corpus):
    run(capsys, "index", str(corpus), "--out", str(tmp_path / "idx"), "--embedder", "hashing")
    code, _, err = run(capsys, "query", str(tmp_path / "idx"), "   ")
    assert code == 2 and "query is empty" in err


def test_console_script_reports_errors_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "tokenflow_rag.cli", "query", str(tmp_path / "missing"), "x"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr


def test_os_errors_are_one_line_without_traceback(capsys, tmp_path, corpus, monkeypatch):
    # An --out under a file is now refused up front (exit 2, tests/test_cli_args.py); an OSError met while
    # working (here: reading the corpus) is still one line and exit 1.
    import errno

    def unreadable(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "a_file"))

    monkeypatch.setattr("tokenflow_rag.corpus.load_corpus", unreadable)
    code, _, err = run(capsys, "index", str(corpus), "--out", str(tmp_path / "idx"), "--embedder", "hashing")
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("tokenflow index: error: Permission denied: ") and "a_file" in err
    assert "Traceback" not in err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full to fill the disk under stdout")
def test_disk_full_on_stdout_is_one_line_without_traceback():
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "tokenflow_rag.cli", "classify", "refund", "--json"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert proc.returncode == 1
    assert proc.stderr == "tokenflow classify: error: No space left on device\n"


def test_closed_pipe_on_stdout_exits_quietly():
    # `tokenflow ... | head -1`: the reader closes the pipe early; no error line, no traceback.
    script = (
        "import os, sys; r, w = os.pipe(); os.close(r); os.dup2(w, 1); "
        "from tokenflow_rag.cli import main; sys.exit(main(['classify', 'refund', '--mode', 'rules', '--json']))"
    )
    proc = subprocess.run([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 1
    assert proc.stderr == ""


def test_demo_on_sample_corpus_keeps_recall_and_saves_tokens(capsys):
    code, out, _ = run(capsys, "demo", "--json", "--corpus", str(REPO / "sample_corpus"))
    assert code == 0
    report = json.loads(out)
    totals = report["totals"]
    assert totals["queries"] == len(report["rows"]) >= 60
    assert totals["gold_recall"] >= totals["baseline_gold_recall"]
    assert totals["tokens"] < totals["baseline_tokens"]
    row = report["rows"][0]
    assert {"intents", "k", "tokens", "baseline_tokens", "found", "baseline_found"} <= set(row)
