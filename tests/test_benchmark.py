"""The benchmark harness: scenarios, settings, an end-to-end run and resume."""

import json

import numpy as np
import pytest
from sklearn.base import BaseEstimator

import sklearn_ispl
from sklearn_ispl import benchmark
from sklearn_ispl.benchmark import (
    DEFENSES,
    _runner,
    available_defenses,
    benchmark_scenarios,
    compare_results,
    get_profile,
    parse_defense_params,
    results_table,
    run_benchmark,
    select_scenarios,
    summarize,
    write_report,
)
from sklearn_ispl.benchmark._report import _summary_lines

# ISPLFilter settings that run every stage in a second or two.
TINY_ISPL = {
    "n_runs": 1,
    "n_components": 2,
    "warmup_epochs": 1,
    "epochs_per_iteration": 1,
    "voter__n_epochs": 1,
    "refiner__n_rounds": 1,
    "refiner__n_epochs": 1,
}
BASELINES = [spec for spec in DEFENSES if spec.key != "isplfilter"]


class FakeFilter(BaseEstimator):
    """Stands in for a baseline: removes the first tenth of the samples."""

    n_fits = 0

    def __init__(self, share=0.1, random_state=None):
        self.share = share
        self.random_state = random_state

    def fit(self, X, y):
        type(self).n_fits += 1
        keep = np.ones(len(y), dtype=bool)
        keep[: int(self.share * len(y))] = False
        self.keep_mask_ = keep
        return self


def tiny_profile():
    return get_profile("smoke", final_epochs=2)


@pytest.fixture
def only_fake_baseline(monkeypatch):
    """The package offers ISPLFilter, a fake SS, and none of the others."""
    monkeypatch.setattr(sklearn_ispl, BASELINES[0].class_name, FakeFilter)
    for spec in BASELINES[1:]:
        monkeypatch.delattr(sklearn_ispl, spec.class_name, raising=False)
    monkeypatch.setattr(FakeFilter, "n_fits", 0)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    mp = pytest.MonkeyPatch()
    mp.setattr(sklearn_ispl, BASELINES[0].class_name, FakeFilter)
    for spec in BASELINES[1:]:
        mp.delattr(sklearn_ispl, spec.class_name, raising=False)
    try:
        results = run_benchmark(
            tiny_profile(),
            out,
            scenarios="17",
            defense_params={"isplfilter": TINY_ISPL},
            command="test run",
            progress=False,
        )
    finally:
        mp.undo()
    return out, results


class TestScenarios:
    def test_24_fixed_scenarios(self):
        a = benchmark_scenarios((28, 28))
        b = benchmark_scenarios((28, 28))
        assert len(a) == 24
        assert len({s.id for s in a}) == 24
        assert [s.describe() for s in a] == [s.describe() for s in b]
        pairs = {(s.source, s.target) for s in a}
        assert pairs == set(sklearn_ispl.attacks.PAPER_CLASS_PAIRS)
        assert sorted({s.eps for s in a}) == [0.05, 0.1, 0.2]
        # Scenario i is make_scenario's draw with seed i.
        drawn = sklearn_ispl.attacks.make_scenario(
            (28, 28), a[7].source, a[7].target, a[7].eps, random_state=7
        )
        assert (drawn.trigger, drawn.position, drawn.color) == (
            a[7].attack.trigger,
            a[7].attack.position,
            a[7].attack.color,
        )

    def test_min_contrast_changes_dark_triggers_only(self):
        paper = benchmark_scenarios((28, 28))
        bright = benchmark_scenarios((28, 28), min_contrast=128)
        assert all(s.attack.color >= 128 for s in bright)
        assert any(p.attack.color < 128 for p in paper)

    @pytest.mark.parametrize(
        "selection, expected",
        [
            (None, list(range(24))),
            ("all", list(range(24))),
            ("3", [3]),
            ("0:3,23", [0, 1, 2, 23]),
            ("::12", [0, 12]),
            ("05-s1t3-e20,5", [5]),
            (["1", 2], [1, 2]),
        ],
    )
    def test_select(self, selection, expected):
        scenarios = benchmark_scenarios((8, 8), max_value=16)
        assert [s.index for s in select_scenarios(scenarios, selection)] == expected

    @pytest.mark.parametrize("selection", ["24", "x", "5:5", "00-s9t9-e05"])
    def test_select_rejects(self, selection):
        with pytest.raises(ValueError, match="[Ss]cenario"):
            select_scenarios(benchmark_scenarios((8, 8), max_value=16), selection)


