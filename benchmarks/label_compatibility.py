"""Whether the poison a fit keeps could be told from the clean samples of its label.

Fits ``ISPLFilter(random_state=SEED)`` on each scenario. For every group
that the fit's group trigger test flagged or confirmed (label ``t``, look
class ``s``), two cross-fitted copies of the filter's refine network learn
three classes (the rest of label ``t``, the group, the samples labelled
``s``) for ``--epochs`` epochs, and read each held-out sample's probability
of belonging with the rest of its label
(:func:`sklearn_ispl.experimental._group_test.group_label_compatibility`).
The paper removes poison because it is incompatible with the clean data of
its label; a kept poisoned sample with a high probability is compatible
with it: a model that knows the label's clean samples, the group and the
look class places it with the clean samples. For each threshold the script
also counts what removing the kept samples of label ``t`` under it would
remove (poisoned and clean).

For each group it also records its poisoned members and the label's
isolation in this view (near-certain outsiders over one plus undecided
samples, :func:`~sklearn_ispl.experimental._compat.compatibility_isolation`),
the statistic :class:`~sklearn_ispl.experimental.LabelCompatibilityTest`
flags a group on. ``--all-groups`` takes every group of the fit's group
decision (each (label, look) cell of at least its ``min_size`` samples):
what the probabilities say of clean groups too. ``--attack-groups`` takes the
groups from the scenario's attacks instead, for sizes whose schedule has
no group trigger test: for each attack
(source ``s``, target ``t``), the samples labelled ``t`` that the refine
models call ``s``. The attacks are known to the benchmark only; this
measures what a rule could see, it is not one.

Scenarios are ``paper:I`` or ``robust:I``.

Usage::

    python benchmarks/label_compatibility.py --n-train 30000 \\
        --scenarios paper:20 \\
        --out benchmarks/results/group_separability/compat/paper20-30000.json
"""

import numpy as np
from clean_removed import split
from group_separability import prepared
from large_rule import parse_scenarios_args, scenario_runs, scenarios_parser
from stages import counts, save_scenario

from sklearn_ispl import ISPLFilter
from sklearn_ispl.experimental import (
    GroupDecision,
    GroupTriggerTest,
    LabelCompatibilityTest,
)
from sklearn_ispl.experimental._compat import compatibility_isolation
from sklearn_ispl.experimental._group_test import group_label_compatibility

#: Probabilities of the rest of the label under which a kept sample is
#: counted as one a rule would remove.
THRESHOLDS = (0.5, 0.3, 0.1)


def compatibility_row(proba, of_label, keep, poison):
    """What the probabilities say about one label's kept samples."""
    kept_poison = of_label & keep & poison
    kept_clean = of_label & keep & ~poison
    row = {
        "kept_poison": int(kept_poison.sum()),
        "kept_clean": int(kept_clean.sum()),
        "kept_poison_quantiles": (
            np.nanquantile(proba[kept_poison], [0, 0.25, 0.5, 0.75, 1])
            .round(4)
            .tolist()
            if kept_poison.any()
            else None
        ),
        "kept_clean_low_quantiles": np.nanquantile(
            proba[kept_clean], [0.001, 0.01, 0.05]
        )
        .round(4)
        .tolist(),
    }
    for t in THRESHOLDS:
        below = of_label & keep & (proba < t)
        row[f"below_{t}"] = split(below, poison)
    return row


def tested_groups(ispl):
    """The (label, look, flagged) of every group the fit's group trigger test
    flagged or confirmed."""
    tests = [s for s in ispl.extra_stages_ if isinstance(s, GroupTriggerTest)]
    groups = tests[0].groups_ if tests else []
    return [(g["label"], g["look"], g["flagged"]) for g in groups if g["confirmed"]]


def attack_groups(sc):
    """The (target, source, None) of every attack of scenario ``sc``."""
    if hasattr(sc, "attacks"):
        pairs = [(a.target, a.source) for a in sc.attacks]
    else:
        pairs = [(sc.target, sc.source)]
    return [(target, source, None) for target, source in pairs]


def decision_groups(ispl):
    """The (label, look, flagged) of every group of the fit's group decision."""
    decisions = [s for s in ispl.extra_stages_ if isinstance(s, GroupDecision)]
    groups = decisions[0].groups_ if decisions else []
    return [(g["label"], g["look"], g["flagged"]) for g in groups]


def main(argv=None):
    parser = scenarios_parser(__doc__, n_jobs=2)
    parser.add_argument("--seed", type=int, default=0, help="the filter's seed")
    parser.add_argument("--epochs", type=int, default=2)
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--attack-groups",
        action="store_true",
        help="groups from the scenario's attacks, not the fit's group test",
    )
    which.add_argument(
        "--all-groups",
        action="store_true",
        help="every group of the fit's group decision",
    )
    args, profile = parse_scenarios_args(parser, argv)
    runs = scenario_runs("label_compatibility.py", args, profile, argv)
    for name, sc, (X, y, poison), _, result in runs:
        ispl = ISPLFilter(random_state=args.seed, n_jobs=args.n_jobs).fit(X, y)
        data, learner = prepared(ispl, X, y)
        look_of = ispl.refine_proba_.argmax(axis=1)
        if args.attack_groups:
            groups = attack_groups(sc)
        elif args.all_groups:
            groups = decision_groups(ispl)
        else:
            groups = tested_groups(ispl)
        rows = []
        for label, look, flagged in groups:
            members = (y == label) & (look_of == look)
            if not members.any():
                continue
            proba = group_label_compatibility(
                data, learner, (members, look), args.epochs, 0, "cpu", args.n_jobs
            )
            row = {
                "label": int(label),
                "look": int(look),
                "size": int(members.sum()),
                "poisoned_members": int((members & poison).sum()),
                "flagged": flagged,
                "isolation": round(compatibility_isolation(proba[y == label]), 4),
                **compatibility_row(proba, y == label, ispl.keep_mask_, poison),
            }
            rows.append(row)
            print(
                f"{name} ({label},{look}): kept poison {row['kept_poison']}, "
                f"its probability of the rest of the label (quantiles) "
                f"{row['kept_poison_quantiles']}; under 0.5: "
                f"{row['below_0.5']}",
                flush=True,
            )
        entry = {
            "schedule": ispl.schedule_["schedule"],
            "n_poison": int(poison.sum()),
            **counts(ispl.keep_mask_, poison),
            "groups": rows,
        }
        tests = [s for s in ispl.extra_stages_ if isinstance(s, LabelCompatibilityTest)]
        if tests:
            # The decision before the filter's own compatibility test, and
            # the groups that test found incompatible (its models' seeds
            # differ from those above).
            entry["before_test"] = counts(ispl.keep_mask_ | tests[0].removed_, poison)
            entry["incompatible"] = [g for g in tests[0].groups_ if g["incompatible"]]
        save_scenario(args.out, result, name, entry)
    return result


if __name__ == "__main__":
    main()
