"""Evaluation: benchmark loaders, multi-label metrics and baseline classifiers."""
