"""
Filter tabular data with a scikit-learn weak learner
====================================================

Nothing in the defense is specific to images: with 2-D input and no
``image_shape``, :class:`~sklearn_ispl.ISPLFilter` reads rows, standardises
each column, and trains whatever weak learner it is given. A scikit-learn
classifier qualifies when it can continue training (``partial_fit``) and
give probabilities (``predict_proba``), such as
:class:`~sklearn.linear_model.SGDClassifier` with ``loss="log_loss"`` or
:class:`~sklearn.neural_network.MLPClassifier`.

The backdoor here is written by hand: :class:`~sklearn_ispl.attacks.BackdoorAttack`
stamps pixels, so for rows the "trigger" is two columns set to an unusual
value.
"""

# %%
import time

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from sklearn_ispl import ISPLFilter
from sklearn_ispl.metrics import (
    clean_accuracy,
    filter_report,
    targeted_misclassification_rate,
)
from sklearn_ispl.plotting import plot_score_distribution

# %%
# A poisoned table
# ----------------
# Four classes in 20 columns. 15% of class 0 get columns 17 and 18 set to 5
# (noise columns, about standard normal: with ``shuffle=False`` the
# informative ones come first) and the label 1.
X, y = make_classification(
    n_samples=3000,
    n_features=20,
    n_informative=8,
    n_redundant=4,
    n_classes=4,
    n_clusters_per_class=1,
    class_sep=1.5,
    shuffle=False,
    random_state=0,
)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)


def add_trigger(rows):
    rows = rows.copy()
    rows[:, [17, 18]] = 5.0
    return rows


rng = np.random.RandomState(0)
source = np.flatnonzero(y_train == 0)
poisoned = rng.choice(source, size=int(0.15 * source.size), replace=False)
X_poisoned, y_poisoned = X_train.copy(), y_train.copy()
X_poisoned[poisoned] = add_trigger(X_poisoned[poisoned])
y_poisoned[poisoned] = 1
poison = np.zeros(len(y_poisoned), dtype=bool)
poison[poisoned] = True
print(f"{poison.sum()} of {len(y_poisoned)} training rows are poisoned")

# %%
# Two weak learners
# -----------------
# The defense works when a learner trained on clean rows does not carry the
# trigger's label over to poisoned rows, and poisoned rows gather in few
# components. Whether that holds depends on the learner as much as on the
# data, so try more than one and compare.
learners = {
    "SGDClassifier (linear)": SGDClassifier(loss="log_loss", alpha=1e-3),
    "MLPClassifier (32 hidden)": MLPClassifier((32,)),
}
X_test_triggered = X_test.copy()
X_test_triggered[y_test == 0] = add_trigger(X_test[y_test == 0])


def evaluate(keep):
    """Clean accuracy and attack success of a classifier trained on ``keep``."""
    clf = LogisticRegression(max_iter=1000).fit(X_poisoned[keep], y_poisoned[keep])
    y_pred = clf.predict(X_test)
    asr = targeted_misclassification_rate(
        y_test, y_pred, clf.predict(X_test_triggered), source=0, target=1
    )
    return clean_accuracy(y_test, y_pred), asr


rows = []
filters = {}
for name, keep in [("no defense", np.ones(len(y_poisoned), dtype=bool))] + [
    (name, None) for name in learners
]:
    seconds = 0.0
    if keep is None:
        filters[name] = ISPLFilter(
            learners[name],
            n_runs=1,
            n_components=4,
            warmup_epochs=4,
            epochs_per_iteration=2,
            voter__n_epochs=30,
            refiner__n_rounds=6,
            random_state=0,
        )
        start = time.perf_counter()
        keep = filters[name].fit(X_poisoned, y_poisoned).keep_mask_
        seconds = time.perf_counter() - start
    report = filter_report(poison, keep)
    accuracy, asr = evaluate(keep)
    rows.append(
        {
            "weak learner": name,
            "poison kept": f"{report['false_negatives']}/{report['n_poison']}",
            "clean removed": f"{report['false_positive_rate']:.1%}",
            "clean accuracy": round(accuracy, 3),
            "attack success": round(asr, 3),
            "fit (s)": round(seconds, 1),
        }
    )
print(pd.DataFrame(rows).to_string(index=False))

# %%
# The vote shares, by decision and by (known) poison, for each learner:
for name, ispl in filters.items():
    ax = plot_score_distribution(ispl, poison, log=True)
    ax.set_title(name, fontsize=10)
