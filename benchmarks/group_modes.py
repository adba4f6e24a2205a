"""The group decision's two modes, on the robust suite and on look-alike pairs.

Fits ``ISPLFilter()``'s schedule up to its ``GroupDecision`` (in its
default ``"add"`` mode; any stage after it left out) on each scenario and
reads three decisions from the one fit:

- ``before``: what the stages before the group decision kept (copied by a
  stage that changes nothing);
- ``add``: ``keep_mask_``, the default: ``before`` less the flagged groups;
- ``replace``: every sample outside the flagged groups (the opt-in mode);
- ``no_veto``, where the schedule's trigger-blind judge vetoes (``large``):
  ``add`` without the veto, the samples the judge does not back included
  (the judge still limits what the refine models train on, so the fit is
  the same: the filter runs with ``veto=False`` and the veto is applied
  afterwards for the other decisions).

It prints the poison kept (FN) and clean samples removed (FP) of each and
the groups flagged; ``--final`` also trains the benchmark's final classifier
on the unfiltered data and on each decision (or on those named by
``--final-on``) and prints clean accuracy C and attack success A.
Scenarios are robust-suite indices (``--robust``) and the attacks between
look-alike classes defined here (``--lookalike``), which no suite holds: the
benchmark's class pairs are far apart, and a group rule is only worth what
it does where source and target look alike too.

Usage::

    python benchmarks/group_modes.py --robust 12 0 20 --lookalike all \\
        --final --out benchmarks/results/group_modes/quick.json
    python benchmarks/group_modes.py --n-train 60000 --robust 12 3 19 20 \\
        --final --final-on add no_veto \\
        --out benchmarks/results/group_modes/veto-60k.json

A re-run with the same ``--out`` skips the scenarios already in the file.
"""

import argparse
import json
import os
import time
from dataclasses import replace

import numpy as np
from disagreements import final_scores, load
from stages import counts, run_record, save_scenario

from sklearn_ispl import SCHEDULES, ISPLFilter
from sklearn_ispl._schedules import resolve_schedule_name
from sklearn_ispl.attacks import BlendedBackdoorAttack, VaryingBackdoorAttack
from sklearn_ispl.benchmark import _load_data, get_profile
from sklearn_ispl.benchmark._scenarios import RobustScenario
from sklearn_ispl.cli import _add_threads, _set_threads
from sklearn_ispl.experimental import ExtraStage, GroupDecision, TriggerBlindJudge

# Fashion-MNIST classes: 0 T-shirt, 2 pullover, 4 coat, 6 shirt.
LOOKALIKE = {
    "shirt-tshirt-blended": BlendedBackdoorAttack(
        6, 0, alpha=0.2, pattern_seed=11, value_range=(0, 255), random_state=1
    ),
    "coat-pullover-blended": BlendedBackdoorAttack(
        4, 2, alpha=0.1, pattern_seed=12, value_range=(0, 255), random_state=2
    ),
    "tshirt-shirt-varying": VaryingBackdoorAttack(
        0,
        6,
        trigger="pattern",
        position=(20, 20),
        color_range=(160, 255),
        random_state=3,
    ),
    "pullover-coat-varying": VaryingBackdoorAttack(
        2, 4, trigger="ell", position=(5, 5), color_range=(160, 255), random_state=5
    ),
}


class _Before(ExtraStage):
    """Copies the kept set it is handed; changes nothing."""

    def after_refine(self, state):
        self.keep_ = state.keep.copy()


def scenario_data(name, profile, n_train):
    """``(scenario, (X_p, y_p, poison))``, ``(X_test, y_test)`` of a robust index
    or a look-alike attack's name."""
    if name in LOOKALIKE:
        if n_train:
            profile = replace(profile, n_train=n_train)
        X, y, X_test, y_test = _load_data(profile)
        attack = LOOKALIKE[name]
        scenario = RobustScenario(-1, name.rsplit("-", 1)[1], attack)
        X_p, y_p, poison = attack.poison(X, y)
        return scenario, (X_p, y_p, poison), (X_test, y_test)
    _, scenario, (X_p, y_p, ids), test = load(
        profile.name, "robust", int(name), n_train
    )
    return scenario, (X_p, y_p, ids >= 0), test


