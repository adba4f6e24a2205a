"""Side-by-side evaluation of the defenses, in the layout of the paper's Table 3.

A *profile* fixes everything a benchmark measures with: the data (and the
size of its training subset), the final classifier and its epochs (one and
the same for every column), and the settings of each defense. A *scenario*
is one dirty-label backdoor: one of the paper's eight (source, target) class
pairs (:data:`~sklearn_ispl.attacks.PAPER_CLASS_PAIRS`), one poison rate
``eps`` in {5%, 10%, 20%}, and a trigger drawn by the rule of the paper's
appendix B.2 (:func:`~sklearn_ispl.attacks.make_scenario`) with the scenario's
index as seed, so a scenario is the same in every run.

For each scenario :func:`run_benchmark` measures, as in the paper's Table 3:

- ``M``: the targeted misclassification rate of a model trained on the
  *clean* training set (the trigger alone, without poison; one clean model
  per profile);
- no defense: clean accuracy ``C`` and targeted misclassification rate
  ``A`` (eq. 7) of a model trained on the poisoned set;
- each defense: ``C`` and ``A`` of the model trained on the samples it kept,
  its false positives ``FP`` (clean samples removed), false negatives
  ``FN`` (poisoned samples kept) and the seconds its ``fit`` took.

Results go to ``results.json`` in the output folder as soon as each
scenario and defense finishes, and a re-run skips what is there (resume).
``results.md`` (the table and a summary per defense), ``asr.png`` (attack
success per scenario and defense) and ``benchmark.log`` are written next to
it.

The defenses are looked up by name in :mod:`sklearn_ispl` at run time
(:data:`DEFENSES`); one that the installed package lacks is skipped with a
note.
"""

import json
import logging
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ._learners import make_weak_learner
from .attacks import PAPER_CLASS_PAIRS, make_scenario
from .metrics import clean_accuracy, filter_report, targeted_misclassification_rate

__all__ = [
    "DEFENSES",
    "EPS_VALUES",
    "ISPL_PRESETS",
    "PROFILES",
    "BenchmarkProfile",
    "DefenseSpec",
    "Scenario",
    "available_defenses",
    "benchmark_scenarios",
    "get_profile",
    "parse_defense_params",
    "plot_asr",
    "results_table",
    "run_benchmark",
    "select_scenarios",
    "summarize",
]

logger = logging.getLogger(__name__)

#: Poison rates of the paper's Table 3: share of the source class poisoned.
EPS_VALUES = (0.05, 0.10, 0.20)

#: Version of the layout of ``results.json``.
RESULTS_FORMAT = 1


# ---------------------------------------------------------------------------
# Defenses


@dataclass(frozen=True)
class DefenseSpec:
    """How the benchmark finds and labels one defense.

    Parameters
    ----------
    key : str
        Canonical name: the class name in lower case, as
        :func:`imblearn.pipeline.make_pipeline` names a step.
    class_name : str
        Name under which :mod:`sklearn_ispl` exports the filter.
    label : str
        Column label in the tables (the paper's abbreviation).
    aliases : tuple of str
        Other names accepted on the command line.
    """

    key: str
    class_name: str
    label: str
    aliases: tuple = ()


#: Every defense the benchmark knows, in the column order of the tables.
#: Those missing from the installed package are skipped with a note.
DEFENSES = (
    DefenseSpec("isplfilter", "ISPLFilter", "ISPL", ("ispl", "tw")),
    DefenseSpec("spectralsignaturefilter", "SpectralSignatureFilter", "SS", ("ss",)),
    DefenseSpec(
        "activationclusteringfilter", "ActivationClusteringFilter", "AC", ("ac",)
    ),
    DefenseSpec("itlmfilter", "ITLMFilter", "ITLM", ("itlm",)),
    DefenseSpec("confidentlearningfilter", "ConfidentLearningFilter", "CL", ("cl",)),
)

#: Named ISPLFilter settings, usable as ``--defense-params isplfilter=NAME``.
#: Keys are ISPLFilter parameters; ``voter__*`` set the
#: :class:`~sklearn_ispl.BoostedComponentVoter` of the vote stage.
ISPL_PRESETS = {
    # The paper's settings (appendix B.1): ISPLFilter's defaults.
    "paper": {},
    # A fraction of the paper's compute: a 16/32-filter CNN (about 3 times
    # faster per epoch than the 32/64 default), two runs, short warm-ups,
    # 20-epoch voters, 4 self-training rounds of 3 epochs.
    "fast": {
        "weak_learner": make_weak_learner(module__n_filters=16, module__n_hidden=64),
        "n_runs": 2,
        "warmup_epochs": 2,
        "epochs_per_iteration": 2,
        "voter__n_epochs": 20,
        "refine_rounds": 4,
        "refine_epochs": 3,
    },
    # sklearn digits (about 1,300-1,800 images): nearly all poison out and
    # under 10% of the clean samples in about 35 s on 2 cores.
    "digits": {
        "n_runs": 2,
        "n_components": 8,
        "voter__n_epochs": 40,
        "refine_rounds": 6,
    },
    # The smallest setting that still runs every stage with some effect; for
    # the smoke profile and tests, not for measurements.
    "smoke": {
        "n_runs": 1,
        "n_components": 4,
        "warmup_epochs": 4,
        "epochs_per_iteration": 2,
        "voter__n_epochs": 30,
        "refine_rounds": 4,
        "refine_epochs": 5,
    },
}

