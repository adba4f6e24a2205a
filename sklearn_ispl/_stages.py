"""What extra stages see of a fit, and the base class they share.

The paper's defense is three stages (partition, vote, refine). A stage
beyond the paper is an object given to :class:`ISPLFilter` in
``extra_stages``; the filter calls its hooks around the refine stage, in
list order, with the :class:`FitState` of the fit:

- ``before_refine(state)``: after the vote; may narrow what self-training
  starts from (``state.start``) or may train on (``state.trainable``);
- ``after_refine(state)``: after the refine stage; may change the kept set
  (``state.keep``).

A stage records what it found as fitted attributes on itself (the filter
keeps the fitted stages in ``extra_stages_``) and may leave facts for later
stages in the state (``state.backed``, ``state.look``). Extra stages live in
:mod:`sklearn_ispl.experimental`.
"""

from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator

__all__ = ["ExtraStage", "FitState"]


@dataclass
class FitState:
    """The state of one :class:`ISPLFilter` fit that extra stages read and edit.

    Attributes
    ----------
    data : PreparedData
        The training data as the learners see it (labels encoded).
    classes : ndarray
        The class labels, in the order of the encoded labels.
    rng : numpy.random.RandomState
        The fit's generator; a stage draws its seeds from it.
    device : str
        Torch device of the learners.
    n_jobs : int or None
        The filter's ``n_jobs``, for stages that train models side by side.
    refine_learner : estimator or None
        The refine stage's model (None: the default network).
    scores : ndarray
        The vote's share of votes for each sample's label.
    vote_keep : ndarray of bool
        The samples the vote kept.
    start : ndarray of bool
        The samples self-training starts from (before refine).
    trainable : ndarray of bool
        The samples the refine models may train on (before refine).
    keep : ndarray of bool or None
        The kept set (after refine).
    refine_keep : ndarray of bool or None
        The refine stage's own decision (after refine).
    support : ndarray or None
        The refine model's smoothed probability of each label (after refine).
    proba : ndarray or None
        The refine models' smoothed probabilities of every class, each
        sample's from a model that did not train on it when the refine stage
        cross-fits (after refine).
    backed : ndarray of bool or None
        Samples whose label a trigger-blind judge backs, when one ran.
    look : ndarray of int or None
        The class each sample looks like to a trigger-blind judge, when one
        ran.
    blind_proba : ndarray or None
        The trigger-blind judge's probabilities of every class, when one
        ran.
    flagged : list of (int, int) or None
        The (label, look) pairs, encoded, of the groups a group decision
        flagged, when one ran.
    groups : list of dict or None
        Every group a group decision measured, when one ran: encoded
        ``label`` and ``look``, ``size``, ``share``, ``isolation`` and
        ``flagged``.
    """

    data: object
    classes: np.ndarray
    rng: np.random.RandomState
    device: str
    n_jobs: object
    refine_learner: object
    scores: np.ndarray
    vote_keep: np.ndarray
    start: np.ndarray
    trainable: np.ndarray
    keep: np.ndarray = None
    refine_keep: np.ndarray = None
    support: np.ndarray = None
    proba: np.ndarray = None
    backed: np.ndarray = None
    look: np.ndarray = None
    blind_proba: np.ndarray = None
    flagged: list = None
    groups: list = None

    def seed(self):
        """A fresh seed from the fit's generator."""
        return self.rng.randint(np.iinfo(np.int32).max)


class ExtraStage(BaseEstimator):
    """Base class of the stages beyond the paper (experimental).

    Subclasses override :meth:`before_refine` and/or :meth:`after_refine`
    and declare ``_parameter_constraints``; the filter validates every
    stage's parameters before any training.
    """

    _parameter_constraints: dict = {}

    def before_refine(self, state):
        """Act after the vote, before self-training (default: nothing)."""

    def after_refine(self, state):
        """Act after self-training (default: nothing)."""
