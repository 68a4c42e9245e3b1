"""Intent taxonomy: the business intents documents are tagged with and queries are classified into.

A taxonomy is loaded from YAML or a dict and validated strictly: unknown keys, duplicate intents,
empty keyword lists, invalid regexes and dangling parents raise :class:`TaxonomyError` naming the
intent and the field, so a typo never silently turns into an intent that matches nothing.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokenflow_rag.errors import TaxonomyError

NONE_INTENT = "none"
"""Reserved label for "no business intent": never defined in a taxonomy, predicted when nothing passes."""

_INTENT_KEYS = {"description", "keywords", "patterns", "examples", "k", "parent"}
_TOP_KEYS = {"name", "version", "intents"}
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Intent:
    """One business intent.

    Args:
        name: Identifier, lower snake case (``payment``, ``order_management``).
        description: One sentence a person understands.
        keywords: Keywords per language code, e.g. ``{"en": ("refund",), "zh": ("退款",)}``.
        patterns: Regular expressions that signal the intent (matched case-insensitively).
        examples: Example queries (documentation and few-shot material).
        k: How many chunks a query of this intent needs.
        parent: Name of a coarser intent this one refines (``refund`` -> ``payment``).

    >>> Intent("refund", "Money back", {"en": ("refund",)}, k=3, parent="payment").all_keywords
    ('refund',)
    """

    name: str
    description: str = ""
    keywords: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    patterns: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    k: int = 3
    parent: str | None = None

    @property
    def all_keywords(self) -> tuple[str, ...]:
        """Keywords of every language, in declaration order."""
        return tuple(kw for words in self.keywords.values() for kw in words)


class Taxonomy:
    """An ordered, validated set of intents.

    >>> tax = Taxonomy.from_dict({"name": "t", "intents": {
    ...     "payment": {"keywords": {"en": ["pay"]}},
    ...     "refund": {"keywords": {"en": ["refund"]}, "parent": "payment"}}})
    >>> tax.names, tax.expand(["payment"]), tax.to_parents(["refund"])
    (('payment', 'refund'), ('payment', 'refund'), ('payment',))
    """

    def __init__(self, intents: Iterable[Intent], name: str = "custom", version: int = 1) -> None:
        self.name = name
        self.version = version
        self._intents: dict[str, Intent] = {}
        for intent in intents:
            if intent.name in self._intents:
                raise TaxonomyError(f"intent {intent.name!r} is defined twice; intent names must be unique")
            self._intents[intent.name] = intent
        if not self._intents:
            raise TaxonomyError("taxonomy has no intents; define at least one under 'intents'")
        for intent in self._intents.values():
            if intent.parent is not None and intent.parent not in self._intents:
                raise TaxonomyError(
                    f"intent {intent.name!r}, field 'parent': unknown intent {intent.parent!r} "
                    f"(known: {', '.join(self._intents)})"
                )
            if intent.parent == intent.name:
                raise TaxonomyError(f"intent {intent.name!r}, field 'parent': an intent cannot be its own parent")
        children: dict[str, list[str]] = {name: [] for name in self._intents}
        for intent in self._intents.values():
            if intent.parent is not None:
                children[intent.parent].append(intent.name)
        self._children: dict[str, tuple[str, ...]] = {name: tuple(kids) for name, kids in children.items()}
        self._subtrees: dict[str, tuple[str, ...]] = {}

    # -- access -------------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        """Intent names in declaration order."""
        return tuple(self._intents)

    def __iter__(self) -> Iterator[Intent]:
        return iter(self._intents.values())

    def __len__(self) -> int:
        return len(self._intents)

    def __contains__(self, name: object) -> bool:
        return name in self._intents

    def __getitem__(self, name: str) -> Intent:
        try:
            return self._intents[name]
        except KeyError:
            raise TaxonomyError(
                f"unknown intent {name!r}; this taxonomy ({self.name}) defines: {', '.join(self._intents)}"
            ) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Taxonomy) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Taxonomy(name={self.name!r}, intents={list(self._intents)})"

    def check_names(self, names: Iterable[str], *, where: str) -> tuple[str, ...]:
        """Return ``names`` as a tuple, raising a clear error on any name the taxonomy lacks."""
        names = tuple(names)
        unknown = [n for n in names if n not in self._intents and n != NONE_INTENT]
        if unknown:
            raise TaxonomyError(
                f"{where}: unknown intent(s) {', '.join(map(repr, unknown))}; "
                f"taxonomy {self.name!r} defines: {', '.join(self._intents)}"
            )
        return tuple(n for n in names if n != NONE_INTENT)

    # -- hierarchy ----------------------------------------------------------------------------
    def expand(self, names: Iterable[str]) -> tuple[str, ...]:
        """Names plus all their descendants: a query for ``payment`` also finds ``refund`` documents."""
        names = tuple(names)
        if len(names) == 1:  # the common case, one predicted intent: its subtree, computed once
            name = names[0]
            tree = self._subtrees.get(name)
            if tree is None:
                if name not in self._intents:
                    return ()
                tree = self._subtrees[name] = self._breadth_first(names)
            return tree
        return self._breadth_first(names)

    def _breadth_first(self, names: Iterable[str]) -> tuple[str, ...]:
        """The names, then their descendants, breadth first, each once; unknown names are skipped."""
        out: dict[str, None] = {}
        queue = deque(names)
        while queue:
            name = queue.popleft()
            if name in out or name not in self._intents:
                continue
            out[name] = None
            queue.extend(self._children[name])
        return tuple(out)

    def root_of(self, name: str) -> str:
        """The top-most ancestor of ``name`` (itself when it has no parent)."""
        seen = {name}
        while (parent := self._intents[name].parent) is not None and parent not in seen:
            seen.add(parent)
            name = parent
        return name

    def to_parents(self, names: Iterable[str]) -> tuple[str, ...]:
        """Map children to their root intents, for scoring against a coarser label set."""
        return tuple(sorted({self.root_of(n) for n in names if n in self._intents}))

    # -- (de)serialisation --------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Taxonomy:
        """Build and validate a taxonomy from a plain dict (the YAML layout)."""
        if not isinstance(data, Mapping):
            raise TaxonomyError(f"a taxonomy must be a mapping with an 'intents' key, got {type(data).__name__}")
        unknown = set(data) - _TOP_KEYS
        if unknown:
            raise TaxonomyError(f"unknown top-level key(s) {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
        raw_intents = data.get("intents")
        if isinstance(raw_intents, list):  # list form: [{name: payment, ...}, ...]
            pairs = []
            for i, item in enumerate(raw_intents):
                if not isinstance(item, Mapping) or "name" not in item:
                    raise TaxonomyError(f"intents[{i}]: each list item needs a 'name' field")
                pairs.append((item["name"], {k: v for k, v in item.items() if k != "name"}))
            names = [p[0] for p in pairs]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise TaxonomyError(f"intent {dupes[0]!r} is defined twice; intent names must be unique")
        elif isinstance(raw_intents, Mapping):
            pairs = list(raw_intents.items())
        else:
            raise TaxonomyError("field 'intents' must be a mapping of intent name -> definition")
        intents = [_parse_intent(name, spec) for name, spec in pairs]
        name, version = data.get("name", "custom"), data.get("version", 1)
        if not isinstance(name, str) or not name.strip():
            raise TaxonomyError(f"field 'name': expected a non-empty string, got {name!r}")
        if not isinstance(version, int) or isinstance(version, bool):
            raise TaxonomyError(f"field 'version': expected an integer, got {version!r}")
        return cls(intents, name=name, version=version)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, the inverse of :meth:`from_dict`."""
        intents: dict[str, Any] = {}
        for i in self._intents.values():
            spec: dict[str, Any] = {"description": i.description}
            if i.keywords:  # an intent found by its patterns alone has none, and "keywords: {}" would not load
                spec["keywords"] = {k: list(v) for k, v in i.keywords.items()}
            if i.patterns:
                spec["patterns"] = list(i.patterns)
            if i.examples:
                spec["examples"] = list(i.examples)
            spec["k"] = i.k
            if i.parent:
                spec["parent"] = i.parent
            intents[i.name] = spec
        return {"name": self.name, "version": self.version, "intents": intents}

    @classmethod
    def from_yaml(cls, path: str | Path) -> Taxonomy:
        """Load a taxonomy YAML file."""
        import yaml

        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise TaxonomyError(f"taxonomy file {path} does not exist") from None
        except UnicodeDecodeError as exc:
            raise TaxonomyError(f"taxonomy file {path} is not UTF-8 text: {exc}") from None
        try:
            data = yaml.load(text, Loader=_unique_key_loader())  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            line = f" (line {where.line + 1})" if where is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise TaxonomyError(f"taxonomy file {path} is not valid YAML{line}: {problem}") from None
        try:
            return cls.from_dict(data)
        except TaxonomyError as exc:
            raise TaxonomyError(f"{path}: {exc}") from None

    def to_yaml(self, path: str | Path) -> None:
        """Write the taxonomy as YAML (atomically)."""
        import yaml

        from tokenflow_rag._io import atomic_write_text

        atomic_write_text(Path(path), yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False))


