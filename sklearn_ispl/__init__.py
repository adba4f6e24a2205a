"""Backdoor-poisoning defenses as scikit-learn / imbalanced-learn sample filters.

The main estimator is :class:`ISPLFilter`, the Inverse Self-Paced Learning
defense; :class:`BoostedComponentVoter` is its voting stage on its own.
:class:`SelfTraining` holds the refine stage's settings and
:data:`SCHEDULES` the named schedules. Submodules:
:mod:`sklearn_ispl.attacks` (the dirty-label backdoor),
:mod:`sklearn_ispl.metrics`, :mod:`sklearn_ispl.datasets`, and
:mod:`sklearn_ispl.experimental` (stages beyond the paper; not imported by
default).
"""

from ._filter import ISPLFilter
from ._learners import WeakCNN, WeakMLP, make_weak_learner
from ._refine import SelfTraining
from ._schedules import SCHEDULES
from ._version import __version__
from ._vote import BoostedComponentVoter
from .baselines import (
    ActivationClusteringFilter,
    ConfidentLearningFilter,
    ITLMFilter,
    SpectralSignatureFilter,
)

__all__ = [
    "ActivationClusteringFilter",
    "BoostedComponentVoter",
    "ConfidentLearningFilter",
    "ISPLFilter",
    "ITLMFilter",
    "SCHEDULES",
    "SelfTraining",
    "SpectralSignatureFilter",
    "WeakCNN",
    "WeakMLP",
    "make_weak_learner",
    "__version__",
]
