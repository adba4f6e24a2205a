"""The scenarios of the benchmark's two suites and their selection.

The ``paper`` suite holds the 24 stamped-trigger scenarios of the paper's
Table 3; the ``robust`` suite holds 21 scenarios with other triggers, two
attacks at once, or no attack at all.
"""

import re
from dataclasses import dataclass
from functools import partial

import numpy as np

from ..attacks import (
    PAPER_CLASS_PAIRS,
    make_blended_scenario,
    make_multi_scenario,
    make_scenario,
    make_varying_scenario,
)

#: Poison rates of the paper's Table 3: share of the source class poisoned.
EPS_VALUES = (0.05, 0.10, 0.20)

#: The benchmark's scenario suites: the paper's 24 and the robust 21.
SUITES = ("paper", "robust")

#: Share of the source class each attack of the robust suite poisons.
ROBUST_EPS = 0.10

# Kinds of the two attacks of each two-attack scenario: fixed rather than
# drawn, so that the four mix every kind (the last is two paper attacks).
_MULTI_KINDS = (
    ("stamped", "blended"),
    ("blended", "varying"),
    ("varying", "stamped"),
    ("stamped", "stamped"),
)


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

    def triggers(self):
        """The attack as ``[(source, target, apply_trigger)]``."""
        return [(self.source, self.target, self.attack.apply_trigger)]

    def poison(self, X, y):
        """Poison a training set; return ``X, y`` and the poison ids (0 or -1)."""
        X_p, y_p, mask = self.attack.poison(X, y)
        return X_p, y_p, np.where(mask, 0, -1)

    def trigger_text(self):
        """One line on the trigger, for progress lines."""
        a = self.attack
        return f"{a.trigger} at {tuple(a.position)} colour {a.color}"


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


def _attack_kind(attack):
    """``"stamped"``, ``"blended"`` or ``"varying"``: the attack's class."""
    return {
        "BlendedBackdoorAttack": "blended",
        "VaryingBackdoorAttack": "varying",
    }.get(type(attack).__name__, "stamped")


def _describe_attack(attack):
    """JSON-ready settings of one single attack."""
    kind = _attack_kind(attack)
    info = {"kind": kind, "source": attack.source, "target": attack.target}
    if kind == "blended":
        info.update(
            alpha=attack.alpha,
            pattern_seed=attack.pattern_seed,
            value_range=list(attack.value_range),
        )
    else:
        info.update(trigger=attack.trigger, position=list(attack.position))
        if kind == "varying":
            info.update(color_range=list(attack.color_range), jitter=attack.jitter)
        else:
            color = attack.color
            info["color"] = list(color) if isinstance(color, tuple) else color
    info.update(eps=attack.eps, random_state=attack.random_state)
    return info


def _attack_text(attack):
    kind = _attack_kind(attack)
    if kind == "blended":
        return f"blended noise alpha {attack.alpha}"
    where = f"{attack.trigger} at {tuple(attack.position)}"
    if kind == "varying":
        low, high = attack.color_range
        return f"varying {where} intensity {low}..{high}"
    return f"{where} colour {attack.color}"


@dataclass(frozen=True)
class RobustScenario:
    """One scenario of the robust suite.

    Parameters
    ----------
    index : int
        Position in the 21 scenarios (also the seed of its draw).
    kind : {"blended", "varying", "multi", "clean"}
        Its attack family: one blended or varying-stamp attack, two attacks
        at once, or no attack.
    attack : BlendedBackdoorAttack, VaryingBackdoorAttack, MultiAttack or None
        The drawn attack (None for the clean scenario).
    eps : float
        Share of the source class each attack poisons, and the rate the
        defenses are told (also in the clean scenario: a defender cannot
        know that nothing is poisoned).
    """

    index: int
    kind: str
    attack: object
    eps: float = ROBUST_EPS

    @property
    def attacks(self):
        """The single attacks, in order (none for the clean scenario)."""
        if self.attack is None:
            return []
        return list(getattr(self.attack, "attacks", [self.attack]))

    @property
    def id(self):
        """Stable id, e.g. ``"00-blended-s0t2-e10"`` or ``"20-clean"``."""
        if self.attack is None:
            return f"{self.index:02d}-{self.kind}"
        pairs = "-".join(f"s{a.source}t{a.target}" for a in self.attacks)
        return f"{self.index:02d}-{self.kind}-{pairs}-e{round(self.eps * 100):02d}"

    def describe(self):
        """JSON-ready description: kind, eps and each drawn attack."""
        return {
            "index": self.index,
            "seed": self.index,
            "kind": self.kind,
            "eps": self.eps,
            "attacks": [_describe_attack(a) for a in self.attacks],
        }

    def triggers(self):
        """Each attack as ``(source, target, apply_trigger)``."""
        if self.kind != "multi":
            return [(a.source, a.target, a.apply_trigger) for a in self.attacks]
        return [
            (a.source, a.target, partial(self.attack.apply_trigger, attack=k))
            for k, a in enumerate(self.attacks)
        ]

    def poison(self, X, y):
        """Poison a training set; return ``X, y`` and the poison ids.

        The id of an image is the index of the attack that poisoned it, -1
        for a clean image.
        """
        if self.attack is None:
            return np.array(X, copy=True), np.array(y, copy=True), np.full(len(y), -1)
        if self.kind == "multi":
            X_p, y_p, _, ids = self.attack.poison(X, y, return_ids=True)
            return X_p, y_p, ids
        X_p, y_p, mask = self.attack.poison(X, y)
        return X_p, y_p, np.where(mask, 0, -1)

    def trigger_text(self):
        """One line on the attack(s), for progress lines and listings."""
        if self.attack is None:
            return "no attack"
        return "; ".join(
            f"{a.source}->{a.target} {_attack_text(a)}" for a in self.attacks
        )


