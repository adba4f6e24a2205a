"""Fuzzed command lines: ``sklearn-ispl filter`` never destroys a file.

The contract checked for each generated command line: the run either exits
with status 2 after a one-line message on stderr, before any training, with
every file that existed left byte-for-byte as it was and no file added; or,
when every option value and the output path are valid, it returns 0 and
writes the output, changing no other file.

Training is replaced by a stand-in that validates the parameters as the
filter does (the voter's too) and keeps every other sample, so that an
example takes milliseconds. ``--threads`` is left out: it changes torch's
process-wide thread count.
"""

import contextlib
import io
import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sklearn_ispl import ISPLFilter
from sklearn_ispl.cli import main

from .conftest import snapshot_files

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

N_SAMPLES = 12
OLD_BYTES = b"results of an earlier run"

# -- option values and whether the filter must accept them ------------------


def _at_least(low):
    return lambda value: isinstance(value, int) and value >= low


def _in(low, high, low_closed, high_closed):
    def valid(value):
        return (
            isinstance(value, float)
            and math.isfinite(value)
            and (low <= value if low_closed else low < value)
            and (value <= high if high_closed else value < high)
        )

    return valid


def _device_ok(text):
    if text == "cpu":
        return True
    if text == "mps":
        return torch.backends.mps.is_available()
    match = re.fullmatch(r"cuda(?::(0|[1-9][0-9]*))?", text)
    return (
        match is not None
        and torch.cuda.is_available()
        and int(match.group(1) or 0) < torch.cuda.device_count()
    )


INT_OPTIONS = {
    "--n-runs": _at_least(1),
    "--n-components": _at_least(1),
    "--warmup-epochs": _at_least(0),
    "--epochs-per-iteration": _at_least(1),
    "--vote-epochs": _at_least(1),
    "--min-votes": _at_least(1),
    "--refine-rounds": _at_least(0),
    "--refine-epochs": _at_least(1),
    "--n-jobs": lambda value: isinstance(value, int) and value != 0,
    "--seed": lambda value: isinstance(value, int) and 0 <= value < 2**32,
}
FLOAT_OPTIONS = {
    "--expansion": _in(0, 1, False, True),
    "--momentum": _in(0, 1, True, False),
    "--class-floor": _in(0, 1, True, True),
    "--refine-momentum": _in(0, 1, True, False),
}
TEXT_OPTIONS = {
    "--voting": lambda value: value in ("sample", "component", "competent"),
    "--device": _device_ok,
}
VALIDITY = {**INT_OPTIONS, **FLOAT_OPTIONS, **TEXT_OPTIONS}

# Not numbers at all, for either kind.
JUNK = st.sampled_from(["", "two", "0x10", "1,5", "--", "None"])
INTS = st.one_of(st.integers(-3, 5), st.integers(), JUNK)
FLOATS = st.one_of(st.floats(), st.floats(-0.5, 1.5), st.integers(-2, 2), JUNK)
TEXTS = {
    "--voting": st.one_of(
        st.sampled_from(["sample", "component", "competent", "Sample", "vote"]),
        st.text(max_size=8),
    ),
    "--device": st.one_of(
        st.sampled_from(
            ["cpu", "cuda", "cuda:0", "cuda:1", "cuda:01", "cuda:x", "mps", "gpu"]
        ),
        st.text(max_size=8),
    ),
}
OPTION_VALUES = st.fixed_dictionaries(
    {},
    optional={
        **{option: INTS for option in INT_OPTIONS},
        **{option: FLOATS for option in FLOAT_OPTIONS},
        **TEXTS,
    },
)
# Values the filter accepts, so that runs that fail do so for the path.
VALID_VALUES = st.fixed_dictionaries(
    {},
    optional={
        "--n-runs": st.integers(1, 4),
        "--vote-epochs": st.integers(1, 4),
        "--expansion": st.floats(0.01, 1.0),
        "--voting": st.sampled_from(["sample", "component", "competent"]),
        "--n-jobs": st.sampled_from([-1, 1, 2]),
        "--device": st.just("cpu"),
    },
)


def _parsed(option, value):
    """``value`` as the command line reads it; None when it cannot."""
    if option in TEXT_OPTIONS:
        return value
    text = value if isinstance(value, str) else repr(value)
    try:
        return int(text) if option in INT_OPTIONS else float(text)
    except ValueError:
        return None


def _valid_values(values):
    return all(VALIDITY[opt](_parsed(opt, value)) for opt, value in values.items())


# -- output paths -----------------------------------------------------------