def fit_modes(X, y, seed):
    """The fitted default filter and its decisions."""
    name = resolve_schedule_name("auto", len(y))
    stages = SCHEDULES[name]["extra_stages"]()
    at = next((i for i, s in enumerate(stages) if isinstance(s, GroupDecision)), None)
    if at is None:
        raise SystemExit(f"the {name!r} schedule has no group decision")
    # The modes are the group decision's: the stages after it are left out.
    stages = stages[: at + 1]
    judges = [s for s in stages if isinstance(s, TriggerBlindJudge) and s.veto]
    for judge in judges:
        judge.set_params(veto=False)
    before = _Before()
    stages = [*stages[:-1], before, stages[-1]]
    ispl = ISPLFilter(extra_stages=stages, random_state=seed)
    ispl.fit(X, y)
    groups = ispl.extra_stages_[-1]
    backed = np.ones(len(y), dtype=bool)
    for stage in ispl.extra_stages_:
        if isinstance(stage, TriggerBlindJudge) and judges:
            backed &= stage.backed_
    unvetoed = ispl.extra_stages_[-2].keep_
    decisions = {
        "before": unvetoed & backed,
        "add": ispl.keep_mask_ & backed,
        "replace": ~groups.removed_,
    }
    if judges:
        decisions["no_veto"] = ispl.keep_mask_
    return ispl, decisions


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--robust", nargs="*", default=[], help="robust indices")
    parser.add_argument(
        "--lookalike",
        nargs="*",
        default=[],
        help=f"'all' or names among {', '.join(LOOKALIKE)}",
    )
    parser.add_argument("--n-train", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0, help="random_state")
    parser.add_argument("--final", action="store_true")
    parser.add_argument(
        "--final-on",
        nargs="+",
        default=None,
        help="the decisions (and no_defense) the final classifier trains on; "
        "default: all",
    )
    _add_threads(parser)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    _set_threads(parser, args.threads)
    profile = get_profile(args.profile)
    lookalike = list(LOOKALIKE) if args.lookalike == ["all"] else args.lookalike
    unknown = set(lookalike) - set(LOOKALIKE)
    if unknown:
        parser.error(f"unknown --lookalike {sorted(unknown)}")
    result = None
    if args.out and os.path.exists(args.out):
        with open(args.out) as f:
            result = json.load(f)
    for name in [*args.robust, *lookalike]:
        if result is not None and name in result["scenarios"]:
            continue
        scenario, (X_p, y_p, poison), (X_test, y_test) = scenario_data(
            name, profile, args.n_train
        )
        if result is None:
            result = run_record("group_modes.py", argv, {}, poison)
            result["scenarios"] = {}
        tic = time.perf_counter()
        ispl, decisions = fit_modes(X_p, y_p, args.seed)
        entry = {
            "fit_seconds": round(time.perf_counter() - tic, 1),
            "n_poison": int(poison.sum()),
            "attacks": scenario.describe()["attacks"],
            "flagged": [g for g in ispl.extra_stages_[-1].groups_ if g["flagged"]],
            "decisions": {k: counts(v, poison) for k, v in decisions.items()},
        }
        if args.final:
            masks = {"no_defense": None, **decisions}
            if args.final_on is not None:
                masks = {k: v for k, v in masks.items() if k in args.final_on}
            scores = final_scores(profile, scenario, X_p, y_p, masks, X_test, y_test)
            entry["final_classifier"] = scores
        save_scenario(args.out, result, name, entry)
        n_clean = len(poison) - int(poison.sum())
        for k, c in entry["decisions"].items():
            final = entry.get("final_classifier", {}).get(k, {})
            ca = "".join(
                f", {m} {100 * final[m]:.1f}%" for m in ("C", "A") if m in final
            )
            print(
                f"{name} {k:>8}: FN {c['FN']}/{entry['n_poison']}, FP {c['FP']} "
                f"({100 * c['FP'] / n_clean:.1f}%){ca}",
                flush=True,
            )
        if "no_defense" in entry.get("final_classifier", {}):
            nd = entry["final_classifier"]["no_defense"]
            ca = ", ".join(f"{m} {100 * nd[m]:.1f}%" for m in ("C", "A") if m in nd)
            print(f"{name} no defense: {ca}", flush=True)
    return result


if __name__ == "__main__":
    main()
