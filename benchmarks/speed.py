"""Time ISPLFilter fits against one training of the final classifier.

Prints, for each training-set size N (stratified Fashion-MNIST subsets):
the defense's fit time, the time to train the benchmark's final classifier
once on the same data, and their ratio; then the least-squares slope of fit
time against N (seconds per 1,000 images) and how far each point is from
that line. Timings are only compared within one run: other work on the
machine slows both sides alike.

Usage::

    python benchmarks/speed.py --sizes 5000 10000 20000 60000 \\
        --params large --out benchmarks/results/speed/large.json

``--params`` takes a schedule name (``auto``, ``paper``, ``small``,
``medium``, ``large``) or ISPLFilter settings as JSON, ``--set`` overrides
settings and ``--extra-stages`` replaces the schedule's extra stages (as in
``stages.py``); the filter is built with
``sklearn_ispl.benchmark.make_defense``. Each row also gives the resolved
schedule's name and the seconds of every stage (``stage_times_``: partition,
vote, refine and each extra stage); the settings that ran (``schedule_``) are
recorded once per run.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
from stages import add_settings_arguments, fit_params  # the same settings options

from sklearn_ispl import ISPLFilter, make_weak_learner
from sklearn_ispl._learners import build_learner
from sklearn_ispl._validation import prepare_data
from sklearn_ispl.benchmark import (
    PROFILES,
    _jsonable,
    make_defense,
)
from sklearn_ispl.benchmark._results import _git_commit, _machine
from sklearn_ispl.cli import _add_threads, _set_threads
from sklearn_ispl.datasets import load_fashion_mnist


def _subset(X, y, n, seed=0):
    rng = np.random.RandomState(seed)
    per_class = n // 10
    idx = np.concatenate(
        [
            rng.choice(np.flatnonzero(y == c), per_class, replace=False)
            for c in range(10)
        ]
    )
    return X[np.sort(idx)], y[np.sort(idx)]


def time_final_classifier(X, y, epochs, seed=0):
    """Seconds to train the benchmark's final classifier once on ``X, y``."""
    data = prepare_data(X, y.astype(np.int64), 10, "nhw")
    net = make_weak_learner((1, 28, 28), 10, **PROFILES["quick"].final_params)
    learner = build_learner(net, data, seed)
    start = time.perf_counter()
    learner.fit_epochs(np.arange(len(y)), epochs)
    return time.perf_counter() - start


def _provenance():
    """The commit and machine a run comes from, taken once at its start."""
    commit, dirty = _git_commit()
    return {"git_commit": commit, "git_dirty": dirty, "machine": _machine("cpu")}


def summarize(rows, args, params, argv, provenance, schedule=None):
    """Results so far, with the fitted slope once there are two sizes."""
    result = {
        "rows": rows,
        "params": args.params,
        "settings": _jsonable(params),
        "schedule": _jsonable(schedule),
        "final_epochs": args.final_epochs,
        "final_params": PROFILES["quick"].final_params,
        "n_jobs": args.n_jobs,
        "command": " ".join(["python benchmarks/speed.py", *(argv or sys.argv[1:])]),
        **provenance,
    }
    if len(rows) >= 2:
        ns = np.array([r["n"] for r in rows], dtype=float)
        ts = np.array([r["fit_s"] for r in rows])
        slope, intercept = np.polyfit(ns, ts, 1)
        residual = ts - (slope * ns + intercept)
        result.update(
            slope_s_per_1000=1000 * slope,
            intercept_s=intercept,
            largest_relative_deviation=float(np.max(np.abs(residual) / ts)),
        )
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000, 20000])
    add_settings_arguments(parser)
    parser.add_argument("--final-epochs", type=int, default=8)
    _add_threads(parser)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    _set_threads(parser, args.threads)
    params = fit_params(args)
    provenance = _provenance()

    X_all, y_all = load_fashion_mnist()
    rows = []
    schedule = None
    for n in args.sizes:
        X, y = _subset(X_all, y_all, n)
        final = time_final_classifier(X, y, args.final_epochs)
        run_params = {"random_state": 0, "n_jobs": args.n_jobs}
        ispl, _, _ = make_defense(ISPLFilter, params, run_params, strict=True)
        start = time.perf_counter()
        ispl.fit(X, y)
        fit = time.perf_counter() - start
        stages = ispl.stage_times_
        # The settings differ between sizes only when "auto" picks another
        # schedule; the last one is recorded, each row names its own.
        schedule = ispl.schedule_
        rows.append(
            {
                "n": n,
                "schedule": schedule["schedule"],
                "fit_s": fit,
                "final_s": final,
                "ratio": fit / final,
                **stages,
            }
        )
        times = ", ".join(f"{k} {v:.0f} s" for k, v in stages.items())
        print(
            f"N={n:6d}  {schedule['schedule']}: defense {fit:8.1f} s  final "
            f"classifier {final:7.1f} s  ratio {fit / final:5.2f}  ({times})",
            flush=True,
        )
        if args.out:
            # Written after every size, so a stopped run keeps what it measured.
            os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
            with open(args.out, "w") as fh:
                json.dump(
                    summarize(rows, args, params, argv, provenance, schedule),
                    fh,
                    indent=2,
                )
    result = summarize(rows, args, params, argv, provenance, schedule)
    if "slope_s_per_1000" in result:
        print(
            f"slope {result['slope_s_per_1000']:.2f} s per 1,000 images, "
            f"intercept {result['intercept_s']:.1f} s, largest deviation from "
            f"the line {result['largest_relative_deviation']:.0%}"
        )


if __name__ == "__main__":
    main()
