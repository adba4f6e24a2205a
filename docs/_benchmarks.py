"""Write ``docs/benchmarks.rst`` from the committed benchmark results.

Every number on the benchmarks page is read here from a file under
``benchmarks/results/``; the page says which. ``docs/conf.py`` runs this
module at the start of every documentation build, so the page follows the
results; run it by hand (``python docs/_benchmarks.py``) to refresh the
committed copy. Result sets are listed by name below rather than found by a
glob, so a run still in progress under ``benchmarks/results/`` never reaches
the page: a new result set is added here together with what it measured.
"""

import json
from pathlib import Path

from sklearn_ispl.benchmark import summarize, summarize_families

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PAGE = Path(__file__).resolve().parent / "benchmarks.rst"

# Benchmark folders (``results.json`` of ``sklearn-ispl bench``) on the quick
# profile, with the ISPLFilter settings each ran.
QUICK_SETS = {
    "quick-current": "ISPL, ``ISPLFilter()`` (``auto`` = ``medium``)",
    "quick-stamped-check": (
        'ISPL, ``medium`` + ``StampedTriggerCheck(mode="replace")``'
    ),
}

# ``sklearn-ispl bench`` on all 60,000 images (``--n-train 60000``), ISPL
# only: one scenario of each family. The current default's runs come first;
# the summary reads only them.
CURRENT_LARGE_SETS = {
    "large_rule/current-paper": "60,000 images, bfloat16",
    "large_rule/current-robust": "60,000 images, bfloat16",
}
LARGE_SETS = {
    **CURRENT_LARGE_SETS,
    "float32/large-paper": "60,000 images, float32",
    "float32/large-robust": "60,000 images, float32",
    "float32/large20k-paper": "20,000 images, float32",
    "float32/large20k-robust": "20,000 images, float32",
    "float32/large30k-paper": "30,000 images, float32",
    "float32/large30k-robust": "30,000 images, float32",
}

# ``sklearn-ispl bench --final-seeds 3`` on the quick profile: the final
# classifier trained three times per column.
SEED_SETS = {
    "quick-robust-current/seeds3": "robust suite, with the label "
    "compatibility test (bfloat16)",
    "float32/quick-seeds3-robust": "robust suite",
    "float32/quick-seeds3-paper": "paper suite",
    "float32/large-seeds3-robust": "60,000 images",
}

SPEED_SETS = {
    "default.json": "``ISPLFilter()`` (``auto``), bfloat16 networks, "
    "before the candidate groups",
    "default-float32.json": "``ISPLFilter()`` (``auto``), float32: a CPU "
    "without bfloat16 units, before the candidate groups",
    "default-float32-candidates.json": "``ISPLFilter()`` (``auto``), "
    "float32, with the candidate groups, one round of the group trigger test",
    "default-float32-rounds2.json": "``ISPLFilter()`` (``auto``), float32, "
    "candidate groups and two rounds of the group trigger test",
    "default-float32-refine4x1.json": "``ISPLFilter()`` (``auto``), float32, "
    "four refine rounds of one epoch",
    "default-float32-refine3x1.json": "``ISPLFilter()`` (``auto``), float32, "
    "three refine rounds of one epoch",
    "default-float32-pool.json": "``ISPLFilter()`` (``auto``), float32, "
    "pooling by pairwise maxima when predicting",
    "candidates4-ab-float32.json": "``ISPLFilter()`` (``auto``), float32, "
    "alternated in one session: two candidate groups (before) or four, the "
    "default now (after)",
    "medium-6k-compat.json": "``ISPLFilter()`` (``auto`` = ``medium``) with "
    "the label compatibility test, bfloat16 networks",
    "default-compat.json": "``ISPLFilter()`` (``auto``) as it is now, "
    "bfloat16 networks, 5,000 to 60,000 images in one run",
    "default-compat-60k-rerun.json": "the same, 60,000 images, a second "
    "run on the same machine",
}


def _load(path):
    return json.loads(path.read_text())


