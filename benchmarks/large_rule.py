"""The ``large`` schedule's final decision, read from one fit per scenario.

Fits ``ISPLFilter(random_state=0)`` (the ``large`` schedule on 60,000
images) on each scenario. The refine models' probabilities do not depend on
the final keep rule, the judge's veto or the stages after them, so one fit
gives the poison kept (FN) and the clean samples removed (FP) of each of
these decisions:

- ``default``: the fit's own decision (``keep_mask_``);
- ``no_test``: the same without the group trigger test;
- ``earlier``: the decision ``large`` made before the group trigger test:
  the refine stage's relaxed rule at ``keep_ratio=0.3`` and the
  trigger-blind judge's veto on every label, then the group decision;
- ``veto_in_flagged``: the default with the judge's veto applied in the
  labels of the flagged groups only.

``--final`` trains the benchmark's final classifier on the decisions named
by ``--final-on`` and reports clean accuracy C and attack success A.
``--rounds N`` fits the filter with its group trigger test at
``n_rounds=N`` (``default`` is then that fit's decision).
Scenarios are ``paper:I`` or ``robust:I``.

Usage::

    python benchmarks/large_rule.py --n-train 60000 \\
        --scenarios robust:20 robust:12 robust:3 robust:19 paper:20 \\
        --final --final-on no_test earlier veto_in_flagged \\
        --out benchmarks/results/large_rule/60k.json
"""

import argparse

import numpy as np
from disagreements import final_scores, load
from group_modes import scenario_data
from stages import counts, run_record, save_scenario

from sklearn_ispl import ISPLFilter
from sklearn_ispl._schedules import SCHEDULES, resolve_schedule_name
from sklearn_ispl.benchmark import get_profile
from sklearn_ispl.cli import _add_threads, _set_threads
from sklearn_ispl.experimental import (
    GroupDecision,
    GroupTriggerTest,
    TriggerBlindJudge,
)

DECISIONS = ("default", "no_test", "earlier", "veto_in_flagged")


def scenario(name, profile, n_train):
    """``(scenario, (X_p, y_p, poison), (X_test, y_test))`` of a name."""
    suite, key = name.split(":", 1)
    if suite == "paper":
        _, sc, (X_p, y_p, ids), test = load(profile.name, "paper", int(key), n_train)
        return sc, (X_p, y_p, ids >= 0), test
    if suite == "robust":
        return scenario_data(key, profile, n_train)
    raise SystemExit(f"unknown scenario {name!r}")


def scenario_runs(script, args, profile, argv):
    """Each scenario of ``args.scenarios`` as ``(name, scenario, (X_p, y_p,
    poison), (X_test, y_test), result)``; ``result`` is the results record
    of ``script`` (:func:`stages.run_record`), one for the whole run."""
    result = None
    for name in args.scenarios:
        sc, poisoned, test = scenario(name, profile, args.n_train)
        if result is None:
            result = run_record(script, argv, {}, poisoned[2])
            result["scenarios"] = {}
        yield name, sc, poisoned, test, result


def with_test(n_samples, **params):
    """The default schedule's extra stages on ``n_samples`` samples, its
    group trigger test given ``params`` (``n_rounds``, ``n_candidates``...)."""
    name = resolve_schedule_name("auto", n_samples)
    stages = SCHEDULES[name]["extra_stages"]()
    for stage in stages:
        if isinstance(stage, GroupTriggerTest):
            stage.set_params(**params)
    return stages


def decisions(ispl, y):
    """Every decision of the module docstring, from one filter fitted on
    labels ``y``."""
    stages = {type(s): s for s in ispl.extra_stages_}
    judge = stages[TriggerBlindJudge]
    groups = stages[GroupDecision]
    relaxed = ispl.refine_scores_ >= 0.3 * ispl.refine_proba_.max(axis=1)
    flagged = np.isin(y, [g["label"] for g in groups.groups_ if g["flagged"]])
    return {
        "default": ispl.keep_mask_,
        "no_test": ispl.refine_keep_mask_ & ~groups.removed_,
        "earlier": relaxed & judge.backed_ & ~groups.removed_,
        "veto_in_flagged": ispl.keep_mask_ & ~(flagged & ~judge.backed_),
    }


def scenarios_parser(doc, n_train=None, n_jobs=None):
    """An argument parser for a script run on named scenarios (``--profile``,
    ``--n-train``, ``--scenarios``, ``--n-jobs``); finish it with
    :func:`parse_scenarios_args`."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--n-train", type=int, default=n_train)
    parser.add_argument("--scenarios", nargs="+", required=True)
    parser.add_argument("--n-jobs", type=int, default=n_jobs)
    return parser


def parse_scenarios_args(parser, argv):
    """Add ``--threads`` and ``--out``, parse ``argv`` and apply the thread
    setting; returns ``(args, profile)``."""
    _add_threads(parser)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    _set_threads(parser, args.threads)
    return args, get_profile(args.profile, n_train=args.n_train)


def main(argv=None):
    parser = scenarios_parser(__doc__, n_train=60000)
    parser.add_argument("--final", action="store_true")
    parser.add_argument("--final-on", nargs="+", default=[], choices=DECISIONS)
    parser.add_argument("--rounds", type=int, default=None)
    args, profile = parse_scenarios_args(parser, argv)
    runs = scenario_runs("large_rule.py", args, profile, argv)
    for name, sc, (X_p, y_p, poison), (X_test, y_test), result in runs:
        schedule = resolve_schedule_name("auto", len(y_p))
        if schedule != "large":
            raise SystemExit(
                f"{len(y_p)} training images resolve to the {schedule!r} "
                "schedule; this script reads the 'large' schedule's stages "
                "(give --n-train 20000 or more)"
            )
        ispl = ISPLFilter(random_state=0, n_jobs=args.n_jobs)
        if args.rounds is not None:
            ispl.set_params(extra_stages=with_test(len(X_p), n_rounds=args.rounds))
        ispl.fit(X_p, y_p)
        masks = decisions(ispl, y_p)
        entry = {
            "schedule": ispl.schedule_["schedule"],
            "n_poison": int(poison.sum()),
            "stage_times": {k: round(v, 1) for k, v in ispl.stage_times_.items()},
            "decisions": {k: counts(m, poison) for k, m in masks.items()},
        }
        if args.final:
            chosen = {"default": masks["default"]}
            chosen.update({k: masks[k] for k in args.final_on})
            entry["final_classifier"] = final_scores(
                profile, sc, X_p, y_p, chosen, X_test, y_test
            )
        save_scenario(args.out, result, name, entry)
        line = " ".join(
            f"{k} {v['FN']}/{v['FP']}" for k, v in entry["decisions"].items()
        )
        print(f"{name}: {line}", flush=True)
    return result


if __name__ == "__main__":
    main()
