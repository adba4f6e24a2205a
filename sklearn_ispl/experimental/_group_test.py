"""The group trigger test: confirm a poison-like group and find the rest of
its poison.

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

The same models also decide whether a group is poison at all, where the
group decision's statistics sit too close to those of clean look-alike
groups to say: a group of images that a trigger-blind view takes for
another class, yet that a model tells apart from that class almost
perfectly, carries something the class does not, and a trigger is what
poison adds.
"""

from dataclasses import replace
from numbers import Integral, Real

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.utils._param_validation import Interval

from .._learners import build_learner, run_tasks
from .._refine import stratified_folds
from .._stages import ExtraStage
from ._groups import group_removal
from ._judge import TriggerBlindJudge, blind_judge

__all__ = [
    "GroupTriggerTest",
    "group_label_compatibility",
    "group_score_sets",
    "group_scores",
]


class GroupTriggerTest(ExtraStage):
    """Remove the samples of a poison-like group's label that share its trigger.

    .. warning:: Experimental, a deviation from the paper (see
       :mod:`sklearn_ispl.experimental`).

    List it after a :class:`GroupDecision`. For each group to test, with
    label ``t`` and look class ``s``, fresh copies of the refine model learn
    to tell the group's members from the samples labelled ``s`` and from the
    other samples labelled ``t``, the members weighted to a third of the
    training set. The samples are split into two stratified folds and each
    model reads the samples labelled ``t`` or ``s`` of the fold it did not
    train on, so a hidden poisoned sample taken for a negative in training
    is still read by a model that did not see it. A sample labelled ``t``
    is removed when its probability of belonging with the group is at least
    ``threshold``.

    The groups tested are those the group decision flagged and, with
    ``n_candidates``, that many of its other groups whose members a
    trigger-blind view (the :class:`TriggerBlindJudge` before it, or the
    same judge run here) mostly takes for the look class, the most isolated
    first. A candidate is confirmed when the models tell its held-out
    members from the held-out samples of the look class with a ROC AUC of
    at least ``min_separation`` (its second model trains only if the first
    leaves that possible); it then removes what a flagged group
    removes (its members and the samples of its label that lean to its look
    class, see :class:`GroupDecision`) and the samples that share its
    trigger. Poison is an image of its look class plus a trigger: the blind
    view takes it for that class, yet a model tells the two apart. A clean
    group of look-alikes is not told apart from the class it resembles, and
    a clean group the refine models misread is not taken for the look class
    by the blind view.

    The models train side by side as the filter's ``n_jobs`` allows, each
    with a fixed number of torch threads, so the result does not depend on
    ``n_jobs``. Without a group decision before it, or with no group to
    test, nothing is trained and nothing changes.

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
    n_candidates : int, default=4
        Unflagged groups of the group decision (of at least its
        ``min_size`` samples) that the blind view mostly takes for their
        look class, tested as well, the most isolated first. A cap on the
        cost (one or two models per candidate), not a rule: the separation decides,
        and a poison group need not be among the most isolated few, since
        clean look-alike groups can be as isolated.
    min_separation : float in [0.5, 1], default=0.99
        Held-out ROC AUC of a candidate's members against its look class
        from which the candidate is confirmed.
    n_rounds : int, default=2
        Rounds of the test for each flagged or confirmed group. Each round
        after the first trains fresh models on the group grown by what the
        rounds before removed of its label (the paper's expansion, applied
        to one group): poison the first models did not place with the
        group, because the pull of its blend to a third class hid its
        trigger, is learned as part of the group. Each round costs two
        models per group.

    Attributes
    ----------
    scores_ : ndarray of shape (n_samples,)
        Each sample's probability of belonging with a flagged or confirmed
        group of its label (the highest over its label's groups); NaN for
        samples of labels with no such group.
    removed_ : ndarray of bool of shape (n_samples,)
        The samples this stage removed.
    groups_ : list of dict
        Every group tested: ``label`` and ``look`` (class labels), ``size``,
        ``flagged`` (by the group decision), ``separation`` (the held-out
        ROC AUC against the look class; None for a candidate that the first
        of its two models already ruled out), ``blind_share`` (the share of
        members the blind view takes for the look class; None for flagged
        groups) and ``confirmed``.
    """

    _parameter_constraints: dict = {
        "n_epochs": [Interval(Integral, 1, None, closed="left")],
        "threshold": [Interval(Real, 0, 1, closed="right")],
        "n_candidates": [Interval(Integral, 0, None, closed="left")],
        "min_separation": [Interval(Real, 0.5, 1, closed="both")],
        "n_rounds": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        n_epochs=2,
        threshold=0.5,
        n_candidates=4,
        min_separation=0.99,
        n_rounds=2,
    ):
        self.n_epochs = n_epochs
        self.threshold = threshold
        self.n_candidates = n_candidates
        self.min_separation = min_separation
        self.n_rounds = n_rounds

    def after_refine(self, state):
        n = len(state.data)
        self.scores_ = np.full(n, np.nan)
        self.removed_ = np.zeros(n, dtype=bool)
        self.groups_ = []
        flagged = list(state.flagged or [])
        candidates = self._candidates(state, flagged)
        pairs = flagged + [pair for pair, _ in candidates]
        if not pairs:
            return
        y = state.data.y
        look = state.proba.argmax(axis=1)
        groups = [((y == label) & (look == seen), seen) for label, seen in pairs]
        score_sets, separations = self._score_groups(state, groups, len(flagged))
        blind_shares = [None] * len(flagged) + [share for _, share in candidates]
        tested = []
        for (label, seen), (members, _), scores, separation, blind_share in zip(
            pairs, groups, score_sets, separations, blind_shares, strict=True
        ):
            candidate = blind_share is not None
            confirmed = not candidate or (
                separation is not None and separation >= self.min_separation
            )
            self.groups_.append(
                {
                    "label": state.classes[label].item(),
                    "look": state.classes[seen].item(),
                    "size": int(members.sum()),
                    "flagged": not candidate,
                    "separation": None if separation is None else round(separation, 6),
                    "blind_share": blind_share,
                    "confirmed": bool(confirmed),
                }
            )
            if not confirmed:
                continue
            of_label = y == label
            self._take(scores, of_label)
            # Confirmed, a candidate is a flagged group: it removes what a
            # group the decision flagged removes (already gone for those).
            grouped = group_removal(y, state.proba, label, seen)
            if candidate:
                self.removed_ |= grouped
            tested.append(((grouped | self.removed_) & of_label, seen))
        for _ in range(self.n_rounds - 1):
            tested = self._expand(state, tested)
        state.keep = state.keep & ~self.removed_

    def _score_groups(self, state, groups, n_flagged):
        """Each group's held-out scores and separation from its look class;
        the first ``n_flagged`` groups are flagged, the others candidates.

        A candidate's second model trains only when the held-out fold of
        its first leaves the candidate able to reach ``min_separation``
        (:func:`separation_bound`), so the decision is the one both models
        would give. A candidate ruled out this way has separation None.
        """
        y = state.data.y
        plans = _group_tasks(
            state.data,
            state.refine_learner,
            groups,
            self.n_epochs,
            state.seed(),
            state.device,
            read_look=True,
        )
        n = len(y)
        # Both models of every flagged group, the first of every candidate.
        first = [
            (g, k) for g in range(len(groups)) for k in (0, 1) if g < n_flagged or not k
        ]
        done = _run_models(plans, first, state.n_jobs)
        second = [
            (g, 1)
            for g in range(n_flagged, len(groups))
            if separation_bound(_read_scores(n, plans, done, g), *_pair(y, groups[g]))
            >= self.min_separation
        ]
        done.update(_run_models(plans, second, state.n_jobs))
        score_sets = [_read_scores(n, plans, done, g) for g in range(len(groups))]
        separations = [
            separation_from_look(scores, *_pair(y, group)) if (g, 1) in done else None
            for g, (scores, group) in enumerate(zip(score_sets, groups, strict=True))
        ]
        return score_sets, separations

    def _expand(self, state, tested):
        """One more round: each tested group, grown by what the rounds so
        far removed of its label, is learned again; returns the grown
        groups."""
        if not tested:
            return tested
        y = state.data.y
        score_sets = group_score_sets(
            state.data,
            state.refine_learner,
            tested,
            self.n_epochs,
            state.seed(),
            state.device,
            state.n_jobs,
        )
        grown = []
        for (members, seen), scores in zip(tested, score_sets, strict=True):
            of_label = y == y[np.flatnonzero(members)[0]]
            self._take(scores, of_label)
            grown.append((members | (self.removed_ & of_label), seen))
        return grown

    def _take(self, scores, of_label):
        """Record one group's scores on its label and remove the samples
        placed with it."""
        self.scores_[of_label] = np.fmax(self.scores_[of_label], scores[of_label])
        self.removed_ |= of_label & (scores >= self.threshold)

    def _candidates(self, state, flagged):
        """The unflagged groups to test, with the share of their members
        the blind view takes for their look class: those where it is over
        half, the most isolated first."""
        if not self.n_candidates or not state.groups:
            return []
        blind = state.look
        if blind is None:
            judge = TriggerBlindJudge()
            blind = blind_judge(
                state.data, judge.n_neighbors, judge.n_components, state.seed()
            ).argmax(axis=1)
        y, look = state.data.y, state.proba.argmax(axis=1)
        found = []
        for group in sorted(state.groups, key=lambda g: -g["isolation"]):
            pair = (group["label"], group["look"])
            if pair in flagged:
                continue
            members = (y == pair[0]) & (look == pair[1])
            share = round(float(np.mean(blind[members] == pair[1])), 4)
            if share > 0.5:
                found.append((pair, share))
            if len(found) == self.n_candidates:
                break
        return found


