"""Time ISPLFilter fits against one training of the final classifier.

Prints, for each training-set size N (stratified Fashion-MNIST subsets):
the defense's fit time, the time to train the benchmark's final classifier
once on the same data, and their ratio; then the least-squares slope of fit
time against N (seconds per 1,000 images) and how far each point is from
that line. Timings are only compared within one run: other work on the
machine slows both sides alike.

Usage::

    python benchmarks/speed.py --sizes 5000 10000 20000 60000 \\
        --params '{"n_runs": 2}' --out benchmarks/results/speed.json
"""

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from sklearn_ispl import ISPLFilter, make_weak_learner
from sklearn_ispl._learners import build_learner
from sklearn_ispl._validation import prepare_data
from sklearn_ispl.benchmark import PROFILES
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000, 20000])
    parser.add_argument("--params", default="{}", help="ISPLFilter params (JSON)")
    parser.add_argument("--final-epochs", type=int, default=8)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    params = json.loads(args.params)

    X_all, y_all = load_fashion_mnist()
    rows = []
    for n in args.sizes:
        X, y = _subset(X_all, y_all, n)
        final = time_final_classifier(X, y, args.final_epochs)
        ispl = ISPLFilter(random_state=0, n_jobs=args.n_jobs)
        ispl.set_params(**params)
        start = time.perf_counter()
        ispl.fit(X, y)
        fit = time.perf_counter() - start
        rows.append({"n": n, "fit_s": fit, "final_s": final, "ratio": fit / final})
        print(
            f"N={n:6d}  defense {fit:8.1f} s  final classifier {final:7.1f} s  "
            f"ratio {fit / final:5.2f}",
            flush=True,
        )
    ns = np.array([r["n"] for r in rows], dtype=float)
    ts = np.array([r["fit_s"] for r in rows])
    result = {"rows": rows, "params": params, "final_epochs": args.final_epochs}
    if len(rows) >= 2:
        slope, intercept = np.polyfit(ns, ts, 1)
        residual = ts - (slope * ns + intercept)
        print(
            f"slope {1000 * slope:.2f} s per 1,000 images, intercept "
            f"{intercept:.1f} s, largest deviation from the line "
            f"{np.max(np.abs(residual) / ts):.0%}"
        )
        result.update(slope_s_per_1000=1000 * slope, intercept_s=intercept)
    result["machine"] = {
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
