"""Weak learners: the training code path every filter shares."""

import numpy as np
import pytest
import torch
from joblib import parallel_backend
from sklearn.linear_model import SGDClassifier
from skorch import NeuralNetClassifier
from torch import nn

from sklearn_ispl import ISPLFilter, WeakCNN, WeakMLP, make_weak_learner
from sklearn_ispl._learners import (
    TASK_THREADS,
    BatchIterator,
    IndexedTensorDataset,
    MaxPool2x2,
    build_learner,
    resolve_n_workers,
    run_tasks,
)
from sklearn_ispl._validation import prepare_data


@pytest.fixture(scope="module")
def digits_data():
    from sklearn_ispl.datasets import load_digits_images

    X, y = load_digits_images()
    return prepare_data(X[:600], y[:600].astype(np.int64), 10, "nhw")


def test_batch_iterator_follows_the_given_order():
    X = torch.arange(10).float()[:, None]
    y = torch.arange(10)
    idx = torch.tensor([3, 1, 4, 1, 5, 9, 2])
    batches = list(BatchIterator(IndexedTensorDataset(X, y, idx), batch_size=3))
    assert [b[1].tolist() for b in batches] == [[3, 1, 4], [1, 5, 9], [2]]
    assert len(BatchIterator(IndexedTensorDataset(X, y, idx), batch_size=3)) == 3


@pytest.mark.parametrize(
    "shape, module",
    [
        ((1, 8, 8), WeakCNN),
        ((3, 32, 32), WeakCNN),
        ((1, 28, 28), WeakCNN),
        ((12,), WeakMLP),
    ],
)
def test_default_learner_is_sized_from_the_input(shape, module):
    net = make_weak_learner(shape, 4).initialize()
    assert isinstance(net.module_, module)
    out = net.module_(torch.zeros((2, *shape)))
    assert out.shape == (2, 4)


def test_learner_learns_and_is_reproducible(digits_data):
    a = build_learner(None, digits_data, seed=0)
    before = a.sample_loss().mean()
    a.fit_epochs(np.arange(len(digits_data)), 5)
    after = a.sample_loss()
    assert after.mean() < 0.5 * before
    b = build_learner(None, digits_data, seed=0).fit_epochs(
        np.arange(len(digits_data)), 5
    )
    np.testing.assert_array_equal(a.predict_proba(), b.predict_proba())


def test_untrained_learner_is_unbiased(digits_data):
    # Paper property 4.7: an untrained learner favours no class.
    proba = build_learner(None, digits_data, seed=0).predict_proba([0, 1])
    np.testing.assert_allclose(proba, 0.1)


def test_sklearn_learner_gets_every_class(digits_data):
    learner = build_learner(SGDClassifier(loss="log_loss"), digits_data, seed=0)
    # Train on two classes only: probabilities still have a column per class.
    rows = np.flatnonzero(digits_data.y < 2)
    learner.fit_epochs(rows, 2)
    proba = learner.predict_proba()
    assert proba.shape == (len(digits_data), 10)
    assert np.all(proba[:, 2:] < 1e-6)


def test_diverging_learner_is_reported(digits_data):
    net = make_weak_learner((1, 8, 8), 10, lr=1e6, optimizer=torch.optim.SGD)
    learner = build_learner(net, digits_data, seed=0)
    with pytest.raises(FloatingPointError, match="learning rate"):
        learner.fit_epochs(np.arange(len(digits_data)), 3)


class TinyNet(nn.Module):
    def __init__(self, input_shape, n_classes, width=8):
        super().__init__()
        self.flat = nn.Flatten()
        self.out = nn.Linear(int(np.prod(input_shape)), n_classes)

    def forward(self, X):
        return self.out(self.flat(X))


def test_custom_skorch_net_as_weak_learner(digits_data):
    net = NeuralNetClassifier(
        TinyNet, criterion=nn.CrossEntropyLoss, lr=0.1, max_epochs=3
    )
    learner = build_learner(net, digits_data, seed=0)
    # The filter fills in the sizes the module asks for and drops the
    # internal validation split.
    assert learner.estimator.module__n_classes == 10
    assert learner.estimator.train_split is None
    learner.fit_epochs(np.arange(len(digits_data)), 3)
    assert (learner.predict_proba().argmax(1) == digits_data.y).mean() > 0.8
    # The user's net is untouched.
    assert net.train_split is not None and not hasattr(net, "module_")


def test_custom_net_in_the_filter():
    from sklearn_ispl.datasets import load_digits_images

    X, y = load_digits_images()
    net = NeuralNetClassifier(TinyNet, criterion=nn.CrossEntropyLoss, lr=0.1)
    ispl = ISPLFilter(
        weak_learner=net,
        n_runs=1,
        n_components=4,
        warmup_epochs=2,
        refiner__n_rounds=1,
        random_state=0,
    )
    ispl.set_params(weak_learner__module__width=4)
    ispl.fit(X[:400], y[:400])
    assert ispl.keep_mask_.mean() > 0.5


