"""Reading a corpus directory into chunks: Markdown split at ``##`` headings, text files, JSON lines."""

from __future__ import annotations

import json
import logging
import os
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
# The manifest name and format marker that tokenflow_rag.index.save_index writes; not imported from there,
# so that reading a corpus does not load numpy and the index machinery.
INDEX_MANIFEST = "tokenflow_index.json"
INDEX_FORMAT = "tokenflow-index"
# Where an over-long .txt paragraph may be cut, best first; a segment ends just after its match.
# Sentence ends need whitespace after them in Latin text ("3.5" and "e.g.x" stay whole), none in CJK.
_CUTS = (
    re.compile(r"\n"),
    re.compile(r"[.!?…]+[\"'”’)\]]*\s+|[。！？．]+[”’」』）]*\s*"),
    re.compile(r"\s+"),
)


def slugify(heading: str) -> str:
    """Heading -> id fragment; keeps letters of any script (``## 退款时效`` -> ``退款时效``)."""
    return re.sub(r"[^\w]+", "-", heading.lower()).strip("-")


def load_corpus(path: str | Path) -> list[Chunk]:
    """Load every supported file under ``path`` (a directory or one file), in sorted order.

    Markdown: each ``## Heading`` section is one chunk with id ``<relative path without suffix>#<slug>``
    (text before the first ``##`` is a chunk too, if any); sections are not split, whatever their length.
    ``.txt``: paragraphs packed into chunks of up to 2,000 characters (``MAX_CHUNK_CHARS``), ids
    ``<path>#<n>``; a longer paragraph is cut at line breaks, else sentence ends, else spaces, else anywhere.
    ``.jsonl``: one ``{"id", "text", "metadata"?}`` per line; a line without ``id`` gets ``<path>#<line>``.
    Ids must be unique across the corpus.

    Hidden files and directories (a name starting with ``.``) are skipped, and so is any directory that
    holds a saved tokenflow index, so an index written inside the corpus is not read back as text.
    Files that are empty, binary or not UTF-8 are skipped with one warning each (the rest still
    loads); a corpus that yields no chunk at all raises :class:`DataFormatError`.
    """
    root = Path(path)
    if not root.exists():
        raise DataFormatError(f"corpus path {root} does not exist")
    files = [root] if root.is_file() else _corpus_files(root)
    base = root.parent if root.is_file() else root
    chunks: list[Chunk] = []
    origins: list[str] = []  # the file of each chunk, for the duplicate-id error
    skipped: list[str] = []
    for file in files:
        suffix = file.suffix.lower()
        if suffix not in TEXT_SUFFIXES | JSONL_SUFFIXES:
            continue
        rel = file.relative_to(base).with_suffix("").as_posix()
        source = str(file.relative_to(base))
        try:
            text = _read_text(file)
        except DataFormatError as exc:
            skipped.append(str(exc))
            continue
        if suffix in JSONL_SUFFIXES:
            new = list(_jsonl_chunks(file, rel, text))
        elif suffix == ".txt":
            new = list(_text_chunks(rel, text, source=source))
        else:
            new = list(_markdown_chunks(rel, text, source=source))
        chunks.extend(new)
        origins.extend([source] * len(new))
    for message in skipped:
        warnings.warn(f"skipped {message}", stacklevel=2)
    if not chunks:
        raise DataFormatError(
            f"no chunks found under {root}: it needs .md, .txt or .jsonl files with text"
            + (f" ({len(skipped)} file(s) skipped as unreadable)" if skipped else "")
        )
    _check_unique_ids(root, chunks, origins)
    return chunks


