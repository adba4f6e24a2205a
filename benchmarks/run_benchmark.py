"""Run the defense benchmark from a checkout.

Same options as ``sklearn-ispl bench`` (see ``--help`` and README.md beside
this file); the output folder defaults to ``benchmarks/results/PROFILE``
next to this script::

    python benchmarks/run_benchmark.py --profile smoke
    python benchmarks/run_benchmark.py --profile quick --n-jobs 2
"""

import sys
from pathlib import Path

from sklearn_ispl.cli import main


def _with_default_out(argv):
    if any(a == "--out" or a.startswith("--out=") for a in argv) or any(
        a in ("-h", "--help", "--list") for a in argv
    ):
        return argv
    profile = "smoke"
    for i, arg in enumerate(argv):
        if arg == "--profile" and i + 1 < len(argv):
            profile = argv[i + 1]
        elif arg.startswith("--profile="):
            profile = arg.split("=", 1)[1]
    out = Path(__file__).resolve().parent / "results" / profile
    return [*argv, "--out", str(out)]


if __name__ == "__main__":
    sys.exit(main(["bench", *_with_default_out(sys.argv[1:])]))
