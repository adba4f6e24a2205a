"""
Tune the defense in a pipeline with GridSearchCV
================================================

:class:`~sklearn_ispl.ISPLFilter` is an imbalanced-learn sample filter: as a
step of :class:`imblearn.pipeline.Pipeline` it removes samples while the
pipeline is fitted, and passes every sample through at prediction time. So
its settings can be searched like any hyperparameter, with a scorer for clean
accuracy and one for attack success side by side.

The search below compares no defense (the step replaced by
``"passthrough"``) with two defense settings, and picks the setting with the
lowest attack success, breaking ties by clean accuracy. The searched setting,
``isplfilter__voter__n_epochs``, reaches the vote stage's epochs through the
pipeline step and the filter, as nested parameters do in scikit-learn.
"""

# %%
import time

import numpy as np
import pandas as pd
from imblearn.pipeline import make_pipeline
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedShuffleSplit,
    train_test_split,
)
from sklearn.preprocessing import StandardScaler

from sklearn_ispl import ISPLFilter
from sklearn_ispl.attacks import BackdoorAttack
from sklearn_ispl.datasets import load_digits_images
from sklearn_ispl.metrics import (
    clean_accuracy,
    clean_accuracy_scorer,
    make_attack_success_scorer,
    targeted_misclassification_rate,
)

# %%
# Data: flat rows
# ---------------
# Flat rows (one 8x8 image per row) suit scikit-learn's classifiers; the
# filter and the attack read them as images through ``image_shape``.
X, y = load_digits_images()
X = X.reshape(len(X), -1)
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
    image_shape=(8, 8),
    random_state=0,
)
X_poisoned, y_poisoned, poison = attack.poison(X_train, y_train)

# %%
# Pipeline and search
# -------------------
# The final classifier is a logistic regression: fast, and it learns this
# backdoor completely when nothing is filtered. The search compares no
# defense with the defense in two settings: component learners trained for 10
# or for 30 epochs before they vote (``voter__n_epochs``). The other settings
# are small and explicit so that the example runs quickly; ``ISPLFilter()``
# would take them from its schedule.
ispl = ISPLFilter(
    n_runs=1,
    n_components=4,
    warmup_epochs=4,
    epochs_per_iteration=2,
    voter__n_epochs=30,
    refiner__n_rounds=6,
    image_shape=(8, 8),
    random_state=0,
)
pipe = make_pipeline(ispl, StandardScaler(), LogisticRegression(max_iter=1000))
param_grid = [
    {"isplfilter": ["passthrough"]},
    {"isplfilter__voter__n_epochs": [10, 30]},
]
scoring = {
    "clean": clean_accuracy_scorer,
    # Negated: scikit-learn maximises scores, and lower attack success is
    # better. 0 means the trigger never worked.
    "neg_asr": make_attack_success_scorer(attack),
}


def lowest_attack_success(cv_results):
    """Index of the candidate with the least attack success, then most accuracy."""
    order = np.lexsort(
        (-cv_results["mean_test_clean"], -cv_results["mean_test_neg_asr"])
    )
    return int(order[0])


search = GridSearchCV(
    pipe,
    param_grid,
    scoring=scoring,
    refit=lowest_attack_success,
    # One split keeps the example short; use several folds in earnest. The
    # validation part holds poisoned samples too, as a held-out part of
    # untrusted data would; the attack scorer uses its clean zeros.
    cv=StratifiedShuffleSplit(n_splits=1, test_size=0.25, random_state=0),
)
start = time.perf_counter()
search.fit(X_poisoned, y_poisoned)
print(f"search in {time.perf_counter() - start:.1f} s")

# %%
# Results
# -------
results = pd.DataFrame(search.cv_results_)
results["defense"] = [
    "none"
    if params.get("isplfilter") == "passthrough"
    else f"ISPL, voter__n_epochs={params['isplfilter__voter__n_epochs']}"
    for params in results["params"]
]
results["attack success"] = -results["mean_test_neg_asr"] + 0.0  # no "-0.0"
print(
    results[["defense", "mean_test_clean", "attack success"]].to_string(
        index=False, float_format="{:.3f}".format
    )
)
print("chosen:", results["defense"][search.best_index_])

# %%
# The refitted pipeline was trained on the whole poisoned training set,
# filtered by the chosen defense. On the test set (clean, and with the
# trigger on the zeros):
y_pred = search.predict(X_test)
source = y_test == attack.source
y_pred_triggered = y_pred.copy()
y_pred_triggered[source] = search.predict(attack.apply_trigger(X_test[source]))
print(f"clean accuracy {clean_accuracy(y_test, y_pred):.3f}")
print(
    "attack success "
    f"{targeted_misclassification_rate(y_test, y_pred, y_pred_triggered, 0, 8):.3f}"
)
