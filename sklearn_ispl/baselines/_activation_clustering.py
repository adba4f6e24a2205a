"""Activation Clustering (Chen et al., 2018)."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA, FastICA
from sklearn.metrics import silhouette_score
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from threadpoolctl import threadpool_limits

from .._base import BaseFilter
from .._docstring import SHARED_PARAMS, Substitution
from ._features import learned_features

__all__ = ["ActivationClusteringFilter"]


def reduce_features(features, n_dims, reduction, random_state):
    """Reduce one class's features to ``n_dims`` columns (ICA or PCA).

    As in ART, features with at most ``n_dims`` columns are left as they
    are. Constant columns (dead units) are dropped first: they carry nothing,
    and scikit-learn's FastICA (1.9) zeroes its whitening when the first
    column is constant. The number of components is capped by the number of
    rows and columns and, for ICA, by the rank, so whitening never divides by
    zero.
    """
    # float64: FastICA's unit-variance step is fragile in float32.
    rows = np.asarray(features, dtype=np.float64)
    if rows.shape[1] <= n_dims:
        return rows
    rows = rows[:, np.ptp(rows, axis=0) > 0]
    rank = np.linalg.matrix_rank(rows - rows.mean(axis=0)) if rows.size else 0
    if rank == 0:
        return np.zeros((len(rows), 1))
    n_components = min(n_dims, *rows.shape)
    if reduction == "pca":
        return PCA(n_components=n_components).fit_transform(rows)
    # ART's settings (art.defences.detector.poison.reduce_dimensionality).
    ica = FastICA(
        n_components=min(n_components, rank),
        max_iter=1000,
        tol=0.005,
        random_state=random_state,
    )
    return ica.fit_transform(rows)


def cluster_class(features, n_dims, reduction, n_clusters, random_state):
    """Reduce and cluster one class; return ``(labels, reduced features)``.

    ``random_state`` is a :class:`numpy.random.RandomState` that ICA and
    k-means draw from in turn; passing the same generator for every class
    reproduces ART's ``cluster_activations`` run after ``np.random.seed``.
    """
    # One BLAS thread: the per-class matrices are small, and a threaded
    # LAPACK SVD of a few hundred rows can be 100x slower (OpenBLAS 0.3.31).
    with threadpool_limits(limits=1, user_api="blas"):
        reduced = reduce_features(features, n_dims, reduction, random_state)
    if len(reduced) < n_clusters:
        return np.zeros(len(reduced), dtype=np.int64), reduced
    # n_init="auto" is one k-means++ start, as ART's KMeans(n_clusters) uses.
    kmeans = KMeans(n_clusters=n_clusters, n_init="auto", random_state=random_state)
    with warnings.catch_warnings():
        # Fewer distinct points than clusters: the labels are still valid.
        warnings.filterwarnings("ignore", message="Number of distinct clusters")
        labels = kmeans.fit_predict(reduced)
    return labels.astype(np.int64), reduced


def flag_clusters(
    labels,
    reduced,
    n_clusters,
    analysis,
    size_threshold=0.35,
    silhouette_threshold=0.1,
):
    """Return ``(flagged cluster ids, silhouette)`` for one class.

    The rules of ART's ``ClusteringAnalyzer``:

    - ``"smaller"``: the smallest non-empty cluster (the first on a tie);
    - ``"relative-size"``: every cluster whose share of the class, rounded
      to two decimals, is below ``size_threshold``;
    - ``"silhouette"``: the clusters ``"relative-size"`` flags, but only when
      the class's mean silhouette score, rounded to four decimals, exceeds
      ``silhouette_threshold`` (a low score means no real split).

    ``silhouette`` is NaN unless ``analysis="silhouette"`` computed it (it
    needs at least two clusters and fewer clusters than samples).
    """
    sizes = np.bincount(labels, minlength=n_clusters)
    nothing = np.zeros(0, dtype=np.int64)
    present = np.flatnonzero(sizes)
    if len(present) < 2:
        # No split was found: nothing to flag.
        return nothing, np.nan
    if analysis == "smaller":
        return present[[np.argmin(sizes[present])]], np.nan
    shares = np.round(sizes[present] / sizes.sum(), 2)
    small = present[shares < round(size_threshold, 2)]
    if analysis == "relative-size":
        return small, np.nan
    if len(present) >= len(labels):
        # Every sample in a cluster of its own: no silhouette to compute.
        return nothing, np.nan
    silhouette = float(silhouette_score(reduced, labels))
    if round(silhouette, 4) > round(silhouette_threshold, 4):
        return small, silhouette
    return nothing, silhouette


@Substitution(**SHARED_PARAMS)
class ActivationClusteringFilter(BaseFilter):
    """Remove the small cluster of learned representations in each class.

    The Activation Clustering defense (Chen et al., 2018): a network trained
    on the poisoned data represents the poisoned samples of a class by the
    trigger and the clean ones by their content, so each class's
    representations split in two. Per class:

    1. take the penultimate-layer features of a weak learner trained on all
       samples for ``n_epochs`` epochs;
    2. reduce them to ``n_dims`` dimensions (``reduction``: ICA or PCA);
    3. cluster them with k-means into ``n_clusters`` clusters;
    4. flag clusters by ``analysis`` and remove their samples.

    Parameters
    ----------
    weak_learner : estimator, default=None
        The network whose representations are read. None: a skorch net
        around a small CNN (images) or MLP (rows) sized from the data. Any
        skorch net can take its place (see ``feature_layer``). A
        scikit-learn classifier has no layers: the features are then the
        standardised input rows, and nothing is trained.
    n_epochs : int, default=10
        Epochs of training on all samples before reading the features (see
        :class:`SpectralSignatureFilter`).
    n_dims : int, default=10
        Dimensions kept by the reduction (Chen et al. and ART: 10). Features
        with at most ``n_dims`` columns are not reduced.
    reduction : {"pca", "ica"}, default="pca"
        ``"pca"``: :class:`~sklearn.decomposition.PCA`, the default of ART's
        ``ActivationDefence`` class (v1.20 and the older versions checked),
        which the paper of this package ran with its defaults (v1.6.2).
        ``"ica"``:
        :class:`~sklearn.decomposition.FastICA` with ART's settings
        (``max_iter=1000, tol=0.005``), as Chen et al. reduce and as ART's
        helper functions ``reduce_dimensionality`` and
        ``cluster_activations`` default to (see Notes).
    n_clusters : int, default=2
        Clusters per class (2: clean and poison). 1 flags nothing: every
        sample is kept (a no-defense entry for a grid search).
    analysis : {"smaller", "relative-size", "silhouette"}, default="smaller"
        Which clusters are poison, by the rules of ART's
        ``ClusteringAnalyzer``:

        - ``"smaller"`` (ART's default): the smallest cluster of every class.
        - ``"relative-size"``: every cluster holding less than
          ``size_threshold`` of its class (share rounded to 2 decimals), so
          classes that split evenly are left alone.
        - ``"silhouette"``: as ``"relative-size"``, but only in classes whose
          mean silhouette score (rounded to 4 decimals) is above
          ``silhouette_threshold``: the split must be real.
    size_threshold : float in (0, 1], default=0.35
        A cluster whose share of its class, rounded to 2 decimals, is below
        this is small for ``"relative-size"`` and ``"silhouette"`` (ART's
        default).
    silhouette_threshold : float in [-1, 1], default=0.1
        Mean silhouette score above which ``"silhouette"`` trusts a split
        (ART's default).
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
        The share of its class that each sample's cluster holds: low means
        suspicious (the flagged clusters are the small ones).
    clusters_ : ndarray of int of shape (n_samples,)
        Each sample's cluster within its class (0 .. n_clusters - 1).
    flagged_clusters_ : list of ndarray of int
        Per class (in the order of ``classes_``), the clusters removed.
    silhouette_scores_ : ndarray of shape (n_classes,)
        Mean silhouette score of each class's clustering, with
        ``analysis="silhouette"``; NaN otherwise, and for classes with fewer
        than two clusters or as many clusters as samples.
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
    SpectralSignatureFilter : Scores the same representations.
    ISPLFilter : The package's main defense.

    Notes
    -----
    This follows ART's ``ActivationDefence`` (v1.20), which the paper of this
    package ran with its defaults: same reduction settings, k-means with one
    k-means++ start, same flagging rules, and the same default reduction
    (PCA; ART's helper functions default to FastICA, as Chen et al. use).
    On backdoored digits with the default learner, PCA put the poison in
    the target class's small cluster with few clean samples, where ICA's
    small cluster held a minority of it. Given the same features and, for
    each class in turn, a generator seeded as ART's global one, the
    clusters are identical. Differences:

    - Constant feature columns (dead ReLU units) are dropped before the
      reduction. PCA is unchanged by this; scikit-learn's FastICA (1.9)
      returns NaN when the first column is constant, which makes ART's
      ICA path fail on such features.
    - A class with fewer samples than ``n_clusters`` is not clustered, and a
      class that k-means leaves in one cluster is kept whole (ART's
      ``"smaller"`` would flag all of it). ICA keeps at most as many
      components as the centred features' rank.
    - ART's silhouette analysis leaves the labels of the large cluster of a
      flagged class uninitialised (``np.empty``), so it may flag them too;
      here only the small clusters are removed.
    - ``"relative-size"`` and ``"silhouette"`` accept any ``n_clusters``
      (ART: exactly 2).

    References
    ----------
    B. Chen, W. Carvalho, N. Baracaldo, H. Ludwig, B. Edwards, T. Lee,
    I. Molloy and B. Srivastava. "Detecting Backdoor Attacks on Deep Neural
    Networks by Activation Clustering". SafeAI workshop, AAAI 2019
    (arXiv:1811.03728).

    Examples
    --------
    >>> from sklearn_ispl import ActivationClusteringFilter
    >>> from sklearn_ispl.attacks import BackdoorAttack
    >>> from sklearn_ispl.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> attack = BackdoorAttack(source=0, target=8, trigger="pattern",
    ...                         position=(6, 1), color=16, eps=0.2,
    ...                         random_state=0)
    >>> X_p, y_p, poison = attack.poison(X, y)
    >>> ac = ActivationClusteringFilter(analysis="relative-size", random_state=0)
    >>> X_kept, y_kept = ac.fit_resample(X_p, y_p)  # doctest: +SKIP
    """

    _parameter_constraints: dict = {
        **BaseFilter._parameter_constraints,
        "n_epochs": [Interval(Integral, 0, None, closed="left")],
        "n_dims": [Interval(Integral, 1, None, closed="left")],
        "reduction": [StrOptions({"ica", "pca"})],
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "analysis": [StrOptions({"smaller", "relative-size", "silhouette"})],
        "size_threshold": [Interval(Real, 0, 1, closed="right")],
        "silhouette_threshold": [Interval(Real, -1, 1, closed="both")],
        "feature_layer": [str, None],
    }

    def __init__(
        self,
        weak_learner=None,
        *,
        n_epochs=10,
        n_dims=10,
        reduction="pca",
        n_clusters=2,
        analysis="smaller",
        size_threshold=0.35,
        silhouette_threshold=0.1,
        feature_layer=None,
        image_shape=None,
        device="cpu",
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.weak_learner = weak_learner
        self.n_epochs = n_epochs
        self.n_dims = n_dims
        self.reduction = reduction
        self.n_clusters = n_clusters
        self.analysis = analysis
        self.size_threshold = size_threshold
        self.silhouette_threshold = silhouette_threshold
        self.feature_layer = feature_layer
        self.image_shape = image_shape
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def _fit_filter(self, data):
        rng = check_random_state(self.random_state)
        seed, cluster_seed = rng.randint(np.iinfo(np.int32).max, size=2)
        features = learned_features(
            self.weak_learner,
            data,
            seed,
            self.device,
            self.n_epochs,
            self.feature_layer,
        )
        flags, clusters, scores, silhouettes = self._cluster(
            features, data.y, data.n_classes, np.random.RandomState(cluster_seed)
        )
        self.clusters_ = clusters
        self.flagged_clusters_ = flags
        self.silhouette_scores_ = silhouettes
        keep = np.ones(len(data), dtype=bool)
        for k, flagged in enumerate(flags):
            keep[(data.y == k) & np.isin(clusters, flagged)] = False
        return keep, scores

    def _cluster(self, features, y, n_classes, random_state):
        """Cluster and flag every class; one generator serves all classes."""
        clusters = np.zeros(len(y), dtype=np.int64)
        scores = np.ones(len(y))
        flags = []
        silhouettes = np.full(n_classes, np.nan)
        for k in range(n_classes):
            rows = np.flatnonzero(y == k)
            if len(rows) == 0:
                flags.append(np.zeros(0, dtype=np.int64))
                continue
            labels, reduced = cluster_class(
                features[rows],
                self.n_dims,
                self.reduction,
                self.n_clusters,
                random_state,
            )
            flagged, silhouettes[k] = flag_clusters(
                labels,
                reduced,
                self.n_clusters,
                self.analysis,
                self.size_threshold,
                self.silhouette_threshold,
            )
            sizes = np.bincount(labels, minlength=self.n_clusters)
            clusters[rows] = labels
            scores[rows] = sizes[labels] / len(rows)
            flags.append(np.asarray(flagged, dtype=np.int64))
        return flags, clusters, scores, silhouettes
