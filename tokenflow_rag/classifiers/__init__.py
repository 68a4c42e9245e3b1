"""Intent classifiers: rules (keywords/regex), neural (transformer + LoRA), hybrid (both, calibrated)."""

from tokenflow_rag.classifiers.base import CLASSIFIERS, IntentClassifier, classifier_class, register_classifier
from tokenflow_rag.classifiers.rules import RuleClassifier

__all__ = ["CLASSIFIERS", "IntentClassifier", "RuleClassifier", "classifier_class", "register_classifier"]


def load_default_classifier(taxonomy=None):  # type: ignore[no-untyped-def]
    """The best classifier available offline for ``taxonomy`` (default: the business taxonomy).

    Until a trained model ships for the taxonomy, this is the :class:`RuleClassifier`.
    """
    return RuleClassifier(taxonomy)


__all__ += ["load_default_classifier"]


def load_classifier(path):  # type: ignore[no-untyped-def]
    """Load a classifier saved with ``save_pretrained`` (``tokenflow train --out DIR``)."""
    from tokenflow_rag.classifiers.hybrid import HybridClassifier

    return HybridClassifier.from_pretrained(path)


__all__ += ["load_classifier"]
