"""Backdoor-poisoning defenses as scikit-learn / imbalanced-learn sample filters.

The main estimator is :class:`ISPLFilter`, the Inverse Self-Paced Learning
defense; :class:`BoostedComponentVoter` is its voting stage on its own.
Submodules: :mod:`sklearn_ispl.attacks` (the dirty-label backdoor),
:mod:`sklearn_ispl.metrics`, :mod:`sklearn_ispl.datasets`.
"""

from ._filter import ISPLFilter
from ._learners import WeakCNN, WeakMLP, make_weak_learner
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
    "SpectralSignatureFilter",
    "WeakCNN",
    "WeakMLP",
    "make_weak_learner",
    "__version__",
]
