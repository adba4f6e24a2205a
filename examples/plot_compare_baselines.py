"""
Compare ISPL with the baseline defenses
=======================================

The paper compares ISPL with Spectral Signatures, Activation Clustering and
Iterative Trimmed Loss Minimization; the package also wraps cleanlab's
confident learning. All of them are filters with the same API, so one loop
runs them on the same poisoned set and one classifier judges what each kept.

This is one scenario with small settings, not a benchmark: see
``benchmarks/README.md`` for the measured comparison and its limits.
"""

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from sklearn_ispl import (
    ActivationClusteringFilter,
    ConfidentLearningFilter,
    ISPLFilter,
    ITLMFilter,
    SpectralSignatureFilter,
)
from sklearn_ispl.attacks import BackdoorAttack
from sklearn_ispl.datasets import load_digits_images
from sklearn_ispl.metrics import (
    clean_accuracy,
    filter_report,
    targeted_misclassification_rate,
)
from sklearn_ispl.plotting import plot_score_distribution

# %%
# The scenario
# ------------
# A fifth of the training ones get a one-pixel-wide "L" trigger and the
# label 3.
X, y = load_digits_images()
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
attack = BackdoorAttack(
    source=1,
    target=3,
    trigger="ell",
    position=(0, 5),
    color=16,
    eps=0.2,
    random_state=0,
)
X_poisoned, y_poisoned, poison = attack.poison(X_train, y_train)
print(f"{poison.sum()} of {len(y_poisoned)} training samples are poisoned")

# %%
# The defenses
# ------------
# Small, explicit settings for a quick run. Spectral Signatures removes a
# fixed share of every class; it is told 1.5 times the expected poison rate
# of the target class, as in the paper.
defenses = {
    "ISPL": ISPLFilter(
        n_runs=1,
        n_components=4,
        warmup_epochs=4,
        epochs_per_iteration=2,
        voter__n_epochs=30,
        refiner__n_rounds=6,
    ),
    "Spectral Signatures": SpectralSignatureFilter(n_epochs=10, removal_rate=0.3),
    "Activation Clustering": ActivationClusteringFilter(n_epochs=10),
    "ITLM": ITLMFilter(n_rounds=4, first_epochs=10, epochs=5),
    "Confident learning": ConfidentLearningFilter(n_epochs=10, cv=3),
}

# %%
# Run every defense, then train the same classifier on what it kept.
source = y_test == attack.source
X_test_triggered = X_test.copy()
X_test_triggered[source] = attack.apply_trigger(X_test[source])


def flat(images):
    return images.reshape(len(images), -1) / 16


def evaluate(keep):
    clf = LogisticRegression(max_iter=1000).fit(
        flat(X_poisoned[keep]), y_poisoned[keep]
    )
    y_pred = clf.predict(flat(X_test))
    asr = targeted_misclassification_rate(
        y_test,
        y_pred,
        clf.predict(flat(X_test_triggered)),
        attack.source,
        attack.target,
    )
    return clean_accuracy(y_test, y_pred), asr


rows = []
no_defense = np.ones(len(y_poisoned), dtype=bool)
for name, keep, seconds in [("no defense", no_defense, 0.0)] + [
    (name, None, None) for name in defenses
]:
    if keep is None:
        defense = defenses[name].set_params(random_state=0)
        start = time.perf_counter()
        keep = defense.fit(X_poisoned, y_poisoned).keep_mask_
        seconds = time.perf_counter() - start
    report = filter_report(poison, keep)
    accuracy, asr = evaluate(keep)
    rows.append(
        {
            "defense": name,
            "poison kept": f"{report['false_negatives']}/{report['n_poison']}",
            "clean removed": f"{report['false_positive_rate']:.1%}",
            "clean accuracy": round(accuracy, 3),
            "attack success": round(asr, 3),
            "fit (s)": round(seconds, 1),
        }
    )
print(pd.DataFrame(rows).to_string(index=False))

# %%
# Scores
# ------
# Every filter scores the samples, low meaning suspicious, but each on its
# own scale: the share of votes for the given label (ISPL), minus the squared
# projection on the class's top singular vector (Spectral Signatures), the
# share of its class in the sample's cluster (Activation Clustering), minus
# the loss (ITLM), the out-of-fold probability of the given label (confident
# learning). The histograms show how well each score separates the poison.
fig, axes = plt.subplots(len(defenses), 1, figsize=(6, 2.2 * len(defenses)))
for ax, (name, defense) in zip(axes, defenses.items(), strict=True):
    plot_score_distribution(defense, poison, log=True, ax=ax)
    ax.set_title(name, fontsize=10)
fig.tight_layout()
