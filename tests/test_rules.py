"""The rule classifier: bilingual, multi-label, independent scores, explainable evidence."""

from __future__ import annotations

import pytest

from tokenflow_rag import RuleClassifier, load_taxonomy
from tokenflow_rag.errors import ConfigError


@pytest.fixture(scope="module")
def rules():
    return RuleClassifier()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("How long does a refund take?", {"refund"}),
        ("退款多久到账", {"refund"}),
        ("I forgot my password", {"user_auth"}),
        ("忘记密码了怎么办", {"user_auth"}),
        ("Is the blue jacket in stock?", {"inventory"}),
        ("这个商品缺货了吗", {"inventory"}),
        ("Where is my package? The tracking page is empty", {"shipping"}),
        ("快递什么时候发货", {"shipping"}),
        ("My coupon code does not work", {"promotion"}),
        ("支付成功后发送通知", {"payment", "notification"}),
        ("I paid but never got the confirmation SMS", {"payment", "notification"}),
        ("取消订单后多久退款", {"order_management", "refund"}),
        ("POST /v1/refunds returns REF_409", {"refund"}),
        ("What's the weather like today?", set()),
        ("今天天气怎么样", set()),
    ],
)
def test_bilingual_multi_label(rules, text, expected):
    assert set(rules.predict([text])[0].intents) == expected


def test_scores_do_not_shrink_when_more_intents_match(rules):
    single = rules.predict(["refund please"])[0].scores["refund"]
    multi = rules.predict(["refund please, and the SMS never came, and my password fails"])[0]
    assert multi.scores["refund"] == pytest.approx(single)
    assert {"refund", "notification", "user_auth"} <= set(multi.intents)
    assert all(0.0 <= s <= 1.0 for s in multi.scores.values())


def test_more_evidence_raises_the_score(rules):
    one = rules.predict(["refund"])[0].scores["refund"]
    two = rules.predict(["refund and chargeback"])[0].scores["refund"]
    repeated = rules.predict(["refund refund refund"])[0].scores["refund"]
    assert two > one
    assert repeated == pytest.approx(one)  # repeating a keyword is not new evidence


def test_evidence_names_the_keywords(rules):
    prediction = rules.predict(["退款多久到账? I also never got the SMS"])[0]
    assert prediction.evidence["refund"] == ("退款",)
    assert prediction.evidence["notification"] == ("sms",)
    assert prediction.components["rules"] == prediction.scores


def test_longest_keyword_wins_overlaps(rules):
    # 取消订阅 (unsubscribe) contains 取消 (cancel an order): only notification fires.
    assert rules.predict(["取消订阅短信"])[0].intents == ("notification",)


def test_english_inflections_and_word_boundaries(rules):
    assert "refund" in rules.predict(["they refunded me twice"])[0].intents
    assert "shipping" in rules.predict(["has it shipped yet"])[0].intents
    assert rules.predict(["payload size limits"])[0].is_none  # "pay" must not match inside "payload"


def test_mixed_chinese_english(rules):
    assert "order_management" in rules.predict(["怎么修改checkout信息"])[0].intents


def test_regex_patterns():
    tax = load_taxonomy({"intents": {"payment": {"keywords": ["wallet"], "patterns": [r"\bPAY_\d{4}\b"]}}})
    prediction = RuleClassifier(tax).predict(["error PAY_4021 again"])[0]
    assert prediction.intents == ("payment",)
    assert prediction.evidence["payment"] == (r"re:\bPAY_\d{4}\b",)


def test_jieba_mode_only_matches_on_word_boundaries():
    tax = load_taxonomy({"intents": {"inventory": {"keywords": ["存货"]}}})
    chars, jieba = RuleClassifier(tax), RuleClassifier(tax, segmenter="jieba")
    text = "这家店存货很多"
    assert chars.predict([text])[0].intents == jieba.predict([text])[0].intents == ("inventory",)
    # 生存 + 货物: "存货" straddles a word boundary, so only the character matcher fires.
    straddling = "为了生存货物都卖了"
    assert chars.predict([straddling])[0].intents == ("inventory",)
    assert jieba.predict([straddling])[0].is_none


def test_odd_but_valid_text_does_not_raise(rules):
    for text in ["🙂🙂 refund? 🙂", "a" * 100_000, "\u200b退款\u200b", "\t\n"]:
        rules.predict([text])


@pytest.mark.parametrize("kwargs", [{"keyword_weight": 0}, {"threshold": 1.5}, {"segmenter": "spaces"}])
def test_bad_settings(kwargs):
    with pytest.raises(ConfigError):
        RuleClassifier(**kwargs)


# -- the keyword prefilter gives what one regex alternation over all keywords gives ------------------


