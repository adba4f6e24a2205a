"""Confident learning (Northcutt, Jiang and Chuang, JAIR 2021) through cleanlab."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from .._base import BaseFilter
from .._docstring import SHARED_PARAMS, Substitution
from .._learners import build_learner, run_tasks

__all__ = ["ConfidentLearningFilter"]

_FILTER_BY = {
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "predicted_neq_given",
    "low_normalized_margin",
    "low_self_confidence",
}


def _import_find_label_issues():
    try:
        from cleanlab.filter import find_label_issues
    except ImportError as exc:
        raise ImportError(
            "ConfidentLearningFilter needs the optional dependency cleanlab; "
            "install it with: pip install sklearn-ispl[cleanlab]"
        ) from exc
    return find_label_issues


def fold_proba(data, weak_learner, seed, device, train, test, n_epochs):
    """Train a fresh weak learner on ``train``; return its probabilities on ``test``."""
    learner = build_learner(weak_learner, data, seed, device)
    learner.fit_epochs(train, n_epochs)
    return learner.predict_proba(test)


def make_folds(y, cv, seed):
    """Stratified folds when some class can fill two; plain folds otherwise."""
    counts = np.bincount(y)
    n_splits = min(cv, len(y))
    if counts.max() >= 2:
        n_splits = min(n_splits, counts.max())
        splitter = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # Classes smaller than the number of folds miss some folds' test
        # sets: their samples are still predicted once, by one fold.
        warnings.filterwarnings("ignore", message="The least populated class")
        return list(splitter.split(np.zeros((len(y), 1)), y))


@Substitution(**SHARED_PARAMS)
class ConfidentLearningFilter(BaseFilter):
    """Remove the samples cleanlab finds mislabelled from out-of-fold predictions.

    Confident learning (Northcutt, Jiang and Chuang, 2021) estimates the joint
    distribution of given and true labels from out-of-sample predicted
    probabilities, and flags the samples most likely to be mislabelled. A
    dirty-label backdoor relabels its poison, so the poison is label noise
    for a learner that has not learnt the trigger. Here:

    1. the data is split into ``cv`` stratified folds; for each, a fresh weak
       learner trains on the others for ``n_epochs`` epochs and predicts it;
    2. ``cleanlab.filter.find_label_issues(labels, pred_probs, filter_by=...)``
       flags label issues from these out-of-fold probabilities;
    3. the flagged samples are removed.

    Requires the optional dependency cleanlab
    (``pip install sklearn-ispl[cleanlab]``).

    Parameters
    ----------
    {weak_learner}
        Here: the learner of every fold.
    n_epochs : int, default=20
        Epochs of each fold's learner (see :class:`SpectralSignatureFilter`).
    cv : int, default=5
        Number of folds (cleanlab's own cross-validation default). It is
        capped by the size of the largest class; folds are stratified.
    filter_by : str, default="prune_by_noise_rate"
        cleanlab's rule for flagging (its default): one of
        "prune_by_noise_rate", "prune_by_class", "both",
        "confident_learning", "predicted_neq_given", "low_normalized_margin",
        "low_self_confidence". See ``cleanlab.filter.find_label_issues``.
    frac_noise : float in (0, 1], default=1.0
        Flag only this share of the estimated label issues (cleanlab's
        parameter; used by the "prune_by_*" and "both" rules).
    {image_shape}
    {device}
    {n_jobs}
        cleanlab itself runs in one process.
    {random_state}
    {verbose}

    Attributes
    ----------
    keep_mask_ : ndarray of bool of shape (n_samples,)
        True for kept samples.
    sample_indices_ : ndarray of int
        Indices of the kept samples.
    scores_ : ndarray of shape (n_samples,)
        Out-of-fold predicted probability of each sample's given label
        (cleanlab's "self_confidence" label quality): low means suspicious.
    oof_proba_ : ndarray of shape (n_samples, n_classes)
        The out-of-fold predicted probabilities given to cleanlab, columns
        in the order of ``classes_``.
    classes_ : ndarray
        Class labels.
    n_features_in_ : int
        Values per sample (pixels times channels, or columns).
    feature_names_in_ : ndarray of str
        Column names, when ``X`` is a DataFrame with string columns.
    input_layout_ : str
        How ``X`` was read: "nhw", "nhwc", "nchw", "flat" or "tabular".

    See Also
    --------
    ITLMFilter : Trims high-loss samples by retraining.
    ISPLFilter : The package's main defense.

    References
    ----------
    C. Northcutt, L. Jiang and I. Chuang. "Confident Learning: Estimating
    Uncertainty in Dataset Labels". JAIR 70, 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ispl import ConfidentLearningFilter
    >>> from sklearn_ispl.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> rng = np.random.RandomState(0)
    >>> noisy = rng.rand(len(y)) < 0.05
    >>> y_noisy = np.where(noisy, (y + 1) % 10, y)
    >>> cl = ConfidentLearningFilter(cv=3, random_state=0)
    >>> X_kept, y_kept = cl.fit_resample(X, y_noisy)  # doctest: +SKIP
    """

    _parameter_constraints: dict = {
        **BaseFilter._parameter_constraints,
        "n_epochs": [Interval(Integral, 1, None, closed="left")],
        "cv": [Interval(Integral, 2, None, closed="left")],
        "filter_by": [StrOptions(_FILTER_BY)],
        "frac_noise": [Interval(Real, 0, 1, closed="right")],
    }

    def __init__(
        self,
        weak_learner=None,
        *,
        n_epochs=20,
        cv=5,
        filter_by="prune_by_noise_rate",
        frac_noise=1.0,
        image_shape=None,
        device="cpu",
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.weak_learner = weak_learner
        self.n_epochs = n_epochs
        self.cv = cv
        self.filter_by = filter_by
        self.frac_noise = frac_noise
        self.image_shape = image_shape
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def _fit_filter(self, data):
        find_label_issues = _import_find_label_issues()
        rng = check_random_state(self.random_state)
        folds = make_folds(data.y, self.cv, rng.randint(np.iinfo(np.int32).max))
        seeds = rng.randint(np.iinfo(np.int32).max, size=len(folds))
        tasks = [
            (data, self.weak_learner, seed, self.device, train, test, self.n_epochs)
            for seed, (train, test) in zip(seeds, folds, strict=True)
        ]
        probas = run_tasks(fold_proba, tasks, self.n_jobs, self.verbose, "CL folds")
        oof = np.zeros((len(data), data.n_classes))
        for (_, test), proba in zip(folds, probas, strict=True):
            oof[test] = proba
        issues = find_label_issues(
            data.y,
            oof,
            filter_by=self.filter_by,
            frac_noise=self.frac_noise,
            n_jobs=1,
        )
        self.oof_proba_ = oof
        return ~np.asarray(issues, dtype=bool), oof[np.arange(len(data)), data.y]
