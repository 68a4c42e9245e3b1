"""Resolving a dialogue turn to the entity it is about: the latest mention wins."""

from __future__ import annotations

import pytest

from tokenflow_rag.context import ContextResolver
from tokenflow_rag.errors import ConfigError
from tokenflow_rag.metadata_taxonomy import MetadataTaxonomy, NameClassifier

METAS = [
    {"domain": "hotel", "entity_id": "1", "entity_name": "ACORN GUEST HOUSE"},
    {"domain": "hotel", "entity_id": "2", "entity_name": "AVALON"},
    {"domain": "hotel", "entity_id": "3", "entity_name": "GONVILLE HOTEL"},
    {"domain": "restaurant", "entity_id": "9", "entity_name": "GALLERIA"},
]


@pytest.fixture(scope="module")
def mt():
    return MetadataTaxonomy.from_metadata(METAS)


@pytest.fixture
def resolver(mt):
    return ContextResolver(NameClassifier(mt.taxonomy))


def _e(mt, key):
    return mt.entity_intents[key]


def test_entity_in_the_query_wins_over_history(resolver, mt):
    p = resolver.resolve("Does the Avalon have parking?", ["U: I like the Acorn Guest House"])
    assert p.intents == (_e(mt, ("hotel", "2")),)
    assert "@query" in p.evidence[_e(mt, ("hotel", "2"))]


def test_latest_mention_in_history_wins(resolver, mt):
    history = ["U: Tell me about the Acorn Guest House", "S: Sure.", "U: And Galleria?", "S: Galleria is Italian."]
    p = resolver.resolve("Is it quiet there?", history)
    assert p.intents == (_e(mt, ("restaurant", "9")),)
    assert p.evidence[_e(mt, ("restaurant", "9"))][-1] == "@turn -1"


def test_that_hotel_resolves_to_the_latest_hotel(resolver, mt):
    history = ["S: How about the Avalon?", "U: ok", "S: Galleria is a restaurant nearby."]
    p = resolver.resolve("Does that hotel allow pets?", history)
    assert p.intents == (_e(mt, ("hotel", "2")),)


def test_group_only_without_history_restricts_to_the_group(resolver, mt):
    p = resolver.resolve("any hotel with wifi?", [])
    assert p.intents == (mt.group_intents["hotel"],)


def test_several_entities_in_one_turn_are_all_kept(resolver, mt):
    p = resolver.resolve("Which one is quieter?", ["S: There are two: the Gonville Hotel and the Avalon."])
    assert set(p.intents) == {_e(mt, ("hotel", "3")), _e(mt, ("hotel", "2"))}


def test_entity_of_a_named_group_is_preferred(resolver, mt):
    # Both an entity of another group and the group word: the entity is still what the turn names.
    p = resolver.resolve("a restaurant near the Acorn Guest House?", [])
    assert p.intents == (_e(mt, ("hotel", "1")),)


def test_nothing_anywhere_is_none(resolver):
    p = resolver.resolve("hello there", ["U: hi", "S: how can I help?"])
    assert p.is_none


def test_inherit_general(mt):
    history = ["U: I need a hotel in the north", "S: Sure, any price range?"]
    on = ContextResolver(NameClassifier(mt.taxonomy), inherit_general=True).resolve("cheap please", history)
    off = ContextResolver(NameClassifier(mt.taxonomy), inherit_general=False).resolve("cheap please", history)
    assert on.intents == (mt.group_intents["hotel"],)
    assert off.is_none


def test_max_turns_limits_the_look_back(mt):
    history = ["S: The Avalon is nice.", "U: ok", "S: ok", "U: ok"]
    near = ContextResolver(NameClassifier(mt.taxonomy), max_turns=2)
    far = ContextResolver(NameClassifier(mt.taxonomy), max_turns=4)
    assert near.resolve("is it quiet?", history).is_none
    assert far.resolve("is it quiet?", history).intents == (_e(mt, ("hotel", "2")),)
    assert ContextResolver(NameClassifier(mt.taxonomy), max_turns=0).resolve("is it quiet?", history).is_none


def test_memo_reuses_turn_predictions(mt):
    calls = []
    clf = NameClassifier(mt.taxonomy)

    class Counting:
        taxonomy = clf.taxonomy

        def predict(self, texts):
            calls.extend(texts)
            return clf.predict(texts)

    resolver = ContextResolver(Counting())
    history = ["S: The Avalon is nice."]
    resolver.resolve("is it quiet?", history)
    resolver.resolve("is it cheap?", history)
    assert calls.count("The Avalon is nice.") == 1


def test_batch_and_errors(resolver, mt):
    out = resolver.resolve_batch(["Avalon?", "hi"], [[], []])
    assert out[0].intents == (_e(mt, ("hotel", "2")),) and out[1].is_none
    with pytest.raises(ConfigError, match="histories"):
        resolver.resolve_batch(["a"], [])
    with pytest.raises(ConfigError, match="max_turns"):
        ContextResolver(NameClassifier(mt.taxonomy), max_turns=-1)
    with pytest.raises(ConfigError, match="classifier"):
        ContextResolver(object())  # type: ignore[arg-type]


def test_works_with_the_rule_classifier(mt):
    from tokenflow_rag.classifiers.rules import RuleClassifier

    p = ContextResolver(RuleClassifier(mt.taxonomy)).resolve("is it far?", ["S: try GALLERIA"])
    assert p.intents == (_e(mt, ("restaurant", "9")),)
