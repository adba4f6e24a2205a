"""Two settings of one defense, side by side on the scenarios both finished."""

from ._report import _entry_cells, _pct, _sorted_records, summarize
from ._results import _DATA_FIELDS, _suite


def compare_results(runs, defense="isplfilter"):
    """Compare runs of one defense on the scenarios they have in common.

    Each run is the ``results.json`` of a benchmark output folder, made with
    the same profile data (training subset, test set, final classifier) but,
    say, other settings of the defense: the paper's and a faster preset.

    Parameters
    ----------
    runs : dict of str to dict
        Label of each run (e.g. ``"paper"``) to its results, as returned by
        :func:`run_benchmark` or read from ``results.json``. At least two.
    defense : str, default="isplfilter"
        Key of the defense compared (a column of the results).

    Returns
    -------
    markdown : str
        One row per common scenario (no-defense ``A``, then ``C``, ``A``,
        ``FP``, ``FN`` and fit seconds of each run), then a summary per run
        over those scenarios: how many end with an attack success under 1%,
        the mean clean-accuracy drop against clean training, the shares of
        clean samples removed and poison kept, and the mean fit seconds.

    Raises
    ------
    ValueError
        Fewer than two runs; runs measured on different data, with another
        final classifier or on another suite (the numbers would not be
        comparable); no scenario that every run finished with the defense.
    """
    if len(runs) < 2:
        raise ValueError(f"compare_results needs at least two runs, got {len(runs)}")
    labels = list(runs)
    first = runs[labels[0]].get("profile", {})
    for label in labels[1:]:
        other = runs[label].get("profile", {})
        changed = [k for k in _DATA_FIELDS if first.get(k) != other.get(k)]
        if _suite(runs[label]) != _suite(runs[labels[0]]):
            # The suites' scenarios are different attacks.
            changed.append("suite")
        if changed:
            raise ValueError(
                f"Runs {labels[0]!r} and {label!r} differ in {', '.join(changed)}: "
                "their numbers are not comparable."
            )
    finished = [
        {
            sid
            for sid, record in results["scenarios"].items()
            if "C" in record.get("defenses", {}).get(defense, {})
        }
        for results in runs.values()
    ]
    common = set.intersection(*finished)
    if not common:
        raise ValueError(
            f"No scenario was finished by {defense!r} in every run "
            f"({', '.join(labels)})."
        )
    subsets = {
        label: {**results, "scenarios": {s: results["scenarios"][s] for s in common}}
        for label, results in runs.items()
    }

    header = ["scenario", "ND A"]
    for label in labels:
        header += [f"{label} {m}" for m in ("C", "A", "FP", "FN", "s")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for sid, record in _sorted_records(subsets[labels[0]]):
        row = [sid, _pct(record.get("no_defense", {}).get("A"))]
        for label in labels:
            row += _entry_cells(subsets[label]["scenarios"][sid]["defenses"][defense])
        lines.append("| " + " | ".join(row) + " |")

    lines += [
        "",
        f"Over the {len(common)} scenario(s) every run finished:",
        "",
        "| run | ASR < 1% | mean A (%) | C drop vs clean (points) | "
        "FP share (%) | FN share (%) | fit s |",
        "|---|---|---|---|---|---|---|",
    ]
    for label in labels:
        item = summarize(subsets[label])[defense]
        drop = item["mean_clean_drop_points"]
        below = item["n_asr_below_1pct"]
        lines.append(
            f"| {label} | {'–' if below is None else below}/{item['n_scenarios']} | "
            f"{_pct(item['mean_A'])} | {'–' if drop is None else f'{drop:.1f}'} | "
            f"{_pct(item['mean_fp_share'])} | {_pct(item['mean_fn_share'])} | "
            f"{item['mean_seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"
