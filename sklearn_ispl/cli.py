"""Command-line interface: ``sklearn-ispl {demo,filter,bench}``.

- ``demo``: poison scikit-learn's digits with a backdoor, filter them with
  :class:`~sklearn_ispl.ISPLFilter`, and compare a classifier trained on all
  samples with one trained on the kept samples.
- ``filter``: filter the arrays ``X``, ``y`` of an ``.npz`` file and write the
  kept samples, the keep mask and the scores to another: never over the
  input, over an existing file only with ``--overwrite``, and all at once
  (an interrupted run leaves no partial file).
- ``bench``: run (or resume) the benchmark of :mod:`sklearn_ispl.benchmark`.

Also reachable as ``python -m sklearn_ispl``.
"""

import argparse
import json
import logging
import math
import os
import re
import shlex
import stat
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["main"]

#: Epochs and skorch settings of the demo's final classifier (the smoke
#: benchmark's: a small CNN).
DEMO_FINAL_EPOCHS = 20
DEMO_FINAL_PARAMS = {"module__n_filters": 16, "module__n_hidden": 64}


class _Parser(argparse.ArgumentParser):
    """Argument parser whose errors are a single line on stderr.

    A user error must read as one message, not as a usage block (argparse's
    default) or a traceback; ``--help`` still shows the usage.
    """

    def error(self, message):
        """Print ``message`` on one line to stderr and exit with status 2.

        Parameters
        ----------
        message : str
            What went wrong; runs of whitespace (newlines included) are
            joined into single spaces.
        """
        text = " ".join(str(message).split())
        self.exit(2, f"{self.prog}: error: {text}\n")


def _int_at_least(low):
    """Argparse type: an int no smaller than ``low``."""

    def parse(text):
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    # argparse names the type in "invalid int value: 'x'".
    parse.__name__ = "int"
    return parse


def _real_in(low, high, low_closed, high_closed):
    """Argparse type: a finite float in an interval of the given closedness."""
    interval = f"{'[' if low_closed else '('}{low}, {high}{']' if high_closed else ')'}"

    def parse(text):
        value = float(text)
        inside = (
            math.isfinite(value)
            and (low <= value if low_closed else low < value)
            and (value <= high if high_closed else value < high)
        )
        if not inside:
            raise argparse.ArgumentTypeError(f"must be in {interval}, got {text!r}")
        return value

    parse.__name__ = "float"
    return parse


def _n_jobs(text):
    """Argparse type: joblib's ``n_jobs``, any int but 0 (-1: all cores)."""
    value = int(text)
    if value == 0:
        raise argparse.ArgumentTypeError(
            "must not be 0 (1: no parallel jobs, -1: one per core)"
        )
    return value


_n_jobs.__name__ = "int"


def _seed(text):
    """Argparse type: a seed numpy's ``RandomState`` accepts, 0 to 2**32 - 1."""
    value = int(text)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be in 0 .. {2**32 - 1}, got {value}")
    return value


_seed.__name__ = "int"

# No leading zeros in the index: torch refuses them.
_DEVICE_PATTERN = re.compile(r"cpu|mps|cuda(?::(?:0|[1-9][0-9]*))?")


