"""Refine stage: self-training on the voted set (paper appendix B.1).

The component learners saw small parts of the data for few epochs, so the
vote also drops hard clean samples. A fresh model trains on the kept samples;
every ``epochs`` epochs the kept set is recomputed as the samples whose
momentum-smoothed prediction agrees with their given label. Poison, which
contradicts the clean majority of its class, stays out; clean samples the
model learns to classify come back. This lowers false positives without
letting the trigger back in (the paper saw no change in false negatives).
"""

import numpy as np

from ._learners import build_learner


def self_train(data, weak_learner, keep, seed, device, n_rounds, epochs, momentum):
    """Refine ``keep`` by self-training.

    Returns
    -------
    keep : ndarray of bool
        The kept set after the last round.
    support : ndarray of float
        The smoothed predicted probability of each sample's given label
        (NaN when no round ran).
    """
    keep = np.asarray(keep, dtype=bool).copy()
    support = np.full(len(data), np.nan)
    if n_rounds == 0 or not keep.any():
        return keep, support
    learner = build_learner(weak_learner, data, seed, device)
    smoothed = None
    rows = np.arange(len(data))
    for _ in range(n_rounds):
        learner.fit_epochs(np.flatnonzero(keep), epochs)
        proba = learner.predict_proba()
        smoothed = (
            proba
            if smoothed is None
            else (momentum * smoothed + (1 - momentum) * proba)
        )
        keep = smoothed.argmax(axis=1) == data.y
        if not keep.any():
            break
    return keep, smoothed[rows, data.y]