def robust_scenarios(image_shape, max_value=255, min_contrast=0):
    """Draw the robust suite's 21 scenarios for images of one shape.

    For each of the paper's eight (source, target) pairs a blended-trigger
    scenario (:func:`~sklearn_ispl.attacks.make_blended_scenario`) and a
    varying-stamp one (:func:`~sklearn_ispl.attacks.make_varying_scenario`),
    pair-major (indices 0 to 15); then four scenarios with two attacks at
    once on different pairs
    (:func:`~sklearn_ispl.attacks.make_multi_scenario`, indices 16 to 19)
    and one clean scenario (index 20). Every attack poisons
    :data:`ROBUST_EPS` of its source class; scenario ``i`` is drawn with
    ``random_state=i``.

    Parameters
    ----------
    image_shape : tuple of int
        ``(H, W)`` or ``(H, W, C)``, ``H`` and ``W`` at least 3.
    max_value : int, default=255
        Largest colour value.
    min_contrast : int, default=0
        Least brightest-channel colour of the stamped attacks among the
        two-attack scenarios (0: the paper's rule).

    Returns
    -------
    scenarios : list of RobustScenario

    Examples
    --------
    >>> from sklearn_ispl.benchmark import robust_scenarios
    >>> scenarios = robust_scenarios((28, 28))
    >>> len(scenarios), scenarios[0].id, scenarios[-1].id
    (21, '00-blended-s0t2-e10', '20-clean')
    """
    scenarios = []
    for source, target in PAPER_CLASS_PAIRS:
        for kind, draw in (
            ("blended", make_blended_scenario),
            ("varying", make_varying_scenario),
        ):
            index = len(scenarios)
            attack = draw(
                image_shape,
                source,
                target,
                eps=ROBUST_EPS,
                random_state=index,
                max_value=max_value,
            )
            scenarios.append(RobustScenario(index, kind, attack))
    for kinds in _MULTI_KINDS:
        index = len(scenarios)
        attack = make_multi_scenario(
            image_shape,
            n_attacks=2,
            eps=ROBUST_EPS,
            random_state=index,
            max_value=max_value,
            kinds=kinds,
            min_contrast=min_contrast,
        )
        scenarios.append(RobustScenario(index, "multi", attack))
    scenarios.append(RobustScenario(len(scenarios), "clean", None))
    return scenarios


def suite_scenarios(suite, image_shape, max_value=255, min_contrast=0):
    """Draw the scenarios of one suite (``"paper"`` or ``"robust"``).

    Parameters
    ----------
    suite : {"paper", "robust"}
        :func:`benchmark_scenarios` or :func:`robust_scenarios`.
    image_shape, max_value, min_contrast
        As for those functions.

    Returns
    -------
    scenarios : list of Scenario or RobustScenario

    Raises
    ------
    ValueError
        If the suite is unknown.
    """
    if suite == "paper":
        return benchmark_scenarios(image_shape, max_value, min_contrast)
    if suite == "robust":
        return robust_scenarios(image_shape, max_value, min_contrast)
    raise ValueError(f"Unknown suite {suite!r}; choose one of {', '.join(SUITES)}.")


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