class TestSettings:
    def test_profiles(self):
        assert set(benchmark.PROFILES) == {"smoke", "quick", "full"}
        quick = get_profile("quick")
        assert quick.dataset == "fashion-mnist" and quick.n_train
        assert get_profile("smoke").dataset == "digits"
        assert get_profile("quick", n_train=100).n_train == 100
        with pytest.raises(ValueError, match="Unknown profile"):
            get_profile("huge")
        with pytest.raises(ValueError, match="fields"):
            get_profile("smoke", epochs=3)

    def test_every_profile_builds_every_defense(self):
        for name in benchmark.PROFILES:
            profile = get_profile(name)
            for spec, cls in available_defenses()[0]:
                params = parse_defense_params(
                    profile.defense_params.get(spec.key, {}), spec.key
                )
                for eps in benchmark.EPS_VALUES:
                    est, applied, ignored = benchmark.make_defense(
                        cls, benchmark._for_scenario(params, eps), {}, strict=True
                    )
                    assert not ignored
                    assert est.get_params()  # a valid estimator

    def test_parse_defense_params(self, tmp_path):
        assert parse_defense_params('{"n_runs": 2}') == {"n_runs": 2}
        assert parse_defense_params("medium") == {"schedule": "medium"}
        assert parse_defense_params("auto") == {"schedule": "auto"}
        params = parse_defense_params('{"schedule": "large", "refiner__n_folds": 4}')
        assert params == {"schedule": "large", "refiner__n_folds": 4}
        path = tmp_path / "p.json"
        path.write_text('{"voter__n_epochs": 5}')
        assert parse_defense_params(f"@{path}") == {"voter__n_epochs": 5}
        with pytest.raises(ValueError, match="JSON object"):
            parse_defense_params("[1, 2]")
        with pytest.raises(ValueError, match="schedule"):
            parse_defense_params("fastest")
        with pytest.raises(ValueError, match="Unknown defense"):
            parse_defense_params("{}", "nodefense")

    def test_make_defense_nested_and_strict(self):
        est, applied, _ = benchmark.make_defense(
            sklearn_ispl.ISPLFilter,
            {"n_runs": 2, "voter__n_epochs": 7, "schedule": "medium"},
            {"random_state": 3, "device": "cpu"},
            strict=True,
        )
        assert est.n_runs == 2 and est.schedule == "medium"
        assert est.get_params()["voter__n_epochs"] == 7 and est.voter is None
        assert est.random_state == 3
        assert applied == {"n_runs": 2, "voter__n_epochs": 7, "schedule": "medium"}
        with pytest.raises(ValueError, match="no parameter 'n_rums'"):
            benchmark.make_defense(
                sklearn_ispl.ISPLFilter, {"n_rums": 2}, {}, strict=True
            )
        _, _, ignored = benchmark.make_defense(
            sklearn_ispl.ISPLFilter, {"n_rums": 2}, {}, strict=False
        )
        assert ignored == {"n_rums": 2}

    def test_per_eps(self):
        params = {"removal_rate": {"per_eps": {"0.05": 0.15, "0.2": 0.3}}, "a": 1}
        assert benchmark._for_scenario(params, 0.2) == {"removal_rate": 0.3, "a": 1}
        with pytest.raises(ValueError, match="per_eps"):
            benchmark._for_scenario(params, 0.1)

    def test_available_defenses(self, only_fake_baseline):
        found, missing = available_defenses()
        assert [spec.key for spec, _ in found] == ["isplfilter", BASELINES[0].key]
        assert [spec.key for spec in missing] == [spec.key for spec in BASELINES[1:]]
        found, missing = available_defenses(["ISPL", "isplfilter"])
        assert len(found) == 1 and not missing
        with pytest.raises(ValueError, match="Unknown defense"):
            available_defenses(["magic"])

    def test_every_exported_defense_is_run(self):
        # Every defense class the package exports is found by the harness.
        found, _ = available_defenses()
        found_names = {cls.__name__ for _, cls in found}
        for spec in DEFENSES:
            if hasattr(sklearn_ispl, spec.class_name):
                assert spec.class_name in found_names