def _device(text):
    """Argparse type: a torch device this machine has.

    Checked up front so that a missing GPU is reported before any data is
    read or any training starts, not as a torch error deep inside a fit.
    """
    if not _DEVICE_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"must be cpu, cuda, cuda:N (N = 0, 1, ...) or mps, got {text!r}"
        )
    if text == "cpu":
        return text
    import torch

    if text == "mps":
        if not torch.backends.mps.is_available():
            raise argparse.ArgumentTypeError(
                "'mps': torch sees no Apple GPU (MPS) on this machine; use cpu"
            )
        return text
    if not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(
            f"{text!r}: torch sees no CUDA GPU on this machine; use cpu"
        )
    index = int(text.partition(":")[2] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise argparse.ArgumentTypeError(
            f"{text!r}: this machine has {count} CUDA device(s), cuda:0 to "
            f"cuda:{count - 1}"
        )
    return text


#: Values of ``--voting``: BoostedComponentVoter's ``voting``.
VOTING_CHOICES = ("sample", "component", "competent")

_ISPL_OPTIONS = (
    # (option, ISPLFilter parameter, add_argument keywords, help). The types
    # repeat the filter's parameter constraints so that a bad value is
    # refused while parsing: some (the voter's) are otherwise checked only
    # after minutes of training.
    (
        "--n-runs",
        "n_runs",
        {"type": _int_at_least(1)},
        "independent ISPL runs (paper: 3)",
    ),
    (
        "--n-components",
        "n_components",
        {"type": _int_at_least(1)},
        "components per run (paper: 8)",
    ),
    (
        "--warmup-epochs",
        "warmup_epochs",
        {"type": _int_at_least(0)},
        "warm-up epochs per round (paper: 8)",
    ),
    (
        "--epochs-per-iteration",
        "epochs_per_iteration",
        {"type": _int_at_least(1)},
        "epochs after each trim (paper: 4)",
    ),
    (
        "--expansion",
        "expansion",
        {"type": _real_in(0, 1, False, True)},
        "expansion factor alpha in (0, 1] (0.25)",
    ),
    (
        "--momentum",
        "momentum",
        {"type": _real_in(0, 1, True, False)},
        "loss smoothing in [0, 1) (0.9)",
    ),
    (
        "--class-floor",
        "class_floor",
        {"type": _real_in(0, 1, True, True)},
        "per-class kept share in [0, 1] (0.125)",
    ),
    (
        "--vote-epochs",
        "voter__n_epochs",
        {"type": _int_at_least(1)},
        "epochs per component learner (40)",
    ),
    (
        "--voting",
        "voter__voting",
        {"choices": VOTING_CHOICES},
        "how the component learners vote: 'sample' (default), 'component' or "
        "'competent'",
    ),
    (
        "--min-votes",
        "voter__min_votes",
        {"type": _int_at_least(1)},
        "votes the winning label needs (2)",
    ),
    (
        "--refine-rounds",
        "refiner__n_rounds",
        {"type": _int_at_least(0)},
        "self-training rounds (paper: 20)",
    ),
    (
        "--refine-epochs",
        "refiner__n_epochs",
        {"type": _int_at_least(1)},
        "epochs per self-training round (5)",
    ),
    (
        "--refine-momentum",
        "refiner__momentum",
        {"type": _real_in(0, 1, True, False)},
        "prediction smoothing in [0, 1) (0.8)",
    ),
)


def _build_parser():
    parser = _Parser(
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
    demo.add_argument("--seed", type=_seed, default=0, help="random seed (0)")
    _add_schedule(demo)
    _add_common(demo)
    demo.set_defaults(subparser=demo)

    filt = commands.add_parser(
        "filter",
        help="filter the arrays X, y of an .npz file with ISPLFilter",
        description=(
            "Read arrays X and y from an .npz file (no pickled objects), fit "
            "ISPLFilter, and write the kept X and y, keep_mask and scores "
            "(share of votes for each sample's label) to the output .npz. The "
            "output is checked before training: it may not be the input, and "
            "may replace an existing file only with --overwrite."
        ),
    )
    filt.add_argument("input", type=Path, help=".npz file with arrays X and y")
    filt.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="output .npz file (written as named; never the input file)",
    )
    filt.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the output file if it exists",
    )
    filt.add_argument(
        "--image-shape",
        type=int,
        nargs="+",
        metavar="N",
        help="H W or H W C, when X holds one flattened image per row",
    )
    _add_schedule(filt)
    for option, _, keywords, text in _ISPL_OPTIONS:
        filt.add_argument(option, help=text, **keywords)
    filt.add_argument("--seed", type=_seed, default=0, help="random seed (0)")
    filt.add_argument(
        "--device",
        type=_device,
        default="cpu",
        help="torch device: cpu (default), cuda, cuda:N or mps",
    )
    _add_common(filt)
    filt.set_defaults(subparser=filt)

    bench = commands.add_parser(
        "bench",
        help="run or resume the defense benchmark",
        description=(
            "Run the paper's 24 backdoor scenarios (or the robust suite's 21: "
            "blended and varying triggers, two attacks at once, no attack) "
            "against every available defense and write results.json, "
            "results.md and asr.png. A re-run into the same folder resumes: "
            "finished scenarios are skipped."
        ),
    )
    bench.add_argument(
        "--profile", default="smoke", help="smoke (default), quick or full"
    )
    bench.add_argument(
        "--out",
        type=Path,
        help="output folder (default: benchmarks/results/PROFILE, or "
        "PROFILE-robust for the robust suite)",
    )
    bench.add_argument(
        "--suite",
        choices=("paper", "robust"),
        default="paper",
        help="scenario suite: paper (default; the paper's 24) or robust (21: "
        "blended, varying, two attacks, clean)",
    )
    bench.add_argument(
        "--scenarios",
        help="indices, slices or ids of the suite's scenarios, comma-separated "
        "(e.g. 0:6,23); default: the profile's",
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
        "a schedule name; an isplfilter object may name its schedule under "
        '"schedule"; repeatable. E.g. isplfilter=\'{"n_runs": 2}\' or '
        'isplfilter=\'{"schedule": "medium", "refiner__n_folds": 4}\'',
    )
    bench.add_argument("--n-train", type=int, help="override the training subset size")
    bench.add_argument(
        "--final-seeds",
        type=int,
        help="trainings of the final classifier per column, seeded one after "
        "another; C and A are their means (default: the profile's, 1)",
    )
    bench.add_argument(
        "--device",
        type=_device,
        help="torch device: cpu, cuda, cuda:N or mps (default: the profile's)",
    )
    bench.add_argument("--data-path", type=Path, help="folder of Fashion-MNIST files")
    bench.add_argument(
        "--list", action="store_true", help="list the scenarios and defenses; run none"
    )
    bench.add_argument(
        "--quiet", action="store_true", help="no progress lines (the log has them)"
    )
    bench.add_argument(
        "--n-jobs", type=_n_jobs, default=None, help="parallel jobs per defense (1)"
    )
    _add_threads(bench)
    bench.set_defaults(subparser=bench)
    return parser


