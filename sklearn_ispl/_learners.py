"""Weak learners and the one training code path every filter uses.

A *weak learner* is a classifier trained briefly on a small part of the data
(a component, a kept set). The paper uses networks trained for a handful of
epochs with SGD; any classifier that can continue training (``partial_fit``)
and give probabilities (``predict_proba``) can take that role here:

- by default, a skorch :class:`~skorch.NeuralNetClassifier` around
  :class:`WeakCNN` (images) or :class:`WeakMLP` (tabular rows), sized from the
  data;
- any skorch net the user passes (its module must output one logit per
  class);
- any scikit-learn classifier with ``partial_fit`` and ``predict_proba``, such
  as ``SGDClassifier(loss="log_loss")``.

All filters reach them through :func:`build_learner`, which returns a
:class:`Learner` bound to the data: ``fit_epochs(indices, epochs)`` continues
training on the rows ``indices`` and ``predict_proba(indices)`` scores rows.
The data is held once, as one float32 array; learners index it per batch.
"""

import functools
import inspect
import threading
import warnings
from contextlib import contextmanager

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.base import clone
from torch import nn

__all__ = ["WeakCNN", "WeakMLP", "make_weak_learner"]

# Module initialisation draws from torch's global generator. Seeding and
# initialising under one lock keeps the weights reproducible when learners are
# built concurrently in threads (joblib's threading backend).
_INIT_LOCK = threading.Lock()


class WeakCNN(nn.Module):
    """Two conv-pool blocks and a small dense head, sized from the input.

    Parameters
    ----------
    input_shape : tuple of int
        ``(channels, height, width)`` of one image.
    n_classes : int
        Number of output logits.
    n_filters : int, default=32
        Filters of the first convolution; the second has twice as many.
    n_hidden : int, default=128
        Units of the dense layer.
    precision : {"float32", "bfloat16", "auto"}, default="float32"
        Arithmetic of the forward and backward passes. ``"bfloat16"`` runs
        them in bfloat16 mixed precision (``torch.autocast``; the weights and
        the returned logits stay float32), which is much faster on
        hardware with native bfloat16 units and slower without; ``"auto"``
        uses it only where the device has them (a CPU with AVX-512 BF16 or
        AMX units, a GPU that supports bfloat16).
        The results differ from float32 by rounding, as they differ between
        machines.
    """

    def __init__(
        self, input_shape, n_classes, n_filters=32, n_hidden=128, precision="float32"
    ):
        super().__init__()
        if not isinstance(precision, str) or precision not in PRECISIONS:
            raise ValueError(
                f"WeakCNN precision must be one of {', '.join(PRECISIONS)}; "
                f"got {precision!r}."
            )
        self.precision = precision
        channels, height, width = input_shape
        layers = []
        in_ch = channels
        for out_ch in (n_filters, 2 * n_filters):
            layers.append(nn.Conv2d(in_ch, out_ch, 3, padding=1))
            # Tiny images (8x8 digits) keep at least 2x2 pixels. Pooling
            # before the ReLU gives the same values and gradients (the max
            # commutes with it) on a quarter of the activations.
            if height >= 4 and width >= 4:
                layers.append(MaxPool2x2())
                height, width = height // 2, width // 2
            layers.append(nn.ReLU())
            in_ch = out_ch
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Sequential(
            nn.Linear(in_ch * height * width, n_hidden),
            nn.ReLU(),
            nn.Linear(n_hidden, n_classes),
        )

    def forward(self, X):
        dtype = autocast_dtype(self.precision, X.device)
        if dtype is None:
            return self.head(self.features(X))
        with torch.autocast(X.device.type, dtype=dtype):
            logits = self.head(self.features(X))
        return logits.float()


class MaxPool2x2(nn.MaxPool2d):
    """2x2 max pooling, computed as two pairwise maxima where no gradient is
    needed.

    Predictions get the values of ``nn.MaxPool2d(2)`` (a maximum is exact)
    from two elementwise maxima, which run faster on CPU; the learners spend
    much of their time predicting. Training keeps ``MaxPool2d``: its
    gradient goes to one element of a tie, the pairwise maximum's would be
    split between them.
    """

    def __init__(self):
        super().__init__(2)

    def forward(self, X):
        if torch.is_grad_enabled():
            return super().forward(X)
        height, width = X.shape[-2] // 2 * 2, X.shape[-1] // 2 * 2
        X = X[..., :height, :width]
        rows = torch.maximum(X[..., 0::2, :], X[..., 1::2, :])
        return torch.maximum(rows[..., 0::2], rows[..., 1::2])


