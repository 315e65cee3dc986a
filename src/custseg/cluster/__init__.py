"""Clustering: feature preparation, algorithms, choice of k, evaluation, ``Segmenter``.

The names are imported on first use: a module of this package that needs no
scikit-learn (``_base``) loads without it, so that a job cleans its lines while
scikit-learn loads beside it (:mod:`custseg.core.preload`)."""

from custseg.cluster._base import NOISE, Fitted

#: The package's names from its heavy modules, by module.
_LAZY = {"FeaturePrep": "_prepare", "ALGORITHMS": "_segmenter", "Segmenter": "_segmenter",
         "StagedSegmenter": "_staged"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'custseg.cluster' has no attribute {name!r}")


__all__ = ["ALGORITHMS", "NOISE", "FeaturePrep", "Fitted", "Segmenter", "StagedSegmenter"]
