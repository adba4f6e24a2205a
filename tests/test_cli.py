"""The command line: filter round trip, refused inputs, demo, bench."""

import os
import subprocess
import sys

import numpy as np
import pytest

from sklearn_ispl import ISPLFilter, benchmark, cli
from sklearn_ispl.cli import main

from .conftest import snapshot_files

TINY_OPTIONS = [
    "--n-runs",
    "1",
    "--n-components",
    "2",
    "--warmup-epochs",
    "1",
    "--epochs-per-iteration",
    "1",
    "--vote-epochs",
    "1",
    "--refine-rounds",
    "1",
    "--refine-epochs",
    "1",
]


def _marker_touch(path):
    """Called only if the test's pickled object were ever unpickled."""
    with open(path, "w") as handle:
        handle.write("unpickled")
    return 0


class _Unpickled:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (_marker_touch, (self.path,))


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory):
    from sklearn_ispl.datasets import load_digits_images

    X, y = load_digits_images()
    rng = np.random.RandomState(0)
    rows = np.sort(rng.choice(len(y), 300, replace=False))
    path = tmp_path_factory.mktemp("npz") / "data.npz"
    np.savez(path, X=X[rows], y=y[rows])
    return path, X[rows], y[rows]


def _exit_code(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    if info.value.code == 2:
        # A user error reads as one line: no usage block, no traceback.
        assert err.count("\n") == 1 and err.endswith("\n"), err
    return info.value.code, err


@pytest.fixture
def fake_fit(monkeypatch):
    """Replace training by a stand-in; returns the settings of the fits it saw.

    The real ``fit`` validates the parameters and the data and resolves the
    schedule, nested settings included; only the training is replaced, and
    every other sample is kept.
    """
    fits = []

    def fit(self, data):
        self._resolve(data)
        fits.append(self.get_params())
        n_samples = len(data)
        return np.arange(n_samples) % 2 == 0, np.linspace(0.0, 1.0, n_samples)

    monkeypatch.setattr(ISPLFilter, "_fit_filter", fit)
    return fits


@pytest.fixture
def data_file(tmp_path):
    """A small input file of the test's own, safe to point outputs at."""
    path = tmp_path / "data.npz"
    rng = np.random.RandomState(0)
    np.savez(path, X=rng.rand(12, 8, 8), y=np.arange(12) % 3)
    return path


class TestFilter:
    def test_round_trip(self, small_npz, tmp_path, capsys):
        path, X, y = small_npz
        out = tmp_path / "clean.npz"
        assert main(["filter", str(path), "-o", str(out), *TINY_OPTIONS]) == 0
        printed = capsys.readouterr().out
        assert "kept" in printed and str(out) in printed
        with np.load(out, allow_pickle=False) as result:
            keep = result["keep_mask"]
            assert keep.dtype == bool and keep.shape == y.shape
            np.testing.assert_array_equal(result["X"], X[keep])
            np.testing.assert_array_equal(result["y"], y[keep])
            assert result["scores"].shape == y.shape
        assert f"kept {keep.sum()} of {len(y)}" in printed

    def test_flat_rows_with_image_shape(self, small_npz, tmp_path, capsys):
        _, X, y = small_npz
        flat = tmp_path / "flat.npz"
        np.savez(flat, X=X.reshape(len(X), -1), y=y)
        out = tmp_path / "out"  # no .npz suffix: written as given
        argv = ["filter", str(flat), "-o", str(out), "--image-shape", "8", "8"]
        assert main([*argv, *TINY_OPTIONS]) == 0
        with np.load(out) as result:
            assert result["X"].shape[1] == 64
            np.testing.assert_array_equal(result["y"], y[result["keep_mask"]])

    def test_pickled_objects_are_refused(self, tmp_path, capsys):
        marker = tmp_path / "marker"
        path = tmp_path / "evil.npz"
        objects = np.empty(4, dtype=object)
        objects[:] = [_Unpickled(str(marker)) for _ in range(4)]
        np.savez(path, X=objects, y=np.arange(4))
        code, err = _exit_code(["filter", str(path), "-o", str(tmp_path / "o")], capsys)
        assert code == 2
        assert "pickled" in err
        assert not marker.exists()
        assert not (tmp_path / "o").exists()

    @pytest.mark.parametrize(
        "arrays, message",
        [
            ({"X": np.zeros((5, 8, 8))}, "no array 'y'"),
            ({"images": np.zeros((5, 8, 8)), "labels": np.zeros(5)}, "found"),
            ({"X": np.zeros((5, 8, 8)), "y": np.zeros((5, 2))}, "1-D"),
            ({"X": np.zeros((5, 8, 8)), "y": np.zeros(4)}, "different numbers"),
            ({"X": np.zeros(5), "y": np.zeros(5)}, "2 to 4 dimensions"),
            ({"X": np.array(["a"] * 5), "y": np.zeros(5)}, "2 to 4 dimensions"),
        ],
    )
    def test_bad_arrays(self, tmp_path, capsys, arrays, message):
        path = tmp_path / "bad.npz"
        np.savez(path, **arrays)
        code, err = _exit_code(["filter", str(path), "-o", str(tmp_path / "o")], capsys)
        assert code == 2 and message in err

    def test_bad_files_and_options(self, small_npz, tmp_path, capsys):
        path, X, y = small_npz
        out = str(tmp_path / "o.npz")
        cases = [
            (["filter", str(tmp_path / "missing.npz"), "-o", out], "no such file"),
            (["filter", str(path)], "required"),
            (["filter", str(path), "-o", out, "--n-runs", "two"], "invalid int"),
            (["filter", str(path), "-o", out, "--image-shape", "8", "8"], "flat"),
            (["filter", str(path), "-o", str(tmp_path / "no/dir/o.npz")], "folder"),
            (["filter", str(path), "-o", out, "--schedule", "huge"], "--schedule"),
            (["filter", str(path), "-o", out, "--n-runs", "0"], "--n-runs"),
            (["filter", str(path), "-o", out, "--threads", "0"], "--threads"),
            (["bench", "--threads", "-2"], "--threads must be at least 1"),
            ([], "required"),
            (["bench", "--profile", "huge"], "Unknown profile"),
            (["bench", "--defenses", "magic"], "Unknown defense"),
            (["bench", "--scenarios", "99"], "out of range"),
            (["bench", "--defense-params", "ispl={oops"], "JSON"),
            (["bench", "--defense-params", "ispl"], "NAME=SETTINGS"),
            (["bench", "--final-seeds", "0"], "--final-seeds must be at least 1"),
        ]
        not_npz = tmp_path / "array.npy"
        np.save(not_npz, X)
        cases.append((["filter", str(not_npz), "-o", out], "single array"))
        text = tmp_path / "text.npz"
        text.write_text("hello")
        cases.append((["filter", str(text), "-o", out], "text.npz"))
        flat = tmp_path / "flat.npz"
        np.savez(flat, X=X.reshape(len(X), -1), y=y)
        cases.append(
            (["filter", str(flat), "-o", out, "--image-shape", "7", "7"], "49 values")
        )
        for argv, message in cases:
            code, err = _exit_code(argv, capsys)
            assert code == 2, argv
            assert message in err, (argv, err)


class TestFilterOutput:
    """The filter never destroys a file: not the input, not an old output."""

    def test_existing_output_needs_overwrite(self, data_file, fake_fit, capsys):
        out = data_file.parent / "out.npz"
        out.write_bytes(b"earlier results")
        code, err = _exit_code(["filter", str(data_file), "-o", str(out)], capsys)
        assert code == 2 and "--overwrite" in err
        assert out.read_bytes() == b"earlier results"
        assert fake_fit == []  # refused before any training

    def test_overwrite_replaces_the_output(self, data_file, fake_fit, capsys):
        out = data_file.parent / "out.npz"
        out.write_bytes(b"earlier results")
        out.chmod(0o640)
        argv = ["filter", str(data_file), "-o", str(out), "--overwrite"]
        assert main(argv) == 0
        with np.load(out) as result:
            np.testing.assert_array_equal(result["keep_mask"], np.arange(12) % 2 == 0)
        assert out.stat().st_mode & 0o777 == 0o640
        assert sorted(p.name for p in data_file.parent.iterdir()) == [
            "data.npz",
            "out.npz",
        ]

    def test_new_output_has_the_usual_permissions(self, data_file, fake_fit):
        out = data_file.parent / "new.npz"
        assert main(["filter", str(data_file), "-o", str(out)]) == 0
        umask = os.umask(0)
        os.umask(umask)
        # Not the 0o600 of a temporary file.
        assert out.stat().st_mode & 0o777 == 0o666 & ~umask

    @pytest.mark.parametrize("overwrite", [False, True])
    @pytest.mark.parametrize(
        "spelling", ["same", "dotted", "parent", "relative", "symlink", "hardlink"]
    )
    def test_never_writes_over_the_input(
        self, data_file, fake_fit, capsys, monkeypatch, spelling, overwrite
    ):
        folder = data_file.parent
        if spelling == "same":
            out = str(data_file)
        elif spelling == "dotted":
            out = f"{folder}/./data.npz"
        elif spelling == "parent":
            (folder / "sub").mkdir()
            out = f"{folder}/sub/../data.npz"
        elif spelling == "relative":
            monkeypatch.chdir(folder)
            out = "data.npz"
        elif spelling == "symlink":
            out = str(folder / "link.npz")
            os.symlink(data_file, out)
        else:
            out = str(folder / "hard.npz")
            os.link(data_file, out)
        before = snapshot_files(folder)
        argv = ["filter", str(data_file), "-o", out]
        code, err = _exit_code(argv + ["--overwrite"] * overwrite, capsys)
        assert code == 2 and "input" in err
        assert snapshot_files(folder) == before
        assert fake_fit == []

    def test_symlinked_output_stays_a_link(self, data_file, fake_fit):
        folder = data_file.parent
        target = folder / "results.npz"
        target.write_bytes(b"earlier results")
        link = folder / "latest.npz"
        link.symlink_to(target)
        assert main(["filter", str(data_file), "-o", str(link), "--overwrite"]) == 0
        assert link.is_symlink() and link.resolve() == target
        with np.load(target) as result:
            assert result["scores"].shape == (12,)

    @pytest.mark.parametrize("overwrite", [False, True])
    def test_output_must_be_a_regular_file(
        self, data_file, fake_fit, capsys, overwrite
    ):
        before = snapshot_files(data_file.parent)
        flag = ["--overwrite"] * overwrite
        for out, message in [
            (str(data_file.parent), "folder"),
            ("/dev/null", "not a regular file"),
        ]:
            code, err = _exit_code(["filter", str(data_file), "-o", out, *flag], capsys)
            assert code == 2 and message in err and "--output" in err
        assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
        assert snapshot_files(data_file.parent) == before
        assert fake_fit == []

    def test_output_folder_must_be_writable(
        self, data_file, fake_fit, capsys, monkeypatch
    ):
        # Simulated: a test run as root may write anywhere.
        folder = data_file.parent / "readonly"
        folder.mkdir()
        real_access = os.access

        def access(path, mode, **kwargs):
            if os.fspath(path) == os.fspath(folder) and mode & os.W_OK:
                return False
            return real_access(path, mode, **kwargs)

        monkeypatch.setattr(os, "access", access)
        argv = ["filter", str(data_file), "-o", str(folder / "out.npz")]
        code, err = _exit_code(argv, capsys)
        assert code == 2 and "not writable" in err
        assert fake_fit == [] and list(folder.iterdir()) == []

    @pytest.mark.parametrize("error", [KeyboardInterrupt, OSError])
    def test_interrupted_write_keeps_the_old_output(
        self, data_file, fake_fit, capsys, monkeypatch, error
    ):
        out = data_file.parent / "out.npz"
        out.write_bytes(b"earlier results")

        def savez(file, **arrays):
            file.write(b"PK\x03\x04 half an archive")
            raise error(28, "No space left on device")

        monkeypatch.setattr(np, "savez", savez)
        argv = ["filter", str(data_file), "-o", str(out), "--overwrite"]
        if error is KeyboardInterrupt:
            with pytest.raises(KeyboardInterrupt):
                main(argv)
        else:
            code, err = _exit_code(argv, capsys)
            assert code == 2 and "No space left" in err
        assert out.read_bytes() == b"earlier results"
        # No temporary file left behind.
        assert sorted(p.name for p in data_file.parent.iterdir()) == [
            "data.npz",
            "out.npz",
        ]


class TestOptionValues:
    """Bad option values: one line naming the option, before any training."""

    @pytest.mark.parametrize(
        "option, value",
        [
            ("--vote-epochs", "0"),
            ("--voting", "bogus"),
            ("--min-votes", "0"),
            ("--n-runs", "-1"),
            ("--n-components", "0"),
            ("--warmup-epochs", "-1"),
            ("--epochs-per-iteration", "0"),
            ("--expansion", "2"),
            ("--expansion", "0"),
            ("--expansion", "nan"),
            ("--momentum", "1"),
            ("--class-floor", "inf"),
            ("--refine-rounds", "-1"),
            ("--refine-epochs", "0"),
            ("--refine-momentum", "-0.5"),
            ("--n-jobs", "0"),
            ("--seed", "-1"),
            ("--seed", str(2**32)),
            ("--device", "cuda:x"),
            ("--device", "cuda:-1"),
            ("--device", "gpu"),
            ("--device", ""),
        ],
    )
    def test_refused_before_training(self, data_file, fake_fit, capsys, option, value):
        out = data_file.parent / "out.npz"
        argv = ["filter", str(data_file), "-o", str(out), f"{option}={value}"]
        code, err = _exit_code(argv, capsys)
        assert code == 2 and option in err, err
        assert fake_fit == [] and not out.exists()

    @pytest.mark.parametrize("voting", ["sample", "component", "competent"])
    def test_every_voting_is_accepted(self, data_file, fake_fit, voting):
        out = data_file.parent / "out.npz"
        assert main(["filter", str(data_file), "-o", str(out), "--voting", voting]) == 0
        assert fake_fit[0]["voter__voting"] == voting

    def test_help_lists_every_voting(self, capsys):
        with pytest.raises(SystemExit) as info:
            main(["filter", "--help"])
        assert info.value.code == 0
        help_text = " ".join(capsys.readouterr().out.split())
        assert "'sample' (default), 'component' or 'competent'" in help_text

    @pytest.mark.parametrize(
        "device, available, count, mps",
        [
            ("cuda", False, 0, False),
            ("cuda:0", False, 0, False),
            ("cuda:1", True, 1, False),
            ("mps", False, 0, False),
        ],
    )
    def test_unavailable_device(
        self, data_file, fake_fit, capsys, monkeypatch, device, available, count, mps
    ):
        import torch

        monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
        out = data_file.parent / "out.npz"
        argv = ["filter", str(data_file), "-o", str(out), "--device", device]
        code, err = _exit_code(argv, capsys)
        assert code == 2 and "--device" in err
        assert fake_fit == [] and not out.exists()

    def test_available_device_is_passed_on(self, data_file, fake_fit, monkeypatch):
        import torch

        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
        out = data_file.parent / "out.npz"
        argv = ["filter", str(data_file), "-o", str(out), "--device", "cuda:1"]
        assert main(argv) == 0
        assert fake_fit[0]["device"] == "cuda:1"

    @pytest.mark.parametrize("error", [ValueError, TypeError])
    def test_library_errors_are_one_line(self, data_file, capsys, monkeypatch, error):
        def fit(self, X, y, **fit_params):
            raise error("n_components=8 needs\nat least 8 samples")

        monkeypatch.setattr(ISPLFilter, "fit", fit)
        out = data_file.parent / "out.npz"
        code, err = _exit_code(["filter", str(data_file), "-o", str(out)], capsys)
        assert code == 2 and "needs at least 8 samples" in err
        assert not out.exists()

    def test_other_commands(self, tmp_path, capsys):
        a_file = tmp_path / "file"
        a_file.write_text("not a folder")
        cases = [
            (["demo", "--seed", "-1"], "--seed"),
            (["demo", "--n-jobs", "0"], "--n-jobs"),
            (["bench", "--n-jobs", "0", "--list"], "--n-jobs"),
            (["bench", "--device", "cuda:x", "--list"], "--device"),
            (["bench", "--defenses", "none", "--out", str(a_file)], "--out"),
        ]
        for argv, option in cases:
            code, err = _exit_code(argv, capsys)
            assert code == 2 and option in err, (argv, err)
        assert a_file.read_text() == "not a folder"


_TINY_SCHEDULE = {
    "n_runs": 1,
    "n_components": 2,
    "warmup_epochs": 1,
    "epochs_per_iteration": 1,
    "voter": {"n_epochs": 1},
    "refiner": {"n_rounds": 1, "n_epochs": 1},
}


def test_demo_runs_the_default_filter(monkeypatch, capsys):
    import sklearn_ispl

    # The demo's digits resolve to the "small" schedule; shrink it.
    small = {**sklearn_ispl.SCHEDULES["small"], **_TINY_SCHEDULE}
    monkeypatch.setitem(sklearn_ispl.SCHEDULES, "small", small)
    monkeypatch.setattr(cli, "DEMO_FINAL_EPOCHS", 1)
    seen = []
    real_fit = sklearn_ispl.ISPLFilter.fit

    def fit(self, X, y, **kwargs):
        seen.append(self)
        return real_fit(self, X, y, **kwargs)

    monkeypatch.setattr(sklearn_ispl.ISPLFilter, "fit", fit)
    assert main(["demo", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "ISPLFilter removed" in out
    for row in ("no defense", "ISPLFilter (kept samples)", "clean samples only"):
        assert row in out
    assert out.count("%") >= 7
    (ispl,) = seen
    # Nothing but the run's seed, jobs and verbosity differs from ISPLFilter().
    changed = {
        k
        for k, v in ispl.get_params(deep=False).items()
        if v != sklearn_ispl.ISPLFilter().get_params(deep=False)[k]
    }
    assert changed <= {"random_state", "n_jobs", "verbose"}
    assert ispl.schedule_["schedule"] == "small"


def test_schedule_option_takes_every_schedule_name(capsys):
    import sklearn_ispl

    parser = cli._build_parser()
    for command in ("filter", "demo"):
        args = parser.parse_args(
            [command, "x.npz", "-o", "y.npz"] if command == "filter" else [command]
        )
        assert args.schedule == "auto"
    code, err = _exit_code(["demo", "--schedule", "fastest"], capsys)
    assert code == 2 and "--schedule" in err
    for name in sklearn_ispl.SCHEDULES:
        assert parser.parse_args(["demo", "--schedule", name]).schedule == name


def test_bench_list(capsys):
    assert main(["bench", "--profile", "quick", "--list"]) == 0
    out = capsys.readouterr().out
    assert out.count("-e05") == 8 and "isplfilter" in out


@pytest.fixture
def restore_torch_threads():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_threads_option_sets_the_budget(restore_torch_threads, capsys):
    import torch

    torch.set_num_threads(2)
    assert main(["bench", "--profile", "quick", "--list", "--threads", "1"]) == 0
    assert torch.get_num_threads() == 1
    assert main(["bench", "--profile", "quick", "--list"]) == 0
    assert torch.get_num_threads() == 1  # no option: left as it was


def test_bench_no_defense(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(
        benchmark.PROFILES, "smoke", benchmark.get_profile("smoke", final_epochs=1)
    )
    argv = ["bench", "--out", str(tmp_path), "--scenarios", "5", "--defenses", "none"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "[05-s1t3-e20]" in out and "No defense: ASR < 1%" in out
    assert (tmp_path / "results.md").exists()
    assert main([*argv, "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    log = (tmp_path / "benchmark.log").read_text()
    assert "done already; skipped" in log


def test_python_m_help():
    result = subprocess.run(
        [sys.executable, "-m", "sklearn_ispl", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0
    for command in ("demo", "filter", "bench"):
        assert command in result.stdout