# Nested estimators a flat ``name__param`` setting may need created first.
_NESTED_DEFAULTS = {"voter": "BoostedComponentVoter"}

# Parameters the harness sets on every defense that accepts them; they do
# not change results (n_jobs, verbose) or are fixed by the run (seed, device).
_RUN_PARAMS = ("random_state", "n_jobs", "device", "verbose")


def _resolve_defense(name):
    """Return the :class:`DefenseSpec` called ``name`` (key, class or alias)."""
    wanted = str(name).strip().lower()
    for spec in DEFENSES:
        if wanted in (spec.key, spec.class_name.lower(), spec.label.lower()):
            return spec
        if wanted in spec.aliases:
            return spec
    known = ", ".join(spec.key for spec in DEFENSES)
    raise ValueError(f"Unknown defense {name!r}; known defenses: {known}.")


def available_defenses(names=None):
    """Find the defenses the installed package offers.

    Parameters
    ----------
    names : sequence of str, default=None
        Defenses wanted, by key (``"isplfilter"``), class name or alias
        (``"ispl"``, ``"ss"``, ``"ac"``, ``"itlm"``, ``"cl"``). None: all of
        :data:`DEFENSES`.

    Returns
    -------
    found : list of (DefenseSpec, type)
        The wanted defenses that :mod:`sklearn_ispl` exports, in the order
        of :data:`DEFENSES`.
    missing : list of DefenseSpec
        The wanted defenses it does not export.

    Raises
    ------
    ValueError
        If a name is not a known defense.

    Examples
    --------
    >>> from sklearn_ispl.benchmark import available_defenses
    >>> found, missing = available_defenses(["ispl"])
    >>> [spec.key for spec, cls in found], missing
    (['isplfilter'], [])
    """
    import sklearn_ispl

    if names is None:
        wanted = list(DEFENSES)
    else:
        keys = {_resolve_defense(name).key for name in names}
        wanted = [spec for spec in DEFENSES if spec.key in keys]
    found, missing = [], []
    for spec in wanted:
        cls = getattr(sklearn_ispl, spec.class_name, None)
        if cls is None:
            missing.append(spec)
        else:
            found.append((spec, cls))
    return found, missing


def parse_defense_params(text, defense="isplfilter"):
    """Read a defense's settings from a preset name, JSON text or JSON file.

    Parameters
    ----------
    text : str or dict
        A dict (returned as a copy); JSON text of an object
        (``'{"n_runs": 2, "voter__n_epochs": 20}'``); ``@path`` of a file
        holding such an object; or, for ISPLFilter, the name of one of
        :data:`ISPL_PRESETS`.
    defense : str, default="isplfilter"
        The defense the settings are for (to look up presets).

    Returns
    -------
    params : dict
        Parameter names (``name__sub`` for nested estimators) to values.

    Raises
    ------
    ValueError
        If the text is neither a preset nor a JSON object.

    Examples
    --------
    >>> from sklearn_ispl.benchmark import parse_defense_params
    >>> parse_defense_params('{"n_runs": 2}')
    {'n_runs': 2}
    >>> parse_defense_params("digits")["voter__n_epochs"]
    40
    """
    if isinstance(text, dict):
        return dict(text)
    spec = _resolve_defense(defense)
    text = str(text).strip()
    if spec.key == "isplfilter" and text in ISPL_PRESETS:
        return dict(ISPL_PRESETS[text])
    source = "JSON"
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text()
        except OSError as exc:
            raise ValueError(f"Cannot read settings file {path}: {exc}.") from None
        source = str(path)
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        presets = (
            f" or a preset ({', '.join(ISPL_PRESETS)})"
            if spec.key == "isplfilter"
            else ""
        )
        raise ValueError(
            f"Settings for {spec.key} must be a JSON object, @file.json{presets}; "
            f"{source} could not be parsed: {exc}."
        ) from None
    if not isinstance(params, dict):
        raise ValueError(
            f"Settings for {spec.key} must be a JSON object, got "
            f"{type(params).__name__}."
        )
    return params


def _for_scenario(params, eps):
    """Resolve ``{"per_eps": {eps: value}}`` settings for one scenario."""
    resolved = {}
    for name, value in params.items():
        if isinstance(value, dict) and set(value) == {"per_eps"}:
            table = {float(k): v for k, v in value["per_eps"].items()}
            matches = [v for k, v in table.items() if math.isclose(k, eps)]
            if not matches:
                raise ValueError(
                    f"{name}: per_eps gives no value for eps={eps} "
                    f"(has {sorted(table)})."
                )
            value = matches[0]
        resolved[name] = value
    return resolved


def _build_defense(cls, params, run_params, strict):
    """Instantiate ``cls`` with flat (possibly nested) ``params``.

    Returns the estimator, the settings applied and the settings ignored
    (only when ``strict`` is False: names the class does not have).
    """
    import sklearn_ispl

    estimator = cls()
    plain = {k: v for k, v in params.items() if "__" not in k}
    nested = {k: v for k, v in params.items() if "__" in k}
    accepted = estimator.get_params(deep=False)
    ignored = {}
    for name in list(plain):
        if name not in accepted:
            if strict:
                raise ValueError(
                    f"{cls.__name__} has no parameter {name!r}; valid: "
                    f"{', '.join(sorted(accepted))}."
                )
            ignored[name] = plain.pop(name)
    estimator.set_params(**plain)
    for name in list(nested):
        head = name.split("__", 1)[0]
        if head not in accepted:
            if strict:
                raise ValueError(f"{cls.__name__} has no parameter {head!r}.")
            ignored[name] = nested.pop(name)
            continue
        if getattr(estimator, head) is None and head in _NESTED_DEFAULTS:
            estimator.set_params(
                **{head: getattr(sklearn_ispl, _NESTED_DEFAULTS[head])()}
            )
    if nested:
        try:
            estimator.set_params(**nested)
        except ValueError as exc:
            raise ValueError(
                f"Cannot set {sorted(nested)} on {cls.__name__}: {exc}"
            ) from None
    for name, value in run_params.items():
        if name in accepted:
            estimator.set_params(**{name: value})
    applied = {**plain, **nested}
    return estimator, applied, ignored


