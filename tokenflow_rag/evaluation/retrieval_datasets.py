"""Knowledge-grounded retrieval benchmarks read into one shape: documents, queries, gold document ids.

Three formats: DSTC11 Track 5 (FAQs and reviews of hotels and restaurants), DSTC9/10 Track 1
(FAQ-like snippets, some domain-wide) and CrossWOZ (Chinese; documents are database entries and gold
is what the system looked up). Each loader takes file paths, so the withheld test splits load exactly
like the released validation files. Every gold item resolves to a document of the same dataset, or
the loader raises :class:`~tokenflow_rag.errors.DataFormatError` naming the file, the item and the field.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tokenflow_rag.errors import ConfigError, DataFormatError
from tokenflow_rag.evaluation.datasets import read_crosswoz_dialogues, read_json

__all__ = [
    "RETRIEVAL_FORMATS",
    "KnowledgeDoc",
    "RetrievalDataset",
    "RetrievalQuery",
    "load_crosswoz_retrieval",
    "load_dstc9",
    "load_dstc11",
    "load_retrieval",
]

logger = logging.getLogger(__name__)

PathLike = str | Path

# taxi_db.json is a placeholder template ("#CX", "#CP"), not entries anyone can retrieve.
_CROSSWOZ_DB_FILES: Mapping[str, str] = {
    "attraction_db.json": "景点",
    "hotel_db.json": "酒店",
    "restaurant_db.json": "餐馆",
    "metro_db.json": "地铁",
}
# Nearby-place lists run to 100+ names; database.md says to show five, which keeps documents short.
_CROSSWOZ_NEARBY_SHOWN = 5
# Metro lookups name their endpoints as "(起点) name " and "(终点) name".
_CROSSWOZ_ROUTE_MARKERS = ("(起点)", "(终点)")


@dataclass(frozen=True)
class KnowledgeDoc:
    """One retrievable document.

    >>> KnowledgeDoc("hotel:12:faq:3", "Q: Pets? A: No.", {"domain": "hotel", "doc_type": "faq"}).metadata["domain"]
    'hotel'
    """

    id: str
    text: str
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))


@dataclass(frozen=True)
class RetrievalQuery:
    """One knowledge-seeking user turn and the documents that answer it.

    Args:
        id: Stable id (the instance index in DSTC logs, ``dialogue:turn`` in CrossWOZ).
        text: The last user turn.
        history: Previous turns, oldest first, prefixed ``"U: "`` or ``"S: "``.
        gold: Ids of the documents that answer it, first-mentioned first.
        gold_metadata: Metadata of each gold document (domain, entity ...), for oracle upper bounds.

    >>> RetrievalQuery("0", "Do they allow pets?", ("U: A hotel in the north.",), ("hotel:1:faq:2",), ()).gold
    ('hotel:1:faq:2',)
    """

    id: str
    text: str
    history: tuple[str, ...]
    gold: tuple[str, ...]
    gold_metadata: tuple[Mapping[str, str], ...]


@dataclass(frozen=True)
class RetrievalDataset:
    """Documents and queries of one benchmark; ``stats`` counts what the loader skipped and why.

    >>> RetrievalDataset("toy", (), ()).stats
    {}
    """

    name: str
    docs: tuple[KnowledgeDoc, ...]
    queries: tuple[RetrievalQuery, ...]
    stats: Mapping[str, int] = field(default_factory=dict)

    def docs_by_id(self) -> dict[str, KnowledgeDoc]:
        """The documents keyed by id."""
        return {doc.id: doc for doc in self.docs}


def load_dstc11(knowledge: PathLike, logs: PathLike, labels: PathLike) -> RetrievalDataset:
    """Load DSTC11 Track 5: every FAQ and every whole review is a document.

    Document ids are ``domain:entity_id:faq:faq_id`` (text ``"Q: ... A: ..."``) and
    ``domain:entity_id:review:review_id`` (the review's sentences joined in order). A gold review
    *sentence* counts as its whole review. Only turns labelled ``target: true`` become queries.

    Args:
        knowledge: ``knowledge.json``.
        logs: ``logs.json`` of a split (a list of dialogues, each a list of ``{speaker, text}``).
        labels: ``labels.json`` of the same split, aligned with ``logs``.
    """
    kpath = Path(knowledge)
    docs = []
    for domain, entity_id, entity, meta in _entities(kpath):
        for faq_id, faq in _section(entity, "faqs", kpath, domain, entity_id):
            where = f"{kpath}: {domain}/{entity_id}/faqs/{faq_id}"
            question, answer = _str_field(faq, "question", where), _str_field(faq, "answer", where)
            doc_id = f"{domain}:{entity_id}:faq:{faq_id}"
            docs.append(KnowledgeDoc(doc_id, f"Q: {question} A: {answer}", {**meta, "doc_type": "faq"}))
        for review_id, review in _section(entity, "reviews", kpath, domain, entity_id):
            sentences = review.get("sentences")
            if not isinstance(sentences, dict) or not all(isinstance(s, str) for s in sentences.values()):
                raise DataFormatError(
                    f"{kpath}: {domain}/{entity_id}/reviews/{review_id}: field 'sentences' must map ids to strings"
                )
            # Sentence ids are decimal strings: order them as numbers, "10" after "9".
            text = " ".join(s for _, s in sorted(sentences.items(), key=lambda kv: (len(kv[0]), kv[0])))
            docs.append(KnowledgeDoc(f"{domain}:{entity_id}:review:{review_id}", text, {**meta, "doc_type": "review"}))

    def gold_id(item: Mapping[str, Any]) -> str:
        return f"{item['domain']}:{item['entity_id']}:{item['doc_type']}:{item['doc_id']}"

    return _dstc_dataset("dstc11", docs, kpath, Path(logs), Path(labels), gold_id)


def load_dstc9(knowledge: PathLike, logs: PathLike, labels: PathLike) -> RetrievalDataset:
    """Load DSTC9/DSTC10 Track 1: every snippet ``{title, body}`` is a document ``domain:entity_id:doc_id``.

    Domain-wide snippets keep the entity id ``*`` (``taxi:*:3``) and have no ``entity_name``.

    Args:
        knowledge: ``knowledge.json`` ``{domain: {entity_id: {name?, docs: {doc_id: {title, body}}}}}``.
        logs: ``logs.json`` of a split.
        labels: ``labels.json`` of the same split (knowledge items ``{domain, entity_id, doc_id}``).
    """
    kpath = Path(knowledge)
    docs = []
    for domain, entity_id, entity, meta in _entities(kpath):
        for doc_id, snippet in _section(entity, "docs", kpath, domain, entity_id):
            where = f"{kpath}: {domain}/{entity_id}/docs/{doc_id}"
            title, body = _str_field(snippet, "title", where), _str_field(snippet, "body", where)
            docs.append(
                KnowledgeDoc(f"{domain}:{entity_id}:{doc_id}", f"Q: {title} A: {body}", {**meta, "doc_type": "faq"})
            )

    def gold_id(item: Mapping[str, Any]) -> str:
        return f"{item['domain']}:{item['entity_id']}:{item['doc_id']}"

    return _dstc_dataset("dstc9", docs, kpath, Path(logs), Path(labels), gold_id)


def load_crosswoz_retrieval(dialogues_zip: PathLike, database_dir: PathLike) -> RetrievalDataset:
    """Load CrossWOZ as retrieval: database entries are documents, the system's lookups are gold.

    Every attraction, hotel, restaurant and metro entry is one document ``domain:name`` (domain in
    Chinese, e.g. ``酒店:北京贵都大酒店``) rendered as ``字段：值；...``. A user turn is a query when the
    next system turn's ``sys_state[domain]["selectedResults"]`` names entries; taxi results (a
    template) are ignored, and names missing from the database are skipped and counted in
    ``stats["gold_missing_from_database"]``.

    Args:
        dialogues_zip: The dialogues, zipped (``val.json.zip``) or plain JSON.
        database_dir: The folder with ``attraction_db.json``, ``hotel_db.json``, ``restaurant_db.json``
            and ``metro_db.json``.
    """
    db_dir = Path(database_dir)
    docs = []
    for filename, domain in _CROSSWOZ_DB_FILES.items():
        path = db_dir / filename
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; database_dir must hold {', '.join(_CROSSWOZ_DB_FILES)}")
        entries = read_json(path)
        if not isinstance(entries, list):
            raise DataFormatError(f"{path}: expected a JSON list of [name, {{fields}}] entries")
        for i, entry in enumerate(entries):
            if not (
                isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str) and isinstance(entry[1], dict)
            ):
                raise DataFormatError(f"{path}: item {i}: expected [name, {{fields}}], got {entry!r:.80}")
            name, fields = entry
            meta = {"domain": domain, "entity_id": name, "entity_name": name, "doc_type": "database"}
            docs.append(KnowledgeDoc(f"{domain}:{name}", _render_entry(fields), meta))
    by_id = {doc.id: doc for doc in docs}

    queries, missing = [], 0
    for dialogue_id, messages in read_crosswoz_dialogues(Path(dialogues_zip)).items():
        for t, (msg, reply) in enumerate(zip(messages, messages[1:])):
            if msg["role"] != "usr" or reply["role"] != "sys":
                continue
            gold: list[str] = []
            state = reply.get("sys_state") or {}
            for domain, slots in state.items() if isinstance(state, dict) else ():
                if domain not in _CROSSWOZ_DB_FILES.values() or not isinstance(slots, dict):
                    continue
                for raw in slots.get("selectedResults") or ():
                    doc_id = f"{domain}:{_strip_route_marker(str(raw))}"
                    if doc_id not in by_id:
                        missing += 1
                    elif doc_id not in gold:
                        gold.append(doc_id)
            if gold:
                history = tuple(f"{'U' if m['role'] == 'usr' else 'S'}: {m['content']}" for m in messages[:t])
                gold_meta = tuple(by_id[g].metadata for g in gold)
                queries.append(RetrievalQuery(f"{dialogue_id}:{t}", msg["content"], history, tuple(gold), gold_meta))
    if missing:
        logger.info("crosswoz: skipped %d gold names missing from the database", missing)
    return RetrievalDataset("crosswoz", tuple(docs), tuple(queries), {"gold_missing_from_database": missing})


RETRIEVAL_FORMATS: dict[str, Callable[..., RetrievalDataset]] = {
    "dstc11": load_dstc11,
    "dstc9": load_dstc9,
    "crosswoz": load_crosswoz_retrieval,
}
"""Registry of retrieval loaders by format name; their parameter names are the path keywords."""


def load_retrieval(fmt: str, **paths: PathLike) -> RetrievalDataset:
    """Load a retrieval benchmark by format name.

    Args:
        fmt: A key of :data:`RETRIEVAL_FORMATS` (``dstc11``, ``dstc9``, ``crosswoz``).
        **paths: The loader's path arguments, e.g. ``knowledge=..., logs=..., labels=...``.

    Raises:
        ConfigError: Unknown ``fmt``, or path keywords that do not match the format's.

    >>> load_retrieval("dstc9", knowledge="k.json", logs="logs.json", labels="labels.json")  # doctest: +SKIP
    """
    loader = RETRIEVAL_FORMATS.get(fmt)
    if loader is None:
        raise ConfigError(f"unknown retrieval format {fmt!r}; known formats: {', '.join(sorted(RETRIEVAL_FORMATS))}")
    expected = list(inspect.signature(loader).parameters)
    if sorted(paths) != sorted(expected):
        raise ConfigError(f"format {fmt!r} takes the paths {', '.join(expected)}; got {', '.join(paths) or 'none'}")
    return loader(**paths)


# -- helpers -----------------------------------------------------------------------------------


def _entities(path: Path) -> list[tuple[str, str, dict[str, Any], dict[str, str]]]:
    """(domain, entity_id, entity, base metadata) for every entity of a DSTC knowledge.json."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: expected a JSON object {{domain: {{entity_id: {{...}}}}}}")
    found = []
    for domain, entities in data.items():
        if not isinstance(entities, dict):
            raise DataFormatError(f"{path}: domain {domain!r} must map entity ids to objects")
        for entity_id, entity in entities.items():
            if not isinstance(entity, dict):
                raise DataFormatError(f"{path}: {domain}/{entity_id}: expected an object with 'name' and documents")
            meta = {"domain": domain, "entity_id": str(entity_id)}
            if isinstance(entity.get("name"), str):
                meta["entity_name"] = entity["name"]
            found.append((domain, str(entity_id), entity, meta))
    return found


