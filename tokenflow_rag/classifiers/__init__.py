"""Intent classifiers: rules (keywords/regex), neural (transformer + LoRA), hybrid (both, with a character
n-gram model beside the network, calibrated).

Importing this package registers all three kinds; torch, transformers and peft load only when a
neural model is built or loaded.
"""

from __future__ import annotations

from tokenflow_rag.classifiers.base import CLASSIFIERS, IntentClassifier, classifier_class, register_classifier
from tokenflow_rag.classifiers.hybrid import HybridClassifier, load_classifier
from tokenflow_rag.classifiers.hybrid import load_default_hybrid as load_default_classifier
from tokenflow_rag.classifiers.neural import NeuralClassifier
from tokenflow_rag.classifiers.ngrams import CharNgramModel
from tokenflow_rag.classifiers.rules import RuleClassifier

__all__ = [
    "CLASSIFIERS",
    "CharNgramModel",
    "HybridClassifier",
    "IntentClassifier",
    "NeuralClassifier",
    "RuleClassifier",
    "classifier_class",
    "load_classifier",
    "load_default_classifier",
    "register_classifier",
]
