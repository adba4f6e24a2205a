"""Whether ISPLFilter's decision depends on n_jobs or the joblib backend.

Fits the filter on one benchmark scenario once per ``--runs`` entry (an
``n_jobs`` value, optionally with a joblib backend: ``2``, ``-1``,
``loky:2``, ``threading:2``), all with the same ``random_state``, and
prints for each how many samples its ``keep_mask_`` decides differently from
the first run's, its poison kept (FN), clean samples removed (FP) and fit
seconds. Zero differences everywhere is the claim of the ``n_jobs``
documentation.

Usage::

    python benchmarks/determinism.py --n-train 60000 --scenario 4 \\
        --runs 1 2 -1 loky:2 --out benchmarks/results/determinism/default-60k.json
"""

import argparse
import time

from joblib import parallel_backend
from stages import (
    add_fit_arguments,
    fit_params,
    load_scenario,
    run_record,
    save_result,
)

from sklearn_ispl import ISPLFilter
from sklearn_ispl.benchmark import make_defense
from sklearn_ispl.cli import _add_threads, _set_threads


def parse_run(text):
    """``"2"`` -> (None, 2); ``"loky:2"`` -> ("loky", 2)."""
    backend, _, n_jobs = text.rpartition(":")
    return backend or None, int(n_jobs)


def fit(params, n_jobs, backend, X, y, seed):
    ispl, _, _ = make_defense(
        ISPLFilter, params, {"random_state": seed, "n_jobs": n_jobs}, strict=True
    )
    tic = time.perf_counter()
    if backend is None:
        ispl.fit(X, y)
    else:
        with parallel_backend(backend, n_jobs=n_jobs):
            ispl.fit(X, y)
    return ispl, time.perf_counter() - tic


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_fit_arguments(parser)
    parser.add_argument("--runs", nargs="+", default=["1", "2", "-1", "loky:2"])
    parser.add_argument("--seed", type=int, default=0, help="random_state")
    _add_threads(parser)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    _set_threads(parser, args.threads)
    runs = [parse_run(text) for text in args.runs]
    params = fit_params(args)
    _, _, (_, _, X_p, y_p, poison), _ = load_scenario(
        args.profile, args.n_train, args.scenario
    )
    result = run_record("determinism.py", argv, params, poison)
    reference = None
    for (backend, n_jobs), text in zip(runs, args.runs, strict=True):
        ispl, seconds = fit(params, n_jobs, backend, X_p, y_p, args.seed)
        keep = ispl.keep_mask_
        if reference is None:
            reference = keep
        row = {
            "run": text,
            "backend": backend or "default",
            "n_jobs": n_jobs,
            "fit_seconds": round(seconds, 1),
            "FN": int((keep & poison).sum()),
            "FP": int((~keep & ~poison).sum()),
            "differs_from_first": int((keep != reference).sum()),
            "stage_seconds": {k: round(v, 1) for k, v in ispl.stage_times_.items()},
        }
        result["runs"].append(row)
        print(
            f"{text:>10}: {row['differs_from_first']} decisions differ from "
            f"{args.runs[0]}; FN {row['FN']} FP {row['FP']} ({seconds:.0f} s)",
            flush=True,
        )
        save_result(args.out, result)
    same = all(r["differs_from_first"] == 0 for r in result["runs"])
    print("identical keep_mask_ for every run" if same else "the runs differ")
    return result


if __name__ == "__main__":
    main()
