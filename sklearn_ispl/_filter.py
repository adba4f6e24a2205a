"""ISPLFilter: the whole defense (partition, vote, refine)."""

import time
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state, resample
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import BaseFilter
from ._docstring import SHARED_PARAMS, Substitution
from ._partition import partition
from ._refine import SelfTraining
from ._schedules import NESTED, SCHEDULES, resolve_settings
from ._stages import FitState
from ._validation import resolve_size
from ._vote import BoostedComponentVoter, vote

__all__ = ["ISPLFilter"]


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
    refine_proba_ : ndarray of shape (n_samples, n_classes)
        The refine models' smoothed probabilities of every class, each
        sample's from a model that did not train on it when the refine stage
        cross-fits (NaN when no round ran): what the class each removed
        sample looks like is read from here.
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
        # Kept apart from the named parameters, as skorch keeps its
        # ``optimizer__*`` settings; their names are checked in fit.
        self._nested = dict(nested_params)

    # -- nested settings, skorch-style --------------------------------------

    def _nested_params(self):
        return dict(getattr(self, "_nested", {}))

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
            k: v
            for k, v in params.items()
            if k in self._nested_params() or ("__" in k and k.split("__")[0] in NESTED)
        }
        super().set_params(**{k: v for k, v in params.items() if k not in nested})
        self._nested = {**self._nested_params(), **nested}
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
            n_jobs=self.n_jobs,
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
        keep, support, proba = plan["refiner"].refine(
            data,
            state.start,
            state.trainable,
            rng.randint(np.iinfo(np.int32).max),
            self.device,
            self.n_jobs,
        )
        times["refine"] = time.perf_counter() - tic
        state.keep, state.refine_keep = keep, keep.copy()
        state.support, state.proba = support, proba

        for stage in stages:
            self._timed(times, stage, stage.after_refine, state)

        self.schedule_ = plan["record"]
        self.stage_times_ = times
        self.components_ = components
        self.component_runs_ = runs
        self.predictions_ = predictions
        self.vote_keep_mask_ = vote_keep
        self.refine_scores_ = support
        self.refine_proba_ = state.proba
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

    def _resolve(self, data):
        """Every setting of this fit, validated before any training."""
        return resolve_settings(self, data)
