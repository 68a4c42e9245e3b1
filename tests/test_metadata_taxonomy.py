"""Taxonomies derived from document metadata: names, variants, tags, and the fast name matcher."""

from __future__ import annotations

import pytest

from tokenflow_rag import Chunk
from tokenflow_rag.classifiers.rules import RuleClassifier
from tokenflow_rag.errors import ConfigError, TokenFlowError
from tokenflow_rag.metadata_taxonomy import MetadataTaxonomy, NameClassifier, name_variants, safe_intent_id
from tokenflow_rag.taxonomy import _NAME_RE

DOCS = [
    {"domain": "hotel", "entity_id": "0", "entity_name": "A AND B GUEST HOUSE"},
    {"domain": "hotel", "entity_id": "0", "entity_name": "A AND B GUEST HOUSE"},
    {"domain": "hotel", "entity_id": "1", "entity_name": "THE LENSFIELD HOTEL"},
    {"domain": "hotel", "entity_id": "2", "entity_name": "ROSA'S BED AND BREAKFAST"},
    {"domain": "restaurant", "entity_id": "7", "entity_name": "HOTEL DU VIN AND BISTRO"},
    {"domain": "restaurant", "entity_id": "8", "entity_name": "NANDOS"},
    {"domain": "restaurant", "entity_id": "9", "entity_name": "NANDOS CITY CENTRE"},
    {"domain": "taxi", "entity_id": "*"},
    {"domain": "酒店", "entity_id": "北京贵都大酒店", "entity_name": "北京贵都大酒店"},
    {"domain": "餐馆", "entity_id": "x", "entity_name": "锦江之星(北京奥体中心店)"},
]


@pytest.fixture(scope="module")
def mt():
    return MetadataTaxonomy.from_metadata(DOCS)


def test_safe_ids_are_valid_intent_names():
    for text in ["Rosa's Bed & Breakfast", "酒店", "7 Days Inn", "  ", "ÉCOLE"]:
        assert _NAME_RE.match(safe_intent_id(text))
    assert safe_intent_id("酒店") == safe_intent_id("酒店")  # stable across runs


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("THE LENSFIELD HOTEL", ("the lensfield hotel", "lensfield hotel", "lensfield")),
        ("HOTEL DU VIN AND BISTRO", ("hotel du vin and bistro", "du vin")),
        ("ALPHA-MILTON GUEST HOUSE", ("alpha-milton guest house", "alpha milton guest house", "alpha milton")),
        ("锦江之星(北京奥体中心店)", ("锦江之星(北京奥体中心店)", "锦江之星")),
    ],
)
def test_name_variants(name, expected):
    assert name_variants(name) == expected


def test_common_word_short_forms_are_dropped():
    # "ask" alone would fire on "can I ask ..."; the full name stays.
    assert name_variants("ASK RESTAURANT") == ("ask restaurant",)
    assert name_variants("CITY CENTRE NORTH B AND B") == ("city centre north b and b",)


def test_entities_are_children_of_their_group(mt):
    tax = mt.taxonomy
    hotel = mt.group_intents["hotel"]
    lensfield = mt.entity_intents[("hotel", "1")]
    assert tax[lensfield].parent == hotel
    assert "THE LENSFIELD HOTEL" in tax[lensfield].description
    assert tax[lensfield].k == 1 and tax[hotel].k == 3
    assert all(_NAME_RE.match(n) for n in tax.names)
    assert len(mt.entity_intents) == 8  # "taxi/*" has no name: no entity intent


def test_tags_come_from_metadata(mt):
    assert mt.tags(DOCS[2]) == (mt.group_intents["hotel"], mt.entity_intents[("hotel", "1")])
    assert mt.tags(DOCS[7]) == (mt.group_intents["taxi"],)
    assert mt.tags({"domain": "unknown"}) == ()
    assert mt.entity_intent(DOCS[7]) is None


