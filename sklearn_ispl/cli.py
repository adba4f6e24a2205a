"""Command-line interface: ``sklearn-ispl {demo,filter,bench}``.

- ``demo``: poison scikit-learn's digits with a backdoor, filter them with
  :class:`~sklearn_ispl.ISPLFilter`, and compare a classifier trained on all
  samples with one trained on the kept samples.
- ``filter``: filter the arrays ``X``, ``y`` of an ``.npz`` file and write the
  kept samples, the keep mask and the scores to another.
- ``bench``: run (or resume) the benchmark of :mod:`sklearn_ispl.benchmark`.

Also reachable as ``python -m sklearn_ispl``.
"""

import argparse
import json
import logging
import shlex
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["main"]

#: ISPLFilter settings of ``demo``: about a minute on 2 CPU cores.
DEMO_FILTER_PARAMS = {
    "n_runs": 2,
    "n_components": 8,
    "voter__n_epochs": 40,
    "refine_rounds": 6,
}
#: Epochs and skorch settings of the demo's final classifier (the smoke
#: benchmark's: a small CNN that reaches about 97% on clean digits).
DEMO_FINAL_EPOCHS = 20
DEMO_FINAL_PARAMS = {"module__n_filters": 16, "module__n_hidden": 64}

_ISPL_OPTIONS = (
    # (option, ISPLFilter parameter, type, help)
    ("--n-runs", "n_runs", int, "independent ISPL runs (paper: 3)"),
    ("--n-components", "n_components", int, "components per run (paper: 8)"),
    ("--warmup-epochs", "warmup_epochs", int, "warm-up epochs per round (paper: 8)"),
    (
        "--epochs-per-iteration",
        "epochs_per_iteration",
        int,
        "epochs after each trim (paper: 4)",
    ),
    ("--expansion", "expansion", float, "expansion factor alpha in (0, 1] (0.25)"),
    ("--momentum", "momentum", float, "loss smoothing in [0, 1) (0.9)"),
    ("--class-floor", "class_floor", float, "per-class kept share (0.125)"),
    ("--vote-epochs", "voter__n_epochs", int, "epochs per component learner (40)"),
    ("--voting", "voter__voting", str, "'sample' (default) or 'component'"),
    ("--min-votes", "voter__min_votes", int, "votes the winning label needs (2)"),
    ("--refine-rounds", "refine_rounds", int, "self-training rounds (paper: 20)"),
    ("--refine-epochs", "refine_epochs", int, "epochs per self-training round (5)"),
    ("--refine-momentum", "refine_momentum", float, "prediction smoothing (0.8)"),
)


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="sklearn-ispl",
        description="Backdoor-poisoning defenses as scikit-learn sample filters.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    demo = commands.add_parser(
        "demo",
        help="poison sklearn digits with a backdoor and filter it (about a minute)",
        description=(
            "Put a dirty-label backdoor into scikit-learn's digits (20%% of the "
            "training zeros get a bright X at the bottom left and the label 8), "
            "filter the training set with ISPLFilter, and compare a classifier "
            "trained on all samples with one trained on the kept samples, on "
            "a held-out test split."
        ),
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed (0)")
    _add_common(demo)
    demo.set_defaults(subparser=demo)

    filt = commands.add_parser(
        "filter",
        help="filter the arrays X, y of an .npz file with ISPLFilter",
        description=(
            "Read arrays X and y from an .npz file (no pickled objects), fit "
            "ISPLFilter, and write the kept X and y, keep_mask and scores "
            "(share of votes for each sample's label) to the output .npz."
        ),
    )
    filt.add_argument("input", type=Path, help=".npz file with arrays X and y")
    filt.add_argument(
        "-o", "--output", type=Path, required=True, help="output .npz file"
    )
    filt.add_argument(
        "--image-shape",
        type=int,
        nargs="+",
        metavar="N",
        help="H W or H W C, when X holds one flattened image per row",
    )
    filt.add_argument(
        "--preset",
        default="fast",
        help="base ISPLFilter settings: fast (the defaults), paper, digits or smoke",
    )
    for option, _, kind, text in _ISPL_OPTIONS:
        filt.add_argument(option, type=kind, help=text)
    filt.add_argument("--seed", type=int, default=0, help="random seed (0)")
    filt.add_argument("--device", default="cpu", help="torch device (cpu)")
    _add_common(filt)
    filt.set_defaults(subparser=filt)

    bench = commands.add_parser(
        "bench",
        help="run or resume the defense benchmark",
        description=(
            "Run the paper's 24 backdoor scenarios against every available "
            "defense and write results.json, results.md and asr.png. A re-run "
            "into the same folder resumes: finished scenarios are skipped."
        ),
    )
    bench.add_argument(
        "--profile", default="smoke", help="smoke (default), quick or full"
    )
    bench.add_argument(
        "--out",
        type=Path,
        help="output folder (default: benchmarks/results/PROFILE)",
    )
    bench.add_argument(
        "--scenarios",
        help="indices, slices or ids, comma-separated (e.g. 0:6,23); default: "
        "the profile's",
    )
    bench.add_argument(
        "--defenses",
        help="comma-separated defenses (isplfilter/ispl, ss, ac, itlm, cl, or "
        "'none'); default: all available",
    )
    bench.add_argument(
        "--defense-params",
        action="append",
        default=[],
        metavar="NAME=SETTINGS",
        help="settings of one defense: JSON object, @file.json or (isplfilter) "
        "a preset name; an isplfilter object may start from a preset with "
        '"preset"; repeatable. E.g. isplfilter=\'{"n_runs": 2}\' or '
        'isplfilter=\'{"preset": "fast", "refine_folds": 4}\'',
    )
    bench.add_argument("--n-train", type=int, help="override the training subset size")
    bench.add_argument("--device", help="torch device (default: the profile's)")
    bench.add_argument("--data-path", type=Path, help="folder of Fashion-MNIST files")
    bench.add_argument(
        "--list", action="store_true", help="list the scenarios and defenses; run none"
    )
    bench.add_argument(
        "--quiet", action="store_true", help="no progress lines (the log has them)"
    )
    bench.add_argument(
        "--n-jobs", type=int, default=None, help="parallel jobs per defense (1)"
    )
    _add_threads(bench)
    bench.set_defaults(subparser=bench)
    return parser


