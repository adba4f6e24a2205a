"""The label compatibility test: remove a label's samples that its clean
samples do not vouch for, where these form a cluster of their own.

The paper removes poison because it is incompatible with the clean data of
its label: a model that learned the label's other samples does not take a
poisoned image for one of them. One by one this says little, since a hard
clean sample of a look-alike class is just as incompatible. As a label, it
says more. For a group of the group decision (label ``t``, look ``s``),
models learn three classes, the group, the rest of label ``t`` and the
samples labelled ``s``, and read for each held-out sample of ``t`` the
probability that it belongs with the rest of its label. Poison is an image
of another class plus a trigger: the models place it away from the label
with near certainty and leave the label's clean samples where they are, so
the label splits into a cluster of near-certain outsiders and a crowd of
insiders with few samples in between. Clean confusion is a continuum: the
samples the models place away from the label are the tail of a crowd half
placed there. The same isolation the group decision reads in the refine
models' view (:func:`~sklearn_ispl.experimental._groups.group_isolation`),
read in the view of models that learned the group as a class of its own.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval

from .._stages import ExtraStage
from ._group_test import group_label_compatibility

__all__ = ["LabelCompatibilityTest", "compatibility_isolation"]

#: A sample of the label with a probability of the rest of its label under
#: this is a near-certain outsider; over ``1 - OUTSIDER`` a near-certain
#: insider; in between, undecided.
OUTSIDER = 0.1


class LabelCompatibilityTest(ExtraStage):
    """Remove the kept samples of a label that models of its other samples
    place elsewhere, in labels where these form a cluster.

    .. warning:: Experimental, a deviation from the paper (see
       :mod:`sklearn_ispl.experimental`).

    List it after a :class:`GroupDecision`. For each group of the decision
    that it did not flag (label ``t``, look ``s``), two cross-fitted copies
    of the refine model learn three classes for ``n_epochs`` epochs: the
    group, the other samples labelled ``t`` and the samples labelled ``s``
    (:func:`~sklearn_ispl.experimental._group_test.group_label_compatibility`).
    Each reads, for the samples labelled ``t`` of the fold it did not train
    on, the probability of the rest of their label. The group's label is
    *incompatible* when its near-certain outsiders (a probability under
    0.1) number at least ``min_isolation`` times one plus its undecided
    samples (between 0.1 and 0.9): poison, an image of another class with
    a trigger, is a cluster the label's clean samples do not approach, where
    clean look-alikes are the tail of a crowd the models half place away
    from the label. For an incompatible group, the kept samples of label
    ``t`` with a probability under ``threshold`` are removed.

    The models train side by side as the filter's ``n_jobs`` allows, each
    with a fixed number of torch threads, so the result does not depend on
    ``n_jobs``. Without a group decision before it, nothing is trained and
    nothing changes.

    Use it where the poison the refine stage keeps still reads as another
    class to fresh models: on a few thousand images, where the refine
    stage's relaxed rule gives back the poison of a trigger the refine
    models half learned.

    Parameters
    ----------
    n_epochs : int, default=2
        Epochs of each model.
    threshold : float in (0, 1], default=0.5
        Probability of the rest of the label under which a kept sample of an
        incompatible group's label is removed.
    min_isolation : float > 0, default=2.0
        Near-certain outsiders over one plus undecided samples of the label
        from which a group is incompatible.

    Attributes
    ----------
    groups_ : list of dict
        Every group tested: ``label`` and ``look`` (class labels), ``size``,
        ``isolation`` and ``incompatible``.
    scores_ : ndarray of shape (n_samples,)
        Each sample's lowest probability of the rest of its label over the
        incompatible groups of its label; NaN for samples of other labels.
    removed_ : ndarray of bool of shape (n_samples,)
        The samples this stage removed.
    """

    _parameter_constraints: dict = {
        "n_epochs": [Interval(Integral, 1, None, closed="left")],
        "threshold": [Interval(Real, 0, 1, closed="right")],
        "min_isolation": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, n_epochs=2, threshold=0.5, min_isolation=2.0):
        self.n_epochs = n_epochs
        self.threshold = threshold
        self.min_isolation = min_isolation

    def after_refine(self, state):
        n = len(state.data)
        self.groups_ = []
        self.scores_ = np.full(n, np.nan)
        self.removed_ = np.zeros(n, dtype=bool)
        if not state.groups:
            return
        y = state.data.y
        look = state.proba.argmax(axis=1)
        for group in state.groups:
            if group["flagged"]:
                # Already removed with its leaning samples; nothing to decide.
                continue
            label, seen = group["label"], group["look"]
            members = (y == label) & (look == seen)
            rest = group_label_compatibility(
                state.data,
                state.refine_learner,
                (members, seen),
                self.n_epochs,
                state.seed(),
                state.device,
                state.n_jobs,
            )
            of_label = y == label
            isolation = compatibility_isolation(rest[of_label])
            incompatible = isolation >= self.min_isolation
            self.groups_.append(
                {
                    "label": state.classes[label].item(),
                    "look": state.classes[seen].item(),
                    "size": int(members.sum()),
                    "isolation": round(isolation, 4),
                    "incompatible": bool(incompatible),
                }
            )
            if incompatible:
                self.scores_[of_label] = np.fmin(self.scores_[of_label], rest[of_label])
                self.removed_ |= of_label & state.keep & (rest < self.threshold)
        state.keep = state.keep & ~self.removed_


def compatibility_isolation(rest):
    """How far a label's near-certain outsiders stand apart from the rest.

    ``rest`` holds each sample of one label's held-out probability of
    belonging with the rest of its label: those under 0.1 over one plus
    those between 0.1 and 0.9.
    """
    outsiders = np.count_nonzero(rest < OUTSIDER)
    undecided = np.count_nonzero((rest >= OUTSIDER) & (rest < 1 - OUTSIDER))
    return float(outsiders / (undecided + 1))
