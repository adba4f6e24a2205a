"""
Use your own skorch network as the weak learner
===============================================

Every stage of :class:`~sklearn_ispl.ISPLFilter` (the ISPL partition, the
component learners of the vote, self-training) trains the same kind of weak
learner. By default it is a small CNN in a skorch net; any
:class:`skorch.NeuralNetClassifier` can take its place, with its own module,
optimizer and learning rate.

The filter fills in what depends on the data: a module whose constructor
takes ``input_shape`` and ``n_classes`` gets them (``(channels, height,
width)`` of the images, and the number of classes). It also turns off
skorch's internal validation split and printing, and decides how many epochs
each stage trains, so ``max_epochs`` is not used. Images reach the module
standardised, as float32 tensors of shape ``(batch, channels, height,
width)``.
"""

# %%
import time

import torch
from skorch import NeuralNetClassifier
from torch import nn

from sklearn_ispl import ISPLFilter
from sklearn_ispl.attacks import BackdoorAttack
from sklearn_ispl.datasets import load_digits_images
from sklearn_ispl.metrics import filter_report
from sklearn_ispl.plotting import plot_components

# %%
# The network
# -----------
# One convolution, one pooling, one linear layer: weak on purpose. A learner
# that fits its component well but generalises little beyond it is what the
# defense needs.


class TinyCNN(nn.Module):
    """Convolution, pooling and a linear read-out, sized from the input."""

    def __init__(self, input_shape, n_classes, n_filters=16):
        super().__init__()
        channels, height, width = input_shape
        self.features = nn.Sequential(
            nn.Conv2d(channels, n_filters, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.out = nn.Linear(n_filters * (height // 2) * (width // 2), n_classes)

    def forward(self, X):
        return self.out(self.features(X))


# The module outputs logits, hence cross-entropy (skorch's classifier default,
# NLLLoss, expects log-probabilities). The optimizer matters: with this
# network, plain SGD learned the trigger along with the digits in our trials,
# so the poison was not singled out; Adam worked better here. (With the
# package's default CNN on Fashion-MNIST it went the other way; see
# ``benchmarks/README.md``.) Check the choice on data you poison yourself.
net = NeuralNetClassifier(
    TinyCNN,
    criterion=nn.CrossEntropyLoss,
    optimizer=torch.optim.Adam,
    lr=2e-3,
    batch_size=64,
)

# %%
# Filter poisoned digits with it
# ------------------------------
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
X_poisoned, y_poisoned, poison = attack.poison(X, y)

ispl = ISPLFilter(
    net,
    n_runs=1,
    n_components=4,
    warmup_epochs=4,
    epochs_per_iteration=2,
    voter__n_epochs=30,
    refiner__n_rounds=6,
    random_state=0,
)
start = time.perf_counter()
ispl.fit(X_poisoned, y_poisoned)
print(f"fit in {time.perf_counter() - start:.1f} s")
report = filter_report(poison, ispl.keep_mask_)
print(
    f"poison removed {report['true_positives']}/{report['n_poison']}, "
    f"clean removed {report['false_positives']}/{report['n_clean']} "
    f"({report['false_positive_rate']:.1%})"
)

# %%
# The net's settings are nested parameters of the filter, as in skorch, so
# ``set_params`` and ``GridSearchCV`` reach them:
ispl.set_params(weak_learner__lr=1e-3, weak_learner__module__n_filters=8)
print(ispl.get_params()["weak_learner__lr"])

# %%
# What the components hold, by given label (poison in black):
ax = plot_components(ispl, y_poisoned, poison)
