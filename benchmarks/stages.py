"""One ISPL fit on one benchmark scenario, stage by stage.

For a scenario of a benchmark profile (optionally on more training images),
fits ISPLFilter with the given settings and prints the poisoned samples kept
(FN) and clean samples removed (FP) after the vote and at the end; then
trains the benchmark's final classifier on the kept samples and prints its
clean accuracy C and attack success A. This is how one lever is measured
at a time without running every baseline.

Usage::

    python benchmarks/stages.py --profile quick --n-train 60000 --scenario 4 \\
        --params large --set '{"refine_keep_ratio": 1.0}' \\
        --out benchmarks/results/stages/large-argmax-s4.json

``--params`` takes an ISPL preset name or settings as JSON; ``--set`` adds
or overrides settings (JSON).
"""

import argparse
import json
import os
import sys
import time
from dataclasses import replace

import numpy as np

from sklearn_ispl import ISPLFilter
from sklearn_ispl._images import infer_layout, to_nchw
from sklearn_ispl.benchmark import (
    _build_defense,
    _jsonable,
    benchmark_scenarios,
    get_profile,
    parse_defense_params,
)
from sklearn_ispl.benchmark._data import _evaluate, _load_data
from sklearn_ispl.benchmark._results import _git_commit, _machine, _write_json_atomic
from sklearn_ispl.benchmark._runner import _FinalModel


def counts(keep, poison):
    """Poisoned samples kept and clean samples removed."""
    return {"FN": int((keep & poison).sum()), "FP": int((~keep & ~poison).sum())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--n-train", type=int, default=None)
    parser.add_argument("--scenario", type=int, required=True)
    parser.add_argument("--params", default="fast")
    parser.add_argument("--set", default="{}", help="settings to override (JSON)")
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    params = {**parse_defense_params(args.params), **json.loads(args.set)}
    commit, dirty = _git_commit()

    profile = get_profile(args.profile)
    if args.n_train is not None:
        profile = replace(profile, n_train=args.n_train)
    X, y, X_test, y_test = _load_data(profile)
    scenario = benchmark_scenarios(
        X.shape[1:], profile.max_value, profile.min_contrast
    )[args.scenario]
    X_p, y_p, poison = scenario.attack.poison(X, y)
    run_params = {"random_state": profile.seed, "n_jobs": args.n_jobs}
    ispl, _, _ = _build_defense(ISPLFilter, params, run_params, strict=True)
    start = time.perf_counter()
    ispl.fit(X_p, y_p)
    seconds = time.perf_counter() - start
    result = {
        "command": " ".join(["python benchmarks/stages.py", *(argv or sys.argv[1:])]),
        "git_commit": commit,
        "git_dirty": dirty,
        "machine": _machine("cpu"),
        "n_train": len(y),
        "n_poison": int(poison.sum()),
        "settings": _jsonable(params),
        "fit_seconds": seconds,
        "stage_seconds": ispl.stage_times_,
        "vote": counts(ispl.vote_keep_mask_, poison),
        "final": counts(ispl.keep_mask_, poison),
        "poison_per_component": [int(poison[c].sum()) for c in ispl.components_],
    }
    print(
        f"fit {seconds:.0f} s; vote: FN {result['vote']['FN']} FP "
        f"{result['vote']['FP']}; final: FN {result['final']['FN']} FP "
        f"{result['final']['FP']} of {len(y)} ({int(poison.sum())} poisoned)",
        flush=True,
    )

    nchw = to_nchw(X, infer_layout(X.shape))
    model = _FinalModel(
        nchw.shape[1:],
        int(max(y.max(), y_test.max())) + 1,
        float(np.mean(nchw, dtype=np.float64)),
        float(np.std(nchw, dtype=np.float64)) or 1.0,
        profile.final_epochs,
        profile.final_params,
        profile.seed,
        "cpu",
    ).fit(X_p[ispl.keep_mask_], y_p[ispl.keep_mask_])
    result.update(_evaluate(model, scenario, X_test, y_test))
    print(f"final classifier: C {result['C']:.1%} A {result['A']:.1%}", flush=True)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        _write_json_atomic(args.out, result)
    return result


if __name__ == "__main__":
    main()
