"""Stamped-trigger check: find kept samples that carry what removed poison shares.

A dirty-label backdoor stamps one trigger on every poisoned image: the same
values at the same pixels. The poison carries the target label and looks
like the source class. The vote, the refine stage and the trigger-blind
judge (:class:`TriggerBlindJudge`) remove most of it, since
its look contradicts its label; the few that pass, or that the rescue gives
back, are enough on tens of thousands of images to teach a classifier part
of the trigger.

The removed poison shows the trigger. Among the removed samples, those with
label ``t`` that the blind judge calls class ``s`` form a group for each pair
``(t, s)``. Each value is read on 256 levels of the data's range. A *trigger
feature* of the group is a feature (a pixel of one channel) at which at
least ``SHARE`` of the group has the same level, while at most ``RARE`` of
the kept samples of the other labels have it. A sample *carries* the
trigger when it has every trigger feature's level. The pair is acted on
when at least ``SHARE`` of its group carries the trigger, at most ``RARE``
of the kept samples of the other labels and at most ``LABEL_SHARE`` of
those of label ``t`` do; the samples of label ``t`` that carry it are
its *carriers*. The check then removes the kept carriers (``mode="add"``),
or lets the found trigger decide alone: the carriers are removed and every
other sample is kept (``mode="replace"``).

Natural images share no exact level at a pixel across most of a group,
except where they are background; and the kept samples of other classes
share such background too, which the ``RARE`` bar excludes. A stamped
trigger is an exact level that the clean images of every class rarely have
at that pixel (what it found on the benchmark: the documentation's
benchmarks page). It cannot find a trigger whose values vary from image to
image (blended, noisy or compressed triggers), nor one drawn in a level
that is common at its position (a black patch on background).
"""

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from .._stages import ExtraStage
from ._judge import blind_judge

__all__ = ["StampedTriggerCheck", "trigger_check"]

# Groups smaller than this are too few for a shared level to mean anything:
# a handful of clean images of one class can share a level at some pixel.
MIN_GROUP = 20
# Share of a group that must have a trigger feature's level, and carry the
# whole trigger: most of the group is poison when a backdoor is there.
SHARE = 0.6
# Largest share of the kept samples of other labels that may carry a
# trigger: its level is rare at its position in clean images.
RARE = 0.05
# Largest share of the kept samples of the pair's own label that may carry
# it: more is a feature of the class, not poison that slipped through.
LABEL_SHARE = 0.25
LEVELS = 256


class StampedTriggerCheck(ExtraStage):
    """Remove kept samples that carry a stamped trigger the removed poison shows.

    .. warning:: Experimental, and it reads the trigger's exact pixel values
       (see :mod:`sklearn_ispl.experimental`).

    Runs after every other stage. The removed samples of each label that a
    trigger-blind judge calls one other class form a group; where most of a
    group shares exact values at pixels where kept samples of other labels
    rarely have them, the samples of that label that carry them all are the
    trigger's carriers. It finds only triggers stamped with the same values
    on every poisoned image; a blended or varying trigger is not found.

    Parameters
    ----------
    mode : {"add", "replace"}, default="add"
        "add": the kept carriers are removed too. "replace": when a trigger
        is found it alone decides (carriers out, every other sample kept),
        which assumes a single stamped attack: a second, unstamped one would
        be kept. When none is found the decision of the other stages stands.
    n_neighbors : int, default=15
        Neighbours of the judge that groups the samples, when no
        :class:`TriggerBlindJudge` ran before this stage.
    n_components : int, default=20
        Principal components of that judge.

    Attributes
    ----------
    pairs_ : list of dict
        The (given label, look) pairs examined: ``label`` and ``look``
        (class labels), ``group`` (removed samples with that label and look),
        ``features`` (the positions shared, as ``(channel, row, column)`` for
        images and ``(column,)`` for rows), ``levels`` (their values on 256
        levels of the data's range), ``share`` (of the group that has them
        all), ``found`` (whether they passed the check's bars), ``carriers``
        and ``kept`` (of the carriers, how many the other stages kept).
    carriers_ : ndarray of bool of shape (n_samples,)
        The carriers of every trigger found.
    """

    _parameter_constraints: dict = {
        "mode": [StrOptions({"add", "replace"})],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "n_components": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, mode="add", n_neighbors=15, n_components=20):
        self.mode = mode
        self.n_neighbors = n_neighbors
        self.n_components = n_components

    def after_refine(self, state):
        look = state.look
        if look is None:
            # The judge's neighbours only group the removed samples here.
            look = blind_judge(
                state.data, self.n_neighbors, self.n_components, state.seed()
            ).argmax(axis=1)
        # The rescue's give-backs stay evidence of what the poison shares.
        carriers, pairs = trigger_check(
            state.data, state.keep, look, removed=~state.keep | ~state.refine_keep
        )
        if self.mode == "add":
            state.keep = state.keep & ~carriers
        elif carriers.any():
            state.keep = ~carriers
        for pair in pairs:
            pair["label"] = state.classes[pair["label"]]
            pair["look"] = state.classes[pair["look"]]
        self.pairs_ = pairs
        self.carriers_ = carriers


