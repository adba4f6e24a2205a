"""How well each disagreement group is told apart from its look class.

Fits ``ISPLFilter(random_state=seed)`` on each scenario and, for the largest
(label, look) groups of its group decision and optionally its most isolated,
runs the group trigger test's cross-fitted models (``group_scores`` with
``read_look=True``, the refine learner of the fit's schedule). For each
group it records the poisoned members, whether the group decision flagged
it, its share, isolation and rank by isolation, and on held-out samples: the
share of members the models place with the group (p >= 0.5), the share of
the look class and of the rest of the label they place with it, and the ROC
AUC of members against the look class and against the rest of the label. A
trigger sets poison apart from the class it looks like; a look-alike
resemblance does not. The filter's group trigger test confirms its
candidate groups by this statistic (``n_candidates``); the script measures
it on many more groups, with the groups the filter's test tested.
``--rounds N``, ``--candidates N`` and ``--test-epochs N`` fit the filter
with its group trigger test at ``n_rounds=N``, ``n_candidates=N`` and
``n_epochs=N``; ``--groups 0``
records only the fit and the groups its test tested, ``--decision-groups``
every group of the group decision with its statistics (its isolation in the
trigger-blind judge's view included) and poisoned members.

Usage::

    python benchmarks/group_separability.py --n-train 60000 \\
        --scenarios robust:4 --groups 12 \\
        --out benchmarks/results/group_separability/60k-float32.json
    python benchmarks/group_separability.py --scenarios robust:5 robust:1 \\
        --groups 16 --out benchmarks/results/group_separability/quick-float32.json
"""

import numpy as np
from large_rule import parse_scenarios_args, scenario_runs, scenarios_parser, with_test
from stages import counts, save_scenario

from sklearn_ispl import ISPLFilter
from sklearn_ispl._schedules import SCHEDULES, resolve_schedule_name, resolve_settings
from sklearn_ispl._validation import prepare_data
from sklearn_ispl.experimental import (
    GroupDecision,
    GroupTriggerTest,
    TriggerBlindJudge,
)
from sklearn_ispl.experimental._group_test import group_scores, separation_from_look


def separability(scores, members, look, rest):
    """The held-out statistics of one group's scores (see the docstring)."""

    def auc(negatives):
        return (
            separation_from_look(scores, members, negatives)
            if negatives.any()
            else None
        )

    return {
        "member_recall": float(np.mean(scores[members] >= 0.5)),
        "look_placed": float(np.mean(scores[look] >= 0.5)),
        "rest_placed": float(np.mean(scores[rest] >= 0.5)) if rest.any() else None,
        "auc_look": auc(look),
        "auc_rest": auc(rest),
    }


def with_poison(group, y, look_of, poison):
    """A reported group with the poisoned samples among its members (the
    samples of its label whose look, ``look_of``, is its look class)."""
    members = (y == group["label"]) & (look_of == group["look"])
    return {**group, "poisoned_members": int((members & poison).sum())}


def prepared(ispl, X, y):
    """The data as the fitted filter ``ispl`` prepared it (the benchmark's
    labels are 0..9 already) and its refine network, unfitted."""
    data = prepare_data(
        X,
        np.asarray(y, dtype=np.int64),
        len(ispl.classes_),
        ispl.input_layout_,
        ispl.image_shape,
    )
    return data, resolve_settings(ispl, data)["refine_learner"]


