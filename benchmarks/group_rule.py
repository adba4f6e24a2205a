"""The group decision's thresholds and the rescue's support gate, read from
one fit per scenario.

Fits ``ISPLFilter(random_state=0)`` (the ``medium`` schedule on the quick
profile) on each scenario and keeps, per sample, what the decision after the
refine stage is made of: the refine models' out-of-sample probabilities of
every class, the refine stage's own decision, its support for each label and
the rescue model's fit trace. None of these depends on the thresholds read
here, so one fit gives, for every setting of the grid, the poison kept (FN)
and the clean samples removed (FP) of the filter's decision at its group
decision (the :class:`LabelCompatibilityTest` after it is not read):

- the group rule: ``(confidence, min_share)`` of :class:`GroupDecision`
  (isolation flags as in the filter, ``min_isolation=3``), and how many
  groups it flags that are mostly clean samples;
- the rescue's ``min_support`` under each group rule.

``--group-test`` also reads the default decision followed by a
:class:`GroupTriggerTest` (trained on the scenario's data with the refine
stage's network) and reports its FN and FP as ``group_test``.

``--final`` trains the benchmark's final classifier on the decisions named
by ``--final-on`` (``group@min_support``, e.g. ``0.997/0.5@1e-05``) and
reports clean accuracy C and attack success A. Scenarios are ``paper:I``,
``robust:I`` or a look-alike attack of ``group_modes.py``
(``lookalike:NAME``). ``--arrays DIR`` keeps each fit's arrays, so a re-run
reads them instead of fitting again.

Usage::

    python benchmarks/group_rule.py --arrays /tmp/group-rule \\
        --scenarios robust:20 robust:12 robust:3 robust:19 robust:7 \\
        robust:17 robust:0 robust:13 paper:4 paper:5 paper:1 paper:8 \\
        paper:11 paper:14 paper:19 paper:20 paper:21 lookalike:all \\
        --final --final-on 0.97/0.7@0.001 0.997/0.5@0.001 0.997/0.5@1e-05 \\
        --out benchmarks/results/group_rule/quick.json
"""

import argparse
import os
import time

import numpy as np
from disagreements import final_scores, load
from group_modes import LOOKALIKE, scenario_data
from stages import counts, run_record, save_scenario

from sklearn_ispl import ISPLFilter
from sklearn_ispl._images import infer_layout
from sklearn_ispl._schedules import SCHEDULES, _default_learner
from sklearn_ispl._validation import prepare_data
from sklearn_ispl.benchmark import get_profile
from sklearn_ispl.cli import _add_threads, _set_threads
from sklearn_ispl.experimental import GroupDecision, GroupTriggerTest, Rescue
from sklearn_ispl.experimental._group_test import group_scores
from sklearn_ispl.experimental._groups import poison_groups
from sklearn_ispl.experimental._rescue import rescue

GROUP_RULES = [
    (0.97, 0.7),
    (0.99, 0.5),
    (0.99, 0.6),
    (0.995, 0.5),
    (0.996, 0.5),
    (0.997, 0.45),
    (0.997, 0.5),
    (0.997, 0.55),
    (0.998, 0.5),
    (0.999, 0.5),
]
MIN_SUPPORTS = [1e-3, 3e-4, 1e-4, 1e-5, 0.0]
ARRAYS = ("y", "poison", "proba", "support", "refine_keep", "trace")


def scenario(name, profile):
    """``(scenario, (X_p, y_p, poison), (X_test, y_test))`` of a name."""
    suite, key = name.split(":", 1)
    if suite == "paper":
        _, sc, (X_p, y_p, ids), test = load(profile.name, "paper", int(key), None)
        return sc, (X_p, y_p, ids >= 0), test
    if suite in ("robust", "lookalike"):
        return scenario_data(key, profile, None)
    raise SystemExit(f"unknown scenario {name!r}")


def fit_arrays(X, y, poison):
    """The per-sample arrays of one ``ISPLFilter(random_state=0)`` fit."""
    ispl = ISPLFilter(random_state=0).fit(X, y)
    stage = next(s for s in ispl.extra_stages_ if isinstance(s, Rescue))
    return {
        "y": np.searchsorted(ispl.classes_, y),
        "poison": poison,
        "proba": ispl.refine_proba_,
        "support": ispl.refine_scores_,
        "refine_keep": ispl.refine_keep_mask_,
        "trace": stage.scores_,
    }


