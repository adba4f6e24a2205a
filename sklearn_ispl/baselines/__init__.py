"""Baseline defenses the paper compares ISPL against, as sample filters.

All four share :class:`~sklearn_ispl.ISPLFilter`'s contract (``fit``,
``fit_resample``, ``keep_mask_``, ``sample_indices_``, ``scores_`` with low
meaning suspicious) and train through the same weak learners:

- :class:`SpectralSignatureFilter` (Tran et al. 2018) and
  :class:`ActivationClusteringFilter` (Chen et al. 2018) judge the
  penultimate-layer representations of a learner trained on all samples;
- :class:`ITLMFilter` (Shen and Sanghavi 2019) trims high-loss samples,
  retraining from scratch each round;
- :class:`ConfidentLearningFilter` flags label issues with cleanlab from
  out-of-fold predictions (optional dependency).
"""

from ._activation_clustering import ActivationClusteringFilter
from ._confident import ConfidentLearningFilter
from ._itlm import ITLMFilter
from ._spectral import SpectralSignatureFilter

__all__ = [
    "ActivationClusteringFilter",
    "ConfidentLearningFilter",
    "ITLMFilter",
    "SpectralSignatureFilter",
]
