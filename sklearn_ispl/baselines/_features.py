"""Learned representations for the representation-based baselines.

Spectral Signatures and Activation Clustering judge samples by what a network
trained on the (poisoned) data makes of them: the activations of a late
layer. This module trains the weak learner through the package's one
training path (:func:`~sklearn_ispl._learners.build_learner`) and reads a
layer with a forward hook.

- ``feature_layer=None`` reads the default modules' penultimate activation:
  the ReLU after the hidden dense layer (``"head.1"`` of
  :class:`~sklearn_ispl.WeakCNN`, ``"net.1"`` of
  :class:`~sklearn_ispl.WeakMLP`); for any other module, the input of its
  last :class:`torch.nn.Linear` layer.
- A string names a submodule of the net's module, as listed by
  ``dict(module.named_modules())``; its output is read and flattened.
- A scikit-learn weak learner has no layers: the features are the
  standardised input rows (``PreparedData.X_flat``), and nothing is trained.
"""

import numpy as np
import torch
from torch import nn

from .._learners import WeakCNN, WeakMLP, build_learner

# The penultimate activation of the package's default modules.
_DEFAULT_LAYERS = {WeakCNN: "head.1", WeakMLP: "net.1"}


def resolve_feature_layer(module, feature_layer):
    """Return ``(submodule, read)``: the layer to hook and what to read.

    ``read`` is ``"output"`` (the submodule's output) or ``"input"`` (its
    first positional input, for the fallback of unknown modules).

    Raises
    ------
    ValueError
        If ``feature_layer`` names no submodule of ``module``, or is None for
        a module that has no :class:`torch.nn.Linear` layer.
    """
    modules = dict(module.named_modules())
    if feature_layer is None:
        name = _DEFAULT_LAYERS.get(type(module))
        if name is not None and name in modules:
            return modules[name], "output"
        linears = [m for m in modules.values() if isinstance(m, nn.Linear)]
        if linears:
            return linears[-1], "input"
        raise ValueError(
            f"feature_layer=None finds no penultimate layer in "
            f"{type(module).__name__}: it has no nn.Linear layer. Name a layer; "
            f"valid names: {_names(modules)}."
        )
    if feature_layer not in modules or feature_layer == "":
        raise ValueError(
            f"feature_layer={feature_layer!r} is not a submodule of "
            f"{type(module).__name__}; valid names: {_names(modules)}."
        )
    return modules[feature_layer], "output"


def _names(modules):
    return ", ".join(repr(name) for name in modules if name)


def extract_features(learner, layer, read="output", batch_size=512):
    """Activations of ``layer`` for every row of ``learner``, as float32 (n, f)."""
    captured = []

    def hook(_module, inputs, output):
        value = inputs[0] if read == "input" else output
        if isinstance(value, tuple | list):
            value = value[0]
        captured.append(value.detach().reshape(len(value), -1).float().cpu())

    module = learner.estimator.module_
    was_training = module.training
    handle = layer.register_forward_hook(hook)
    module.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(learner.X), batch_size):
                batch = learner.X[start : start + batch_size]
                if batch.ndim == 4:
                    # The layout the learners train in (faster on CPU).
                    batch = batch.contiguous(memory_format=torch.channels_last)
                module(batch)
    finally:
        handle.remove()
        module.train(was_training)
    return torch.cat(captured).numpy()


def learned_features(weak_learner, data, seed, device, n_epochs, feature_layer):
    """Train a fresh weak learner on all of ``data``; return its features.

    Parameters
    ----------
    weak_learner : estimator or None
        As the filters' parameter.
    data : PreparedData
    seed : int
        Seeds the learner's weights and batch order.
    device : str
    n_epochs : int
        Epochs over all samples.
    feature_layer : str or None
        See the module notes.

    Returns
    -------
    features : ndarray of float32 of shape (n_samples, n_features)
    """
    learner = build_learner(weak_learner, data, seed, device)
    if not learner.is_net:
        if feature_layer is not None:
            raise ValueError(
                f"feature_layer={feature_layer!r} needs a neural-network weak "
                f"learner; {type(learner.estimator).__name__} has no layers (its "
                "features are the standardised input rows). Use feature_layer=None."
            )
        return np.ascontiguousarray(data.X_flat, dtype=np.float32)
    # Check the layer before training, so a typo fails at once.
    layer, read = resolve_feature_layer(learner.estimator.module_, feature_layer)
    learner.fit_epochs(np.arange(len(data)), n_epochs)
    return extract_features(learner, layer, read)
