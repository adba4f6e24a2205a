"""One ISPL fit on one benchmark scenario, stage by stage.

For a scenario of a benchmark profile (optionally on more training images),
fits ISPLFilter with the given settings and prints the poisoned samples kept
(FN) and clean samples removed (FP) after the vote (``vote_keep_mask_``),
after the refine stage (``refine_keep_mask_``) and at the end
(``keep_mask_``, after the extra stages), with what each extra stage found
(the trigger-blind judge's backed samples, the rescue's give-backs, the
stamped-trigger check's carriers); then trains the benchmark's final
classifier on the kept samples and prints its clean accuracy C and attack
success A. This is how one lever is measured at a time without running
every baseline. ``--seeds`` repeats the fit with several ``random_state``
values of the defense (the scenario and the final classifier's seed stay
fixed), to see whether a result holds beyond one seed. ``--no-defense``
also trains the final classifier once on the unfiltered data, for the
attack's strength without a defense.

Usage::

    python benchmarks/stages.py --profile quick --n-train 60000 --scenario 4 \\
        --params large --set '{"refiner__keep_ratio": 1.0}' \\
        --out benchmarks/results/stages/large-argmax-s4.json
    python benchmarks/stages.py --profile quick --n-train 60000 --scenario 20 \\
        --params large --extra-stages \\
        '["TriggerBlindJudge", {"Rescue": {"n_epochs": 4}},
          {"StampedTriggerCheck": {"mode": "replace"}}]'
    python benchmarks/stages.py --profile smoke --scenario 17 --params small \\
        --seeds 0 1 2 3 4

``--params`` takes a schedule name (``auto``, ``paper``, ``small``,
``medium``, ``large``) or ISPLFilter settings as JSON (read by
``sklearn_ispl.benchmark.parse_defense_params``); ``--set`` adds or
overrides settings (JSON); ``--extra-stages`` replaces the schedule's extra
stages by a JSON list of stage names of ``sklearn_ispl.experimental``, each
alone or as ``{name: {parameter: value}}`` (``[]`` runs none). The filter
is built with ``sklearn_ispl.benchmark.make_defense``; every run records the
resolved ``schedule_`` and the ``stage_times_``. ``--clean-judge E`` also
trains the filter's refine learner for E epochs on the clean samples with
their true labels (a model that never saw the trigger nor a poisoned label)
and prints how many poisoned samples it calls the target class, among all of
them and among those the filter kept: whether the poison a filter keeps
looks like the target class to a clean model, or was kept for another
reason.
"""

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from functools import partial

import numpy as np

from sklearn_ispl import ISPLFilter, experimental
from sklearn_ispl._images import infer_layout, to_nchw
from sklearn_ispl._learners import build_learner
from sklearn_ispl._validation import prepare_data
from sklearn_ispl.benchmark import (
    _jsonable,
    benchmark_scenarios,
    get_profile,
    make_defense,
    parse_defense_params,
)
from sklearn_ispl.benchmark._data import _evaluate, _load_data
from sklearn_ispl.benchmark._results import _git_commit, _machine, _write_json_atomic
from sklearn_ispl.benchmark._runner import _FinalModel
from sklearn_ispl.cli import _add_threads, _set_threads


def counts(keep, poison):
    """Poisoned samples kept and clean samples removed."""
    return {"FN": int((keep & poison).sum()), "FP": int((~keep & ~poison).sum())}


def add_fit_arguments(parser):
    """The options that pick a scenario and the ISPLFilter settings."""
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--n-train", type=int, default=None)
    parser.add_argument("--scenario", type=int, required=True)
    add_settings_arguments(parser)


def add_settings_arguments(parser):
    """``--params``, ``--set``, ``--extra-stages`` and ``--n-jobs`` (read by
    :func:`fit_params`); the speed and memory scripts take them too."""
    parser.add_argument(
        "--params", default="auto", help="schedule name or ISPLFilter settings (JSON)"
    )
    parser.add_argument("--set", default="{}", help="settings to override (JSON)")
    parser.add_argument(
        "--extra-stages",
        default=None,
        metavar="JSON",
        help="the extra stages, replacing the schedule's: a JSON list of "
        "stage names of sklearn_ispl.experimental or {name: {param: value}}",
    )
    parser.add_argument("--n-jobs", type=int, default=None)


def parse_stages(text):
    """Stage objects of :mod:`sklearn_ispl.experimental` from a JSON list."""
    items = json.loads(text)
    if not isinstance(items, list):
        raise ValueError(f"--extra-stages must be a JSON list; got {text!r}.")
    stages = []
    for item in items:
        name, params = (item, {}) if isinstance(item, str) else next(iter(item.items()))
        if name not in experimental.__all__ or name in ("ExtraStage", "FitState"):
            raise ValueError(f"Unknown stage {name!r} in --extra-stages.")
        stages.append(getattr(experimental, name)(**params))
    return stages


