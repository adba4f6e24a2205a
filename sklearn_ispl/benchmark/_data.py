"""Data of a benchmark profile and the final classifier of every column."""

import numpy as np

from ..metrics import clean_accuracy, targeted_misclassification_rate


def _load_data(profile, data_path=None):
    """Return ``X_train, y_train, X_test, y_test`` for ``profile``."""
    from sklearn.model_selection import train_test_split

    from ..datasets import load_digits_images, load_fashion_mnist

    if profile.dataset == "digits":
        X, y = load_digits_images()
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=profile.test_size, stratify=y, random_state=profile.seed
        )
    elif profile.dataset == "fashion-mnist":
        X_train, y_train = load_fashion_mnist(data_path, subset="train")
        X_test, y_test = load_fashion_mnist(data_path, subset="test")
    else:
        raise ValueError(f"Unknown dataset {profile.dataset!r}.")
    X_train, y_train = _subset(X_train, y_train, profile.n_train, profile.seed)
    X_test, y_test = _subset(X_test, y_test, profile.n_test, profile.seed)
    return X_train, y_train, X_test, y_test


def _subset(X, y, n, seed):
    """Stratified subset of ``n`` samples, in their original order."""
    if n is None or n >= len(y):
        return X, y
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(
        np.arange(len(y)), train_size=n, stratify=y, random_state=seed
    )
    keep = np.sort(keep)
    return X[keep], y[keep]


class _FinalModel:
    """The final classifier of every column: a skorch CNN, fixed seed and epochs.

    Pixels are scaled with one mean and standard deviation, those of the
    clean training set, for every model of a profile.
    """

    def __init__(self, input_shape, n_classes, mean, std, epochs, params, seed, device):
        self.input_shape = tuple(input_shape)
        self.n_classes = int(n_classes)
        self.mean, self.std = float(mean), float(std)
        self.epochs = int(epochs)
        self.params = dict(params)
        self.seed = int(seed)
        self.device = device
        self.net_ = None

    def _prepare(self, X):
        from .._images import infer_layout, to_nchw

        X = np.asarray(X)
        Xt = np.array(to_nchw(X, infer_layout(X.shape)), dtype=np.float32)
        Xt -= np.float32(self.mean)
        Xt /= np.float32(self.std)
        return np.ascontiguousarray(Xt)

    def _new_net(self):
        from .._learners import make_weak_learner

        return make_weak_learner(
            self.input_shape, self.n_classes, device=self.device, **self.params
        )

    def fit(self, X, y):
        from .._learners import Learner

        y = np.asarray(y, dtype=np.int64)
        learner = Learner(
            self._new_net(), self._prepare(X), y, self.n_classes, self.seed
        )
        learner.fit_epochs(np.arange(len(y)), self.epochs)
        self.net_ = learner.estimator
        return self

    def predict(self, X):
        import torch

        from .._learners import IndexedTensorDataset

        # The package's own batch iterator, as in training (no per-item
        # collation); labels are not read.
        Xt = torch.from_numpy(self._prepare(X)).to(self.net_.device)
        rows = torch.arange(len(Xt), device=Xt.device)
        dataset = IndexedTensorDataset(Xt, rows, rows)
        return np.asarray(self.net_.predict(dataset), dtype=np.int64)

    def save(self, path):
        import torch

        torch.save(self.net_.module_.state_dict(), path)

    def load(self, path):
        import torch

        net = self._new_net()
        net.initialize()
        state = torch.load(path, map_location=net.device, weights_only=True)
        net.module_.load_state_dict(state)
        self.net_ = net
        return self


def _evaluate(model, scenario, X_test, y_test, pred_clean=None):
    """Clean accuracy and targeted misclassification rate of ``model``.

    ``A`` is the rate of the scenario's attack; with several attacks, the
    largest of their rates, each measured with its own trigger, source and
    target, which ``A_per_attack`` lists. A scenario without an attack has
    no ``A``.
    """
    if pred_clean is None:
        pred_clean = model.predict(X_test)
    scores = {"C": clean_accuracy(y_test, pred_clean)}
    rates = []
    for source, target, apply_trigger in scenario.triggers():
        in_source = y_test == source
        pred_triggered = model.predict(apply_trigger(X_test[in_source]))
        rates.append(
            targeted_misclassification_rate(
                y_test[in_source],
                pred_clean[in_source],
                pred_triggered,
                source,
                target,
            )
        )
    if rates:
        # The defense has failed if any one attack gets through.
        scores["A"] = max(rates)
    if len(rates) > 1:
        scores["A_per_attack"] = rates
    return scores
