"""The taxonomy: the shipped default, the hierarchy, and clear errors for bad files."""

from __future__ import annotations

import pytest

from tokenflow_rag import Taxonomy, default_taxonomy, load_taxonomy
from tokenflow_rag.errors import TaxonomyError

PROTOTYPE_INTENTS = {"payment", "notification", "user_auth", "inventory", "order_management"}


def test_default_taxonomy_has_the_business_intents():
    tax = default_taxonomy()
    assert PROTOTYPE_INTENTS | {"refund", "shipping"} <= set(tax.names)
    assert "none" not in tax
    for intent in tax:
        assert intent.description
        assert intent.k >= 1
        langs = set(intent.keywords)
        assert {"en", "zh"} <= langs, f"{intent.name} needs Chinese and English keywords"
        assert intent.examples


def test_parents_and_children():
    tax = default_taxonomy()
    assert tax["refund"].parent == "payment"
    assert tax["shipping"].parent == "order_management"
    assert set(tax.expand(["payment"])) == {"payment", "refund"}
    assert tax.expand(["refund"]) == ("refund",)
    assert tax.to_parents(["refund", "shipping", "notification"]) == ("notification", "order_management", "payment")


def test_dict_and_yaml_round_trip(tmp_path):
    tax = default_taxonomy()
    path = tmp_path / "tax.yaml"
    tax.to_yaml(path)
    assert Taxonomy.from_yaml(path) == tax
    assert load_taxonomy(tax.to_dict()) == tax
    assert load_taxonomy(None) == tax


def test_list_form_and_flat_keywords():
    tax = load_taxonomy({"intents": [{"name": "billing", "keywords": ["invoice", "发票"], "k": 2}]})
    assert tax["billing"].all_keywords == ("invoice", "发票")
    assert tax["billing"].k == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"intents": {"payment": {"keywords": ["pay"], "colour": "red"}}},
            "intent 'payment': unknown field(s) ['colour']",
        ),
        (
            {"intents": [{"name": "a", "keywords": ["x"]}, {"name": "a", "keywords": ["y"]}]},
            "intent 'a' is defined twice",
        ),
        (
            {"intents": {"payment": {"keywords": {"en": []}}}},
            "intent 'payment', field 'keywords.en': the list is empty",
        ),
        (
            {"intents": {"payment": {"keywords": ["pay"], "patterns": ["(unclosed"]}}},
            "intent 'payment', field 'patterns': invalid regex",
        ),
        (
            {"intents": {"refund": {"keywords": ["refund"], "parent": "money"}}},
            "intent 'refund', field 'parent': unknown intent 'money'",
        ),
        ({"intents": {"none": {"keywords": ["x"]}}}, "reserved"),
        ({"intents": {"Payment": {"keywords": ["x"]}}}, "lower snake case"),
        (
            {"intents": {"payment": {"keywords": "pay"}}},
            "intent 'payment', field 'keywords': expected a list of strings",
        ),
        ({"intents": {"payment": {"keywords": ["pay"], "k": 0}}}, "intent 'payment', field 'k'"),
        ({"intents": {}}, "no intents"),
        ({"intent": {}}, "unknown top-level key"),
        ({"version": "v2", "intents": {"payment": {"keywords": ["pay"]}}}, "field 'version': expected an integer"),
        ({"name": ["a"], "intents": {"payment": {"keywords": ["pay"]}}}, "field 'name': expected a non-empty string"),
    ],
)
def test_bad_taxonomy_names_intent_and_field(data, message):
    with pytest.raises(
        TaxonomyError, match=message.replace("(", r"\(").replace("[", r"\[").replace(")", r"\)").replace("]", r"\]")
    ):
        Taxonomy.from_dict(data)


def test_bad_yaml_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("intents:\n  payment:\n    keywords: {en: []}\n", encoding="utf-8")
    with pytest.raises(TaxonomyError, match=r"bad\.yaml: intent 'payment', field 'keywords.en'"):
        load_taxonomy(bad)
    with pytest.raises(TaxonomyError, match="does not exist"):
        load_taxonomy(tmp_path / "missing.yaml")
    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("intents: [unclosed", encoding="utf-8")
    with pytest.raises(TaxonomyError, match="not valid YAML"):
        load_taxonomy(garbage)


def test_unknown_intent_lookup_lists_known_ones():
    with pytest.raises(TaxonomyError, match="unknown intent 'weather'.*payment"):
        default_taxonomy()["weather"]
    with pytest.raises(TaxonomyError, match="chunk 'x'.*'weather'"):
        default_taxonomy().check_names(["payment", "weather"], where="chunk 'x'")


def _expand_reference(tax: Taxonomy, names) -> tuple[str, ...]:
    """The quadratic original: a list as the queue and as the seen set."""
    out: list[str] = []
    stack = list(names)
    while stack:
        name = stack.pop(0)
        if name in out or name not in tax:
            continue
        out.append(name)
        stack.extend(i.name for i in tax if i.parent == name)
    return tuple(out)


def test_expand_matches_the_reference_on_random_hierarchies():
    import random

    from tokenflow_rag.taxonomy import Intent

    rnd = random.Random(3)
    for _ in range(30):
        names = [f"i{j}" for j in range(rnd.randint(1, 40))]
        intents = [
            Intent(n, keywords={"en": (n,)}, parent=rnd.choice(names[:j]) if j and rnd.random() < 0.7 else None)
            for j, n in enumerate(names)
        ]
        tax = Taxonomy(intents)
        queries = [[n] for n in names] + [["missing"], []]
        queries += [rnd.sample(names + ["missing"], rnd.randint(1, min(5, len(names)))) for _ in range(20)]
        for query in queries:
            assert tax.expand(query) == _expand_reference(tax, query), query
            assert tax.expand(iter(query)) == _expand_reference(tax, query)  # any iterable, twice (cached)


def test_an_intent_given_twice_in_yaml_is_an_error_not_merged(tmp_path):
    twice = tmp_path / "twice.yaml"
    twice.write_text("intents:\n  refund: {keywords: [refund], k: 4}\n  refund: {keywords: [money back]}\n", "utf-8")
    with pytest.raises(TaxonomyError, match=r"twice\.yaml is not valid YAML \(line 3\): 'refund' is defined twice"):
        load_taxonomy(twice)


def test_an_intent_found_by_patterns_alone_round_trips(tmp_path):
    tax = Taxonomy.from_dict({"intents": {"order_id": {"patterns": [r"#\d{6}"]}, "refund": {"keywords": ["refund"]}}})
    assert Taxonomy.from_dict(tax.to_dict()).to_dict() == tax.to_dict()
    tax.to_yaml(tmp_path / "t.yaml")
    assert load_taxonomy(tmp_path / "t.yaml").names == ("order_id", "refund")
