"""The group trigger test: find the rest of a flagged group's poison.

A group the group decision flags is mostly poison, so it tells where poison
came from (its look class) and where it went (its label), but some poison of
the same attack stays hidden: samples the refine models half learned carry
the label as they see it and join no group. Poison is learnable as a group:
what sets the flagged group apart from the clean samples of the class it
looks like is the trigger, since the images are the same class otherwise. A
model trained to tell the group from those samples and from the rest of its
label finds the trigger again on the label's hidden poison, and finds
nothing on the label's clean samples, which carry no trigger (the paper's
compatibility idea, applied to one suspicious group).
"""

from dataclasses import replace
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval

from .._learners import build_learner, run_tasks
from .._refine import stratified_folds
from .._stages import ExtraStage

__all__ = ["GroupTriggerTest", "group_scores"]


class GroupTriggerTest(ExtraStage):
    """Remove the samples of a flagged group's label that share its trigger.

    .. warning:: Experimental, a deviation from the paper (see
       :mod:`sklearn_ispl.experimental`).

    List it after a :class:`GroupDecision`. For each group it flagged, with
    label ``t`` and look class ``s``, fresh copies of the refine model learn
    to tell the group's members from the samples labelled ``s`` and from the
    other samples labelled ``t``, the members weighted to a third of the
    training set. The samples are split into two stratified folds and each
    model reads the samples labelled ``t`` of the fold it did not train on,
    so a hidden poisoned sample taken for a negative in training is still
    read by a model that did not see it. A sample labelled ``t`` is removed
    when its probability of belonging with the group is at least
    ``threshold``. The models train side by side as the filter's ``n_jobs``
    allows, each with a fixed number of torch threads, so the result does
    not depend on ``n_jobs``. Without a group decision before it, or when
    it flagged no group, nothing is trained and nothing changes.

    Use it where the refine models may have half learned a trigger: on
    tens of thousands of images, where the poison the vote lets through is
    enough to teach it.

    Parameters
    ----------
    n_epochs : int, default=2
        Epochs of each model.
    threshold : float in (0, 1], default=0.5
        Probability of belonging with the group from which a sample is
        removed.

    Attributes
    ----------
    scores_ : ndarray of shape (n_samples,)
        Each sample's probability of belonging with a flagged group of its
        label (the highest over its label's groups); NaN for samples of
        labels with no flagged group.
    removed_ : ndarray of bool of shape (n_samples,)
        The samples whose score reached ``threshold``.
    """

    _parameter_constraints: dict = {
        "n_epochs": [Interval(Integral, 1, None, closed="left")],
        "threshold": [Interval(Real, 0, 1, closed="right")],
    }

    def __init__(self, n_epochs=2, threshold=0.5):
        self.n_epochs = n_epochs
        self.threshold = threshold

    def after_refine(self, state):
        groups = []
        if state.flagged:
            look = state.proba.argmax(axis=1)
            groups = [
                ((state.data.y == label) & (look == seen), seen)
                for label, seen in state.flagged
            ]
        self.scores_ = group_scores(
            state.data,
            state.refine_learner,
            groups,
            self.n_epochs,
            state.seed(),
            state.device,
            state.n_jobs,
        )
        self.removed_ = self.scores_ >= self.threshold
        state.keep = state.keep & ~self.removed_


def group_scores(
    data, learner, groups, epochs, seed, device, n_jobs=None, read_look=False
):
    """Each sample's probability of belonging with a group of its label.

    ``groups`` is a list of ``(members, look)``: a boolean mask of samples
    with one label and the class they look like. For each group, models are
    trained to tell it from the samples labelled ``look`` and from the rest
    of its label, cross-fitted over two stratified folds; the models train
    side by side as :func:`run_tasks` allows (``n_jobs`` workers). Returns
    the highest probability over each sample's groups, NaN for samples of
    labels with no group. With ``read_look=True`` the models also read the
    held-out samples labelled ``look``: how well a group is told apart from
    the class it looks like, which a trigger makes easy and a look-alike
    resemblance hard.
    """
    rng = np.random.RandomState(seed)
    tasks, judged = [], []
    for members, look in groups:
        label = int(data.y[np.flatnonzero(members)[0]])
        of_label = data.y == label
        rest = of_label & ~members
        target = members.astype(np.int64)
        rows = np.flatnonzero(members | rest | (data.y == look))
        fold_of = np.full(len(data), -1)
        # Strata: the group, the rest of its label, the look class.
        fold_of[rows] = stratified_folds(target[rows] + 2 * rest[rows], 2, rng)
        binary = replace(data, y=target, n_classes=2)
        for k in range(2):
            train = rows[fold_of[rows] != k]
            positives = train[target[train] == 1]
            # The members are few beside their negatives: repeated, they make
            # a third of what a model sees, so that it learns them at all.
            repeats = max(1, round((len(train) - len(positives)) / len(positives) / 2))
            seen = np.concatenate([train] + [positives] * (repeats - 1))
            readable = of_label | (data.y == look) if read_look else of_label
            read = np.flatnonzero(readable & (fold_of == k))
            seed_k = rng.randint(np.iinfo(np.int32).max)
            tasks.append((learner, binary, seed_k, device, seen, epochs, read))
            judged.append(read)
    scores = np.full(len(data), np.nan)
    for read, proba in zip(
        judged, run_tasks(_fit_and_read, tasks, n_jobs), strict=True
    ):
        scores[read] = np.fmax(scores[read], proba)
    return scores


def _fit_and_read(learner, data, seed, device, rows, epochs, read):
    """Train a fresh copy of ``learner`` on ``rows``; the probability of the
    group for the rows ``read``."""
    model = build_learner(learner, data, seed, device)
    model.fit_epochs(rows, epochs)
    return model.predict_proba(read)[:, 1]
