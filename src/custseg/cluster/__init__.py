"""Clustering: feature preparation, algorithms, choice of k, evaluation, ``Segmenter``."""

from ._base import NOISE, Fitted
from ._prepare import FeaturePrep
from ._segmenter import ALGORITHMS, Segmenter

__all__ = ["ALGORITHMS", "NOISE", "FeaturePrep", "Fitted", "Segmenter"]