# ---------------------------------------------------------------------------
# Profiles and scenarios


@dataclass(frozen=True)
class BenchmarkProfile:
    """Everything a benchmark run measures with.

    Parameters
    ----------
    name : str
        Profile name.
    dataset : {"digits", "fashion-mnist"}
        Data set. Digits are split into train and test parts; Fashion-MNIST
        uses its own training and test sets.
    n_train : int or None
        Size of the stratified training subset (None: all).
    n_test : int or None
        Size of the stratified test subset (None: all).
    test_size : float
        Share of the digits held out for testing (digits only).
    max_value : int
        Largest pixel value; trigger colours are drawn in ``0..max_value``.
    min_contrast : int
        Passed to :func:`~sklearn_ispl.attacks.make_scenario`; 0 keeps the
        paper's rule (any colour, even one as dark as the background).
    final_epochs : int
        Epochs of the final classifier, the same for every column.
    final_params : dict
        skorch settings of the final classifier, passed to
        :func:`~sklearn_ispl.make_weak_learner` (e.g. ``module__n_filters``).
    defense_params : dict
        Per defense key, its settings: a dict, or for ``isplfilter`` the
        name of an :data:`ISPL_PRESETS` entry. A value
        ``{"per_eps": {"0.05": a, "0.1": b, "0.2": c}}`` is resolved per
        scenario by its eps. Settings a defense class does not have are
        skipped with a note (the baselines are written separately); settings
        given on the command line must exist.
    scenarios : tuple of int or None
        Indices of the scenarios run when none are selected (None: all 24).
    device : str
        Torch device of the final classifiers and the defenses.
    seed : int
        Seeds the data subset, the final classifiers and the defenses.
    """

    name: str
    dataset: str
    n_train: int | None
    n_test: int | None
    test_size: float
    max_value: int
    min_contrast: int
    final_epochs: int
    final_params: dict = field(default_factory=dict)
    defense_params: dict = field(default_factory=dict)
    scenarios: tuple | None = None
    device: str = "cpu"
    seed: int = 0

    @property
    def ispl_params(self):
        """The resolved ISPLFilter settings of this profile."""
        return parse_defense_params(
            self.defense_params.get("isplfilter", {}), "isplfilter"
        )


_FINAL = {"module__n_filters": 32, "module__n_hidden": 128, "lr": 1e-3}

# Spectral Signatures removes 1.5 times the expected poison share of a class;
# the paper's Table 3 counts amount to 15% of each class for eps = 5% and
# 10%, and 30% for eps = 20%. Like the paper, the benchmark tells SS the eps.
_SS_REMOVAL = {"per_eps": {"0.05": 0.15, "0.1": 0.15, "0.2": 0.3}}

# Baseline settings for the CPU profiles: their defaults (20 epochs per
# network, 5-fold confident learning) halved or less, to fit the budget.
_CPU_BASELINES = {
    "spectralsignaturefilter": {"n_epochs": 10, "removal_rate": _SS_REMOVAL},
    "activationclusteringfilter": {"n_epochs": 10},
    "itlmfilter": {"n_rounds": 4, "first_epochs": 10, "epochs": 5},
    "confidentlearningfilter": {"n_epochs": 10, "cv": 3},
}

#: The three profiles. ``smoke``: scikit-learn digits, two scenarios, tiny
#: settings, about a minute on 2 CPU cores (run by the tests). ``quick``: a
#: 6,000-image stratified Fashion-MNIST training subset and the 10,000 test
#: images, all 24 scenarios, on CPU. ``full``: all 60,000 training images
#: with the paper's ISPL settings, for a GPU.
PROFILES = {
    "smoke": BenchmarkProfile(
        name="smoke",
        dataset="digits",
        n_train=None,
        n_test=None,
        test_size=0.3,
        max_value=16,
        min_contrast=0,
        final_epochs=20,
        final_params={"module__n_filters": 16, "module__n_hidden": 64, "lr": 1e-3},
        defense_params={"isplfilter": "smoke", **_CPU_BASELINES},
        # Two eps = 20% scenarios whose drawn trigger is bright on digits:
        # an X (1 -> 3) and an L (7 -> 4).
        scenarios=(5, 17),
    ),
    "quick": BenchmarkProfile(
        name="quick",
        dataset="fashion-mnist",
        n_train=6000,
        n_test=None,
        test_size=0.0,
        max_value=255,
        min_contrast=0,
        final_epochs=8,
        final_params=dict(_FINAL),
        defense_params={"isplfilter": "fast", **_CPU_BASELINES},
    ),
    "full": BenchmarkProfile(
        name="full",
        dataset="fashion-mnist",
        n_train=None,
        n_test=None,
        test_size=0.0,
        max_value=255,
        min_contrast=0,
        final_epochs=20,
        final_params=dict(_FINAL),
        defense_params={
            "isplfilter": "paper",
            "spectralsignaturefilter": {"removal_rate": _SS_REMOVAL},
            "activationclusteringfilter": {},
            "itlmfilter": {},
            "confidentlearningfilter": {},
        },
        device="cuda",
    ),
}


