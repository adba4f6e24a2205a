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
    robust_scenarios,
    run_benchmark,
    select_scenarios,
    suite_scenarios,
    summarize,
    summarize_families,
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
        assert {"cpu_count", "torch", "cpu_model"} <= set(run["machine"])
        # Whether the weak learners ran in bfloat16: speed results depend on it.
        assert isinstance(run["machine"]["native_bfloat16"], bool)
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


# ---------------------------------------------------------------------------
# The robust suite


class TestRobustScenarios:
    def test_21_scenarios_of_the_right_kinds(self):
        scenarios = robust_scenarios((8, 8), max_value=16)
        assert [s.index for s in scenarios] == list(range(21))
        assert len({s.id for s in scenarios}) == 21
        kinds = [s.kind for s in scenarios]
        assert kinds == ["blended", "varying"] * 8 + ["multi"] * 4 + ["clean"]
        attacks = sklearn_ispl.attacks
        expected = {
            "blended": [attacks.BlendedBackdoorAttack],
            "varying": [attacks.VaryingBackdoorAttack],
            "multi": [object, object],
            "clean": [],
        }
        for s in scenarios:
            assert len(s.attacks) == len(s.triggers()) == len(expected[s.kind])
            for attack, cls in zip(s.attacks, expected[s.kind], strict=True):
                assert isinstance(attack, cls) and attack.eps == 0.1
        # Each kind of single attack covers the eight pairs, pair-major.
        pairs = list(attacks.PAPER_CLASS_PAIRS)
        for offset in (0, 1):
            single = scenarios[offset:16:2]
            assert [(s.attacks[0].source, s.attacks[0].target) for s in single] == pairs
        for s in scenarios[16:20]:
            assert isinstance(s.attack, attacks.MultiAttack)
            two = [(a.source, a.target) for a in s.attacks]
            assert len(set(two)) == 2 and set(two) <= set(pairs)
        clean = scenarios[20]
        assert clean.id == "20-clean" and clean.attack is None

    def test_drawn_by_the_seeded_rules(self):
        scenarios = robust_scenarios((8, 8), max_value=16)
        attacks = sklearn_ispl.attacks
        blended = attacks.make_blended_scenario(
            (8, 8), 2, 5, eps=0.1, random_state=4, max_value=16
        )
        varying = attacks.make_varying_scenario(
            (8, 8), 2, 5, eps=0.1, random_state=5, max_value=16
        )
        assert repr(scenarios[4].attack) == repr(blended)
        assert repr(scenarios[5].attack) == repr(varying)
        kinds = [_attack_kind(a) for a in scenarios[16].attacks]
        multi = attacks.make_multi_scenario(
            (8, 8), eps=0.1, random_state=16, max_value=16, kinds=kinds
        )
        assert repr(scenarios[16].attack) == repr(multi)
        # Together the two-attack scenarios mix every kind.
        mixed = {_attack_kind(a) for s in scenarios[16:20] for a in s.attacks}
        assert mixed == set(attacks.SCENARIO_KINDS)

    def test_stable_across_calls(self):
        a = robust_scenarios((28, 28))
        b = robust_scenarios((28, 28))
        assert [s.id for s in a] == [s.id for s in b]
        # Resume compares descriptions as stored in JSON.
        assert [json.loads(json.dumps(s.describe())) for s in a] == [
            s.describe() for s in b
        ]
        X = np.random.default_rng(0).integers(0, 256, (60, 28, 28), dtype=np.uint8)
        y = np.arange(60) % 10
        for s, t in zip(a, b, strict=True):
            (Xa, ya, ida), (Xb, yb, idb) = s.poison(X, y), t.poison(X, y)
            assert np.array_equal(Xa, Xb) and np.array_equal(ya, yb)
            assert np.array_equal(ida, idb)
            for (_, _, apply_a), (_, _, apply_b) in zip(
                s.triggers(), t.triggers(), strict=True
            ):
                assert np.array_equal(apply_a(X[:3]), apply_b(X[:3]))

    def test_poison_ids(self):
        scenarios = robust_scenarios((8, 8), max_value=16)
        X = np.zeros((200, 8, 8))
        y = np.arange(200) % 10
        _, y_p, ids = scenarios[16].poison(X, y)
        for k, attack in enumerate(scenarios[16].attacks):
            assert (ids == k).sum() == 2 and set(y_p[ids == k]) == {attack.target}
        X_c, y_c, ids = scenarios[20].poison(X, y)
        assert (ids == -1).all() and np.array_equal(y_c, y) and X_c is not X

    def test_select_and_suites(self):
        scenarios = suite_scenarios("robust", (8, 8), 16)
        picked = select_scenarios(scenarios, "20-clean,0:2")
        assert [s.index for s in picked] == [0, 1, 20]
        assert len(suite_scenarios("paper", (8, 8), 16)) == 24
        with pytest.raises(ValueError, match="Unknown suite"):
            suite_scenarios("hard", (8, 8))
        with pytest.raises(ValueError, match="out of range 0..20"):
            select_scenarios(scenarios, "21")