def _add_common(subparser):
    subparser.add_argument(
        "--n-jobs", type=_n_jobs, default=None, help="parallel trainings (joblib; 1)"
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
        :class:`SystemExit`), as argparse does, after a one-line message on
        stderr.
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


def _add_schedule(subparser):
    from ._schedules import SCHEDULES

    names = ["auto", *SCHEDULES]
    subparser.add_argument(
        "--schedule",
        default="auto",
        choices=names,
        help="named ISPLFilter settings: auto (the default: chosen from the "
        "number of samples), paper (appendix B.1), small, medium or large; "
        "options below override single settings",
    )


def _add_threads(subparser):
    subparser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for training (default: torch's, one per core): those "
        "of a training that runs alone (one refine model, the rescue, the "
        "final classifier), and the one-thread trainings run at once when "
        "--n-jobs is not given; give each of two runs that share a machine "
        "half the cores",
    )


def _set_threads(parser, threads):
    """Apply ``--threads`` (None: leave torch's default); the scripts too."""
    if threads is None:
        return
    if threads < 1:
        _fail(parser, f"--threads must be at least 1, got {threads}")
    import torch

    # A process-wide budget: without n_jobs, run_tasks runs as many
    # one-thread trainings at once.
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------------
# demo


def _demo(args):
    import torch
    from sklearn.model_selection import train_test_split

    from . import ISPLFilter
    from .attacks import BackdoorAttack
    from .benchmark import _FinalModel
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
    ispl = ISPLFilter(
        schedule=args.schedule,
        random_state=seed,
        n_jobs=args.n_jobs,
        verbose=args.verbose,
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
    """Exit with status 2 and a one-line argparse-style message."""
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
        # math.prod: np.prod would wrap around (or fail) on huge sizes.
        if X.ndim == 2 and X.shape[1] != math.prod(image_shape):
            _fail(
                parser,
                f"--image-shape {' '.join(map(str, image_shape))} has "
                f"{math.prod(image_shape)} values but rows of X have "
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

    X, y = _load_npz(args.input, parser)
    _check_shapes(X, y, args.image_shape, parser)
    # Before any training: a run of hours must not end in a refused output.
    target = _check_output(args.output, args.input, args.overwrite, parser)
    params = {"schedule": args.schedule}
    for option, name, _, _ in _ISPL_OPTIONS:
        value = getattr(args, option.lstrip("-").replace("-", "_"))
        if value is not None:
            params[name] = value
    if args.image_shape is not None:
        params["image_shape"] = tuple(args.image_shape)
    try:
        ispl = ISPLFilter(
            **params,
            random_state=args.seed,
            n_jobs=args.n_jobs,
            device=args.device,
            verbose=args.verbose,
        )
        t0 = time.perf_counter()
        ispl.fit(X, y)
    except (ValueError, TypeError) as exc:
        # The filter's parameter and input validation: a user error.
        _fail(parser, str(exc))
    seconds = time.perf_counter() - t0
    keep = ispl.keep_mask_
    _write_npz(
        target,
        args.overwrite,
        parser,
        X=X[keep],
        y=y[keep],
        keep_mask=keep,
        scores=ispl.scores_,
    )
    n_removed = int((~keep).sum())
    print(
        f"kept {int(keep.sum())} of {len(y)} samples, removed {n_removed} "
        f"({100 * n_removed / len(y):.1f}%) in {seconds:.1f} s; wrote "
        f"{args.output} (X, y, keep_mask, scores)"
    )
    return 0


def _check_output(output, source, overwrite, parser):
    """Refuse an output path the filter must not or cannot write.

    Parameters
    ----------
    output : Path
        The ``--output`` path as given.
    source : Path
        The input file, never to be written over.
    overwrite : bool
        Whether an existing output file may be replaced.
    parser : ArgumentParser
        Reports a refusal (exit status 2).

    Returns
    -------
    target : Path
        The file to write: ``output`` with symbolic links resolved, so that
        a link to the output stays a link, to the new content.
    """
    name = f"--output {output}"
    if output.is_dir():
        _fail(parser, f"{name}: is a folder; name a file to write")
    try:
        target = output.resolve()
    except (OSError, RuntimeError) as exc:  # e.g. a loop of symbolic links
        _fail(parser, f"{name}: cannot resolve the path ({exc})")
    if target.exists():
        # samefile: another spelling, a symbolic or a hard link of the input
        # is the input all the same.
        if os.path.samefile(target, source):
            _fail(
                parser,
                f"{name}: is the input file {source}; the filter never writes "
                "over its input, name another output file",
            )
        if not target.is_file():
            _fail(
                parser,
                f"{name}: not a regular file; name a file to write (replacing a "
                "device or pipe is refused)",
            )
        if not overwrite:
            _fail(parser, f"{name}: exists; pass --overwrite to replace it")
    elif os.path.lexists(output) and not overwrite:
        _fail(
            parser,
            f"{name}: exists (a broken symbolic link); pass --overwrite to "
            "write its target",
        )
    folder = target.parent
    if not folder.is_dir():
        _fail(parser, f"{name}: output folder {output.parent} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        _fail(parser, f"{name}: output folder {output.parent} is not writable")
    return target


def _write_npz(target, overwrite, parser, **arrays):
    """Write ``arrays`` to ``target`` all at once, or not at all.

    The archive goes to a temporary file in the target's folder that is
    renamed over the target only once complete (a rename within a folder is
    atomic), so that an interrupted or failed run leaves the previous file,
    or none, rather than a truncated one. The temporary file is removed on
    failure.

    Parameters
    ----------
    target : Path
        The file to write, as returned by :func:`_check_output`.
    overwrite : bool
        Whether ``target`` may be replaced if it appeared since the check.
    parser : ArgumentParser
        Reports a failure to write (exit status 2).
    **arrays : ndarray
        The arrays of the archive, by name.
    """
    try:
        mode = stat.S_IMODE(target.stat().st_mode)  # keep a replaced file's
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask  # a new file's usual permissions
    except OSError as exc:
        _fail(parser, f"--output {target}: cannot read it ({exc})")
    try:
        handle = tempfile.NamedTemporaryFile(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp", delete=False
        )
    except OSError as exc:
        _fail(parser, f"--output {target}: cannot write in its folder ({exc})")
    temporary = Path(handle.name)
    try:
        with handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        # Checked again: the file may have appeared during the training.
        if not overwrite and os.path.lexists(target):
            _fail(parser, f"--output {target}: exists; pass --overwrite to replace it")
        if target.exists() and not target.is_file():
            _fail(parser, f"--output {target}: not a regular file")
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        _fail(parser, f"--output {target}: cannot write it ({exc})")
    except BaseException:
        # KeyboardInterrupt and the refusals above: no temporary file left.
        temporary.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------
# bench


def _bench(args, parser, command):
    from . import benchmark

    if args.out is not None and (args.out.exists() or args.out.is_symlink()):
        if not args.out.is_dir():
            _fail(parser, f"--out {args.out}: not a folder")
        if not os.access(args.out, os.W_OK | os.X_OK):
            _fail(parser, f"--out {args.out}: folder is not writable")
    try:
        profile = benchmark.get_profile(args.profile)
        if args.n_train is not None:
            if args.n_train < 20:
                _fail(parser, f"--n-train must be at least 20, got {args.n_train}")
            profile = benchmark.get_profile(profile, n_train=args.n_train)
        if args.final_seeds is not None:
            if args.final_seeds < 1:
                _fail(
                    parser,
                    f"--final-seeds must be at least 1, got {args.final_seeds}",
                )
            profile = benchmark.get_profile(profile, final_seeds=args.final_seeds)
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
            return _list(profile, defenses, args.suite)
        if defenses is not None and defenses != ["none"]:
            benchmark.available_defenses(defenses)  # raises on unknown names
        benchmark.run_benchmark(
            profile,
            args.out,
            scenarios=args.scenarios,
            suite=args.suite,
            defenses=defenses,
            defense_params=defense_params,
            n_jobs=args.n_jobs,
            device=args.device,
            data_path=args.data_path,
            command=command,
            progress=not args.quiet,
        )
    except (ValueError, FileNotFoundError) as exc:
        # Settings the benchmark refuses (profile, scenarios, defenses and
        # their parameters) and missing files: user errors. Other errors of
        # a long run keep their traceback.
        _fail(parser, str(exc))
    return 0


def _list(profile, defenses, suite="paper"):
    from . import benchmark

    shape = (8, 8) if profile.dataset == "digits" else (28, 28)
    scenarios = benchmark.suite_scenarios(
        suite, shape, profile.max_value, profile.min_contrast
    )
    paper = suite == "paper"
    selection = profile.scenarios if paper else profile.robust_scenarios
    default = {s.index for s in benchmark.select_scenarios(scenarios, selection)}
    print(
        f"profile {profile.name}: scenarios"
        f"{'' if paper else f' of the {suite} suite'} (* = run by default)"
    )
    for s in scenarios:
        mark = "*" if s.index in default else " "
        if paper:
            d = s.describe()
            print(
                f"  {mark} {s.id}  {d['trigger']:<7} at "
                f"{tuple(d['position'])} colour {d['color']}"
            )
        else:
            print(f"  {mark} {s.id:<24} {s.trigger_text()}")
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