def _pct(value, digits=1):
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def _link(path):
    rel = path.relative_to(ROOT)
    return f"``{rel}``"


def _table(header, rows, widths=None):
    """An RST list-table (a sentence instead when there is no row)."""
    if not rows:
        return ["No committed result for this table yet.", ""]
    lines = [".. list-table::", "   :header-rows: 1"]
    if widths:
        lines.append(f"   :widths: {' '.join(str(w) for w in widths)}")
    lines.append("")
    for row in [header, *rows]:
        first = True
        for cell in row:
            lead = "   * - " if first else "     - "
            lines.append(lead + (str(cell) if str(cell) else ""))
            first = False
    return lines + [""]


def _quick_summaries():
    found = {}
    for folder in QUICK_SETS:
        path = RESULTS / folder / "results.json"
        if path.exists():
            found[folder] = (path, _load(path))
    return found


def _summary_row(name, purpose, samples, results, source):
    """A schedules-table row from one result set's ISPL summary."""
    s = summarize(results)["isplfilter"]
    return [
        name,
        purpose,
        samples,
        f"{s['n_asr_below_1pct']} of {s['n_scenarios']}",
        f"{s['mean_clean_drop_points']:.1f}",
        _pct(s["mean_fp_share"]),
        _pct(s["mean_fn_share"]),
        f"{s['mean_seconds']:.0f}",
        source,
    ]


def _schedule_rows(quick):
    rows = []
    # The schedule's own settings (SGD) have not been benchmarked; the
    # nearest run (Adam) was removed as not current (git history, below).
    rows.append(
        [
            "``paper``",
            "the paper's appendix B.1; tens of thousands of images on a GPU",
            "any",
            "–",
            "–",
            "–",
            "–",
            "–",
            "not measured; the nearest run (Adam instead of SGD) is in the "
            "git history as ``benchmarks/results/quick-paper``",
        ]
    )
    small_path = RESULTS / "smoke-small" / "results.json"
    if small_path.exists():
        rows.append(
            _summary_row(
                "``small``",
                "scikit-learn digits and other small sets",
                "< 3,000",
                _load(small_path),
                f"{_link(small_path)} (smoke profile: scikit-learn digits, "
                "2 scenarios, eps 20%)",
            )
        )
    medium = quick.get(MEDIUM)
    if medium:
        rows.append(
            _summary_row(
                "``medium``",
                "thousands of images on CPU",
                "3,000 – 20,000",
                medium[1],
                f"{_link(medium[0])} (quick profile, 6,000 images)",
            )
        )
    # The large row: the 60,000-image benchmark runs, one per family.
    bench = _large_bench_records(CURRENT_LARGE_SETS)
    if bench:
        attacked = [(p, r, run) for p, _, r, run in bench if r["n_poison"] > 0]
        below = sum(run["A"] < 0.01 for _, _, run in attacked)
        drop = [r["no_defense"]["C"] - run["C"] for _, _, r, run in bench]
        rows.append(
            [
                "``large``",
                "tens of thousands of images on CPU",
                "≥ 20,000",
                f"{below} of {len(attacked)}",
                f"{100 * sum(drop) / len(drop):.1f} (against no defense)",
                _pct(sum(run["FP_rate"] for *_, run in bench) / len(bench)),
                _pct(sum(run["FN_rate"] for _, _, run in attacked) / len(attacked)),
                f"{sum(run['seconds'] for *_, run in bench) / len(bench):.0f}",
                ", ".join(sorted({_link(p) for p, *_ in bench}))
                + " (60,000 images: one scenario per family, bfloat16 "
                "networks)",
            ]
        )
    return rows


