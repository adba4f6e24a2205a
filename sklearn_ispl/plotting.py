"""Figures that show what a fitted filter did (requires matplotlib).

Three views of a fitted defense:

- :func:`plot_removed`: the removed images, most suspicious first, with
  their labels and vote shares;
- :func:`plot_score_distribution`: the scores of the kept and the removed
  samples (and of the poisoned and the clean ones, when the poison is
  known);
- :func:`plot_components`: what each ISPL component holds, class by class,
  and how much of it is poison.

matplotlib is an optional dependency: ``pip install "sklearn-ispl[plot]"``.
It is imported when a function is called, so importing this module never
fails. Every function returns the matplotlib object it drew on and leaves
showing or saving it to the caller.
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._images import infer_layout, to_nchw

__all__ = ["plot_components", "plot_removed", "plot_score_distribution"]


def plot_removed(
    estimator,
    X,
    y=None,
    *,
    poison_mask=None,
    n=25,
    n_cols=None,
    image_shape=None,
    cmap="gray",
    figsize=None,
):
    """Show the images a filter removed, lowest score first.

    Parameters
    ----------
    estimator : fitted filter
        Any filter of the package (:class:`~sklearn_ispl.ISPLFilter`, a
        baseline) after ``fit``: its ``keep_mask_`` and ``scores_`` are used.
    X : array-like of shape (n_samples, H, W), (n_samples, H, W, C), \
