"""Intents from document metadata: every entity (hotel, restaurant, product ...) becomes an intent.

Most knowledge bases already say which entity a document is about (``entity_name``) and which
group it belongs to (``domain``). Those fields carry exactly what a sentence embedding misses, so
they make the most useful search restrictions. :meth:`MetadataTaxonomy.from_metadata` turns them
into a :class:`~tokenflow_rag.taxonomy.Taxonomy` a :class:`~tokenflow_rag.classifiers.RuleClassifier`
can match in queries, and :meth:`MetadataTaxonomy.tag_chunks` tags the documents from the same fields.

* each group value (``domain: hotel``) becomes an intent whose keywords are its value and any aliases;
* each entity becomes a child intent of its group whose keywords are its name plus robust variants:
  lower case, without a leading "the", without generic words ("hotel", "guest house", the group's
  own name), hyphens read as spaces, and the distinctive part of the name when it belongs to one
  entity only; for Chinese names also the name without a bracketed branch (``锦江之星(奥体店)`` ->
  ``锦江之星``);
* intent names are safe lower-snake ids (``hotel__acorn_guest_house``, or a hash for non-Latin
  names) and the display name is kept in the description.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tokenflow_rag.classifiers.base import select_intents
from tokenflow_rag.classifiers.rules import _keyword_regex
from tokenflow_rag.errors import ConfigError
from tokenflow_rag.taxonomy import Taxonomy
from tokenflow_rag.types import INTENTS_KEY, Chunk, IntentPrediction

__all__ = ["DEFAULT_GENERIC_WORDS", "MetadataTaxonomy", "NameClassifier", "name_variants", "safe_intent_id"]

# fmt: off
DEFAULT_GENERIC_WORDS: tuple[str, ...] = (
    "bed and breakfast", "b and b", "b & b", "b&b", "guest house", "guesthouse", "hotel", "hostel", "motel",
    "restaurant", "resturant", "cafe", "café", "bar", "grill", "bistro", "pub", "shop", "store", "company",
    "co", "ltd", "inc", "the",
)
# fmt: on
"""Words that say what kind of place a name is, not which one: dropped to form short name variants."""

# A short variant made only of these words would fire on ordinary sentences ("ask", "one seven" is fine).
_COMMON_WORDS = frozenset(
    """a an and or of in on at to for from by with without near the this that these those it its is are was be
    do does did have has had can could will would should may might i you he she we they me my your our their
    his her what which who when where why how all any some no not yes one two three four five six seven
    eight nine ten first second new old good best great big small little nice fine top city centre center
    town north south east west central main street road lane park place house home room rooms ask take make
    get go come stay eat food drink open free cheap express star stars lucky missing royal golden garden
    river side view hill green king queen prince palace court grand""".split()  # noqa: SIM905
)
_CONNECTORS = frozenset({"and", "&", "of", "by", "at", "in", "on"})
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_BRACKETED = re.compile(r"\s*[\(（\[【].*?[\)）\]】]\s*")
_NON_SLUG = re.compile(r"[^a-z0-9]+")
_WORD = re.compile(r"[a-z0-9']+")
_MIN_VARIANT_CHARS = 3
_MAX_OTHER_OWNERS = 2


def safe_intent_id(text: str, *, prefix: str = "i") -> str:
    """A lower-snake intent id for any display name; non-Latin names get a stable hash.

    >>> safe_intent_id("Rosa's Bed & Breakfast"), safe_intent_id("酒店", prefix="domain")
    ('rosa_s_bed_breakfast', 'domain_31aeafba')
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    slug = _NON_SLUG.sub("_", ascii_text).strip("_")
    if not slug or _CJK.search(text):
        return f"{prefix}_{zlib.crc32(text.encode('utf-8')):08x}"
    return slug if slug[0].isalpha() else f"{prefix}_{slug}"


