"""Named schedules: every setting of ISPLFilter that a schedule decides.

A *schedule* is a complete set of ISPLFilter settings measured together.
``ISPLFilter(schedule="auto")`` (the default) picks one from the number of
training samples when ``fit`` starts; ``schedule="paper"`` is the paper's
appendix B.1. Any parameter given explicitly to the filter wins over its
schedule. The documentation's benchmarks page lists what each schedule
achieved and what it cost.

A schedule is a dict with these keys:

- the partition's settings (``n_runs`` ... ``partition_samples``);
- ``voter`` and ``refiner``: settings of :class:`BoostedComponentVoter`
  and :class:`SelfTraining`; ``refiner`` may be a function of the number
  of training samples returning them;
- ``weak_learner`` and ``refine_learner``: settings of the default network
  (:func:`make_weak_learner`), used when the filter is given no learner;
  ``refine_learner=None`` trains the refine stage with the weak learner;
- ``extra_stages``: a function returning fresh stage objects
  (:mod:`sklearn_ispl.experimental`).
"""

import torch
from sklearn.base import clone

from ._base import check_nested
from ._learners import check_weak_learner, make_weak_learner
from ._partition import PAPER_PARTITION
from ._refine import SelfTraining
from ._stages import ExtraStage
from ._validation import resolve_size
from ._vote import BoostedComponentVoter

__all__ = ["SCHEDULES", "AUTO_SIZES", "resolve_schedule_name", "resolve_settings"]

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


def _no_stages():
    return []


def _large_stages():
    from .experimental import GroupDecision, GroupTriggerTest, TriggerBlindJudge

    # The group decision's earlier thresholds: the 16/32 refine models of
    # this schedule score confidence on their own scale, and with the medium
    # schedule's thresholds a clean group of look-alikes was flagged on
    # 60,000 images. The judge's veto would remove many clean samples; the
    # group trigger test finds the poison it was there for, and tests the
    # poison-like groups whose statistics fell short of the thresholds.
    # Isolation is also read in the judge's view, which half-learned poison
    # cannot blur: the most confusable clean classes stay a continuum there
    # (their isolation well under one), poison between classes the judge
    # tells apart a cluster.
    return [
        TriggerBlindJudge(n_neighbors=15, n_components=20, veto=False),
        GroupDecision(confidence=0.97, min_share=0.7, min_blind_isolation=1.5),
        GroupTriggerTest(),
    ]


#: Samples the cross-fitted refine models of ``large`` read per round, over
#: both folds: one epoch of 60,000 samples.
LARGE_REFINE_SAMPLES = 60000


def _large_refiner(n_samples):
    # The refine models' confidence grows with their updates, not their
    # epochs, and the final rule and the group decision read it on one
    # scale: a round reads about LARGE_REFINE_SAMPLES samples whatever the
    # data size. Trained longer, the models contradict hard clean samples
    # with the near-certainty of poison; trained shorter, they rule out too
    # little for the group decision to flag the poison's group.
    epochs = max(1, round(LARGE_REFINE_SAMPLES / n_samples))
    return {"n_rounds": 3, "n_epochs": epochs, "n_folds": 2, "keep_ratio": 1e-5}


def _medium_stages():
    from .experimental import GroupDecision, LabelCompatibilityTest, Rescue

    return [Rescue(), GroupDecision(), LabelCompatibilityTest()]


# The default network computing in bfloat16 where the hardware does so
# natively: the weak learners are trained and read many times over, and
# rounding far below their own noise pays for itself in time.
_FAST_CNN = {"module__precision": "auto"}
# ... with 16 and 32 filters: several times cheaper per epoch than the 32/64
# default, and enough for the partition and the vote.
_SMALL_CNN = {**_FAST_CNN, "module__n_filters": 16, "module__n_hidden": 64}

#: Every named schedule. See the module docstring for the keys.
SCHEDULES = {
    # Appendix B.1 of the paper: standard SGD (the paper's optimizer
    # settings for its models: lr 0.02, momentum 0.9, weight decay 5e-4),
    # 3 runs of 8 components, 8 warm-up epochs and 4 per iteration, 40-epoch
    # component learners voting per sample, 20 self-training rounds of 5
    # epochs. Tuned for 50,000 CIFAR-10 images on a GPU.
    "paper": {
        **PAPER_PARTITION,
        "partition_samples": None,
        "voter": {"n_epochs": 40, "voting": "sample", "min_votes": 2},
        "refiner": {"n_rounds": 20, "n_epochs": 5, "momentum": 0.8},
        "weak_learner": {
            "optimizer": torch.optim.SGD,
            "lr": 0.02,
            "optimizer__momentum": 0.9,
            "optimizer__weight_decay": 5e-4,
        },
        "refine_learner": None,
        "extra_stages": _no_stages,
    },
    # A few thousand samples or fewer (digits): two runs of the paper's
    # partition with the default network, 40-epoch voters, six rounds of
    # self-training.
    "small": {
        **PAPER_PARTITION,
        "n_runs": 2,
        "partition_samples": None,
        "voter": {"n_epochs": 40},
        "refiner": {"n_rounds": 6, "n_epochs": 5},
        "weak_learner": _FAST_CNN,
        "refine_learner": None,
        "extra_stages": _no_stages,
    },
    # Thousands to about 20,000 samples: a short partition and vote with
    # the 16/32 network, cross-fitted self-training of the 32/64 network
    # with a relaxed final rule, the rescue of hard clean samples, and the
    # group decision, which removes again the poison-like groups' samples.
    "medium": {
        **PAPER_PARTITION,
        "n_runs": 2,
        "warmup_epochs": 2,
        "epochs_per_iteration": 2,
        "partition_samples": None,
        "voter": {"n_epochs": 20},
        "refiner": {"n_rounds": 6, "n_epochs": 3, "n_folds": 2, "keep_ratio": 0.3},
        "weak_learner": _SMALL_CNN,
        "refine_learner": _FAST_CNN,
        "extra_stages": _medium_stages,
    },
    # Tens of thousands of samples: one run of medium's partition on a
    # stratified draw of 6,000 samples and its vote (the component learners
    # still vote on every sample, which makes each of them costly here),
    # short cross-fitted self-training of the 16/32 network (three rounds of
    # one epoch at 60,000 samples, as many updates on fewer: see
    # _large_refiner), a
    # trigger-blind judge that keeps the refine models from learning a
    # trigger from the poison the vote lets through, and the group decision.
    # With no rescue to give hard clean samples back, the final rule keeps
    # every sample the refine models do not rule out; the group decision
    # removes the poison-like groups, and the group trigger test (two rounds)
    # the poison of their labels that shares their trigger; it also confirms the
    # groups that the decision's thresholds missed but that a model tells
    # apart from the class they look like.
    "large": {
        **PAPER_PARTITION,
        "n_runs": 1,
        "warmup_epochs": 2,
        "epochs_per_iteration": 2,
        "partition_samples": 6000,
        "voter": {"n_epochs": 20},
        "refiner": _large_refiner,
        "weak_learner": _SMALL_CNN,
        "refine_learner": None,
        "extra_stages": _large_stages,
    },
}