def get_profile(name, **changes):
    """Return a benchmark profile, optionally with some fields changed.

    Parameters
    ----------
    name : {"smoke", "quick", "full"} or BenchmarkProfile
        A profile of :data:`PROFILES`, or a profile to change.
    **changes
        Fields to replace, e.g. ``n_train=3000`` or ``device="cpu"``.

    Returns
    -------
    profile : BenchmarkProfile

    Raises
    ------
    ValueError
        If the name or a field is unknown.

    Examples
    --------
    >>> from sklearn_ispl.benchmark import get_profile
    >>> get_profile("quick", n_train=3000).n_train
    3000
    """
    if isinstance(name, BenchmarkProfile):
        profile = name
    elif name in PROFILES:
        profile = PROFILES[name]
    else:
        raise ValueError(
            f"Unknown profile {name!r}; choose one of {', '.join(PROFILES)}."
        )
    unknown = set(changes) - set(BenchmarkProfile.__dataclass_fields__)
    if unknown:
        raise ValueError(f"Unknown profile fields: {sorted(unknown)}.")
    values = asdict(profile)
    values.update(changes)
    return BenchmarkProfile(**values)


@dataclass(frozen=True)
class Scenario:
    """One backdoor scenario of the benchmark.

    Parameters
    ----------
    index : int
        Position in the 24 scenarios (also the seed of its trigger draw).
    source, target : int
        Class indices.
    eps : float
        Share of the source class poisoned.
    attack : BackdoorAttack
        The drawn attack.
    """

    index: int
    source: int
    target: int
    eps: float
    attack: object

    @property
    def id(self):
        """Stable id, e.g. ``"05-s1t3-e20"``."""
        return (
            f"{self.index:02d}-s{self.source}t{self.target}"
            f"-e{round(self.eps * 100):02d}"
        )

    def describe(self):
        """JSON-ready description: classes, eps and the drawn trigger."""
        color = self.attack.color
        return {
            "index": self.index,
            "seed": self.index,
            "source": self.source,
            "target": self.target,
            "eps": self.eps,
            "trigger": self.attack.trigger,
            "position": list(self.attack.position),
            "color": list(color) if isinstance(color, tuple) else color,
        }


def benchmark_scenarios(image_shape, max_value=255, min_contrast=0):
    """Draw the benchmark's 24 scenarios for images of one shape.

    The paper's eight (source, target) pairs times ``eps`` in
    :data:`EPS_VALUES`, pair-major as the rows of the paper's Table 3. The
    trigger of scenario ``i`` is drawn by
    :func:`~sklearn_ispl.attacks.make_scenario` with ``random_state=i``.

    Parameters
    ----------
    image_shape : tuple of int
        ``(H, W)`` or ``(H, W, C)``.
    max_value : int, default=255
        Largest colour value.
    min_contrast : int, default=0
        Least brightest-channel colour (0: the paper's rule).

    Returns
    -------
    scenarios : list of Scenario

    Examples
    --------
    >>> from sklearn_ispl.benchmark import benchmark_scenarios
    >>> scenarios = benchmark_scenarios((28, 28))
    >>> len(scenarios), scenarios[5].id
    (24, '05-s1t3-e20')
    """
    scenarios = []
    for pair_index, (source, target) in enumerate(PAPER_CLASS_PAIRS):
        for eps_index, eps in enumerate(EPS_VALUES):
            index = 3 * pair_index + eps_index
            attack = make_scenario(
                image_shape,
                source,
                target,
                eps=eps,
                random_state=index,
                max_value=max_value,
                min_contrast=min_contrast,
            )
            scenarios.append(Scenario(index, source, target, eps, attack))
    return scenarios


def select_scenarios(scenarios, selection=None):
    """Pick scenarios by index, slice or id.

    Parameters
    ----------
    scenarios : list of Scenario
        All scenarios, as from :func:`benchmark_scenarios`.
    selection : str, sequence or None
        None or ``"all"``: all of them. Otherwise comma-separated items (or
        a sequence of them), each an index (``"5"``), a Python-style slice
        of indices (``"0:6"``, ``"::3"``) or a scenario id
        (``"05-s1t3-e20"``).

    Returns
    -------
    selected : list of Scenario
        In index order, without repeats.

    Raises
    ------
    ValueError
        If an item matches no scenario.

    Examples
    --------
    >>> from sklearn_ispl.benchmark import benchmark_scenarios, select_scenarios
    >>> all_24 = benchmark_scenarios((28, 28))
    >>> [s.index for s in select_scenarios(all_24, "0:2,23")]
    [0, 1, 23]
    """
    if selection is None or selection == "all":
        return list(scenarios)
    if isinstance(selection, str):
        items = [item.strip() for item in selection.split(",") if item.strip()]
    else:
        items = [str(item).strip() for item in selection]
    by_index = {s.index: s for s in scenarios}
    by_id = {s.id: s for s in scenarios}
    picked = set()
    for item in items:
        if item in by_id:
            picked.add(by_id[item].index)
        elif re.fullmatch(r"-?\d+", item):
            index = int(item)
            if index not in by_index:
                raise ValueError(
                    f"Scenario index {index} is out of range 0..{len(scenarios) - 1}."
                )
            picked.add(index)
        elif re.fullmatch(r"(-?\d*)(:-?\d*){1,2}", item):
            parts = [int(p) if p else None for p in item.split(":")]
            indices = sorted(by_index)[slice(*parts)]
            if not indices:
                raise ValueError(f"Scenario slice {item!r} selects nothing.")
            picked.update(indices)
        else:
            raise ValueError(
                f"Unknown scenario {item!r}: give indices (5), slices (0:6) or "
                f"ids such as {scenarios[0].id!r}."
            )
    return [by_index[i] for i in sorted(picked)]


