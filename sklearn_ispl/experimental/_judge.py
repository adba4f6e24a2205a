"""A trigger-blind judge: nearest neighbours in the data's principal components.

A backdoor trigger is a few pixels: it carries almost none of the images'
variance, so it barely moves a poisoned image in a projection on the data's
first principal components, whose neighbours there are images of its source
class. Unlike a network trained on the poison, this judge never learns the
trigger, however much poison it sees. On tens of thousands of images the
refine stage otherwise learns the trigger from the few dozen poisoned
samples the vote lets through.
"""

from numbers import Integral

import numpy as np
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils._param_validation import Interval

from .._refine import stratified_folds
from .._stages import ExtraStage

__all__ = ["TriggerBlindJudge", "blind_judge"]


class TriggerBlindJudge(ExtraStage):
    """Let a judge blind to small triggers decide what self-training learns.

    .. warning:: Experimental, a deviation from the paper (see
       :mod:`sklearn_ispl.experimental`).

    Every sample is projected on the first ``n_components`` principal
    components of the data and judged by the given labels of its
    ``n_neighbors`` nearest neighbours in the other half of the data. The
    refine stage then trains only on samples whose label the judge backs
    (ties go to the label), and with ``veto`` a sample is kept only when the
    judge backs its label. Later stages read the judge's verdict (the rescue
    gives back only samples it backs; the stamped-trigger check groups
    samples by the class they look like to it; the group decision measures
    isolation in its view too).

    Use it on tens of thousands of images, where the refine model would
    learn the trigger from the poison the vote lets through; on a few
    thousand images the judge is less accurate and removes more clean
    samples than it saves.

    Parameters
    ----------
    n_neighbors : int, default=15
        Neighbours asked about each sample.
    n_components : int, default=20
        Principal components of the projection (capped by the number of
        samples and features).
    veto : bool, default=False
        Whether a sample is kept only when the judge backs its label. False:
        the judge only limits what the refine models train on. The judge is
        less accurate than a CNN, so its veto removes many clean samples.

    Attributes
    ----------
    scores_ : ndarray of shape (n_samples,)
        The share of each sample's neighbours that carry its label.
    backed_ : ndarray of bool of shape (n_samples,)
        Whether the judge backs each sample's label.
    look_ : ndarray of shape (n_samples,)
        The class each sample looks like (the neighbours' majority).
    """

    _parameter_constraints: dict = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "veto": ["boolean"],
    }

    def __init__(self, n_neighbors=15, n_components=20, veto=False):
        self.n_neighbors = n_neighbors
        self.n_components = n_components
        self.veto = veto

    def before_refine(self, state):
        data = state.data
        proba = blind_judge(data, self.n_neighbors, self.n_components, state.seed())
        self.scores_ = proba[np.arange(len(data)), data.y]
        # Ties go to the label: the judge vetoes only a label it outvotes.
        self.backed_ = self.scores_ >= proba.max(axis=1)
        look = proba.argmax(axis=1)
        self.look_ = state.classes[look]
        state.trainable = state.trainable & self.backed_
        state.backed = self.backed_
        state.look = look
        state.blind_proba = proba

    def after_refine(self, state):
        if self.veto:
            state.keep = state.keep & self.backed_
            state.refine_keep = state.refine_keep & self.backed_


def blind_judge(data, n_neighbors, n_components, seed):
    """Cross-fitted k-nearest-neighbour probabilities of each sample's label.

    The samples are projected on their first ``n_components`` principal
    components and split into two stratified folds; each fold's samples are
    judged by the ``n_neighbors`` nearest samples of the other fold and their
    given labels. Returns an array of shape (n_samples, n_classes); samples
    with no one to ask (a fold left empty on tiny data) get equal
    probabilities.
    """
    rng = np.random.RandomState(seed)
    flat = data.X.reshape(len(data), -1)
    n_components = min(n_components, *flat.shape)
    pca = PCA(n_components, random_state=rng.randint(np.iinfo(np.int32).max))
    projected = pca.fit_transform(flat)
    fold_of = stratified_folds(data.y, 2, rng)
    proba = np.zeros((len(data), data.n_classes))
    for k in range(2):
        train, judged = fold_of != k, fold_of == k
        if not judged.any():
            continue
        if not train.any():
            # Nothing to ask (a class or two with one sample each): no veto.
            proba[judged] = 1.0 / data.n_classes
            continue
        neighbors = min(n_neighbors, int(train.sum()))
        knn = KNeighborsClassifier(neighbors).fit(projected[train], data.y[train])
        proba[np.ix_(judged, knn.classes_)] = knn.predict_proba(projected[judged])
    return proba
