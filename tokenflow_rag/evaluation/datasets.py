"""Labeled intent data in the public formats, read into one shape: :class:`LabeledText`.

Each format has one small reader in a dict registry; :func:`load_labeled` picks it by name. Every
reader takes file paths, never a split name baked into a folder layout, because the test splits
of these benchmarks are withheld and must load exactly like the released dev files. Malformed input
raises :class:`~tokenflow_rag.errors.DataFormatError` naming the file, the line or item, the field
and the fix, so a broken benchmark file never turns silently into a wrong score.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import random
import re
import warnings
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from tokenflow_rag.errors import ConfigError, DataFormatError
from tokenflow_rag.taxonomy import NONE_INTENT

__all__ = [
    "LABELED_FORMATS",
    "MIX_INTENT_COUNT_WEIGHTS",
    "MIX_JOINERS",
    "LabeledText",
    "load_labeled",
    "mix_from_single",
    "register_labeled_format",
]

logger = logging.getLogger(__name__)

Split = Literal["train", "test"]
LabeledLoader = Callable[[Path, Split], list["LabeledText"]]

MIX_INTENT_COUNT_WEIGHTS: Mapping[int, float] = MappingProxyType({1: 0.3, 2: 0.5, 3: 0.2})
"""Share of 1-, 2- and 3-intent utterances :func:`mix_from_single` builds (MixATIS/MixSNIPS, Qin et al. 2020)."""

MIX_JOINERS: tuple[str, ...] = (" and ", " and then ", ", ")
"""Conjunctions :func:`mix_from_single` joins utterances with, one drawn per junction."""

_MAX_PARTNER_DRAWS = 50
_CSV_HEADER = ["text", "intents"]
_CSV_INTENT_SEP = re.compile(r"[|;]")
_CLINC_OOS = "oos"
# CLINC files without a test split (the released train/val file) are scored on val instead.
_CLINC_KEYS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "train": (("train", "oos_train"),),
    "test": (("test", "oos_test"), ("val", "oos_val")),
}
_CROSSWOZ_GENERAL = "General"


@dataclass(frozen=True)
class LabeledText:
    """One text and its gold intents.

    ``intents`` is normalised on construction: sorted, deduplicated, with the label "none"
    (any case) dropped, so ``()`` is the only spelling of "no intent".

    >>> LabeledText("pay and then notify me", ("payment", "notification", "payment")).intents
    ('notification', 'payment')
    """

    text: str
    intents: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.intents, str):
            raise ConfigError(f"intents must be a tuple of intent names, got the string {self.intents!r}")
        object.__setattr__(self, "intents", _clean(self.intents))

    @property
    def is_none(self) -> bool:
        """True when the text has no intent."""
        return not self.intents


LABELED_FORMATS: dict[str, LabeledLoader] = {}
"""Registry of readers by format name; add one with :func:`register_labeled_format`."""


def register_labeled_format(name: str) -> Callable[[LabeledLoader], LabeledLoader]:
    """Decorator that makes a reader ``(path, split) -> list[LabeledText]`` loadable as ``fmt=name``."""

    def decorate(loader: LabeledLoader) -> LabeledLoader:
        LABELED_FORMATS[name] = loader
        return loader

    return decorate


def load_labeled(
    fmt: str,
    paths: Sequence[str | Path] | str | Path,
    *,
    split: Split = "test",
    domains: str | Path | None = None,
) -> list[LabeledText]:
    """Read labeled examples from one or more files of one format.

    Args:
        fmt: A key of :data:`LABELED_FORMATS`: ``jsonl``, ``csv``, ``snips``, ``nlupp``, ``clinc``, ``crosswoz``.
        paths: The files, read in order and concatenated (e.g. several NLU++ folds); one path is accepted too.
        split: Which part of a multi-split file to read; only ``clinc`` files hold several splits
            (``train`` = train + oos_train, ``test`` = test + oos_test, or val + oos_val when there is no test).
        domains: A JSON object ``{domain: [intent, ...]}`` (CLINC150's ``domains.json``); when given, every
            intent is replaced by its domain, for scoring at the coarser level. Works with any format.

    Returns:
        The examples, in file order.

    Raises:
        ConfigError: Unknown ``fmt``, bad ``split`` or no paths.
        FileNotFoundError: A path does not exist.
        DataFormatError: A file is malformed, or an intent is missing from ``domains``.
    """
    loader = LABELED_FORMATS.get(fmt)
    if loader is None:
        raise ConfigError(f"unknown format {fmt!r}; known formats: {', '.join(sorted(LABELED_FORMATS))}")
    if split not in ("train", "test"):
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    files = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    if not files:
        raise ConfigError("paths is empty; pass at least one file to load")
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist or is not a file (fmt={fmt!r})")
    domains_path = Path(domains) if domains is not None else None
    parent_of = _read_domains(domains_path) if domains_path is not None else None
    rows: list[LabeledText] = []
    for path in files:
        part = loader(path, split)
        if not part:
            warnings.warn(f"{path} holds no examples (fmt={fmt!r}, split={split!r})", stacklevel=2)
        if parent_of is not None and domains_path is not None:
            part = [_to_domains(row, parent_of, path, i, domains_path) for i, row in enumerate(part)]
        rows.extend(part)
    logger.info("loaded %d %s examples from %d file(s)", len(rows), fmt, len(files))
    return rows


def mix_from_single(examples: Sequence[LabeledText], *, seed: int, n: int | None = None) -> list[LabeledText]:
    """Build MixATIS/MixSNIPS-style multi-intent data from single-intent examples.

    Follows the recipe of Qin et al. (2020, AGIF): each output utterance joins 1, 2 or 3 source
    utterances in the ratio :data:`MIX_INTENT_COUNT_WEIGHTS` (0.3 / 0.5 / 0.2, as published; the
    released MixATIS_clean dev file measures 0.14 / 0.60 / 0.26), with a conjunction from
    :data:`MIX_JOINERS` drawn per junction. Only single-intent utterances are joined, each with a
    different intent, so no output has more than 3 intents; examples with no or several intents
    appear alone. Sources are drawn with replacement, so ``n`` may exceed ``len(examples)``.

    Args:
        examples: Source utterances, typically a single-intent train split.
        seed: Seed of the private random generator; the same inputs and seed give the same output.
        n: How many utterances to build (default: ``len(examples)``).

    Returns:
        ``n`` examples.

    Raises:
        ConfigError: ``n`` < 1, or fewer than two different intents to join.

    >>> src = [LabeledText("play jazz", ("PlayMusic",)), LabeledText("rain today?", ("GetWeather",))]
    >>> len(mix_from_single(src, seed=0, n=4))
    4
    """
    pool = list(examples)
    single = [ex for ex in pool if len(ex.intents) == 1]
    if len({ex.intents for ex in single}) < 2:
        raise ConfigError("mix_from_single needs single-intent examples of at least two different intents")
    count = len(pool) if n is None else n
    if count < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    rng = random.Random(seed)
    sizes, weights = list(MIX_INTENT_COUNT_WEIGHTS), list(MIX_INTENT_COUNT_WEIGHTS.values())
    mixed: list[LabeledText] = []
    for _ in range(count):
        size = rng.choices(sizes, weights)[0]
        if size == 1:
            mixed.append(rng.choice(pool))
            continue
        first = rng.choice(single)
        text, used = first.text, set(first.intents)
        for _part in range(size - 1):
            for _draw in range(_MAX_PARTNER_DRAWS):
                partner = rng.choice(single)
                if used.isdisjoint(partner.intents):
                    break
            else:
                # One intent can dominate a pool (atis_flight is 74% of ATIS): settle for fewer parts
                # rather than loop until a rare partner turns up.
                break
            text += rng.choice(MIX_JOINERS) + partner.text
            used.update(partner.intents)
        mixed.append(LabeledText(text, tuple(used)))
    return mixed


# -- shared readers (also used by retrieval_datasets) ------------------------------------------


def read_text(path: Path) -> str:
    """Read a UTF-8 file (a BOM is tolerated) or raise DataFormatError naming it."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path}: byte {exc.start} is not valid UTF-8; save the file as UTF-8") from exc