def fit_params(args):
    """The ISPLFilter settings of ``--params``, ``--set`` and ``--extra-stages``."""
    params = {**parse_defense_params(args.params), **json.loads(args.set)}
    if args.extra_stages is not None:
        params["extra_stages"] = parse_stages(args.extra_stages)
    return params


def run_record(script, argv, params, poison):
    """The header of a results JSON: command, commit, machine, settings."""
    commit, dirty = _git_commit()
    return {
        "command": " ".join([f"python benchmarks/{script}", *(argv or sys.argv[1:])]),
        "git_commit": commit,
        "git_dirty": dirty,
        "machine": _machine("cpu"),
        "n_train": len(poison),
        "n_poison": int(poison.sum()),
        "settings": _jsonable(params),
        "runs": [],
    }


def save_scenario(out, result, name, entry):
    """Record ``entry`` as scenario ``name`` of ``result``, with the commit it
    ran at, and write ``result`` to ``out`` (see :func:`save_result`)."""
    result["scenarios"][name] = entry
    commit, dirty = _git_commit()
    result["runs"].append({"scenario": name, "git_commit": commit, "git_dirty": dirty})
    save_result(out, result)


def save_result(out, result):
    """Write ``result`` as JSON to ``out`` (None: nowhere), creating its folder;
    atomically, so a run stopped mid-write leaves the previous file."""
    if out:
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
        _write_json_atomic(out, result)


def load_scenario(profile_name, n_train, index):
    """A profile (with ``n_train`` training images if given) and its poisoned scenario.

    Returns the profile, the scenario, ``(X, y, X_poisoned, y_poisoned,
    poison_mask)`` and the test arrays ``(X_test, y_test)``.
    """
    profile = get_profile(profile_name)
    if n_train is not None:
        profile = replace(profile, n_train=n_train)
    X, y, X_test, y_test = _load_data(profile)
    scenario = benchmark_scenarios(
        X.shape[1:], profile.max_value, profile.min_contrast
    )[index]
    return profile, scenario, (X, y, *scenario.attack.poison(X, y)), (X_test, y_test)


def stage_findings(ispl, poison):
    """What each extra stage of a fitted filter found, counted against the poison."""
    found = {}
    for stage in ispl.extra_stages_:
        name = type(stage).__name__
        if hasattr(stage, "backed_"):
            found[name] = {
                "poison_not_backed": int((~stage.backed_ & poison).sum()),
                "clean_not_backed": int((~stage.backed_ & ~poison).sum()),
            }
        elif hasattr(stage, "rescued_"):
            found[name] = {
                "rescued_poison": int((stage.rescued_ & poison).sum()),
                "rescued_clean": int((stage.rescued_ & ~poison).sum()),
            }
        elif hasattr(stage, "groups_"):
            found[name] = {
                "removed_poison": int((stage.removed_ & poison).sum()),
                "removed_clean": int((stage.removed_ & ~poison).sum()),
                "flagged": [
                    g
                    for g in _jsonable(stage.groups_)
                    if g.get("flagged") or g.get("incompatible")
                ],
            }
        elif hasattr(stage, "carriers_"):
            found[name] = {
                "carriers_poison": int((stage.carriers_ & poison).sum()),
                "carriers_clean": int((stage.carriers_ & ~poison).sum()),
                "pairs_found": [
                    pair for pair in _jsonable(stage.pairs_) if pair["found"]
                ],
            }
    return found


def fit_once(params, seed, n_jobs, X, y, poison):
    """Fit ISPLFilter once: counts after each stage, what the stages found."""
    run_params = {"random_state": seed, "n_jobs": n_jobs}
    ispl, _, _ = make_defense(ISPLFilter, params, run_params, strict=True)
    start = time.perf_counter()
    ispl.fit(X, y)
    seconds = time.perf_counter() - start
    run = {
        "random_state": seed,
        "fit_seconds": seconds,
        "schedule": _jsonable(ispl.schedule_),
        "stage_seconds": ispl.stage_times_,
        "vote": counts(ispl.vote_keep_mask_, poison),
        "refine": counts(ispl.refine_keep_mask_, poison),
        "final": counts(ispl.keep_mask_, poison),
        "poison_per_component": [int(poison[c].sum()) for c in ispl.components_],
        "extra_stages": stage_findings(ispl, poison),
    }
    times = ", ".join(f"{k} {v:.0f} s" for k, v in ispl.stage_times_.items())
    print(
        f"seed {seed}: schedule {ispl.schedule_['schedule']}, fit {seconds:.0f} s "
        f"({times}); vote: FN {run['vote']['FN']} FP {run['vote']['FP']}; "
        f"refine: FN {run['refine']['FN']} FP {run['refine']['FP']}; final: FN "
        f"{run['final']['FN']} FP {run['final']['FP']} of {len(y)} "
        f"({int(poison.sum())} poisoned); extra stages {run['extra_stages']}",
        flush=True,
    )
    return run, ispl


