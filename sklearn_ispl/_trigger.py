"""Trigger check: find kept samples that share what the removed poison shares.

A dirty-label backdoor's poisoned samples carry the target label, look like
the source class and share one trigger. The vote, the refine stage and the
trigger-blind judge (:func:`sklearn_ispl._refine.blind_judge`) remove those
whose look contradicts their label; a few that look like the target class
as well pass every judge of the label, and on tens of thousands of images a
few dozen of them are enough to teach a classifier part of the trigger.

What sets them apart is the trigger, and the removed poison shows it. Among
the removed samples, those with label ``t`` that the blind judge calls
class ``s`` form a group for each pair ``(t, s)``. A linear model on the
raw pixels, cross-fitted over two folds, learns to tell the group from the
kept samples of classes ``s`` and ``t``. Hard clean samples of a confusable
pair differ from those classes by degrees of look, which a linear model
separates only in part; backdoor poison differs from its look-alike class
``s`` by a fixed pattern, which it separates almost perfectly. Only a pair
whose group is told apart with a cross-fitted ROC AUC of at least
``min_auc`` is acted on: its kept samples of label ``t`` that score at
least the group's ``QUANTILE`` quantile of out-of-fold scores are removed
too.

The check repeats until a pass removes nothing. Poison still kept sits
among the negatives the detectors train on and blurs them, so one pass may
find only part of it; each pass leaves less of it there. On all 60,000
Fashion-MNIST images, from a kept set holding 39 poisoned samples, passes
removed 5, 13 and 21 of them (``benchmarks/README.md``).
"""

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.svm import LinearSVC

from ._refine import _stratified_folds

# A group this small gives an unreliable AUC and is no backdoor that the
# judges before this stage would let a harmful share of through.
MIN_GROUP = 30
# Strong L1 regularisation (on features scaled to [0, 1]): a detector of a
# few pixels. A trigger is a small fixed patch, so a handful of pixels tell
# the poison from its look-alike class; the look of hard clean samples is
# spread over many pixels and is barely told apart with so few. The penalty
# is per training row (liblinear sums the loss over rows), so the detector
# is as sparse on a thousand rows as on ten thousand.
PENALTY = 0.1
QUANTILE = 0.2
# Negatives each detector trains on, drawn at random from the kept samples
# of the pair's two classes; more cost time without changing what it finds.
MAX_NEGATIVES = 2000
# Passes stop when one removes nothing, or after this many.
MAX_PASSES = 10


def trigger_check(data, keep, look, min_auc, seed):
    """Samples to remove from ``keep``, and the pairs that were examined.

    Parameters
    ----------
    data : PreparedData
        The filter's prepared images and labels.
    keep : ndarray of bool
        The kept set after every other stage.
    look : ndarray of int
        The class each sample looks like to a judge blind to the trigger.
    min_auc : float
        The cross-fitted ROC AUC a pair's detector must reach to act.
    seed : int
        Seed of the folds and of the negatives drawn.

    Returns
    -------
    drop : ndarray of bool
        Kept samples that scored like a detected pair's removed group, over
        all passes.
    pairs : list of dict
        One entry per pair examined: ``label``, ``look``, ``group`` (its
        size) and ``auc`` in the last pass that examined it, ``dropped``
        over all passes.
    """
    flat = data.X.reshape(len(data), -1)
    low, high = flat.min(), flat.max()
    span = (high - low) or 1.0

    def scaled(rows):
        # Scale only the rows a detector sees, not a copy of all the data.
        return (flat[rows] - low) / span

    rng = np.random.RandomState(seed)
    kept = np.asarray(keep, dtype=bool).copy()
    pairs = {}
    for _ in range(MAX_PASSES):
        drop = np.zeros(len(data), dtype=bool)
        for pair, hit in _one_pass(data, scaled, kept, look, min_auc, rng):
            dropped = pairs.get((pair["label"], pair["look"]), {}).get("dropped", 0)
            pairs[pair["label"], pair["look"]] = {**pair, "dropped": dropped + len(hit)}
            drop[hit] = True
        if not drop.any():
            break
        kept &= ~drop
    return np.asarray(keep, dtype=bool) & ~kept, list(pairs.values())


def _one_pass(data, scaled, keep, look, min_auc, rng):
    """Yield each examined pair's summary and the kept rows it flags."""
    removed = ~keep
    for label in range(data.n_classes):
        for other in range(data.n_classes):
            group = removed & (data.y == label) & (look == other)
            if other == label or group.sum() < MIN_GROUP:
                continue
            negatives = np.flatnonzero(keep & ((data.y == other) | (data.y == label)))
            if len(negatives) == 0:
                continue
            if len(negatives) > MAX_NEGATIVES:
                negatives = rng.choice(negatives, MAX_NEGATIVES, replace=False)
            rows = np.concatenate([np.flatnonzero(group), negatives])
            target = group[rows]
            folds = _stratified_folds(target.astype(np.int64), 2, rng)
            # Out-of-fold scores for the rows the detectors train on; the
            # other kept samples of label ``label`` get the mean of both.
            suspects = np.flatnonzero(keep & (data.y == label))
            suspect_score = np.zeros(len(suspects))
            score = np.empty(len(rows))
            for k in range(2):
                train = folds != k
                model = LinearSVC(
                    penalty="l1",
                    dual=False,
                    C=1 / (PENALTY * train.sum()),
                    max_iter=10000,
                    # liblinear's coordinate descent shuffles with its own
                    # generator: seeded here, the check gives the same
                    # result for the same seed.
                    random_state=rng.randint(np.iinfo(np.int32).max),
                )
                model.fit(scaled(rows[train]), target[train])
                score[~train] = model.decision_function(scaled(rows[~train]))
                suspect_score += model.decision_function(scaled(suspects)) / 2
            out_of_fold = np.full(len(data), np.nan)
            out_of_fold[rows] = score
            suspect_score = np.where(
                np.isnan(out_of_fold[suspects]), suspect_score, out_of_fold[suspects]
            )
            auc = float(roc_auc_score(target, score))
            hit = suspects[:0]
            if auc >= min_auc:
                hit = suspects[suspect_score >= np.quantile(score[target], QUANTILE)]
            yield (
                {"label": label, "look": other, "group": int(group.sum()), "auc": auc},
                hit,
            )