#: ``schedule="auto"``: the first schedule whose size bound exceeds the
#: number of training samples.
AUTO_SIZES = (("small", 3000), ("medium", 20000), ("large", float("inf")))


def resolve_schedule_name(schedule, n_samples):
    """The named schedule ``schedule`` stands for on ``n_samples`` samples."""
    if schedule != "auto":
        return schedule
    for name, bound in AUTO_SIZES:
        if n_samples < bound:
            return name
    raise AssertionError("AUTO_SIZES ends with an unbounded schedule")


def resolve_settings(filt, data):
    """Every setting of ``filt``'s fit on ``data``, validated before any training.

    Returns a dict with the partition settings, the weak learner, the voter,
    the refiner, the refine learner, the extra stages and the ``schedule_``
    record.
    """
    name = resolve_schedule_name(filt.schedule, len(data))
    schedule = SCHEDULES[name]
    settings = {
        key: schedule[key] if getattr(filt, key) is None else getattr(filt, key)
        for key in PARTITION
    }
    _check_partition(settings, len(data))
    nested = filt._nested_params()
    for key in nested:
        if "__" not in key or key.split("__", 1)[0] not in NESTED:
            raise ValueError(
                f"ISPLFilter has no parameter {key!r}; settings of nested parts "
                f"start with {', '.join(p + '__' for p in NESTED)}."
            )

    def sub(prefix):
        return {
            k[len(prefix) + 2 :]: v
            for k, v in nested.items()
            if k.startswith(prefix + "__")
        }

    if filt.weak_learner is not None:
        weak_learner = clone(filt.weak_learner)
    else:
        weak_learner = _default_learner(schedule["weak_learner"], data)
    if sub("weak_learner"):
        if weak_learner is None:
            weak_learner = make_weak_learner(data.input_shape, data.n_classes)
        _set_nested(weak_learner, sub("weak_learner"), "weak_learner")
    check_weak_learner(weak_learner, "weak_learner")

    if filt.weak_learner is not None or schedule["refine_learner"] is None:
        refine_learner = weak_learner
    else:
        refine_learner = _default_learner(schedule["refine_learner"], data)
    refiner = _resolve_part(
        filt.refiner,
        SelfTraining,
        _refiner_settings(schedule["refiner"], len(data)),
        "learner",
        refine_learner,
    )
    _set_nested(refiner, sub("refiner"), "refiner")
    check_nested(refiner, "refiner")
    check_weak_learner(refiner.learner, "refiner__learner")
    refiner.check(data.y)

    voter = _resolve_part(
        filt.voter,
        BoostedComponentVoter,
        schedule["voter"],
        "weak_learner",
        weak_learner,
    )
    _set_nested(voter, sub("voter"), "voter")
    voter.set_params(device=filt.device, n_jobs=filt.n_jobs, verbose=filt.verbose)
    check_nested(voter, "voter")
    check_weak_learner(voter.weak_learner, "voter__weak_learner")

    if filt.extra_stages is not None:
        stages = [clone(stage) for stage in filt.extra_stages]
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


def _refiner_settings(refiner, n_samples):
    """A schedule's refiner settings for ``n_samples`` samples."""
    return refiner(n_samples) if callable(refiner) else refiner


def _resolve_part(given, cls, settings, learner_name, learner):
    """A copy of the part ``given`` (or ``cls(**settings)`` from the schedule),
    with ``learner`` filled in where the part names none."""
    part = cls(**settings) if given is None else clone(given)
    if getattr(part, learner_name) is None:
        part.set_params(**{learner_name: learner})
    return part


def _check_partition(settings, n_samples):
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
            k: _plain(v)
            for k, v in sorted(estimator.get_params(deep=False).items())
            # skorch lists its own bookkeeping (``_params_to_validate``).
            if not k.startswith("_")
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