OUTPUTS = [
    "new",
    "existing",
    "existing-link",
    "broken-link",
    "folder",
    "input",
    "input-dotted",
    "input-symlink",
    "input-hardlink",
    "missing-folder",
    "dev-null",
]


def _makesnapshot_files(folder):
    """The input, an earlier output, a folder and links; returns the input."""
    source = folder / "data.npz"
    rng = np.random.RandomState(0)
    np.savez(source, X=rng.rand(N_SAMPLES, 8, 8), y=np.arange(N_SAMPLES) % 3)
    (folder / "old.npz").write_bytes(OLD_BYTES)
    (folder / "results").mkdir()
    (folder / "results" / "keep.txt").write_text("kept")
    (folder / "latest.npz").symlink_to(folder / "old.npz")
    (folder / "dangling.npz").symlink_to(folder / "gone" / "x.npz")
    return source


def _output(kind, folder, source):
    """The ``-o`` path, the file it would write, and whether writing is valid."""
    if kind == "new":
        return folder / "new.npz", folder / "new.npz", None
    if kind == "existing":
        return folder / "old.npz", folder / "old.npz", "overwrite"
    if kind == "existing-link":
        return folder / "latest.npz", folder / "old.npz", "overwrite"
    if kind == "broken-link":
        # Its target's folder does not exist.
        return folder / "dangling.npz", None, False
    if kind == "folder":
        return folder / "results", None, False
    if kind == "input":
        return source, None, False
    if kind == "input-dotted":
        return Path(f"{folder}/results/../data.npz"), None, False
    if kind == "input-symlink":
        (folder / "alias.npz").symlink_to(source)
        return folder / "alias.npz", None, False
    if kind == "input-hardlink":
        os.link(source, folder / "hard.npz")
        return folder / "hard.npz", None, False
    if kind == "missing-folder":
        return folder / "nope" / "out.npz", None, False
    return Path("/dev/null"), None, False


def _fake_fit(fits):
    def fit(self, data):
        # The real fit validates and resolves every setting first: invalid
        # values still raise; only the training is replaced.
        self._resolve(data)
        fits.append(self)
        return np.arange(len(data)) % 2 == 0, np.linspace(0.0, 1.0, len(data))

    return fit


def _run(values, output_kind, overwrite):
    """Run ``filter`` in a fresh folder and check the contract."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        source = _makesnapshot_files(folder)
        out, target, writable = _output(output_kind, folder, source)
        before = snapshot_files(folder)
        null_before = os.stat("/dev/null").st_rdev
        argv = ["filter", str(source), "-o", str(out)]
        argv += [
            f"{option}={value if isinstance(value, str) else repr(value)}"
            for option, value in values.items()
        ]
        argv += ["--overwrite"] * overwrite
        if writable == "overwrite":
            writable = overwrite
        elif writable is None:
            writable = True
        valid = writable and _valid_values(values)

        fits = []
        stdout, stderr = io.StringIO(), io.StringIO()
        with (
            pytest.MonkeyPatch.context() as patch,
            contextlib.redirect_stdout(stdout),
            contextlib.redirect_stderr(stderr),
        ):
            patch.setattr(ISPLFilter, "_fit_filter", _fake_fit(fits))
            try:
                status = main(argv)
            except SystemExit as exc:
                status = exc.code
        err = stderr.getvalue()
        after = snapshot_files(folder)
        assert os.stat("/dev/null").st_rdev == null_before

        if not valid:
            assert status == 2, (argv, err)
            assert err.count("\n") == 1 and err.endswith("\n"), err
            assert err.startswith("sklearn-ispl filter: error: "), err
            assert fits == [], argv  # refused before training
            assert after == before, argv
            return
        assert status == 0, (argv, err)
        assert err == ""
        assert len(fits) == 1
        changed = {path for path in after if after[path] != before.get(path)}
        assert changed == {str(target)}, (argv, changed)
        assert set(after) == set(before) | {str(target)}
        with np.load(target, allow_pickle=False) as result:
            keep = np.arange(N_SAMPLES) % 2 == 0
            np.testing.assert_array_equal(result["keep_mask"], keep)
            assert result["X"].shape == (keep.sum(), 8, 8)


@FUZZ
@given(
    values=OPTION_VALUES,
    output_kind=st.sampled_from(["new", "existing", "input", "folder"]),
    overwrite=st.booleans(),
)
def test_option_values(values, output_kind, overwrite):
    _run(values, output_kind, overwrite)


@FUZZ
@given(
    values=VALID_VALUES,
    output_kind=st.sampled_from(OUTPUTS),
    overwrite=st.booleans(),
)
def test_output_paths(values, output_kind, overwrite):
    _run(values, output_kind, overwrite)