def separation_from_look(scores, members, look):
    """The held-out ROC AUC of a group's members against its look class.

    ``scores`` holds each sample's probability of belonging with the group
    from a model that did not train on it; NaN where not read. Returns 0.5
    when either side was not read.
    """
    positives, negatives = scores[members], scores[look]
    positives = positives[~np.isnan(positives)]
    negatives = negatives[~np.isnan(negatives)]
    if not len(positives) or not len(negatives):
        return 0.5
    truth = np.r_[np.ones(len(positives)), np.zeros(len(negatives))]
    return float(roc_auc_score(truth, np.r_[positives, negatives]))


def separation_bound(scores, members, look):
    """The highest held-out ROC AUC against the look class that a group can
    still reach when only part of it has been read.

    ``scores`` is NaN for the members and look-class samples not read yet;
    each of their pairs counts as ordered, the best they could do. Equal to
    :func:`separation_from_look` once every member and look-class sample is
    read, and 1.0 while no pair is.
    """
    read = ~np.isnan(scores)
    n_pairs = float(members.sum()) * float(look.sum())
    n_read = float((members & read).sum()) * float((look & read).sum())
    if not n_read:
        return 1.0
    ordered = separation_from_look(scores, members, look) * n_read
    # A tolerance for the float sums: never rule out a candidate that both
    # models together would confirm.
    return (ordered + n_pairs - n_read) / n_pairs + 1e-9