def _add_common(subparser):
    subparser.add_argument(
        "--n-jobs", type=int, default=None, help="parallel trainings (joblib; 1)"
    )
    _add_threads(subparser)
    subparser.add_argument(
        "-v", "--verbose", action="count", default=0, help="show progress"
    )


def main(argv=None):
    """Run the command line.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments without the program name; None: ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success. Usage and input errors exit with status 2 (raising
        :class:`SystemExit`), as argparse does.
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    command = "sklearn-ispl " + shlex.join(sys.argv[1:] if argv is None else argv)
    sub = args.subparser
    _set_threads(sub, args.threads)
    if args.command == "demo":
        return _demo(args)
    if args.command == "filter":
        return _filter(args, sub)
    return _bench(args, sub, command)


def _add_threads(subparser):
    subparser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for training, shared by the --n-jobs workers "
        "(default: torch's, one per core); give each of two runs that share "
        "a machine half the cores",
    )


def _set_threads(parser, threads):
    """Apply ``--threads`` (None: leave torch's default); the scripts too."""
    if threads is None:
        return
    if threads < 1:
        _fail(parser, f"--threads must be at least 1, got {threads}")
    import torch

    # A process-wide budget: run_tasks splits it among joblib workers.
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------------
# demo


def _demo(args):
    import torch
    from sklearn.model_selection import train_test_split

    from . import ISPLFilter
    from .attacks import BackdoorAttack
    from .benchmark import _build_defense, _FinalModel
    from .datasets import load_digits_images
    from .metrics import clean_accuracy, targeted_misclassification_rate

    seed = args.seed
    X, y = load_digits_images()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=seed
    )
    attack = BackdoorAttack(
        source=0,
        target=8,
        trigger="pattern",
        position=(6, 1),
        color=16,
        eps=0.2,
        random_state=seed,
    )
    X_p, y_p, poison = attack.poison(X_train, y_train)
    n_source = int((y_train == 0).sum())
    print(
        f"Backdoor: {poison.sum()} of the {n_source} training zeros get a bright X "
        "at the bottom left and the label 8."
    )
    ispl, _, _ = _build_defense(
        ISPLFilter,
        DEMO_FILTER_PARAMS,
        {"random_state": seed, "n_jobs": args.n_jobs, "verbose": args.verbose},
        strict=True,
    )
    print(f"Filtering {len(y_p)} training samples with ISPLFilter ...", flush=True)
    t0 = time.perf_counter()
    ispl.fit(X_p, y_p)
    seconds = time.perf_counter() - t0
    keep = ispl.keep_mask_
    poison_removed = int((~keep & poison).sum())
    clean_removed = int((~keep & ~poison).sum())
    n_clean = int((~poison).sum())
    print(
        f"ISPLFilter removed {poison_removed} of {poison.sum()} poisoned and "
        f"{clean_removed} of {n_clean} clean samples "
        f"({100 * clean_removed / n_clean:.1f}%) in {seconds:.1f} s."
    )

    images = X_p[:, None]
    mean, std = float(images.mean()), float(images.std()) or 1.0
    source = y_test == attack.source
    X_trig = attack.apply_trigger(X_test[source])
    rows = []
    for name, mask in (
        ("no defense (all samples)", np.ones(len(y_p), dtype=bool)),
        ("ISPLFilter (kept samples)", keep),
        ("clean samples only", ~poison),
    ):
        with torch.random.fork_rng():
            model = _FinalModel(
                (1, 8, 8),
                10,
                mean,
                std,
                DEMO_FINAL_EPOCHS,
                DEMO_FINAL_PARAMS,
                seed,
                "cpu",
            ).fit(X_p[mask], y_p[mask])
        pred = model.predict(X_test)
        asr = targeted_misclassification_rate(
            y_test[source], pred[source], model.predict(X_trig), 0, 8
        )
        rows.append((name, int(mask.sum()), clean_accuracy(y_test, pred), asr))

    print()
    print(
        f"Final classifier (small CNN, {DEMO_FINAL_EPOCHS} epochs) on "
        f"{len(y_test)} held-out test digits:"
    )
    width = max(len(r[0]) for r in rows)
    print(
        f"  {'trained on':<{width}}  {'samples':>7}  {'clean accuracy':>14}  "
        f"{'attack success':>14}"
    )
    for name, n, acc, asr in rows:
        print(f"  {name:<{width}}  {n:>7}  {100 * acc:>13.1f}%  {100 * asr:>13.1f}%")
    print(
        "Attack success: share of test zeros classified 0 when clean and 8 with the X."
    )
    return 0