def read_json(path: Path) -> Any:
    """Parse a JSON file or raise DataFormatError naming the file, line and column."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{path}: line {exc.lineno}, column {exc.colno}: invalid JSON ({exc.msg})") from exc


def read_crosswoz_dialogues(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Read CrossWOZ dialogues (a ``.json`` file, or a zip holding exactly one) as ``{dialogue_id: messages}``.

    Every message is checked to be an object with ``role`` ``usr`` or ``sys`` and a string ``content``.
    """
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if m.endswith(".json") and not m.startswith("__MACOSX")]
            if len(members) != 1:
                raise DataFormatError(f"{path}: the zip must hold exactly one .json file, found {members}")
            try:
                data = json.loads(archive.read(members[0]).decode("utf-8-sig"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise DataFormatError(f"{path}: {members[0]} is not valid UTF-8 JSON ({exc})") from exc
    else:
        data = read_json(path)
    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: expected a JSON object {{dialogue_id: dialogue}}, got {type(data).__name__}")
    dialogues: dict[str, list[dict[str, Any]]] = {}
    for dialogue_id, dialogue in data.items():
        messages = dialogue.get("messages") if isinstance(dialogue, dict) else None
        if not isinstance(messages, list):
            raise DataFormatError(f"{path}: dialogue {dialogue_id}: field 'messages' must be a list of turns")
        for t, msg in enumerate(messages):
            ok = isinstance(msg, dict) and msg.get("role") in ("usr", "sys") and isinstance(msg.get("content"), str)
            if not ok:
                raise DataFormatError(
                    f"{path}: dialogue {dialogue_id}, turn {t}: expected an object with 'role' "
                    "('usr' or 'sys') and a string 'content'"
                )
        dialogues[str(dialogue_id)] = messages
    return dialogues


# -- one reader per format ---------------------------------------------------------------------


@register_labeled_format("jsonl")
def _load_jsonl(path: Path, split: Split) -> list[LabeledText]:
    rows = []
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}: line {lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFormatError(
                f"{where}: invalid JSON ({exc.msg}, column {exc.colno}); each line must be one JSON object"
            ) from exc
        if not isinstance(obj, dict):
            raise DataFormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        # "prompt"/"output" is the TokenFlow prototype's spelling of the same two fields; "query" is
        # how labelled retrieval query files (sample_corpus/queries.jsonl) name the text.
        text_key = next((k for k in ("text", "prompt", "query") if k in obj), None)
        intents_key = next((k for k in ("intents", "output") if k in obj), None)
        if text_key is None:
            raise DataFormatError(
                f'{where}: field \'text\' is missing; add "text" (or "query", or the prototype\'s "prompt")'
            )
        if intents_key is None:
            raise DataFormatError(f"{where}: field 'intents' is missing; add \"intents\": [...] ([] for no intent)")
        rows.append(
            LabeledText(_text(obj[text_key], where, text_key), _intent_list(obj[intents_key], where, intents_key))
        )
    return rows


@register_labeled_format("csv")
def _load_csv(path: Path, split: Split) -> list[LabeledText]:
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    header = next(reader, None)
    if header is None or [h.strip().lower() for h in header] != _CSV_HEADER:
        raise DataFormatError(
            f"{path}: line 1: header is {header!r}; the header must be exactly 'text,intents' "
            "(intents separated by '|' or ';', empty for no intent)"
        )
    rows = []
    for row in reader:
        where = f"{path}: line {reader.line_num}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(_CSV_HEADER):
            raise DataFormatError(
                f"{where}: has {len(row)} columns, expected 2 (text,intents); quote texts with commas"
            )
        intents = [p.strip() for p in _CSV_INTENT_SEP.split(row[1]) if p.strip()]
        rows.append(LabeledText(_text(row[0], where, "text"), tuple(intents)))
    return rows


@register_labeled_format("snips")
def _load_snips(path: Path, split: Split) -> list[LabeledText]:
    rows, block = [], []
    # A sentinel blank line closes the last example when the file does not end with one.
    for lineno, line in enumerate([*read_text(path).splitlines(), ""], 1):
        if line.strip():
            block.append((lineno, line.strip()))
        elif block:
            rows.append(_snips_example(path, block))
            block = []
    return rows


def _snips_example(path: Path, block: list[tuple[int, str]]) -> LabeledText:
    *token_lines, (intent_lineno, intent_line) = block
    where = f"{path}: line {intent_lineno}"
    if not token_lines:
        raise DataFormatError(f"{where}: intent line {intent_line!r} has no 'token SLOT' lines before it")
    tokens = []
    for lineno, line in token_lines:
        parts = line.split()
        if len(parts) != 2:
            raise DataFormatError(
                f"{path}: line {lineno}: expected 'token BIO-slot' (two fields), got {line!r}; "
                "end each example with its intent line and a blank line"
            )
        tokens.append(parts[0])
    intents = intent_line.split("#")
    if len(intent_line.split()) != 1 or not all(intents):
        raise DataFormatError(f"{where}: intent line {intent_line!r} must be intent names joined by '#', no spaces")
    return LabeledText(" ".join(tokens), tuple(intents))


@register_labeled_format("nlupp")
def _load_nlupp(path: Path, split: Split) -> list[LabeledText]:
    data = read_json(path)
    if not isinstance(data, list):
        raise DataFormatError(f"{path}: expected a JSON list of {{'text', 'intents'?}} objects (an NLU++ fold)")
    rows = []
    for i, item in enumerate(data):
        where = f"{path}: item {i}"
        if not isinstance(item, dict) or "text" not in item:
            raise DataFormatError(f"{where}: field 'text' is missing; each item needs a 'text'")
        # NLU++ leaves out "intents" for examples that carry only slots: those are "none".
        rows.append(LabeledText(_text(item["text"], where, "text"), _intent_list(item.get("intents", []), where)))
    return rows


@register_labeled_format("clinc")
def _load_clinc(path: Path, split: Split) -> list[LabeledText]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: expected a CLINC150 JSON object with 'train', 'val', 'oos_*' lists")
    keys = next((pair for pair in _CLINC_KEYS[split] if pair[0] in data), None)
    if keys is None:
        wanted = " or ".join(repr(pair[0]) for pair in _CLINC_KEYS[split])
        raise DataFormatError(f"{path}: has no {wanted} list for split={split!r}; found keys {sorted(data)}")
    rows = []
    for key in keys:
        items = data.get(key, [])
        if not isinstance(items, list):
            raise DataFormatError(f"{path}: field {key!r} must be a list of [text, intent] pairs")
        for i, item in enumerate(items):
            where = f"{path}: {key}[{i}]"
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[1], str) and item[1].strip()):
                raise DataFormatError(f"{where}: expected a [text, intent] pair, got {item!r:.80}")
            intent = item[1].strip()
            rows.append(LabeledText(_text(item[0], where, "text"), () if intent == _CLINC_OOS else (intent,)))
    return rows


