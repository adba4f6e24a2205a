"""Dirty-label backdoor attacks, as used to evaluate the defense.

The attack of the paper (section 6 and appendix B.2, after Gu et al. 2017 and
Tran et al. 2018): a share ``eps`` of the training images of a *source*
class gets a small trigger (one pixel, an "L" of three pixels or an "X" of
five pixels, at a fixed position and colour) and is relabelled as the
*target* class. A model trained on the poisoned set then tends to classify
any source image carrying the trigger as the target.

:class:`BackdoorAttack` poisons a training set and applies the trigger to
test images; :func:`make_scenario` draws a random attack by the paper's rule;
:data:`CIFAR10_SCENARIOS` holds the 24 attacks of the paper's Table 2.

Beyond the paper, to test the defense against other triggers:
:class:`BlendedBackdoorAttack` blends a pattern into the whole image (Chen et
al. 2017), :class:`VaryingBackdoorAttack` stamps a trigger whose intensity
(and position) varies from image to image, and :class:`MultiAttack` runs
several attacks on one training set. :func:`make_blended_scenario`,
:func:`make_varying_scenario` and :func:`make_multi_scenario` draw them at
random as :func:`make_scenario` does the paper's.
"""

# The metrics compare labels the way the attacks do, through this helper.
from ._base import _equals as _equals
from ._blended import BlendedBackdoorAttack
from ._multi import MultiAttack
from ._scenarios import (
    CIFAR10_SCENARIOS,
    PAPER_CLASS_PAIRS,
    SCENARIO_KINDS,
    make_blended_scenario,
    make_multi_scenario,
    make_scenario,
    make_varying_scenario,
)
from ._stamped import TRIGGERS, BackdoorAttack, VaryingBackdoorAttack

__all__ = [
    "CIFAR10_SCENARIOS",
    "PAPER_CLASS_PAIRS",
    "SCENARIO_KINDS",
    "TRIGGERS",
    "BackdoorAttack",
    "BlendedBackdoorAttack",
    "MultiAttack",
    "VaryingBackdoorAttack",
    "make_blended_scenario",
    "make_multi_scenario",
    "make_scenario",
    "make_varying_scenario",
]
