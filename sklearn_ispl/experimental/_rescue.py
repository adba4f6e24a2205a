"""The rescue: give back removed samples that neither model marks as poison.

The refine stage removes hard clean samples of confusable classes along with
the poison. The rescue looks at the removed samples through two signals that
follow from what poison is. Poison is learnable as a group: a model trained
on the *unfiltered* data fits a learnable trigger within its first epochs
(Li et al. 2021, "Anti-Backdoor Learning"), where it fits a hard clean sample
only late, by memorising it, if at all. Poison is incompatible with the clean
data of its label: the refine model, which never saw the trigger, contradicts
its label with near certainty, where it leaves a hard clean sample some
probability. So a removed sample comes back unless the unfiltered model fits
it confidently within a few epochs or the refine model rules its label out:
the unfiltered model's highest probability of its label over its
``n_epochs`` epochs must lie within ``[low, high)`` and the refine model's
support for the label must be at least ``min_support``.

One by one, a near-certain contradiction is as likely a clean sample of a
look-alike class as poison, so the default gate keeps out only the most
extreme ones and leaves the rest to the group decision listed after the
rescue, which takes back the groups of contradictions that look like poison
(:mod:`sklearn_ispl.experimental._groups`).
"""

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval

from .._learners import build_learner
from .._stages import ExtraStage

__all__ = ["Rescue", "label_fit_trace", "rescue"]


class Rescue(ExtraStage):
    """Give back removed samples that neither model rules out.

    .. warning:: Experimental, a deviation from the paper (see
       :mod:`sklearn_ispl.experimental`).

    After the refine stage, a fresh copy of the refine model trains on every
    sample, unfiltered, for ``n_epochs`` epochs, reading each sample's
    probability of its label after every epoch. A removed sample comes back
    when the highest of these readings lies within ``bounds`` (below
    ``high``: not fitted confidently early, as a learnable trigger is) and
    the refine model's support for its label is at least ``min_support``;
    when a trigger-blind judge ran before it, only samples the judge backs
    come back. Its settings were chosen on a few benchmark scenarios; check
    it on planted poison before relying on it.

    Parameters
    ----------
    n_epochs : int, default=4
        Epochs of the model of all the data: the early epochs, in which a
        learnable trigger is fitted and hard clean samples are not yet
        memorised (on a few thousand images, half of what the final
        classifier trains).
    bounds : tuple of (float, float), default=(0.0, 0.95)
        ``(low, high)`` with ``0 <= low < high <= 1``. A ``low`` above 0 also
        keeps out the samples the unfiltered model never fits.
    min_support : float in [0, 1], default=1e-5
        The refine model's smoothed probability of a removed sample's label
        must be at least this (ignored when no refine round ran): only
        near-certain contradictions stay out one by one; a group decision
        listed after the rescue takes back the groups of them that look
        like poison.

    Attributes
    ----------
    scores_ : ndarray of shape (n_samples, n_epochs)
        Each sample's probability of its label after each epoch.
    rescued_ : ndarray of bool of shape (n_samples,)
        The samples it gave back.
    """

    _parameter_constraints: dict = {
        "n_epochs": [Interval(Integral, 1, None, closed="left")],
        "bounds": [tuple, list],
        "min_support": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(self, n_epochs=4, bounds=(0.0, 0.95), min_support=1e-5):
        self.n_epochs = n_epochs
        self.bounds = bounds
        self.min_support = min_support

    def _validate_params(self):
        super()._validate_params()
        bounds = self.bounds
        if not (
            len(bounds) == 2
            and all(isinstance(v, Real) and not isinstance(v, bool) for v in bounds)
            and 0 <= bounds[0] < bounds[1] <= 1
        ):
            raise ValueError(
                "Rescue bounds must be two numbers (low, high) with "
                f"0 <= low < high <= 1; got {bounds!r}."
            )
        if isinstance(self.n_epochs, bool):
            raise ValueError(f"Rescue n_epochs must be an int; got {self.n_epochs!r}.")

    def after_refine(self, state):
        trace = label_fit_trace(
            state.data, state.refine_learner, state.seed(), state.device, self.n_epochs
        )
        rescued = rescue(
            state.keep,
            trace,
            state.support,
            self.bounds,
            self.min_support,
            state.backed,
        )
        self.scores_ = trace
        self.rescued_ = rescued & ~state.keep
        state.keep = rescued


def label_fit_trace(data, weak_learner, seed, device, epochs):
    """Probability of each sample's label under a model trained on all samples.

    Returns an array of shape (n_samples, epochs): each sample's predicted
    probability of its given label after each epoch.
    """
    learner = build_learner(weak_learner, data, seed, device)
    rows = np.arange(len(data))
    trace = np.empty((len(data), epochs))
    for epoch in range(epochs):
        learner.fit_epochs(rows, 1)
        trace[:, epoch] = learner.predict_proba(rows)[rows, data.y]
    return trace


def rescue(keep, trace, support, bounds, min_support, backed=None):
    """``keep`` plus the removed samples neither model contradicts or fits.

    A NaN support (no refine round ran) does not block the rescue.
    ``backed`` (a trigger-blind judge's backing, or None for no judge)
    limits what comes back to the samples it backs.
    """
    low, high = bounds
    peak = trace.max(axis=1)
    allowed = np.isnan(support) | (support >= min_support)
    back = (peak >= low) & (peak < high) & allowed
    if backed is not None:
        # Once the refine models have half learned a trigger their support
        # no longer rules its poison out; a blind judge never learns it.
        back &= backed
    return keep | back
