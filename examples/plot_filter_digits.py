"""
Filter a poisoned digits set
============================

Put a dirty-label backdoor into scikit-learn's handwritten digits, remove it
with :class:`~sklearn_ispl.ISPLFilter`, and check the result twice: against
the known poison (what was removed), and through a classifier trained on what
was kept (does the backdoor still work?).
"""

# %%
# Poison the training set
# -----------------------
# A fifth of the training zeros get a bright "X" in the bottom-left corner
# and the label 8. A model trained on this set learns "X means 8".
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from sklearn_ispl import ISPLFilter
from sklearn_ispl.attacks import BackdoorAttack
from sklearn_ispl.datasets import load_digits_images
from sklearn_ispl.metrics import (
    clean_accuracy,
    filter_report,
    targeted_misclassification_rate,
)
from sklearn_ispl.plotting import (
    plot_components,
    plot_removed,
    plot_score_distribution,
)

X, y = load_digits_images()  # (1797, 8, 8) images, intensities 0..16
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
attack = BackdoorAttack(
    source=0,
    target=8,
    trigger="pattern",
    position=(6, 1),
    color=16,
    eps=0.2,
    random_state=0,
)
X_poisoned, y_poisoned, poison = attack.poison(X_train, y_train)
print(f"{poison.sum()} of {len(y_poisoned)} training samples are poisoned")

fig, axes = plt.subplots(1, 4, figsize=(6, 1.8))
for ax, i in zip(axes, np.flatnonzero(poison)[:4], strict=False):
    ax.imshow(X_poisoned[i], cmap="gray")
    ax.set_title(f"labelled {y_poisoned[i]}", fontsize=9)
    ax.set_axis_off()
fig.suptitle("Poisoned zeros")

# %%
# Filter it
# ---------
# ``ISPLFilter()`` alone would pick its schedule from the data size
# (``schedule="auto"``: the "small" schedule on these 1,347 images, see
# ``ispl.schedule_`` after fitting). Settings given explicitly win over the
# schedule; here they shrink it so the example runs in seconds: one ISPL run
# of four components, short training at every stage. ``voter__n_epochs``
# and ``refiner__n_rounds`` reach the vote and the refine stage's settings
# without building those objects.
ispl = ISPLFilter(
    n_runs=1,
    n_components=4,
    warmup_epochs=4,
    epochs_per_iteration=2,
    voter__n_epochs=30,
    refiner__n_rounds=6,
    random_state=0,
)
start = time.perf_counter()
X_kept, y_kept = ispl.fit_resample(X_poisoned, y_poisoned)
print(f"fit in {time.perf_counter() - start:.1f} s; kept {len(y_kept)} samples")
print("schedule:", ispl.schedule_["schedule"])
print("seconds per stage:", {k: round(v, 1) for k, v in ispl.stage_times_.items()})

# %%
# What was removed
# ----------------
# :func:`~sklearn_ispl.metrics.filter_report` compares the filter's decision
# with the known poison. False positives are clean samples removed, false
# negatives poisoned samples kept. ``vote_keep_mask_`` is the decision after
# the vote, ``refine_keep_mask_`` after self-training.
for stage, keep in (
    ("after the vote", ispl.vote_keep_mask_),
    ("final", ispl.keep_mask_),
):
    report = filter_report(poison, keep)
    print(
        f"{stage:>15}: poison removed {report['true_positives']}/"
        f"{report['n_poison']}, clean removed {report['false_positives']}/"
        f"{report['n_clean']} ({report['false_positive_rate']:.1%})"
    )

# %%
# The removed images with the lowest vote shares come first; poisoned ones
# have a red frame.
fig = plot_removed(ispl, X_poisoned, y_poisoned, poison_mask=poison, n=24)

# %%
# The vote share of each sample's given label, split by the final decision
# and by the (here known) poison. The count axis is logarithmic so that the
# few poisoned samples show next to the many clean ones.
ax = plot_score_distribution(ispl, poison, log=True)

# %%
# Each component by given label. Poison (black) that gathers in few
# components is outvoted by the others.
ax = plot_components(ispl, y_poisoned, poison)

# %%
# Does the backdoor survive?
# --------------------------
# Train the same classifier on all samples, on the kept ones and, for
# reference, on the clean ones only, and measure clean accuracy and attack
# success (the share of test zeros that the trigger turns into 8s).
source_test = X_test[y_test == attack.source]
X_test_triggered = X_test.copy()
X_test_triggered[y_test == attack.source] = attack.apply_trigger(source_test)


def flat(images):
    return images.reshape(len(images), -1) / 16


for name, mask in (
    ("no defense", np.ones(len(y_poisoned), dtype=bool)),
    ("ISPLFilter", ispl.keep_mask_),
    ("clean only", ~poison),
):
    clf = LogisticRegression(max_iter=1000).fit(
        flat(X_poisoned[mask]), y_poisoned[mask]
    )
    y_pred = clf.predict(flat(X_test))
    asr = targeted_misclassification_rate(
        y_test,
        y_pred,
        clf.predict(flat(X_test_triggered)),
        attack.source,
        attack.target,
    )
    print(
        f"{name:>11}: clean accuracy {clean_accuracy(y_test, y_pred):.3f}, "
        f"attack success {asr:.3f}"
    )