def decision(a, rule, min_support):
    """The final decision: the rescue with ``min_support``, then the group
    rule ``(confidence, min_share)``; with the groups it flagged. The
    other settings are the stages' defaults."""
    bounds, stage = Rescue().bounds, GroupDecision()
    back = rescue(a["refine_keep"], a["trace"], a["support"], bounds, min_support)
    groups, removed = poison_groups(
        a["y"], a["proba"], *rule, stage.min_size, stage.min_isolation
    )
    return back & ~removed, [g for g in groups if g["flagged"]]


def with_group_test(a, X, keep, flagged):
    """``keep`` less what a default :class:`GroupTriggerTest` removes after
    the groups ``flagged``, with the ``medium`` schedule's refine network."""
    stage = GroupTriggerTest()
    data = prepare_data(X, a["y"], a["proba"].shape[1], infer_layout(X.shape))
    learner = _default_learner(SCHEDULES["medium"]["refine_learner"], data)
    look = a["proba"].argmax(axis=1)
    groups = [
        ((a["y"] == g["label"]) & (look == g["look"]), g["look"]) for g in flagged
    ]
    scores = group_scores(data, learner, groups, stage.n_epochs, 0, "cpu")
    return keep & ~(scores >= stage.threshold)


def clean_flags(a, flagged):
    """Flagged groups of which under a third is poison."""
    look = a["proba"].argmax(axis=1)
    n = 0
    for g in flagged:
        members = (a["y"] == g["label"]) & (look == g["look"])
        n += a["poison"][members].mean() < 1 / 3
    return int(n)


def key(rule, min_support):
    return f"{rule[0]:g}/{rule[1]:g}@{min_support:g}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--scenarios", nargs="+", required=True)
    parser.add_argument("--arrays", default=None, help="folder of saved fits")
    parser.add_argument("--group-test", action="store_true")
    parser.add_argument("--final", action="store_true")
    parser.add_argument("--final-on", nargs="+", default=[])
    _add_threads(parser)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    _set_threads(parser, args.threads)
    profile = get_profile(args.profile)
    names = []
    for name in args.scenarios:
        if name == "lookalike:all":
            names += [f"lookalike:{k}" for k in LOOKALIKE]
        else:
            names.append(name)
    defaults = (GroupDecision().confidence, GroupDecision().min_share)
    result = None
    totals = {}
    for name in names:
        sc, (X_p, y_p, poison), (X_test, y_test) = scenario(name, profile)
        if result is None:
            result = run_record("group_rule.py", argv, {}, poison)
            result.update(
                defaults={"group": defaults, "min_support": Rescue().min_support},
                scenarios={},
            )
        path = args.arrays and os.path.join(
            args.arrays, name.replace(":", "_") + ".npz"
        )
        tic = time.perf_counter()
        if path and os.path.exists(path):
            with np.load(path) as saved:
                a = {k: saved[k] for k in ARRAYS}
        else:
            a = fit_arrays(X_p, y_p, poison)
            if path:
                os.makedirs(args.arrays, exist_ok=True)
                np.savez_compressed(path, **a)
        entry = {"fit_seconds": round(time.perf_counter() - tic, 1)}
        entry["n_poison"] = int(poison.sum())
        grid, masks = {}, {}
        for rule in GROUP_RULES:
            for min_support in MIN_SUPPORTS:
                keep, flagged = decision(a, rule, min_support)
                k = key(rule, min_support)
                grid[k] = {
                    **counts(keep, poison),
                    "clean_flags": clean_flags(a, flagged),
                }
                masks[k] = keep
                tot = totals.setdefault(k, {"FN": 0, "FP": 0, "clean_flags": 0})
                for m in tot:
                    tot[m] += grid[k][m]
        entry["grid"] = grid
        if args.group_test:
            keep, flagged = decision(a, defaults, Rescue().min_support)
            entry["group_test"] = counts(with_group_test(a, X_p, keep, flagged), poison)
            tot = totals.setdefault("group_test", {"FN": 0, "FP": 0})
            for m in tot:
                tot[m] += entry["group_test"][m]
        if args.final:
            chosen = {"no_defense": None, **{k: masks[k] for k in args.final_on}}
            entry["final_classifier"] = final_scores(
                profile, sc, X_p, y_p, chosen, X_test, y_test
            )
        result["totals"] = totals
        save_scenario(args.out, result, name, entry)
        line = " ".join(
            f"{k}: {grid[k]['FN']}/{grid[k]['FP']}"
            for k in (key((0.97, 0.7), 1e-3), key(defaults, Rescue().min_support))
        )
        print(f"{name}: {line}", flush=True)
    for k, tot in totals.items():
        flags = tot.get("clean_flags", "-")
        print(f"{k:>18}: FN {tot['FN']}, FP {tot['FP']}, clean flags {flags}")
    return result


if __name__ == "__main__":
    main()
