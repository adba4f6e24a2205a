"""Metrics for evaluating a defense against a backdoor attack.

The paper reports, for every defense, the clean accuracy of the final model
(C), its targeted misclassification rate (A, eq. 7), and how many clean
samples the defense removed (false positives, FP) and how many poisoned
samples it kept (false negatives, FN). This module computes each, and offers
scorers so that a ``GridSearchCV`` over ``make_pipeline(filter, classifier)``
can track clean accuracy and attack success side by side.
"""

import numpy as np
from sklearn.metrics import accuracy_score, make_scorer

from .attacks import _equals

__all__ = [
    "clean_accuracy",
    "clean_accuracy_scorer",
    "filter_report",
    "make_attack_success_scorer",
    "targeted_misclassification_rate",
]


def clean_accuracy(y_true, y_pred):
    """Share of clean test images classified correctly (the paper's "C").

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels of clean (untriggered) test images.
    y_pred : array-like of shape (n_samples,)
        Predicted labels for the same images.

    Returns
    -------
    accuracy : float
        In [0, 1].

    Raises
    ------
    ValueError
        If the inputs are not 1-D of the same non-zero length.

    Examples
    --------
    >>> from sklearn_ispl.metrics import clean_accuracy
    >>> clean_accuracy([0, 1, 2, 2], [0, 1, 2, 1])
    0.75
    """
    y_true, y_pred = _check_labels(y_true=y_true, y_pred=y_pred)
    return float(accuracy_score(y_true, y_pred))


def targeted_misclassification_rate(
    y_true, y_pred_clean, y_pred_triggered, source, target
):
    """Success of a backdoor attack on a test set (the paper's eq. 7, "A").

    An image counts as attacked successfully when it belongs to the source
    class, the model classifies it correctly while clean, and classifies it
    as the target once the trigger is applied.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels of the test images (before any trigger).
    y_pred_clean : array-like of shape (n_samples,)
        Predictions on the clean images.
    y_pred_triggered : array-like of shape (n_samples,)
        Predictions on the same images with the trigger applied. Only the
        source-class entries are used.
    source, target : scalar labels
        Source and target classes of the attack.

    Returns
    -------
    rate : float
        In [0, 1]: the number of source-class images with
        ``y_pred_clean == source`` and ``y_pred_triggered == target``,
        divided by the number of source-class images.

    Raises
    ------
    ValueError
        If the inputs do not have the same length, or no image is of the
        source class.

    Notes
    -----
    The denominator is the whole source class of the test set, as in the
    paper (eq. 7 sums over the source-class test set T; appendix C: "measured
    over the entire source class of the test set"), and not only the images
    that are classified correctly while clean. A source image the model
    already gets wrong can thus never count as a success, and the rate is at
    most the model's accuracy on the source class.

    Examples
    --------
    >>> from sklearn_ispl.metrics import targeted_misclassification_rate
    >>> y_true = [0, 0, 0, 0, 1]
    >>> y_pred_clean = [0, 0, 0, 1, 1]      # one source image misclassified
    >>> y_pred_triggered = [2, 2, 0, 2, 2]  # the trigger flips two of the rest
    >>> targeted_misclassification_rate(y_true, y_pred_clean,
    ...                                 y_pred_triggered, source=0, target=2)
    0.5
    """
    y_true, y_pred_clean, y_pred_triggered = _check_labels(
        y_true=y_true,
        y_pred_clean=y_pred_clean,
        y_pred_triggered=y_pred_triggered,
    )
    in_source = _equals(y_true, source)
    n_source = int(in_source.sum())
    if n_source == 0:
        raise ValueError(
            f"source={source!r} does not occur in y_true, so the targeted "
            "misclassification rate is undefined."
        )
    flipped = (
        in_source & _equals(y_pred_clean, source) & _equals(y_pred_triggered, target)
    )
    return float(flipped.sum() / n_source)


