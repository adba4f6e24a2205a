"""Summaries, the Markdown table, the attack-success plot and the report."""

import logging
import math
from pathlib import Path

import numpy as np

from ._defenses import DEFENSES
from ._results import _suite

# The package's logger (``sklearn_ispl.benchmark``), the one
# :func:`~sklearn_ispl.benchmark.run_benchmark` sends its log file to.
logger = logging.getLogger(__package__)


def _columns(results):
    """Defense keys present in the results, in the order of DEFENSES."""
    present = {
        key
        for record in results["scenarios"].values()
        for key in record.get("defenses", {})
    }
    return [spec for spec in DEFENSES if spec.key in present]


#: Attack families of the scenarios, by the ``kind`` of their description
#: (the paper suite's have none: stamped), with their labels.
FAMILIES = {
    "stamped": "stamped (paper)",
    "blended": "blended",
    "varying": "varying",
    "multi": "two attacks",
    "clean": "clean",
}


def _family(record):
    return record["scenario"].get("kind", "stamped")


def _sorted_records(results):
    return sorted(
        results["scenarios"].items(), key=lambda kv: kv[1]["scenario"]["index"]
    )


def summarize(results):
    """Summarise each defense over the scenarios it finished.

    Parameters
    ----------
    results : dict
        As returned by :func:`run_benchmark` (or read from ``results.json``).

    Returns
    -------
    summary : dict
        Per column (``"no_defense"`` and each defense key): ``label``,
        ``n_scenarios``, ``n_asr_below_1pct`` (scenarios whose attack
        success is under 1%), ``mean_A``, ``mean_C``,
        ``mean_clean_drop_points`` (clean accuracy of the clean-training
        model minus the column's, in percentage points, averaged),
        ``mean_fp_share`` (FP over the clean training samples),
        ``mean_fn_share`` (FN over the poisoned samples) and
        ``mean_seconds`` (defense fit time); ``None`` where undefined.
        Scenarios without an attack (the robust suite's clean one) count
        only towards ``mean_C``, the clean drop, ``mean_fp_share`` (there:
        the share of samples removed) and ``mean_seconds``; with no other
        scenario, ``n_asr_below_1pct``, ``mean_A`` and ``mean_fn_share``
        are None.

    Examples
    --------
    >>> from sklearn_ispl.benchmark import summarize
    >>> results = {"clean_training": {"C": 0.9}, "scenarios": {"00": {
    ...     "scenario": {"index": 0}, "n_train": 100, "n_poison": 10,
    ...     "no_defense": {"C": 0.9, "A": 0.8}, "defenses": {"isplfilter": {
    ...     "C": 0.88, "A": 0.0, "FP": 9, "FN": 1, "seconds": 3.0}}}}}
    >>> s = summarize(results)["isplfilter"]
    >>> s["n_asr_below_1pct"], round(s["mean_clean_drop_points"], 1), s["mean_fp_share"]
    (1, 2.0, 0.1)
    """
    clean_c = (results.get("clean_training") or {}).get("C")
    summary = {}
    columns = [("no_defense", "No defense")] + [
        (spec.key, spec.label) for spec in _columns(results)
    ]
    for key, label in columns:
        rows = []
        for _, record in _sorted_records(results):
            entry = (
                record.get("no_defense")
                if key == "no_defense"
                else record.get("defenses", {}).get(key)
            )
            if entry and "C" in entry:
                rows.append((record, entry))
        n_errors = sum(
            1
            for record in results["scenarios"].values()
            if "error" in record.get("defenses", {}).get(key, {})
        )
        attacked = [(record, entry) for record, entry in rows if "A" in entry]
        item = {
            "label": label,
            "n_scenarios": len(rows),
            "n_errors": n_errors,
            # Nothing to count where no finished scenario has an attack.
            "n_asr_below_1pct": sum(entry["A"] < 0.01 for _, entry in attacked)
            if attacked or not rows
            else None,
            "mean_A": _mean(entry["A"] for _, entry in attacked),
            "mean_C": _mean(entry["C"] for _, entry in rows),
            "mean_clean_drop_points": None
            if clean_c is None
            else _mean(100 * (clean_c - entry["C"]) for _, entry in rows),
            "mean_fp_share": None,
            "mean_fn_share": None,
            "mean_seconds": None,
        }
        if key != "no_defense":
            item["mean_fp_share"] = _mean(
                entry["FP"] / max(1, record["n_train"] - record["n_poison"])
                for record, entry in rows
            )
            item["mean_fn_share"] = _mean(
                entry["FN"] / max(1, record["n_poison"]) for record, entry in attacked
            )
            item["mean_seconds"] = _mean(entry["seconds"] for _, entry in rows)
        summary[key] = item
    return summary


