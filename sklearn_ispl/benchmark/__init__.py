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

Beside these 24 (the ``paper`` suite), the ``robust`` suite
(:func:`robust_scenarios`, ``run_benchmark(..., suite="robust")``) tries the
defenses on other attacks: for each of the eight pairs a blended trigger and
a varying stamp, four scenarios with two attacks at once, and one clean
scenario, 21 in all, each attack poisoning 10% of its source class. With two
attacks, ``A`` is the larger of their rates; the clean scenario has no ``A``
and no ``FN``, only the share of samples each defense removes and the final
classifier's ``C``. Its summary is given per attack family
(:func:`summarize_families`).

The defenses are looked up by name in :mod:`sklearn_ispl` at run time
(:data:`DEFENSES`); one that the installed package lacks is skipped with a
note.
"""

from ._compare import compare_results
from ._defenses import (
    DEFENSES,
    DefenseSpec,
    available_defenses,
    make_defense,
    parse_defense_params,
)
from ._profiles import PROFILES, BenchmarkProfile, get_profile
from ._report import (
    FAMILIES,
    plot_asr,
    results_table,
    summarize,
    summarize_families,
)
from ._report import write_report as write_report
from ._results import RESULTS_FORMAT as RESULTS_FORMAT
from ._runner import run_benchmark
from ._scenarios import (
    EPS_VALUES,
    ROBUST_EPS,
    SUITES,
    RobustScenario,
    Scenario,
    benchmark_scenarios,
    robust_scenarios,
    select_scenarios,
    suite_scenarios,
)

# isort: split
# Not public, but used by the command line, the scripts under benchmarks/
# and the tests, so importable from here too.
from ._data import _FinalModel as _FinalModel
from ._data import _load_data as _load_data
from ._data import _subset as _subset
from ._defenses import _for_scenario as _for_scenario
from ._defenses import _resolve_defense as _resolve_defense
from ._results import _jsonable as _jsonable
from ._runner import _train_final as _train_final

__all__ = [
    "DEFENSES",
    "EPS_VALUES",
    "FAMILIES",
    "PROFILES",
    "ROBUST_EPS",
    "SUITES",
    "BenchmarkProfile",
    "DefenseSpec",
    "RobustScenario",
    "Scenario",
    "available_defenses",
    "benchmark_scenarios",
    "compare_results",
    "get_profile",
    "make_defense",
    "parse_defense_params",
    "plot_asr",
    "results_table",
    "robust_scenarios",
    "run_benchmark",
    "select_scenarios",
    "suite_scenarios",
    "summarize",
    "summarize_families",
]
