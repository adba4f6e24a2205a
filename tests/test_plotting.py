"""Figures of sklearn_ispl.plotting: produced, and showing the fitted state."""

import copy
import sys

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import SGDClassifier

from sklearn_ispl import BoostedComponentVoter, ISPLFilter
from sklearn_ispl.plotting import (
    plot_components,
    plot_removed,
    plot_score_distribution,
)

from .conftest import tiny_ispl

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fitted(poisoned_digits):
    """A tiny ISPLFilter (2 runs of 3 components) on 500 poisoned digits."""
    X, y, poison, _ = poisoned_digits
    # Keep every poisoned sample and a stratified-enough slice of the rest.
    rows = np.union1d(np.flatnonzero(poison), np.arange(464))
    X, y, poison = X[rows], y[rows], poison[rows]
    ispl = tiny_ispl(n_runs=2, n_components=3).fit(X, y)
    return ispl, X, y, poison


def _n_images(fig):
    return sum(len(ax.images) for ax in fig.axes)


def _removing(ispl, rows):
    """A copy of the fitted filter that removed exactly ``rows``."""
    out = copy.deepcopy(ispl)
    out.keep_mask_ = np.ones_like(ispl.keep_mask_)
    out.keep_mask_[rows] = False
    return out


class TestPlotRemoved:
    def test_one_image_per_removed_sample_up_to_n(self, fitted):
        ispl, X, y, _ = fitted
        assert (~ispl.keep_mask_).sum() > 3, "the fixture must remove something"
        fig = plot_removed(ispl, X, y, n=3)
        assert isinstance(fig, matplotlib.figure.Figure)
        assert _n_images(fig) == 3
        # Fewer removed than n: one image each, and the spare slots blank.
        fig = plot_removed(_removing(ispl, [0, 5, 9, 20, 30]), X, y, n=10_000)
        assert _n_images(fig) == 5
        assert len(fig.axes) == 6

    def test_lowest_scores_first_with_labels(self, fitted):
        ispl, X, y, _ = fitted
        fig = plot_removed(ispl, X, y, n=6)
        removed = np.flatnonzero(~ispl.keep_mask_)
        expected = removed[np.argsort(ispl.scores_[removed], kind="stable")][:6]
        titles = [ax.get_title() for ax in fig.axes if ax.images]
        assert titles == [f"y={y[i]}\nscore {ispl.scores_[i]:.2f}" for i in expected]
        # The image shown is the sample's own.
        shown = fig.axes[0].images[0].get_array()
        np.testing.assert_array_equal(np.asarray(shown), X[expected[0]])

    def test_poison_framed_red(self, fitted):
        ispl, X, y, poison = fitted
        rows = np.concatenate([np.flatnonzero(poison)[:3], np.flatnonzero(~poison)[:4]])
        fig = plot_removed(_removing(ispl, rows), X, y, poison_mask=poison, n=100)
        framed = []
        for ax in fig.axes[: len(rows)]:
            edge = matplotlib.colors.to_hex(ax.spines["top"].get_edgecolor())
            framed.append(edge == "#ff0000")
            assert framed[-1] == ("poison" in ax.get_title())
        assert sum(framed) == 3

    def test_flat_rows_need_an_image_shape(self, fitted):
        ispl, X, y, _ = fitted
        flat = X.reshape(len(X), -1)
        fig = plot_removed(ispl, flat, y, n=4, image_shape=(8, 8))
        assert fig.axes[0].images[0].get_array().shape == (8, 8)
        with pytest.raises(ValueError, match="image_shape"):
            plot_removed(ispl, flat, y)

    def test_rgb_images(self, fitted):
        ispl, X, y, _ = fitted
        rgb = np.repeat(X[..., None], 3, axis=-1)
        fig = plot_removed(ispl, rgb, n=2)
        image = np.asarray(fig.axes[0].images[0].get_array())
        assert image.shape == (8, 8, 3)
        assert image.min() >= 0 and image.max() <= 1
        assert fig.axes[0].get_title().startswith("score ")

    def test_nothing_removed(self, fitted):
        ispl, X, y, _ = fitted
        everything_kept = copy.deepcopy(ispl)
        everything_kept.keep_mask_ = np.ones_like(ispl.keep_mask_)
        fig = plot_removed(everything_kept, X, y)
        assert _n_images(fig) == 0
        assert "no sample removed" in fig.axes[0].texts[0].get_text()

    def test_bad_inputs(self, fitted):
        ispl, X, y, poison = fitted
        with pytest.raises(ValueError, match="fitted on"):
            plot_removed(ispl, X[:-1], y)
        with pytest.raises(ValueError, match="y must have shape"):
            plot_removed(ispl, X, y[:-1])
        with pytest.raises(ValueError, match="poison_mask"):
            plot_removed(ispl, X, y, poison_mask=poison.astype(int))
        with pytest.raises(ValueError, match="n must be"):
            plot_removed(ispl, X, y, n=0)