def test_building_a_learner_leaves_the_global_torch_generator_alone(digits_data):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_learner(None, digits_data, seed=0)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_shape_free_learner_is_sized_from_the_data(digits_data):
    net = make_weak_learner(module__n_filters=4, module__n_hidden=8)
    assert "module__input_shape" not in net.get_params()
    learner = build_learner(net, digits_data, seed=0)
    learner.fit_epochs(np.arange(64), 1)
    assert learner.predict_proba(np.arange(5)).shape == (5, 10)
    assert learner.estimator.module_.features[0].out_channels == 4


def test_plain_skorch_net_around_our_module_trains(digits_data):
    # skorch's classifier defaults to NLLLoss on probabilities; our modules
    # return logits, so the criterion is switched instead of diverging.
    net = NeuralNetClassifier(WeakCNN, module__n_filters=4, module__n_hidden=8)
    learner = build_learner(net, digits_data, seed=0)
    learner.fit_epochs(np.arange(128), 2)
    loss = learner.sample_loss(np.arange(128))
    assert np.all(np.isfinite(loss))
    assert learner.estimator.criterion_.__class__ is nn.CrossEntropyLoss


@pytest.mark.parametrize(
    "backend, n_jobs", [(None, 1), (None, 2), (None, None), ("loky", 2)]
)
def test_every_task_trains_with_the_same_thread_count(backend, n_jobs):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        if backend is None:
            seen = run_tasks(torch.get_num_threads, [()] * 3, n_jobs=n_jobs)
        else:
            with parallel_backend(backend, n_jobs=2):
                seen = run_tasks(torch.get_num_threads, [()] * 3, n_jobs=n_jobs)
        assert seen == [TASK_THREADS] * 3
        # The caller's own thread count is given back.
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def _train_and_read(data, seed):
    learner = build_learner(
        make_weak_learner(module__n_filters=4, module__n_hidden=8), data, seed
    )
    learner.fit_epochs(np.arange(256), 2)
    return learner.predict_proba(np.arange(64))


@pytest.mark.parametrize(
    "backend, n_jobs", [(None, 2), (None, None), ("loky", 2), ("threading", -1)]
)
def test_torch_training_is_bit_identical_for_any_n_jobs(digits_data, backend, n_jobs):
    # Torch's float sums depend on its thread count; with the count fixed per
    # task the probabilities agree to the last bit, not only to rounding.
    tasks = [(digits_data, seed) for seed in (0, 1)]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        reference = run_tasks(_train_and_read, tasks, n_jobs=1)
        if backend is None:
            got = run_tasks(_train_and_read, tasks, n_jobs=n_jobs)
        else:
            with parallel_backend(backend, n_jobs=2):
                got = run_tasks(_train_and_read, tasks, n_jobs=n_jobs)
    finally:
        torch.set_num_threads(before)
    for a, b in zip(reference, got, strict=True):
        np.testing.assert_array_equal(a, b)


def test_n_jobs_none_uses_torchs_thread_budget():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        assert resolve_n_workers(None, 10) == 3
        assert resolve_n_workers(None, 2) == 2
        assert resolve_n_workers(1, 10) == 1
    finally:
        torch.set_num_threads(before)


# -- device placement, checked on CPU through torch's "meta" device ----------
# A GPU run moves the data and the model once, when the learner is built; a
# "meta" device stands in for one here: tensors on it have a device, a dtype
# and a shape but no values.


def test_data_and_model_sit_on_the_learners_device(digits_data):
    learner = build_learner(None, digits_data, seed=0, device="meta")
    assert learner.X.device.type == "meta" and learner.X.dtype == torch.float32
    assert learner.y.device.type == "meta" and learner.y.dtype == torch.int64
    params = list(learner.estimator.module_.parameters())
    assert params and all(p.device.type == "meta" for p in params)


def test_a_training_step_runs_on_the_learners_device(digits_data):
    # Forward and backward run on the device; only reading the loss back,
    # which a meta tensor cannot do, stops it. Data left on the CPU would
    # fail earlier, with a device mismatch.
    learner = build_learner(None, digits_data, seed=0, device="meta")
    with pytest.raises(NotImplementedError, match="meta"):
        learner.fit_epochs(np.arange(32), 1)


def test_cpu_learners_share_the_prepared_data(digits_data):
    # No copy per learner: threads training side by side share one array.
    learners = [build_learner(None, digits_data, seed=s) for s in (0, 1)]
    for learner in learners:
        assert learner.X.data_ptr() == digits_data.X.ctypes.data


