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
