"""Keyword and regex rules: the stable, explainable half of the hybrid classifier.

Scores are independent per intent (multi-label): each distinct keyword that fires adds evidence with
``score = 1 - prod(1 - weight)``, so a second matching intent never lowers the first one's score
(the prototype normalised rule scores to sum to one, which shrank every share as intents were added).

English keywords match whole words with common inflections; Chinese keywords match as substrings of
the character sequence (``segmenter="chars"``, the default) or only on jieba word boundaries
(``segmenter="jieba"``). Overlapping matches resolve to the longest keyword, so ``取消订阅``
(unsubscribe) does not also count as ``取消`` (cancel an order).

Matching gives exactly what one regex alternation over all keywords (longest keyword first) would:
at the leftmost position where any keyword matches, the longest keyword that matches there wins, and
the scan resumes after it. It is computed without that alternation, whose cost grows with the number of
keywords: keywords are bucketed by the first one or two characters of their literal start, and a text
only tries the keywords whose bucket key occurs in it (about 35x faster on the default taxonomy, BENCHMARKS.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

from tokenflow_rag.classifiers.base import register_classifier, select_intents
from tokenflow_rag.errors import ConfigError
from tokenflow_rag.taxonomy import Taxonomy, load_taxonomy
from tokenflow_rag.types import IntentPrediction

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_EN_SUFFIX = r"(?:s|es|ed|d|ing|er|ers)?"
_LATIN_EDGE_BEFORE = r"(?<![a-z0-9])"
_LATIN_EDGE_AFTER = r"(?![a-z0-9])"


def _keyword_regex(keyword: str) -> str:
    """Regex for one keyword: Chinese as a substring, Latin as whole words with inflections."""
    kw = keyword.lower()
    if _CJK.search(kw):
        return re.escape(kw)
    body = r"[\s\-]+".join(re.escape(part) for part in kw.split())
    return f"{_LATIN_EDGE_BEFORE}{body}{_EN_SUFFIX}{_LATIN_EDGE_AFTER}"


@lru_cache(maxsize=1)
def _jieba():  # type: ignore[no-untyped-def]
    """jieba, imported on first use (it builds its dictionary lazily too)."""
    from tokenflow_rag._optional import require

    jieba = require("jieba", extra="zh")
    jieba.setLogLevel(60)  # its dictionary-loading chatter is noise in a CLI
    return jieba


@register_classifier("rules")
class RuleClassifier:
    """Multi-label keyword/regex classifier over a :class:`Taxonomy`.

    Args:
        taxonomy: The intents and their keywords; the default business taxonomy when omitted.
        keyword_weight: Evidence one distinct keyword adds (0.6: a single keyword passes 0.5).
        pattern_weight: Evidence one regex pattern adds.
        threshold: Score an intent needs to be predicted.
        segmenter: ``"chars"`` (substring match on Chinese) or ``"jieba"`` (word-boundary match).

    >>> clf = RuleClassifier()
    >>> p = clf.predict(["退款多久到账? I also never got the SMS"])[0]
    >>> sorted(p.intents), p.evidence["refund"]
    (['notification', 'refund'], ('退款',))
    """

    def __init__(
        self,
        taxonomy: Taxonomy | str | None = None,
        *,
        keyword_weight: float = 0.6,
        pattern_weight: float = 0.8,
        threshold: float = 0.5,
        segmenter: Literal["chars", "jieba"] = "chars",
    ) -> None:
        for name, value in (
            ("keyword_weight", keyword_weight),
            ("pattern_weight", pattern_weight),
            ("threshold", threshold),
        ):
            if not 0.0 < value <= 1.0:
                raise ConfigError(f"{name} must be in (0, 1], got {value!r}")
        if segmenter not in ("chars", "jieba"):
            raise ConfigError(f"segmenter must be 'chars' or 'jieba', got {segmenter!r}")
        self._taxonomy = load_taxonomy(taxonomy)
        self.keyword_weight = keyword_weight
        self.pattern_weight = pattern_weight
        self.threshold = threshold
        self.segmenter = segmenter
        self._compile()

    @property
    def taxonomy(self) -> Taxonomy:
        return self._taxonomy

    def _compile(self) -> None:
        owners: dict[str, list[str]] = {}
        for intent in self._taxonomy:
            for kw in intent.all_keywords:
                owners.setdefault(kw.lower(), []).append(intent.name)
        # Longest first: the order in which a regex alternation would try them at each position.
        ordered = sorted(owners, key=len, reverse=True)
        self._keyword_owners = owners
        self._name_order = {name: i for i, name in enumerate(self._taxonomy.names)}
        # Every match of a keyword starts with a literal: the keyword itself (Chinese) or its first word
        # (English: the words are joined by any whitespace or hyphens). Bucket by that literal's first
        # one or two characters, so a text only tries the keywords whose key occurs in it.
        self._buckets: dict[str, list[tuple[int, str, str, re.Pattern[str] | None]]] = {}
        self._degenerate_re: re.Pattern[str] | None = None
        for rank, kw in enumerate(ordered):
            if _CJK.search(kw):
                literal, matcher = kw, None
            else:
                words = kw.split()
                if not words:  # only whitespace: it matches empty strings; keep the plain alternation
                    self._degenerate_re = re.compile("|".join(f"({_keyword_regex(k)})" for k in ordered))
                    self._group_keyword = dict(enumerate(ordered, start=1))
                    break
                literal, matcher = words[0], re.compile(_keyword_regex(kw))
            self._buckets.setdefault(literal[:2], []).append((rank, kw, literal, matcher))
        self._single_char_keys = any(len(key) == 1 for key in self._buckets)
        self._patterns = [
            (intent.name, p, re.compile(p, re.IGNORECASE)) for intent in self._taxonomy for p in intent.patterns
        ]

    def _keyword_matches(self, lowered: str) -> list[tuple[int, int, str]]:
        """(start, end, keyword) of the keyword matches, as one longest-first alternation would find them."""
        if self._degenerate_re is not None:
            return [
                (m.start(), m.end(), self._group_keyword[m.lastindex or 0])
                for m in self._degenerate_re.finditer(lowered)
            ]
        keys = {lowered[i : i + 2] for i in range(len(lowered) - 1)}
        if self._single_char_keys:
            keys.update(lowered)
        found: list[tuple[int, int, int, str]] = []  # (start, rank, end, keyword)
        for key in keys:
            for rank, kw, literal, matcher in self._buckets.get(key, ()):
                start = lowered.find(literal)
                while start >= 0:
                    if matcher is None:
                        found.append((start, rank, start + len(kw), kw))
                    else:
                        match = matcher.match(lowered, start)
                        if match is not None:
                            found.append((start, rank, match.end(), kw))
                    start = lowered.find(literal, start + 1)
        # Leftmost start first, then the keyword the alternation tries first; skip what a match covers.
        found.sort()
        kept: list[tuple[int, int, str]] = []
        end = 0
        for start, _, stop, kw in found:
            if start >= end:
                kept.append((start, stop, kw))
                end = stop
        return kept

    # -- prediction ---------------------------------------------------------------------------
    def predict(self, texts: Sequence[str]) -> list[IntentPrediction]:
        """Classify each text; see :class:`IntentPrediction` for the fields."""
        return [self._predict_one(t) for t in texts]

    def scores(self, text: str) -> tuple[dict[str, float], dict[str, tuple[str, ...]]]:
        """Per-intent rule scores and the evidence (keywords / patterns that fired) for one text."""
        hits: dict[str, list[tuple[str, float]]] = {}
        lowered = text.lower()
        boundaries = self._word_boundaries(text) if self.segmenter == "jieba" else None
        for start, end, keyword in self._keyword_matches(lowered):
            off_boundary = start not in boundaries or end not in boundaries if boundaries else False
            if off_boundary and _CJK.search(keyword):
                continue
            for name in self._keyword_owners[keyword]:
                hits.setdefault(name, []).append((keyword, self.keyword_weight))
        for name, source, regex in self._patterns:
            if regex.search(text):
                hits.setdefault(name, []).append((f"re:{source}", self.pattern_weight))

        scores = dict.fromkeys(self._taxonomy.names, 0.0)
        evidence: dict[str, tuple[str, ...]] = {}
        for name in sorted(hits, key=self._name_order.__getitem__):  # taxonomy order, as before
            distinct = dict(hits[name])  # a repeated keyword is one piece of evidence
            miss = 1.0
            for weight in distinct.values():
                miss *= 1.0 - weight
            scores[name] = 1.0 - miss
            evidence[name] = tuple(distinct)
        return scores, evidence

    def _predict_one(self, text: str) -> IntentPrediction:
        scores, evidence = self.scores(text)
        return IntentPrediction(
            scores=scores,
            intents=select_intents(scores, self.threshold),
            evidence=evidence,
            components={"rules": scores},
        )

    @staticmethod
    def _word_boundaries(text: str) -> set[int]:
        bounds = {0, len(text)}
        for _, start, end in _jieba().tokenize(text.lower()):
            bounds.update((start, end))
        return bounds