@register_labeled_format("crosswoz")
def _load_crosswoz(path: Path, split: Split) -> list[LabeledText]:
    rows = []
    for dialogue_id, messages in read_crosswoz_dialogues(path).items():
        for t, msg in enumerate(messages):
            if msg["role"] != "usr":
                continue
            where = f"{path}: dialogue {dialogue_id}, turn {t}"
            acts = msg.get("dialog_act", [])
            if not isinstance(acts, list):
                raise DataFormatError(f"{where}: field 'dialog_act' must be a list of [intent, domain, slot, value]")
            domains = set()
            for a, act in enumerate(acts):
                if not (isinstance(act, list) and len(act) == 4 and all(isinstance(x, str) for x in act)):
                    raise DataFormatError(
                        f"{where}: dialog_act[{a}] must be [intent, domain, slot, value], got {act!r}"
                    )
                # The released files put "General" first (["General", "greet", "none", "none"]) although
                # the documented order is [intent, domain, ...]; both spellings mean "no domain".
                if _CROSSWOZ_GENERAL not in act[:2]:
                    domains.add(act[1])
            rows.append(LabeledText(_text(msg["content"], where, "content"), tuple(domains)))
    return rows


# -- helpers -----------------------------------------------------------------------------------


def _clean(intents: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({i for i in intents if i.lower() != NONE_INTENT}))