# ---------------------------------------------------------------------------
# Data and the final classifier


def _load_data(profile, data_path=None):
    """Return ``X_train, y_train, X_test, y_test`` for ``profile``."""
    from sklearn.model_selection import train_test_split

    from .datasets import load_digits_images, load_fashion_mnist

    if profile.dataset == "digits":
        X, y = load_digits_images()
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=profile.test_size, stratify=y, random_state=profile.seed
        )
    elif profile.dataset == "fashion-mnist":
        X_train, y_train = load_fashion_mnist(data_path, subset="train")
        X_test, y_test = load_fashion_mnist(data_path, subset="test")
    else:
        raise ValueError(f"Unknown dataset {profile.dataset!r}.")
    X_train, y_train = _subset(X_train, y_train, profile.n_train, profile.seed)
    X_test, y_test = _subset(X_test, y_test, profile.n_test, profile.seed)
    return X_train, y_train, X_test, y_test


def _subset(X, y, n, seed):
    """Stratified subset of ``n`` samples, in their original order."""
    if n is None or n >= len(y):
        return X, y
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(
        np.arange(len(y)), train_size=n, stratify=y, random_state=seed
    )
    keep = np.sort(keep)
    return X[keep], y[keep]


class _FinalModel:
    """The final classifier of every column: a skorch CNN, fixed seed and epochs.

    Pixels are scaled with one mean and standard deviation, those of the
    clean training set, for every model of a profile.
    """

    def __init__(self, input_shape, n_classes, mean, std, epochs, params, seed, device):
        self.input_shape = tuple(input_shape)
        self.n_classes = int(n_classes)
        self.mean, self.std = float(mean), float(std)
        self.epochs = int(epochs)
        self.params = dict(params)
        self.seed = int(seed)
        self.device = device
        self.net_ = None

    def _prepare(self, X):
        from ._images import infer_layout, to_nchw

        X = np.asarray(X)
        Xt = np.array(to_nchw(X, infer_layout(X.shape)), dtype=np.float32)
        Xt -= np.float32(self.mean)
        Xt /= np.float32(self.std)
        return np.ascontiguousarray(Xt)

    def _new_net(self):
        from ._learners import make_weak_learner

        return make_weak_learner(
            self.input_shape, self.n_classes, device=self.device, **self.params
        )

    def fit(self, X, y):
        from ._learners import Learner

        y = np.asarray(y, dtype=np.int64)
        learner = Learner(
            self._new_net(), self._prepare(X), y, self.n_classes, self.seed
        )
        learner.fit_epochs(np.arange(len(y)), self.epochs)
        self.net_ = learner.estimator
        return self

    def predict(self, X):
        import torch

        from ._learners import IndexedTensorDataset

        # The package's own batch iterator, as in training (no per-item
        # collation); labels are not read.
        Xt = torch.from_numpy(self._prepare(X)).to(self.net_.device)
        rows = torch.arange(len(Xt), device=Xt.device)
        dataset = IndexedTensorDataset(Xt, rows, rows)
        return np.asarray(self.net_.predict(dataset), dtype=np.int64)

    def save(self, path):
        import torch

        torch.save(self.net_.module_.state_dict(), path)

    def load(self, path):
        import torch

        net = self._new_net()
        net.initialize()
        state = torch.load(path, map_location=net.device, weights_only=True)
        net.module_.load_state_dict(state)
        self.net_ = net
        return self


def _train_final(model_factory, X, y):
    """Train a final classifier (one place, so tests can count trainings)."""
    return model_factory().fit(X, y)


def _evaluate(model, scenario, X_test, y_test, pred_clean=None):
    """Clean accuracy and targeted misclassification rate of ``model``."""
    if pred_clean is None:
        pred_clean = model.predict(X_test)
    source = y_test == scenario.source
    pred_triggered = model.predict(scenario.attack.apply_trigger(X_test[source]))
    return {
        "C": clean_accuracy(y_test, pred_clean),
        "A": targeted_misclassification_rate(
            y_test[source],
            pred_clean[source],
            pred_triggered,
            scenario.source,
            scenario.target,
        ),
    }


# ---------------------------------------------------------------------------
# Results file