def _attack_kind(attack):
    return {
        "BlendedBackdoorAttack": "blended",
        "VaryingBackdoorAttack": "varying",
    }.get(type(attack).__name__, "stamped")


# The fake final model answers every clean test image correctly and every
# other (triggered) image with this class: the target of the second attack
# of two-attack scenario 16 only, so that its two rates differ.
def _multi_16():
    return robust_scenarios((8, 8), max_value=16)[16]


class _LookupModel:
    """Knows the clean test images; calls everything else ``other``."""

    def __init__(self, X, y, other):
        self.labels = {x.tobytes(): int(label) for x, label in zip(X, y, strict=True)}
        self.other = other

    def predict(self, X):
        return np.array(
            [self.labels.get(x.tobytes(), self.other) for x in np.asarray(X)]
        )

    def save(self, path):
        open(path, "wb").close()


@pytest.fixture(scope="module")
def robust_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("robust")
    profile = tiny_profile()
    _, _, X_test, y_test = benchmark._load_data(profile)
    other = _multi_16().attacks[1].target
    mp = pytest.MonkeyPatch()
    mp.setattr(sklearn_ispl, BASELINES[0].class_name, FakeFilter)
    mp.setattr(
        _runner, "_train_final", lambda f, X, y: _LookupModel(X_test, y_test, other)
    )
    try:
        # The smoke profile's robust default: one scenario of each family.
        results = run_benchmark(
            profile, out, suite="robust", defenses=["ss"], progress=False
        )
    finally:
        mp.undo()
    return out, results


