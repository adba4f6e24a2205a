"""ISPLFilter: the whole defense (partition, vote, refine)."""

import time
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state, resample
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from ._base import BaseFilter
from ._learners import check_weak_learner, run_tasks
from ._partition import ispl_run
from ._refine import blind_judge, label_fit_trace, rescue, self_train
from ._trigger import trigger_check
from ._validation import resolve_size
from ._vote import BoostedComponentVoter

# Neighbours of the judge that groups samples for the trigger check when
# blind_neighbors is None (the large preset's judge).
LOOK_NEIGHBORS = 15

__all__ = ["ISPLFilter"]


class ISPLFilter(BaseFilter):
    """Remove backdoor poison with Inverse Self-Paced Learning and boosting.

    The defense of Jin et al. (ICLR 2023, "Incompatibility Clustering as a
    Defense Against Backdoor Poisoning Attacks"), as a sample filter:

    1. **partition**: ``n_runs`` runs of Inverse Self-Paced Learning each
       split the training set into ``n_components`` homogeneous components
       (see :mod:`sklearn_ispl._partition` for the schedule);
    2. **vote**: a weak learner trained on each component votes on every
       sample (:class:`BoostedComponentVoter`); samples whose given label the
       vote does not support are dropped;
    3. **refine**: a fresh model self-trains on the kept set for
       ``refine_rounds`` rounds of ``refine_epochs`` epochs, re-admitting the
       samples its smoothed predictions agree with.

    Defaults are the paper's (appendix B.1). They were chosen for 50,000
    CIFAR-10 images; on a few thousand samples the per-epoch settings give
    few gradient steps, so small data may need more epochs per stage. A
    faster schedule (timed in ``benchmarks/README.md``) is
    ``sklearn_ispl.benchmark.ISPL_PRESETS["fast"]``::

        ISPLFilter(
            weak_learner=make_weak_learner(module__n_filters=16, module__n_hidden=64),
            n_runs=2, warmup_epochs=2, epochs_per_iteration=2,
            voter=BoostedComponentVoter(n_epochs=20),
            refine_learner=make_weak_learner(),
            refine_rounds=6, refine_epochs=3,
            refine_folds=2, refine_keep_ratio=0.3,
        )

    Parameters
    ----------
    weak_learner : estimator, default=None
        The learner of every stage. None: a skorch net around a small CNN
        (images) or MLP (rows) sized from the data. Any skorch net, or a
        scikit-learn classifier with ``partial_fit`` and ``predict_proba``
        (e.g. ``SGDClassifier(loss="log_loss")``), can take its place.
    n_runs : int, default=3
        Independent ISPL runs; their components are pooled for voting.
    n_components : int, default=8
        Components per run (paper: 8 of about 12% each). A run stops early
        once a component would hold fewer than two samples per class; the
        rest is its last component. 1 means no partition.
    warmup_epochs : int, default=8
        Epochs on a random half of the remaining samples before a round's
        first trim.
    epochs_per_iteration : int, default=4
        Epochs after each trim.
    expansion : float in (0, 1], default=0.25
        The expansion factor alpha: share of the kept set trained on after
        each trim. Smaller values test how well the kept set generalises to
        itself.
    momentum : float in [0, 1), default=0.9
        Smoothing of per-sample losses across iterations.
    class_floor : float in [0, 1], default=0.125
        Per class, the lowest-loss ``beta * class_floor`` share is always
        kept, so a component cannot collapse onto a few classes (paper: 1/8).
    partition_samples : int, float or None, default=None
        Samples the partition runs on: a count (int) or a share of the data
        (float in (0, 1]), drawn at random stratified by label; None: all
        (the paper). The component learners then vote on every sample and
        self-training runs on every sample, so all are judged. A deviation
        from the paper for large data: the partition is the costliest stage,
        and on 60,000 Fashion-MNIST images, with the one-epoch schedules a
        time budget allows there, the poison spread over several components,
        while on a 6,000-sample draw with the ``fast`` schedule one
        component gathered it (``benchmarks/README.md``).
    voter : BoostedComponentVoter, default=None
        The vote stage's settings (``n_epochs``, ``voting``, ``min_votes``);
        None is ``BoostedComponentVoter()`` (40 epochs, per-sample votes).
        Its ``weak_learner``, when None, is this filter's; its ``device``,
        ``n_jobs`` and ``random_state`` are this filter's.
    refine_rounds : int, default=20
        Self-training rounds (paper: 100 epochs = 20 rounds of 5); 0 skips
        the refine stage.
    refine_epochs : int, default=5
        Epochs between two updates of the kept set.
    refine_momentum : float in [0, 1), default=0.8
        Smoothing of predictions across rounds.
    refine_min_score : float in [0, 1], default=None
        When set, self-training starts from the voted samples whose vote
        share (``scores_``) is at least this, instead of from every voted
        sample (the paper). A deviation from the paper: poison that slips
        through the vote can teach the refine model the trigger, after which
        the refine stage re-admits it; a stricter start avoids that.
    refine_folds : int, default=1
        1: one refine model judges every sample, including those it trained
        on (the paper). ``k >= 2``: cross-fitting; the samples are split into
        ``k`` stratified folds and each fold is judged by a model trained on
        the kept samples of the other folds, so no model vouches for a
        sample it memorised (a deviation from the paper). The models share
        the epochs: the cost is about that of one model.
    refine_keep_ratio : float in (0, 1], default=1.0
        The final keep rule: a sample stays when the refine model's smoothed
        probability of its label is at least this times that of its most
        likely class. 1.0: the label must be the most likely class (the
        paper). Lower values give back hard clean samples of confusable
        classes, which keep some probability on their label, while poison
        (an image its model calls the source class) is a confident
        contradiction. On two 6,000-image Fashion-MNIST scenarios, 0.3 cut
        the clean samples removed from 19-23% to 14-18% and kept no more
        poison (``benchmarks/README.md``). Only the final
        decision is relaxed; the sets self-training trains on follow the
        argmax rule. A deviation from the paper.
    refine_pair_guard : float, default=None
        With ``refine_keep_ratio < 1``, keeps the argmax rule for the class
        pairs a dirty-label backdoor would leave its mark on. Its poison all
        carries the target label and looks like the source class, so the
        refine model's disagreements pile up in one direction of one (label,
        predicted class) pair, while confusable clean classes are mistaken
        for each other both ways. A direction whose disagreements outnumber
        the reverse direction's by more than ``refine_pair_guard`` standard
        deviations (a sign test) is flagged (``suspicious_pairs_``); its
        disagreements are removed, every other sample is judged by
        ``refine_keep_ratio``. This lets the ratio be low (many hard clean
        samples back) without giving back the poison of a look-alike class
        pair. None: no guard. A deviation from the paper.
    refine_learner : estimator, default=None
        The refine stage's model; None: ``weak_learner``. Unlike the
        component learners, it trains on most of the data and its errors
        become false positives, so a larger model than the weak learner can
        pay here (a deviation from the paper, which uses one model).
    rescue_epochs : int, default=0
        0: no rescue (the paper). ``k >= 1``: after the refine stage, a fresh
        ``refine_learner`` trains on every sample, unfiltered, for ``k``
        epochs, reading each sample's probability of its label after every
        epoch (``rescue_scores_``). A sample the refine stage removed comes
        back when the highest of these readings lies within
        ``rescue_bounds`` and the refine model's support for its label
        (``refine_scores_``) is at least ``rescue_min_support``. Poison
        whose trigger the unfiltered model learns is fitted confidently at
        some epoch; poison whose trigger it never learns stays contradicted;
        poison whose trigger it learns slowly looks like a hard clean sample
        to it, but the refine model, never taught the trigger, rules its
        label out. Hard clean samples of confusable classes, most of the
        refine stage's removals on data like Fashion-MNIST, are none of
        these. On a few thousand images, train it as long as the model that
        will learn from the filtered data; an epoch over tens of thousands
        is many more steps, and there half as many epochs gave back more
        clean samples and no more poison (the ``large`` preset). Experimental
        and a deviation from the paper:
        the bounds were chosen on four Fashion-MNIST scenarios
        (``benchmarks/README.md``, "What we learned").
    rescue_bounds : tuple of (float, float), default=(0.5, 0.95)
        ``(low, high)``: a removed sample comes back only when the highest
        probability of its label over the rescue model's epochs is at least
        ``low`` and below ``high``. Needs ``0 <= low < high <= 1``.
    rescue_min_support : float in [0, 1], default=1e-3
        The refine model's smoothed probability of a removed sample's label
        must be at least this for the rescue to give it back (ignored when
        ``refine_rounds=0``). 0 leaves the decision to the rescue model.
    blind_neighbors : int, default=None
        None: off (the paper). ``k >= 1``: a trigger-blind judge also
        decides. Every sample is projected on the first ``blind_components``
        principal components of the data and judged by the given labels of
        its ``k`` nearest neighbours in the other half of the data
        (``blind_scores_``; see :func:`sklearn_ispl._refine.blind_judge`).
        A trigger of a few pixels barely moves an image in this projection,
        so the neighbours of a poisoned image are its source class, however
        much poison there is. The refine stage then trains only on samples
        whose label this judge's vote supports, the rescue gives back only
        samples whose label it supports, and (``blind_veto``) a sample is
        kept only when it supports the label. On all 60,000
        Fashion-MNIST images the refine model otherwise learns the trigger
        from the few dozen poisoned samples the vote lets through; on a few
        thousand images the judge is less accurate and removes more clean
        samples than it saves (``benchmarks/README.md``, "The large
        preset"). Experimental and a deviation from the paper.
    blind_components : int, default=20
        Principal components the trigger-blind judge projects on (capped by
        the number of samples and features).
    blind_veto : bool, default=True
        With ``blind_neighbors``: whether a sample is kept only when the
        trigger-blind judge supports its label. False: the judge only
        restricts what the refine models train on (and gives the trigger
        check the class each sample looks like). The veto removes poison
        the refine stage kept, but also every hard clean sample whose
        neighbours mostly carry another label; the trigger check removes
        the former without the latter.
    trigger_check : {None, "add", "replace"}, default=None
        None: off. Otherwise a trigger check runs after every other stage.
        The removed samples of each given label that the trigger-blind
        judge calls one other class form a group (the judge of
        ``blind_neighbors``, or one with 15 neighbours used only for this
        when that is None). A backdoor stamps the same values at the same
        pixels on every poisoned image; where most of a group shares such
        values, at pixels where kept samples of other labels rarely have
        them, the samples of that label that carry them all are the
        trigger's carriers (``trigger_pairs_``; see
        :mod:`sklearn_ispl._trigger`). "add": the kept carriers are removed
        too. This removes the poison that looks like its target class, or
        that the rescue gave back, which every judge of the label keeps; on
        all 60,000 Fashion-MNIST images a few dozen such samples teach a
        classifier part of the trigger (``benchmarks/README.md``, "The large
        preset"). "replace": when a trigger is found, it alone decides: its
        carriers are removed and every other sample is kept, which gives
        back the hard clean samples every judge removes; when none is
        found, the filter's decision stands. "replace" assumes one stamped
        trigger: poison whose trigger varies between images, or a second
        attack beside a found one, is kept. A deviation from the paper.
    image_shape : tuple, default=None
        ``(height, width)`` or ``(height, width, channels)`` when ``X`` is
        2-D with one flattened image per row; None reads 2-D ``X`` as
        tabular rows.
    device : str, default="cpu"
        Torch device of the weak learners ("cpu", "cuda", "cuda:N", "mps").
    n_jobs : int, default=None
        ISPL runs and component learners trained at once by joblib (-1: all
        cores). Each learner gets the same seed whatever ``n_jobs``; but a
        torch learner's sums depend on its thread count (all cores with one
        job, one per worker with ``n_jobs=2`` on 2 cores), so results can
        differ in the last digits and, over long fits, in a few decisions.
    random_state : int, RandomState instance or None, default=None
        Fixes every seed: two fits give the same ``keep_mask_``.
    verbose : int, default=0
        Show progress when positive.

    Attributes
    ----------
    keep_mask_ : ndarray of bool of shape (n_samples,)
        True for kept samples.
    sample_indices_ : ndarray of int
        Indices of the kept samples.
    scores_ : ndarray of shape (n_samples,)
        Share of component learners voting for each sample's given label.
        Low means suspicious.
    vote_keep_mask_ : ndarray of bool of shape (n_samples,)
        The kept set after voting, before the refine stage.
    refine_scores_ : ndarray of shape (n_samples,)
        The refine model's smoothed probability of each given label (NaN when
        ``refine_rounds=0``).
    refine_keep_mask_ : ndarray of bool of shape (n_samples,)
        The kept set after the refine stage, before the rescue.
    rescue_scores_ : ndarray of shape (n_samples, rescue_epochs)
        The rescue model's probability of each given label after each of
        its epochs (shape (n_samples, 0) when ``rescue_epochs=0``).
    blind_scores_ : ndarray of shape (n_samples,)
        The trigger-blind judge's probability of each given label: the share
        of its neighbours with that label (NaN when ``blind_neighbors`` is
        None).
    trigger_pairs_ : list of dict
        The (given label, look) pairs the trigger check examined, one dict
        each: ``label`` and ``look`` (class labels), ``group`` (removed
        samples with that label and look), ``features`` (the positions the
        group shares a value at, as ``(channel, row, column)`` for images
        and ``(column,)`` for tabular rows), ``levels`` (those values, on
        256 levels of the data's range), ``share`` (of the group that has
        them all), ``found`` (whether they passed the check's bars: the
        pair's trigger), ``carriers`` (samples of the label that have them
        all, when found) and ``kept`` (of those, how many the other stages
        kept). Empty without the check.
    suspicious_pairs_ : ndarray of shape (n_pairs, 2)
        The (given label, predicted class) pairs ``refine_pair_guard``
        flagged, as class labels; empty without the guard.
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
        Wall-clock seconds of the "partition", "vote", "refine", "rescue" and
        "check" (the trigger check) stages.

    See Also
    --------
    BoostedComponentVoter : The vote stage alone, for components from anywhere.

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
    >>> ispl = ISPLFilter(n_runs=1, n_components=4, refine_rounds=2,
    ...                   random_state=0)
    >>> X_kept, y_kept = ispl.fit_resample(X_p, y_p)  # doctest: +SKIP
    """

    _parameter_constraints: dict = {
        **BaseFilter._parameter_constraints,
        "n_runs": [Interval(Integral, 1, None, closed="left")],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "warmup_epochs": [Interval(Integral, 0, None, closed="left")],
        "epochs_per_iteration": [Interval(Integral, 1, None, closed="left")],
        "expansion": [Interval(Real, 0, 1, closed="right")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "class_floor": [Interval(Real, 0, 1, closed="both")],
        "partition_samples": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0, 1, closed="right"),
            None,
        ],
        "voter": [BoostedComponentVoter, None],
        "refine_rounds": [Interval(Integral, 0, None, closed="left")],
        "refine_epochs": [Interval(Integral, 1, None, closed="left")],
        "refine_momentum": [Interval(Real, 0, 1, closed="left")],
        "refine_min_score": [Interval(Real, 0, 1, closed="both"), None],
        "refine_folds": [Interval(Integral, 1, None, closed="left")],
        "refine_keep_ratio": [Interval(Real, 0, 1, closed="right")],
        "refine_pair_guard": [Interval(Real, 0, None, closed="neither"), None],
        "refine_learner": [HasMethods(["partial_fit", "predict_proba"]), None],
        "rescue_epochs": [Interval(Integral, 0, None, closed="left")],
        "rescue_bounds": [tuple, list],
        "rescue_min_support": [Interval(Real, 0, 1, closed="both")],
        "blind_neighbors": [Interval(Integral, 1, None, closed="left"), None],
        "blind_components": [Interval(Integral, 1, None, closed="left")],
        "blind_veto": ["boolean"],
        "trigger_check": [StrOptions({"add", "replace"}), None],
    }

    def __init__(
        self,
        weak_learner=None,
        *,
        n_runs=3,
        n_components=8,
        warmup_epochs=8,
        epochs_per_iteration=4,
        expansion=0.25,
        momentum=0.9,
        class_floor=0.125,
        partition_samples=None,
        voter=None,
        refine_rounds=20,
        refine_epochs=5,
        refine_momentum=0.8,
        refine_min_score=None,
        refine_folds=1,
        refine_keep_ratio=1.0,
        refine_pair_guard=None,
        refine_learner=None,
        rescue_epochs=0,
        rescue_bounds=(0.5, 0.95),
        rescue_min_support=1e-3,
        blind_neighbors=None,
        blind_components=20,
        blind_veto=True,
        trigger_check=None,
        image_shape=None,
        device="cpu",
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.weak_learner = weak_learner
        self.n_runs = n_runs
        self.n_components = n_components
        self.warmup_epochs = warmup_epochs
        self.epochs_per_iteration = epochs_per_iteration
        self.expansion = expansion
        self.momentum = momentum
        self.class_floor = class_floor
        self.partition_samples = partition_samples
        self.voter = voter
        self.refine_rounds = refine_rounds
        self.refine_epochs = refine_epochs
        self.refine_momentum = refine_momentum
        self.refine_min_score = refine_min_score
        self.refine_folds = refine_folds
        self.refine_keep_ratio = refine_keep_ratio
        self.refine_pair_guard = refine_pair_guard
        self.refine_learner = refine_learner
        self.rescue_epochs = rescue_epochs
        self.rescue_bounds = rescue_bounds
        self.rescue_min_support = rescue_min_support
        self.blind_neighbors = blind_neighbors
        self.blind_components = blind_components
        self.blind_veto = blind_veto
        self.trigger_check = trigger_check
        self.image_shape = image_shape
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self):
        super()._check_params()
        if self.refine_learner is not None:
            check_weak_learner(self.refine_learner)
        bounds = self.rescue_bounds
        if not (
            len(bounds) == 2
            and all(isinstance(v, Real) and not isinstance(v, bool) for v in bounds)
            and 0 <= bounds[0] < bounds[1] <= 1
        ):
            raise ValueError(
                "rescue_bounds must be two numbers (low, high) with "
                f"0 <= low < high <= 1; got {bounds!r}."
            )
        if self.voter is not None and not isinstance(self.voter, BoostedComponentVoter):
            raise ValueError(
                "voter must be a BoostedComponentVoter or None; got "
                f"{type(self.voter).__name__}."
            )

    def _fit_filter(self, data):
        if len(data) < self.n_components:
            raise ValueError(
                f"ISPLFilter needs at least n_components={self.n_components} "
                f"samples; got {len(data)}."
            )
        rng = check_random_state(self.random_state)
        start_time = time.perf_counter()
        rows = self._partition_rows(data, rng)
        components, runs = self._partition(data, rng, return_runs=True, rows=rows)
        partition_time = time.perf_counter()

        voter = BoostedComponentVoter() if self.voter is None else clone(self.voter)
        voter.set_params(device=self.device, n_jobs=self.n_jobs, verbose=self.verbose)
        weak_learner = (
            voter.weak_learner
            if voter.weak_learner is not None
            else (self.weak_learner)
        )
        vote_keep, scores, predictions = voter._vote(
            data, components, weak_learner, rng
        )
        vote_time = time.perf_counter()

        start = vote_keep
        if self.refine_min_score is not None:
            # Start self-training from the samples the vote backs strongly:
            # poison that slipped through the vote then rarely reaches the
            # refine model, which otherwise can learn the trigger from it and
            # re-admit it.
            start = vote_keep & (scores >= self.refine_min_score)
        blind_scores = np.full(len(data), np.nan)
        blind_backed = look = None
        if self.blind_neighbors is not None:
            proba = blind_judge(
                data,
                self.blind_neighbors,
                self.blind_components,
                rng.randint(np.iinfo(np.int32).max),
            )
            blind_scores = proba[np.arange(len(data)), data.y]
            # Ties go to the label: the judge vetoes only a label it outvotes.
            blind_backed = blind_scores >= proba.max(axis=1)
            look = proba.argmax(axis=1)
            start = start & blind_backed
        refine_learner = (
            self.weak_learner if self.refine_learner is None else self.refine_learner
        )
        keep, support, pairs = self_train(
            data,
            refine_learner,
            start,
            rng.randint(np.iinfo(np.int32).max),
            self.device,
            self.refine_rounds,
            self.refine_epochs,
            self.refine_momentum,
            self.refine_folds,
            self.refine_keep_ratio,
            self.refine_pair_guard,
            blind_backed,
        )
        refine_time = time.perf_counter()

        refine_keep = keep
        trace = np.empty((len(data), 0))
        if self.rescue_epochs:
            trace = label_fit_trace(
                data,
                refine_learner,
                rng.randint(np.iinfo(np.int32).max),
                self.device,
                self.rescue_epochs,
            )
            rescued = rescue(
                keep, trace, support, self.rescue_bounds, self.rescue_min_support
            )
            if blind_backed is not None:
                # Once the refine models have half learned a trigger their
                # support no longer rules its poison out; the blind judge
                # never learns it.
                rescued &= keep | blind_backed
            keep = rescued
        if blind_backed is not None and self.blind_veto:
            keep = keep & blind_backed
            refine_keep = refine_keep & blind_backed
        rescue_time = time.perf_counter()
        trigger_pairs = []
        if self.trigger_check is not None:
            if look is None:
                # The judge's neighbours group the removed samples; without
                # blind_neighbors it decides nothing else.
                look = blind_judge(
                    data,
                    LOOK_NEIGHBORS,
                    self.blind_components,
                    rng.randint(np.iinfo(np.int32).max),
                ).argmax(axis=1)
            # The rescue's give-backs stay evidence of what the poison shares.
            carriers, trigger_pairs = trigger_check(
                data, keep, look, removed=~keep | ~refine_keep
            )
            if self.trigger_check == "add":
                keep = keep & ~carriers
            elif carriers.any():
                keep = ~carriers
            for pair in trigger_pairs:
                pair["label"] = self.classes_[pair["label"]]
                pair["look"] = self.classes_[pair["look"]]
        self.stage_times_ = {
            "partition": partition_time - start_time,
            "vote": vote_time - partition_time,
            "refine": refine_time - vote_time,
            "rescue": rescue_time - refine_time,
            "check": time.perf_counter() - rescue_time,
        }
        self.components_ = components
        self.component_runs_ = runs
        self.predictions_ = predictions
        self.vote_keep_mask_ = vote_keep
        self.refine_scores_ = support
        self.refine_keep_mask_ = refine_keep
        self.rescue_scores_ = trace
        self.blind_scores_ = blind_scores
        self.trigger_pairs_ = trigger_pairs
        self.suspicious_pairs_ = self.classes_[pairs]
        if keep.mean() < 0.5:
            # Backdoor poison is a small share of a dataset; losing half of it
            # means the learners were too weak, not that half was poisoned.
            warnings.warn(
                f"ISPLFilter kept only {keep.sum()} of {len(keep)} samples. On "
                "small datasets the learners get few gradient steps per epoch: "
                "raise warmup_epochs, epochs_per_iteration, voter n_epochs and "
                "refine_epochs.",
                UserWarning,
                stacklevel=3,
            )
        return keep, scores

    def _partition_rows(self, data, rng):
        """The rows the partition runs on: a stratified draw, or None for all."""
        n = len(data)
        if self.partition_samples is None:
            return None
        size = resolve_size(self.partition_samples, n)
        if size >= n:
            return None
        if size < self.n_components:
            raise ValueError(
                f"partition_samples gives {size} samples, fewer than "
                f"n_components={self.n_components}."
            )
        rows = resample(
            np.arange(n),
            replace=False,
            n_samples=size,
            stratify=data.y,
            random_state=rng.randint(np.iinfo(np.int32).max),
        )
        return np.sort(rows)

    def _partition(self, data, rng, return_runs=False, rows=None):
        """Pool the components of ``n_runs`` ISPL runs (run in parallel)."""
        seeds = rng.randint(np.iinfo(np.int32).max, size=self.n_runs)
        tasks = [
            (
                data,
                self.weak_learner,
                seed,
                self.device,
                self.n_components,
                self.warmup_epochs,
                self.epochs_per_iteration,
                self.expansion,
                self.momentum,
                self.class_floor,
                rows,
            )
            for seed in seeds
        ]
        runs = run_tasks(ispl_run, tasks, self.n_jobs, self.verbose, "ISPL runs")
        components = [comp for run in runs for comp in run]
        run_ids = np.concatenate(
            [np.full(len(run), r, dtype=np.int64) for r, run in enumerate(runs)]
        )
        return (components, run_ids) if return_runs else components