#: The values of :class:`WeakCNN`'s ``precision``.
PRECISIONS = ("float32", "bfloat16", "auto")


@functools.cache
def native_bfloat16(device_type):
    """Whether devices of ``device_type`` ("cpu", "cuda", ...) compute
    bfloat16 natively: a CPU with AVX-512 BF16 or AMX units, or a CUDA GPU
    that supports it. Cached: it is asked on every forward pass."""
    if device_type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device_type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - older builds
        return False


def autocast_dtype(precision, device):
    """The autocast dtype of ``precision`` on ``device``; None: float32."""
    if precision == "bfloat16" or (
        precision == "auto" and native_bfloat16(device.type)
    ):
        return torch.bfloat16
    return None


class WeakMLP(nn.Module):
    """One hidden layer for tabular rows.

    Parameters
    ----------
    input_shape : tuple of int
        ``(n_features,)``.
    n_classes : int
        Number of output logits.
    n_hidden : int, default=128
        Units of the hidden layer.
    """

    def __init__(self, input_shape, n_classes, n_hidden=128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(int(np.prod(input_shape)), n_hidden),
            nn.ReLU(),
            nn.Linear(n_hidden, n_classes),
        )

    def forward(self, X):
        return self.net(X)


class IndexedTensorDataset(torch.utils.data.Dataset):
    """Rows ``indices`` of tensors ``X`` and ``y`` without copying them."""

    def __init__(self, X, y, indices):
        self.X, self.y, self.indices = X, y, indices

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        j = self.indices[i]
        return self.X[j], self.y[j]


