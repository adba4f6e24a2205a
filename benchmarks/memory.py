"""Measure the peak memory of an ISPLFilter fit against the size of X.

Loads a stratified Fashion-MNIST subset of ``--n`` images, then fits
``ISPLFilter`` while a background thread samples the resident set size (RSS)
of this process and of all its child processes (joblib workers). Prints the
size of X, of the float32 working copy the filter trains on, the RSS before
the fit (X already loaded), the peak RSS above it, and that peak as a
multiple of X's size.

RSS of worker processes is summed, so memory they share with this process
(read-only memory maps of the data, shared libraries) is counted more than
once: with ``--n-jobs`` above 1 the peak is an upper bound.

With ``--n`` given several sizes, each fit runs in a fresh process and the
script also prints the line through the peaks of the whole process tree
(RSS of this process and its workers, imports and data included): its
intercept is the fixed cost, its slope the cost per 1,000 images.

Usage::

    python benchmarks/memory.py --n 6000 60000 \\
        --out benchmarks/results/memory/default.json
    python benchmarks/memory.py --n 6000 \\
        --params '{"n_runs": 1, "n_components": 4, "refiner__n_rounds": 1}'

``--params`` takes a schedule name or ISPLFilter settings as JSON, ``--set``
overrides settings and ``--extra-stages`` replaces the schedule's extra
stages (as in ``stages.py``). The result records the resolved ``schedule_``
and the seconds of every stage (``stage_times_``).
"""

import argparse
import gc
import os
import threading
import time

import numpy as np
from speed import _subset  # the same class-balanced subsets as the speed runs
from stages import (  # the same settings options and output
    add_settings_arguments,
    fit_params,
    save_result,
)

from sklearn_ispl import ISPLFilter
from sklearn_ispl.benchmark import _jsonable, make_defense
from sklearn_ispl.benchmark._results import _git_commit, _machine
from sklearn_ispl.datasets import load_fashion_mnist

try:
    import psutil
except ImportError:  # the /proc fallback below covers Linux
    psutil = None

MIB = 2**20


def _proc_rss(pid):
    with open(f"/proc/{pid}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _proc_children(pid):
    """All descendants of ``pid``, from the parent ids in /proc/*/stat."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                # The command name may hold spaces; fields restart after ')'.
                fields = fh.read().rsplit(")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        frontier += kids
    return found


def tree_rss(pid=None):
    """RSS in bytes of process ``pid`` (default: this one) and its descendants."""
    pid = os.getpid() if pid is None else pid
    if psutil is not None:
        proc = psutil.Process(pid)
        total = proc.memory_info().rss
        for child in proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass  # the worker ended while we looked
        return total
    total = _proc_rss(pid)
    for child in _proc_children(pid):
        try:
            total += _proc_rss(child)
        except OSError:
            pass
    return total


class PeakSampler:
    """Sample :func:`tree_rss` every ``interval`` seconds in a thread."""

    def __init__(self, interval=0.05):
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss())
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        # One last sample: the fit's own final allocations.
        self.peak = max(self.peak, tree_rss())


def _one_size_in_a_fresh_process(argv, n):
    """Run this script for one size in a new interpreter; return its result."""
    import json
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "one.json")
        rest = _drop_option(_drop_option(argv, "--n"), "--out")
        subprocess.run(
            [sys.executable, __file__, "--n", str(n), *rest, "--out", out],
            check=True,
        )
        with open(out) as fh:
            return json.load(fh)


def _drop_option(argv, name):
    """``argv`` without option ``name`` and the values that follow it."""
    kept, skipping = [], False
    for arg in argv:
        if arg == name:
            skipping = True
            continue
        if skipping and not arg.startswith("--"):
            continue
        skipping = False
        kept.append(arg)
    return kept


def fixed_and_per_sample(results):
    """Least-squares line through (n, peak of the process tree): its
    intercept (bytes) and slope (bytes per image)."""
    n = np.array([r["n"] for r in results], dtype=float)
    peak = np.array([r["peak_rss_bytes"] for r in results], dtype=float)
    slope, intercept = np.polyfit(n, peak, 1)
    return float(intercept), float(slope)


def main(argv=None):
    import sys

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n", type=int, nargs="+", default=[60000], help="training images"
    )
    add_settings_arguments(parser)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds")
    parser.add_argument("--out", default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    if len(args.n) > 1:
        return _several_sizes(argv, args)
    params = fit_params(args)

    X_all, y_all = load_fashion_mnist()
    X, y = _subset(X_all, y_all, args.n[0])
    del X_all, y_all
    gc.collect()
    run_params = {"random_state": 0, "n_jobs": args.n_jobs}
    ispl, _, _ = make_defense(ISPLFilter, params, run_params, strict=True)

    x_bytes = X.nbytes
    working_bytes = X.size * np.dtype(np.float32).itemsize
    commit, dirty = _git_commit()
    provenance = {"git_commit": commit, "git_dirty": dirty, "machine": _machine("cpu")}
    baseline = tree_rss()
    start = time.perf_counter()
    with PeakSampler(args.interval) as sampler:
        ispl.fit(X, y)
    seconds = time.perf_counter() - start
    above = sampler.peak - baseline

    result = {
        "n": len(y),
        "params": _jsonable(params),
        "schedule": _jsonable(ispl.schedule_),
        "n_jobs": args.n_jobs,
        "x_bytes": int(x_bytes),
        "x_dtype": str(X.dtype),
        "float32_copy_bytes": int(working_bytes),
        "baseline_rss_bytes": int(baseline),
        "peak_rss_bytes": int(sampler.peak),
        "peak_above_baseline_bytes": int(above),
        "peak_above_baseline_over_x": above / x_bytes,
        "peak_above_baseline_over_float32_copy": above / working_bytes,
        "fit_seconds": seconds,
        "stage_seconds": ispl.stage_times_,
        "samples": sampler.samples,
        "rss_source": "psutil" if psutil is not None else "/proc",
        **provenance,
    }
    print(
        f"N={len(y)}  X {x_bytes / MIB:.1f} MiB ({X.dtype})  "
        f"float32 copy {working_bytes / MIB:.1f} MiB  "
        f"RSS before fit {baseline / MIB:.1f} MiB  "
        f"peak of all processes {sampler.peak / MIB:.1f} MiB  "
        f"peak above it {above / MIB:.1f} MiB  "
        f"= {above / x_bytes:.1f} x X, {above / working_bytes:.1f} x float32 copy  "
        f"(fit {seconds:.0f} s, {sampler.samples} samples)",
        flush=True,
    )
    save_result(args.out, result)
    return result


def _several_sizes(argv, args):
    results = [_one_size_in_a_fresh_process(argv, n) for n in sorted(args.n)]
    intercept, slope = fixed_and_per_sample(results)
    summary = {
        "sizes": results,
        "fixed_bytes": intercept,
        "bytes_per_image": slope,
    }
    for r in results:
        print(
            f"N={r['n']}: peak of all processes {r['peak_rss_bytes'] / MIB:.0f} MiB "
            f"({r['peak_rss_bytes'] / 2**30:.2f} GiB)"
        )
    print(
        f"fixed {intercept / MIB:.0f} MiB + {1000 * slope / MIB:.1f} MiB per 1,000 "
        "images (line through the peaks)",
        flush=True,
    )
    save_result(args.out, _jsonable(summary))
    return summary


if __name__ == "__main__":
    main()
