"""Compare benchmark runs of one defense on the scenarios they share.

Each argument is LABEL=FOLDER, a benchmark output folder holding
``results.json``. Prints a Markdown table (per scenario, then a summary per
run: scenarios with an attack success under 1%, mean clean-accuracy drop,
clean samples removed, poison kept, fit seconds) and writes it to ``--out``
when given.

Usage::

    python benchmarks/compare.py paper=benchmarks/results/quick-paper \\
        default=benchmarks/results/quick-bf16
"""

import argparse
import json
import sys
from pathlib import Path

from sklearn_ispl.benchmark import compare_results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="LABEL=FOLDER")
    parser.add_argument("--defense", default="isplfilter")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    runs = {}
    for item in args.runs:
        label, sep, folder = item.partition("=")
        if not sep or not label:
            parser.error(f"runs are given as LABEL=FOLDER, got {item!r}")
        path = Path(folder) / "results.json"
        if not path.exists():
            parser.error(f"{path} not found")
        runs[label] = json.loads(path.read_text())
    try:
        text = compare_results(runs, args.defense)
    except ValueError as exc:
        parser.error(str(exc))
    print(text, end="")
    if args.out is not None:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