class TestRobustRun:
    def test_scenarios_run(self, robust_run):
        out, returned = robust_run
        results = json.loads((out / "results.json").read_text())
        assert results["suite"] == "robust"
        assert results["scenarios"] == returned["scenarios"]
        assert list(results["scenarios"]) == [
            s.id for s in robust_scenarios((8, 8), 16) if s.index in (0, 1, 16, 20)
        ]
        kinds = [r["scenario"]["kind"] for r in results["scenarios"].values()]
        assert kinds == ["blended", "varying", "multi", "clean"]
        for sid, record in results["scenarios"].items():
            entry = record["defenses"][BASELINES[0].key]
            assert entry["n_removed"] == int(0.1 * record["n_train"])
            if sid == "20-clean":
                continue
            assert record["n_poison"] > 0 and 0 <= record["M"] <= 1
            assert 0 <= entry["FN"] <= record["n_poison"]
            assert entry["FP"] + record["n_poison"] - entry["FN"] == int(
                0.1 * record["n_train"]
            )

    def test_two_attacks(self, robust_run):
        _, results = robust_run
        record = results["scenarios"][_multi_16().id]
        for result in (record["no_defense"], record["defenses"][BASELINES[0].key]):
            first, second = result["A_per_attack"]
            # Only the second attack's target is what triggered images get.
            assert first < 0.5 < second
            assert result["A"] == max(first, second)
        assert record["M"] == max(record["M_per_attack"])
        assert sum(record["n_poison_per_attack"]) == record["n_poison"]
        assert all(n > 0 for n in record["n_poison_per_attack"])
        assert len(record["n_test_source"]) == 2
        entry = record["defenses"][BASELINES[0].key]
        assert sum(entry["FN_per_attack"]) == entry["FN"]
        assert [a["kind"] for a in record["scenario"]["attacks"]] == [
            _attack_kind(a) for a in _multi_16().attacks
        ]

    def test_clean_scenario_has_no_attack_figures(self, robust_run):
        _, results = robust_run
        record = results["scenarios"]["20-clean"]
        assert record["n_poison"] == 0 and "M" not in record
        assert record["scenario"]["attacks"] == []
        assert set(record["no_defense"]) == {"C", "train_seconds", "run"}
        entry = record["defenses"][BASELINES[0].key]
        assert "A" not in entry and "FN" not in entry and "FN_rate" not in entry
        assert entry["C"] == 1.0
        assert entry["FP"] == entry["n_removed"] == int(0.1 * record["n_train"])

    def test_summary_per_family(self, robust_run):
        out, results = robust_run
        key = BASELINES[0].key
        summary = results["summary"]
        assert summary == summarize_families(results)
        assert list(summary) == ["blended", "varying", "multi", "clean"]
        for family, columns in summary.items():
            assert set(columns) == {"no_defense", key}
            record = next(
                r
                for r in results["scenarios"].values()
                if r["scenario"]["kind"] == family
            )
            item = columns[key]
            assert item["n_scenarios"] == 1
            assert item["mean_fp_share"] == pytest.approx(
                record["defenses"][key]["FP"] / (record["n_train"] - record["n_poison"])
            )
            if family == "clean":
                assert item["n_asr_below_1pct"] is None
                assert item["mean_A"] is None and item["mean_fn_share"] is None
            else:
                entry = record["defenses"][key]
                assert item["mean_A"] == entry["A"]
                assert item["n_asr_below_1pct"] == int(entry["A"] < 0.01)
                assert item["mean_fn_share"] == entry["FN"] / record["n_poison"]
        md = (out / "results.md").read_text()
        assert "robust suite" in md
        for label in ("**blended**", "**varying**", "**two attacks**", "**clean**"):
            assert label in md
        row = next(line for line in md.splitlines() if line.startswith("| 20-clean"))
        assert row.split(" | ")[1:4] == ["–", "none", "–"]
        lines = _summary_lines(results)
        assert "two attacks:" in lines and "clean:" in lines
        clean_lines = lines[lines.index("clean:") + 1 :]
        assert "without attack" in clean_lines[0]
        assert "% of samples" in clean_lines[1] and "poison" not in clean_lines[1]

    def test_resume_skips_finished_work(self, robust_run, monkeypatch):
        out, first = robust_run
        monkeypatch.setattr(sklearn_ispl, BASELINES[0].class_name, FakeFilter)
        monkeypatch.setattr(FakeFilter, "n_fits", 0)
        monkeypatch.setattr(
            _runner, "_train_final", lambda *a: pytest.fail("trained again")
        )
        again = run_benchmark(
            tiny_profile(), out, suite="robust", defenses=["ss"], progress=False
        )
        assert FakeFilter.n_fits == 0
        assert again["scenarios"] == first["scenarios"]
        assert len(again["runs"]) == 2
        log = (out / "benchmark.log").read_text()
        assert log.count("done already; skipped") == 4

    def test_one_folder_one_suite(self, robust_run, first_run):
        for out, suite in ((robust_run[0], "paper"), (first_run[0], "robust")):
            with pytest.raises(ValueError, match="suite"):
                run_benchmark(
                    tiny_profile(), out, suite=suite, defenses=["none"], progress=False
                )
        with pytest.raises(ValueError, match="Unknown suite"):
            run_benchmark(tiny_profile(), robust_run[0], suite="hard")
        with pytest.raises(ValueError, match="suite"):
            compare_results({"robust": robust_run[1], "paper": first_run[1]}, "ss")


def test_clean_scenario_resumes_a_new_defense(tmp_path, monkeypatch):
    # The clean scenario needs no clean-training model (it has no M): adding
    # a defense later trains once, for that defense.
    trainings = []

    def fake_train(factory, X, y):
        trainings.append(len(y))
        return _ConstantModel()

    monkeypatch.setattr(_runner, "_train_final", fake_train)
    monkeypatch.setattr(sklearn_ispl, BASELINES[0].class_name, FakeFilter)
    first = run_benchmark(
        tiny_profile(),
        tmp_path,
        suite="robust",
        scenarios="20",
        defenses=["none"],
        progress=False,
    )
    assert len(trainings) == 1 and first["clean_training"] is None
    results = run_benchmark(
        tiny_profile(),
        tmp_path,
        suite="robust",
        scenarios="20-clean",
        defenses=["ss"],
        progress=False,
    )
    n_train = results["scenarios"]["20-clean"]["n_train"]
    assert trainings == [n_train, n_train - int(0.1 * n_train)]
    assert list(results["summary"]) == ["clean"]
    item = results["summary"]["clean"][BASELINES[0].key]
    assert item["mean_fp_share"] == int(0.1 * n_train) / n_train


