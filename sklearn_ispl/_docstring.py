"""Parameter documentation shared by the filters, written once.

Each filter's docstring names a shared parameter as ``{name}`` and is
completed by :class:`Substitution` (the pattern of imbalanced-learn's
``Substitution``), so the text cannot drift between classes.
"""

__all__ = ["Substitution", "SHARED_PARAMS"]


class Substitution:
    """Decorator that fills ``{name}`` fields of a docstring.

    Only the fields given are replaced; other braces are left alone, so a
    docstring may hold literal ``{...}`` (e.g. a set of options).
    """

    def __init__(self, **fields):
        self.fields = fields

    def __call__(self, obj):
        doc = obj.__doc__
        if doc:
            for name, text in self.fields.items():
                doc = doc.replace("{" + name + "}", text)
            obj.__doc__ = doc
        return obj


_WEAK_LEARNER = """weak_learner : estimator, default=None
        The learner trained in every stage. None: a skorch net around a small
        CNN (images) or MLP (rows) sized from the data. Any skorch net, or a
        scikit-learn classifier with ``partial_fit`` and ``predict_proba``
        (e.g. ``SGDClassifier(loss="log_loss")``), can take its place."""

_IMAGE_SHAPE = """image_shape : tuple, default=None
        ``(height, width)`` or ``(height, width, channels)`` when ``X`` is
        2-D with one flattened image per row; None reads 2-D ``X`` as
        tabular rows."""

_DEVICE = """device : str, default="cpu"
        Torch device of the learners: "cpu", "cuda", "cuda:N" or "mps". A
        device this machine lacks is refused before any training."""

_N_JOBS = """n_jobs : int, default=None
        Trainings run at once by joblib, in threads unless a
        ``joblib.parallel_config`` names another backend (-1: all cores;
        None: as many as torch's thread count, ``torch.get_num_threads()``;
        0 is invalid). Each training carries its own seed and runs with one
        torch thread, so the result is identical for every ``n_jobs`` and
        backend."""

_RANDOM_STATE = """random_state : int, RandomState instance or None, default=None
        Fixes every seed: two fits give the same ``keep_mask_``."""

_VERBOSE = """verbose : int, default=0
        Show progress when positive."""

#: The shared fields, for ``Substitution(**SHARED_PARAMS)``.
SHARED_PARAMS = {
    "weak_learner": _WEAK_LEARNER,
    "image_shape": _IMAGE_SHAPE,
    "device": _DEVICE,
    "n_jobs": _N_JOBS,
    "random_state": _RANDOM_STATE,
    "verbose": _VERBOSE,
}
