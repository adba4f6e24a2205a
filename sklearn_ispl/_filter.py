"""ISPLFilter: the whole defense (partition, vote, refine)."""

import time
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state, resample
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import BaseFilter, check_nested
from ._docstring import SHARED_PARAMS, Substitution
from ._learners import check_weak_learner, make_weak_learner
from ._partition import partition
from ._refine import SelfTraining
from ._schedules import SCHEDULE_KEYS, SCHEDULES, resolve_schedule_name
from ._stages import ExtraStage, FitState
from ._validation import resolve_size
from ._vote import BoostedComponentVoter, vote

__all__ = ["ISPLFilter"]

# Parameters whose own settings can be given as ``name__setting`` even while
# the parameter itself is left to the schedule (as skorch nets take
# ``optimizer__momentum``).
NESTED = ("weak_learner", "voter", "refiner")
PARTITION = (
    "n_runs",
    "n_components",
    "warmup_epochs",
    "epochs_per_iteration",
    "expansion",
    "momentum",
    "class_floor",
    "partition_samples",
)


@Substitution(**SHARED_PARAMS)
class ISPLFilter(BaseFilter):
    """Remove backdoor poison with Inverse Self-Paced Learning and boosting.

    The defense of Jin et al. (ICLR 2023, "Incompatibility Clustering as a
    Defense Against Backdoor Poisoning Attacks"), as a sample filter:

    1. **partition**: ``n_runs`` runs of Inverse Self-Paced Learning each
       split the training set into ``n_components`` homogeneous
       *components*: sets whose samples a weak learner trained on part of
       the set generalises to (see :mod:`sklearn_ispl._partition`);
    2. **vote**: a weak learner trained on each component votes on every
       sample (``voter``, a :class:`BoostedComponentVoter`); samples whose
       given label the vote does not support are dropped;
    3. **refine**: a fresh model self-trains on the kept set (``refiner``, a
       :class:`SelfTraining`), re-admitting the samples it learns to agree
       with.

    Every setting left at None comes from the ``schedule``, resolved when
    ``fit`` starts and recorded in ``schedule_``; a value given here always
    wins. ``ISPLFilter()`` is the recommended defense: ``schedule="auto"``
    picks the schedule measured best for the size of the data (the
    documentation's benchmarks page lists each schedule's results and
    cost). Settings of the nested parts can be given directly, also while
    the part itself is left to the schedule: ``voter__n_epochs=10``,
    ``refiner__n_rounds=3``, ``weak_learner__lr=0.01``; as with any
    scikit-learn estimator they are reachable from a pipeline
    (``isplfilter__voter__n_epochs``) and a grid search.

    Parameters
    ----------
    {weak_learner}
        None here lets the schedule set up the default network.
    schedule : str, default="auto"
        The named settings the unset parameters take: "auto" (by sample
        count: "small" below 3,000 samples, "medium" below 20,000, "large"
        above), "paper" (appendix B.1, optimizer included: standard SGD, 40-
        epoch component learners, 20 self-training rounds), "small",
        "medium" or "large" (see :data:`sklearn_ispl.SCHEDULES`).
    n_runs : int, default=None
        Independent ISPL runs; their components are pooled for the vote
        (paper: 3).
    n_components : int, default=None
        Components per run (paper: 8 of about 12% each). A run stops early
        once a component would hold fewer than two samples per class; the
        rest is its last component. 1 means no partition.
    warmup_epochs : int, default=None
        Epochs on a random half of the remaining samples before a round's
        first trim (paper: 8).
    epochs_per_iteration : int, default=None
        Epochs after each trim (paper: 4).
    expansion : float in (0, 1], default=None
        The expansion factor alpha: share of the kept set trained on after
        each trim (paper: 1/4). Smaller values test how well the kept set
        generalises to itself.
    momentum : float in [0, 1), default=None
        Smoothing of per-sample losses across iterations (paper: 0.9).
    class_floor : float in [0, 1], default=None
        Per class, the lowest-loss ``beta * class_floor`` share is always
        kept, so a component cannot collapse onto a few classes (paper: 1/8).
    partition_samples : int or float, default=None
        Samples the partition runs on: a count (int) or a share of the data
        (float in (0, 1]; 1.0 is every sample, the paper), drawn at random
        stratified by label. The component learners still vote on every
        sample and self-training judges every sample. Use a draw of a few
        thousand on tens of thousands of samples, where the partition is the
        costliest stage (a deviation from the paper).
    voter : BoostedComponentVoter, default=None
        The vote stage's settings (``n_epochs``, ``voting``, ``min_votes``).
        Its ``weak_learner``, when None, is this filter's; its ``device``,
        ``n_jobs`` and ``random_state`` are this filter's.
    refiner : SelfTraining, default=None
        The refine stage's settings (``n_rounds``, ``n_epochs``,
        ``momentum``, ``n_folds``, ``keep_ratio``, ``learner``); 0 rounds
        skips the stage.
    extra_stages : list of stage objects, default=None
        Experimental stages beyond the paper, from
        :mod:`sklearn_ispl.experimental` (a trigger-blind judge, a rescue of
        hard clean samples, a stamped-trigger check); ``[]`` runs none.
    {image_shape}
    {device}
    {n_jobs}
    {random_state}
    {verbose}
    **nested_params
        ``weak_learner__*``, ``voter__*`` and ``refiner__*`` settings,
        applied to the resolved part (the learner given or the schedule's,
        never changing the object passed in).

    Attributes
    ----------
    keep_mask_ : ndarray of bool of shape (n_samples,)
        True for kept samples.
    sample_indices_ : ndarray of int
        Indices of the kept samples.
    scores_ : ndarray of shape (n_samples,)
        Share of component learners voting for each sample's given label.
        Low means suspicious.
    schedule_ : dict
        Every setting that ran: ``schedule`` (the named schedule resolved),
        the partition's settings, ``voter__*`` and ``refiner__*`` settings,
        and descriptions (class name and settings) of ``weak_learner`` and
        ``refine_learner`` (None: the default network sized from the data)
        and of each of ``extra_stages``.
    vote_keep_mask_ : ndarray of bool of shape (n_samples,)
        The kept set after voting, before the refine stage.
    refine_scores_ : ndarray of shape (n_samples,)
        The refine model's smoothed probability of each given label (NaN when
        no round ran).
    refine_keep_mask_ : ndarray of bool of shape (n_samples,)
        The refine stage's decision, before the extra stages acted.
    extra_stages_ : list of stage objects
        Fitted copies of the extra stages that ran, with what each found.
    components_ : list of ndarray
        All components of all runs, as row indices.
    component_runs_ : ndarray of int
        The ISPL run each component came from.
    predictions_ : ndarray of shape (n_components_total, n_samples)
        Each component learner's predicted class index per sample.
    classes_ : ndarray
        Class labels.
    n_features_in_ : int
        Values per sample (pixels times channels, or columns).
    feature_names_in_ : ndarray of str
        Column names, when ``X`` is a DataFrame with string columns.
    input_layout_ : str
        How ``X`` was read: "nhw", "nhwc", "nchw", "flat" or "tabular".
    stage_times_ : dict
        Wall-clock seconds of "partition", "vote", "refine" and of each
        extra stage (by class name).

    See Also
    --------
    BoostedComponentVoter : The vote stage alone, for components from anywhere.
    SelfTraining : The refine stage's settings.

    Examples
    --------
    >>> from sklearn_ispl import ISPLFilter
    >>> from sklearn_ispl.attacks import BackdoorAttack
    >>> from sklearn_ispl.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> attack = BackdoorAttack(source=0, target=8, trigger="pattern",
    ...                         position=(1, 1), color=16, eps=0.2,
    ...                         random_state=0)
    >>> X_p, y_p, poison = attack.poison(X, y)
    >>> ispl = ISPLFilter(random_state=0)
    >>> X_kept, y_kept = ispl.fit_resample(X_p, y_p)  # doctest: +SKIP
    >>> ispl.schedule_["schedule"]  # doctest: +SKIP
    'small'
    """

    _parameter_constraints: dict = {
        **BaseFilter._parameter_constraints,
        "schedule": [StrOptions({"auto", *SCHEDULES})],
        "n_runs": [Interval(Integral, 1, None, closed="left"), None],
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "warmup_epochs": [Interval(Integral, 0, None, closed="left"), None],
        "epochs_per_iteration": [Interval(Integral, 1, None, closed="left"), None],
        "expansion": [Interval(Real, 0, 1, closed="right"), None],
        "momentum": [Interval(Real, 0, 1, closed="left"), None],
        "class_floor": [Interval(Real, 0, 1, closed="both"), None],
        "partition_samples": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0, 1, closed="right"),
            None,
        ],
        "voter": [BoostedComponentVoter, None],
        "refiner": [SelfTraining, None],
        "extra_stages": [list, tuple, None],
    }

    def __init__(
        self,
        weak_learner=None,
        *,
        schedule="auto",
        n_runs=None,
        n_components=None,
        warmup_epochs=None,
        epochs_per_iteration=None,
        expansion=None,
        momentum=None,
        class_floor=None,
        partition_samples=None,
        voter=None,
        refiner=None,
        extra_stages=None,
        image_shape=None,
        device="cpu",
        n_jobs=None,
        random_state=None,
        verbose=0,
        **nested_params,
    ):
        self.weak_learner = weak_learner
        self.schedule = schedule
        self.n_runs = n_runs
        self.n_components = n_components
        self.warmup_epochs = warmup_epochs
        self.epochs_per_iteration = epochs_per_iteration
        self.expansion = expansion
        self.momentum = momentum
        self.class_floor = class_floor
        self.partition_samples = partition_samples
        self.voter = voter
        self.refiner = refiner
        self.extra_stages = extra_stages
        self.image_shape = image_shape
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        for name, value in nested_params.items():
            if name.split("__", 1)[0] not in NESTED or "__" not in name:
                raise TypeError(
                    f"ISPLFilter got an unexpected keyword argument {name!r}; "
                    "settings of nested parts start with "
                    f"{', '.join(p + '__' for p in NESTED)}."
                )
            setattr(self, name, value)

    # -- nested settings, skorch-style --------------------------------------

    def _nested_params(self):
        return {
            name: value
            for name, value in vars(self).items()
            if "__" in name and name.split("__", 1)[0] in NESTED
        }

    def get_params(self, deep=True):
        """Get the parameters, ``name__setting`` ones included."""
        params = super().get_params(deep=deep)
        params.update(self._nested_params())
        return params

    def set_params(self, **params):
        """Set parameters; ``weak_learner__*``, ``voter__*`` and ``refiner__*``
        settings are stored on the filter and applied in ``fit``, so they work
        while the part is left to the schedule and never change a part passed
        in."""
        nested = {
            k: v for k, v in params.items() if "__" in k and k.split("__")[0] in NESTED
        }
        super().set_params(**{k: v for k, v in params.items() if k not in nested})
        for name, value in nested.items():
            setattr(self, name, value)
        return self

    # -- fit ----------------------------------------------------------------

    def _fit_filter(self, data):
        plan = self._resolve(data)
        rng = check_random_state(self.random_state)
        times = {}
        tic = time.perf_counter()
        components, runs = self._partition_stage(data, plan, rng)
        times["partition"] = time.perf_counter() - tic

        tic = time.perf_counter()
        vote_keep, scores, predictions = vote(
            plan["voter"], data, components, plan["weak_learner"], rng
        )
        times["vote"] = time.perf_counter() - tic

        state = FitState(
            data=data,
            classes=self.classes_,
            rng=rng,
            device=self.device,
            refine_learner=plan["refine_learner"],
            scores=scores,
            vote_keep=vote_keep,
            start=vote_keep.copy(),
            trainable=np.ones(len(data), dtype=bool),
        )
        stages = plan["extra_stages"]
        for stage in stages:
            self._timed(times, stage, stage.before_refine, state)

        tic = time.perf_counter()
        keep, support = plan["refiner"].refine(
            data,
            state.start,
            state.trainable,
            rng.randint(np.iinfo(np.int32).max),
            self.device,
            plan["refine_learner"],
        )
        times["refine"] = time.perf_counter() - tic
        state.keep, state.refine_keep, state.support = keep, keep.copy(), support

        for stage in stages:
            self._timed(times, stage, stage.after_refine, state)

        self.schedule_ = plan["record"]
        self.stage_times_ = times
        self.components_ = components
        self.component_runs_ = runs
        self.predictions_ = predictions
        self.vote_keep_mask_ = vote_keep
        self.refine_scores_ = support
        self.refine_keep_mask_ = state.refine_keep
        self.extra_stages_ = stages
        keep = state.keep
        if keep.mean() < 0.5:
            # Backdoor poison is a small share of a dataset; losing half of it
            # means the learners were too weak, not that half was poisoned.
            warnings.warn(
                f"ISPLFilter kept only {keep.sum()} of {len(keep)} samples. On "
                "small datasets the learners get few gradient steps per epoch: "
                "raise warmup_epochs, epochs_per_iteration, voter__n_epochs and "
                "refiner__n_epochs.",
                UserWarning,
                stacklevel=3,
            )
        return keep, scores

    @staticmethod
    def _timed(times, stage, hook, state):
        tic = time.perf_counter()
        hook(state)
        name = type(stage).__name__
        times[name] = times.get(name, 0.0) + time.perf_counter() - tic

    def _partition_stage(self, data, plan, rng):
        settings = plan["partition"]
        rows = self._partition_rows(data, settings, rng)
        return partition(
            data,
            plan["weak_learner"],
            rng,
            self.device,
            self.n_jobs,
            self.verbose,
            rows=rows,
            **{k: v for k, v in settings.items() if k != "partition_samples"},
        )

    @staticmethod
    def _partition_rows(data, settings, rng):
        """The rows the partition runs on: a stratified draw, or None for all."""
        n = len(data)
        if settings["partition_samples"] is None:
            return None
        size = resolve_size(settings["partition_samples"], n)
        if size >= n:
            return None
        return np.sort(
            resample(
                np.arange(n),
                replace=False,
                n_samples=size,
                stratify=data.y,
                random_state=rng.randint(np.iinfo(np.int32).max),
            )
        )

    # -- schedule resolution ------------------------------------------------

    def _resolve(self, data):
        """Every setting of this fit, validated before any training."""
        name = resolve_schedule_name(self.schedule, len(data))
        schedule = SCHEDULES[name]
        assert set(schedule) == set(SCHEDULE_KEYS)
        settings = {
            key: schedule[key] if getattr(self, key) is None else getattr(self, key)
            for key in PARTITION
        }
        self._check_partition(settings, len(data))
        nested = self._nested_params()

        def sub(prefix):
            return {
                k[len(prefix) + 2 :]: v
                for k, v in nested.items()
                if k.startswith(prefix + "__")
            }

        if self.weak_learner is not None:
            weak_learner = clone(self.weak_learner)
        else:
            weak_learner = _default_learner(schedule["weak_learner"], data)
        if sub("weak_learner"):
            if weak_learner is None:
                weak_learner = make_weak_learner(data.input_shape, data.n_classes)
            _set_nested(weak_learner, sub("weak_learner"), "weak_learner")
        check_weak_learner(weak_learner, "weak_learner")

        if self.weak_learner is not None or schedule["refine_learner"] is None:
            refine_learner = weak_learner
        else:
            refine_learner = _default_learner(schedule["refine_learner"], data)
        if self.refiner is not None:
            refiner = clone(self.refiner)
        else:
            refiner = SelfTraining(**schedule["refiner"])
        if refiner.learner is None:
            refiner.set_params(learner=refine_learner)
        _set_nested(refiner, sub("refiner"), "refiner")
        check_nested(refiner, "refiner")
        check_weak_learner(refiner.learner, "refiner__learner")
        refiner.check(data.y)

        if self.voter is not None:
            voter = clone(self.voter)
        else:
            voter = BoostedComponentVoter(**schedule["voter"])
        if voter.weak_learner is None:
            voter.set_params(weak_learner=weak_learner)
        _set_nested(voter, sub("voter"), "voter")
        voter.set_params(device=self.device, n_jobs=self.n_jobs, verbose=self.verbose)
        check_nested(voter, "voter")
        check_weak_learner(voter.weak_learner, "voter__weak_learner")

        if self.extra_stages is not None:
            stages = [clone(stage) for stage in self.extra_stages]
        else:
            stages = schedule["extra_stages"]()
        for i, stage in enumerate(stages):
            if not isinstance(stage, ExtraStage):
                raise ValueError(
                    f"extra_stages[{i}] must be a stage from "
                    "sklearn_ispl.experimental (an ExtraStage); got "
                    f"{type(stage).__name__}."
                )
            check_nested(stage, f"extra_stages[{i}]")

        record = {"schedule": name, **settings}
        record.update(
            {f"voter__{k}": v for k, v in _own_params(voter).items()},
        )
        record.update({f"refiner__{k}": v for k, v in _own_params(refiner).items()})
        record.update(
            weak_learner=describe(voter.weak_learner),
            refine_learner=describe(refiner.learner),
            extra_stages=[describe(stage) for stage in stages],
        )
        return {
            "partition": settings,
            "weak_learner": voter.weak_learner,
            "voter": voter,
            "refiner": refiner,
            "refine_learner": refiner.learner,
            "extra_stages": stages,
            "record": record,
        }

    def _check_partition(self, settings, n_samples):
        """Partition settings the data cannot support, caught before training."""
        for key, value in settings.items():
            if isinstance(value, bool):
                raise ValueError(f"{key} must be a number, not a bool; got {value!r}.")
        if n_samples < settings["n_components"]:
            raise ValueError(
                f"ISPLFilter needs at least n_components={settings['n_components']} "
                f"samples; got {n_samples}."
            )
        if settings["partition_samples"] is not None:
            size = resolve_size(settings["partition_samples"], n_samples)
            if size < min(settings["n_components"], n_samples):
                raise ValueError(
                    f"partition_samples gives {size} samples, fewer than "
                    f"n_components={settings['n_components']}."
                )


