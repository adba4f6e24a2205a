"""Which clean samples one fit removes: by class, by stage, and through its groups.

Fits ``ISPLFilter(random_state=SEED)`` on each scenario and records the
clean samples removed (FP) per class at the end and by the refine rule,
and per class among those the refine rule kept, what each extra stage with
a ``removed_`` mask took. For each group the group decision flagged
(label ``t``, look ``s``), it splits the samples the group removes
(:func:`sklearn_ispl.experimental._groups.group_removal`: the label's
samples the refine models call ``s``, and those they find likelier to be
``s`` than ``t``) into those two parts, and counts, for the second part
alone, the poisoned and clean samples with a probability of ``s`` under
each of a few floors: what a floor on that probability would give back.

Scenarios are ``paper:I`` or ``robust:I``.

Usage::

    python benchmarks/clean_removed.py --n-train 60000 --scenarios paper:20 \\
        --out benchmarks/results/large_rule/paper20-60k-clean.json
"""

import numpy as np
from large_rule import parse_scenarios_args, scenario_runs, scenarios_parser
from stages import counts, save_scenario

from sklearn_ispl import ISPLFilter
from sklearn_ispl.experimental import GroupDecision
from sklearn_ispl.experimental._groups import group_removal

#: Floors on the look class's probability, for the samples a flagged group
#: removes only because they lean to it.
FLOORS = (0.01, 0.05, 0.1, 0.2, 0.5)


def per_class(mask, y, n_classes):
    """How many samples of ``mask`` each class holds."""
    return np.bincount(y[mask], minlength=n_classes).tolist()


def split(mask, poison):
    """The poisoned and clean samples of ``mask``."""
    return {"poison": int((mask & poison).sum()), "clean": int((mask & ~poison).sum())}


def lean_floors(proba, y, label, look, poison, refine_keep):
    """The samples a flagged group removes only for leaning to its look
    class, under each floor of :data:`FLOORS`."""
    removed = group_removal(y, proba, label, look)
    called = removed & (proba.argmax(axis=1) == look)
    leaning = removed & ~called
    rows = {
        "called_look": split(called, poison),
        "leaning_only": split(leaning, poison),
        "leaning_only_refine_kept": split(leaning & refine_keep, poison),
    }
    for floor in FLOORS:
        under = leaning & (proba[:, look] < floor)
        rows[f"under_{floor}"] = {
            "all": split(under, poison),
            "refine_kept": split(under & refine_keep, poison),
        }
    return rows


def main(argv=None):
    parser = scenarios_parser(__doc__, n_jobs=2)
    parser.add_argument("--seed", type=int, default=0, help="the filter's seed")
    args, profile = parse_scenarios_args(parser, argv)
    runs = scenario_runs("clean_removed.py", args, profile, argv)
    for name, _, (X, y, poison), _, result in runs:
        ispl = ISPLFilter(random_state=args.seed, n_jobs=args.n_jobs).fit(X, y)
        n_classes = len(ispl.classes_)
        clean = ~poison
        kept = ispl.refine_keep_mask_
        entry = {
            "schedule": ispl.schedule_["schedule"],
            "n_poison": int(poison.sum()),
            **counts(ispl.keep_mask_, poison),
            "class_sizes": per_class(np.ones(len(y), dtype=bool), y, n_classes),
            "FP_by_class": per_class(~ispl.keep_mask_ & clean, y, n_classes),
            "refine_FP_by_class": per_class(~kept & clean, y, n_classes),
            "stages": {},
            "groups": [],
        }
        for stage in ispl.extra_stages_:
            removed = getattr(stage, "removed_", None)
            if removed is not None:
                entry["stages"][type(stage).__name__] = {
                    "poison": int((removed & poison & kept).sum()),
                    "clean_by_class": per_class(removed & clean & kept, y, n_classes),
                }
            if isinstance(stage, GroupDecision):
                for group in stage.groups_:
                    if group["flagged"]:
                        label, look = group["label"], group["look"]
                        entry["groups"].append(
                            {
                                "label": int(label),
                                "look": int(look),
                                **lean_floors(
                                    ispl.refine_proba_, y, label, look, poison, kept
                                ),
                            }
                        )
        print(
            f"{name}: FP {entry['FP']} by class {entry['FP_by_class']}; "
            f"refine {entry['refine_FP_by_class']}",
            flush=True,
        )
        save_scenario(args.out, result, name, entry)
    return result


if __name__ == "__main__":
    main()
