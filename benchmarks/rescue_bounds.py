"""The rescue's epochs and lower bound, read from one fit per scenario.

Fits ``ISPLFilter()`` on each scenario with its rescue training ``--epochs``
epochs (the longest setting measured; a schedule without a rescue, such as
``large``, gets one before its group decision), and reads from the one fit
what the rescue would have given back with fewer epochs (the first ``k``
readings of the same training) and with each lower bound of ``--lows``:
the poison kept (FN) and clean samples removed (FP) of the default's final
decision for every (epochs, low) pair, the judge's backing and the group
decision applied as in the filter. It also sorts the clean samples and the
poison the refine stage removed by why they stay out under each setting:
fitted confidently within the epochs read, never fitted (under the lower
bound), or ruled out by the refine model's support.

``--group-lows`` reads the bounds per group instead of per sample:
for every (label, look) group of the group decision it records the median
member's highest probability of its label over the rescue's epochs (its
*median peak*), its size and its poisoned members, and for each bound the
FN and FP of the default's decision with the members of every unflagged
group whose median peak lies under it removed as well: whether a group the
model of all the data never fits as its label is poison, whatever its
members' individual peaks. It also records the decision with the upper
bound read per group (``group_high``): a removed member of a group whose
median peak is under it comes back, whatever its own peak, if the refine
model's support allows.

Usage::

    python benchmarks/rescue_bounds.py --scenarios robust:20 robust:12 \\
        paper:5 robust:3 robust:19 robust:13 robust:1 \\
        --out benchmarks/results/rescue_bounds/quick.json
    python benchmarks/rescue_bounds.py --epochs 4 --grid 4 --lows 0 \\
        --group-lows 0.2 0.25 0.3 --scenarios paper:19 robust:20 \\
        --out benchmarks/results/group_rule/rescue-peaks.json
    python benchmarks/rescue_bounds.py --n-train 60000 --epochs 2 \\
        --grid 1 2 --scenarios robust:20 robust:12 robust:3 robust:19 \\
        paper:20 --out benchmarks/results/rescue_bounds/large-60k.json

A re-run with the same ``--out`` skips the scenarios already in the file.
"""

import argparse
import json
import os
import time

import numpy as np
from disagreements import load
from stages import counts, run_record, save_scenario

from sklearn_ispl import SCHEDULES, ISPLFilter
from sklearn_ispl._schedules import resolve_schedule_name
from sklearn_ispl.cli import _add_threads, _set_threads
from sklearn_ispl.experimental import (
    GroupDecision,
    LabelCompatibilityTest,
    Rescue,
    TriggerBlindJudge,
)
from sklearn_ispl.experimental._rescue import rescue


def fit(X, y, seed, epochs):
    """The default filter, its rescue trained ``epochs`` epochs (one is put
    before the group decision where the schedule has none)."""
    stages = SCHEDULES[resolve_schedule_name("auto", len(y))]["extra_stages"]()
    rescues = [s for s in stages if isinstance(s, Rescue)]
    if rescues:
        rescues[0].set_params(n_epochs=epochs)
    else:
        at = len(stages) - bool(stages and isinstance(stages[-1], GroupDecision))
        stages.insert(at, Rescue(n_epochs=epochs))
    return ISPLFilter(extra_stages=stages, random_state=seed).fit(X, y)


def _stage(ispl, cls):
    return next((s for s in ispl.extra_stages_ if isinstance(s, cls)), None)


def decisions(ispl, epochs_grid, lows, poison):
    """FN and FP of the final decision for every (epochs, low) pair."""
    stage = _stage(ispl, Rescue)
    judge = _stage(ispl, TriggerBlindJudge)
    backed = judge.backed_ if judge is not None else None
    support = ispl.refine_scores_
    high, min_support = stage.bounds[1], stage.min_support
    out, why = {}, {}
    for k in epochs_grid:
        trace = stage.scores_[:, :k]
        peak = trace.max(axis=1)
        for low in lows:
            keep = rescue(
                ispl.refine_keep_mask_,
                trace,
                support,
                (low, high),
                min_support,
                backed,
            )
            keep = after_rescue(ispl, keep)
            out[f"epochs={k} low={low}"] = counts(keep, poison)
            removed = ~ispl.refine_keep_mask_ & ~keep
            reasons = {
                "fitted_early": peak >= high,
                "never_fitted": peak < low,
                "support_under_min": support < min_support,
            }
            why[f"epochs={k} low={low}"] = {
                who: {
                    name: int((removed & mask & sel).sum())
                    for name, sel in reasons.items()
                }
                for who, mask in (("clean", ~poison), ("poison", poison))
            }
    return out, why