def fresh_refine_model(ispl, data):
    """An untrained copy of a fitted filter's refine learner, with its seed."""
    # The fitted record names the learner; the settings resolve it again.
    learner = ispl._resolve(data)["refine_learner"]
    return build_learner(learner, data, ispl.random_state, ispl.device)


def clean_judge(ispl, data, poison, target, epochs):
    """Poisoned samples a model trained on clean samples only calls the target.

    The model trains, epoch by epoch, on the rows that are not poisoned with
    their true labels; after each epoch it is asked about every poisoned
    image (trigger included). ``data`` holds the poisoned images with their
    true labels, prepared once for every seed. Returns, per epoch, how many
    of them it calls the target class, and how many of those the filter kept
    it gives a target probability of at least 0.5.
    """
    model = fresh_refine_model(ispl, data)
    poisoned = np.flatnonzero(poison)
    kept = ispl.keep_mask_[poisoned]
    per_epoch = []
    for epoch in range(1, epochs + 1):
        model.fit_epochs(np.flatnonzero(~poison), 1)
        proba = model.predict_proba(poisoned)
        called = int((proba.argmax(axis=1) == target).sum())
        kept_alike = int((proba[kept, target] >= 0.5).sum())
        per_epoch.append(
            {
                "epoch": epoch,
                "poisoned_called_target": called,
                "kept_poisoned_target_p50": kept_alike,
            }
        )
        print(
            f"  clean judge, epoch {epoch}: calls {called} of {len(poisoned)} "
            f"poisoned samples the target; gives {kept_alike} of the "
            f"{int(kept.sum())} kept ones a target probability >= 0.5",
            flush=True,
        )
    return per_epoch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_fit_arguments(parser)
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="random_state values of the defense (default: the profile's seed)",
    )
    _add_threads(parser)
    parser.add_argument(
        "--clean-judge",
        type=int,
        default=0,
        metavar="EPOCHS",
        help="epochs of a refine learner trained on the clean samples only",
    )
    parser.add_argument(
        "--no-defense",
        action="store_true",
        help="also train the final classifier on the unfiltered data once",
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.clean_judge < 0:
        parser.error("--clean-judge must be at least 0")
    _set_threads(parser, args.threads)
    params = fit_params(args)

    profile, scenario, (X, y, X_p, y_p, poison), (X_test, y_test) = load_scenario(
        args.profile, args.n_train, args.scenario
    )
    nchw = to_nchw(X, infer_layout(X.shape))
    final_model = partial(
        _FinalModel,
        nchw.shape[1:],
        int(max(y.max(), y_test.max())) + 1,
        float(np.mean(nchw, dtype=np.float64)),
        float(np.std(nchw, dtype=np.float64)) or 1.0,
        profile.final_epochs,
        profile.final_params,
        profile.seed,
        "cpu",
    )
    result = run_record("stages.py", argv, params, poison)
    judge_data = None
    if args.clean_judge:
        n_classes = int(max(y.max(), y_test.max())) + 1
        judge_data = prepare_data(
            X_p, y.astype(np.int64), n_classes, infer_layout(X_p.shape)
        )
    if args.no_defense:
        model = final_model().fit(X_p, y_p)
        result["no_defense"] = _evaluate(model, scenario, X_test, y_test)
        print(
            f"no defense: C {result['no_defense']['C']:.1%} "
            f"A {result['no_defense']['A']:.1%}",
            flush=True,
        )
    for seed in args.seeds or [profile.seed]:
        run, ispl = fit_once(params, seed, args.n_jobs, X_p, y_p, poison)
        if args.clean_judge:
            run["clean_judge"] = clean_judge(
                ispl, judge_data, poison, scenario.attack.target, args.clean_judge
            )
        keep = ispl.keep_mask_
        model = final_model().fit(X_p[keep], y_p[keep])
        run.update(_evaluate(model, scenario, X_test, y_test))
        print(f"  final classifier: C {run['C']:.1%} A {run['A']:.1%}", flush=True)
        result["runs"].append(run)
    if len(result["runs"]) > 1:
        fn = [run["final"]["FN"] for run in result["runs"]]
        fp = [run["final"]["FP"] for run in result["runs"]]
        asr = [run["A"] for run in result["runs"]]
        print(
            f"over {len(fn)} seeds: final FN {min(fn)}-{max(fn)} (median "
            f"{np.median(fn):g}), FP {min(fp)}-{max(fp)}, A < 1% in "
            f"{sum(a < 0.01 for a in asr)}",
            flush=True,
        )
    save_result(args.out, result)
    return result


if __name__ == "__main__":
    main()
