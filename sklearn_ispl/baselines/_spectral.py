"""Spectral Signatures (Tran, Li and Madry, NeurIPS 2018)."""

import math
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from threadpoolctl import threadpool_limits

from .._base import BaseFilter
from .._docstring import SHARED_PARAMS, Substitution
from ._features import learned_features

__all__ = ["SpectralSignatureFilter"]


def spectral_signature_scores(features, centre=True):
    """Squared projection of each row on the top singular vector of the rows.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
        Representations of the samples of one class.
    centre : bool, default=True
        Project the centred rows (Tran et al.'s Algorithm 1) or the raw rows
        (ART's implementation). The singular vector is that of the centred
        rows either way.

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        Outlier scores; large means suspicious.
    """
    rows = np.asarray(features, dtype=np.float64)
    if len(rows) == 0:
        return np.zeros(0)
    centred = rows - rows.mean(axis=0)
    # One BLAS thread: a threaded LAPACK SVD of a few hundred rows can be
    # 100x slower than a serial one (seen with OpenBLAS 0.3.31).
    with threadpool_limits(limits=1, user_api="blas"):
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
    projection = (centred if centre else rows) @ vt[0]
    return projection**2


def n_to_remove(n_samples, rate):
    """How many of ``n_samples`` a removal rate takes: ``ceil(rate * n)``."""
    # The tolerance keeps 0.15 * 20 = 3.0000000000000004 at 3.
    return min(n_samples, math.ceil(rate * n_samples - 1e-9))