def _jsonable(value):
    """Turn settings (possibly holding estimators) into JSON-ready values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "get_params"):
        return {
            "estimator": type(value).__name__,
            # skorch keeps private bookkeeping (a set, ordered differently
            # per process) among its params; it is not a setting.
            "params": _jsonable(
                {
                    k: v
                    for k, v in value.get_params(deep=False).items()
                    if not k.startswith("_")
                }
            ),
        }
    if isinstance(value, type):
        return value.__name__
    return repr(value)


def _write_json_atomic(path, data):
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1, allow_nan=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _git_commit():
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None, None
    return head or None, bool(dirty)


def _machine(device):
    import sklearn
    import torch

    info = {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "torch": torch.__version__,
        "device": device,
    }
    if hasattr(os, "getloadavg"):
        # Timings on a shared machine mean little without its load.
        info["load_average_at_start"] = [round(v, 2) for v in os.getloadavg()]
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _profile_record(profile):
    record = _jsonable(asdict(profile))
    record["defense_params"] = {
        key: _jsonable(
            parse_defense_params(value, key) if key == "isplfilter" else value
        )
        for key, value in profile.defense_params.items()
    }
    return record


# Profile fields that define what is measured: a results file made with other
# values cannot be resumed.
_DATA_FIELDS = (
    "dataset",
    "n_train",
    "n_test",
    "test_size",
    "max_value",
    "min_contrast",
    "final_epochs",
    "final_params",
    "seed",
)


def _load_results(path, profile):
    if not path.exists():
        return None
    try:
        results = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"{path} exists but cannot be read ({exc}); move it away or choose "
            "another output folder."
        ) from None
    stored = results.get("profile", {})
    current = _profile_record(profile)
    changed = [k for k in _DATA_FIELDS if stored.get(k) != current.get(k)]
    if results.get("format") != RESULTS_FORMAT or changed:
        raise ValueError(
            f"{path} holds results of other settings ({', '.join(changed) or 'format'}"
            " differ); choose another output folder to start afresh."
        )
    return results


# ---------------------------------------------------------------------------
# The run


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
        ``benchmarks/results/<profile>`` under the working directory.
    scenarios : str or sequence, default=None
        Scenarios to run, as for :func:`select_scenarios`; None: the
        profile's default (all 24 for ``quick`` and ``full``).
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
        ``notes`` and ``summary``.

    Raises
    ------
    ValueError
        If a setting is invalid, or ``out`` holds results of a profile with
        other data or final-classifier settings.

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
    device = device or profile.device
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        logger.warning("CUDA is not available; running on CPU.")
        device = "cpu"
    out = Path(out) if out is not None else Path("benchmarks/results") / profile.name
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
            defenses,
            defense_params,
            n_jobs,
            device,
            data_path,
            command,
            progress,
        )
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


def _run(
    profile,
    out,
    results_path,
    selection,
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
    results = _load_results(results_path, profile)
    if results is None:
        results = {
            "format": RESULTS_FORMAT,
            "profile": _profile_record(profile),
            "runs": [],
            "clean_training": None,
            "scenarios": {},
            "notes": [],
        }
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
    all_scenarios = benchmark_scenarios(
        image_shape, profile.max_value, profile.min_contrast
    )
    chosen = select_scenarios(
        all_scenarios, profile.scenarios if selection is None else selection
    )
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    from ._images import infer_layout, to_nchw

    nchw = to_nchw(X_train, infer_layout(X_train.shape))
    mean = float(np.mean(nchw, dtype=np.float64))
    std = float(np.std(nchw, dtype=np.float64)) or 1.0

    def model_factory():
        return _FinalModel(
            nchw.shape[1:],
            n_classes,
            mean,
            std,
            profile.final_epochs,
            profile.final_params,
            profile.seed,
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
        if "M" in record and "no_defense" in record and not todo:
            _say(f"[{scenario.id}] done already; skipped", progress, bar)
            continue

        X_p, y_p, poison = scenario.attack.poison(X_train, y_train)
        record["n_train"] = int(len(y_p))
        record["n_poison"] = int(poison.sum())
        record["n_test_source"] = int((y_test == scenario.source).sum())
        label = (
            f"[{scenario.id}] {scenario.attack.trigger} at "
            f"{tuple(scenario.attack.position)} colour {scenario.attack.color}"
        )

        if "M" not in record:
            model, pred = clean_model()
            record["M"] = _evaluate(model, scenario, X_test, y_test, pred)["A"]
        if "no_defense" not in record:
            t0 = time.perf_counter()
            model = _train_final(model_factory, X_p, y_p)
            train_seconds = time.perf_counter() - t0
            record["no_defense"] = {
                **_evaluate(model, scenario, X_test, y_test),
                "train_seconds": round(train_seconds, 2),
                "run": run_index,
            }
            results["scenarios"][scenario.id] = record
            _write_json_atomic(results_path, results)
            nd = record["no_defense"]
            _say(
                f"{label}: {record['n_poison']} poisoned; M={100 * record['M']:.1f}% "
                f"| no defense C={100 * nd['C']:.1f}% A={100 * nd['A']:.1f}% "
                f"(train {train_seconds:.1f} s)",
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
                poison,
                X_test,
                y_test,
                model_factory,
                run_index,
                label,
                progress,
                bar,
            )
            results["scenarios"][scenario.id] = record
            _write_json_atomic(results_path, results)

    run_record["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    run_record["seconds"] = round(time.perf_counter() - started, 1)
    if hasattr(os, "getloadavg"):
        run_record["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    results["summary"] = summarize(results)
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
    poison,
    X_test,
    y_test,
    model_factory,
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
        defense, applied, ignored = _build_defense(cls, resolved, run_params, strict)
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
        report = filter_report(poison, keep)
        t0 = time.perf_counter()
        model = _train_final(model_factory, X_p[keep], y_p[keep])
        train_seconds = time.perf_counter() - t0
        scores = _evaluate(model, scenario, X_test, y_test)
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
    _say(
        f"{label}: {spec.label} C={100 * entry['C']:.1f}% A={100 * entry['A']:.1f}% "
        f"FP={entry['FP']} FN={entry['FN']}/{report['n_poison']} "
        f"(defense {fit_seconds:.1f} s, train {train_seconds:.1f} s)",
        progress,
        bar,
    )
    return entry


# ---------------------------------------------------------------------------
# Reporting


def _columns(results):
    """Defense keys present in the results, in the order of DEFENSES."""
    present = {
        key
        for record in results["scenarios"].values()
        for key in record.get("defenses", {})
    }
    return [spec for spec in DEFENSES if spec.key in present]


def _sorted_records(results):
    return sorted(
        results["scenarios"].items(), key=lambda kv: kv[1]["scenario"]["index"]
    )


def summarize(results):
    """Summarise each defense over the scenarios it finished.

    Parameters
    ----------
    results : dict
        As returned by :func:`run_benchmark` (or read from ``results.json``).

    Returns
    -------
    summary : dict
        Per column (``"no_defense"`` and each defense key): ``label``,
        ``n_scenarios``, ``n_asr_below_1pct`` (scenarios whose attack
        success is under 1%), ``mean_A``, ``mean_C``,
        ``mean_clean_drop_points`` (clean accuracy of the clean-training
        model minus the column's, in percentage points, averaged),
        ``mean_fp_share`` (FP over the clean training samples),
        ``mean_fn_share`` (FN over the poisoned samples) and
        ``mean_seconds`` (defense fit time); ``None`` where undefined.

    Examples
    --------
    >>> from sklearn_ispl.benchmark import summarize
    >>> results = {"clean_training": {"C": 0.9}, "scenarios": {"00": {
    ...     "scenario": {"index": 0}, "n_train": 100, "n_poison": 10,
    ...     "no_defense": {"C": 0.9, "A": 0.8}, "defenses": {"isplfilter": {
    ...     "C": 0.88, "A": 0.0, "FP": 9, "FN": 1, "seconds": 3.0}}}}}
    >>> s = summarize(results)["isplfilter"]
    >>> s["n_asr_below_1pct"], round(s["mean_clean_drop_points"], 1), s["mean_fp_share"]
    (1, 2.0, 0.1)
    """
    clean_c = (results.get("clean_training") or {}).get("C")
    summary = {}
    columns = [("no_defense", "No defense")] + [
        (spec.key, spec.label) for spec in _columns(results)
    ]
    for key, label in columns:
        rows = []
        for _, record in _sorted_records(results):
            entry = (
                record.get("no_defense")
                if key == "no_defense"
                else record.get("defenses", {}).get(key)
            )
            if entry and "C" in entry:
                rows.append((record, entry))
        n_errors = sum(
            1
            for record in results["scenarios"].values()
            if "error" in record.get("defenses", {}).get(key, {})
        )
        item = {
            "label": label,
            "n_scenarios": len(rows),
            "n_errors": n_errors,
            "n_asr_below_1pct": sum(entry["A"] < 0.01 for _, entry in rows),
            "mean_A": _mean(entry["A"] for _, entry in rows),
            "mean_C": _mean(entry["C"] for _, entry in rows),
            "mean_clean_drop_points": None
            if clean_c is None
            else _mean(100 * (clean_c - entry["C"]) for _, entry in rows),
            "mean_fp_share": None,
            "mean_fn_share": None,
            "mean_seconds": None,
        }
        if key != "no_defense":
            item["mean_fp_share"] = _mean(
                entry["FP"] / max(1, record["n_train"] - record["n_poison"])
                for record, entry in rows
            )
            item["mean_fn_share"] = _mean(
                entry["FN"] / max(1, record["n_poison"]) for record, entry in rows
            )
            item["mean_seconds"] = _mean(entry["seconds"] for _, entry in rows)
        summary[key] = item
    return summary


def _mean(values):
    values = list(values)
    return float(np.mean(values)) if values else None


def _summary_lines(results):
    lines = []
    for item in (results.get("summary") or summarize(results)).values():
        if not item["n_scenarios"]:
            continue
        parts = [
            f"{item['label']}: ASR < 1% in {item['n_asr_below_1pct']}/"
            f"{item['n_scenarios']} scenarios",
            f"mean A {_pct(item['mean_A'])}%",
        ]
        if item["mean_clean_drop_points"] is not None:
            parts.append(
                f"clean accuracy {-item['mean_clean_drop_points']:+.1f} points vs "
                "clean training"
            )
        if item["mean_fp_share"] is not None:
            parts.append(f"removes {_pct(item['mean_fp_share'])}% of clean samples")
            parts.append(f"keeps {_pct(item['mean_fn_share'])}% of poison")
            parts.append(f"{item['mean_seconds']:.1f} s per fit")
        if item["n_errors"]:
            parts.append(f"{item['n_errors']} failed")
        lines.append("; ".join(parts))
    return lines


def _pct(value, digits=1):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * value:.{digits}f}"


def results_table(results):
    """Format results as Markdown in the layout of the paper's Table 3.

    Parameters
    ----------
    results : dict
        As returned by :func:`run_benchmark`.

    Returns
    -------
    markdown : str
        One row per scenario: source / target, trigger, position (row,
        column), colour, eps; ``M``; no-defense ``C`` and ``A``; and per
        defense ``C``, ``A``, ``FP``, ``FN`` and ``s`` (fit seconds). ``C``,
        ``A`` and ``M`` are percentages. Then a summary per column.
    """
    specs = _columns(results)
    header = ["S / T", "trigger", "pos", "colour", "eps", "M", "ND C", "ND A"]
    for spec in specs:
        header += [f"{spec.label} {m}" for m in ("C", "A", "FP", "FN", "s")]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for _, record in _sorted_records(results):
        sc = record["scenario"]
        nd = record.get("no_defense", {})
        row = [
            f"{sc['source']} / {sc['target']}",
            sc["trigger"],
            f"({sc['position'][0]}, {sc['position'][1]})",
            str(sc["color"]),
            f"{round(100 * sc['eps'])}",
            _pct(record.get("M")),
            _pct(nd.get("C")),
            _pct(nd.get("A")),
        ]
        for spec in specs:
            entry = record.get("defenses", {}).get(spec.key, {})
            if "C" in entry:
                row += [
                    _pct(entry["C"]),
                    _pct(entry["A"]),
                    str(entry["FP"]),
                    str(entry["FN"]),
                    f"{entry['seconds']:.0f}",
                ]
            else:
                row += ["error" if "error" in entry else "–"] + ["–"] * 4
        lines.append("| " + " | ".join(row) + " |")

    clean = results.get("clean_training") or {}
    summary = results.get("summary") or summarize(results)
    lines += [
        "",
        f"Clean training (no poison): C = {_pct(clean.get('C'))}%.",
        "",
        "| column | scenarios | ASR < 1% | mean A (%) | mean C (%) | "
        "C drop vs clean (points) | FP share (%) | FN share (%) | fit s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for item in summary.values():
        drop = item["mean_clean_drop_points"]
        secs = item["mean_seconds"]
        lines.append(
            f"| {item['label']} | {item['n_scenarios']} | "
            f"{item['n_asr_below_1pct']} | {_pct(item['mean_A'])} | "
            f"{_pct(item['mean_C'])} | {'–' if drop is None else f'{drop:.1f}'} | "
            f"{_pct(item['mean_fp_share'])} | {_pct(item['mean_fn_share'])} | "
            f"{'–' if secs is None else f'{secs:.0f}'}"
            " |"
        )
    return "\n".join(lines) + "\n"


def plot_asr(results, path):
    """Plot attack success per scenario and column as grouped bars.

    Parameters
    ----------
    results : dict
        As returned by :func:`run_benchmark`.
    path : str or path-like
        Where to save the figure (PNG).

    Returns
    -------
    path : Path or None
        The file written, or None when matplotlib is not installed
        (``pip install sklearn-ispl[plot]``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed; no plot written.")
        return None
    records = [record for _, record in _sorted_records(results)]
    specs = _columns(results)
    columns = [("no_defense", "No defense")] + [(s.key, s.label) for s in specs]
    n_cols = len(columns)
    width = 0.8 / n_cols
    x = np.arange(len(records))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.3 * len(records) * n_cols) + 1.5, 4.2))
    for j, (key, label) in enumerate(columns):
        values = []
        for record in records:
            entry = (
                record.get("no_defense")
                if key == "no_defense"
                else record.get("defenses", {}).get(key)
            )
            values.append(100 * entry["A"] if entry and "A" in entry else np.nan)
        centres = x - 0.4 + width * (j + 0.5)
        bars = ax.bar(centres, values, width, label=label)
        # A dot on each bar, so that 0% (no bar) still shows.
        ax.plot(
            centres, values, "o", markersize=3, color=bars.patches[0].get_facecolor()
        )
    m_values = [100 * r["M"] if "M" in r else np.nan for r in records]
    ax.plot(x, m_values, "k_", markersize=12, label="M (clean training)")
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=0.8)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(-0.1, 110)
    ax.set_ylabel("attack success A (%)")
    ax.set_xticks(x)
    ax.set_xticklabels(
        [
            f"{r['scenario']['source']}/{r['scenario']['target']} "
            f"{round(100 * r['scenario']['eps'])}%"
            for r in records
        ],
        rotation=60,
        ha="right",
        fontsize=8,
    )
    profile = results.get("profile", {}).get("name", "")
    ax.set_title(f"Attack success per scenario ({profile}; dashed: 1%)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(results, out):
    """Write ``results.md`` and ``asr.png`` for ``results`` into ``out``.

    Parameters
    ----------
    results : dict
        As returned by :func:`run_benchmark`.
    out : str or path-like
        Output folder.

    Returns
    -------
    paths : list of Path
        The files written.
    """
    out = Path(out)
    profile = results.get("profile", {})
    run = results["runs"][-1] if results.get("runs") else {}
    head = [
        f"# Benchmark results: profile `{profile.get('name')}`",
        "",
        f"Data: {profile.get('dataset')}, training subset "
        f"{profile.get('n_train') or 'all'}, final classifier "
        f"{profile.get('final_epochs')} epochs. Last run: "
        f"`{run.get('command', '')}` at commit {run.get('git_commit')}"
        f"{' (uncommitted changes)' if run.get('git_dirty') else ''}.",
        "",
        "C = clean accuracy, A = attack success (targeted misclassification "
        "rate), M = A of the model trained on clean data; percentages. "
        "FP = clean samples removed, FN = poisoned samples kept, s = defense "
        "fit seconds. Position is (row, column).",
        "",
    ]
    notes = results.get("notes") or []
    if notes:
        head += [f"- {note}" for note in notes] + [""]
    head.append("")
    md = out / "results.md"
    md.write_text("\n".join(head) + results_table(results))
    paths = [md]
    png = plot_asr(results, out / "asr.png")
    if png is not None:
        paths.append(png)
    return paths