def group_bounds(ispl, y, lows, poison):
    """Each group's median peak, and the decision with a lower bound on it.

    The decision starts from the fit's own (``keep_mask_``); for each bound,
    the members of the unflagged groups whose median member the rescue's
    model never fitted above it are removed too.
    """
    stage, decision = _stage(ispl, Rescue), _stage(ispl, GroupDecision)
    peak = stage.scores_.max(axis=1)
    look = ispl.refine_proba_.argmax(axis=1)
    labels = np.searchsorted(ispl.classes_, y)
    groups = []
    for group in decision.groups_ if decision is not None else []:
        label = int(np.searchsorted(ispl.classes_, group["label"]))
        seen = int(np.searchsorted(ispl.classes_, group["look"]))
        members = (labels == label) & (look == seen)
        groups.append(
            {
                "label": group["label"],
                "look": group["look"],
                "size": int(members.sum()),
                "poisoned": int((members & poison).sum()),
                "median_peak": round(float(np.median(peak[members])), 4),
                "flagged": group["flagged"],
                "members": members,
            }
        )
    out = {}
    for low in lows:
        keep = ispl.keep_mask_.copy()
        for group in groups:
            if not group["flagged"] and group["median_peak"] < low:
                keep &= ~group["members"]
        out[f"group_low={low}"] = counts(keep, poison)
    out["group_high"] = counts(group_high(ispl, peak, groups), poison)
    for group in groups:
        del group["members"]
    return groups, out


def group_high(ispl, peak, groups):
    """The decision with the rescue's bounds read per group.

    Each member of a group stands in with the group's median peak, so a
    removed member comes back when the model of all the data does not fit
    the group early (as it fits a learnable trigger) and the refine model's
    support allows it, whatever its own peak; samples outside the groups
    keep the per-sample rule.
    """
    stage, judge = _stage(ispl, Rescue), _stage(ispl, TriggerBlindJudge)
    peak = peak.copy()
    for group in groups:
        peak[group["members"]] = group["median_peak"]
    keep = rescue(
        ispl.refine_keep_mask_,
        peak[:, None],
        ispl.refine_scores_,
        stage.bounds,
        stage.min_support,
        judge.backed_ if judge is not None else None,
    )
    return after_rescue(ispl, keep)


def after_rescue(ispl, keep):
    """``keep`` less what the group decision and the compatibility test
    removed in the fit."""
    decision = _stage(ispl, GroupDecision)
    compat = _stage(ispl, LabelCompatibilityTest)
    if decision is not None:
        keep = keep & ~decision.removed_
    if compat is not None:
        # NaN (labels it found compatible) compares False: kept.
        keep = keep & ~(compat.scores_ < compat.threshold)
    return keep


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument(
        "--scenarios", nargs="+", required=True, help="suite:index, e.g. robust:12"
    )
    parser.add_argument("--n-train", type=int)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--grid", type=int, nargs="+", default=[2, 4, 6, 8])
    parser.add_argument("--lows", type=float, nargs="+", default=[0.0, 0.5])
    parser.add_argument(
        "--group-lows",
        type=float,
        nargs="+",
        default=[],
        help="lower bounds on the median peak of a group of the group decision",
    )
    parser.add_argument("--seed", type=int, default=0)
    _add_threads(parser)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    _set_threads(parser, args.threads)
    grid = [k for k in args.grid if k <= args.epochs]
    result = None
    if args.out and os.path.exists(args.out):
        with open(args.out) as f:
            result = json.load(f)
    for name in args.scenarios:
        if result is not None and name in result["scenarios"]:
            continue
        suite, index = name.split(":")
        _, _, (X_p, y_p, ids), _ = load(args.profile, suite, int(index), args.n_train)
        poison = ids >= 0
        if result is None:
            result = run_record("rescue_bounds.py", argv, {}, poison)
            result["scenarios"] = {}
        tic = time.perf_counter()
        ispl = fit(X_p, y_p, args.seed, args.epochs)
        grid_counts, why = decisions(ispl, grid, args.lows, poison)
        entry = {
            "fit_seconds": round(time.perf_counter() - tic, 1),
            "n_poison": int(poison.sum()),
            "refine": counts(ispl.refine_keep_mask_, poison),
            "fit": counts(ispl.keep_mask_, poison),
            "decisions": grid_counts,
            "removed_because": why,
        }
        if args.group_lows:
            entry["groups"], entry["group_decisions"] = group_bounds(
                ispl, y_p, args.group_lows, poison
            )
            grid_counts = {**grid_counts, **entry["group_decisions"]}
        save_scenario(args.out, result, name, entry)
        line = ", ".join(f"{k}: {c['FN']}/{c['FP']}" for k, c in grid_counts.items())
        print(f"{name} (FN/FP) {line}", flush=True)
    return result


if __name__ == "__main__":
    main()
