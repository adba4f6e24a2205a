"""The rescue's decision under several rescue-model seeds, without retraining.

For each scenario of a benchmark profile, fits ISPLFilter with the given
settings plus ``rescue_epochs`` (``random_state=0`` unless ``--seed``), then
trains further rescue models with other seeds on the same poisoned data and
reads each one's probability of every sample's label after each epoch. It
prints how many of the clean and poisoned samples the refine stage removed
each rescue model would give back under the rule of ``--bounds`` and
``--min-support`` (the first seed is the fit's own rescue model, the one the
benchmark uses), and saves the traces (``sN.npz``) so other rules can be
scored offline. The rescue's decision moves with the rescue model's seed;
this shows by how much. A re-run into the same folder skips the scenarios
already saved.

Usage::

    python benchmarks/rescue.py --profile quick --scenarios 1,4,10,22 \\
        --params fast --epochs 8 --out benchmarks/results/rescue-traces
"""

import argparse
import os
import sys

import numpy as np

from sklearn_ispl import ISPLFilter
from sklearn_ispl._images import infer_layout
from sklearn_ispl._refine import label_fit_trace, rescue
from sklearn_ispl._validation import prepare_data
from sklearn_ispl.benchmark import (
    _build_defense,
    benchmark_scenarios,
    get_profile,
    parse_defense_params,
)
from sklearn_ispl.benchmark._data import _load_data


def label_traces(ispl, X, y, seeds, epochs):
    """Per-epoch p(label) of fresh rescue models, one per seed."""
    layout = infer_layout(X.shape)
    data = prepare_data(X, y.astype(np.int64), len(ispl.classes_), layout)
    learner = ispl.weak_learner if ispl.refine_learner is None else ispl.refine_learner
    return [label_fit_trace(data, learner, s, ispl.device, epochs) for s in seeds]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--scenarios", required=True, help="comma-separated indices")
    parser.add_argument("--params", default="fast", help="preset or JSON")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0, help="the defense's seed")
    parser.add_argument(
        "--rescue-seeds",
        type=int,
        nargs="*",
        default=[101, 202],
        help="seeds of the further rescue models",
    )
    parser.add_argument("--bounds", type=float, nargs=2, default=[0.5, 0.95])
    parser.add_argument("--min-support", type=float, default=1e-3)
    parser.add_argument("--out", required=True, help="folder for sN.npz")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    os.makedirs(args.out, exist_ok=True)
    profile = get_profile(args.profile)
    X, y, _, _ = _load_data(profile)
    scenarios = benchmark_scenarios(
        X.shape[1:], profile.max_value, profile.min_contrast
    )
    params = dict(parse_defense_params(args.params), rescue_epochs=args.epochs)
    for index in (int(s) for s in args.scenarios.split(",")):
        path = os.path.join(args.out, f"s{index}.npz")
        if not os.path.exists(path):
            X_p, y_p, poison = scenarios[index].attack.poison(X, y)
            ispl, _, _ = _build_defense(
                ISPLFilter, params, {"random_state": args.seed}, strict=True
            )
            ispl.fit(X_p, y_p)
            extra = label_traces(ispl, X_p, y_p, args.rescue_seeds, args.epochs)
            np.savez(
                path,
                traces=np.stack([ispl.rescue_scores_, *extra]),
                refine_keep=ispl.refine_keep_mask_,
                support=ispl.refine_scores_,
                poison=poison,
            )
        saved = np.load(path)
        removed = ~saved["refine_keep"]
        poison = saved["poison"]
        given_back = []
        for trace in saved["traces"]:
            keep = rescue(
                ~removed, trace, saved["support"], args.bounds, args.min_support
            )
            back = keep & removed
            given_back.append(f"{(back & ~poison).sum()} / {(back & poison).sum()}")
        print(
            f"scenario {index}: refine removed {(removed & ~poison).sum()} clean, "
            f"{(removed & poison).sum()} of {poison.sum()} poisoned; given back "
            f"(clean / poisoned, per seed): {', '.join(given_back)}"
        )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
