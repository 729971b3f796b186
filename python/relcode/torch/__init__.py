"""relcode.torch: compress torch models with relative entropy coding (MIRACLE, Mean-KL)."""

from __future__ import annotations

from .bayesian import BayesianModel
from .parameterisation import MeanKL, MeanVar
from .prior import PerLayerPrior, PerParameterPrior

__all__ = ["BayesianModel", "MeanKL", "MeanVar", "PerLayerPrior", "PerParameterPrior"]