def _mean(values):
    values = list(values)
    return float(np.mean(values)) if values else None


def summarize_families(results):
    """Summarise each defense per attack family.

    Parameters
    ----------
    results : dict
        As returned by :func:`run_benchmark`, of either suite.

    Returns
    -------
    summary : dict
        Per family present (keys of :data:`FAMILIES`: ``"stamped"`` for the
        paper suite; ``"blended"``, ``"varying"``, ``"multi"`` and
        ``"clean"`` for the robust one), :func:`summarize` over its
        scenarios. For ``"clean"``, ``mean_fp_share`` is the share of the
        samples removed and ``mean_C`` the final classifier's accuracy.
    """
    by_family = {}
    for sid, record in results["scenarios"].items():
        by_family.setdefault(_family(record), {})[sid] = record
    return {
        family: summarize({**results, "scenarios": by_family[family]})
        for family in FAMILIES
        if family in by_family
    }


def _stored_summary(results):
    """The ``summary`` of ``results.json``: per family for the robust suite."""
    if _suite(results) == "paper":
        return summarize(results)
    return summarize_families(results)


def _item_line(item):
    parts = []
    if item["n_asr_below_1pct"] is None:
        parts.append(f"{item['n_scenarios']} scenario(s) without attack")
    else:
        parts.append(
            f"ASR < 1% in {item['n_asr_below_1pct']}/{item['n_scenarios']} scenarios"
        )
        parts.append(f"mean A {_pct(item['mean_A'])}%")
    if item["mean_clean_drop_points"] is not None:
        parts.append(
            f"clean accuracy {-item['mean_clean_drop_points']:+.1f} points vs "
            "clean training"
        )
    if item["mean_fp_share"] is not None:
        if item["mean_fn_share"] is None:
            parts.append(f"removes {_pct(item['mean_fp_share'])}% of samples")
        else:
            parts.append(f"removes {_pct(item['mean_fp_share'])}% of clean samples")
            parts.append(f"keeps {_pct(item['mean_fn_share'])}% of poison")
        parts.append(f"{item['mean_seconds']:.1f} s per fit")
    if item["n_errors"]:
        parts.append(f"{item['n_errors']} failed")
    return f"{item['label']}: " + "; ".join(parts)


def _summary_lines(results):
    if _suite(results) == "paper":
        return [
            _item_line(item)
            for item in summarize(results).values()
            if item["n_scenarios"]
        ]
    lines = []
    for family, summary in summarize_families(results).items():
        items = [item for item in summary.values() if item["n_scenarios"]]
        if items:
            lines.append(f"{FAMILIES[family]}:")
            lines += [f"  {_item_line(item)}" for item in items]
    return lines


def _entry_cells(entry):
    """Table cells C, A, FP, FN and fit seconds of one defense's result."""
    return [
        _pct(entry["C"]),
        _pct(entry.get("A")),
        str(entry["FP"]),
        str(entry["FN"]) if "FN" in entry else "–",
        f"{entry['seconds']:.0f}",
    ]


def _pct(value, digits=1):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * value:.{digits}f}"


