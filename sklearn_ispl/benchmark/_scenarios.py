"""The 24 backdoor scenarios of the benchmark and their selection."""

import re
from dataclasses import dataclass

from ..attacks import PAPER_CLASS_PAIRS, make_scenario

#: Poison rates of the paper's Table 3: share of the source class poisoned.
EPS_VALUES = (0.05, 0.10, 0.20)


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