def _relu_then_pool_cnn(cnn):
    """The same network with each ReLU before its pooling, as usually written."""
    convs = [m for m in cnn.features if isinstance(m, nn.Conv2d)]
    layers = []
    for conv in convs:
        layers += [conv, nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*layers, nn.Flatten(), *cnn.head)


def test_pooling_before_the_relu_changes_nothing():
    """WeakCNN pools before its ReLUs to save time; values and gradients are
    those of the usual order."""
    torch.manual_seed(0)
    cnn = WeakCNN((1, 28, 28), 10, n_filters=4, n_hidden=8)
    usual = _relu_then_pool_cnn(cnn)
    X = torch.randn(16, 1, 28, 28)
    y = torch.randint(0, 10, (16,))
    grads = []
    for model in (cnn, usual):
        model.zero_grad()
        out = model(X)
        nn.functional.cross_entropy(out, y).backward()
        grads.append([p.grad.clone() for p in cnn.parameters()])
    torch.testing.assert_close(cnn(X), usual(X), rtol=0, atol=0)
    for ours, theirs in zip(*grads, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


@pytest.mark.parametrize("shape", [(3, 4, 28, 28), (2, 3, 7, 9)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_max_pool_without_gradient_equals_max_pool2d(shape, channels_last):
    torch.manual_seed(0)
    # Rounded values: many ties, as a constant image background gives.
    X = torch.round(torch.randn(shape) * 2)
    X[0, 0, 0, 0] = float("nan")
    if channels_last:
        X = X.contiguous(memory_format=torch.channels_last)
    expected = nn.functional.max_pool2d(X, 2)
    with torch.no_grad():
        got = MaxPool2x2()(X)
    torch.testing.assert_close(got, expected, rtol=0, atol=0, equal_nan=True)
    assert got.is_contiguous(memory_format=torch.channels_last) == channels_last


def test_max_pool_keeps_max_pool2d_gradient_in_training():
    # A tie: MaxPool2d sends the whole gradient to one of the two elements.
    X = torch.zeros(1, 1, 2, 2, requires_grad=True)
    MaxPool2x2()(X).sum().backward()
    assert sorted(X.grad.flatten().tolist()) == [0.0, 0.0, 0.0, 1.0]


def test_bfloat16_precision_rounds_but_returns_float32_logits():
    torch.manual_seed(0)
    full = WeakCNN((1, 8, 8), 10, n_filters=4, n_hidden=8)
    half = WeakCNN((1, 8, 8), 10, n_filters=4, n_hidden=8, precision="bfloat16")
    half.load_state_dict(full.state_dict())
    X = torch.randn(32, 1, 8, 8)
    a, b = full(X), half(X)
    assert b.dtype == torch.float32 and half.head[0].weight.dtype == torch.float32
    assert not torch.equal(a, b)  # computed in bfloat16 ...
    torch.testing.assert_close(a, b, rtol=0.05, atol=0.05)  # ... to its rounding


def test_auto_precision_follows_the_hardware(monkeypatch):
    from sklearn_ispl import _learners

    cpu = torch.device("cpu")
    assert isinstance(_learners.native_bfloat16("cpu"), bool)
    monkeypatch.setattr(_learners, "native_bfloat16", lambda device_type: True)
    assert _learners.autocast_dtype("auto", cpu) is torch.bfloat16
    monkeypatch.setattr(_learners, "native_bfloat16", lambda device_type: False)
    assert _learners.autocast_dtype("auto", cpu) is None
    assert _learners.autocast_dtype("bfloat16", cpu) is torch.bfloat16
    assert _learners.autocast_dtype("float32", cpu) is None


def test_bfloat16_learner_learns_and_is_reproducible(digits_data):
    net = make_weak_learner(module__precision="bfloat16")
    a = build_learner(net, digits_data, seed=0)
    before = a.sample_loss().mean()
    a.fit_epochs(np.arange(len(digits_data)), 5)
    assert a.sample_loss().mean() < 0.5 * before
    b = build_learner(net, digits_data, seed=0).fit_epochs(
        np.arange(len(digits_data)), 5
    )
    np.testing.assert_array_equal(a.predict_proba(), b.predict_proba())


@pytest.mark.parametrize("precision", ["float16", "bf16", None, 16, ["auto"]])
def test_unknown_precision_is_refused_before_training(precision, digits_data):
    X = digits_data.X.reshape(-1, 1, 8, 8)
    filt = ISPLFilter(weak_learner__module__precision=precision, random_state=0)
    with pytest.raises(ValueError, match="precision"):
        filt.fit(X, digits_data.y)
