"""The results file: JSON-ready values, atomic writes, run records, resume."""

import json
import os
import platform
import subprocess
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .._learners import native_bfloat16
from ._defenses import parse_defense_params

#: Version of the layout of ``results.json``. A file of the robust suite
#: says so under ``"suite"``; one without that key holds the paper suite.
RESULTS_FORMAT = 1


def _jsonable(value):
    """Turn settings (possibly holding estimators) into JSON-ready values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "get_params"):
        return {
            "estimator": type(value).__name__,
            # skorch keeps private bookkeeping (a set, ordered differently
            # per process) among its params; it is not a setting.
            "params": _jsonable(
                {
                    k: v
                    for k, v in value.get_params(deep=False).items()
                    if not k.startswith("_")
                }
            ),
        }
    if isinstance(value, type):
        return value.__name__
    return repr(value)


def _write_json_atomic(path, data):
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1, allow_nan=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


RESULTS_DIR = "benchmarks/results/"


def _git_commit():
    """HEAD and dirtiness of the checkout this package runs from.

    (None, None) when the package is not inside a git checkout of its own
    sources, e.g. installed into a site-packages folder that happens to lie
    in some other repository (pyenv's, say): that repository's HEAD would say
    nothing about the code that ran. Changes under ``benchmarks/results/``
    do not count as dirty.
    """
    here = Path(__file__).resolve().parent

    def git(*args):
        return subprocess.run(
            ["git", *args],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()

    try:
        tracked = git("ls-files", "--", "_runner.py")
        if not tracked:
            return None, None
        head = git("rev-parse", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no").splitlines()
        # Result files of earlier runs (tracked, and rewritten by the run
        # itself or by a log redirect) say nothing about the code that ran.
        dirty = [
            line
            for line in changed
            if not line.split(None, 1)[-1].startswith(RESULTS_DIR)
        ]
    except (OSError, subprocess.SubprocessError):
        return None, None
    return head or None, bool(dirty)


def _machine(device):
    import sklearn
    import torch

    info = {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "torch": torch.__version__,
        "device": device,
        "cpu_model": _cpu_model(),
        # Whether the weak learners' ``precision="auto"`` ran in bfloat16,
        # which changes the defense's cost beside the float32 final
        # classifier: speed ratios from two machines compare only with it.
        "native_bfloat16": _bfloat16(device),
    }
    if hasattr(os, "getloadavg"):
        # Timings on a shared machine mean little without its load.
        info["load_average_at_start"] = [round(v, 2) for v in os.getloadavg()]
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _bfloat16(device):
    """Whether ``device`` computes bfloat16 natively; None for a CUDA device
    this machine lacks."""
    kind = str(device).split(":", 1)[0]
    if kind == "cuda":
        import torch

        if not torch.cuda.is_available():
            return None
    return native_bfloat16(kind)


def _cpu_model():
    """The processor's name as the operating system reports it, or None."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _profile_record(profile):
    record = _jsonable(asdict(profile))
    record["defense_params"] = {
        key: _jsonable(
            parse_defense_params(value, key) if key == "isplfilter" else value
        )
        for key, value in profile.defense_params.items()
    }
    return record


# Profile fields that define what is measured: a results file made with other
# values cannot be resumed.
_DATA_FIELDS = (
    "dataset",
    "n_train",
    "n_test",
    "test_size",
    "max_value",
    "min_contrast",
    "final_epochs",
    "final_params",
    "final_seeds",
    "seed",
)


def _suite(results):
    """The suite a results dict holds (files of the paper suite do not say)."""
    return results.get("suite", "paper")


def _load_results(path, profile, suite="paper"):
    if not path.exists():
        return None
    try:
        results = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"{path} exists but cannot be read ({exc}); move it away or choose "
            "another output folder."
        ) from None
    # Files written before the profile had final_seeds trained once.
    stored = {"final_seeds": 1, **results.get("profile", {})}
    current = _profile_record(profile)
    changed = [k for k in _DATA_FIELDS if stored.get(k) != current.get(k)]
    if results.get("format") != RESULTS_FORMAT or changed:
        raise ValueError(
            f"{path} holds results of other settings ({', '.join(changed) or 'format'}"
            " differ); choose another output folder to start afresh."
        )
    if _suite(results) != suite:
        raise ValueError(
            f"{path} holds results of the {_suite(results)} suite, not the {suite} "
            "suite; choose another output folder."
        )
    return results
