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
  the refine model learned the trigger (see ``benchmarks/README.md``).

The rescue (:func:`label_fit_trace`, also beyond the paper) then looks at
the removed samples through a model trained on the *unfiltered* data, the
learning dynamics ISPL itself builds on, and through the refine model's
own support. Poison falls into one of three kinds there. Its trigger is
learned: the unfiltered model fits it confidently at some epoch. Its
trigger is never learned: the unfiltered model keeps contradicting it, as
it would a mislabelled sample. Its trigger is learned slowly: the
unfiltered model's probability hovers in the middle like a hard clean
sample's, but the refine model, which never saw the trigger, contradicts
the label with near certainty (an ankle boot called a pullover), where it
leaves a hard clean sample of a confusable class some probability. So a
removed sample comes back when the unfiltered model's highest probability
of its label over the epochs lies in ``[low, high)`` and the refine
model's support for the label is at least ``min_support``. A rule on the
unfiltered model alone let the backdoor through in 3 of 9 strong-attack
scenarios on Fashion-MNIST (``benchmarks/README.md``); the rescue is off by
default and used only by the ``fast-rescue`` benchmark preset.
"""

import numpy as np
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier

from ._learners import build_learner


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
    pair_guard=None,
    trainable=None,
):
    """Refine ``keep`` by self-training.

    ``trainable`` (boolean mask or None) limits the samples the models may
    train on in every round; every sample is still judged.

    Returns
    -------
    keep : ndarray of bool
        The kept set after the last round, by the ``keep_ratio`` rule.
    support : ndarray of float
        The smoothed predicted probability of each sample's given label
        (NaN when no round ran).
    pairs : ndarray of int of shape (n_pairs, 2)
        The (label, predicted class) index pairs the ``pair_guard`` flagged.
    """
    keep = np.asarray(keep, dtype=bool).copy()
    if trainable is None:
        trainable = np.ones(len(data), dtype=bool)
    support = np.full(len(data), np.nan)
    pairs = np.empty((0, 2), dtype=np.int64)
    if n_rounds == 0 or not keep.any():
        return keep, support, pairs
    rng = np.random.RandomState(seed)
    fold_of = _stratified_folds(data.y, folds, rng)
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
    smoothed = None
    for _ in range(n_rounds):
        proba = np.empty((len(data), data.n_classes))
        for learner, fold, allowed in zip(
            learners, judged, allowed_per_fold, strict=True
        ):
            learner.fit_epochs(np.flatnonzero(keep & allowed), epochs)
            proba[fold] = learner.predict_proba(fold)
        smoothed = (
            proba
            if smoothed is None
            else (momentum * smoothed + (1 - momentum) * proba)
        )
        support = smoothed[rows, data.y]
        keep = smoothed.argmax(axis=1) == data.y
        if not keep.any():
            break
    if keep_ratio < 1:
        keep = support >= keep_ratio * smoothed.max(axis=1)
        if pair_guard is not None:
            predicted = smoothed.argmax(axis=1)
            flagged = one_sided_pairs(data.y, predicted, data.n_classes, pair_guard)
            keep &= ~flagged[data.y, predicted]
            pairs = np.argwhere(flagged)
    return keep, support, pairs


def blind_judge(data, n_neighbors, n_components, seed):
    """Cross-fitted k-nearest-neighbour probabilities of each sample's label.

    The samples are projected on their first ``n_components`` principal
    components (pixels for images, columns for tabular rows) and split into
    two stratified folds; each fold's samples are judged by the
    ``n_neighbors`` nearest samples of the other fold and their given
    labels. A backdoor trigger is a few pixels: it carries almost none of
    the images' variance, so it barely moves a poisoned image in this
    projection, whose neighbours are then images of its source class. The
    judge is blind to the trigger however many poisoned samples it sees,
    where a network trained on the poison learns it. Returns an array of
    shape (n_samples, n_classes); samples with no one to ask (a fold left
    empty on tiny data) get equal probabilities.
    """
    rng = np.random.RandomState(seed)
    flat = data.X.reshape(len(data), -1)
    n_components = min(n_components, *flat.shape)
    pca = PCA(n_components, random_state=rng.randint(np.iinfo(np.int32).max))
    projected = pca.fit_transform(flat)
    fold_of = _stratified_folds(data.y, 2, rng)
    proba = np.zeros((len(data), data.n_classes))
    for k in range(2):
        train, judged = fold_of != k, fold_of == k
        if not judged.any():
            continue
        if not train.any():
            # Nothing to ask (a class or two with one sample each): no veto.
            proba[judged] = 1.0 / data.n_classes
            continue
        neighbors = min(n_neighbors, int(train.sum()))
        knn = KNeighborsClassifier(neighbors).fit(projected[train], data.y[train])
        proba[np.ix_(judged, knn.classes_)] = knn.predict_proba(projected[judged])
    return proba


def label_fit_trace(data, weak_learner, seed, device, epochs):
    """Probability of each sample's label under a model trained on all samples.

    A fresh learner trains on every sample (poison included) for ``epochs``
    epochs. Returns an array of shape (n_samples, epochs): each sample's
    predicted probability of its given label after each epoch.
    """
    learner = build_learner(weak_learner, data, seed, device)
    rows = np.arange(len(data))
    trace = np.empty((len(data), epochs))
    for epoch in range(epochs):
        learner.fit_epochs(rows, 1)
        trace[:, epoch] = learner.predict_proba(rows)[rows, data.y]
    return trace


def rescue(keep, trace, support, bounds, min_support):
    """Give back removed samples neither model contradicts nor fits confidently.

    A removed sample comes back when the highest probability of its label
    over the epochs of ``trace`` is at least ``bounds[0]`` (the unfiltered
    model came to fit it, unlike a mislabelled sample or poison whose
    trigger it never learned) and below ``bounds[1]`` (it never fitted it
    confidently, like poison whose trigger it learned), and when the refine
    model's ``support`` for the label is at least ``min_support`` (it does
    not rule the label out, as it does for poison whose trigger the
    unfiltered model learns slowly). A NaN support (no refine round ran)
    does not block the rescue.
    """
    low, high = bounds
    peak = trace.max(axis=1)
    backed = np.isnan(support) | (support >= min_support)
    return keep | ((peak >= low) & (peak < high) & backed)


def one_sided_pairs(y, predicted, n_classes, z):
    """Flag the (label, predicted) pairs of a dirty-label backdoor's shape.

    The poison of such an attack all carries the target label and looks
    like the source class, so a model never taught the trigger disagrees
    with it in one direction of one class pair, while two confusable clean
    classes are mistaken for each other both ways. Under symmetric confusion
    the disagreements of a pair split like a fair coin between its two
    directions; a direction whose excess over the reverse exceeds ``z``
    standard deviations (normal approximation to the sign test) is flagged.
    Returns a boolean matrix indexed by (label, predicted class).
    """
    wrong = predicted != y
    counts = np.zeros((n_classes, n_classes))
    np.add.at(counts, (y[wrong], predicted[wrong]), 1)
    return counts - counts.T > z * np.sqrt(counts + counts.T)


def _stratified_folds(y, folds, rng):
    """Fold index of every sample; each class spread evenly over the folds."""
    fold_of = np.zeros(len(y), dtype=np.int64)
    if folds == 1:
        return fold_of
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        fold_of[rng.permutation(members)] = np.arange(len(members)) % folds
    return fold_of
