"""Keywords mined from labelled data, so the rules half of the hybrid works on any label set.

A benchmark's labels (SNIPS intents, CLINC domains, CrossWOZ's Chinese domain names ...) come with
no keywords. :func:`mine_taxonomy` finds, per label, the n-grams that are both frequent in its
examples and rare elsewhere:

* Latin text: word 1- and 2-grams. Counting follows how :class:`~.rules.RuleClassifier` matches, so
  a keyword's measured precision is the precision it will have: whole words, and a keyword also
  fires on its inflections (``play`` on ``plays``, ``playing``), so a token counts for its stems too.
* Chinese: character 2- to 4-grams (the rule matcher finds Chinese keywords as substrings).

A candidate is kept for a label when at least ``min_support`` examples of the label contain it and
at least ``min_precision`` of all examples containing it carry the label. Kept candidates are then
ranked by support, and one that contains an already chosen keyword (``play some`` or ``playing``
after ``play``) is skipped, since the matcher fires there already. Redundant keywords that are not
contained in each other are kept on purpose: a test query may use only one of them. A label without any
qualifying keyword is still defined, with no ``keywords`` field: the neural half covers it.

Raw labels are rarely valid intent names (``AddToPlaylist``, ``景点``), so :func:`safe_label` maps
them to lower snake case deterministically, and :class:`LabelMap` maps back for reports.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from tokenflow_rag.errors import ConfigError
from tokenflow_rag.evaluation.datasets import LabeledText
from tokenflow_rag.taxonomy import NONE_INTENT, Taxonomy

__all__ = ["LabelMap", "mine_keywords", "mine_taxonomy", "safe_label"]

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_LATIN_TOKEN = re.compile(r"[a-z0-9]+")
_LATIN_GAP = re.compile(r"^[\s\-]+$")
_HAS_LETTER = re.compile(r"[a-z]")
# The inflections RuleClassifier accepts after a Latin keyword (rules._EN_SUFFIX), longest first.
_SUFFIXES = ("ers", "ing", "er", "es", "ed", "s", "d")


def safe_label(raw: str) -> str:
    """A valid intent name for a raw label: lower snake case, same input -> same output.

    CamelCase is split at the humps, other ASCII punctuation becomes ``_``, and every non-ASCII
    character becomes ``u`` plus its hex code point, so different raw labels stay different.

    >>> safe_label("AddToPlaylist"), safe_label("atis_flight"), safe_label("景点"), safe_label("2fa")
    ('add_to_playlist', 'atis_flight', 'u666f_u70b9', 'l_2fa')
    """
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"a label must be a non-empty string, got {raw!r}")
    text = raw.strip()
    if _NAME_RE.match(text) and text != NONE_INTENT:
        return text
    parts = []
    for char in _CAMEL.sub("_", text):
        if char.isascii():
            parts.append(char.lower() if char.isalnum() else "_")
        else:
            parts.append(f"_u{ord(char):x}_")
    name = re.sub(r"_+", "_", "".join(parts)).strip("_")
    if not name or not name[0].isalpha() or name == NONE_INTENT:
        name = f"l_{name}"
    return name


@dataclass(frozen=True)
class LabelMap:
    """Raw labels <-> intent names, built with :func:`safe_label` and checked for collisions.

    >>> m = LabelMap.from_labels(["PlayMusic", "GetWeather"])
    >>> m.to_safe(["PlayMusic"]), m.to_raw(["get_weather"])
    (('play_music',), ('GetWeather',))
    """

    raw_of: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "raw_of", MappingProxyType(dict(self.raw_of)))

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> LabelMap:
        """Map every distinct label; raises when two raw labels would get the same name."""
        raw_of: dict[str, str] = {}
        for raw in sorted(set(labels)):
            name = safe_label(raw)
            if raw_of.setdefault(name, raw) != raw:
                raise ConfigError(
                    f"labels {raw_of[name]!r} and {raw!r} both map to the intent name {name!r}; rename one of them"
                )
        return cls(raw_of)

    @property
    def safe_of(self) -> dict[str, str]:
        """``{raw: safe}``."""
        return {raw: name for name, raw in self.raw_of.items()}

    def to_safe(self, labels: Iterable[str]) -> tuple[str, ...]:
        """Intent names of raw labels (a raw label not in the map is converted with :func:`safe_label`)."""
        safe_of = self.safe_of
        return tuple(safe_of.get(raw) or safe_label(raw) for raw in labels)

    def to_raw(self, names: Iterable[str]) -> tuple[str, ...]:
        """Raw labels of intent names (a name not in the map is returned as it is)."""
        return tuple(self.raw_of.get(name, name) for name in names)

    def examples_to_safe(self, examples: Sequence[LabeledText]) -> list[LabeledText]:
        """The examples with their labels renamed to intent names."""
        return [LabeledText(ex.text, self.to_safe(ex.intents)) for ex in examples]


def candidate_ngrams(text: str, *, max_words: int = 2, cjk_sizes: tuple[int, int] = (2, 4)) -> set[str]:
    """Every keyword that :class:`~.rules.RuleClassifier` would find in ``text`` among the mined kinds.

    >>> sorted(candidate_ngrams("Playing jazz"))
    ['jazz', 'play', 'playing', 'playing jazz']
    >>> sorted(candidate_ngrams("订酒店"))
    ['订酒', '订酒店', '酒店']
    """
    lowered = text.lower()
    out: set[str] = set()
    tokens = [(m.group(), m.start(), m.end()) for m in _LATIN_TOKEN.finditer(lowered)]
    for i, (token, _, end) in enumerate(tokens):
        if _HAS_LETTER.search(token):
            out.update(_stems(token))
        # An n-gram is prefix words joined by spaces plus one stem of the last word, as the
        # matcher applies the inflection suffix to the keyword's end only.
        prefix = [token]
        last_end = end
        for j in range(i + 1, min(i + max_words, len(tokens))):
            nxt, start, nxt_end = tokens[j]
            if not _LATIN_GAP.match(lowered[last_end:start]):
                break
            if any(_HAS_LETTER.search(w) for w in (*prefix, nxt)):
                out.update(" ".join((*prefix, stem)) for stem in _stems(nxt))
            prefix.append(nxt)
            last_end = nxt_end
    low, high = cjk_sizes
    for run in _CJK_RUN.findall(lowered):
        for size in range(low, high + 1):
            out.update(run[i : i + size] for i in range(len(run) - size + 1))
    return out


def _stems(token: str) -> set[str]:
    stems = {token}
    for suffix in _SUFFIXES:
        if token.endswith(suffix) and len(token) - len(suffix) >= 2:
            stems.add(token[: -len(suffix)])
    return stems


def mine_keywords(
    examples: Sequence[LabeledText],
    *,
    min_support: int = 3,
    min_precision: float = 0.9,
    max_keywords: int = 15,
    max_words: int = 2,
    cjk_sizes: tuple[int, int] = (2, 4),
) -> dict[str, list[str]]:
    """Discriminative keywords per label, best first; labels with none found map to ``[]``.

    Args:
        examples: Labelled texts; multi-label and no-intent examples are fine (the latter only
            lower the precision of the n-grams they contain).
        min_support: Examples of the label that must contain a keyword.
        min_precision: Share of the examples containing a keyword that must carry the label.
        max_keywords: Most keywords per label.
        max_words: Longest Latin n-gram, in words.
        cjk_sizes: Shortest and longest Chinese n-gram, in characters.

    Raises:
        ConfigError: A knob is out of range.

    >>> rows = [LabeledText(t, (l,)) for t, l in [("play jazz", "music"), ("play rock", "music"),
    ...         ("rain today", "weather"), ("rain tomorrow", "weather")]]
    >>> mine_keywords(rows, min_support=2)
    {'music': ['play'], 'weather': ['rain']}
    """
    if not isinstance(min_support, int) or min_support < 1:
        raise ConfigError(f"min_support must be a positive integer, got {min_support!r}")
    if not 0.0 < min_precision <= 1.0:
        raise ConfigError(f"min_precision must be in (0, 1], got {min_precision!r}")
    if not isinstance(max_keywords, int) or max_keywords < 1:
        raise ConfigError(f"max_keywords must be a positive integer, got {max_keywords!r}")
    if max_words < 1 or not 1 <= cjk_sizes[0] <= cjk_sizes[1]:
        raise ConfigError(f"need max_words >= 1 and 1 <= cjk_sizes[0] <= cjk_sizes[1], got {max_words}, {cjk_sizes}")
    labels = sorted({name for ex in examples for name in ex.intents})
    docs_with: dict[str, list[int]] = defaultdict(list)
    for i, ex in enumerate(examples):
        for gram in candidate_ngrams(ex.text, max_words=max_words, cjk_sizes=cjk_sizes):
            docs_with[gram].append(i)
    label_sets = [set(ex.intents) for ex in examples]
    # A stem counts the words it fires on, but is only offered as a keyword when it is a word
    # itself: "play" (seen alone) is a keyword, "weath" (from "weather") is not.
    vocabulary = {token for ex in examples for token in _LATIN_TOKEN.findall(ex.text.lower())}

    # Per label: candidates that pass support and precision, as (support, precision).
    kept: dict[str, dict[str, tuple[int, float]]] = {name: {} for name in labels}
    for gram, docs in docs_with.items():
        if len(docs) < min_support or not _is_word_ending(gram, vocabulary):
            continue
        per_label: Counter[str] = Counter(name for d in docs for name in label_sets[d])
        for name, support in per_label.items():
            if support >= min_support and support / len(docs) >= min_precision:
                kept[name][gram] = (support, support / len(docs))

    out: dict[str, list[str]] = {}
    for name in labels:
        # Most examples first, then the more precise, then the shorter; alphabetical breaks ties.
        ranked = sorted(kept[name].items(), key=lambda item: (-item[1][0], -item[1][1], len(item[0]), item[0]))
        chosen: list[str] = []
        for gram, _ in ranked:
            if len(chosen) == max_keywords:
                break
            # "play some" or "playing" add nothing once "play" is in: the matcher already fires there.
            if not any(_contains(gram, keyword) for keyword in chosen):
                chosen.append(gram)
        out[name] = chosen
    return out


def _is_word_ending(gram: str, vocabulary: set[str]) -> bool:
    if _CJK_RUN.search(gram):
        return True
    last = gram.rsplit(" ", 1)[-1]
    return last in vocabulary and (" " in gram or len(last) >= 2)


def _contains(gram: str, keyword: str) -> bool:
    if _CJK_RUN.search(keyword):
        return keyword in gram
    return re.search(rf"(?<![a-z0-9]){re.escape(keyword)}", gram) is not None


def mine_taxonomy(
    examples: Sequence[LabeledText],
    *,
    name: str = "mined",
    label_map: LabelMap | None = None,
    k: int = 3,
    **knobs: Any,
) -> Taxonomy:
    """A taxonomy with one intent per label of ``examples`` and keywords mined from them.

    Args:
        examples: Labelled texts with raw labels (``AddToPlaylist``, ``景点`` ...).
        name: The taxonomy's name.
        label_map: How raw labels become intent names (default: :meth:`LabelMap.from_labels`).
        k: Chunks per intent, for retrieval.
        **knobs: Passed to :func:`mine_keywords` (``min_support``, ``min_precision``, ``max_keywords`` ...).

    Returns:
        The taxonomy; each intent's description names its raw label and its example count.

    Raises:
        ConfigError: No labelled example, or two labels that map to the same intent name.

    >>> rows = [LabeledText("play jazz", ("PlayMusic",))] * 3 + [LabeledText("rain?", ("GetWeather",))]
    >>> tax = mine_taxonomy(rows, name="snips")
    >>> tax.names, tax["play_music"].all_keywords, tax["get_weather"].all_keywords
    (('get_weather', 'play_music'), ('jazz', 'play'), ())
    """
    labels = sorted({label for ex in examples for label in ex.intents})
    if not labels:
        raise ConfigError("mine_taxonomy needs examples with at least one intent; every example is 'none'")
    label_map = label_map or LabelMap.from_labels(labels)
    safe = label_map.examples_to_safe(examples)
    keywords = mine_keywords(safe, **knobs)
    counts = Counter(label for ex in safe for label in ex.intents)
    intents: dict[str, dict[str, Any]] = {}
    for intent in sorted(counts):
        spec: dict[str, Any] = {
            "description": f"label {label_map.to_raw([intent])[0]!r}, mined from {counts[intent]} examples",
            "k": k,
        }
        if keywords.get(intent):  # the loader rejects an empty list; no keywords means no field
            spec["keywords"] = {"any": keywords[intent]}
        intents[intent] = spec
    return Taxonomy.from_dict({"name": name, "intents": intents})
