"""Partition stage: Inverse Self-Paced Learning (paper Algorithm 2, app. B.1).

A *component* is a subset of the training set whose samples are mutually
compatible: a weak learner trained on part of it generalises to the rest
(low *expansion* error). Clean data of one distribution forms such components;
poisoned samples, which contradict the clean samples they resemble, end up in
components of their own.

One ISPL round finds one component of target size ``p`` (a share of the
samples still unassigned):

1. warm-up: a fresh weak learner trains ``warmup_epochs`` on a random half
   of the remaining samples;
2. for each of ``T = 2 + min(3, 1/p)`` iterations: compute every remaining
   sample's loss, smooth it across iterations with ``momentum``
   (``L = momentum * L + (1 - momentum) * loss``), keep the ``beta_t`` share
   with the lowest smoothed loss (``beta_t`` anneals linearly from ``3p`` to
   ``p`` over the first iterations) plus, per class, the lowest-loss
   ``beta_t * class_floor`` share of that class (so the component cannot
   collapse onto a few easy classes), then train ``epochs_per_iteration``
   more epochs on a random ``expansion`` share of the kept set.
3. the last kept set is the component; it leaves the pool and the next round
   starts with ``p = 1 / (rounds left)``.

A *run* is ``n_components`` rounds; runs with different seeds give different
partitions, and their components are pooled for voting.
"""

import numpy as np

from ._learners import build_learner, run_tasks

#: The paper's partition settings (appendix B.1).
PAPER_PARTITION = {
    "n_runs": 3,
    "n_components": 8,
    "warmup_epochs": 8,
    "epochs_per_iteration": 4,
    "expansion": 0.25,
    "momentum": 0.9,
    "class_floor": 0.125,
}


def partition(
    data,
    weak_learner,
    rng,
    device="cpu",
    n_jobs=None,
    verbose=0,
    rows=None,
    **settings,
):
    """Pool the components of ``n_runs`` ISPL runs, trained in parallel.

    ``settings`` are those of :data:`PAPER_PARTITION` (missing ones take the
    paper's value); each run's seed is drawn from ``rng`` before any runs,
    so the result does not depend on ``n_jobs``.

    Returns
    -------
    components : list of ndarray of int
        All components of all runs, as row indices.
    run_ids : ndarray of int
        The run each component came from.
    """
    settings = {**PAPER_PARTITION, **settings}
    n_runs = settings.pop("n_runs")
    seeds = rng.randint(np.iinfo(np.int32).max, size=n_runs)
    tasks = [
        (
            data,
            weak_learner,
            seed,
            device,
            settings["n_components"],
            settings["warmup_epochs"],
            settings["epochs_per_iteration"],
            settings["expansion"],
            settings["momentum"],
            settings["class_floor"],
            rows,
        )
        for seed in seeds
    ]
    runs = run_tasks(ispl_run, tasks, n_jobs, verbose, "ISPL runs")
    components = [comp for run in runs for comp in run]
    run_ids = np.concatenate(
        [np.full(len(run), r, dtype=np.int64) for r, run in enumerate(runs)]
    )
    return components, run_ids


def ispl_run(
    data,
    weak_learner,
    seed,
    device,
    n_components,
    warmup_epochs,
    epochs_per_iteration,
    expansion,
    momentum,
    class_floor,
    rows=None,
):
    """One ISPL run: partition ``data`` into up to ``n_components`` components.

    ``rows`` (sorted row indices) restricts the run to those samples; None
    partitions every sample.

    Returns
    -------
    components : list of ndarray of int
        Disjoint row indices covering every sample of ``rows``.
    """
    rng = np.random.RandomState(seed)
    remaining = np.arange(len(data)) if rows is None else np.asarray(rows)
    components = []
    for round_ in range(n_components):
        rounds_left = n_components - round_
        # Stop once a component would hold fewer than ~2 samples per class:
        # a learner cannot be trained on less, and the rest is one component.
        if rounds_left == 1 or len(remaining) / rounds_left < 2 * data.n_classes:
            break
        component = _ispl_round(
            data,
            remaining,
            1.0 / rounds_left,
            weak_learner,
            rng.randint(np.iinfo(np.int32).max),
            device,
            warmup_epochs,
            epochs_per_iteration,
            expansion,
            momentum,
            class_floor,
        )
        components.append(component)
        remaining = np.setdiff1d(remaining, component, assume_unique=True)
    if len(remaining):
        components.append(remaining)
    return components


def _ispl_round(
    data,
    pool,
    p,
    weak_learner,
    seed,
    device,
    warmup_epochs,
    epochs_per_iteration,
    expansion,
    momentum,
    class_floor,
):
    rng = np.random.RandomState(seed)
    learner = build_learner(weak_learner, data, rng.randint(2**31 - 1), device)
    n_iterations = 2 + int(min(3, round(1 / p)))
    labels = data.y[pool]
    smoothed = np.zeros(len(pool))
    kept = pool
    for t in range(n_iterations):
        if t == 0:
            warm = rng.choice(len(pool), size=max(1, len(pool) // 2), replace=False)
            learner.fit_epochs(pool[warm], warmup_epochs)
        else:
            n_train = max(1, int(round(expansion * len(kept))))
            learner.fit_epochs(
                rng.choice(kept, size=n_train, replace=False), epochs_per_iteration
            )
        loss = learner.sample_loss(pool)
        smoothed = momentum * smoothed + (1 - momentum) * loss
        beta = min(1.0, p * max(1, 3 - t))
        kept = pool[_trim(smoothed, labels, beta, class_floor)]
    return np.sort(kept)


def _trim(loss, labels, beta, class_floor):
    """Positions of the ``beta`` share with the lowest loss, plus a per-class floor."""
    n_keep = max(1, int(round(beta * len(loss))))
    # Stable sort: ties (e.g. identical losses early on) break by position.
    order = np.argsort(loss, kind="stable")
    keep = np.zeros(len(loss), dtype=bool)
    keep[order[:n_keep]] = True
    if class_floor > 0:
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            n_floor = int(np.ceil(beta * class_floor * len(members)))
            best = members[np.argsort(loss[members], kind="stable")[:n_floor]]
            keep[best] = True
    return np.flatnonzero(keep)