def main(argv=None):
    parser = scenarios_parser(__doc__, n_jobs=2)
    parser.add_argument("--groups", type=int, default=12, help="largest groups")
    parser.add_argument(
        "--most-isolated", type=int, default=0, help="also the most isolated groups"
    )
    parser.add_argument("--seed", type=int, default=0, help="the filter's seed")
    parser.add_argument(
        "--rounds", type=int, default=None, help="the group trigger test's n_rounds"
    )
    parser.add_argument(
        "--candidates",
        type=int,
        default=None,
        help="the group trigger test's n_candidates",
    )
    parser.add_argument(
        "--test-epochs",
        type=int,
        default=None,
        help="the group trigger test's n_epochs",
    )
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--decision-groups",
        action="store_true",
        help="record every group of the group decision",
    )
    args, profile = parse_scenarios_args(parser, argv)
    runs = scenario_runs("group_separability.py", args, profile, argv)
    for name, _, (X, y, poison), _, result in runs:
        ispl = ISPLFilter(random_state=args.seed, n_jobs=args.n_jobs)
        test = {
            key: value
            for key, value in (
                ("n_rounds", args.rounds),
                ("n_candidates", args.candidates),
                ("n_epochs", args.test_epochs),
            )
            if value is not None
        }
        if test:
            ispl.set_params(extra_stages=with_test(len(X), **test))
        schedule = resolve_schedule_name("auto", len(X))
        if not any(
            isinstance(s, GroupDecision) for s in SCHEDULES[schedule]["extra_stages"]()
        ):
            raise SystemExit(
                f"the {schedule!r} schedule ({len(X)} training images) has no "
                "group decision: there are no groups to measure"
            )
        ispl.fit(X, y)
        (decision,) = [s for s in ispl.extra_stages_ if isinstance(s, GroupDecision)]
        data, learner = prepared(ispl, X, y)
        judges = [s for s in ispl.extra_stages_ if isinstance(s, TriggerBlindJudge)]
        look_of = ispl.refine_proba_.argmax(axis=1)
        rows = []
        by_isolation = sorted(decision.groups_, key=lambda g: -g["isolation"])
        for rank, group in enumerate(by_isolation):
            group["isolation_rank"] = rank
        chosen = decision.groups_[: args.groups]
        chosen += [g for g in by_isolation[: args.most_isolated] if g not in chosen]
        for group in chosen:
            label, look = group["label"], group["look"]
            members = (y == label) & (look_of == look)
            scores = group_scores(
                data,
                learner,
                [(members, look)],
                args.epochs,
                0,
                "cpu",
                args.n_jobs,
                read_look=True,
            )
            row = {
                "label": int(label),
                "look": int(look),
                "size": int(members.sum()),
                "poisoned_members": int((members & poison).sum()),
                "flagged": bool(group["flagged"]),
                "share": float(group["share"]),
                "isolation": float(group["isolation"]),
                "isolation_rank": group["isolation_rank"],
                # How many members a trigger-blind view also takes for the look
                # class (poison: most; a clean group unlike its look: few).
                "judge_look_share": (
                    float(np.mean(judges[0].look_[members] == look)) if judges else None
                ),
                **separability(scores, members, y == look, (y == label) & ~members),
            }
            rows.append(row)
            print(
                f"{name} ({label},{look}) size {row['size']} poison "
                f"{row['poisoned_members']}: recall {row['member_recall']:.2f} "
                f"AUC look {row['auc_look']:.4f} rest {row['auc_rest']:.4f}",
                flush=True,
            )
        entry = {
            "schedule": ispl.schedule_["schedule"],
            "n_poison": int(poison.sum()),
            **counts(ispl.keep_mask_, poison),
            # What the vote and the refine stage alone decided, before the
            # extra stages' final say.
            "stages": {
                "vote": counts(ispl.vote_keep_mask_, poison),
                "refine": counts(ispl.refine_keep_mask_, poison),
            },
            "n_groups": len(decision.groups_),
            "stage_times": {k: round(v, 1) for k, v in ispl.stage_times_.items()},
            # The groups the filter's own group trigger test tested.
            "group_test": [
                with_poison(g, y, look_of, poison)
                for s in ispl.extra_stages_
                if isinstance(s, GroupTriggerTest)
                for g in s.groups_
            ],
            "groups": rows,
        }
        if args.decision_groups:
            entry["decision_groups"] = [
                with_poison(g, y, look_of, poison) for g in decision.groups_
            ]
        save_scenario(args.out, result, name, entry)
    return result


if __name__ == "__main__":
    main()
