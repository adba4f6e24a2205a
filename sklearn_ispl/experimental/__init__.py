"""Stages beyond the paper, composed into :class:`~sklearn_ispl.ISPLFilter`.

Everything here is experimental: its behaviour and parameters may change
without a deprecation cycle, and it was measured on fewer data and attacks
than the paper's three stages. The package does not import this module by
default; a schedule or a user that needs a stage imports it from here and
passes it in ``extra_stages``::

    from sklearn_ispl import ISPLFilter
    from sklearn_ispl.experimental import Rescue, TriggerBlindJudge

    ISPLFilter(extra_stages=[TriggerBlindJudge(), Rescue(n_epochs=4)])

The filter calls each stage's hooks around the refine stage in list order
(``before_refine``, then ``after_refine``; see :class:`ExtraStage`); each
stage keeps what it found as fitted attributes, on the fitted copies in
the filter's ``extra_stages_``. What each stage did on the benchmark is on
the documentation's benchmarks page.
"""

from .._stages import ExtraStage, FitState
from ._compat import LabelCompatibilityTest
from ._group_test import GroupTriggerTest
from ._groups import GroupDecision
from ._judge import TriggerBlindJudge
from ._rescue import Rescue
from ._trigger import StampedTriggerCheck

__all__ = [
    "ExtraStage",
    "FitState",
    "GroupDecision",
    "GroupTriggerTest",
    "LabelCompatibilityTest",
    "Rescue",
    "StampedTriggerCheck",
    "TriggerBlindJudge",
]
