"""Reading a corpus directory into chunks: Markdown split at ``##`` headings, text files, JSON lines."""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

from tokenflow_rag.errors import DataFormatError
from tokenflow_rag.types import Chunk

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = {".md", ".markdown", ".txt"}
JSONL_SUFFIXES = {".jsonl"}
MAX_CHUNK_CHARS = 2000


def slugify(heading: str) -> str:
    """Heading -> id fragment; keeps letters of any script (``## 退款时效`` -> ``退款时效``)."""
    return re.sub(r"[^\w]+", "-", heading.lower()).strip("-")


def load_corpus(path: str | Path) -> list[Chunk]:
    """Load every supported file under ``path`` (a directory or one file), in sorted order.

    Markdown: each ``## Heading`` section is one chunk with id ``<relative path without suffix>#<slug>``
    (text before the first ``##`` is a chunk too, if any). ``.txt``: paragraphs packed into chunks of
    up to 2,000 characters, ids ``<path>#<n>``. ``.jsonl``: one ``{"id", "text", "metadata"?}`` per line.

    Files that are empty, binary or not UTF-8 are skipped with one warning each (the rest still
    loads); a corpus that yields no chunk at all raises :class:`DataFormatError`.
    """
    root = Path(path)
    if not root.exists():
        raise DataFormatError(f"corpus path {root} does not exist")
    files = (
        [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    )
    base = root.parent if root.is_file() else root
    chunks: list[Chunk] = []
    skipped: list[str] = []
    for file in files:
        suffix = file.suffix.lower()
        if suffix not in TEXT_SUFFIXES | JSONL_SUFFIXES:
            continue
        rel = file.relative_to(base).with_suffix("").as_posix()
        try:
            text = _read_text(file)
        except DataFormatError as exc:
            skipped.append(str(exc))
            continue
        if suffix in JSONL_SUFFIXES:
            chunks.extend(_jsonl_chunks(file, text))
        elif suffix == ".txt":
            chunks.extend(_text_chunks(rel, text, source=str(file.relative_to(base))))
        else:
            chunks.extend(_markdown_chunks(rel, text, source=str(file.relative_to(base))))
    for message in skipped:
        warnings.warn(f"skipped {message}", stacklevel=2)
    if not chunks:
        raise DataFormatError(
            f"no chunks found under {root}: it needs .md, .txt or .jsonl files with text"
            + (f" ({len(skipped)} file(s) skipped as unreadable)" if skipped else "")
        )
    ids = [c.id for c in chunks]
    dupes = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
    if dupes:
        raise DataFormatError(f"duplicate chunk id(s) in {root}: {dupes[:5]}; make headings unique within a file")
    return chunks


def _read_text(file: Path) -> str:
    raw = file.read_bytes()
    if b"\x00" in raw[:8192]:
        raise DataFormatError(f"{file}: binary file (contains NUL bytes)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFormatError(
            f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start}); convert it to UTF-8"
        ) from None
    if not text.strip():
        raise DataFormatError(f"{file}: empty file")
    return text


def _markdown_chunks(rel: str, text: str, source: str) -> Iterator[Chunk]:
    title = ""
    heading, lines = "", []  # type: ignore[var-annotated]
    sections: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("# ") and not title:
            title = line[2:].strip()
            continue
        if line.startswith("## "):
            sections.append((heading, lines))
            heading, lines = line[3:].strip(), []
        else:
            lines.append(line)
    sections.append((heading, lines))
    for heading, body_lines in sections:
        body = "\n".join(body_lines).strip()
        if not body and not heading:
            continue
        slug = slugify(heading) if heading else "intro"
        content = f"{heading}\n{body}".strip() if heading else body
        yield Chunk(f"{rel}#{slug}", content, {"source": source, "title": title, "section": heading})


def _text_chunks(rel: str, text: str, source: str) -> Iterator[Chunk]:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    buf: list[str] = []
    n = 0
    for para in paragraphs + [""]:
        if buf and (not para or sum(map(len, buf)) + len(para) > MAX_CHUNK_CHARS):
            n += 1
            yield Chunk(f"{rel}#{n}", "\n\n".join(buf), {"source": source})
            buf = []
        if para:
            buf.append(para)


def _jsonl_chunks(file: Path, text: str) -> Iterator[Chunk]:
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{file}, line {line_no}: invalid JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row["text"].strip():
            raise DataFormatError(f"{file}, line {line_no}: field 'text' must be a non-empty string")
        metadata = row.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise DataFormatError(f"{file}, line {line_no}: field 'metadata' must be an object")
        chunk_id = str(row.get("id") or f"{file.stem}#{line_no}")
        yield Chunk(chunk_id, row["text"].strip(), metadata)