def test_tag_chunks_keeps_user_tags(mt):
    chunks = [Chunk("a", "text", dict(DOCS[2])), Chunk("b", "text", {**DOCS[5], "intents": ["mine"]})]
    tagged = mt.tag_chunks(chunks)
    assert tagged[0].intents == mt.tags(DOCS[2])
    assert tagged[0].metadata["intents_source"] == "metadata"
    assert tagged[1].intents == ("mine",)


def test_ambiguous_one_word_short_forms_need_the_texts():
    metas = [
        {"domain": "restaurant", "entity_id": str(i), "entity_name": n}
        for i, n in enumerate(["THE MISSING SOCK", "PREZZO", "COTTO"])
    ]
    texts = ["Nothing was missing.", "Nothing was missing here either.", "Great pasta"]
    without = MetadataTaxonomy.from_metadata(metas)
    with_texts = MetadataTaxonomy.from_metadata(metas, texts=texts)
    sock = without.entity_intents[("restaurant", "0")]
    assert "missing sock" in without.taxonomy[sock].keywords["names"]
    # "missing" is not a variant anyway (common word), and the two-word form survives
    assert "missing sock" in with_texts.taxonomy[sock].keywords["names"]
    metas2 = [
        {"domain": "r", "entity_id": str(i), "entity_name": n} for i, n in enumerate(["GONVILLE HOTEL", "A", "B", "C"])
    ]
    texts2 = ["the gonville", "near gonville", "gonville place", "x"]
    mt2 = MetadataTaxonomy.from_metadata(metas2, texts=texts2)
    assert "gonville" not in mt2.taxonomy[mt2.entity_intents[("r", "0")]].keywords["names"]


def test_with_k_resizes_every_intent(mt):
    resized = mt.with_k(entity_k=4, group_k=2)
    assert {resized.taxonomy[i].k for i in mt.entity_intents.values()} == {4}
    assert {resized.taxonomy[i].k for i in mt.group_intents.values()} == {2}
    assert resized.entity_intents == mt.entity_intents


def test_group_aliases_become_keywords():
    mt = MetadataTaxonomy.from_metadata(DOCS[:3], group_aliases={"hotel": ["guesthouse", "place to stay"]})
    assert mt.taxonomy[mt.group_intents["hotel"]].keywords["names"] == ("hotel", "guesthouse", "place to stay")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"entity_k": 0}, "entity_k"),
        ({"group_aliases": {"spa": ["x"]}}, "group_aliases"),
        ({"texts": ["only one"]}, "texts has 1"),
        ({"entity_field": "name", "group_field": "kind"}, "no document has"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        MetadataTaxonomy.from_metadata(DOCS, **kwargs)
    assert issubclass(ConfigError, TokenFlowError)


def test_name_classifier_agrees_with_rule_classifier(mt):
    texts = [
        "Is the Lensfield quiet at night?",
        "Does Nandos City Centre serve alcohol?",
        "Do you know nandos?",
        "what about rosas and the a and b guest house",
        "I need a hotel near Hotel du Vin and Bistro",
        "北京贵都大酒店的电话是多少？锦江之星呢",
        "nothing to see here",
    ]
    fast, rules = NameClassifier(mt.taxonomy).predict(texts), RuleClassifier(mt.taxonomy).predict(texts)
    for a, b in zip(fast, rules):
        assert a.intents == b.intents
        assert dict(a.evidence) == dict(b.evidence)
        assert dict(a.scores) == pytest.approx(dict(b.scores))
    centre = mt.entity_intents[("restaurant", "9")]
    assert fast[1].intents == (centre,)  # the longest name wins over "nandos"


def test_name_classifier_rejects_patterns():
    from tokenflow_rag.taxonomy import Taxonomy

    tax = Taxonomy.from_dict({"intents": {"a": {"keywords": ["x"], "patterns": ["y+"]}}})
    with pytest.raises(ConfigError, match="patterns"):
        NameClassifier(tax)