def filter_report(poison_mask, keep_mask):
    """Count what a filtering defense removed and kept.

    A removed sample is a *positive* (flagged as poison): false positives
    are clean samples removed, false negatives poisoned samples kept.

    Parameters
    ----------
    poison_mask : array-like of shape (n_samples,), dtype=bool
        True for the poisoned training samples (the third output of
        :meth:`~sklearn_ispl.attacks.BackdoorAttack.poison`).
    keep_mask : array-like of shape (n_samples,), dtype=bool
        True for the samples the defense kept (a filter's ``keep_mask_``).

    Returns
    -------
    report : dict
        With int entries ``n_samples``, ``n_poison``, ``n_clean``,
        ``n_removed``, ``true_positives`` (poison removed),
        ``false_positives`` (clean removed) and ``false_negatives`` (poison
        kept); and float entries

        - ``precision``: share of the removed samples that are poison,
          ``TP / n_removed``;
        - ``recall``: share of the poison that was removed,
          ``TP / n_poison``;
        - ``false_positive_rate``: ``FP / n_clean``;
        - ``false_negative_rate``: ``FN / n_poison`` (``1 - recall``).

    Raises
    ------
    ValueError
        If the masks are not boolean, not 1-D or of different lengths.

    Notes
    -----
    Zero denominators get the value that is vacuously true rather than NaN,
    so that reports can be averaged and ``false_negative_rate == 1 - recall``
    always holds: with nothing removed, ``precision = 1.0`` (nothing was
    wrongly removed); with no poison, ``recall = 1.0`` and
    ``false_negative_rate = 0.0``; with no clean sample,
    ``false_positive_rate = 0.0``. Check ``n_removed`` and ``n_poison``
    before reading these as evidence.

    Examples
    --------
    >>> from sklearn_ispl.metrics import filter_report
    >>> poison = [True, True, False, False, False]
    >>> keep = [False, True, False, True, True]
    >>> report = filter_report(poison, keep)
    >>> report["false_positives"], report["false_negatives"]
    (1, 1)
    >>> report["precision"], report["recall"]
    (0.5, 0.5)
    """
    poison_mask = _check_mask(poison_mask, "poison_mask")
    keep_mask = _check_mask(keep_mask, "keep_mask")
    if poison_mask.shape != keep_mask.shape:
        raise ValueError(
            f"poison_mask and keep_mask must have the same length, got "
            f"{poison_mask.shape[0]} and {keep_mask.shape[0]}."
        )
    removed = ~keep_mask
    n_samples = int(poison_mask.size)
    n_poison = int(poison_mask.sum())
    n_clean = n_samples - n_poison
    n_removed = int(removed.sum())
    true_positives = int((removed & poison_mask).sum())
    false_positives = int((removed & ~poison_mask).sum())
    false_negatives = int((keep_mask & poison_mask).sum())
    return {
        "n_samples": n_samples,
        "n_poison": n_poison,
        "n_clean": n_clean,
        "n_removed": n_removed,
        "true_positives": true_positives,
        "false_positives": false_positives,
        "false_negatives": false_negatives,
        "precision": _ratio(true_positives, n_removed, empty=1.0),
        "recall": _ratio(true_positives, n_poison, empty=1.0),
        "false_positive_rate": _ratio(false_positives, n_clean, empty=0.0),
        "false_negative_rate": _ratio(false_negatives, n_poison, empty=0.0),
    }


#: Scorer for clean accuracy, ``scorer(estimator, X, y)``: the accuracy of
#: ``estimator.predict(X)`` against ``y``. Use it next to
#: :func:`make_attack_success_scorer` in ``GridSearchCV(scoring={...})``.
clean_accuracy_scorer = make_scorer(clean_accuracy)