def _comparison_rows(quick):
    rows = []
    seen_no_defense = False
    for folder, text in QUICK_SETS.items():
        if folder not in quick:
            continue
        path, results = quick[folder]
        summary = summarize(results)
        for key, item in summary.items():
            if key == "no_defense":
                if seen_no_defense:
                    continue
                seen_no_defense = True
                label = "no defense"
            elif key == "isplfilter":
                label = text
            else:
                label = item["label"]
            rows.append(
                [
                    label,
                    item["n_scenarios"],
                    item["n_asr_below_1pct"],
                    _pct(item["mean_A"]),
                    _pct(item["mean_C"]),
                    f"{item['mean_clean_drop_points']:.1f}",
                    _pct(item["mean_fp_share"]),
                    _pct(item["mean_fn_share"]),
                    "–"
                    if item["mean_seconds"] is None
                    else f"{item['mean_seconds']:.0f}",
                    _link(path),
                ]
            )
    return rows


def _speed_rows():
    rows = []
    for name, text in SPEED_SETS.items():
        path = RESULTS / "speed" / name
        if not path.exists():
            continue
        record = _load(path)
        # An A/B file holds several runs of the speed script, each marked.
        runs = record.get("runs", [record])
        for run, row in ((one, row) for one in runs for row in one["rows"]):
            label = f"{text} ({run['run']})" if "run" in run else text
            extra = sum(
                v
                for k, v in row.items()
                if k not in ("n", "fit_s", "final_s", "ratio", "schedule")
                and k not in ("partition", "vote", "refine")
            )
            rows.append(
                [
                    label,
                    f"{row['n']:,}",
                    f"{row['fit_s']:.0f}",
                    f"{row['final_s']:.0f}",
                    f"{row['ratio']:.2f}",
                    f"{row['partition']:.0f} / {row['vote']:.0f} / "
                    f"{row['refine']:.0f} / {extra:.0f}",
                    _link(path),
                ]
            )
    return rows


# The paper suite with ``ISPLFilter()`` on the quick profile.
MEDIUM = "quick-current"
# The robust suite with ``ISPLFilter()``.
ROBUST = "quick-robust-current"
# The robust suite with the default before the group decision flagged
# isolated groups, and every baseline on one scenario per attacked family.
ROBUST_BEFORE = "quick-robust-groups"

# The columns of a summary row, after its label columns.
SUMMARY_COLUMNS = [
    "scenarios",
    "ASR < 1%",
    "mean A",
    "mean C",
    "clean-accuracy drop (points)",
    "clean removed",
    "poison kept",
    "fit s",
]


def _large_bench_records(folders=LARGE_SETS):
    """``(file, scenario name, record, ISPL run)`` of the runs of ``folders``."""
    found = []
    for folder in folders:
        path = RESULTS / folder / "results.json"
        if not path.exists():
            continue
        for name, record in _load(path)["scenarios"].items():
            run = record["defenses"].get("isplfilter")
            if run is not None:
                found.append((path, name, record, run))
    return found


def _large_bench_rows():
    """One row per scenario of the 60,000-image benchmark runs."""
    rows = []
    for path, name, record, run in _large_bench_records():
        machine = LARGE_SETS[path.parent.relative_to(RESULTS).as_posix()]
        attacked = record["n_poison"] > 0
        no_defense = record["no_defense"]
        rows.append(
            [
                f"``{name}`` ({machine})",
                f"{record['n_poison']:,}",
                f"{_pct(no_defense['C'])} / {_pct(no_defense.get('A'))}"
                if attacked
                else _pct(no_defense["C"]),
                f"{_pct(run['C'])} / {_pct(run.get('A'))}"
                if attacked
                else _pct(run["C"]),
                f"{run['FP']:,} ({_pct(run['FP_rate'])})",
                f"{run['FN']} ({_pct(run['FN_rate'])})" if attacked else "–",
                f"{run['seconds']:.0f}",
                f"{run['train_seconds']:.0f}",
                _link(path),
            ]
        )
    return rows


