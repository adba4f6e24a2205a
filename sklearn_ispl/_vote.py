"""Vote stage: boosting homogeneous components (paper Algorithm 1).

A fresh weak learner is trained on each component and predicts a label for
every training sample. Clean components agree with each other on clean
samples; a component of poison teaches the trigger, which the clean
components outvote. Three ways to count:

- ``voting="sample"`` (the paper's experiments): each sample is kept when the
  modal predicted label equals its given label; ties are broken at random,
  and the winning label needs at least ``min_votes`` votes (the official code
  asks for more than one).
- ``voting="component"`` (Algorithm 1): learner ``i`` supports component
  ``k`` when it classifies at least half of ``k`` as labelled; a component
  is kept when the supporting learners' components hold more than half of
  the samples (votes weighted by component size).
- ``voting="competent"`` (an option of this package, not in the paper):
  ISPL components are class-skewed, so most learners barely saw a given
  class and cannot recognise it; in a plain vote they outvote the few that
  can. Here a sample is judged only by the *competent* learners: those that
  did not train on it and whose component holds at least ``competence``
  times the share of the sample's class in the whole data. It is removed
  when at least ``min_agreement`` of its judges agree on one other label.
  On Fashion-MNIST this removed far fewer clean samples in one scenario but
  kept more poison in others (``benchmarks/README.md``).
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from ._base import BaseFilter
from ._docstring import SHARED_PARAMS, Substitution
from ._learners import build_learner, run_tasks
from ._partition import partition
from ._validation import resolve_size

__all__ = ["BoostedComponentVoter"]


def train_voter(
    data, weak_learner, seed, device, component, n_epochs, max_samples=None
):
    """Train a fresh weak learner on ``component``; return its label per sample.

    With ``max_samples`` (a count), the learner trains on that many rows of
    the component, when it is larger, spread over its classes as evenly as
    the component allows (:func:`balanced_subsample`).
    """
    learner = build_learner(weak_learner, data, seed, device)
    if max_samples is not None and len(component) > max_samples:
        component = balanced_subsample(component, data.y, max_samples, learner.rng)
    learner.fit_epochs(component, n_epochs)
    return learner.predict_proba().argmax(axis=1).astype(np.int32)


def balanced_subsample(rows, y, size, rng):
    """Draw ``size`` of ``rows``, as evenly over their classes as possible.

    Classes with fewer rows than an even share give all of them; the rest is
    shared by the larger classes (water-filling). ISPL components are class-
    skewed, and a learner trained on a uniform subsample of one hardly sees
    its rare classes, so it calls them by a similar-looking frequent class.
    """
    classes, counts = np.unique(y[rows], return_counts=True)
    quota = np.zeros(len(classes), dtype=np.intp)
    left = size
    for rank, c in enumerate(np.argsort(counts, kind="stable")):
        quota[c] = min(counts[c], left // (len(classes) - rank))
        left -= quota[c]
    picked = [
        rng.choice(rows[y[rows] == cls], q, replace=False)
        for cls, q in zip(classes, quota, strict=True)
    ]
    return np.sort(np.concatenate(picked))


def check_components(components, n_samples):
    """Return components as a list of sorted, non-empty index arrays.

    Accepts one label per sample (negative = in no component), as a clustering
    returns, or a sequence of index arrays or boolean masks.
    """
    if components is None:
        raise ValueError("components must be given.")
    if isinstance(components, (str, bytes)) or not hasattr(components, "__len__"):
        raise ValueError(
            "components must be one integer label per sample or a list of "
            "index arrays or boolean masks; got "
            f"{type(components).__name__}."
        )
    if isinstance(components, np.ndarray) and components.ndim == 1:
        if components.dtype.kind not in "iub" and len(components) == n_samples:
            raise ValueError(
                "components given as one label per sample must be integers; "
                f"got dtype {components.dtype}."
            )
        if components.dtype.kind in "iu" and len(components) == n_samples:
            labels = components
            if not (labels >= 0).any():
                raise ValueError(
                    "components: every label is negative, so no sample is in a "
                    "component; give at least one label >= 0."
                )
            return [np.flatnonzero(labels == c) for c in np.unique(labels[labels >= 0])]
    out = []
    for i, comp in enumerate(components):
        comp = np.asarray(comp)
        if comp.dtype == bool:
            if comp.shape != (n_samples,):
                raise ValueError(
                    f"components[{i}] is a boolean mask of shape {comp.shape}; "
                    f"expected ({n_samples},)."
                )
            comp = np.flatnonzero(comp)
        if comp.ndim != 1 or (comp.size and comp.dtype.kind not in "iu"):
            raise ValueError(
                f"components[{i}] must be a 1-D array of row indices or a boolean "
                f"mask; got dtype {comp.dtype} and shape {comp.shape}."
            )
        if comp.size and (comp.min() < 0 or comp.max() >= n_samples):
            raise ValueError(f"components[{i}] holds indices outside [0, {n_samples}).")
        if comp.size:
            out.append(np.unique(comp))
    if not out:
        raise ValueError("components must hold at least one non-empty component.")
    return out


def sample_vote(predictions, y, min_votes, rng):
    """Per-sample modal vote; returns ``(keep, share of votes for y)``."""
    n_voters, n_samples = predictions.shape
    n_classes = int(max(predictions.max(), y.max())) + 1
    counts = np.zeros((n_samples, n_classes), dtype=np.int32)
    rows = np.broadcast_to(np.arange(n_samples), predictions.shape)
    np.add.at(counts, (rows.ravel(), predictions.ravel()), 1)
    own = counts[np.arange(n_samples), y]
    top = counts.max(axis=1)
    n_tied = (counts == top[:, None]).sum(axis=1)
    # A tie is broken at random: the given label wins with probability
    # 1 / (number of tied labels).
    wins = (own == top) & (rng.random_sample(n_samples) * n_tied < 1)
    # With fewer voters than min_votes the bar is a unanimous vote.
    return wins & (own >= min(min_votes, n_voters)), own / n_voters


def component_vote(predictions, components, y):
    """Algorithm 1: size-weighted votes of learners on whole components."""
    sizes = np.array([len(c) for c in components], dtype=np.float64)
    support = np.zeros(len(components))
    for i, pred in enumerate(predictions):
        for k, comp in enumerate(components):
            if np.mean(pred[comp] == y[comp]) >= 0.5:
                support[k] += sizes[i]
    share = support / sizes.sum()
    scores = np.full(len(y), np.nan)
    for k, comp in enumerate(components):
        scores[comp] = share[k]
    # Samples outside every component are judged on their own: the share of
    # learners that predict their given label.
    outside = np.isnan(scores)
    scores[outside] = np.mean(predictions[:, outside] == y[outside], axis=0)
    return scores > 0.5, scores


def competent_vote(predictions, components, y, n_classes, competence, min_agreement):
    """Vote of the competent learners; returns ``(keep, 1 - top other share)``."""
    n_voters, n_samples = predictions.shape
    class_share = np.bincount(y, minlength=n_classes) / n_samples
    votes = np.zeros((n_samples, n_classes))
    fallback = np.zeros((n_samples, n_classes))
    rows = np.arange(n_samples)
    for pred, comp in zip(predictions, components, strict=True):
        outside = np.ones(n_samples, dtype=bool)
        outside[comp] = False
        comp_share = np.bincount(y[comp], minlength=n_classes) / len(comp)
        knows = comp_share >= competence * class_share
        judge = outside & knows[y]
        np.add.at(votes, (rows[judge], pred[judge]), 1)
        np.add.at(fallback, (rows[outside], pred[outside]), 1)
    # A sample no competent learner can judge is judged by every learner that
    # did not train on it; one no learner can judge is kept.
    none = votes.sum(axis=1) == 0
    votes[none] = fallback[none]
    total = votes.sum(axis=1)
    votes[rows, y] = 0
    other = np.divide(
        votes.max(axis=1), total, out=np.zeros(n_samples), where=total > 0
    )
    return other < min_agreement, 1.0 - other


@Substitution(**SHARED_PARAMS)
class BoostedComponentVoter(BaseFilter):
    """Keep the samples whose label the component learners vote for.

    The voting stage of the ISPL defense on its own (paper Algorithm 1): one
    weak learner per component, each predicting every training sample. The
    components can come from anywhere: :class:`ISPLFilter`'s partition, a
    clustering, or a user.

    Parameters
    ----------
    {weak_learner}
        Here: trained once per component.
    n_epochs : int, default=40
        Epochs of each component learner (paper: 40).
    voting : {"sample", "component", "competent"}, default="sample"
        Count votes per sample over all learners (the paper's experiments),
        per component (Algorithm 1, size-weighted), or judge each sample by
        the learners competent on its class ("competent", see
        ``competence``). See :mod:`sklearn_ispl._vote`.
    min_votes : int, default=2
        With ``voting="sample"``, the least number of votes the winning label
        needs (the official code requires more than one); capped at the
        number of components.
    competence : float in [0, 1], default=0.25
        With ``voting="competent"``: a learner judges the samples of class
        ``c`` outside its component when ``c``'s share of its component is
        at least ``competence`` times ``c``'s share of the data.
    min_agreement : float in (0.5, 1], default=0.6
        With ``voting="competent"``: a sample is removed when at least this
        share of its judges agree on one label other than its own.
    max_samples : int, float or None, default=None
        Rows each component learner trains on, drawn at random from its
        component when the component is larger, as evenly over its classes
        as the component allows: a count (int) or a share of the component
        (float in (0, 1]); None trains on the whole component (the paper).
        Every learner still votes on every sample. A deviation
        from the paper for large data: a learner trained on a component of
        thousands of images for several epochs learns a trigger from the few
        dozen poisoned images that the partition left outside the poison
        component on tens of thousands of images (the documentation's
        benchmarks page and ``benchmarks/README.md`` say what was measured);
        a capped learner stays weak, and the vote costs the same at any data
        size apart from prediction. It is not
        enough on its own there: a learner whose component holds almost none
        of a class still calls that class by a look-alike.
    partitioner : object, default=None
        Where components come from when ``fit`` is given none: an object with
        ``fit_predict(X)`` (a clusterer such as ``KMeans``, applied to the
        standardised rows), or None for ISPL with the paper's settings.
    {image_shape}
    {device}
    {n_jobs}
    {random_state}
    {verbose}

    Attributes
    ----------
    keep_mask_ : ndarray of bool of shape (n_samples,)
        True for kept samples.
    sample_indices_ : ndarray of int
        Indices of the kept samples.
    scores_ : ndarray of shape (n_samples,)
        Low means suspicious. ``voting="competent"``: one minus the largest
        share of the sample's judges agreeing on another label;
        ``"sample"``: the share of votes for its given label;
        ``"component"``: the size-weighted support of its component.
    components_ : list of ndarray
        The components voted with, as row indices.
    predictions_ : ndarray of shape (n_components, n_samples)
        Each component learner's predicted class index per sample.
    classes_ : ndarray
        Class labels.
    n_features_in_ : int
        Values per sample (pixels times channels, or columns).
    feature_names_in_ : ndarray of str
        Column names, when ``X`` is a DataFrame with string columns.

    See Also
    --------
    ISPLFilter : The full defense: ISPL partition, this vote, self-training.

    Examples
    --------
    >>> from sklearn.cluster import KMeans
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import SGDClassifier
    >>> from sklearn_ispl import BoostedComponentVoter
    >>> X, y = load_iris(return_X_y=True)
    >>> voter = BoostedComponentVoter(
    ...     weak_learner=SGDClassifier(loss="log_loss"), n_epochs=5,
    ...     partitioner=KMeans(4, n_init=1, random_state=0), random_state=0)
    >>> X_kept, y_kept = voter.fit_resample(X, y)
    >>> len(voter.components_)
    4
    """

    _parameter_constraints: dict = {
        **BaseFilter._parameter_constraints,
        "n_epochs": [Interval(Integral, 1, None, closed="left")],
        "voting": [StrOptions({"competent", "sample", "component"})],
        "min_votes": [Interval(Integral, 1, None, closed="left")],
        "competence": [Interval(Real, 0, 1, closed="both")],
        "min_agreement": [Interval(Real, 0.5, 1, closed="right")],
        "max_samples": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0, 1, closed="right"),
            None,
        ],
        "partitioner": [HasMethods(["fit_predict"]), None],
    }

    def __init__(
        self,
        weak_learner=None,
        *,
        n_epochs=40,
        voting="sample",
        min_votes=2,
        competence=0.25,
        min_agreement=0.6,
        max_samples=None,
        partitioner=None,
        image_shape=None,
        device="cpu",
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.weak_learner = weak_learner
        self.n_epochs = n_epochs
        self.voting = voting
        self.min_votes = min_votes
        self.competence = competence
        self.min_agreement = min_agreement
        self.max_samples = max_samples
        self.partitioner = partitioner
        self.image_shape = image_shape
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y, components=None):
        """Train one learner per component and vote on every sample.

        Parameters
        ----------
        X : array-like
            Training images or rows (see :class:`ISPLFilter` for layouts).
        y : array-like of shape (n_samples,)
            Given labels.
        components : array-like, default=None
            One component label per sample (negative: in no component), or a
            list of index arrays or boolean masks. None: use ``partitioner``.

        Returns
        -------
        self : object
            The fitted voter.
        """
        return super().fit(X, y, components=components)

    def fit_resample(self, X, y, components=None):
        """Fit the voter and return the kept samples.

        Parameters
        ----------
        X : array-like
            Training images or rows.
        y : array-like of shape (n_samples,)
            Given labels.
        components : array-like, default=None
            As for :meth:`fit`.

        Returns
        -------
        X_kept, y_kept : array-like
            The kept rows, in the containers they came in.
        """
        return super().fit_resample(X, y, components=components)

    def _fit_filter(self, data, components=None):
        rng = check_random_state(self.random_state)
        if components is None:
            components = self._partition(data, rng)
        components = check_components(components, len(data))
        keep, scores, predictions = vote(self, data, components, self.weak_learner, rng)
        self.components_ = components
        self.predictions_ = predictions
        return keep, scores

    def _partition(self, data, rng):
        if self.partitioner is not None:
            labels = clone(self.partitioner).fit_predict(data.X_flat)
            return np.asarray(labels)
        components, _ = partition(
            data, self.weak_learner, rng, self.device, self.n_jobs, self.verbose
        )
        return components


def vote(voter, data, components, weak_learner, rng):
    """The vote stage: one learner per component, then ``voter``'s count.

    ``voter`` (a :class:`BoostedComponentVoter`) gives the settings;
    ``weak_learner`` the learner trained on each component (None: the
    default network). Returns ``(keep, scores, predictions)``.
    """
    seeds = rng.randint(np.iinfo(np.int32).max, size=len(components))
    caps = _max_samples(voter.max_samples, components)
    tasks = [
        (data, weak_learner, seed, voter.device, comp, voter.n_epochs, cap)
        for seed, comp, cap in zip(seeds, components, caps, strict=True)
    ]
    predictions = np.stack(
        run_tasks(train_voter, tasks, voter.n_jobs, voter.verbose, "voting")
    )
    if voter.voting == "competent":
        keep, scores = competent_vote(
            predictions,
            components,
            data.y,
            data.n_classes,
            voter.competence,
            voter.min_agreement,
        )
    elif voter.voting == "sample":
        keep, scores = sample_vote(predictions, data.y, voter.min_votes, rng)
    else:
        keep, scores = component_vote(predictions, components, data.y)
    return keep, scores, predictions


def _max_samples(max_samples, components):
    """The number of rows each component's learner trains on (None: all)."""
    if max_samples is None:
        return [None] * len(components)
    return [resolve_size(max_samples, len(c)) for c in components]