class BatchIterator:
    """skorch iterator that gathers whole batches by index.

    A ``DataLoader`` collates every batch item by item; gathering a batch with
    one tensor index is several times faster for small images. The order is
    the order of ``dataset.indices``: the caller shuffles, so batches do not
    depend on torch's global generator.
    """

    def __init__(self, dataset, batch_size=128, **kwargs):
        self.dataset = dataset
        self.batch_size = batch_size
        self._fallback = None
        if not isinstance(dataset, IndexedTensorDataset):
            self._fallback = torch.utils.data.DataLoader(
                dataset, batch_size=batch_size, **kwargs
            )

    def __len__(self):
        return -(-len(self.dataset) // self.batch_size)

    def __iter__(self):
        if self._fallback is not None:
            yield from self._fallback
            return
        ds = self.dataset
        for start in range(0, len(ds.indices), self.batch_size):
            idx = ds.indices[start : start + self.batch_size]
            Xb = ds.X[idx]
            if Xb.ndim == 4:
                Xb = Xb.contiguous(memory_format=torch.channels_last)
            yield Xb, ds.y[idx]


def make_weak_learner(input_shape=None, n_classes=None, device="cpu", **params):
    """Return the default weak learner for data of ``input_shape``.

    Parameters
    ----------
    input_shape : tuple of int, default=None
        ``(channels, height, width)`` for images, ``(n_features,)`` for rows.
        None: a CNN whose shape (and ``n_classes``) the filters fill in from
        the data they are fitted on.
    n_classes : int, default=None
        Number of classes; None to fill in from the data.
    device : str, default="cpu"
        Torch device.
    **params
        Further skorch parameters, e.g. ``module__n_filters=16`` or ``lr=0.01``.

    Returns
    -------
    net : skorch.NeuralNetClassifier
        Uninitialised net: Adam (lr 1e-3), batches of 128, cross-entropy on
        logits, no internal validation split.
    """
    from skorch import NeuralNetClassifier

    module = WeakCNN if input_shape is None or len(input_shape) == 3 else WeakMLP
    settings = dict(
        module=module,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        batch_size=128,
        train_split=None,
        iterator_train=BatchIterator,
        iterator_valid=BatchIterator,
        # Inference has no backward pass: larger batches amortise overhead.
        iterator_valid__batch_size=512,
        callbacks="disable",
        verbose=0,
        device=device,
    )
    if input_shape is not None:
        settings["module__input_shape"] = tuple(input_shape)
    if n_classes is not None:
        settings.update(module__n_classes=n_classes, classes=list(range(n_classes)))
    settings.update(params)
    return NeuralNetClassifier(**settings)


def is_skorch_net(estimator):
    try:
        from skorch import NeuralNet
    except ImportError:  # pragma: no cover - skorch is a dependency
        return False
    return isinstance(estimator, NeuralNet)


def check_weak_learner(weak_learner, name="weak_learner"):
    """Raise a clear error, naming ``name``, for a learner we cannot train."""
    if weak_learner is None or is_skorch_net(weak_learner):
        return
    if inspect.isclass(weak_learner):
        raise ValueError(
            f"{name} must be an estimator instance, not the class "
            f"{weak_learner.__name__}; pass {weak_learner.__name__}(...)."
        )
    missing = [
        m for m in ("partial_fit", "predict_proba") if not hasattr(weak_learner, m)
    ]
    if missing:
        raise ValueError(
            f"{name} must be None, a skorch net, or a scikit-learn classifier "
            f"with partial_fit and predict_proba; {type(weak_learner).__name__} "
            f"lacks {', '.join(missing)}."
        )
    if hasattr(weak_learner, "_parameter_constraints"):
        # A scikit-learn classifier's own declared constraints, checked now
        # rather than at its first partial_fit, deep inside a stage.
        try:
            weak_learner._validate_params()
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None


class Learner:
    """A weak learner bound to the data it trains on.

    Parameters
    ----------
    estimator : object
        A fresh skorch net or scikit-learn classifier.
    X : ndarray of float32
        All rows, in the model's input layout.
    y : ndarray of int64
        Encoded labels ``0 .. n_classes - 1``.
    n_classes : int
    seed : int
        Seeds the initial weights and the order of the batches.
    """

    def __init__(self, estimator, X, y, n_classes, seed):
        self.estimator = estimator
        self.n_classes = n_classes
        self.rng = np.random.RandomState(seed)
        self.labels = y
        self.is_net = is_skorch_net(estimator)
        if self.is_net:
            with warnings.catch_warnings():
                # Workers receive read-only memory maps; nothing writes to X.
                warnings.filterwarnings("ignore", message=".*not writable.*")
                self.X = torch.from_numpy(X)
                self.y = torch.from_numpy(y)
            device = estimator.device
            if device is not None and str(device) != "cpu":
                self.X, self.y = self.X.to(device), self.y.to(device)
            # fork_rng: seeding must not reset the caller's torch generator.
            with _INIT_LOCK, torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                estimator.initialize()
            if self.X.ndim == 4:
                # oneDNN's convolutions run markedly faster on CPU with
                # channels-last activations; BatchIterator feeds batches alike.
                estimator.module_.to(memory_format=torch.channels_last)
        else:
            self.X, self.y = X.reshape(len(X), -1), y
            if "random_state" in estimator.get_params():
                estimator.set_params(random_state=seed)
        self.fitted = False

    def fit_epochs(self, indices, epochs):
        """Continue training for ``epochs`` passes over the rows ``indices``."""
        indices = np.asarray(indices)
        if len(indices) == 0 or epochs <= 0:
            return self
        for _ in range(int(epochs)):
            order = indices[self.rng.permutation(len(indices))]
            if self.is_net:
                idx = torch.from_numpy(order).to(self.X.device)
                self.estimator.partial_fit(
                    IndexedTensorDataset(self.X, self.y, idx), None, epochs=1
                )
                self._check_finite()
            else:
                self.estimator.partial_fit(
                    self.X[order], self.y[order], classes=np.arange(self.n_classes)
                )
        self.fitted = True
        return self

    def _check_finite(self):
        loss = self.estimator.history[-1, "batches", -1, "train_loss"]
        if not np.isfinite(loss):
            raise FloatingPointError(
                "A weak learner's training loss became "
                f"{loss}; lower its learning rate (e.g. weak_learner__lr) or "
                "check the input scale."
            )

    def predict_proba(self, indices=None):
        """Class probabilities of the rows ``indices`` (all rows if None)."""
        if indices is None:
            indices = np.arange(len(self.X))
        indices = np.asarray(indices)
        if not self.fitted:
            return np.full((len(indices), self.n_classes), 1.0 / self.n_classes)
        if self.is_net:
            idx = torch.from_numpy(indices).to(self.X.device)
            proba = self.estimator.predict_proba(
                IndexedTensorDataset(self.X, self.y, idx)
            )
        else:
            proba = self.estimator.predict_proba(self.X[indices])
        proba = np.asarray(proba, dtype=np.float64)
        if not np.all(np.isfinite(proba)):
            raise FloatingPointError(
                "A weak learner predicted non-finite probabilities; its training "
                "diverged. Lower its learning rate or check the input scale."
            )
        return proba

    def sample_loss(self, indices=None):
        """Cross-entropy of each row's given label, from predicted probabilities."""
        if indices is None:
            indices = np.arange(len(self.X))
        proba = self.predict_proba(indices)
        labels = self.labels[np.asarray(indices)]
        p = proba[np.arange(len(labels)), labels]
        return -np.log(np.clip(p, 1e-12, 1.0))


def build_learner(weak_learner, data, seed, device="cpu"):
    """Return a fresh :class:`Learner` for ``data`` (a prepared dataset)."""
    if weak_learner is None:
        estimator = make_weak_learner(data.input_shape, data.n_classes, device=device)
    else:
        estimator = clone(weak_learner)
        if is_skorch_net(estimator):
            estimator = _adapt_net(estimator, data, device)
    X = data.X if is_skorch_net(estimator) else data.X_flat
    return Learner(estimator, X, data.y, data.n_classes, seed)


def _adapt_net(net, data, device):
    """Fit a user's skorch net to the data without overriding their choices."""
    from torch.utils.data import DataLoader

    params = net.get_params(deep=False)
    # Weak learners are trained hundreds of times: no per-epoch printing.
    updates = {"train_split": None, "device": device, "verbose": 0}
    if params.get("iterator_train") is DataLoader:
        updates["iterator_train"] = BatchIterator
    if params.get("iterator_valid") is DataLoader:
        updates["iterator_valid"] = BatchIterator
    module = params.get("module")
    if module in (WeakCNN, WeakMLP) and params.get("criterion") is torch.nn.NLLLoss:
        # skorch's classifier defaults to NLLLoss, which expects
        # probabilities; our modules output logits.
        updates["criterion"] = nn.CrossEntropyLoss
    if inspect.isclass(module):
        accepted = inspect.signature(module.__init__).parameters
        all_params = net.get_params()
        for name, value in (
            ("input_shape", tuple(data.input_shape)),
            ("n_classes", data.n_classes),
        ):
            if name in accepted and f"module__{name}" not in all_params:
                updates[f"module__{name}"] = value
    return net.set_params(**updates)


#: Torch threads of every training task run by :func:`run_tasks`, whatever
#: ``n_jobs`` and the joblib backend. Torch's float sums depend on the thread
#: count, so a count fixed per task keeps the result independent of how the
#: tasks are spread; many one-thread trainings side by side also use the
#: cores better than one multi-threaded small CNN at a time.
TASK_THREADS = 1


@contextmanager
def _torch_threads(n_threads):
    """Run the block with ``n_threads`` torch threads, then restore them."""
    before = torch.get_num_threads()
    if before != n_threads:
        torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _call_in_worker(fn, args, n_threads):
    # A process worker (joblib's loky backend) starts with torch's default
    # thread count; the calling process and its threads are set already.
    if torch.get_num_threads() != n_threads:
        torch.set_num_threads(n_threads)
    return fn(*args)


def resolve_n_workers(n_jobs, n_tasks):
    """Tasks run at once: ``n_jobs`` as joblib reads it; None: torch's thread
    budget (``torch.get_num_threads()``), so the default uses the cores a
    single torch training would."""
    from joblib import effective_n_jobs

    if n_jobs is None:
        # A joblib context (parallel_config, a Dask cluster) may ask for more.
        wanted = max(torch.get_num_threads(), effective_n_jobs(None))
    else:
        wanted = effective_n_jobs(n_jobs)
    return max(1, min(wanted, n_tasks))


def run_tasks(fn, tasks, n_jobs=None, verbose=0, desc=None, shared=False):
    """Run ``fn(*args)`` for each ``args`` in ``tasks`` through joblib.

    Results come back in task order, seeds are part of each task's
    arguments, and every task trains with :data:`TASK_THREADS` torch
    threads, so the result is the same for every ``n_jobs`` and joblib
    backend. Tasks run in threads (torch releases the GIL while it computes)
    unless a ``joblib.parallel_config`` asks for another backend; threads
    share one copy of the data and of torch. ``shared=True`` keeps them in
    threads whatever the configuration, for tasks that update objects the
    caller holds (a learner trained further round after round).
    """
    tasks = list(tasks)
    n_workers = resolve_n_workers(n_jobs, len(tasks))
    jobs = (delayed(_call_in_worker)(fn, args, TASK_THREADS) for args in tasks)
    with _torch_threads(TASK_THREADS):
        if n_workers == 1:
            results = (job[0](*job[1], **job[2]) for job in jobs)
        else:
            results = Parallel(
                n_jobs=n_workers,
                prefer="threads",
                require="sharedmem" if shared else None,
                return_as="generator",
            )(jobs)
        if verbose:
            from tqdm.auto import tqdm

            results = tqdm(results, total=len(tasks), desc=desc, leave=False)
        return list(results)