def _text(raw: Any, where: str, field: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise DataFormatError(
            f"{where}: field {field!r} must be a non-empty string, got {raw!r:.40}; fix or drop the row"
        )
    return raw.strip()


def _intent_list(raw: Any, where: str, field: str = "intents") -> tuple[str, ...]:
    if isinstance(raw, str):
        raise DataFormatError(
            f"{where}: field {field!r} is the string {raw!r}, not a list; write it as [{json.dumps(raw)}]"
        )
    if not isinstance(raw, list):
        raise DataFormatError(f"{where}: field {field!r} must be a list of intent names ([] for no intent)")
    for i, name in enumerate(raw):
        if not isinstance(name, str) or not name.strip():
            raise DataFormatError(f"{where}: field {field!r} item {i} must be a non-empty string, got {name!r}")
    return tuple(name.strip() for name in raw)


def _read_domains(path: Path) -> dict[str, str]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: expected a JSON object {{domain: [intent, ...]}}")
    parent_of: dict[str, str] = {}
    for domain, intents in data.items():
        if not isinstance(intents, list) or not all(isinstance(i, str) for i in intents):
            raise DataFormatError(f"{path}: domain {domain!r} must map to a list of intent names")
        for intent in intents:
            if parent_of.setdefault(intent, domain) != domain:
                raise DataFormatError(
                    f"{path}: intent {intent!r} is listed under both {parent_of[intent]!r} and {domain!r}"
                )
    return parent_of


def _to_domains(row: LabeledText, parent_of: Mapping[str, str], path: Path, index: int, domains: Path) -> LabeledText:
    missing = [i for i in row.intents if i not in parent_of]
    if missing:
        raise DataFormatError(
            f"{domains}: intent {missing[0]!r} (example {index} of {path}) is under no domain; add it"
        )
    return LabeledText(row.text, tuple(parent_of[i] for i in row.intents))
