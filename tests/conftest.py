import os
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans

from sklearn_ispl import BoostedComponentVoter, ISPLFilter

# Keep the suite within a 2-core budget: each test process uses both cores
# through torch, and settings below keep every fit to a few seconds.
torch.set_num_threads(2)


def tiny_ispl(**params):
    """ISPLFilter with the fewest epochs that still exercise every stage."""
    settings = dict(
        n_runs=1,
        n_components=2,
        warmup_epochs=1,
        epochs_per_iteration=1,
        voter=BoostedComponentVoter(n_epochs=1),
        refiner__n_rounds=1,
        refiner__n_epochs=1,
        random_state=0,
    )
    settings.update(params)
    return ISPLFilter(**settings)


def linear_ispl(**params):
    """A fast defense: linear weak learners on the flattened images."""
    from sklearn.linear_model import SGDClassifier

    settings = dict(
        weak_learner=SGDClassifier(loss="log_loss", alpha=1e-3),
        n_runs=2,
        n_components=4,
        warmup_epochs=2,
        epochs_per_iteration=2,
        voter=BoostedComponentVoter(n_epochs=5),
        refiner__n_rounds=2,
        refiner__n_epochs=2,
        extra_stages=[],
        random_state=0,
    )
    settings.update(params)
    return ISPLFilter(**settings)


def tiny_voter(**params):
    settings = dict(
        n_epochs=1, partitioner=KMeans(2, n_init=1, random_state=0), random_state=0
    )
    settings.update(params)
    return BoostedComponentVoter(**settings)


def flipped_labels(n_samples, n_classes, flip, seed, **params):
    """Separable classes with a ``flip`` share of labels moved to the next class.

    Returns ``X, y_noisy, flipped``; ``params`` go to ``make_classification``.
    """
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=n_samples,
        n_classes=n_classes,
        n_informative=6,
        random_state=seed,
        **params,
    )
    flipped = np.random.RandomState(seed).rand(len(y)) < flip
    return X, np.where(flipped, (y + 1) % n_classes, y), flipped


def half_bright_images(rng, n):
    """Two classes of 12x12 images: a bright left or a bright right half.

    The halves' brightness varies from image to image far more than a
    pixel or two of a trigger does. Returns the true class of each image
    and the images; draws from ``rng``.
    """
    truth = np.arange(n) % 2
    X = rng.rand(n, 12, 12) * 0.3
    brightness = rng.uniform(0.5, 1.5, size=n)[:, None, None]
    X[truth == 0, :, :6] += brightness[truth == 0]
    X[truth == 1, :, 6:] += brightness[truth == 1]
    return truth, X


def snapshot_files(folder):
    """Every entry under ``folder`` (links not followed) with its content."""
    found = {}
    for root, dirs, names in os.walk(folder):
        for name in names + dirs:
            path = os.path.join(root, name)
            if os.path.islink(path):
                found[path] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                found[path] = ("folder",)
            else:
                found[path] = Path(path).read_bytes()
    return found


@pytest.fixture
def rng():
    return np.random.RandomState(0)


@pytest.fixture(scope="session")
def poisoned_digits():
    """Digits with an X trigger on 20% of the zeros, relabelled 8."""
    from sklearn_ispl.attacks import BackdoorAttack
    from sklearn_ispl.datasets import load_digits_images

    X, y = load_digits_images()
    attack = BackdoorAttack(
        source=0,
        target=8,
        trigger="pattern",
        position=(6, 1),
        color=16,
        eps=0.2,
        random_state=0,
    )
    X_p, y_p, poison = attack.poison(X, y)
    return X_p, y_p, poison, attack
