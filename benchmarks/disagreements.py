"""Where the clean samples go: ISPLFilter's removals by (label, look) cell.

Fits ISPLFilter on one scenario of the paper or robust suite and counts the
poison kept (FN) and clean samples removed (FP) after the vote, the refine
stage and at the end. Then it looks at the refine stage's disagreements:
samples whose given label is not the class the refine models (each sample
judged by a model that did not train on it) find most likely, their
*look*. Disagreements are grouped in cells (label, look). For every cell of
at least ``--min-cell`` samples it prints its size, its poison, and four
statistics that a group-level rule could flag poison cells by:

- ``learnable``: the compatibility test of the paper, applied to the cell.
  The disagreements are split in two halves, stratified by cell; a fresh
  default network trains ``--test-epochs`` epochs on the agreeing samples
  plus one half and predicts the other, and back. The share of a cell
  predicted as its given label: poison that shares a learnable trigger
  should score high, a clean but hard group low.
- ``reverse``: the cell's size over the probability mass the refine models
  give the label among the samples labelled as the look class (scaled to
  the class sizes), plus one: confusable clean classes err in both
  directions, poison piles up in one.
- ``confident``: the share of the cell whose look has a probability of at
  least 0.97: poison is a typical image of its source class.
- ``isolated``: among all the samples labelled as the cell's label, those
  the look class has a probability of at least 0.5 over one plus those it
  has between 0.02 and 0.5. Clean confusion between two classes is a
  continuum, so the cell is the tail of a crowd of half-confused samples;
  poison between classes that are otherwise told apart is a cluster of its
  own, with few samples in between.

``separation`` sums it up per statistic: the lowest value among the cells
that are mostly poison against the highest among the clean cells; a
statistic separates them when the first is above the second. It also
prints the per-sample frontier of the refine stage's final rule (FP and FN
for several ``keep_ratio`` values), read from the same probabilities.

``--final`` also trains the benchmark's final classifier on the kept
samples and on the unfiltered data and prints their clean accuracy C and
attack success A (the larger rate with two attacks); ``--final-seeds K``
trains it K times with different seeds, to show the training's own spread.

Usage::

    python benchmarks/disagreements.py --suite robust --scenario 12 \\
        --out benchmarks/results/disagreements/robust-12.json
    python benchmarks/disagreements.py --suite robust --scenario 0 \\
        --n-train 60000 --test-epochs 1 --final \\
        --out benchmarks/results/disagreements/robust-0-60k.json
"""

import argparse
import time

import numpy as np
from stages import add_settings_arguments, fit_params, run_record, save_result

from sklearn_ispl import ISPLFilter
from sklearn_ispl._images import infer_layout, to_nchw
from sklearn_ispl._learners import build_learner
from sklearn_ispl._validation import prepare_data
from sklearn_ispl.benchmark import (
    _load_data,
    get_profile,
    make_defense,
    suite_scenarios,
)
from sklearn_ispl.benchmark._data import _evaluate, _FinalModel
from sklearn_ispl.cli import _add_threads, _set_threads
from sklearn_ispl.experimental._groups import group_isolation

KEEP_RATIOS = (1.0, 0.3, 0.1, 0.03, 0.01)


def load(profile_name, suite, index, n_train):
    """The profile, the scenario, the poisoned training data ``X_p, y_p,
    poison_ids`` and the test data ``X_test, y_test``."""
    profile = get_profile(profile_name, **({"n_train": n_train} if n_train else {}))
    X, y, X_test, y_test = _load_data(profile)
    scenarios = suite_scenarios(
        suite, X.shape[1:], profile.max_value, profile.min_contrast
    )
    scenario = next(s for s in scenarios if s.index == index)
    if suite == "paper":
        X_p, y_p, mask = scenario.attack.poison(X, y)
        ids = np.where(mask, 0, -1)
    else:
        X_p, y_p, ids = scenario.poison(X, y)
    return profile, scenario, (X_p, y_p, ids), (X_test, y_test)