# ---------------------------------------------------------------------------
# filter


def _fail(parser, message):
    """Exit with status 2 and an argparse-style message."""
    parser.error(message)


def _load_npz(path, parser):
    if not path.exists():
        _fail(parser, f"{path}: no such file")
    if not path.is_file():
        _fail(parser, f"{path}: not a file")
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as exc:
        # np.load refuses a pickled .npy (or a non-numpy file) this way.
        _fail(
            parser,
            f"{path}: not an .npz archive of arrays; numpy could read it only "
            f"by unpickling, which is refused ({exc})",
        )
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        _fail(parser, f"{path}: not a readable .npz file ({exc})")
    if not isinstance(data, np.lib.npyio.NpzFile):
        _fail(
            parser,
            f"{path}: holds a single array, not an .npz archive; save it with "
            "np.savez(path, X=X, y=y)",
        )
    with data:
        missing = [name for name in ("X", "y") if name not in data.files]
        if missing:
            _fail(
                parser,
                f"{path}: no array {' or '.join(map(repr, missing))}; found "
                f"{sorted(data.files) or 'no arrays'}",
            )
        arrays = {}
        for name in ("X", "y"):
            try:
                arrays[name] = data[name]
            except ValueError as exc:
                if "allow_pickle" in str(exc) or "pickle" in str(exc).lower():
                    _fail(
                        parser,
                        f"{path}: array {name!r} holds pickled Python objects; "
                        "refusing to load it (unpickling can run code). Save "
                        "numeric or string arrays, not dtype=object.",
                    )
                _fail(parser, f"{path}: cannot read array {name!r} ({exc})")
            except (OSError, EOFError, zipfile.BadZipFile) as exc:
                _fail(parser, f"{path}: cannot read array {name!r} ({exc})")
    return arrays["X"], arrays["y"]


def _check_shapes(X, y, image_shape, parser):
    if y.ndim != 1:
        _fail(parser, f"y must be 1-D (one label per sample), got shape {y.shape}")
    if X.ndim not in (2, 3, 4):
        _fail(
            parser,
            f"X must have 2 to 4 dimensions (samples first), got shape {X.shape}",
        )
    if X.shape[0] != y.shape[0]:
        _fail(
            parser,
            f"X and y hold different numbers of samples: {X.shape[0]} and {y.shape[0]}",
        )
    if X.dtype.kind not in "biuf":
        _fail(parser, f"X must hold numbers, got dtype {X.dtype}")
    if image_shape is not None:
        if len(image_shape) not in (2, 3) or min(image_shape) < 1:
            _fail(
                parser,
                "--image-shape takes H W or H W C (positive integers), got "
                f"{' '.join(map(str, image_shape))}",
            )
        if X.ndim == 2 and X.shape[1] != int(np.prod(image_shape)):
            _fail(
                parser,
                f"--image-shape {' '.join(map(str, image_shape))} has "
                f"{int(np.prod(image_shape))} values but rows of X have "
                f"{X.shape[1]}",
            )
        if X.ndim != 2:
            _fail(
                parser,
                f"--image-shape is for flat rows, but X already has image shape "
                f"{X.shape[1:]}",
            )


