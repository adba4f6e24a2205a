"""The defenses the benchmark compares: names, presets and settings."""

import json
import math
from dataclasses import dataclass
from pathlib import Path

from .. import SCHEDULES


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
        holding such an object; or, for ISPLFilter, the name of a schedule
        (``"auto"`` or one of :data:`sklearn_ispl.SCHEDULES`), which stands
        for ``{"schedule": name}``. An ISPLFilter object may name its
        schedule under ``"schedule"``; its other keys override that
        schedule's settings (``'{"schedule": "medium", "refiner__n_folds": 4}'``).
    defense : str, default="isplfilter"
        The defense the settings are for.

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
    >>> parse_defense_params("medium")
    {'schedule': 'medium'}
    """
    if isinstance(text, dict):
        return dict(text)
    spec = _resolve_defense(defense)
    text = str(text).strip()
    if spec.key == "isplfilter" and text in ("auto", *SCHEDULES):
        return {"schedule": text}
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
            f" or a schedule (auto, {', '.join(SCHEDULES)})"
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


def make_defense(cls, params, run_params, strict=True):
    """Build the defense ``cls`` from flat (possibly nested) ``params``.

    Uses only the estimators' public ``set_params``: ``name__setting`` keys
    reach nested parts (ISPLFilter takes ``voter__*``, ``refiner__*`` and
    ``weak_learner__*`` even while the part is left to its schedule).
    ``run_params`` (seed, jobs, device, verbosity) are set where the class
    has them.

    Returns
    -------
    estimator : object
        The defense, unfitted.
    applied : dict
        The settings applied.
    ignored : dict
        Settings whose name the class lacks (only when ``strict`` is False;
        with ``strict`` they raise ValueError).
    """
    estimator = cls()
    accepted = estimator.get_params(deep=False)
    applied, ignored = {}, {}
    for name, value in params.items():
        head = name.split("__", 1)[0]
        if head not in accepted:
            if strict:
                raise ValueError(
                    f"{cls.__name__} has no parameter {head!r}; valid: "
                    f"{', '.join(sorted(accepted))}."
                )
            ignored[name] = value
            continue
        applied[name] = value
    try:
        estimator.set_params(**applied)
    except ValueError as exc:
        raise ValueError(
            f"Cannot set {sorted(applied)} on {cls.__name__}: {exc}"
        ) from None
    for name, value in run_params.items():
        if name in accepted:
            estimator.set_params(**{name: value})
    return estimator, applied, ignored
