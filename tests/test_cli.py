"""The command line: filter round trip, refused inputs, demo, bench."""

import subprocess
import sys

import numpy as np
import pytest

from sklearn_ispl import benchmark, cli
from sklearn_ispl.cli import main

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
    return info.value.code, capsys.readouterr().err


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
            (["filter", str(path), "-o", out, "--preset", "huge"], "--preset"),
            (["filter", str(path), "-o", out, "--n-runs", "0"], "n_runs"),
            (["filter", str(path), "-o", out, "--threads", "0"], "--threads"),
            (["bench", "--threads", "-2"], "--threads must be at least 1"),
            ([], "required"),
            (["bench", "--profile", "huge"], "Unknown profile"),
            (["bench", "--defenses", "magic"], "Unknown defense"),
            (["bench", "--scenarios", "99"], "out of range"),
            (["bench", "--defense-params", "ispl={oops"], "JSON"),
            (["bench", "--defense-params", "ispl"], "NAME=SETTINGS"),
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


def test_demo_with_tiny_settings(monkeypatch, capsys):
    monkeypatch.setattr(
        cli,
        "DEMO_FILTER_PARAMS",
        {
            "n_runs": 1,
            "n_components": 2,
            "warmup_epochs": 1,
            "epochs_per_iteration": 1,
            "voter__n_epochs": 1,
            "refine_rounds": 1,
            "refine_epochs": 1,
        },
    )
    monkeypatch.setattr(cli, "DEMO_FINAL_EPOCHS", 1)
    assert main(["demo", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "ISPLFilter removed" in out
    for row in ("no defense", "ISPLFilter (kept samples)", "clean samples only"):
        assert row in out
    assert out.count("%") >= 7


def test_demo_defaults_are_the_documented_ones():
    assert cli.DEMO_FILTER_PARAMS == benchmark.ISPL_PRESETS["digits"]


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