def final_scores(profile, scenario, X_p, y_p, masks, X_test, y_test, seed=None):
    """C and A of the final classifier trained on the samples of each mask
    (a dict of name: boolean mask; ``{"no_defense": None}`` trains on all),
    seeded by ``seed`` (None: the profile's seed)."""
    nchw = to_nchw(X_p, infer_layout(X_p.shape))
    n_classes = int(max(y_p.max(), y_test.max())) + 1

    def model():
        return _FinalModel(
            nchw.shape[1:],
            n_classes,
            float(np.mean(nchw, dtype=np.float64)),
            float(np.std(nchw, dtype=np.float64)) or 1.0,
            profile.final_epochs,
            profile.final_params,
            profile.seed if seed is None else seed,
            "cpu",
        )

    scores = {}
    for name, keep in masks.items():
        keep = np.ones(len(y_p), dtype=bool) if keep is None else keep
        fitted = model().fit(X_p[keep], y_p[keep])
        scores[name] = _evaluate(fitted, scenario, X_test, y_test)
    return scores


def counts(keep, poison):
    return {"FN": int((keep & poison).sum()), "FP": int((~keep & ~poison).sum())}


def held_out_label_share(data, agree, look, epochs, seed):
    """For each disagreement: does a network trained on the agreeing samples
    and the other half of the disagreements predict its given label?"""
    y = data.y
    disagree = np.flatnonzero(~agree)
    rng = np.random.RandomState(seed)
    half = np.zeros(len(y), dtype=int)
    cells = y * data.n_classes + look
    for cell in np.unique(cells[disagree]):
        members = disagree[cells[disagree] == cell]
        half[rng.permutation(members)] = np.arange(len(members)) % 2
    learnable = np.zeros(len(y), dtype=bool)
    for h in (0, 1):
        train = agree | (~agree & (half == h))
        learner = build_learner(None, data, seed + h)
        learner.fit_epochs(np.flatnonzero(train), epochs)
        judged = np.flatnonzero(~agree & (half != h))
        learnable[judged] = learner.predict_proba(judged).argmax(axis=1) == y[judged]
    return learnable


def cell_table(y, poison, proba, learnable, min_cell):
    n_classes = proba.shape[1]
    look = proba.argmax(axis=1)
    disagree = look != y
    sizes = np.bincount(y, minlength=n_classes)
    rows = []
    for t in range(n_classes):
        for s in range(n_classes):
            cell = disagree & (y == t) & (look == s)
            n = int(cell.sum())
            if t == s or n < min_cell:
                continue
            mass = proba[y == s, t].sum() * sizes[t] / max(sizes[s], 1)
            rows.append(
                {
                    "label": t,
                    "look": s,
                    "n": n,
                    "poison": int((cell & poison).sum()),
                    "learnable": float(learnable[cell].mean()),
                    "reverse": float(n / (mass + 1)),
                    "confident": float((proba[cell].max(axis=1) >= 0.97).mean()),
                    "isolated": group_isolation(proba[y == t, s]),
                }
            )
    return rows