def _default_learner(spec, data):
    """The default network with the schedule's settings ``spec``.

    None stands for the default network sized from the data, as the
    learners build it themselves. Tabular rows take the settings that are
    not the CNN's architecture.
    """
    spec = dict(spec)
    if len(data.input_shape) != 3:
        spec = {k: v for k, v in spec.items() if not k.startswith("module__")}
    if not spec:
        return None
    return make_weak_learner(**spec)


def _set_nested(estimator, params, prefix):
    """Apply ``params`` to ``estimator``, naming ``prefix`` in any error."""
    if not params:
        return
    try:
        estimator.set_params(**params)
    except (ValueError, TypeError, AttributeError) as exc:
        names = ", ".join(f"{prefix}__{k}" for k in params)
        raise ValueError(f"Cannot set {names}: {exc}") from None


def describe(estimator):
    """A plain description of an estimator's settings, for ``schedule_``.

    ``{"estimator": class name, "params": its settings}``, with classes and
    functions named and nested estimators described alike; None stays None
    (the default network sized from the data). A fitted filter keeps no
    learner object, only what it was.
    """
    if estimator is None:
        return None
    return {
        "estimator": type(estimator).__name__,
        "params": {
            k: _plain(v) for k, v in sorted(estimator.get_params(deep=False).items())
        },
    }


def _plain(value):
    if hasattr(value, "get_params") and not isinstance(value, type):
        return describe(value)
    if isinstance(value, type) or callable(value):
        return getattr(value, "__name__", repr(value))
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _own_params(estimator):
    """``estimator``'s settings, without those the filter sets for it."""
    skip = {"weak_learner", "learner", "device", "n_jobs", "random_state"}
    skip |= {"verbose", "image_shape", "partitioner"}
    return {k: v for k, v in estimator.get_params(deep=False).items() if k not in skip}