def make_attack_success_scorer(attack):
    """Make a scorer of attack success for model selection.

    The scorer, called as ``scorer(estimator, X, y)`` on a fitted estimator
    and a validation fold, predicts ``X``, predicts
    ``attack.apply_trigger(X)``, and returns the
    :func:`targeted_misclassification_rate` of ``attack`` **negated**:
    scikit-learn maximises scores, and a lower attack success is better.
    Name it accordingly, e.g. ``scoring={"clean": clean_accuracy_scorer,
    "neg_asr": make_attack_success_scorer(attack)}``; the score lies in
    [-1, 0] and 0 means the attack never succeeded.

    Parameters
    ----------
    attack : BackdoorAttack
        Or any object with ``apply_trigger(X)``, ``source`` and ``target``.
        Its trigger must fit the images ``X`` the scorer receives (set its
        ``image_shape`` when the pipeline takes flat rows).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y) -> float``, picklable, so it also runs in
        parallel ``GridSearchCV(n_jobs=...)``.

    Raises
    ------
    ValueError
        If ``attack`` lacks ``apply_trigger``, ``source`` or ``target``.

    Notes
    -----
    ``y`` holds the labels the fold was given. When the folds come from a
    poisoned training set, the poisoned samples carry the target label, so
    only the clean source-class samples of the fold enter the rate; each
    fold must contain some (stratified folds, scikit-learn's default for
    classifiers, see to that). The trigger is also written into images
    that already carry it; this changes nothing.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn_ispl.attacks import BackdoorAttack
    >>> from sklearn_ispl.metrics import (clean_accuracy_scorer,
    ...                                   make_attack_success_scorer)
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16  # flat 8x8 images scaled to [0, 1]
    >>> attack = BackdoorAttack(0, 1, trigger="pattern", position=(1, 1),
    ...                         color=1.0, eps=0.3, image_shape=(8, 8),
    ...                         random_state=0)
    >>> X_poisoned, y_poisoned, _ = attack.poison(X, y)
    >>> search = GridSearchCV(
    ...     LogisticRegression(max_iter=500), {"C": [0.01, 1.0]}, cv=3,
    ...     scoring={"clean": clean_accuracy_scorer,
    ...              "neg_asr": make_attack_success_scorer(attack)},
    ...     refit="clean").fit(X_poisoned, y_poisoned)
    >>> bool((search.cv_results_["mean_test_neg_asr"] <= 0).all())
    True
    """
    missing = [
        name
        for name in ("apply_trigger", "source", "target")
        if not hasattr(attack, name)
    ]
    if missing or not callable(getattr(attack, "apply_trigger", None)):
        raise ValueError(
            "attack must be a BackdoorAttack or have apply_trigger(X), source "
            f"and target; {attack!r} lacks {missing or ['a callable apply_trigger']}."
        )
    return _AttackSuccessScorer(attack)


class _AttackSuccessScorer:
    """Negated targeted misclassification rate of one attack; see the factory."""

    def __init__(self, attack):
        self.attack = attack

    def __call__(self, estimator, X, y):
        y_pred_clean = estimator.predict(X)
        y_pred_triggered = estimator.predict(self.attack.apply_trigger(X))
        rate = targeted_misclassification_rate(
            y, y_pred_clean, y_pred_triggered, self.attack.source, self.attack.target
        )
        return -rate

    def __repr__(self):
        return f"make_attack_success_scorer({self.attack!r})"


def _check_labels(**arrays):
    """Turn label arrays into 1-D ndarrays of one common, non-zero length."""
    checked = []
    for name, values in arrays.items():
        values = np.asarray(values)
        if values.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {values.shape}.")
        checked.append(values)
    lengths = {name: a.shape[0] for name, a in zip(arrays, checked, strict=True)}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"Inputs must have the same length, got {lengths}.")
    if checked[0].shape[0] == 0:
        raise ValueError("Inputs are empty; need at least one sample.")
    return checked


def _check_mask(mask, name):
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise ValueError(
            f"{name} must be a boolean mask (one True/False per sample), got "
            f"dtype {mask.dtype}; convert indices with np.isin(np.arange(n), "
            "indices)."
        )
    if mask.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {mask.shape}.")
    return mask


def _ratio(numerator, denominator, *, empty):
    return float(numerator / denominator) if denominator else float(empty)