def separation(rows):
    """Per statistic: min over mostly-poison cells, max over clean cells."""
    poisoned = [r for r in rows if r["poison"] > r["n"] / 2]
    clean = [r for r in rows if r["poison"] == 0]
    out = {}
    for key in ("learnable", "reverse", "confident", "isolated"):
        low = min((r[key] for r in poisoned), default=None)
        high = max((r[key] for r in clean), default=None)
        out[key] = {
            "poison_cells_min": low,
            "clean_cells_max": high,
            "separates": None if low is None or high is None else bool(low > high),
        }
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--suite", default="robust", choices=["paper", "robust"])
    parser.add_argument("--scenario", type=int, required=True)
    parser.add_argument("--n-train", type=int, default=None)
    add_settings_arguments(parser)
    parser.add_argument("--test-epochs", type=int, default=8)
    parser.add_argument("--min-cell", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="random_state")
    parser.add_argument(
        "--final", action="store_true", help="also train the final classifier"
    )
    parser.add_argument(
        "--final-seeds",
        type=int,
        default=1,
        help="with --final, train it this many times, with the profile's seed "
        "and the ones after it",
    )
    _add_threads(parser)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    _set_threads(parser, args.threads)
    params = fit_params(args)
    profile, scenario, (X_p, y_p, ids), (X_test, y_test) = load(
        args.profile, args.suite, args.scenario, args.n_train
    )
    poison = ids >= 0
    result = run_record("disagreements.py", argv, params, poison)
    result.update(suite=args.suite, scenario=args.scenario)

    ispl, _, _ = make_defense(
        ISPLFilter, params, {"random_state": args.seed, "n_jobs": args.n_jobs}, True
    )
    tic = time.perf_counter()
    ispl.fit(X_p, y_p)
    result["fit_seconds"] = round(time.perf_counter() - tic, 1)
    result["schedule"] = ispl.schedule_["schedule"]
    result["stages"] = {
        "vote": counts(ispl.vote_keep_mask_, poison),
        "refine": counts(ispl.refine_keep_mask_, poison),
        "final": counts(ispl.keep_mask_, poison),
    }
    y = np.searchsorted(ispl.classes_, y_p)
    proba = ispl.refine_proba_
    if np.isnan(proba).any():
        # No refine round ran (the vote kept nothing): there is no look.
        save_result(args.out, result)
        print("the refine stage ran no round; no disagreements to look at")
        return result
    support = proba[np.arange(len(y)), y]
    result["keep_ratio_frontier"] = {
        str(r): counts(support >= r * proba.max(axis=1), poison) for r in KEEP_RATIOS
    }
    data = prepare_data(X_p, y.astype(np.int64), len(ispl.classes_), ispl.input_layout_)
    look = proba.argmax(axis=1)
    learnable = held_out_label_share(data, look == y, look, args.test_epochs, args.seed)
    rows = cell_table(y, poison, proba, learnable, args.min_cell)
    result["cells"] = rows
    result["separation"] = separation(rows)

    if args.final:
        runs = [
            final_scores(
                profile,
                scenario,
                X_p,
                y_p,
                {"no_defense": None, "ispl": ispl.keep_mask_},
                X_test,
                y_test,
                profile.seed + i,
            )
            for i in range(args.final_seeds)
        ]
        result["final_classifier"] = runs[0]
        if args.final_seeds > 1:
            result["final_classifier_seeds"] = runs
        for i, run in enumerate(runs):
            for name, sc in run.items():
                a = f", A {100 * sc['A']:.1f}%" if "A" in sc else ""
                print(
                    f"final classifier (seed {profile.seed + i}), {name}: "
                    f"C {100 * sc['C']:.1f}%{a}",
                    flush=True,
                )
    n_clean = int((~poison).sum())
    for stage, c in result["stages"].items():
        print(
            f"{stage:>6}: FN {c['FN']}/{int(poison.sum())}, FP {c['FP']} "
            f"({100 * c['FP'] / n_clean:.1f}% of clean)"
        )
    print(
        "keep_ratio frontier: "
        + " | ".join(
            f"{r}: FP {100 * c['FP'] / n_clean:.1f}% FN {c['FN']}"
            for r, c in result["keep_ratio_frontier"].items()
        )
    )
    print("cell (label, look)    n  poison  learnable  reverse  confident  isolated")
    for r in sorted(rows, key=lambda r: -r["n"]):
        print(
            f"  ({r['label']}, {r['look']})  {r['n']:9d} {r['poison']:7d} "
            f"{r['learnable']:10.2f} {r['reverse']:8.2f} {r['confident']:10.2f} "
            f"{r['isolated']:9.2f}"
        )
    for key, s in result["separation"].items():
        print(f"{key}: {s}")
    save_result(args.out, result)
    return result


if __name__ == "__main__":
    main()