def name_variants(name: str, *, generic_words: Iterable[str] = DEFAULT_GENERIC_WORDS) -> tuple[str, ...]:
    """The full name and its robust short forms, lower case, most specific first.

    >>> name_variants("THE LENSFIELD HOTEL")
    ('the lensfield hotel', 'lensfield hotel', 'lensfield')
    >>> name_variants("锦江之星(北京奥体中心店)")
    ('锦江之星(北京奥体中心店)', '锦江之星')
    """
    full = " ".join(name.lower().split())
    if not full:
        return ()
    if _CJK.search(full):
        out = [full]
        bare = _BRACKETED.sub("", full).strip()
        if len(bare) >= 2 and bare != full:
            out.append(bare)
        return tuple(out)
    spaced = full.replace("-", " ")
    out = [full, spaced]
    no_the = re.sub(r"^the\s+", "", spaced)
    out.append(no_the)
    out.append(no_the.replace("&", "and"))
    out.append(no_the.replace("'", ""))
    stripped = _strip_generic(no_the.replace("&", " & "), generic_words)
    out.append(stripped)
    out.append(stripped.replace("'", ""))
    return tuple(v for v in dict.fromkeys(out) if v and _usable(v, full))


def _strip_generic(text: str, generic_words: Iterable[str]) -> str:
    """Peel generic words off both ends ("hotel du vin and bistro" -> "du vin"), never from the middle."""
    words = sorted({w.lower() for w in generic_words} | _CONNECTORS, key=len, reverse=True)
    edge = "|".join(re.escape(w) for w in words)
    head, tail = re.compile(rf"^(?:{edge})(?![a-z0-9])\s*"), re.compile(rf"\s*(?<![a-z0-9])(?:{edge})$")
    previous = None
    while previous != text:
        previous = text
        text = tail.sub("", head.sub("", text)).strip()
    return " ".join(text.split())


def _usable(variant: str, full: str) -> bool:
    """The full name always; a short form only when it is long and specific enough to name one thing."""
    if variant == full:
        return True
    words = _WORD.findall(variant)
    if not words or len(variant.replace(" ", "")) < _MIN_VARIANT_CHARS:
        return False
    return not all(w.strip("'") in _COMMON_WORDS for w in words)


@dataclass(frozen=True)
class _Entity:
    group: str | None
    key: str
    name: str