class TestEndToEnd:
    def test_files(self, first_run):
        out, _ = first_run
        for name in ("results.json", "results.md", "benchmark.log"):
            assert (out / name).stat().st_size > 0
        matplotlib = pytest.importorskip("matplotlib")
        assert matplotlib
        assert (out / "asr.png").read_bytes()[:4] == b"\x89PNG"

    def test_results_json(self, first_run):
        out, returned = first_run
        results = json.loads((out / "results.json").read_text())
        assert results["scenarios"] == returned["scenarios"]
        run = results["runs"][0]
        assert run["command"] == "test run"
        assert "git_commit" in run
        assert {"cpu_count", "torch"} <= set(run["machine"])
        assert results["profile"]["name"] == "smoke"
        assert results["profile"]["defense_params"]["isplfilter"]["n_runs"] == 1
        assert 0 < results["clean_training"]["C"] <= 1

        (sid, record), *rest = results["scenarios"].items()
        assert sid == "17-s7t4-e20" and not rest
        sc = record["scenario"]
        assert (sc["source"], sc["target"], sc["eps"]) == (7, 4, 0.2)
        assert sc["trigger"] in ("pixel", "ell", "pattern")
        assert isinstance(sc["color"], int | float) and len(sc["position"]) == 2
        assert 0 <= record["M"] <= 1
        assert {"C", "A"} <= set(record["no_defense"])
        assert set(record["defenses"]) == {"isplfilter", BASELINES[0].key}
        for entry in record["defenses"].values():
            assert {"C", "A", "FP", "FN", "seconds"} <= set(entry)
            assert 0 <= entry["FN"] <= record["n_poison"]
        fake = record["defenses"][BASELINES[0].key]
        assert fake["FP"] + (record["n_poison"] - fake["FN"]) == int(
            0.1 * record["n_train"]
        )
        assert set(results["summary"]) == {"no_defense", "isplfilter", BASELINES[0].key}
        assert len(results["notes"]) == len(BASELINES) - 1
        assert "skipped" in results["notes"][0]

    def test_results_md(self, first_run):
        out, _ = first_run
        md = (out / "results.md").read_text()
        header = next(line for line in md.splitlines() if line.startswith("| S / T"))
        columns = [c.strip() for c in header.strip("|").split("|")]
        label = BASELINES[0].label
        assert columns == [
            "S / T",
            "trigger",
            "pos",
            "colour",
            "eps",
            "M",
            "ND C",
            "ND A",
            *[f"ISPL {m}" for m in ("C", "A", "FP", "FN", "s")],
            *[f"{label} {m}" for m in ("C", "A", "FP", "FN", "s")],
        ]
        row = next(line for line in md.splitlines() if line.startswith("| 7 / 4"))
        assert len(row.strip("|").split("|")) == len(columns)
        assert "ASR < 1%" in md and "not in this sklearn_ispl" in md

    def test_resume_skips_finished_work(
        self, first_run, monkeypatch, only_fake_baseline
    ):
        out, first = first_run
        trainings = []
        real_train = _runner._train_final

        def counting(*args):
            trainings.append(args)
            return real_train(*args)

        monkeypatch.setattr(_runner, "_train_final", counting)
        monkeypatch.setattr(
            sklearn_ispl.ISPLFilter,
            "fit",
            lambda *a, **k: pytest.fail("ISPLFilter refitted"),
        )
        again = run_benchmark(
            tiny_profile(),
            out,
            scenarios="17",
            defense_params={"isplfilter": TINY_ISPL},
            progress=False,
        )
        assert trainings == [] and FakeFilter.n_fits == 0
        assert again["scenarios"] == first["scenarios"]
        assert len(again["runs"]) == 2
        assert "done already; skipped" in (out / "benchmark.log").read_text()

    def test_resume_runs_only_what_is_new(
        self, first_run, monkeypatch, only_fake_baseline
    ):
        out, first = first_run
        trainings = []
        real_train = _runner._train_final

        def counting(*args):
            trainings.append(args)
            return real_train(*args)

        monkeypatch.setattr(_runner, "_train_final", counting)
        # The finished scenario and ISPL are skipped; for the new scenario the
        # clean model comes from the cache, only the fake defense runs.
        results = run_benchmark(
            tiny_profile(),
            out,
            scenarios="17,5",
            defenses=["ss"],
            progress=False,
        )
        assert FakeFilter.n_fits == 1
        assert len(trainings) == 2  # no defense + the fake defense, scenario 5
        new = results["scenarios"]["05-s1t3-e20"]
        assert set(new["defenses"]) == {BASELINES[0].key}
        assert results["scenarios"]["17-s7t4-e20"] == first["scenarios"]["17-s7t4-e20"]
        assert "clean model: loaded from cache" in (out / "benchmark.log").read_text()

    def test_changed_settings_are_refused(self, first_run, monkeypatch):
        out, _ = first_run
        with pytest.raises(ValueError, match="separate output folders"):
            run_benchmark(
                tiny_profile(),
                out,
                scenarios="17",
                defenses=["ispl"],
                defense_params={"isplfilter": {**TINY_ISPL, "n_runs": 2}},
                progress=False,
            )
        with pytest.raises(ValueError, match="other settings"):
            run_benchmark(
                get_profile("smoke", final_epochs=3),
                out,
                scenarios="17",
                defenses=["none"],
                progress=False,
            )


