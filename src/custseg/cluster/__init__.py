"""Clustering: feature preparation, algorithms, choice of k, evaluation, ``Segmenter``."""

from custseg.cluster._base import NOISE, Fitted
from custseg.cluster._prepare import FeaturePrep
from custseg.cluster._segmenter import ALGORITHMS, Segmenter
from custseg.cluster._staged import StagedSegmenter

__all__ = ["ALGORITHMS", "NOISE", "FeaturePrep", "Fitted", "Segmenter", "StagedSegmenter"]
