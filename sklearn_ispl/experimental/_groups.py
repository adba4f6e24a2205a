"""The group decision: remove the refine stage's disagreements only in groups
that look like poison.

A network that never learned a trigger calls a poisoned image its source
class, and confidently: the image *is* a typical image of that class. It
also disagrees with many clean labels, but those disagreements are the
look-alike classes of the data (shirts that look like coats), hard cases
the model calls the other class with much less certainty as a group. A
per-sample rule cannot tell the two apart at any threshold; a group rule
can. The refine stage's disagreements are grouped by (given label, *look*:
the class the refine models, each sample judged by a model that did not
train on it, find most likely). A group is poison-like when at least half of
its members are near-certain contradictions: images as typical of another
class as that class's own clean samples, carrying this label (look-alike
clean classes leave some doubt on most of their members); or when it is
isolated: clean confusion between two classes is a continuum, so a clean
group is the tail of a crowd of samples of its label that the models find
half like the look class, while poison between classes that are otherwise
told apart is a cluster of its own with almost no one in between. Each
sign alone misses some attacks (a varying trigger blurs the confidence of
its poison; poison the refine models half learned fills the space in
between), so either one flags a group. The same isolation can be read in a
view that cannot learn a trigger (a :class:`TriggerBlindJudge` before the
refine stage): there half-learned poison cannot fill the space in between,
and poison is an image of its look class to the judge, a cluster the
label's clean samples do not approach.

The flag only ever says where poison is. Where it is silent, poison may
still hide: when source and target classes look alike (shirt and T-shirt),
the source class is never called with confidence and its poison spreads
over groups of clean look-alikes. So by default the flagged groups are
removed on top of the other stages' decision; giving every other sample
back is the opt-in ``"replace"`` mode.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from .._stages import ExtraStage

__all__ = ["GroupDecision", "group_isolation", "group_removal", "poison_groups"]


class GroupDecision(ExtraStage):
    """Remove the refine stage's disagreements in poison-like groups.

    .. warning:: Experimental, a deviation from the paper (see
       :mod:`sklearn_ispl.experimental`).

    After the refine stage, every sample whose look (the class the refine
    models find most likely) is not its given label joins the group of its
    (label, look). A group of at least ``min_size`` samples is flagged when
    at least ``min_share`` of its members have a look probability of at least
    ``confidence``, or when its isolation is at least ``min_isolation``: the
    samples of its label whose probability of the look class is at least
    0.5, over one plus those where it lies between 0.02 and 0.5; or, with a
    :class:`TriggerBlindJudge` before it, when the same isolation read from
    the judge's probabilities (its *blind isolation*) is at least
    ``min_blind_isolation`` and the judge gives at least ``min_size``
    samples of the label a look-class probability of 0.5 or more. Removed
    are the members of flagged groups and, for each flagged (label, look),
    every sample of that label that the models find more likely to be the
    look class than their label (poison the blend or the trigger pulled
    towards a third class); for a group the judge's view isolates, also
    the samples of its label to which the judge gives a look-class
    probability of 0.5 or more (poison whose trigger the refine models
    learned carries its label for them, not for the judge).
    The groups and which of them are flagged are left for later stages (a
    :class:`GroupTriggerTest` reads them).

    With ``mode="add"`` these samples are removed from the kept set of the
    stages before it: poison that a rescue gave back, or that the refine
    stage's relaxed rule kept, leaves again, and nothing else changes.
    With ``mode="replace"`` every other sample is kept: the hard clean
    samples of look-alike classes that a per-sample decision removes come
    back, but so does poison that formed no flagged group (an attack
    between two look-alike classes). The group rule relies on the refine
    models not having learned the trigger: poison they agree with forms no
    group in either mode.

    List it last, after any rescue, so that what it removes stays removed.
    Use ``"replace"`` only where the attacker's source and target classes
    cannot look alike, and check it on planted poison first.

    Parameters
    ----------
    mode : {"add", "replace"}, default="add"
        Whether the flagged samples are removed on top of the decision so
        far ("add") or are the only samples removed ("replace").
    confidence : float in (0, 1], default=0.997
        Look probability from which a disagreement counts as confident.
    min_share : float in (0, 1], default=0.5
        Share of confident members that flags a group. With the default
        ``confidence`` the two say: the group's median member is a
        contradiction at least as confident as 0.997.
    min_size : int, default=10
        Smallest group that can be flagged.
    min_isolation : float > 0, default=3.0
        Isolation from which a group is flagged whatever its share of
        confident members; ``float("inf")`` flags by the share only.
    min_blind_isolation : float > 0, default=inf
        Blind isolation from which a group is flagged; read only when a
        :class:`TriggerBlindJudge` ran before the refine stage. Clean
        look-alike classes are a continuum in the judge's view (more of the
        label's samples half look like the class than look like it), poison
        a cluster the judge takes for its source class. ``float("inf")``
        does not read it.

    Attributes
    ----------
    groups_ : list of dict
        Every group of at least ``min_size`` samples: ``label`` and ``look``
        (class labels), ``size``, ``share`` (of confident members),
        ``isolation``, ``blind_isolation`` (None without a judge) and
        ``flagged``.
    removed_ : ndarray of bool of shape (n_samples,)
        The samples of flagged groups (removed in either mode).
    """

    _parameter_constraints: dict = {
        "mode": [StrOptions({"add", "replace"})],
        "confidence": [Interval(Real, 0, 1, closed="right")],
        "min_share": [Interval(Real, 0, 1, closed="right")],
        "min_size": [Interval(Integral, 1, None, closed="left")],
        "min_isolation": [Interval(Real, 0, None, closed="right")],
        "min_blind_isolation": [Interval(Real, 0, None, closed="right")],
    }

    def __init__(
        self,
        mode="add",
        confidence=0.997,
        min_share=0.5,
        min_size=10,
        min_isolation=3.0,
        min_blind_isolation=float("inf"),
    ):
        self.mode = mode
        self.confidence = confidence
        self.min_share = min_share
        self.min_size = min_size
        self.min_isolation = min_isolation
        self.min_blind_isolation = min_blind_isolation

    def after_refine(self, state):
        if state.proba is None or np.isnan(state.proba).any():
            # No refine round ran: no looks to group by, nothing to decide.
            self.groups_ = []
            self.removed_ = np.zeros(len(state.keep), dtype=bool)
            return
        groups, removed = poison_groups(
            state.data.y,
            state.proba,
            self.confidence,
            self.min_share,
            self.min_size,
            self.min_isolation,
            blind=state.blind_proba,
            min_blind_isolation=self.min_blind_isolation,
        )
        state.flagged = [(g["label"], g["look"]) for g in groups if g["flagged"]]
        state.groups = [dict(g) for g in groups]
        for group in groups:
            group["label"] = state.classes[group["label"]].item()
            group["look"] = state.classes[group["look"]].item()
        self.groups_ = groups
        self.removed_ = removed
        state.keep = ~removed if self.mode == "replace" else state.keep & ~removed


def poison_groups(
    y,
    proba,
    confidence,
    min_share,
    min_size,
    min_isolation=np.inf,
    blind=None,
    min_blind_isolation=np.inf,
):
    """The (label, look) groups of the disagreements and the samples to remove.

    ``y`` holds the encoded labels, ``proba`` each sample's out-of-sample
    class probabilities, ``blind`` (optional) a trigger-blind judge's.
    Returns the groups of at least ``min_size`` samples (dicts with encoded
    ``label`` and ``look``, ``size``, ``share``, ``isolation``,
    ``blind_isolation`` and ``flagged``), largest first, and the boolean
    mask of removed samples.
    """
    look = proba.argmax(axis=1)
    confident = proba.max(axis=1) >= confidence
    disagree = np.flatnonzero(look != y)
    cells, sizes = np.unique(
        np.stack([y[disagree], look[disagree]], axis=1), axis=0, return_counts=True
    )
    groups = []
    removed = np.zeros(len(y), dtype=bool)
    for (label, seen), size in zip(cells, sizes, strict=True):
        if size < min_size:
            continue
        members = disagree[(y[disagree] == label) & (look[disagree] == seen)]
        share = float(confident[members].mean())
        isolation = group_isolation(proba[y == label, seen])
        flagged = share >= min_share or isolation >= min_isolation
        blind_isolation, blind_cluster = None, False
        if blind is not None:
            leaning = blind[y == label, seen]
            blind_isolation = group_isolation(leaning)
            # A handful of samples the judge happens to misread is no
            # cluster, whatever the ratio.
            blind_cluster = (
                blind_isolation >= min_blind_isolation
                and np.count_nonzero(leaning >= 0.5) >= min_size
            )
            flagged |= blind_cluster
            blind_isolation = round(blind_isolation, 4)
        groups.append(
            {
                "label": int(label),
                "look": int(seen),
                "size": int(size),
                "share": round(share, 4),
                "isolation": round(isolation, 4),
                "blind_isolation": blind_isolation,
                "flagged": bool(flagged),
            }
        )
        if flagged:
            removed |= group_removal(y, proba, label, seen)
        if blind_cluster:
            # The cluster the judge sees: poison whose trigger the refine
            # models learned carries its label for them, not for the judge.
            removed |= (y == label) & (blind[:, seen] >= 0.5)
    groups.sort(key=lambda g: -g["size"])
    return groups, removed


def group_removal(y, proba, label, look):
    """The samples a poison-like (label, look) group removes: its members and
    every sample of its label that the models find more likely to be the
    look class than their label."""
    members = proba.argmax(axis=1) == look
    # Poison whose trigger or blend pulls it towards a third class still
    # leans to its source class more than to its label.
    leaning = proba[:, look] > proba[:, label]
    return (y == label) & (members | leaning)


def group_isolation(leaning):
    """How far the samples that lean to a class stand apart from the rest.

    ``leaning`` holds one label's samples' probabilities of the look class:
    those of at least 0.5 over one plus those between 0.02 and 0.5.
    """
    between = np.count_nonzero((leaning >= 0.02) & (leaning < 0.5))
    return float(np.count_nonzero(leaning >= 0.5) / (between + 1))
