"""Refine stage: self-training on the voted set (paper appendix B.1).

The component learners saw small parts of the data for few epochs, so the
vote also drops hard clean samples. A fresh model trains on the kept samples;
every ``epochs`` epochs the kept set is recomputed from the model's
momentum-smoothed predictions. Poison, which contradicts the clean majority
of its class, stays out; clean samples the model learns to classify come
back.

Two choices go beyond the paper, which keeps a sample when the model's
``argmax`` equals its label and judges samples the model trained on:

- ``folds >= 2`` cross-fits: the samples are split into stratified folds
  and each fold is judged by a model trained on the kept samples of the
  other folds only. A model cannot then vouch for a sample by having
  memorised it, which is how a few poisoned samples that slipped through
  the vote would otherwise keep themselves in.
- ``keep_ratio < 1`` relaxes the final decision only: a sample is kept when
  the smoothed probability of its label is at least ``keep_ratio`` times
  that of the most likely class (``keep_ratio=1`` is the argmax rule).
  Poison is a confident contradiction (a model never taught the trigger
  calls the image its source class), while a hard clean sample of a
  confusable class keeps some probability on its label. The sets trained
  on between rounds still follow the argmax rule: relaxing them too let
  poison of a similar-looking class pair back in, round after round, until
  the refine model learned the trigger (``benchmarks/README.md``, levers).
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import HasMethods, Interval

from ._learners import build_learner, check_weak_learner, run_tasks

__all__ = ["SelfTraining"]


class SelfTraining(BaseEstimator):
    """The refine stage's settings: self-training on the voted set.

    A fresh model trains on the samples the vote kept; every ``n_epochs``
    epochs the kept set becomes the samples whose momentum-smoothed
    prediction agrees with their label (paper appendix B.1). Give it to
    :class:`ISPLFilter` as ``refiner``; its settings are reachable as
    ``isplfilter__refiner__n_rounds`` and so on.

    Parameters
    ----------
    n_rounds : int, default=20
        Self-training rounds (paper: 100 epochs = 20 rounds of 5); 0 skips
        the refine stage.
    n_epochs : int, default=5
        Epochs between two updates of the kept set.
    momentum : float in [0, 1), default=0.8
        Smoothing of predictions across rounds.
    n_folds : int, default=1
        1: one model judges every sample, including those it trained on
        (the paper). ``k >= 2``: cross-fitting; each of ``k`` stratified
        folds is judged by a model trained on the kept samples of the other
        folds, so no model vouches for a sample it memorised. The models
        share the epochs: the cost is about that of one model, and they
        train side by side as the filter's ``n_jobs`` allows. A deviation
        from the paper.
    keep_ratio : float in (0, 1], default=1.0
        The final keep rule: a sample stays when the smoothed probability of
        its label is at least this times that of its most likely class. 1.0
        is the paper's argmax rule; lower values give back hard clean
        samples of confusable classes, which keep some probability on their
        label, while poison is a confident contradiction. Only the final
        decision is relaxed. A deviation from the paper.
    learner : estimator, default=None
        The model that self-trains; None: the filter's weak learner. It
        trains on most of the data and its errors become false positives,
        so a larger model than the weak learner can pay here.

    See Also
    --------
    ISPLFilter : The whole defense, whose third stage this is.
    """

    _parameter_constraints: dict = {
        "n_rounds": [Interval(Integral, 0, None, closed="left")],
        "n_epochs": [Interval(Integral, 1, None, closed="left")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "n_folds": [Interval(Integral, 1, None, closed="left")],
        "keep_ratio": [Interval(Real, 0, 1, closed="right")],
        "learner": [HasMethods(["partial_fit", "predict_proba"]), None],
    }

    def __init__(
        self,
        n_rounds=20,
        n_epochs=5,
        momentum=0.8,
        n_folds=1,
        keep_ratio=1.0,
        learner=None,
    ):
        self.n_rounds = n_rounds
        self.n_epochs = n_epochs
        self.momentum = momentum
        self.n_folds = n_folds
        self.keep_ratio = keep_ratio
        self.learner = learner

    def check(self, y):
        """Raise a clear error for settings the labels ``y`` cannot support."""
        check_weak_learner(self.learner)
        if self.n_folds > 1:
            largest = int(np.bincount(y).max())
            if self.n_folds > largest:
                raise ValueError(
                    f"refiner__n_folds={self.n_folds} is larger than the largest "
                    f"class ({largest} samples): every fold needs samples to "
                    "judge."
                )

    def refine(self, data, start, trainable, seed, device, n_jobs=None):
        """Run the stage from the kept set ``start`` with ``learner`` (None:
        the default network); see :func:`self_train`."""
        return self_train(
            data,
            self.learner,
            start,
            seed,
            device,
            self.n_rounds,
            self.n_epochs,
            self.momentum,
            self.n_folds,
            self.keep_ratio,
            trainable,
            n_jobs,
        )


def self_train(
    data,
    weak_learner,
    keep,
    seed,
    device,
    n_rounds,
    epochs,
    momentum,
    folds=1,
    keep_ratio=1.0,
    trainable=None,
    n_jobs=None,
):
    """Refine ``keep`` by self-training.

    ``trainable`` (boolean mask or None) limits the samples the models may
    train on in every round; every sample is still judged. With ``folds >=
    2`` the fold models train side by side through :func:`run_tasks`
    (``n_jobs`` workers), each with a fixed number of torch threads, so the
    result does not depend on ``n_jobs``; a single model trains in the
    calling thread.

    Returns
    -------
    keep : ndarray of bool
        The kept set after the last round, by the ``keep_ratio`` rule.
    support : ndarray of float
        The smoothed predicted probability of each sample's given label
        (NaN when no round ran).
    proba : ndarray of shape (n_samples, n_classes)
        The smoothed predicted probabilities of every class (NaN when no
        round ran); with ``folds >= 2``, each sample's come from the model
        that did not train on it.
    """
    keep = np.asarray(keep, dtype=bool).copy()
    if trainable is None:
        trainable = np.ones(len(data), dtype=bool)
    support = np.full(len(data), np.nan)
    smoothed = np.full((len(data), data.n_classes), np.nan)
    if n_rounds == 0 or not keep.any():
        return keep, support, smoothed
    rng = np.random.RandomState(seed)
    fold_of = stratified_folds(data.y, folds, rng)
    # One fold keeps the single model seeded by ``seed`` itself, so the
    # paper's setting gives the same result as before folds existed.
    seeds = [seed] if folds == 1 else rng.randint(np.iinfo(np.int32).max, size=folds)
    learners = [build_learner(weak_learner, data, s, device) for s in seeds]
    # Learner k judges fold k and trains on the kept samples outside it; a
    # single learner trains on every kept sample.
    judged = [np.flatnonzero(fold_of == k) for k in range(folds)]
    allowed_per_fold = [
        trainable & (fold_of != k) if folds > 1 else trainable for k in range(folds)
    ]
    rows = np.arange(len(data))
    for round_ in range(n_rounds):
        tasks = [
            (learner, np.flatnonzero(keep & allowed), epochs, fold)
            for learner, fold, allowed in zip(
                learners, judged, allowed_per_fold, strict=True
            )
        ]
        if folds == 1:
            judgements = [_train_and_judge(*tasks[0])]
        else:
            # The fold models are trained further round after round, so they
            # stay in this process: threads, whatever the joblib backend.
            judgements = run_tasks(_train_and_judge, tasks, n_jobs, shared=True)
        proba = np.empty((len(data), data.n_classes))
        for fold, judgement in zip(judged, judgements, strict=True):
            proba[fold] = judgement
        smoothed = (
            proba if round_ == 0 else (momentum * smoothed + (1 - momentum) * proba)
        )
        support = smoothed[rows, data.y]
        keep = smoothed.argmax(axis=1) == data.y
        if not keep.any():
            break
    if keep_ratio < 1:
        keep = support >= keep_ratio * smoothed.max(axis=1)
    return keep, support, smoothed


def _train_and_judge(learner, rows, epochs, judged):
    """Train ``learner`` ``epochs`` more epochs on ``rows``; return its
    probabilities for the rows ``judged``."""
    learner.fit_epochs(rows, epochs)
    return learner.predict_proba(judged)


def stratified_folds(y, folds, rng):
    """Fold index of every sample; each class spread evenly over the folds."""
    fold_of = np.zeros(len(y), dtype=np.int64)
    if folds == 1:
        return fold_of
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        fold_of[rng.permutation(members)] = np.arange(len(members)) % folds
    return fold_of