def test_defense_error_is_recorded(tmp_path, monkeypatch):
    class Broken(FakeFilter):
        def fit(self, X, y):
            raise RuntimeError("boom")

    monkeypatch.setattr(sklearn_ispl, BASELINES[0].class_name, Broken)
    monkeypatch.setattr(_runner, "_train_final", _fake_train)
    results = run_benchmark(
        tiny_profile(), tmp_path, scenarios="5", defenses=["ss"], progress=False
    )
    entry = results["scenarios"]["05-s1t3-e20"]["defenses"][BASELINES[0].key]
    assert entry["error"] == "RuntimeError: boom"
    assert "error" in results_table(results)
    assert summarize(results)[BASELINES[0].key]["n_errors"] == 1


class _ConstantModel:
    def predict(self, X):
        return np.zeros(len(X), dtype=np.int64)

    def save(self, path):
        open(path, "wb").close()


def _fake_train(factory, X, y):
    return _ConstantModel()


def _two_scenarios():
    return {
        "clean_training": {"C": 0.9},
        "scenarios": {
            f"{i:02d}": {
                "scenario": {
                    "index": i,
                    "source": 0,
                    "target": 1,
                    "trigger": "pixel",
                    "position": [3, 3],
                    "color": 255,
                    "eps": 0.1,
                },
                "n_train": 110,
                "n_poison": 10,
                "no_defense": {"C": 0.9, "A": 0.5},
                "defenses": {
                    "isplfilter": {"C": c, "A": a, "FP": 10, "FN": fn, "seconds": 2.0}
                },
            }
            for i, (c, a, fn) in enumerate([(0.85, 0.0, 0), (0.8, 0.2, 5)])
        },
    }


def test_summarize_by_hand():
    results = _two_scenarios()
    s = summarize(results)
    assert s["isplfilter"]["n_asr_below_1pct"] == 1
    assert s["isplfilter"]["mean_clean_drop_points"] == pytest.approx(7.5)
    assert s["isplfilter"]["mean_fp_share"] == pytest.approx(0.1)
    assert s["isplfilter"]["mean_fn_share"] == pytest.approx(0.25)
    assert s["no_defense"]["n_asr_below_1pct"] == 0