def _corpus_files(root: Path) -> list[Path]:
    """Files under ``root``, sorted, leaving out hidden files and directories and saved indexes."""
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        # Pruning in place stops the walk from descending: hidden folders (.git, .venv, the temporaries of
        # an atomic save) and indexes, whose chunks.jsonl would otherwise load as a second copy of the corpus.
        kept: list[str] = []
        for name in dirnames:
            if name.startswith("."):
                continue
            if _is_index_dir(here / name):
                logger.info("skipping %s: it is a saved tokenflow index", here / name)
                continue
            kept.append(name)
        dirnames[:] = kept
        files.extend(here / name for name in filenames if not name.startswith("."))
    return sorted(p for p in files if p.is_file())


def _is_index_dir(directory: Path) -> bool:
    try:
        manifest = json.loads((directory / INDEX_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == INDEX_FORMAT


def _check_unique_ids(root: Path, chunks: list[Chunk], origins: list[str]) -> None:
    where: dict[str, list[str]] = {}
    for chunk, origin in zip(chunks, origins):
        where.setdefault(chunk.id, []).append(origin)
    dupes = {i: files for i, files in where.items() if len(files) > 1}
    if not dupes:
        return
    shown = "; ".join(f"{i!r} in {', '.join(dict.fromkeys(files))}" for i, files in sorted(dupes.items())[:5])
    more = f" (and {len(dupes) - 5} more)" if len(dupes) > 5 else ""
    raise DataFormatError(
        f"duplicate chunk id(s) in {root}: {shown}{more}. Ids must be unique across the corpus: give each "
        f".jsonl line its own id, make ## headings (their slugs) unique within a Markdown file, and rename "
        f"files whose paths differ only in their suffix"
    )


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
    size = 0  # len("\n\n".join(buf))
    n = 0
    for para in paragraphs:
        for i, piece in enumerate(_split_long(para, MAX_CHUNK_CHARS)):
            # Pieces of one paragraph never share a chunk: they were cut because they did not fit.
            if buf and (i > 0 or size + 2 + len(piece) > MAX_CHUNK_CHARS):
                n += 1
                yield Chunk(f"{rel}#{n}", "\n\n".join(buf), {"source": source})
                buf, size = [], 0
            size += len(piece) + (2 if buf else 0)
            buf.append(piece)
    if buf:
        n += 1
        yield Chunk(f"{rel}#{n}", "\n\n".join(buf), {"source": source})


def _split_long(text: str, limit: int) -> list[str]:
    """``text`` in stripped pieces of at most ``limit`` characters, cut at the best boundaries available."""
    return [piece.strip() for piece in _cut(text, limit, 0) if piece.strip()]


def _cut(text: str, limit: int, level: int) -> list[str]:
    if len(text.strip()) <= limit:
        return [text]
    if level == len(_CUTS):  # no boundary left (e.g. a long run of CJK without punctuation): cut anywhere
        text = text.strip()
        return [text[i : i + limit] for i in range(0, len(text), limit)]
    segments: list[str] = []
    start = 0
    for match in _CUTS[level].finditer(text):
        segments.append(text[start : match.end()])
        start = match.end()
    segments.append(text[start:])
    # Greedy packing; ``cur`` is kept without leading whitespace, so ``cur + seg`` stripped is
    # ``cur + seg.rstrip()`` and its length is known without building it.
    pieces: list[str] = []
    cur = ""
    for seg in segments:
        size = len(cur) + len(seg.rstrip()) if cur else len(seg.strip())
        if size <= limit:
            cur = cur + seg if cur else seg.lstrip()
            continue
        if cur:
            pieces.append(cur)
        sub = _cut(seg, limit, level + 1)  # a segment too long on its own goes to the next kind of boundary
        pieces.extend(sub[:-1])
        cur = sub[-1].lstrip()
    if cur:
        pieces.append(cur)
    return pieces


def _jsonl_chunks(file: Path, rel: str, text: str) -> Iterator[Chunk]:
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
        # The relative path, as for .md/.txt: two faq.jsonl in different folders must not collide.
        chunk_id = str(row.get("id") or f"{rel}#{line_no}")
        yield Chunk(chunk_id, row["text"].strip(), metadata)