def _filter(args, parser):
    from . import ISPLFilter
    from .benchmark import ISPL_PRESETS, _build_defense

    X, y = _load_npz(args.input, parser)
    _check_shapes(X, y, args.image_shape, parser)
    if not args.output.parent.is_dir():
        _fail(parser, f"output folder {args.output.parent} does not exist")
    if args.preset not in ISPL_PRESETS:
        _fail(
            parser,
            f"--preset must be one of {', '.join(ISPL_PRESETS)}, got {args.preset!r}",
        )
    params = dict(ISPL_PRESETS[args.preset])
    for option, name, _, _ in _ISPL_OPTIONS:
        value = getattr(args, option.lstrip("-").replace("-", "_"))
        if value is not None:
            params[name] = value
    if args.image_shape is not None:
        params["image_shape"] = tuple(args.image_shape)
    try:
        ispl, _, _ = _build_defense(
            ISPLFilter,
            params,
            {
                "random_state": args.seed,
                "n_jobs": args.n_jobs,
                "device": args.device,
                "verbose": args.verbose,
            },
            strict=True,
        )
        t0 = time.perf_counter()
        ispl.fit(X, y)
    except ValueError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    seconds = time.perf_counter() - t0
    keep = ispl.keep_mask_
    with open(args.output, "wb") as handle:
        np.savez(handle, X=X[keep], y=y[keep], keep_mask=keep, scores=ispl.scores_)
    n_removed = int((~keep).sum())
    print(
        f"kept {int(keep.sum())} of {len(y)} samples, removed {n_removed} "
        f"({100 * n_removed / len(y):.1f}%) in {seconds:.1f} s; wrote "
        f"{args.output} (X, y, keep_mask, scores)"
    )
    return 0


# ---------------------------------------------------------------------------
# bench


def _bench(args, parser, command):
    from . import benchmark

    try:
        profile = benchmark.get_profile(args.profile)
        if args.n_train is not None:
            if args.n_train < 20:
                _fail(parser, f"--n-train must be at least 20, got {args.n_train}")
            profile = benchmark.get_profile(profile, n_train=args.n_train)
        defenses = (
            None
            if args.defenses is None
            else [name for name in args.defenses.split(",") if name.strip()]
        )
        defense_params = {}
        for item in args.defense_params:
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                _fail(
                    parser,
                    f"--defense-params takes NAME=SETTINGS, got {item!r}",
                )
            key = benchmark._resolve_defense(name).key
            defense_params[key] = benchmark.parse_defense_params(value, key)
        if args.list:
            return _list(profile, defenses)
        if defenses is not None and defenses != ["none"]:
            benchmark.available_defenses(defenses)  # raises on unknown names
        benchmark.run_benchmark(
            profile,
            args.out,
            scenarios=args.scenarios,
            defenses=defenses,
            defense_params=defense_params,
            n_jobs=args.n_jobs,
            device=args.device,
            data_path=args.data_path,
            command=command,
            progress=not args.quiet,
        )
    except (ValueError, FileNotFoundError) as exc:
        _fail(parser, str(exc))
    return 0


def _list(profile, defenses):
    from . import benchmark

    shape = (8, 8) if profile.dataset == "digits" else (28, 28)
    scenarios = benchmark.benchmark_scenarios(
        shape, profile.max_value, profile.min_contrast
    )
    default = {
        s.index for s in benchmark.select_scenarios(scenarios, profile.scenarios)
    }
    print(f"profile {profile.name}: scenarios (* = run by default)")
    for s in scenarios:
        d = s.describe()
        print(
            f"  {'*' if s.index in default else ' '} {s.id}  {d['trigger']:<7} at "
            f"{tuple(d['position'])} colour {d['color']}"
        )
    found, missing = benchmark.available_defenses(
        None if defenses in (None, ["none"]) else defenses
    )
    print("defenses:")
    for spec, _ in found:
        settings = profile.defense_params.get(spec.key, {})
        settings = benchmark.parse_defense_params(settings, spec.key)
        text = json.dumps(settings, default=_describe_object)
        print(f"  {spec.key} ({spec.label}): {text}")
    for spec in missing:
        print(f"  {spec.key} ({spec.label}): not available, skipped")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def _describe_object(obj):
    """One-line text for a setting JSON cannot hold (e.g. a weak learner)."""
    return " ".join(repr(obj).split())