def test_paper_results_keep_their_layout(first_run):
    _, results = first_run
    assert "suite" not in results
    assert results["summary"] == summarize(results)
    assert list(summarize_families(results)) == ["stamped"]
    assert summarize_families(results)["stamped"] == summarize(results)


def test_bench_list_robust(capsys):
    from sklearn_ispl import cli

    assert cli.main(["bench", "--profile", "smoke", "--suite", "robust", "--list"]) == 0
    out = capsys.readouterr().out
    ids = [s.id for s in robust_scenarios((8, 8), 16)]
    rows = [line.split() for line in out.splitlines()]
    listed = [row[1] if row[0] == "*" else row[0] for row in rows]
    assert [sid for sid in listed if sid in ids] == ids
    default = [row[1] for row in rows if row[0] == "*"]
    assert [d[:2] for d in default] == ["00", "01", "16", "20"]
    assert cli.main(["bench", "--profile", "smoke", "--list"]) == 0
    assert "-e20" in capsys.readouterr().out


def test_a_refused_run_leaves_no_folder_behind(tmp_path):
    out = tmp_path / "never"
    with pytest.raises(ValueError, match="out of range"):
        run_benchmark("smoke", out, scenarios="99", defenses=["none"], progress=False)
    assert not out.exists()
    # A folder that was there before stays, with what it held.
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "note.txt").write_text("mine")
    with pytest.raises(ValueError, match="out of range"):
        run_benchmark("smoke", kept, scenarios="99", defenses=["none"], progress=False)
    assert (kept / "note.txt").read_text() == "mine"


class _SeededModel:
    """Right on the clean test images for seed 0, wrong on all for others;
    calls every triggered image the attack's target."""

    def __init__(self, seed, X_test, y_test, target):
        self.seed, self.target = seed, target
        self.labels = {x.tobytes(): int(v) for x, v in zip(X_test, y_test, strict=True)}

    def predict(self, X):
        out = []
        for x in np.asarray(X):
            label = self.labels.get(x.tobytes())
            if label is None:
                out.append(self.target)
            else:
                out.append(label if self.seed == 0 else (label + 1) % 10)
        return np.array(out)

    def save(self, path):
        open(path, "wb").close()


def test_final_seeds_average_several_trainings(tmp_path, monkeypatch):
    profile = get_profile(tiny_profile(), final_seeds=2)
    _, _, X_test, y_test = benchmark._load_data(profile)
    seeds = []

    def fake_train(factory, X, y):
        seed = factory().seed
        seeds.append(seed)
        return _SeededModel(seed, X_test, y_test, target=3)

    monkeypatch.setattr(_runner, "_train_final", fake_train)
    monkeypatch.setattr(sklearn_ispl, BASELINES[0].class_name, FakeFilter)
    results = run_benchmark(
        profile, tmp_path, scenarios="5", defenses=["ss"], progress=False
    )
    # Clean training (twice), no defense and the defense: seeds 0 and 1 each.
    assert seeds == [0, 1, 0, 1, 0, 1]
    record = results["scenarios"]["05-s1t3-e20"]
    for entry in (record["no_defense"], record["defenses"][BASELINES[0].key]):
        assert entry["C_seeds"] == [1.0, 0.0] and entry["C"] == 0.5
        assert entry["A"] == np.mean(entry["A_seeds"])
        assert entry["A_seeds"][0] == 1.0  # seed 0 obeys the trigger
    assert results["clean_training"]["C_seeds"] == [1.0, 0.0]
    assert results["clean_training"]["C"] == 0.5
    assert results["profile"]["final_seeds"] == 2
    assert "trained 2 times (seeds 0 to 1)" in (tmp_path / "results.md").read_text()
    # Results of one training are not mixed with those of two.
    with pytest.raises(ValueError, match="final_seeds"):
        run_benchmark(
            tiny_profile(), tmp_path, scenarios="5", defenses=["none"], progress=False
        )


def test_results_from_before_final_seeds_resume(first_run, tmp_path):
    out, _ = first_run
    old = json.loads((out / "results.json").read_text())
    del old["profile"]["final_seeds"]
    (tmp_path / "results.json").write_text(json.dumps(old))
    results = run_benchmark(
        tiny_profile(), tmp_path, scenarios="17", defenses=["none"], progress=False
    )
    assert results["scenarios"] == old["scenarios"]


@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_final_seeds_must_be_a_positive_integer(value):
    with pytest.raises(ValueError, match="final_seeds"):
        get_profile("smoke", final_seeds=value)