def group_scores(
    data, learner, groups, epochs, seed, device, n_jobs=None, read_look=False
):
    """Each sample's probability of belonging with a group of its label.

    The highest over the groups of :func:`group_score_sets`; NaN for samples
    no model read.
    """
    sets = group_score_sets(
        data, learner, groups, epochs, seed, device, n_jobs, read_look
    )
    scores = np.full(len(data), np.nan)
    for one in sets:
        scores = np.fmax(scores, one)
    return scores


def group_score_sets(
    data, learner, groups, epochs, seed, device, n_jobs=None, read_look=False
):
    """Each group's held-out probability of belonging with it, per sample.

    ``groups`` is a list of ``(members, look)``: a boolean mask of samples
    with one label and the class they look like. For each group, models are
    trained to tell it from the samples labelled ``look`` and from the rest
    of its label, cross-fitted over two stratified folds; the models train
    side by side as :func:`run_tasks` allows (``n_jobs`` workers). Returns
    one array per group with the probability for each sample of its label,
    NaN elsewhere. With ``read_look=True`` the models also read the
    held-out samples labelled ``look``: how well a group is told apart from
    the class it looks like, which a trigger makes easy and a look-alike
    resemblance hard.
    """
    plans = _group_tasks(data, learner, groups, epochs, seed, device, read_look)
    every = [(g, k) for g in range(len(plans)) for k in (0, 1)]
    done = _run_models(plans, every, n_jobs)
    return [_read_scores(len(data), plans, done, g) for g in range(len(plans))]


