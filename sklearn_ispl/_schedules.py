"""Named schedules: every setting of ISPLFilter that a schedule decides.

A *schedule* is a complete set of ISPLFilter settings measured together.
``ISPLFilter(schedule="auto")`` (the default) picks one from the number of
training samples when ``fit`` starts; ``schedule="paper"`` is the paper's
appendix B.1. Any parameter given explicitly to the filter wins over its
schedule. The documentation's benchmarks page lists what each schedule
achieved and what it cost.

A schedule is a dict with the keys of :data:`SCHEDULE_KEYS`:

- the partition's settings (``n_runs`` ... ``partition_samples``);
- ``voter`` and ``refiner``: settings of :class:`BoostedComponentVoter`
  and :class:`SelfTraining`;
- ``weak_learner`` and ``refine_learner``: settings of the default network
  (:func:`make_weak_learner`), used when the filter is given no learner;
  ``refine_learner=None`` trains the refine stage with the weak learner;
- ``extra_stages``: a function returning fresh stage objects
  (:mod:`sklearn_ispl.experimental`).
"""

import torch

from ._partition import PAPER_PARTITION

__all__ = ["SCHEDULES", "AUTO_SIZES", "resolve_schedule_name"]


def _no_stages():
    return []


def _blind_judge():
    from .experimental import TriggerBlindJudge

    return [TriggerBlindJudge(n_neighbors=15, n_components=20, veto=True)]


def _rescue():
    from .experimental import Rescue

    return [Rescue(n_epochs=8)]


# The default network with 16 and 32 filters: several times cheaper per
# epoch than the 32/64 default, and enough for the partition and the vote.
_SMALL_CNN = {"module__n_filters": 16, "module__n_hidden": 64}

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
        "weak_learner": {},
        "refine_learner": None,
        "extra_stages": _no_stages,
    },
    # Thousands to about 20,000 samples: a short partition and vote with
    # the 16/32 network, cross-fitted self-training of the 32/64 network
    # with a relaxed final rule, and the rescue of hard clean samples.
    "medium": {
        **PAPER_PARTITION,
        "n_runs": 2,
        "warmup_epochs": 2,
        "epochs_per_iteration": 2,
        "partition_samples": None,
        "voter": {"n_epochs": 20},
        "refiner": {"n_rounds": 6, "n_epochs": 3, "n_folds": 2, "keep_ratio": 0.3},
        "weak_learner": _SMALL_CNN,
        "refine_learner": {},
        "extra_stages": _rescue,
    },
    # Tens of thousands of samples: medium's partition and vote on a
    # stratified draw of 6,000 samples (the component learners still vote
    # on every sample), short cross-fitted self-training of the 16/32
    # network, and a trigger-blind judge that keeps the refine models from
    # learning a trigger from the poison the vote lets through.
    "large": {
        **PAPER_PARTITION,
        "n_runs": 2,
        "warmup_epochs": 2,
        "epochs_per_iteration": 2,
        "partition_samples": 6000,
        "voter": {"n_epochs": 20},
        "refiner": {"n_rounds": 4, "n_epochs": 2, "n_folds": 2, "keep_ratio": 0.3},
        "weak_learner": _SMALL_CNN,
        "refine_learner": None,
        "extra_stages": _blind_judge,
    },
}

#: ``schedule="auto"``: the first schedule whose size bound exceeds the
#: number of training samples.
AUTO_SIZES = (("small", 3000), ("medium", 20000), ("large", float("inf")))

SCHEDULE_KEYS = tuple(SCHEDULES["paper"])


def resolve_schedule_name(schedule, n_samples):
    """The named schedule ``schedule`` stands for on ``n_samples`` samples."""
    if schedule != "auto":
        return schedule
    for name, bound in AUTO_SIZES:
        if n_samples < bound:
            return name
    raise AssertionError("AUTO_SIZES ends with an unbounded schedule")
