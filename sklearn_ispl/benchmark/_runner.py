"""The run: :func:`run_benchmark`, one scenario and one defense at a time."""

import functools
import logging
import os
import shutil
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ..metrics import clean_accuracy, filter_report
from ._data import _evaluate, _FinalModel, _load_data
from ._defenses import (
    _for_scenario,
    _resolve_defense,
    available_defenses,
    make_defense,
    parse_defense_params,
)
from ._profiles import get_profile
from ._report import _pct, _stored_summary, _summary_lines, write_report
from ._results import (
    RESULTS_FORMAT,
    _git_commit,
    _jsonable,
    _load_results,
    _machine,
    _profile_record,
    _write_json_atomic,
)
from ._scenarios import SUITES, select_scenarios, suite_scenarios

# The package's logger (``sklearn_ispl.benchmark``), the one
# :func:`~sklearn_ispl.benchmark.run_benchmark` sends its log file to.
logger = logging.getLogger(__package__)


def _say(message, progress, bar=None):
    logger.info(message)
    if progress:
        if bar is not None:
            bar.write(message)
        else:
            print(message, flush=True)


def run_benchmark(
    profile="smoke",
    out=None,
    *,
    scenarios=None,
    suite="paper",
    defenses=None,
    defense_params=None,
    n_jobs=None,
    device=None,
    data_path=None,
    command=None,
    progress=True,
):
    """Run (or resume) a benchmark and write its results and report.

    Parameters
    ----------
    profile : str or BenchmarkProfile, default="smoke"
        ``"smoke"``, ``"quick"``, ``"full"`` (see :data:`PROFILES`) or a
        profile made with :func:`get_profile`.
    out : str or path-like, default=None
        Output folder (created if needed); None:
        ``benchmarks/results/<profile>`` under the working directory, or
        ``benchmarks/results/<profile>-robust`` for the robust suite.
    scenarios : str or sequence, default=None
        Scenarios of the suite to run, as for :func:`select_scenarios`;
        None: the profile's default (all of them for ``quick`` and
        ``full``).
    suite : {"paper", "robust"}, default="paper"
        The paper's 24 scenarios (:func:`benchmark_scenarios`) or the
        robust suite's 21 (:func:`robust_scenarios`): blended and
        varying-stamp triggers, two attacks at once and a clean scenario.
        One output folder holds one suite.
    defenses : sequence of str, default=None
        Defenses to run, by key or alias (``"none"`` alone: no defense
        column only); None: every defense the package offers. Missing ones
        are skipped with a note.
    defense_params : dict, default=None
        Per defense (key or alias), settings that replace the profile's: a
        dict, JSON text, ``@file.json`` or an ISPL preset name (see
        :func:`parse_defense_params`), possibly with ``per_eps`` values as
        in :class:`BenchmarkProfile`. Unknown parameters raise.
    n_jobs : int, default=None
        Passed to every defense that takes ``n_jobs``.
    device : str, default=None
        Torch device; None: the profile's (falls back to "cpu" when CUDA is
        not available).
    data_path : str or path-like, default=None
        Folder of the Fashion-MNIST files (None: the Debian package's).
    command : str, default=None
        The command line to record (default: ``sys.argv``).
    progress : bool, default=True
        Print one line per scenario and defense (the log file gets them
        regardless).

    Returns
    -------
    results : dict
        The content of ``results.json``: ``profile``, ``runs`` (command,
        git commit, machine and times of each invocation),
        ``clean_training``, ``scenarios`` (keyed by scenario id),
        ``notes`` and ``summary`` (for the robust suite: ``suite`` too,
        and the summary per attack family, :func:`summarize_families`).

    Raises
    ------
    ValueError
        If a setting is invalid, or ``out`` holds results of a profile with
        other data or final-classifier settings, or of the other suite.

    Notes
    -----
    Resume: ``results.json`` is rewritten (atomically) after the no-defense
    model and after each defense of each scenario. A re-run with the same
    output folder skips every (scenario, defense) pair already there and
    computes the rest, so adding a defense later costs only that defense. A
    defense whose settings differ from those stored is an error: compare
    settings in separate output folders. A defense that raises is recorded
    with its error and retried on the next run.
    """
    import torch

    profile = get_profile(profile)
    if suite not in SUITES:
        raise ValueError(f"Unknown suite {suite!r}; choose one of {', '.join(SUITES)}.")
    device = device or profile.device
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        logger.warning("CUDA is not available; running on CPU.")
        device = "cpu"
    if out is None:
        name = profile.name if suite == "paper" else f"{profile.name}-{suite}"
        out = Path("benchmarks/results") / name
    out = Path(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"

    # The log file gets every line; the console gets the progress lines
    # (printed) and warnings, not the INFO records a second time.
    handler = logging.FileHandler(out / "benchmark.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.addHandler(console)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        return _run(
            profile,
            out,
            results_path,
            scenarios,
            suite,
            defenses,
            defense_params,
            n_jobs,
            device,
            data_path,
            command,
            progress,
        )
    except BaseException:
        if created and not results_path.exists():
            # A run refused before its first result (a bad selection, say)
            # leaves no folder of its own behind.
            handler.close()
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        for h in (handler, console):
            logger.removeHandler(h)
            h.close()
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def _defense_settings(profile, defense_params):
    """Per defense key: (settings, strict) with overrides applied."""
    settings = {}
    for key, value in profile.defense_params.items():
        settings[key] = (parse_defense_params(value, key), False)
    for name, value in (defense_params or {}).items():
        spec = _resolve_defense(name)
        settings[spec.key] = (parse_defense_params(value, spec.key), True)
    return settings


def _attack_text(scores):
    """`` A=..%`` of a progress line; nothing for a scenario without attack."""
    return f" A={_pct(scores['A'])}%" if "A" in scores else ""


def _train_final(model_factory, X, y):
    """Train a final classifier (one place, so tests can count trainings)."""
    return model_factory().fit(X, y)


def _final_scores(model_factory, seeds, X, y, scenario, X_test, y_test):
    """C and A of the final classifier trained on ``X, y`` once per seed.

    Returns ``(scores, seconds)``: with several seeds, C, A and
    ``A_per_attack`` are the means of the trainings' values, which
    ``C_seeds`` and ``A_seeds`` list; ``seconds`` is the time of one
    training (the mean).
    """
    runs, seconds = [], 0.0
    for model, took in _train_seeds(model_factory, seeds, X, y):
        seconds += took
        runs.append(_evaluate(model, scenario, X_test, y_test))
    return _mean_scores(runs), seconds / len(seeds)


def _train_seeds(model_factory, seeds, X, y):
    """Train the final classifier on ``X, y`` once per seed; yield each
    model with its training seconds."""
    for seed in seeds:
        t0 = time.perf_counter()
        model = _train_final(functools.partial(model_factory, seed), X, y)
        yield model, time.perf_counter() - t0


def _mean_scores(runs):
    """One score dict from the score dicts of several trainings."""
    if len(runs) == 1:
        return runs[0]
    scores = {}
    for key in ("C", "A"):
        if key in runs[0]:
            values = [run[key] for run in runs]
            scores[key] = float(np.mean(values))
            scores[f"{key}_seeds"] = values
    if "A_per_attack" in runs[0]:
        per_attack = np.mean([run["A_per_attack"] for run in runs], axis=0)
        scores["A_per_attack"] = per_attack.tolist()
    return scores


def _run(
    profile,
    out,
    results_path,
    selection,
    suite,
    defense_names,
    defense_params,
    n_jobs,
    device,
    data_path,
    command,
    progress,
):
    from tqdm.auto import tqdm

    started = time.perf_counter()
    results = _load_results(results_path, profile, suite)
    if results is None:
        results = {
            "format": RESULTS_FORMAT,
            "profile": _profile_record(profile),
            "runs": [],
            "clean_training": None,
            "scenarios": {},
            "notes": [],
        }
        # Files of the paper suite stay as they were: without the key.
        if suite != "paper":
            results["suite"] = suite
    settings = _defense_settings(profile, defense_params)

    if defense_names is not None and [n.strip().lower() for n in defense_names] == [
        "none"
    ]:
        found, missing = [], []
    else:
        found, missing = available_defenses(defense_names)
    # Notes tell about the last run: a defense missing then may exist now.
    results["notes"] = []
    for spec in missing:
        note = f"{spec.class_name} ({spec.label}) is not in this sklearn_ispl; skipped."
        _say(note, progress)
        results["notes"].append(note)

    commit, dirty = _git_commit()
    run_record = {
        "command": command if command is not None else " ".join(sys.argv),
        "git_commit": commit,
        "git_dirty": dirty,
        "machine": _machine(device),
        "n_jobs": n_jobs,
        "defenses": [spec.key for spec, _ in found],
        "defense_params": {
            spec.key: _jsonable(settings.get(spec.key, ({}, False))[0])
            for spec, _ in found
        },
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    results["runs"].append(run_record)
    run_index = len(results["runs"]) - 1

    X_train, y_train, X_test, y_test = _load_data(profile, data_path)
    image_shape = X_train.shape[1:]
    all_scenarios = suite_scenarios(
        suite, image_shape, profile.max_value, profile.min_contrast
    )
    if selection is None:
        selection = profile.scenarios if suite == "paper" else profile.robust_scenarios
    chosen = select_scenarios(all_scenarios, selection)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    from .._images import infer_layout, to_nchw

    nchw = to_nchw(X_train, infer_layout(X_train.shape))
    mean = float(np.mean(nchw, dtype=np.float64))
    std = float(np.std(nchw, dtype=np.float64)) or 1.0

    seeds = [profile.seed + i for i in range(profile.final_seeds)]

    def model_factory(seed=profile.seed):
        return _FinalModel(
            nchw.shape[1:],
            n_classes,
            mean,
            std,
            profile.final_epochs,
            profile.final_params,
            seed,
            device,
        )

    _say(
        f"benchmark {profile.name}: {len(X_train)} training / {len(X_test)} test "
        f"images, {len(chosen)} scenario(s), defenses: "
        f"{', '.join(spec.label for spec, _ in found) or 'none'}; output {out}",
        progress,
    )

    clean = {"model": None, "pred": None}
    cache = out / "cache"

    def clean_model():
        """The model trained on the clean training set, trained at most once."""
        if clean["model"] is not None:
            return clean["model"], clean["pred"]
        model = model_factory()
        path = cache / "clean_model.pt"
        if path.exists() and results.get("clean_training"):
            model.load(path)
            _say("clean model: loaded from cache", progress)
        else:
            t0 = time.perf_counter()
            model = _train_final(model_factory, X_train, y_train)
            seconds = time.perf_counter() - t0
            cache.mkdir(exist_ok=True)
            model.save(path)
            pred = model.predict(X_test)
            results["clean_training"] = {
                "C": clean_accuracy(y_test, pred),
                "train_seconds": round(seconds, 2),
            }
            if len(seeds) > 1:
                # M comes from the first training alone; C from every seed.
                values = [results["clean_training"]["C"]]
                values += [
                    clean_accuracy(y_test, other.predict(X_test))
                    for other, _ in _train_seeds(
                        model_factory, seeds[1:], X_train, y_train
                    )
                ]
                results["clean_training"].update(
                    C=float(np.mean(values)), C_seeds=values
                )
            _write_json_atomic(results_path, results)
            _say(
                f"clean model: C={100 * results['clean_training']['C']:.1f}% "
                f"({seconds:.1f} s)",
                progress,
            )
        clean["model"] = model
        clean["pred"] = model.predict(X_test)
        return clean["model"], clean["pred"]

    bar = tqdm(chosen, desc="scenarios", unit="scenario", disable=None)
    for scenario in bar:
        record = results["scenarios"].get(scenario.id)
        if record is None or record.get("scenario") != scenario.describe():
            record = {"scenario": scenario.describe(), "defenses": {}}
        todo = [
            (spec, cls)
            for spec, cls in found
            if "C" not in record["defenses"].get(spec.key, {})
        ]
        for spec, _ in found:
            done = record["defenses"].get(spec.key)
            if done and "C" in done:
                now = _jsonable(settings.get(spec.key, ({}, False))[0])
                if done.get("params") != now:
                    raise ValueError(
                        f"{results_path} has {spec.key} results for scenario "
                        f"{scenario.id} with settings {done.get('params')}, not "
                        f"{now}; compare settings in separate output folders."
                    )
        triggers = scenario.triggers()
        # The clean scenario has no attack, hence no M.
        needs_m = bool(triggers) and "M" not in record
        if not needs_m and "no_defense" in record and not todo:
            _say(f"[{scenario.id}] done already; skipped", progress, bar)
            continue

        X_p, y_p, poison_ids = scenario.poison(X_train, y_train)
        poison = poison_ids >= 0
        record["n_train"] = int(len(y_p))
        record["n_poison"] = int(poison.sum())
        sources = [int((y_test == source).sum()) for source, _, _ in triggers]
        if suite == "paper":
            record["n_test_source"] = sources[0]
        else:
            record["n_test_source"] = sources
            record["n_poison_per_attack"] = [
                int((poison_ids == k).sum()) for k in range(len(triggers))
            ]
        label = f"[{scenario.id}] {scenario.trigger_text()}"

        if needs_m:
            model, pred = clean_model()
            scores = _evaluate(model, scenario, X_test, y_test, pred)
            record["M"] = scores["A"]
            if "A_per_attack" in scores:
                record["M_per_attack"] = scores["A_per_attack"]
        if "no_defense" not in record:
            scores, train_seconds = _final_scores(
                model_factory, seeds, X_p, y_p, scenario, X_test, y_test
            )
            record["no_defense"] = {
                **scores,
                "train_seconds": round(train_seconds, 2),
                "run": run_index,
            }
            results["scenarios"][scenario.id] = record
            # Table, plot and summary follow each finished scenario, so an
            # interrupted suite leaves a consistent report of what it ran.
            results["summary"] = _stored_summary(results)
            _write_json_atomic(results_path, results)
            write_report(results, out)
            nd = record["no_defense"]
            m = f"; M={_pct(record['M'])}%" if "M" in record else ""
            _say(
                f"{label}: {record['n_poison']} poisoned{m} | no defense "
                f"C={_pct(nd['C'])}%{_attack_text(nd)} (train {train_seconds:.1f} s)",
                progress,
                bar,
            )

        for spec, cls in todo:
            params, strict = settings.get(spec.key, ({}, False))
            record["defenses"][spec.key] = _run_defense(
                spec,
                cls,
                params,
                strict,
                profile,
                scenario,
                device,
                n_jobs,
                X_p,
                y_p,
                poison_ids,
                X_test,
                y_test,
                model_factory,
                seeds,
                run_index,
                label,
                progress,
                bar,
            )
            results["scenarios"][scenario.id] = record
            # Table, plot and summary follow each finished scenario, so an
            # interrupted suite leaves a consistent report of what it ran.
            results["summary"] = _stored_summary(results)
            _write_json_atomic(results_path, results)
            write_report(results, out)

    run_record["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    run_record["seconds"] = round(time.perf_counter() - started, 1)
    if hasattr(os, "getloadavg"):
        run_record["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    results["summary"] = _stored_summary(results)
    _write_json_atomic(results_path, results)
    write_report(results, out)
    for line in _summary_lines(results):
        _say(line, progress)
    return results


def _run_defense(
    spec,
    cls,
    params,
    strict,
    profile,
    scenario,
    device,
    n_jobs,
    X_p,
    y_p,
    poison_ids,
    X_test,
    y_test,
    model_factory,
    seeds,
    run_index,
    label,
    progress,
    bar,
):
    """Fit one defense, train the final model on what it kept, evaluate."""
    run_params = {
        "random_state": profile.seed,
        "n_jobs": n_jobs,
        "device": device,
        "verbose": 0,
    }
    entry = {"class": spec.class_name, "params": _jsonable(params), "run": run_index}
    try:
        resolved = _for_scenario(params, scenario.eps)
        defense, applied, ignored = make_defense(cls, resolved, run_params, strict)
        if ignored:
            entry["ignored_params"] = _jsonable(ignored)
            logger.warning(
                "%s has no parameter(s) %s; the profile's values for them were "
                "ignored.",
                spec.class_name,
                sorted(ignored),
            )
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            defense.fit(X_p, y_p)
        fit_seconds = time.perf_counter() - t0
        messages = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
        for message in messages:
            logger.info("%s on %s warned: %s", spec.class_name, scenario.id, message)
        if messages:
            entry["warnings"] = messages
        keep = np.asarray(defense.keep_mask_, dtype=bool)
        poison = poison_ids >= 0
        report = filter_report(poison, keep)
        scores, train_seconds = _final_scores(
            model_factory, seeds, X_p[keep], y_p[keep], scenario, X_test, y_test
        )
    except Exception as exc:  # one broken defense must not end a long run
        logger.exception("%s failed on %s", spec.class_name, scenario.id)
        entry["error"] = f"{type(exc).__name__}: {exc}"
        _say(f"{label}: {spec.label} FAILED: {entry['error']}", progress, bar)
        return entry
    entry.update(
        {
            **scores,
            "FP": report["false_positives"],
            "FN": report["false_negatives"],
            "n_removed": report["n_removed"],
            "FP_rate": report["false_positive_rate"],
            "FN_rate": report["false_negative_rate"],
            "seconds": round(fit_seconds, 2),
            "train_seconds": round(train_seconds, 2),
        }
    )
    n_attacks = len(scenario.triggers())
    if n_attacks == 0:
        # Nothing was poisoned: no poison to keep, no FN.
        del entry["FN"], entry["FN_rate"]
        kept = ""
    else:
        kept = f" FN={entry['FN']}/{report['n_poison']}"
    if n_attacks > 1:
        entry["FN_per_attack"] = [
            int((keep & (poison_ids == k)).sum()) for k in range(n_attacks)
        ]
    _say(
        f"{label}: {spec.label} C={_pct(entry['C'])}%{_attack_text(entry)} "
        f"FP={entry['FP']}{kept} "
        f"(defense {fit_seconds:.1f} s, train {train_seconds:.1f} s)",
        progress,
        bar,
    )
    return entry