def _robust_rows(folder):
    path = RESULTS / folder / "results.json"
    if not path.exists():
        return []
    results = _load(path)
    rows = []
    for family, columns in summarize_families(results).items():
        for key, item in columns.items():
            label = "no defense" if key == "no_defense" else item["label"]
            below = item["n_asr_below_1pct"]
            rows.append(
                [
                    family,
                    label,
                    item["n_scenarios"],
                    "–" if below is None else below,
                    _pct(item["mean_A"]),
                    _pct(item["mean_C"]),
                    f"{item['mean_clean_drop_points']:.1f}",
                    _pct(item["mean_fp_share"]),
                    _pct(item["mean_fn_share"]),
                    "–"
                    if item["mean_seconds"] is None
                    else f"{item['mean_seconds']:.0f}",
                ]
            )
    return rows


def _seed_rows():
    """One row per scenario of the runs that trained the final classifier
    several times: the mean and each training's clean accuracy."""

    def trainings(entry, key):
        values = entry.get(f"{key}_seeds", [entry.get(key)])
        if values[0] is None:
            return "–"
        shown = " / ".join(f"{100 * v:.1f}" for v in values)
        return f"{_pct(entry[key])} ({shown})"

    rows = []
    for folder, suite in SEED_SETS.items():
        path = RESULTS / folder / "results.json"
        if not path.exists():
            continue
        results = _load(path)
        clean = results.get("clean_training") or {}
        if clean:
            rows.append([f"clean training ({suite})", trainings(clean, "C")])
            rows[-1] += ["–"] * 5 + [_link(path)]
        for name, record in results["scenarios"].items():
            run = record["defenses"].get("isplfilter")
            if run is None or "C" not in run:
                continue
            attacked = record["n_poison"] > 0
            size = "" if folder.startswith("float32/quick") else f" ({suite})"
            rows.append(
                [
                    f"``{name}``{size}",
                    trainings(record["no_defense"], "C"),
                    trainings(record["no_defense"], "A") if attacked else "–",
                    trainings(run, "C"),
                    trainings(run, "A") if attacked else "–",
                    f"{run['FP']:,}",
                    f"{run['FN']} / {record['n_poison']}" if attacked else "–",
                    _link(path),
                ]
            )
    return rows


def _memory_rows():
    rows = []
    for path in sorted((RESULTS / "memory").glob("*.json")):
        record = _load(path)
        for size in record.get("sizes", [record]):
            rows.append(
                [
                    f"{size['n']:,}",
                    size["n_jobs"] or "–",
                    f"{size['x_bytes'] / 2**20:.0f}",
                    f"{size['peak_rss_bytes'] / 2**20:,.0f}",
                    f"{size['peak_above_baseline_bytes'] / 2**20:,.0f}",
                    f"{size['fit_seconds']:.0f}",
                    _link(path),
                ]
            )
        if "fixed_bytes" in record:
            rows.append(
                [
                    "line through the peaks",
                    "",
                    "",
                    f"{record['fixed_bytes'] / 2**20:,.0f} fixed",
                    f"{1000 * record['bytes_per_image'] / 2**20:.1f} per 1,000",
                    "",
                    _link(path),
                ]
            )
    return rows


def _determinism_rows():
    rows = []
    for path in sorted((RESULTS / "determinism").glob("*.json")):
        record = _load(path)
        for run in record["runs"]:
            rows.append(
                [
                    f"{record['n_train']:,}",
                    run["backend"],
                    run["n_jobs"],
                    run["differs_from_first"],
                    run["FN"],
                    run["FP"],
                    f"{run['fit_seconds']:.0f}",
                    _link(path),
                ]
            )
    return rows


def _disagreement_rows():
    rows = []
    for path in sorted((RESULTS / "disagreements").glob("*.json")):
        record = _load(path)
        stages = record["stages"]
        sep = record["separation"]
        n_clean = record["n_train"] - record["n_poison"]

        def fp(c, n_clean=n_clean):
            return f"{c['FN']} / {100 * c['FP'] / n_clean:.1f}%"

        def verdict(s):
            # Files written before a statistic existed do not have it.
            if s is None or s["separates"] is None:
                return "–"
            word = "yes" if s["separates"] else "no"
            return f"{word} ({s['poison_cells_min']:.2f} vs {s['clean_cells_max']:.2f})"

        rows.append(
            [
                f"{record['suite']} {record['scenario']}",
                fp(stages["vote"]),
                fp(stages["refine"]),
                fp(stages["final"]),
                verdict(sep["learnable"]),
                verdict(sep["reverse"]),
                verdict(sep["confident"]),
                verdict(sep.get("isolated")),
                _link(path),
            ]
        )
    return rows