def group_label_compatibility(data, learner, group, epochs, seed, device, n_jobs=None):
    """Each sample's held-out probability of belonging with the rest of its label.

    ``group`` is ``(members, look)`` as in :func:`group_score_sets`. Two
    cross-fitted models learn three classes: the rest of the group's label,
    the group and the samples labelled ``look``; each reads the samples of
    the label and of the look class in the fold it did not train on.
    Returns an array with, for those samples, the probability of the rest of
    the label; NaN elsewhere. A sample of the label with a low value is one
    that models trained on the label's other samples do not take for one of
    them: incompatible with its label, as poison is. Use it to ask whether
    the poison a filter kept could be told from its label at all.
    """
    (plans,) = _group_tasks(
        data, learner, [group], epochs, seed, device, read_look=True, split_look=True
    )
    probas = run_tasks(_fit_and_read, [task for task, _ in plans], n_jobs)
    out = np.full(len(data), np.nan)
    for (_, read), proba in zip(plans, probas, strict=True):
        out[read] = proba
    return out


def _pair(y, group):
    """A group's members and its look class, as separation_from_look reads them."""
    members, look = group
    return members, y == look


def _run_models(plans, keys, n_jobs):
    """Train and read the models ``keys`` (group, fold) of ``plans``; a dict of
    their probabilities."""
    if not keys:
        return {}
    probas = run_tasks(_fit_and_read, [plans[g][k][0] for g, k in keys], n_jobs)
    return dict(zip(keys, probas, strict=True))


def _read_scores(n_samples, plans, done, g):
    """Group ``g``'s scores from those of its models in ``done``; NaN where
    none of them read."""
    scores = np.full(n_samples, np.nan)
    for k, (_, read) in enumerate(plans[g]):
        if (g, k) in done:
            scores[read] = done[(g, k)]
    return scores


def _group_tasks(
    data, learner, groups, epochs, seed, device, read_look, split_look=False
):
    """For each group, its two cross-fitted models: ``[(task, read)] * 2``,
    the arguments of :func:`_fit_and_read` and the rows it reads.

    The models tell the group (class 1) from the other samples of its label
    and of its look class (class 0); with ``split_look`` the look class is a
    class of its own (2) and the models read the probability of class 0, the
    rest of the label, instead of the group's."""
    rng = np.random.RandomState(seed)
    plans = []
    for members, look in groups:
        label = int(data.y[np.flatnonzero(members)[0]])
        of_label = data.y == label
        rest = of_label & ~members
        target = members.astype(np.int64)
        rows = np.flatnonzero(members | rest | (data.y == look))
        fold_of = np.full(len(data), -1)
        # Strata: the group, the rest of its label, the look class.
        fold_of[rows] = stratified_folds(target[rows] + 2 * rest[rows], 2, rng)
        if split_look:
            target[data.y == look] = 2
        binary = replace(data, y=target, n_classes=3 if split_look else 2)
        plan = []
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
            column = 0 if split_look else 1
            task = (learner, binary, seed_k, device, seen, epochs, read, column)
            plan.append((task, read))
        plans.append(plan)
    return plans


def _fit_and_read(learner, data, seed, device, rows, epochs, read, column=1):
    """Train a fresh copy of ``learner`` on ``rows``; the probability of class
    ``column`` (1: the group) for the rows ``read``."""
    model = build_learner(learner, data, seed, device)
    model.fit_epochs(rows, epochs)
    return model.predict_proba(read)[:, column]