@dataclass(frozen=True)
class MetadataTaxonomy:
    """A taxonomy derived from metadata fields, and the mapping that tags documents with it.

    Build it with :meth:`from_metadata`; tag documents with :meth:`tags` or :meth:`tag_chunks`; classify
    queries with ``RuleClassifier(mt.taxonomy)`` (or :class:`tokenflow_rag.context.ContextResolver` for
    dialogues).

    >>> mt = MetadataTaxonomy.from_metadata([
    ...     {"domain": "hotel", "entity_id": "1", "entity_name": "ACORN GUEST HOUSE"},
    ...     {"domain": "restaurant", "entity_id": "7", "entity_name": "PIZZA HUT CITY CENTRE"}])
    >>> mt.tags({"domain": "hotel", "entity_id": "1", "entity_name": "ACORN GUEST HOUSE"})
    ('hotel', 'hotel__acorn_guest_house')
    >>> mt.taxonomy["hotel__acorn_guest_house"].keywords["names"]
    ('acorn guest house', 'acorn')
    """

    taxonomy: Taxonomy
    group_field: str | None = "domain"
    entity_field: str = "entity_name"
    id_field: str | None = "entity_id"
    group_intents: Mapping[str, str] = field(default_factory=dict)
    entity_intents: Mapping[tuple[str | None, str], str] = field(default_factory=dict)

    # -- building -----------------------------------------------------------------------------
    @classmethod
    def from_metadata(
        cls,
        metadatas: Iterable[Mapping[str, Any]],
        *,
        group_field: str | None = "domain",
        entity_field: str = "entity_name",
        id_field: str | None = "entity_id",
        entity_k: int = 1,
        group_k: int = 3,
        group_aliases: Mapping[str, Sequence[str]] | None = None,
        generic_words: Iterable[str] = DEFAULT_GENERIC_WORDS,
        texts: Sequence[str] | None = None,
        name: str = "metadata",
    ) -> MetadataTaxonomy:
        """Derive the taxonomy from the metadata of every document.

        Args:
            metadatas: One metadata mapping per document (documents of one entity repeat its fields).
            group_field: Field naming the entity's group (becomes the parent intent); None for none.
            entity_field: Field holding the entity's display name; documents without it get only the group tag.
            id_field: Field telling apart entities of the same name (None: the name identifies the entity).
            entity_k: ``k`` of every entity intent (chunks a query about one entity needs).
            group_k: ``k`` of every group intent.
            group_aliases: Extra keywords per group value, e.g. ``{"hotel": ["guesthouse", "place to stay"]}``.
            generic_words: Words dropped to form short name variants (the group values are added).
            texts: The documents' texts, aligned with ``metadatas``: a one-word short name that also
                occurs in another entity's documents ("missing", "river") is then dropped as too ambiguous.
            name: The taxonomy's name.

        Raises:
            ConfigError: No document carries the entity or group field, or a ``k`` below 1.
        """
        metadatas = list(metadatas)
        if texts is not None and len(texts) != len(metadatas):
            raise ConfigError(
                f"texts has {len(texts)} items but metadatas has {len(metadatas)}; pass one text per document"
            )
        for arg, value in (("entity_k", entity_k), ("group_k", group_k)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{arg} must be a positive integer, got {value!r}")
        groups: dict[str, None] = {}
        entities: dict[tuple[str | None, str], _Entity] = {}
        owner_of_doc: list[tuple[str | None, str] | None] = []
        for meta in metadatas:
            group = _field(meta, group_field)
            if group is not None:
                groups.setdefault(group)
            entity_name = _field(meta, entity_field)
            if entity_name is None:
                owner_of_doc.append(None)
                continue
            key = (group, _field(meta, id_field) or entity_name)
            entities.setdefault(key, _Entity(group, key[1], entity_name))
            owner_of_doc.append(key)
        if not groups and not entities:
            raise ConfigError(
                f"no document has a {entity_field!r} or {group_field!r} metadata field; "
                "pass the field names your documents use (entity_field=..., group_field=...)"
            )

        generic = tuple(generic_words) + tuple(g.lower() for g in groups)
        used: set[str] = set()
        group_intents = {g: _unique(safe_intent_id(g, prefix="group"), used) for g in groups}
        aliases = {g: list(v) for g, v in (group_aliases or {}).items()}
        unknown = sorted(set(aliases) - set(groups))
        if unknown:
            raise ConfigError(f"group_aliases names group(s) {unknown} that no document has; known: {sorted(groups)}")

        variants = {key: name_variants(e.name, generic_words=generic) for key, e in entities.items()}
        variants = _drop_ambiguous_words(variants, owner_of_doc, texts)
        specs: dict[str, dict[str, Any]] = {}
        for g, intent in group_intents.items():
            words = list(dict.fromkeys([g.lower(), *(a.lower() for a in aliases.get(g, ()))]))
            specs[intent] = {"description": f"{group_field} {g!r}", "keywords": {"names": words}, "k": group_k}
        entity_intents: dict[tuple[str | None, str], str] = {}
        for key, entity in entities.items():
            prefix = group_intents.get(entity.group) if entity.group is not None else None
            base = safe_intent_id(entity.name, prefix="e")
            intent = _unique(f"{prefix}__{base}" if prefix else base, used)
            entity_intents[key] = intent
            spec: dict[str, Any] = {
                "description": f"{entity.name} ({group_field} {entity.group!r})" if entity.group else entity.name,
                "keywords": {"names": list(variants[key])},
                "k": entity_k,
            }
            if prefix:
                spec["parent"] = prefix
            specs[intent] = spec
        taxonomy = Taxonomy.from_dict({"name": name, "intents": specs})
        return cls(taxonomy, group_field, entity_field, id_field, group_intents, entity_intents)

    def with_k(self, *, entity_k: int | None = None, group_k: int | None = None) -> MetadataTaxonomy:
        """The same intents with other ``k`` values (for sweeps and per-deployment sizing)."""
        data = self.taxonomy.to_dict()
        entity_names = set(self.entity_intents.values())
        for intent_name, spec in data["intents"].items():
            new_k = entity_k if intent_name in entity_names else group_k
            if new_k is not None:
                spec["k"] = new_k
        return MetadataTaxonomy(
            Taxonomy.from_dict(data),
            self.group_field,
            self.entity_field,
            self.id_field,
            self.group_intents,
            self.entity_intents,
        )

    # -- tagging ------------------------------------------------------------------------------
    def tags(self, metadata: Mapping[str, Any]) -> tuple[str, ...]:
        """The intents a document with this metadata is tagged with: its group, then its entity."""
        group = _field(metadata, self.group_field)
        out = []
        if group is not None and group in self.group_intents:
            out.append(self.group_intents[group])
        entity_name = _field(metadata, self.entity_field)
        if entity_name is not None:
            intent = self.entity_intents.get((group, _field(metadata, self.id_field) or entity_name))
            if intent is not None:
                out.append(intent)
        return tuple(out)

    def entity_intent(self, metadata: Mapping[str, Any]) -> str | None:
        """The entity intent of a document's metadata, or None when it names no known entity."""
        tags = self.tags(metadata)
        entity_names = set(self.entity_intents.values())
        return next((t for t in tags if t in entity_names), None)

    def tag_chunks(self, chunks: Sequence[Chunk]) -> list[Chunk]:
        """Chunks with ``metadata["intents"]`` set from their metadata; chunks already tagged keep their tags."""
        from tokenflow_rag.tagging import TAGGED_BY_KEY

        out = []
        for chunk in chunks:
            if chunk.metadata.get(INTENTS_KEY) is not None:
                out.append(chunk)
                continue
            out.append(chunk.with_metadata(**{INTENTS_KEY: list(self.tags(chunk.metadata)), TAGGED_BY_KEY: "metadata"}))
        return out


def _field(meta: Mapping[str, Any], name: str | None) -> str | None:
    if name is None:
        return None
    value = meta.get(name)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _unique(candidate: str, used: set[str]) -> str:
    name, n = candidate, 2
    while name in used or name == "none":
        name = f"{candidate}_{n}"
        n += 1
    used.add(name)
    return name


def _drop_ambiguous_words(
    variants: Mapping[tuple[str | None, str], tuple[str, ...]],
    owner_of_doc: Sequence[tuple[str | None, str] | None],
    texts: Sequence[str] | None,
) -> dict[tuple[str | None, str], tuple[str, ...]]:
    """Drop one-word short forms shared by several entities or found in other entities' documents."""
    owners: dict[str, set[tuple[str | None, str]]] = defaultdict(set)
    for key, names in variants.items():
        for v in names[1:]:
            if len(v.split()) == 1 and not _CJK.search(v):
                owners[v].add(key)
    found_in: dict[str, set[tuple[str | None, str] | None]] = defaultdict(set)
    if texts is not None and owners:
        pattern = re.compile(
            r"(?<![a-z0-9])(" + "|".join(re.escape(w) for w in sorted(owners, key=len, reverse=True)) + r")(?![a-z0-9])"
        )
        for text, owner in zip(texts, owner_of_doc):
            for word in set(pattern.findall(text.lower())):
                found_in[word].add(owner)
    out = {}
    for key, names in variants.items():
        kept = [names[0]]
        for v in names[1:]:
            # Another entity's name, or the documents of two other entities, use the word as a plain word.
            if v in owners and (len(owners[v]) > 1 or len(found_in.get(v, set()) - {key}) >= _MAX_OTHER_OWNERS):
                continue
            kept.append(v)
        out[key] = tuple(kept)
    return out


class NameClassifier:
    """Keyword matching like :class:`~tokenflow_rag.classifiers.RuleClassifier`, fast on thousands of names.

    The rule classifier runs one regex alternation over all keywords, which costs time in proportion
    to their number (about 0.2 s per query for CrossWOZ's 5,000 entity names). This matcher first
    keeps the keywords whose first two characters occur in the text, then checks only those, and
    resolves overlaps the same way (leftmost, then longest). Scores, thresholds and evidence follow
    the rule classifier's: ``1 - prod(1 - keyword_weight)`` over distinct keywords. Patterns are
    not supported (metadata taxonomies have none).

    Args:
        taxonomy: Intents with keywords (e.g. :attr:`MetadataTaxonomy.taxonomy`).
        keyword_weight: Evidence one distinct keyword adds.
        threshold: Score an intent needs to be predicted.

    >>> mt = MetadataTaxonomy.from_metadata([{"domain": "hotel", "entity_name": "ACORN GUEST HOUSE"}])
    >>> NameClassifier(mt.taxonomy).predict(["Is the Acorn quiet?"])[0].intents
    ('hotel__acorn_guest_house',)
    """

    def __init__(self, taxonomy: Taxonomy, *, keyword_weight: float = 0.6, threshold: float = 0.5) -> None:
        for arg, value in (("keyword_weight", keyword_weight), ("threshold", threshold)):
            if not 0.0 < value <= 1.0:
                raise ConfigError(f"{arg} must be in (0, 1], got {value!r}")
        if any(i.patterns for i in taxonomy):
            raise ConfigError("NameClassifier matches keywords only; use RuleClassifier for a taxonomy with patterns")
        self._taxonomy = taxonomy
        self.keyword_weight = keyword_weight
        self.threshold = threshold
        owners: dict[str, list[str]] = defaultdict(list)
        for intent in taxonomy:
            for kw in intent.all_keywords:
                owners[kw.lower()].append(intent.name)
        self._owners = dict(owners)
        self._buckets: dict[str, list[tuple[str, re.Pattern[str] | None]]] = defaultdict(list)
        for kw in self._owners:
            matcher = None if _CJK.search(kw) else re.compile(_keyword_regex(kw))
            self._buckets[kw[:2]].append((kw, matcher))

    @property
    def taxonomy(self) -> Taxonomy:
        return self._taxonomy

    def predict(self, texts: Sequence[str]) -> list[IntentPrediction]:
        """One prediction per text, with a score for every intent (0 for those not named)."""
        return [self._predict_one(t) for t in texts]

    def _matches(self, lowered: str) -> list[str]:
        found: list[tuple[int, int, str]] = []
        seen: set[str] = set()
        for i in range(len(lowered)):
            prefix = lowered[i : i + 2]
            if prefix in seen:
                continue
            seen.add(prefix)
            for kw, matcher in self._buckets.get(prefix, ()):
                if matcher is None:
                    start = lowered.find(kw)
                    while start >= 0:
                        found.append((start, start + len(kw), kw))
                        start = lowered.find(kw, start + 1)
                else:
                    found.extend((m.start(), m.end(), kw) for m in matcher.finditer(lowered))
        found.sort(key=lambda m: (m[0], -(m[1] - m[0]), -len(m[2])))
        kept, end = [], -1
        for start, stop, kw in found:
            if start >= end:
                kept.append(kw)
                end = stop
        return kept

    def _predict_one(self, text: str) -> IntentPrediction:
        hits: dict[str, dict[str, None]] = defaultdict(dict)
        for kw in self._matches(text.lower()):
            for name in self._owners[kw]:
                hits[name][kw] = None
        scores = dict.fromkeys(self._taxonomy.names, 0.0)
        for name, kws in hits.items():
            scores[name] = 1.0 - (1.0 - self.keyword_weight) ** len(kws)
        evidence = {name: tuple(kws) for name, kws in hits.items()}
        return IntentPrediction(scores, select_intents(scores, self.threshold), evidence, {"rules": scores})