(n_samples, C, H, W) or (n_samples, H * W * C)
        The images the filter was fitted on. Flat rows need ``image_shape``
        (or the filter's own ``image_shape``).
    y : array-like of shape (n_samples,), default=None
        The labels the filter was fitted on; shown in each image's title.
    poison_mask : array-like of bool of shape (n_samples,), default=None
        True for poisoned samples, when known; their images get a red frame
        and "poison" in their title.
    n : int, default=25
        Most images to show. The removed samples with the lowest scores are
        shown, so the grid holds what the filter found most suspicious.
    n_cols : int, default=None
        Images per row; None picks a near-square grid.
    image_shape : tuple of int, default=None
        ``(H, W)`` or ``(H, W, C)`` for flat rows; None uses the filter's
        ``image_shape``.
    cmap : str, default="gray"
        Colour map of single-channel images.
    figsize : tuple of float, default=None
        Figure size in inches; None scales it with the grid.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One axes per image slot. When nothing was removed, one axes that
        says so.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.
    ValueError
        If ``X``, ``y`` or ``poison_mask`` do not match the fitted samples,
        or ``X`` holds tabular rows and no ``image_shape`` is known.

    See Also
    --------
    plot_score_distribution : Scores of all samples, kept and removed.

    Examples
    --------
    >>> from sklearn_ispl.plotting import plot_removed
    >>> fig = plot_removed(ispl, X, y, n=16)  # doctest: +SKIP
    """
    plt = _pyplot()
    check_is_fitted(estimator, ["keep_mask_", "scores_"])
    keep = np.asarray(estimator.keep_mask_, dtype=bool)
    scores = np.asarray(estimator.scores_, dtype=np.float64)
    n_samples = keep.shape[0]
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive int; got n={n!r}.")
    if n_cols is not None and (
        not isinstance(n_cols, (int, np.integer))
        or isinstance(n_cols, bool)
        or n_cols < 1
    ):
        raise ValueError(f"n_cols must be a positive int or None; got {n_cols!r}.")

    images = _images_hwc(estimator, X, image_shape, n_samples)
    if y is not None:
        y = np.asarray(y)
        if y.shape != (n_samples,):
            raise ValueError(
                f"y must have shape ({n_samples},), as the fitted samples; got "
                f"{y.shape}."
            )
    poison = _check_poison_mask(poison_mask, n_samples)

    removed = np.flatnonzero(~keep)
    # Lowest score first; ties keep sample order. NaN scores (a filter that
    # does not score a sample) sort last.
    order = removed[
        np.argsort(np.nan_to_num(scores[removed], nan=np.inf), kind="stable")
    ]
    shown = order[:n]
    if shown.size == 0:
        fig, ax = plt.subplots(figsize=figsize or (4, 1.5))
        ax.text(0.5, 0.5, "no sample removed", ha="center", va="center")
        ax.set_axis_off()
        return fig

    n_cols = n_cols or int(np.ceil(np.sqrt(shown.size)))
    n_cols = min(n_cols, shown.size)
    n_rows = int(np.ceil(shown.size / n_cols))
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=figsize or (1.4 * n_cols, 1.6 * n_rows),
        squeeze=False,
    )
    low, high = float(np.nanmin(images)), float(np.nanmax(images))
    for ax, i in zip(axes.flat, shown, strict=False):
        image = images[i]
        if image.shape[2] == 1:
            # One scale for all images, so brightness compares across the grid.
            ax.imshow(image[:, :, 0], cmap=cmap, vmin=low, vmax=high)
        else:
            ax.imshow(_to_unit(image, low, high))
        title = [f"y={y[i]}"] if y is not None else []
        title.append(f"score {scores[i]:.2f}")
        if poison is not None and poison[i]:
            title.append("poison")
            for spine in ax.spines.values():
                spine.set_edgecolor("red")
                spine.set_linewidth(2)
        ax.set_title("\n".join(title), fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.flat[shown.size :]:
        ax.set_axis_off()
    fig.suptitle(
        f"{shown.size} of {removed.size} removed samples, lowest score first",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def plot_score_distribution(
    estimator, poison_mask=None, *, bins=20, log=False, ax=None
):
    """Histogram of the filter's scores, kept against removed samples.

    For :class:`~sklearn_ispl.ISPLFilter` and
    :class:`~sklearn_ispl.BoostedComponentVoter` the score is the share of
    component learners that vote for a sample's given label; the baselines
    have scores of their own, also low for suspicious samples. ISPLFilter
    decides after its self-training stage, so a kept sample can have a low
    vote share and a removed one a high share.

    Parameters
    ----------
    estimator : fitted filter
        Its ``scores_`` and ``keep_mask_`` are used.
    poison_mask : array-like of bool of shape (n_samples,), default=None
        True for poisoned samples, when known. The histogram then stacks four
        groups (clean kept, clean removed, poison kept, poison removed)
        instead of two (kept, removed).
    bins : int or sequence of float, default=20
        Bins of the histogram, as for :meth:`matplotlib.axes.Axes.hist`.
    log : bool, default=False
        Count axis in log scale, to see a few poisoned samples next to
        thousands of clean ones.
    ax : matplotlib.axes.Axes, default=None
        Where to draw; None makes a new figure.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes drawn on. ``ax.containers`` holds one bar container per
        group, labelled as in the legend; samples with a NaN score are left
        out.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.
    ValueError
        If ``poison_mask`` is not a boolean mask of the fitted samples.

    See Also
    --------
    sklearn_ispl.metrics.filter_report : The same split as counts.

    Examples
    --------
    >>> from sklearn_ispl.plotting import plot_score_distribution
    >>> ax = plot_score_distribution(ispl, poison_mask)  # doctest: +SKIP
    """
    plt = _pyplot()
    check_is_fitted(estimator, ["keep_mask_", "scores_"])
    keep = np.asarray(estimator.keep_mask_, dtype=bool)
    scores = np.asarray(estimator.scores_, dtype=np.float64)
    poison = _check_poison_mask(poison_mask, keep.shape[0])
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))

    if poison is None:
        groups = [("kept", keep, "tab:blue"), ("removed", ~keep, "tab:orange")]
    else:
        groups = [
            ("clean, kept", keep & ~poison, "tab:blue"),
            ("clean, removed", ~keep & ~poison, "tab:orange"),
            ("poison, kept", keep & poison, "tab:red"),
            ("poison, removed", ~keep & poison, "tab:purple"),
        ]
    finite = np.isfinite(scores)
    values = [scores[mask & finite] for _, mask, _ in groups]
    labels = [f"{name} ({mask.sum()})" for name, mask, _ in groups]
    if np.ndim(bins) == 0:
        # Shared bin edges over the scores' range, so the stacks line up.
        observed = scores[finite]
        low, high = (
            (float(observed.min()), float(observed.max())) if observed.size else (0, 1)
        )
        if low == high:
            low, high = low - 0.5, high + 0.5
        bins = np.linspace(low, high, int(bins) + 1)
    ax.hist(
        values,
        bins=bins,
        stacked=True,
        label=labels,
        color=[color for _, _, color in groups],
        log=log,
    )
    ax.set_xlabel("score (low: suspicious)")
    ax.set_ylabel("samples")
    ax.legend(fontsize=8)
    return ax


def plot_components(estimator, y, poison_mask=None, *, ax=None, cmap="tab10"):
    """Stacked bars of what each component holds, class by class.

    One bar per component of an :class:`~sklearn_ispl.ISPLFilter` (grouped
    by ISPL run) or a :class:`~sklearn_ispl.BoostedComponentVoter`, split by
    given label. Homogeneous components are what ISPL looks for: poison that
    gathers in a few components is outvoted by the rest, poison spread over
    many components is not.

    Parameters
    ----------
    estimator : fitted ISPLFilter or BoostedComponentVoter
        Its ``components_`` (and ``component_runs_``, when it has them) are
        used.
    y : array-like of shape (n_samples,)
        The labels the filter was fitted on.
    poison_mask : array-like of bool of shape (n_samples,), default=None
        True for poisoned samples, when known. Poisoned samples then form a
        black segment of their own on top of each bar (they are not counted
        in their label's segment), and each bar is annotated with its share
        of poison.
    ax : matplotlib.axes.Axes, default=None
        Where to draw; None makes a new figure.
    cmap : str, default="tab10"
        Colour map of the classes.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes drawn on. ``ax.containers`` holds one bar container per
        class, in the order of ``estimator.classes_`` (then one for the
        poison, when ``poison_mask`` is given); bar ``k`` of a container is
        that class's count in component ``k``.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.
    ValueError
        If ``estimator`` has no components, or ``y`` or ``poison_mask`` do not
        match the fitted samples.

    Examples
    --------
    >>> from sklearn_ispl.plotting import plot_components
    >>> ax = plot_components(ispl, y, poison_mask)  # doctest: +SKIP
    """
    plt = _pyplot()
    check_is_fitted(estimator, ["keep_mask_"])
    components = getattr(estimator, "components_", None)
    if components is None:
        raise ValueError(
            f"{type(estimator).__name__} has no components_; plot_components "
            "needs an ISPLFilter or a BoostedComponentVoter."
        )
    n_samples = len(estimator.keep_mask_)
    y = np.asarray(y)
    if y.shape != (n_samples,):
        raise ValueError(
            f"y must have shape ({n_samples},), as the fitted samples; got {y.shape}."
        )
    classes = np.asarray(estimator.classes_)
    unknown = ~np.isin(y, classes)
    if unknown.any():
        raise ValueError(
            f"y holds labels the filter was not fitted on, e.g. {y[unknown][0]!r}; "
            "pass the labels given to fit."
        )
    poison = _check_poison_mask(poison_mask, n_samples)
    runs = np.asarray(
        getattr(estimator, "component_runs_", np.zeros(len(components), dtype=int))
    )
    if ax is None:
        _, ax = plt.subplots(figsize=(max(5.0, 0.45 * len(components) + 2), 3.8))

    # Leave a gap between runs, so each run's partition reads as a group.
    x = np.arange(len(components)) + runs
    clean = np.ones(n_samples, dtype=bool) if poison is None else ~poison
    colors = plt.get_cmap(cmap)
    bottom = np.zeros(len(components))
    for c, label in enumerate(classes):
        counts = np.array(
            [np.sum((y[comp] == label) & clean[comp]) for comp in components]
        )
        ax.bar(x, counts, bottom=bottom, color=colors(c % colors.N), label=str(label))
        bottom += counts
    if poison is not None:
        counts = np.array([np.sum(poison[comp]) for comp in components])
        ax.bar(x, counts, bottom=bottom, color="black", label="poison")
        bottom += counts
        for xi, total, n_poison in zip(x, bottom, counts, strict=True):
            if n_poison:
                ax.annotate(
                    f"{100 * n_poison / total:.0f}%",
                    (xi, total),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    ax.set_xticks(x)
    ax.set_xticklabels(
        [
            f"{r + 1}.{k + 1}"
            for r, k in zip(runs, _index_within_run(runs), strict=True)
        ],
        fontsize=8,
    )
    ax.set_xlabel("component (run.component)")
    ax.set_ylabel("samples")
    title = "Components by given label"
    if poison is not None:
        title += "; % = share of poison"
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=2, bbox_to_anchor=(1.01, 1), loc="upper left")
    return ax


# ---------------------------------------------------------------------------
# helpers


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "sklearn_ispl.plotting needs matplotlib; install it with "
            "pip install 'sklearn-ispl[plot]'."
        ) from exc
    return plt


def _check_poison_mask(poison_mask, n_samples):
    if poison_mask is None:
        return None
    mask = np.asarray(poison_mask)
    if mask.dtype != bool or mask.shape != (n_samples,):
        raise ValueError(
            f"poison_mask must be a boolean array of shape ({n_samples},), one "
            f"entry per fitted sample; got dtype {mask.dtype} and shape "
            f"{mask.shape}."
        )
    return mask


def _images_hwc(estimator, X, image_shape, n_samples):
    """Return ``X`` as ``(n, H, W, C)`` images, checking it fits the fit."""
    X = np.asarray(X)
    if X.shape[0] != n_samples:
        raise ValueError(
            f"X has {X.shape[0]} samples but the filter was fitted on {n_samples}."
        )
    if image_shape is None:
        image_shape = getattr(estimator, "image_shape", None)
    layout = infer_layout(X.shape, image_shape)
    if layout == "tabular":
        raise ValueError(
            f"X has shape {X.shape}: tabular rows cannot be shown as images; "
            "pass image_shape=(H, W) or (H, W, C) if each row is a flat image."
        )
    return np.moveaxis(to_nchw(X, layout, image_shape), 1, -1).astype(np.float64)


def _to_unit(image, low, high):
    # imshow clips RGB floats to [0, 1]: scale with the grid's common range.
    return np.clip((image - low) / ((high - low) or 1.0), 0.0, 1.0)


def _index_within_run(runs):
    index = np.zeros(len(runs), dtype=int)
    for run in np.unique(runs):
        where = np.flatnonzero(runs == run)
        index[where] = np.arange(where.size)
    return index