class TestPlotScoreDistribution:
    def test_kept_and_removed(self, fitted):
        ispl, _, _, _ = fitted
        ax = plot_score_distribution(ispl)
        assert isinstance(ax, matplotlib.axes.Axes)
        kept, removed = ax.containers
        assert sum(p.get_height() for p in kept) == ispl.keep_mask_.sum()
        assert sum(p.get_height() for p in removed) == (~ispl.keep_mask_).sum()
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels == [
            f"kept ({ispl.keep_mask_.sum()})",
            f"removed ({(~ispl.keep_mask_).sum()})",
        ]

    def test_poison_splits_four_groups(self, fitted):
        ispl, _, _, poison = fitted
        _, ax = plt.subplots()
        out = plot_score_distribution(ispl, poison, bins=5, log=True, ax=ax)
        assert out is ax
        assert ax.get_yscale() == "log"
        keep = ispl.keep_mask_
        expected = [
            (keep & ~poison).sum(),
            (~keep & ~poison).sum(),
            (keep & poison).sum(),
            (~keep & poison).sum(),
        ]
        heights = [sum(p.get_height() for p in c) for c in ax.containers]
        assert heights == expected
        assert all(len(c) == 5 for c in ax.containers)

    def test_bad_mask(self, fitted):
        ispl, _, _, poison = fitted
        with pytest.raises(ValueError, match="poison_mask"):
            plot_score_distribution(ispl, poison[:-1])
        with pytest.raises(ValueError, match="poison_mask"):
            plot_score_distribution(ispl, np.flatnonzero(poison))


class TestPlotComponents:
    def test_bar_heights_are_class_counts(self, fitted):
        ispl, _, y, _ = fitted
        ax = plot_components(ispl, y)
        assert len(ax.containers) == len(ispl.classes_)
        for label, container in zip(ispl.classes_, ax.containers, strict=True):
            heights = [p.get_height() for p in container]
            assert heights == [np.sum(y[c] == label) for c in ispl.components_]
        # Stacked: the top of each bar is the component's size.
        tops = [p.get_y() + p.get_height() for p in ax.containers[-1]]
        assert tops == [len(c) for c in ispl.components_]
        # Two runs of up to three components, one tick per component.
        assert len(ax.get_xticks()) == len(ispl.components_)
        assert ax.get_xticklabels()[0].get_text() == "1.1"

    def test_poison_segment_and_share(self, fitted):
        ispl, _, y, poison = fitted
        ax = plot_components(ispl, y, poison)
        assert len(ax.containers) == len(ispl.classes_) + 1
        poison_bars = ax.containers[-1]
        assert [p.get_height() for p in poison_bars] == [
            poison[c].sum() for c in ispl.components_
        ]
        target = list(ispl.classes_).index(8)
        assert [p.get_height() for p in ax.containers[target]] == [
            np.sum((y[c] == 8) & ~poison[c]) for c in ispl.components_
        ]
        shares = [t.get_text() for t in ax.texts]
        expected = [
            f"{100 * poison[c].sum() / len(c):.0f}%"
            for c in ispl.components_
            if poison[c].any()
        ]
        assert shares == expected and shares

    def test_voter_components_without_runs(self, poisoned_digits):
        X, y, _, _ = poisoned_digits
        X, y = X[:300], y[:300]
        voter = BoostedComponentVoter(
            SGDClassifier(loss="log_loss"),
            n_epochs=1,
            partitioner=KMeans(3, n_init=1, random_state=0),
            random_state=0,
        ).fit(X, y)
        ax = plot_components(voter, y)
        assert len(ax.containers[0]) == len(voter.components_)

    def test_bad_inputs(self, fitted):
        ispl, _, y, poison = fitted
        with pytest.raises(ValueError, match="y must have shape"):
            plot_components(ispl, y[:-1])
        with pytest.raises(ValueError, match="not fitted on"):
            plot_components(ispl, y + 100)
        with pytest.raises(ValueError, match="poison_mask"):
            plot_components(ispl, y, poison[:-1])
        no_components = copy.deepcopy(ispl)
        del no_components.components_
        with pytest.raises(ValueError, match="no components_"):
            plot_components(no_components, y)


@pytest.mark.parametrize(
    "plot",
    [
        lambda f: plot_removed(f, np.zeros((10, 8, 8))),
        lambda f: plot_score_distribution(f),
        lambda f: plot_components(f, np.zeros(10)),
    ],
    ids=["removed", "score_distribution", "components"],
)
def test_unfitted_filter(plot):
    with pytest.raises(NotFittedError):
        plot(ISPLFilter())


def test_missing_matplotlib_names_the_extra(fitted, monkeypatch):
    ispl, _, _, _ = fitted
    # A None entry in sys.modules makes the import fail as if not installed.
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"sklearn-ispl\[plot\]"):
        plot_score_distribution(ispl)