def trigger_check(data, keep, look, removed=None):
    """Samples that carry a trigger found in a removed group, and the pairs.

    Parameters
    ----------
    data : PreparedData
        The filter's prepared samples and labels.
    keep : ndarray of bool
        The kept set after every other stage.
    look : ndarray of int
        The class each sample looks like to a judge blind to the trigger.
    removed : ndarray of bool, default=None
        The samples the groups are formed from; None: those not in ``keep``.

    Returns
    -------
    carriers : ndarray of bool
        Samples, kept or not, that carry the trigger found for a pair of
        their label.
    pairs : list of dict
        One entry per pair examined: ``label``, ``look``, ``group`` (its
        size), ``features`` (the trigger features, as index tuples into one
        sample of ``data.X``), ``levels`` (their levels, 0-255 of the data's
        range), ``share`` (of the group that has them all), ``found``
        (whether they passed every bar: the pair's trigger), ``carriers``
        (samples of the label that have them all, when found) and ``kept``
        (of those, how many ``keep`` held).
    """
    keep = np.asarray(keep, dtype=bool)
    removed = ~keep if removed is None else np.asarray(removed, dtype=bool)
    levels = _levels(data.X_flat)
    carriers = np.zeros(len(data), dtype=bool)
    pairs = []
    for label in range(data.n_classes):
        own = data.y == label
        for other in range(data.n_classes):
            group = removed & own & (look == other)
            if other == label or group.sum() < MIN_GROUP:
                continue
            pair = {"label": label, "look": other, "group": int(group.sum())}
            pair.update(_examine(levels, group, keep, own))
            hit = pair.pop("hit")
            carriers[hit] = True
            pair["carriers"] = int(len(hit))
            pair["kept"] = int(keep[hit].sum())
            pair["features"] = [
                tuple(int(i) for i in np.unravel_index(f, data.input_shape))
                for f in pair["features"]
            ]
            pairs.append(pair)
    return carriers, pairs


def _levels(flat):
    """Every value as one of ``LEVELS`` levels of the data's range."""
    low, high = float(flat.min()), float(flat.max())
    span = (high - low) or 1.0
    # Row blocks keep the float temporaries small on large data.
    out = np.empty(flat.shape, dtype=np.uint8)
    for start in range(0, len(flat), 4096):
        block = flat[start : start + 4096]
        out[start : start + 4096] = np.rint((block - low) * ((LEVELS - 1) / span))
    return out


def _examine(levels, group, keep, own_label):
    """The trigger a group shares, and the rows of its label carrying it.

    ``own_label`` marks every sample with the group's label.
    """
    others, own = keep & ~own_label, keep & own_label
    members = levels[group]
    n_features = levels.shape[1]
    counts = np.zeros((n_features, LEVELS), dtype=np.int64)
    columns = np.broadcast_to(np.arange(n_features), members.shape)
    np.add.at(counts, (columns, members), 1)
    mode = counts.argmax(axis=1)
    shared = counts[np.arange(n_features), mode] / len(members)
    candidates = np.flatnonzero(shared >= SHARE)
    # Whether each sample has each candidate feature's shared level.
    at_level = levels[:, candidates] == mode[candidates]
    rare = _share(at_level[others]) <= RARE
    features = candidates[rare]
    result = {
        "features": features,
        "levels": [int(v) for v in mode[features]],
        "share": 0.0,
        "found": False,
        "hit": np.empty(0, dtype=np.int64),
    }
    if len(features) == 0:
        return result
    carries = at_level[:, rare].all(axis=1)
    result["share"] = float(carries[group].mean())
    if (
        result["share"] >= SHARE
        and _share(carries[others]) <= RARE
        and _share(carries[own]) <= LABEL_SHARE
    ):
        result["found"] = True
        result["hit"] = np.flatnonzero(own_label & carries)
    return result


def _share(flags):
    """Share of rows that are True (per column for 2-D); 0 with no rows."""
    if len(flags) == 0:
        return np.zeros(flags.shape[1:]) if flags.ndim > 1 else 0.0
    return flags.mean(axis=0)