def _group_mode_rows():
    rows = []
    for path in sorted((RESULTS / "group_modes").glob("*.json")):
        record = _load(path)
        for name, entry in record["scenarios"].items():
            n_clean = record["n_train"] - entry["n_poison"]
            final = entry.get("final_classifier", {})

            def cell(key, entry=entry, final=final, n_clean=n_clean):
                c = entry["decisions"][key]
                text = f"{c['FN']} / {100 * c['FP'] / n_clean:.1f}%"
                if "A" in final.get(key, {}):
                    text += f" (A {_pct(final[key]['A'])})"
                return text

            nd = final.get("no_defense", {})
            flagged = ", ".join(f"{g['label']}→{g['look']}" for g in entry["flagged"])
            rows.append(
                [
                    name,
                    f"{record['n_train']:,}",
                    entry["n_poison"],
                    _pct(nd["A"]) if "A" in nd else "–",
                    cell("before"),
                    cell("add"),
                    cell("replace"),
                    flagged or "none",
                    _link(path),
                ]
            )
    return rows


def render():
    """The page's reStructuredText."""
    quick = _quick_summaries()
    clean = None
    if MEDIUM in quick:
        clean = (quick[MEDIUM][1].get("clean_training") or {}).get("C")
    lines = [
        ".. This page is written by docs/_benchmarks.py from the files under",
        "   benchmarks/results/ at every documentation build; edit that script,",
        "   not this file.",
        "",
        ".. _benchmarks:",
        "",
        "Benchmarks",
        "==========",
        "",
        "What each schedule and each defense achieved on dirty-label backdoors "
        "in Fashion-MNIST, read from the result files committed under "
        "``benchmarks/results/`` (each row names its file; how to run and "
        "what is measured: ``benchmarks/README.md``). A *scenario* is one "
        "backdoor of the paper's Table 3: a (source, target) class pair, a "
        "trigger drawn by the paper's rule and a poison rate eps of 5%, 10% or "
        "20%; the quick profile runs all 24 on a stratified draw of 6,000 "
        "training images and the 10,000 test images, on 2 CPU cores.",
        "",
        "- **ASR < 1%**: scenarios (or fits) where the model trained on the "
        "kept samples follows the trigger on fewer than 1% of the triggered "
        "source-class test images;",
        "- **clean-accuracy drop**: clean accuracy of a model trained on the "
        "clean training set minus that of the model trained on the kept "
        "samples, in percentage points, averaged"
        + (f" (clean training: {_pct(clean)} on the quick profile)" if clean else "")
        + ";",
        "- **clean removed** (FP share): clean training samples removed, as a "
        "share of the clean samples; **poison kept** (FN share): poisoned "
        "samples kept, as a share of the poison;",
        "- **fit s**: seconds of the defense's ``fit`` on 2 CPU cores, on a "
        "machine shared with other work: compare timings only within one "
        "result file.",
        "",
        "Schedules",
        "---------",
        "",
        "``ISPLFilter()`` picks its schedule from the number of training "
        'samples (``schedule="auto"``); each row is measured with the '
        "schedule's own settings unless it says otherwise.",
        "",
    ]
    lines += _table(
        [
            "schedule",
            "for",
            "samples",
            "ASR < 1%",
            "clean-accuracy drop (points)",
            "clean removed",
            "poison kept",
            "fit s",
            "result",
        ],
        _schedule_rows(quick),
    )
    lines += [
        "Defenses on the quick profile",
        "-----------------------------",
        "",
        "Every defense on the same scenarios, the same 6,000 images and the "
        "same final classifier (8 epochs). ``ISPLFilter()`` ran in its own "
        "result set (bfloat16 networks); the baselines ran in the same result "
        "set as the stamped-trigger check, which is older (float32).",
        "",
    ]
    lines += _table(["defense", *SUMMARY_COLUMNS, "result"], _comparison_rows(quick))
    lines += [
        "The stamped-trigger check looks for a trigger stamped with the same "
        "pixel values on every poisoned image, which is what every scenario "
        "here uses; blended and varying triggers are in the robust suite below (see "
        ":ref:`experimental_stages`).",
        "",
        "Triggers that are not stamped, and no attack",
        "--------------------------------------------",
        "",
        "Scenarios of the robust suite (``sklearn-ispl bench --suite "
        "robust``: blended and varying-stamp triggers on the paper's class "
        "pairs, two attacks at once, a clean data set) run with "
        "``ISPLFilter()``; on the clean scenario, *clean removed* is the "
        "share of all samples removed. In several scenarios the attack does "
        "not work even without a defense (see the no-defense rows). Result: "
        f"``benchmarks/results/{ROBUST}/results.json``.",
        "",
    ]
    lines += _table(["family", "defense", *SUMMARY_COLUMNS], _robust_rows(ROBUST))
    lines += [
        "The same suite with an earlier default (float32, its group "
        "decision not yet flagging isolated groups), and every baseline, run "
        "later into the same "
        "results on the scenarios their rows count (one per attacked family): "
        "compare a family's defenses only on the scenarios they share "
        f"(``benchmarks/results/{ROBUST_BEFORE}/results.md`` lists each).",
        "",
    ]
    lines += _table(
        ["family", "defense", *SUMMARY_COLUMNS], _robust_rows(ROBUST_BEFORE)
    )
    lines += [
        "``ISPLFilter()`` on 20,000 and 60,000 images",
        "--------------------------------------------",
        "",
        "``sklearn-ispl bench --n-train 60000`` (quick profile, all 60,000 "
        "Fashion-MNIST training images, ``auto`` = ``large``, ``--n-jobs "
        "2``, with two rounds of the group trigger test and three refine "
        "rounds that each read about 60,000 samples: one epoch at 60,000 "
        "images; the rows marked 20,000 images: ``--n-train 20000``, where "
        "``auto`` starts to pick ``large`` and each round is three epochs, "
        "the no-defense columns and the clean training from the same run): "
        "one scenario of "
        "each family and two held out (4 and 9), the final classifier trained "
        "without a defense and on what the filter kept (C / A: clean "
        "accuracy / attack success). *fit s* is the filter's ``fit``, *final "
        "s* one training of the final classifier on what it kept. The rows "
        "marked bfloat16 are the current default on a processor with "
        "bfloat16 units (one scenario of each family, no-defense columns "
        "and clean training from the same run). In the rows marked float32 "
        "the filter, an earlier default, "
        "ran on a processor without bfloat16 units, so its networks "
        "computed in float32; at 60,000 images the no-defense columns and "
        "the clean training come from an earlier run on a processor with "
        "them, except scenario 9's. The runs with bfloat16 networks, "
        "before the group trigger test tested candidate groups, are in "
        "commit 649a0d8 "
        '(``benchmarks/README.md``: "The 60,000-image default without '
        'bfloat16 units").',
        "",
    ]
    lines += _table(
        [
            "scenario",
            "poisoned",
            "no defense C / A",
            "ISPL C / A",
            "clean removed (FP)",
            "poison kept (FN)",
            "fit s",
            "final s",
            "result",
        ],
        _large_bench_rows(),
    )
    lines += [
        "Clean accuracy over three trainings",
        "-----------------------------------",
        "",
        "``sklearn-ispl bench --profile quick --final-seeds 3`` (6,000 "
        "images, ``ISPLFilter()`` = ``medium``; the last rows on all 60,000 "
        "images, ``large`` as it is now; float32 "
        "networks): the final "
        "classifier trained with seeds 0, 1 and 2 on all the samples (no "
        "defense) and on what the filter kept; each cell gives the mean and "
        "the three trainings. One training's clean accuracy moves by a "
        "point or more with its seed alone, which the single-training tables "
        "above do not show.",
        "",
    ]
    lines += _table(
        [
            "scenario",
            "no defense C",
            "no defense A",
            "ISPL C",
            "ISPL A",
            "clean removed",
            "poison kept",
            "result",
        ],
        _seed_rows(),
    )
    lines += [
        "Speed",
        "-----",
        "",
        "Fit seconds of the filter against one training of the final "
        "classifier (8 epochs) on the same stratified Fashion-MNIST subset "
        "(``benchmarks/speed.py``); the last column splits "
        "the fit into partition / vote / refine / extra stages.",
        "",
    ]
    lines += _table(
        [
            "settings",
            "images",
            "fit s",
            "final classifier s",
            "ratio",
            "stages s",
            "result",
        ],
        _speed_rows(),
    )
    lines += [
        "Memory",
        "------",
        "",
        "Peak resident memory of a fit, all processes together (this one and "
        "any workers, imports and data included), and above the memory "
        "before the fit (``benchmarks/memory.py``, each size in a fresh "
        "process). A line through the peaks of two sizes separates the fixed "
        "cost from the cost per image.",
        "",
    ]
    lines += _table(
        [
            "images",
            "jobs",
            "X (MiB)",
            "peak (MiB)",
            "peak above before (MiB)",
            "fit s",
            "result",
        ],
        _memory_rows(),
    )
    lines += [
        "The same answer for any n_jobs",
        "------------------------------",
        "",
        "Fits with one ``random_state`` and several ``n_jobs`` values and "
        "joblib backends (``benchmarks/determinism.py``): the number of "
        "samples whose decision differs from the first fit's.",
        "",
    ]
    lines += _table(
        [
            "images",
            "backend",
            "n_jobs",
            "decisions differ",
            "FN",
            "FP",
            "fit s",
            "result",
        ],
        _determinism_rows(),
    )
    lines += [
        "Where the clean samples go",
        "--------------------------",
        "",
        "Poison kept / clean samples removed after the vote, the refine stage "
        "and at the end (``benchmarks/disagreements.py``, ``ISPLFilter()``), "
        "and whether four cell statistics a group-level rule could use "
        "separate the cells of poison from every clean cell of the refine "
        "stage's disagreements (lowest among poison cells vs highest among "
        "clean cells).",
        "",
    ]
    lines += _table(
        [
            "scenario",
            "vote FN / FP",
            "refine FN / FP",
            "final FN / FP",
            "learnable",
            "reverse",
            "confident",
            "isolated",
            "result",
        ],
        _disagreement_rows(),
    )
    lines += [
        "The group decision's two modes",
        "------------------------------",
        "",
        "One ``ISPLFilter()`` fit per scenario (``benchmarks/group_modes.py``): "
        "poison kept / clean samples removed, and the final classifier's "
        "attack success A, for what the stages before the group decision "
        'kept, for the default (``GroupDecision`` in ``"add"`` mode: those '
        'less the flagged groups) and for the opt-in ``"replace"`` mode '
        "(every sample outside the flagged groups kept). Rows named by a class "
        "pair are attacks between look-alike Fashion-MNIST classes that no "
        "suite holds; numbered rows are robust-suite scenarios. Flagged groups "
        "are given as label→look.",
        "",
    ]
    lines += _table(
        [
            "scenario",
            "images",
            "poisoned",
            "no-defense A",
            "before",
            "add (default)",
            "replace",
            "flagged",
            "result",
        ],
        _group_mode_rows(),
    )
    return "\n".join(lines).rstrip() + "\n"


def write_page(path=PAGE):
    """Write the page when its text changed; return whether it did."""
    text = render()
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


if __name__ == "__main__":
    write_page()