def _as_str_tuple(value: Any, *, intent: str, field_name: str, allow_empty: bool = True) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TaxonomyError(f"intent {intent!r}, field {field_name!r}: expected a list of strings, got {value!r}")
    items = tuple(value)
    bad = [v for v in items if not isinstance(v, str) or not v.strip()]
    if bad:
        raise TaxonomyError(
            f"intent {intent!r}, field {field_name!r}: entries must be non-empty strings, got {bad[0]!r}"
        )
    if not items and not allow_empty:
        raise TaxonomyError(
            f"intent {intent!r}, field {field_name!r}: the list is empty; add at least one entry or drop the field"
        )
    return tuple(v.strip() for v in items)


def _unique_key_loader() -> Any:
    """A yaml SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last, silently)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: Any, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is defined twice; each key may appear once", key_node.start_mark
                )
            seen.add(key)
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return Loader


def _parse_intent(name: Any, spec: Any) -> Intent:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise TaxonomyError(f"intent name {name!r} is invalid: use lower snake case like 'order_management'")
    if name == NONE_INTENT:
        raise TaxonomyError(f"intent name {NONE_INTENT!r} is reserved for 'no intent'; do not define it")
    spec = spec or {}
    if not isinstance(spec, Mapping):
        raise TaxonomyError(f"intent {name!r}: definition must be a mapping, got {type(spec).__name__}")
    unknown = set(spec) - _INTENT_KEYS
    if unknown:
        raise TaxonomyError(f"intent {name!r}: unknown field(s) {sorted(unknown)}; allowed: {sorted(_INTENT_KEYS)}")

    raw_keywords = spec.get("keywords", {})
    if isinstance(raw_keywords, Mapping):
        keywords = {
            str(lang): _as_str_tuple(words, intent=name, field_name=f"keywords.{lang}", allow_empty=False)
            for lang, words in raw_keywords.items()
        }
    else:  # a flat list: language does not matter for matching
        keywords = {"any": _as_str_tuple(raw_keywords, intent=name, field_name="keywords", allow_empty=False)}
    if "keywords" in spec and not any(keywords.values()):
        raise TaxonomyError(f"intent {name!r}, field 'keywords': no keywords given; add at least one")

    patterns = _as_str_tuple(spec.get("patterns", ()), intent=name, field_name="patterns")
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise TaxonomyError(f"intent {name!r}, field 'patterns': invalid regex {pattern!r}: {exc}") from None

    k = spec.get("k", 3)
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise TaxonomyError(f"intent {name!r}, field 'k': expected a positive integer, got {k!r}")
    parent = spec.get("parent")
    if parent is not None and not isinstance(parent, str):
        raise TaxonomyError(f"intent {name!r}, field 'parent': expected an intent name, got {parent!r}")
    description = spec.get("description", "")
    if not isinstance(description, str):
        raise TaxonomyError(f"intent {name!r}, field 'description': expected a string, got {description!r}")
    return Intent(
        name=name,
        description=description.strip(),
        keywords=keywords,
        patterns=patterns,
        examples=_as_str_tuple(spec.get("examples", ()), intent=name, field_name="examples"),
        k=k,
        parent=parent,
    )


def load_taxonomy(source: str | Path | Mapping[str, Any] | Taxonomy | None = None) -> Taxonomy:
    """Load a taxonomy from a YAML path, a dict, or return the default business taxonomy for ``None``."""
    if source is None:
        return default_taxonomy()
    if isinstance(source, Taxonomy):
        return source
    if isinstance(source, Mapping):
        return Taxonomy.from_dict(source)
    if isinstance(source, (str, Path)):
        return Taxonomy.from_yaml(source)
    raise TaxonomyError(f"cannot load a taxonomy from {type(source).__name__}; pass a YAML path, a dict or None")


def default_taxonomy() -> Taxonomy:
    """The shipped business taxonomy (payment, refund, notification, user_auth, inventory, ...)."""
    import yaml

    from tokenflow_rag._resources import package_data

    text = package_data("default_taxonomy.yaml").read_text(encoding="utf-8")
    return Taxonomy.from_dict(yaml.safe_load(text))