def _attack_cell(attack):
    """Short text of one attack of a robust scenario's description."""
    if attack["kind"] == "blended":
        return f"blended α {attack['alpha']}"
    where = f"{attack['trigger']} ({attack['position'][0]}, {attack['position'][1]})"
    if attack["kind"] == "varying":
        low, high = attack["color_range"]
        return f"varying {where} {low}..{high}"
    return f"{where} colour {attack['color']}"


def _scenario_cells(sid, record):
    """The cells that say which scenario a row is."""
    sc = record["scenario"]
    if "kind" not in sc:  # the paper suite
        return [
            f"{sc['source']} / {sc['target']}",
            sc["trigger"],
            f"({sc['position'][0]}, {sc['position'][1]})",
            str(sc["color"]),
            f"{round(100 * sc['eps'])}",
        ]
    attacks = sc["attacks"]
    return [
        sid,
        ", ".join(f"{a['source']} / {a['target']}" for a in attacks) or "–",
        "; ".join(_attack_cell(a) for a in attacks) or "none",
    ]


def _summary_table(summary):
    lines = [
        "| column | scenarios | ASR < 1% | mean A (%) | mean C (%) | "
        "C drop vs clean (points) | FP share (%) | FN share (%) | fit s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for item in summary.values():
        drop = item["mean_clean_drop_points"]
        secs = item["mean_seconds"]
        below = item["n_asr_below_1pct"]
        lines.append(
            f"| {item['label']} | {item['n_scenarios']} | "
            f"{'–' if below is None else below} | {_pct(item['mean_A'])} | "
            f"{_pct(item['mean_C'])} | {'–' if drop is None else f'{drop:.1f}'} | "
            f"{_pct(item['mean_fp_share'])} | {_pct(item['mean_fn_share'])} | "
            f"{'–' if secs is None else f'{secs:.0f}'}"
            " |"
        )
    return lines


def results_table(results):
    """Format results as Markdown in the layout of the paper's Table 3.

    Parameters
    ----------
    results : dict
        As returned by :func:`run_benchmark`.

    Returns
    -------
    markdown : str
        One row per scenario: source / target, trigger, position (row,
        column), colour, eps (for the robust suite instead: the scenario id,
        the source / target pairs and the attacks); ``M``; no-defense ``C``
        and ``A``; and per defense ``C``, ``A``, ``FP``, ``FN`` and ``s``
        (fit seconds). ``C``, ``A`` and ``M`` are percentages. Then a
        summary per column, for the robust suite one per attack family.
    """
    specs = _columns(results)
    paper = _suite(results) == "paper"
    if paper:
        header = ["S / T", "trigger", "pos", "colour", "eps"]
    else:
        header = ["scenario", "S / T", "attack"]
    header += ["M", "ND C", "ND A"]
    for spec in specs:
        header += [f"{spec.label} {m}" for m in ("C", "A", "FP", "FN", "s")]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for sid, record in _sorted_records(results):
        nd = record.get("no_defense", {})
        row = _scenario_cells(sid, record) + [
            _pct(record.get("M")),
            _pct(nd.get("C")),
            _pct(nd.get("A")),
        ]
        for spec in specs:
            entry = record.get("defenses", {}).get(spec.key, {})
            if "C" in entry:
                row += _entry_cells(entry)
            else:
                row += ["error" if "error" in entry else "–"] + ["–"] * 4
        lines.append("| " + " | ".join(row) + " |")

    clean = results.get("clean_training") or {}
    lines += ["", f"Clean training (no poison): C = {_pct(clean.get('C'))}%.", ""]
    if paper:
        lines += _summary_table(summarize(results))
    else:
        for family, summary in summarize_families(results).items():
            lines += [f"**{FAMILIES[family]}**", "", *_summary_table(summary), ""]
        lines.pop()
    return "\n".join(lines) + "\n"


def plot_asr(results, path):
    """Plot attack success per scenario and column as grouped bars.

    Parameters
    ----------
    results : dict
        As returned by :func:`run_benchmark`.
    path : str or path-like
        Where to save the figure (PNG).

    Returns
    -------
    path : Path or None
        The file written, or None when matplotlib is not installed
        (``pip install sklearn-ispl[plot]``) or no scenario has an attack.
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed; no plot written.")
        return None
    paper = _suite(results) == "paper"
    rows = [(sid, r) for sid, r in _sorted_records(results) if _family(r) != "clean"]
    records = [record for _, record in rows]
    if not records:
        return None
    specs = _columns(results)
    columns = [("no_defense", "No defense")] + [(s.key, s.label) for s in specs]
    n_cols = len(columns)
    width = 0.8 / n_cols
    x = np.arange(len(records))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.3 * len(records) * n_cols) + 1.5, 4.2))
    for j, (key, label) in enumerate(columns):
        values = []
        for record in records:
            entry = (
                record.get("no_defense")
                if key == "no_defense"
                else record.get("defenses", {}).get(key)
            )
            values.append(100 * entry["A"] if entry and "A" in entry else np.nan)
        centres = x - 0.4 + width * (j + 0.5)
        bars = ax.bar(centres, values, width, label=label)
        # A dot on each bar, so that 0% (no bar) still shows.
        ax.plot(
            centres, values, "o", markersize=3, color=bars.patches[0].get_facecolor()
        )
    m_values = [100 * r["M"] if "M" in r else np.nan for r in records]
    ax.plot(x, m_values, "k_", markersize=12, label="M (clean training)")
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=0.8)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(-0.1, 110)
    ax.set_ylabel("attack success A (%)")
    ax.set_xticks(x)
    ax.set_xticklabels(
        [
            f"{r['scenario']['source']}/{r['scenario']['target']} "
            f"{round(100 * r['scenario']['eps'])}%"
            if paper
            else sid
            for sid, r in rows
        ],
        rotation=60,
        ha="right",
        fontsize=8,
    )
    profile = results.get("profile", {}).get("name", "")
    ax.set_title(f"Attack success per scenario ({profile}; dashed: 1%)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(results, out):
    """Write ``results.md`` and ``asr.png`` for ``results`` into ``out``.

    Parameters
    ----------
    results : dict
        As returned by :func:`run_benchmark`.
    out : str or path-like
        Output folder.

    Returns
    -------
    paths : list of Path
        The files written.
    """
    out = Path(out)
    profile = results.get("profile", {})
    run = results["runs"][-1] if results.get("runs") else {}
    suite = _suite(results)
    head = [
        f"# Benchmark results: profile `{profile.get('name')}`"
        + ("" if suite == "paper" else f", {suite} suite"),
        "",
        f"Data: {profile.get('dataset')}, training subset "
        f"{profile.get('n_train') or 'all'}, final classifier "
        f"{profile.get('final_epochs')} epochs{_seeds_text(profile)}. Last run: "
        f"`{run.get('command', '')}` at commit {run.get('git_commit')}"
        f"{' (uncommitted changes)' if run.get('git_dirty') else ''}.",
        "",
        "C = clean accuracy, A = attack success (targeted misclassification "
        "rate), M = A of the model trained on clean data; percentages. "
        "FP = clean samples removed, FN = poisoned samples kept, s = defense "
        "fit seconds. Position is (row, column).",
        "",
    ]
    if suite != "paper":
        head += [
            "With two attacks, A is the larger of their rates (both are in "
            "results.json) and FN counts the poison of either. The clean "
            "scenario has no A and no FN: its FP share is the share of the "
            "samples removed.",
            "",
        ]
    notes = results.get("notes") or []
    if notes:
        head += [f"- {note}" for note in notes] + [""]
    head.append("")
    md = out / "results.md"
    md.write_text("\n".join(head) + results_table(results))
    paths = [md]
    png = plot_asr(results, out / "asr.png")
    if png is not None:
        paths.append(png)
    return paths


def _seeds_text(profile):
    """How many trainings C and A average, where more than one."""
    n = profile.get("final_seeds") or 1
    if n == 1:
        return ""
    first = profile.get("seed") or 0
    return (
        f", trained {n} times (seeds {first} to {first + n - 1}); C and A are "
        "the means of the trainings"
    )