@Substitution(**SHARED_PARAMS)
class SpectralSignatureFilter(BaseFilter):
    """Remove the samples with the strongest spectral signature in each class.

    The Spectral Signatures defense (Tran, Li and Madry, NeurIPS 2018): a
    network trained on the poisoned data represents the trigger strongly, so
    within the target class the poison stands out along the top singular
    direction of the learned representations. Per class:

    1. take the penultimate-layer features of a weak learner trained on all
       samples for ``n_epochs`` epochs;
    2. centre them and find their top right singular vector ``v``;
    3. score each sample by its squared projection on ``v``;
    4. remove the ``ceil(removal_rate * n_class)`` highest-scoring samples.

    Parameters
    ----------
    weak_learner : estimator, default=None
        The network whose representations are read. None: a skorch net
        around a small CNN (images) or MLP (rows) sized from the data. Any
        skorch net can take its place (see ``feature_layer``). A
        scikit-learn classifier has no layers: the features are then the
        standardised input rows, and nothing is trained.
    n_epochs : int, default=10
        Epochs of training on all samples before reading the features. The
        original defense reads a fully trained network (the paper of this
        package: 200 epochs on CIFAR-10). With the default learner, 10
        epochs fit scikit-learn's digits closely. On a backdoored digits set
        the trigger stood out most after a few epochs; with more, the network
        also encodes the clean variation of the target class and the signal
        can fade, so more is not always better.
    removal_rate : float in [0, 1), default=0.15
        Share of each class removed. Tran et al. remove 1.5 times the largest
        share of poison expected in a class (the paper of this package:
        20% of each class for eps = 5% and 10%, 30% for eps = 20%, on
        CIFAR-10); 0.15 suits up to 10% of poison in the target class.
    centre : bool, default=True
        Project the centred features on the singular vector, as Tran et al.'s
        Algorithm 1 does; False projects the raw features, as ART's
        ``SpectralSignatureDefense`` does (see Notes).
    feature_layer : str, default=None
        The layer whose output is read, as a name from
        ``dict(net.module_.named_modules())``. None: the penultimate
        activation (``"head.1"`` of :class:`~sklearn_ispl.WeakCNN`,
        ``"net.1"`` of :class:`~sklearn_ispl.WeakMLP`; for other modules the
        input of the last ``nn.Linear``). Must be None for a scikit-learn
        weak learner.
    {image_shape}
    {device}
    n_jobs : int, default=None
        Accepted for a uniform API; the defense trains one learner, so it
        does not use parallel workers.
    {random_state}
    verbose : int, default=0
        Accepted for a uniform API (one training, no progress bar).

    Attributes
    ----------
    keep_mask_ : ndarray of bool of shape (n_samples,)
        True for kept samples.
    sample_indices_ : ndarray of int
        Indices of the kept samples.
    scores_ : ndarray of shape (n_samples,)
        Minus the squared projection on the class's top singular vector:
        low means suspicious, as for the package's other filters.
    classes_ : ndarray
        Class labels.
    n_features_in_ : int
        Values per sample (pixels times channels, or columns).
    feature_names_in_ : ndarray of str
        Column names, when ``X`` is a DataFrame with string columns.
    input_layout_ : str
        How ``X`` was read: "nhw", "nhwc", "nchw", "flat" or "tabular".

    See Also
    --------
    ActivationClusteringFilter : Clusters the same representations.
    ISPLFilter : The package's main defense.

    Notes
    -----
    Tran et al.'s Algorithm 1 scores ``((R_i - mean(R)) . v) ** 2`` with
    ``v`` the top right singular vector of the centred representations
    ``R - mean(R)``; that is ``centre=True``, the default. ART's
    ``SpectralSignatureDefense`` (v1.20) takes ``v`` from the centred matrix
    too but projects the *uncentred* rows, ``|R_i . v|``, which mixes the
    class mean's projection into every score; ``centre=False`` reproduces
    its ranking (its scores are the square roots of ours). ART removes the
    samples at or above the ``1 - removal_rate`` quantile of the scores,
    which takes the same number as ``ceil(removal_rate * n)`` except, now
    and then, one sample at the boundary.

    References
    ----------
    B. Tran, J. Li and A. Madry. "Spectral Signatures in Backdoor Attacks".
    NeurIPS 2018.

    Examples
    --------
    >>> from sklearn_ispl import SpectralSignatureFilter
    >>> from sklearn_ispl.attacks import BackdoorAttack
    >>> from sklearn_ispl.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> attack = BackdoorAttack(source=0, target=8, trigger="pattern",
    ...                         position=(6, 1), color=16, eps=0.2,
    ...                         random_state=0)
    >>> X_p, y_p, poison = attack.poison(X, y)
    >>> ss = SpectralSignatureFilter(removal_rate=0.25, random_state=0)
    >>> X_kept, y_kept = ss.fit_resample(X_p, y_p)  # doctest: +SKIP
    """

    _parameter_constraints: dict = {
        **BaseFilter._parameter_constraints,
        "n_epochs": [Interval(Integral, 0, None, closed="left")],
        "removal_rate": [Interval(Real, 0, 1, closed="left")],
        "centre": ["boolean"],
        "feature_layer": [str, None],
    }

    def __init__(
        self,
        weak_learner=None,
        *,
        n_epochs=10,
        removal_rate=0.15,
        centre=True,
        feature_layer=None,
        image_shape=None,
        device="cpu",
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.weak_learner = weak_learner
        self.n_epochs = n_epochs
        self.removal_rate = removal_rate
        self.centre = centre
        self.feature_layer = feature_layer
        self.image_shape = image_shape
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def _fit_filter(self, data):
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        features = learned_features(
            self.weak_learner,
            data,
            seed,
            self.device,
            self.n_epochs,
            self.feature_layer,
        )
        scores = np.zeros(len(data))
        keep = np.ones(len(data), dtype=bool)
        for k in range(data.n_classes):
            rows = np.flatnonzero(data.y == k)
            if len(rows) == 0:
                continue
            class_scores = spectral_signature_scores(features[rows], self.centre)
            scores[rows] = class_scores
            n_removed = n_to_remove(len(rows), self.removal_rate)
            if n_removed:
                top = np.argsort(-class_scores, kind="stable")[:n_removed]
                keep[rows[top]] = False
        return keep, -scores