def _reference_scores(clf: RuleClassifier, text: str) -> tuple[dict[str, float], dict[str, tuple[str, ...]]]:
    """Brute force: one alternation over every keyword, longest first (the matcher before the prefilter)."""
    import re

    from tokenflow_rag.classifiers.rules import _CJK, _keyword_regex

    owners: dict[str, list[str]] = {}
    for intent in clf.taxonomy:
        for kw in intent.all_keywords:
            owners.setdefault(kw.lower(), []).append(intent.name)
    ordered = sorted(owners, key=len, reverse=True)
    alternation = re.compile("|".join(f"({_keyword_regex(k)})" for k in ordered))
    boundaries = clf._word_boundaries(text) if clf.segmenter == "jieba" else None
    hits: dict[str, list[tuple[str, float]]] = {}
    for match in alternation.finditer(text.lower()):
        keyword = ordered[(match.lastindex or 1) - 1]
        if boundaries and (match.start() not in boundaries or match.end() not in boundaries) and _CJK.search(keyword):
            continue
        for name in owners[keyword]:
            hits.setdefault(name, []).append((keyword, clf.keyword_weight))
    for intent in clf.taxonomy:
        for pattern in intent.patterns:
            if re.search(pattern, text, re.IGNORECASE):
                hits.setdefault(intent.name, []).append((f"re:{pattern}", clf.pattern_weight))
    scores, evidence = {}, {}
    for name in clf.taxonomy.names:
        distinct = dict(hits.get(name, ()))
        miss = 1.0
        for weight in distinct.values():
            miss *= 1.0 - weight
        scores[name] = 1.0 - miss
        if distinct:
            evidence[name] = tuple(distinct)
    return scores, evidence


def _varied_texts(keywords: list[str], n: int = 300, seed: int = 7) -> list[str]:
    import random

    rnd = random.Random(seed)
    words = "the a of to and in refunds paid paying cancel e-mail sms. email! pass-word log in logged orders shipping"
    filler = [
        *words.split(),
        "x-y",
        "123",
        "我的",
        "订单",
        "退款",
        "支付",
        "密码",
        "快递",
        "通知",
        "短信",
        "取消",
        "缺货",
        "了吗",
        "，",
        "？",
    ]
    texts = [
        "退款多久到账? I also never got the SMS",
        "POST /v1/refunds returns REF_409",
        "取消订阅短信",
        "取消订单后多久退款",
        "payload size limits",
        "refund refund REFUNDED Refund-Status",
        "x",
        "退",
        "",
        "🙂 refund? 🙂 \u200b退款\u200b",
    ]
    for _ in range(n):
        parts = []
        for _ in range(rnd.randint(1, 14)):
            if rnd.random() < 0.4:
                kw = rnd.choice(keywords)
                if kw.isascii():
                    kw = (
                        rnd.choice(["", "x", "1", "-", "_"])
                        + kw
                        + rnd.choice(["", "s", "es", "ed", "ing", "ers", "x", "-"])
                    )
                parts.append(kw.upper() if rnd.random() < 0.3 else kw)
            else:
                parts.append(rnd.choice(filler))
        texts.append(rnd.choice([" ", "", "-", "  ", "\t"]).join(parts))
    return texts


def _overlapping_taxonomy():
    return load_taxonomy(
        {
            "intents": {
                "a": {
                    "keywords": {
                        "en": ["pay", "pay pal", "paypal", "e mail", "e-mail", "a b", "x"],
                        "zh": ["取消", "取消订阅", "退"],
                    }
                },
                "b": {
                    "keywords": ["pay", "payment status", "b and b", "b & b", "status", "订阅", "消订"],
                    "patterns": [r"\bREF_\d+"],
                },
                "c": {"keywords": ["mail", "ail", "单", "退款", "款多久"], "parent": "a"},
            }
        }
    )


@pytest.mark.parametrize("segmenter", ["chars", "jieba"])
@pytest.mark.parametrize("taxonomy", ["default", "overlapping"])
def test_prefiltered_matching_equals_the_brute_force_alternation(segmenter, taxonomy):
    tax = load_taxonomy(None) if taxonomy == "default" else _overlapping_taxonomy()
    if segmenter == "jieba":
        pytest.importorskip("jieba")
    clf = RuleClassifier(tax, segmenter=segmenter)
    keywords = [kw for intent in tax for kw in intent.all_keywords]
    texts = _varied_texts(keywords, n=300 if segmenter == "chars" else 60)
    texts += [
        "pay pal paypal payment status",
        "b and b, b & b, b-and-b",
        "e mail e-mail e--mail",
        "a b a-b ab",
        "取消订阅退款多久",
    ]
    for text in texts:
        expected = _reference_scores(clf, text)
        got = clf.scores(text)
        assert got == expected, text
        assert list(got[0]) == list(expected[0]) and list(got[1]) == list(expected[1]), text  # same order too


def test_whitespace_only_keyword_keeps_the_alternation_semantics():
    from tokenflow_rag.taxonomy import Intent, Taxonomy

    tax = Taxonomy([Intent("odd", keywords={"en": (" ", "refund")}), Intent("other", keywords={"en": ("pay",)})])
    clf = RuleClassifier(tax)
    for text in ["refund pay", "", "x", "payment refunds"]:
        assert clf.scores(text) == _reference_scores(clf, text)