def test_compare_results_on_the_common_scenarios():
    fast = _two_scenarios()
    paper = _two_scenarios()
    # The paper run finished only scenario 01, where it defends and keeps
    # more clean samples; the fast run's scenario 00 is left out.
    del paper["scenarios"]["00"]
    paper["scenarios"]["01"]["defenses"]["isplfilter"].update(A=0.0, C=0.88, FP=5)
    for run in (fast, paper):
        run["profile"] = {"dataset": "fashion-mnist", "n_train": 110}
    md = compare_results({"paper": paper, "fast": fast})
    rows = [line for line in md.splitlines() if line.startswith("| 0")]
    assert [row.split(" | ")[0] for row in rows] == ["| 01"]
    assert rows[0].split(" | ")[1:4] == ["50.0", "88.0", "0.0"]
    summary = {line.split(" | ")[0]: line for line in md.splitlines()}
    assert summary["| paper"].split(" | ")[1:3] == ["1/1", "0.0"]
    assert summary["| fast"].split(" | ")[1:3] == ["0/1", "20.0"]
    assert summary["| paper"].split(" | ")[3] == "2.0"  # 90 - 88 points
    assert summary["| fast"].split(" | ")[3] == "10.0"


def test_compare_results_refuses_what_cannot_be_compared():
    one, two = _two_scenarios(), _two_scenarios()
    one["profile"] = {"n_train": 110, "final_epochs": 8}
    two["profile"] = {"n_train": 110, "final_epochs": 2}
    with pytest.raises(ValueError, match="final_epochs"):
        compare_results({"a": one, "b": two})
    with pytest.raises(ValueError, match="at least two"):
        compare_results({"a": one})
    two["profile"] = one["profile"]
    two["scenarios"] = {}
    with pytest.raises(ValueError, match="No scenario"):
        compare_results({"a": one, "b": two})


def test_report_summarizes_every_scenario_not_a_stored_summary(tmp_path):
    # A summary stored with the first scenario must not outlive the second.
    results = _two_scenarios()
    first = dict(results, scenarios=dict(list(results["scenarios"].items())[:1]))
    results["summary"] = summarize(first)
    results["runs"] = [{"command": "test"}]
    write_report(results, tmp_path)
    md = (tmp_path / "results.md").read_text()
    ispl_row = next(r for r in md.splitlines() if r.startswith("| ISPL |"))
    assert ispl_row.split("|")[2:4] == [" 2 ", " 1 "]
    assert _summary_lines(results) != _summary_lines(first)


def test_git_commit_is_only_read_from_a_checkout_of_the_package(tmp_path, monkeypatch):
    import shutil
    import subprocess

    from sklearn_ispl.benchmark import _results

    if shutil.which("git") is None:
        pytest.skip("git not installed")
    # A package copy inside some unrelated repository (site-packages inside
    # a pyenv checkout): that repository's HEAD must not be recorded.
    repo = tmp_path / "other"
    (repo / "pkg").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "README").write_text("x")
    subprocess.run(
        ["git", "-C", str(repo), "add", "README"], check=True, capture_output=True
    )
    subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "x",
        ],
        check=True,
    )
    fake = repo / "pkg" / "_results.py"
    fake.write_text("")
    (repo / "pkg" / "_runner.py").write_text("")
    monkeypatch.setattr(_results, "__file__", str(fake))
    assert _results._git_commit() == (None, None)
    # Once the module is tracked there, that checkout's HEAD is recorded.
    subprocess.run(
        ["git", "-C", str(repo), "add", "pkg"], check=True, capture_output=True
    )
    head, dirty = _results._git_commit()
    assert head is not None and len(head) == 40
    assert dirty is True

    def commit_all():
        subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
        subprocess.run(
            ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
            + ["commit", "-qm", "y"],
            check=True,
        )

    results = repo / "benchmarks" / "results" / "speed.log"
    results.parent.mkdir(parents=True)
    results.write_text("old")
    commit_all()
    assert _results._git_commit()[1] is False
    # A rewritten result file is not a code change; a changed source file is.
    results.write_text("new")
    assert _results._git_commit()[1] is False
    (repo / "README").write_text("changed")
    assert _results._git_commit()[1] is True


@pytest.mark.parametrize("name", sorted(sklearn_ispl.SCHEDULES))
def test_every_schedule_builds_a_valid_filter(name):
    params = parse_defense_params(name)
    ispl, _, _ = benchmark.make_defense(
        sklearn_ispl.ISPLFilter, params, {"random_state": 0}, strict=True
    )
    ispl._validate_params()
    ispl._check_params()
    assert ispl.schedule == name
