"""Training data for the neural classifier: strict reading against a taxonomy, and the dev split.

Evaluation readers (:mod:`tokenflow_rag.evaluation.datasets`) are forgiving about spelling; a training
set is not, because a typo there silently becomes a wrong model. :func:`load_training_data` reads
JSONL (``{"text": ..., "intents": [...]}``, ``[]`` = no intent) or CSV (header ``text,intents``,
intents separated by ``|`` or ``;``) and rejects, naming the file, the row and the field:

* an intent the taxonomy does not define,
* an empty or missing text,
* a label list given as a string (``"intents": "payment"``),
* a text that appears twice,
* a CSV whose header is not ``text,intents``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tokenflow_rag.errors import ConfigError, DataFormatError
from tokenflow_rag.evaluation.datasets import LabeledText
from tokenflow_rag.taxonomy import NONE_INTENT, Taxonomy

_CSV_HEADER = ["text", "intents"]
_CSV_SEP = re.compile(r"[|;]")
_SPACES = re.compile(r"\s+")


def load_training_data(paths: str | Path | Sequence[str | Path], taxonomy: Taxonomy) -> list[LabeledText]:
    """Read and validate labelled training texts from JSONL or CSV files (by extension).

    Args:
        paths: One file or several, read in order; ``.csv`` files are CSV, anything else JSONL.
        taxonomy: The intents labels must come from (``"none"`` is accepted and means no intent).

    Returns:
        The examples in file order; ``intents`` sorted, ``()`` for no intent.

    Raises:
        DataFormatError: A file is missing or malformed; the message names file, row and field.

    >>> from tokenflow_rag.taxonomy import default_taxonomy
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "train.jsonl"
    >>> _ = path.write_text('{"text": "refund please", "intents": ["refund"]}', encoding="utf-8")
    >>> load_training_data(path, default_taxonomy())[0].intents
    ('refund',)
    """
    files = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    if not files:
        raise DataFormatError("no training files given; pass at least one .jsonl or .csv file")
    examples: list[LabeledText] = []
    first_seen: dict[str, str] = {}
    for path in files:
        if not path.is_file():
            raise DataFormatError(f"{path}: training file does not exist")
        try:
            raw = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DataFormatError(f"{path}: byte {exc.start} is not valid UTF-8; save the file as UTF-8") from exc
        rows = _csv_rows(path, raw) if path.suffix.lower() == ".csv" else _jsonl_rows(path, raw)
        for where, text, intents in rows:
            example = _validate(where, text, intents, taxonomy)
            key = _SPACES.sub(" ", example.text.strip().lower())
            if key in first_seen:
                raise DataFormatError(
                    f"{where}, field 'text': duplicate of {first_seen[key]} ({example.text[:40]!r}); "
                    "remove one of the two rows (merge their intents if they differ)"
                )
            first_seen[key] = where
            examples.append(example)
    if not examples:
        raise DataFormatError(f"{', '.join(map(str, files))}: no training rows found")
    return examples


def _jsonl_rows(path: Path, raw: str) -> Iterable[tuple[str, Any, Any]]:
    for lineno, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}: line {lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFormatError(
                f"{where}: invalid JSON ({exc.msg}, column {exc.colno}); one object per line"
            ) from exc
        if not isinstance(obj, dict):
            raise DataFormatError(
                f'{where}: expected an object like {{"text": ..., "intents": [...]}}, got {type(obj).__name__}'
            )
        if "text" not in obj:
            raise DataFormatError(f"{where}, field 'text': missing; every row needs a text")
        if "intents" not in obj:
            raise DataFormatError(f"{where}, field 'intents': missing; add \"intents\": [...] ([] for no intent)")
        yield where, obj["text"], obj["intents"]


def _csv_rows(path: Path, raw: str) -> Iterable[tuple[str, Any, Any]]:
    reader = csv.reader(io.StringIO(raw, newline=""))
    header = next(reader, None)
    if header is None or [h.strip().lower() for h in header] != _CSV_HEADER:
        raise DataFormatError(
            f"{path}: line 1, header: got {header!r}; the header must be exactly 'text,intents' "
            "(intents separated by '|' or ';', empty for no intent)"
        )
    for row in reader:
        where = f"{path}: line {reader.line_num}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise DataFormatError(
                f"{where}: {len(row)} columns, expected 2 (text,intents); quote texts that contain commas"
            )
        yield where, row[0], [p.strip() for p in _CSV_SEP.split(row[1]) if p.strip()]


def _validate(where: str, text: Any, intents: Any, taxonomy: Taxonomy) -> LabeledText:
    if not isinstance(text, str):
        raise DataFormatError(f"{where}, field 'text': expected a string, got {type(text).__name__}")
    if not text.strip():
        raise DataFormatError(f"{where}, field 'text': empty text; remove the row or write the query")
    if isinstance(intents, str):
        raise DataFormatError(
            f"{where}, field 'intents': got the string {intents!r}; write a list, e.g. [{json.dumps(intents)}]"
        )
    if not isinstance(intents, list) or not all(isinstance(i, str) for i in intents):
        raise DataFormatError(f"{where}, field 'intents': expected a list of intent names, got {intents!r}")
    names = [i.strip() for i in intents]
    unknown = [n for n in names if n not in taxonomy and n != NONE_INTENT]
    if unknown:
        raise DataFormatError(
            f"{where}, field 'intents': unknown intent(s) {', '.join(map(repr, unknown))}; "
            f"taxonomy {taxonomy.name!r} defines: {', '.join(taxonomy.names)} (use [] for no intent)"
        )
    if NONE_INTENT in names and len(set(names)) > 1:
        raise DataFormatError(f"{where}, field 'intents': 'none' cannot be combined with other intents")
    return LabeledText(text.strip(), tuple(names))


def split_dev(
    examples: Sequence[LabeledText], fraction: float, *, seed: int
) -> tuple[list[LabeledText], list[LabeledText]]:
    """Split into ``(train, dev)``, stratified by label set so dev holds every intent and combination.

    Each label set (``("payment",)``, ``("payment", "refund")``, ``()`` ...) contributes
    ``round(fraction * count)`` examples to dev, chosen by a private generator seeded with ``seed``;
    label sets seen only once stay in train. The order inside each part follows the input.

    >>> rows = [LabeledText(f"q{i}", ("payment",) if i % 2 else ()) for i in range(10)]
    >>> train, dev = split_dev(rows, 0.2, seed=0)
    >>> len(train), len(dev)
    (8, 2)
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"dev fraction must be in (0, 1), e.g. 0.15; got {fraction!r}")
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, ex in enumerate(examples):
        groups.setdefault(ex.intents, []).append(i)
    rng = random.Random(seed)
    dev_idx: set[int] = set()
    for key in sorted(groups):
        members = groups[key]
        take = round(fraction * len(members)) if len(members) > 1 else 0
        dev_idx.update(rng.sample(members, take))
    train = [ex for i, ex in enumerate(examples) if i not in dev_idx]
    dev = [ex for i, ex in enumerate(examples) if i in dev_idx]
    if not train or not dev:
        raise ConfigError(
            f"cannot split {len(examples)} examples into train and dev with fraction {fraction}; "
            "add more examples or change the dev fraction"
        )
    return train, dev


def fingerprint(examples: Sequence[LabeledText]) -> str:
    """SHA-256 of the examples (text and labels), saved with a model to tell which data made it."""
    digest = hashlib.sha256()
    for ex in examples:
        digest.update(json.dumps([ex.text, list(ex.intents)], ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()
