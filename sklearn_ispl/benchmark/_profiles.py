"""Benchmark profiles: the data, final classifier and defense settings."""

from dataclasses import asdict, dataclass, field

from ._defenses import parse_defense_params


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
    final_seeds : int
        Trainings of the final classifier per column, seeded ``seed``,
        ``seed + 1``, ...; C and A are their means (each training's values
        are kept as ``C_seeds`` and ``A_seeds``). One training of a small
        network on a few thousand images can move clean accuracy by a point
        or more with its seed alone; several trainings tell a defense's
        effect from that noise.
    defense_params : dict
        Per defense key, its settings: a dict, or for ``isplfilter`` the
        name of a schedule (:data:`sklearn_ispl.SCHEDULES` or ``"auto"``). A
        value
        ``{"per_eps": {"0.05": a, "0.1": b, "0.2": c}}`` is resolved per
        scenario by its eps. Settings a defense class does not have are
        skipped with a note (the baselines are written separately); settings
        given on the command line must exist.
    scenarios : tuple of int or None
        Indices of the paper suite's scenarios run when none are selected
        (None: all 24).
    robust_scenarios : tuple of int or None
        The same for the robust suite (None: all 21).
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
    final_seeds: int = 1
    defense_params: dict = field(default_factory=dict)
    scenarios: tuple | None = None
    robust_scenarios: tuple | None = None
    device: str = "cpu"
    seed: int = 0

    @property
    def ispl_params(self):
        """The resolved ISPLFilter settings of this profile."""
        return parse_defense_params(
            self.defense_params.get("isplfilter", {}), "isplfilter"
        )


# The smallest settings that still run every stage with some effect; for the
# smoke profile and the tests, not for measurements.
_SMOKE_ISPL = {
    "n_runs": 1,
    "n_components": 4,
    "warmup_epochs": 4,
    "epochs_per_iteration": 2,
    "voter__n_epochs": 30,
    "refiner__n_rounds": 4,
    "refiner__n_epochs": 5,
}

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

#: The three profiles. ``smoke``: scikit-learn digits, two scenarios (four of
#: the robust suite), tiny settings, about a minute on 2 CPU cores (run by
#: the tests). ``quick``: a 6,000-image stratified Fashion-MNIST training
#: subset and the 10,000 test images, all scenarios, on CPU. ``full``: all
#: 60,000 training images with the paper's ISPL settings, for a GPU.
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
        defense_params={"isplfilter": _SMOKE_ISPL, **_CPU_BASELINES},
        # Two eps = 20% scenarios whose drawn trigger is bright on digits:
        # an X (1 -> 3) and an L (7 -> 4).
        scenarios=(5, 17),
        # One scenario of each robust family: blended, varying, two attacks
        # and clean.
        robust_scenarios=(0, 1, 16, 20),
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
        defense_params={"isplfilter": "auto", **_CPU_BASELINES},
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
    seeds = changes.get("final_seeds", 1)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"final_seeds must be an integer >= 1; got {seeds!r}.")
    values = asdict(profile)
    values.update(changes)
    return BenchmarkProfile(**values)