def _section(
    entity: dict[str, Any], key: str, path: Path, domain: str, entity_id: str
) -> list[tuple[str, dict[str, Any]]]:
    section = entity.get(key, {})
    if not isinstance(section, dict) or not all(isinstance(v, dict) for v in section.values()):
        raise DataFormatError(f"{path}: {domain}/{entity_id}: field {key!r} must map ids to objects")
    return [(str(k), v) for k, v in section.items()]


def _str_field(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise DataFormatError(f"{where}: field {key!r} must be a string, got {value!r:.40}")
    return value


def _dstc_dataset(
    name: str,
    docs: list[KnowledgeDoc],
    knowledge: Path,
    logs_path: Path,
    labels_path: Path,
    gold_id: Callable[[Mapping[str, Any]], str],
) -> RetrievalDataset:
    by_id = {doc.id: doc for doc in docs}
    logs, labels = read_json(logs_path), read_json(labels_path)
    for data, path in ((logs, logs_path), (labels, labels_path)):
        if not isinstance(data, list):
            raise DataFormatError(f"{path}: expected a JSON list, got {type(data).__name__}")
    if len(logs) != len(labels):
        raise DataFormatError(
            f"{logs_path} has {len(logs)} instances but {labels_path} has {len(labels)} labels; "
            "pass the logs.json and labels.json of the same split"
        )
    queries = []
    for i, (log, label) in enumerate(zip(logs, labels)):
        where = f"{labels_path}: item {i}"
        if not isinstance(label, dict) or not isinstance(label.get("target"), bool):
            raise DataFormatError(f"{where}: field 'target' must be true or false")
        if not label["target"]:
            continue
        items = label.get("knowledge")
        if not isinstance(items, list) or not items:
            raise DataFormatError(f"{where}: field 'knowledge' must be a non-empty list for a target turn")
        gold: list[str] = []
        for j, item in enumerate(items):
            try:
                doc_id = gold_id(item)
            except (KeyError, TypeError) as exc:
                raise DataFormatError(
                    f"{where}: knowledge[{j}] lacks field {exc}; expected {item!r:.80} to name a document"
                ) from exc
            if doc_id not in by_id:
                raise DataFormatError(f"{where}: knowledge[{j}] points to {doc_id!r}, which is not in {knowledge}")
            if doc_id not in gold:
                gold.append(doc_id)
        turns = _turns(log, logs_path, i)
        history = tuple(f"{speaker}: {text}" for speaker, text in turns[:-1])
        gold_meta = tuple(by_id[g].metadata for g in gold)
        queries.append(RetrievalQuery(str(i), turns[-1][1], history, tuple(gold), gold_meta))
    logger.info("%s: %d documents, %d queries of %d instances", name, len(docs), len(queries), len(logs))
    return RetrievalDataset(name, tuple(docs), tuple(queries), {"non_target_instances": len(logs) - len(queries)})


def _turns(log: Any, path: Path, index: int) -> list[tuple[str, str]]:
    ok = (
        isinstance(log, list)
        and log
        and all(
            isinstance(t, dict) and isinstance(t.get("speaker"), str) and isinstance(t.get("text"), str) for t in log
        )
    )
    if not ok:
        raise DataFormatError(f"{path}: item {index}: expected a non-empty list of {{'speaker', 'text'}} turns")
    return [(t["speaker"], t["text"]) for t in log]


def _render_entry(fields: Mapping[str, Any]) -> str:
    parts = []
    for key, value in fields.items():
        if value is None or value == [] or value == "":
            continue
        if isinstance(value, list):
            shown = value[:_CROSSWOZ_NEARBY_SHOWN] if key.startswith("周边") else value
            value = "、".join(map(str, shown)) + ("等" if len(shown) < len(value) else "")
        parts.append(f"{key}：{value}")
    return "；".join(parts) + "。"


def _strip_route_marker(name: str) -> str:
    name = name.strip()
    for marker in _CROSSWOZ_ROUTE_MARKERS:
        name = name.removeprefix(marker)
    return name.strip()
