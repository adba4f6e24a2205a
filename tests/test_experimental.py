"""The experimental stages composed into ISPLFilter: what each sees and does.

Each stage's own rule is tested on its function (test_refine.py for the
judge and the rescue, test_trigger.py for the stamped-trigger check); these
tests check the composition: what the filter hands a stage, what the stage
changes, and that the stages before it decide the same.
"""

import numpy as np
import pytest
from sklearn.base import clone

from sklearn_ispl.experimental import (
    ExtraStage,
    GroupDecision,
    GroupTriggerTest,
    LabelCompatibilityTest,
    Rescue,
    StampedTriggerCheck,
    TriggerBlindJudge,
)
from sklearn_ispl.experimental import _trigger as trigger_module
from sklearn_ispl.experimental._groups import poison_groups
from sklearn_ispl.experimental._rescue import rescue

from .conftest import linear_ispl as _linear


@pytest.fixture(scope="module")
def plain(poisoned_digits):
    X, y, _, _ = poisoned_digits
    return _linear().fit(X, y)


class _Recorder(ExtraStage):
    """Records what the filter hands the stages."""

    def before_refine(self, state):
        self.start_ = state.start.copy()
        self.trainable_ = state.trainable.copy()

    def after_refine(self, state):
        self.keep_ = state.keep.copy()


def test_every_extra_stage_is_an_experimental_estimator():
    for stage in (
        TriggerBlindJudge(),
        Rescue(),
        StampedTriggerCheck(),
        GroupDecision(),
        GroupTriggerTest(),
    ):
        assert isinstance(stage, ExtraStage)
        assert "Experimental" in type(stage).__doc__
        assert clone(stage).get_params() == stage.get_params()


def test_blind_judge_narrows_training_and_vetoes(poisoned_digits, plain):
    X, y, _, _ = poisoned_digits
    judge = TriggerBlindJudge(n_neighbors=10, n_components=15, veto=True)
    blind = _linear(extra_stages=[judge, _Recorder()]).fit(X, y)
    fitted, seen = blind.extra_stages_
    assert fitted is not judge and not hasattr(judge, "scores_")
    scores, backed = fitted.scores_, fitted.backed_
    assert ((scores >= 0) & (scores <= 1)).all()
    assert 0 < backed.sum() < len(y)
    # Backed: no other class has more of the neighbours than the label.
    assert backed[scores > 0.5].all() and not backed[scores == 0].any()
    np.testing.assert_array_equal(seen.trainable_, backed)
    np.testing.assert_array_equal(seen.start_, blind.vote_keep_mask_)
    assert not (blind.keep_mask_ & ~backed).any()
    assert not (blind.refine_keep_mask_ & ~backed).any()
    # Same seeds up to the vote: the judge only narrows what follows.
    np.testing.assert_array_equal(blind.vote_keep_mask_, plain.vote_keep_mask_)
    # Without the veto the judge narrows training, not the keeping.
    unvetoed = _linear(
        extra_stages=[TriggerBlindJudge(n_neighbors=10, n_components=15, veto=False)]
    ).fit(X, y)
    np.testing.assert_array_equal(unvetoed.keep_mask_, unvetoed.refine_keep_mask_)
    assert (unvetoed.keep_mask_ & ~backed).any()
    np.testing.assert_array_equal(unvetoed.keep_mask_ & backed, blind.keep_mask_)
    assert "TriggerBlindJudge" in blind.stage_times_


def test_rescue_only_gives_back_what_the_refine_stage_removed(poisoned_digits, plain):
    X, y, _, _ = poisoned_digits
    bounds = [0.2, 0.99]  # a list, as JSON settings give it
    rescued = _linear(extra_stages=[Rescue(n_epochs=2, bounds=bounds)]).fit(X, y)
    (stage,) = rescued.extra_stages_
    # Same seed: the stages before the rescue decide the same.
    np.testing.assert_array_equal(rescued.refine_keep_mask_, plain.keep_mask_)
    np.testing.assert_array_equal(rescued.refine_scores_, plain.refine_scores_)
    assert stage.scores_.shape == (len(y), 2)
    expected = rescue(
        rescued.refine_keep_mask_,
        stage.scores_,
        rescued.refine_scores_,
        bounds,
        stage.min_support,
    )
    np.testing.assert_array_equal(rescued.keep_mask_, expected)
    np.testing.assert_array_equal(
        stage.rescued_, rescued.keep_mask_ & ~rescued.refine_keep_mask_
    )
    assert stage.rescued_.any()
    assert set(rescued.stage_times_) == {"partition", "vote", "refine", "Rescue"}
    # A floor no removed sample's support reaches gives nothing back.
    strict = _linear(extra_stages=[Rescue(n_epochs=2, bounds=bounds, min_support=1)])
    np.testing.assert_array_equal(strict.fit(X, y).keep_mask_, plain.keep_mask_)


def test_rescue_gives_back_only_what_a_blind_judge_backs(poisoned_digits):
    X, y, _, _ = poisoned_digits
    bounds = (0.2, 0.99)
    judge = TriggerBlindJudge(n_neighbors=10, n_components=15, veto=False)
    rescued = _linear(extra_stages=[judge, Rescue(n_epochs=2, bounds=bounds)])
    rescued.fit(X, y)
    fitted_judge, fitted_rescue = rescued.extra_stages_
    unrestricted = rescue(
        rescued.refine_keep_mask_,
        fitted_rescue.scores_,
        rescued.refine_scores_,
        bounds,
        fitted_rescue.min_support,
    )
    given_back = rescued.keep_mask_ & ~rescued.refine_keep_mask_
    assert given_back.any() and (given_back <= unrestricted).all()
    # Samples the judge outvotes stay out, where the rescue alone would give
    # them back.
    assert not (given_back & ~fitted_judge.backed_).any()
    assert (unrestricted & ~fitted_judge.backed_).any()


def test_trigger_check_acts_after_every_other_stage(monkeypatch, poisoned_digits):
    X, y, _, _ = poisoned_digits
    labels = np.array([f"digit {c}" for c in range(10)])[y]
    judge = TriggerBlindJudge(n_neighbors=10, n_components=15)
    blind = _linear(extra_stages=[judge]).fit(X, labels)
    seen = []
    entry = {"label": 8, "look": 0, "group": 40, "found": True, "kept": 5}

    def spy(data, keep, look, removed):
        seen.append({"keep": keep.copy(), "look": look.copy(), "removed": removed})
        carriers = np.zeros(len(keep), dtype=bool)
        carriers[np.flatnonzero(keep)[:5]] = True
        carriers[np.flatnonzero(~keep)[:5]] = True
        return carriers, [dict(entry)]

    monkeypatch.setattr(trigger_module, "trigger_check", spy)
    added = _linear(extra_stages=[judge, StampedTriggerCheck("add")]).fit(X, labels)
    # It sees the kept set of every other stage, the judge's look, and what
    # the refine stage or the end removed.
    np.testing.assert_array_equal(seen[0]["keep"], blind.keep_mask_)
    np.testing.assert_array_equal(added.refine_keep_mask_, blind.refine_keep_mask_)
    np.testing.assert_array_equal(
        seen[0]["removed"], ~blind.keep_mask_ | ~blind.refine_keep_mask_
    )
    look = blind.extra_stages_[0].look_
    np.testing.assert_array_equal(
        np.array([f"digit {c}" for c in range(10)])[seen[0]["look"]], look
    )
    expected = blind.keep_mask_.copy()
    expected[np.flatnonzero(blind.keep_mask_)[:5]] = False
    np.testing.assert_array_equal(added.keep_mask_, expected)
    check = added.extra_stages_[1]
    assert check.pairs_ == [{**entry, "label": "digit 8", "look": "digit 0"}]

    # "replace": the carriers alone are removed.
    replaced = _linear(extra_stages=[judge, StampedTriggerCheck("replace")])
    replaced.fit(X, labels)
    carriers = np.zeros(len(y), dtype=bool)
    carriers[np.flatnonzero(blind.keep_mask_)[:5]] = True
    carriers[np.flatnonzero(~blind.keep_mask_)[:5]] = True
    np.testing.assert_array_equal(replaced.keep_mask_, ~carriers)

    # Without a judge before it, a judge of its own groups the samples; it
    # vetoes nothing, and every stage before the check decides the same.
    plain = _linear().fit(X, labels)
    alone = _linear(extra_stages=[StampedTriggerCheck("add")]).fit(X, labels)
    np.testing.assert_array_equal(seen[2]["keep"], plain.keep_mask_)
    assert (seen[2]["look"] != y).any()
    assert (seen[2]["look"] == y).mean() > 0.8
    expected = plain.keep_mask_.copy()
    expected[np.flatnonzero(plain.keep_mask_)[:5]] = False
    np.testing.assert_array_equal(alone.keep_mask_, expected)


def test_replace_keeps_the_decision_when_no_trigger_is_found(
    monkeypatch, poisoned_digits, plain
):
    X, y, _, _ = poisoned_digits
    monkeypatch.setattr(
        trigger_module,
        "trigger_check",
        lambda data, keep, look, removed: (np.zeros(len(keep), dtype=bool), []),
    )
    replaced = _linear(extra_stages=[StampedTriggerCheck("replace")]).fit(X, y)
    assert not replaced.keep_mask_.all()
    np.testing.assert_array_equal(replaced.keep_mask_, plain.keep_mask_)


def test_large_schedule_runs_the_blind_judge(poisoned_digits):
    X, y, _, _ = poisoned_digits
    ispl = _linear(schedule="large", extra_stages=None, partition_samples=1.0)
    ispl.fit(X, y)
    judge, groups, test = ispl.extra_stages_
    # The judge narrows training and vetoes nothing; the group decision and
    # the group trigger test decide after the refine stage.
    assert isinstance(judge, TriggerBlindJudge) and not judge.veto
    assert isinstance(groups, GroupDecision) and groups.mode == "add"
    assert isinstance(test, GroupTriggerTest)
    # The group decision reads isolation in the judge's view too.
    assert groups.min_blind_isolation < np.inf
    assert all(g["blind_isolation"] is not None for g in groups.groups_)
    np.testing.assert_array_equal(
        ispl.keep_mask_, ispl.refine_keep_mask_ & ~groups.removed_ & ~test.removed_
    )
    assert ispl.schedule_["schedule"] == "large"
    assert ispl.schedule_["refiner__keep_ratio"] == 1e-5


def test_group_decision_adds_to_or_replaces_the_decision(poisoned_digits):
    X, y, _, _ = poisoned_digits
    labels = np.array([f"digit {c}" for c in range(10)])[y]
    # A loose rule, so that the linear learners' disagreements form flagged
    # groups on these few samples.
    loose = dict(confidence=0.3, min_share=0.5, min_size=3)
    rescue_stage = Rescue(n_epochs=2, bounds=(0.2, 0.99))
    before = _linear(extra_stages=[rescue_stage]).fit(X, labels)
    added = _linear(extra_stages=[rescue_stage, GroupDecision(**loose)])
    added.fit(X, labels)
    stage = added.extra_stages_[1]
    encoded = np.searchsorted(added.classes_, labels)
    groups, removed = poison_groups(encoded, added.refine_proba_, 0.3, 0.5, 3)
    np.testing.assert_array_equal(stage.removed_, removed)
    assert removed.any() and (removed & before.keep_mask_).any()
    # "add": the decision so far, less the flagged groups; the stages before
    # it decide the same.
    np.testing.assert_array_equal(added.refine_keep_mask_, before.refine_keep_mask_)
    np.testing.assert_array_equal(added.keep_mask_, before.keep_mask_ & ~removed)
    # Groups are reported with the class labels.
    flagged = [g for g in stage.groups_ if g["flagged"]]
    assert flagged and all(g["label"].startswith("digit") for g in flagged)
    assert len(stage.groups_) == len(groups)
    # "replace": every sample outside the flagged groups is kept.
    replaced = _linear(
        extra_stages=[rescue_stage, GroupDecision(mode="replace", **loose)]
    ).fit(X, labels)
    np.testing.assert_array_equal(replaced.keep_mask_, ~removed)
    assert (replaced.keep_mask_ & ~before.keep_mask_).any()
    assert "GroupDecision" in added.stage_times_


class _BlindRecorder(ExtraStage):
    """Records the trigger-blind view the judge before it left."""

    def before_refine(self, state):
        self.blind_ = state.blind_proba.copy()


def test_group_decision_reads_isolation_in_the_judges_view(poisoned_digits):
    X, y, _, _ = poisoned_digits
    # A strict rule on the refine models, so that only the blind view flags
    # (an infinite bound is a valid one: it never flags).
    strict = dict(confidence=1.0, min_share=1.0, min_size=3, min_isolation=np.inf)
    judge = TriggerBlindJudge(n_neighbors=10, n_components=15)
    # A low bound, so that the blind view flags groups on these few samples.
    blind = _linear(
        extra_stages=[
            judge,
            _BlindRecorder(),
            GroupDecision(**strict, min_blind_isolation=0.2),
        ]
    ).fit(X, y)
    fitted_judge, recorder, stage = blind.extra_stages_
    view = recorder.blind_
    np.testing.assert_allclose(view.sum(axis=1), 1.0)
    np.testing.assert_array_equal(view.argmax(axis=1), fitted_judge.look_)
    groups, removed = poison_groups(
        y, blind.refine_proba_, 1.0, 1.0, 3, np.inf, view, min_blind_isolation=0.2
    )
    np.testing.assert_array_equal(stage.removed_, removed)
    assert [g["blind_isolation"] for g in stage.groups_] == [
        g["blind_isolation"] for g in groups
    ]
    # The blind view only adds flags: without it, the same refine models
    # flag a subset of the groups.
    unread, _ = poison_groups(y, blind.refine_proba_, 1.0, 1.0, 3, np.inf)
    flags = {(g["label"], g["look"]): g["flagged"] for g in groups}
    plain_flags = {(g["label"], g["look"]): g["flagged"] for g in unread}
    assert all(flags[key] for key, flag in plain_flags.items() if flag)
    assert sum(flags.values()) > sum(plain_flags.values())
    # Without a judge the group decision reads no blind view.
    (alone,) = (
        _linear(extra_stages=[GroupDecision(**strict, min_blind_isolation=0.2)])
        .fit(X, y)
        .extra_stages_
    )
    assert all(g["blind_isolation"] is None for g in alone.groups_)


def test_group_decision_without_refine_rounds_changes_nothing(poisoned_digits):
    X, y, _, _ = poisoned_digits
    plain = _linear(refiner__n_rounds=0).fit(X, y)
    grouped = _linear(
        refiner__n_rounds=0, extra_stages=[GroupDecision(mode="replace")]
    ).fit(X, y)
    np.testing.assert_array_equal(grouped.keep_mask_, plain.keep_mask_)
    (stage,) = grouped.extra_stages_
    assert stage.groups_ == [] and not stage.removed_.any()


def _trigger_data(seed=0):
    """Three classes of 6x6 images, one bright row each. Label 1 holds a
    group of class-0 images with a bright corner (the trigger), hidden
    triggered class-0 images, and its clean images."""
    from sklearn_ispl._validation import PreparedData

    rng = np.random.RandomState(seed)
    n = 120
    look = np.repeat([0, 1, 2], n)
    X = rng.rand(len(look), 1, 6, 6).astype(np.float32) * 0.3
    X[np.arange(len(look)), 0, look + 1, :] += 1.0
    y = look.copy()
    group = np.zeros(len(y), dtype=bool)
    group[:30] = True
    hidden = np.zeros(len(y), dtype=bool)
    hidden[30:40] = True
    y[group | hidden] = 1
    X[group | hidden, 0, 4:, 4:] += 1.5
    return PreparedData(X, y, 3, (1, 6, 6)), group, hidden


def test_group_scores_find_the_groups_trigger_on_the_rest_of_its_label():
    from sklearn.linear_model import SGDClassifier

    from sklearn_ispl.experimental._group_test import group_scores

    data, group, hidden = _trigger_data()
    learner = SGDClassifier(loss="log_loss", alpha=1e-3)
    scores = group_scores(data, learner, [(group, 0)], 5, 0, "cpu")
    of_label = data.y == 1
    assert np.isnan(scores[~of_label]).all() and not np.isnan(scores[of_label]).any()
    # The hidden poison carries the label and the trigger; the label's clean
    # images carry neither the group's look nor its trigger.
    clean = of_label & ~group & ~hidden
    assert scores[hidden].min() >= 0.5
    assert scores[clean].max() < 0.5
    assert scores[group].mean() >= 0.5


def test_group_scores_read_the_look_class_on_request():
    from sklearn.linear_model import SGDClassifier

    from sklearn_ispl.experimental._group_test import group_scores

    data, group, hidden = _trigger_data()
    learner = SGDClassifier(loss="log_loss", alpha=1e-3)
    plain = group_scores(data, learner, [(group, 0)], 5, 0, "cpu")
    scores = group_scores(data, learner, [(group, 0)], 5, 0, "cpu", read_look=True)
    look, of_label = data.y == 0, data.y == 1
    assert not np.isnan(scores[look | of_label]).any()
    assert np.isnan(scores[~(look | of_label)]).all()
    # The same models: reading more samples changes no label's score.
    np.testing.assert_array_equal(scores[of_label], plain[of_label])
    # The look class shares the group's look but not its trigger.
    assert scores[look].max() < 0.5


def test_group_label_compatibility_tells_hidden_poison_from_its_label():
    from sklearn.linear_model import SGDClassifier

    from sklearn_ispl.experimental._group_test import group_label_compatibility

    data, group, hidden = _trigger_data()
    learner = SGDClassifier(loss="log_loss", alpha=1e-3)
    proba = group_label_compatibility(data, learner, (group, 0), 5, 0, "cpu")
    look, of_label = data.y == 0, data.y == 1
    assert not np.isnan(proba[look | of_label]).any()
    assert np.isnan(proba[~(look | of_label)]).all()
    assert ((proba >= 0) & (proba <= 1))[look | of_label].all()
    # Hidden poison looks like class 0 and carries the trigger: not like the
    # rest of its label; the label's clean images are.
    clean = of_label & ~group & ~hidden
    assert proba[hidden].max() < 0.5
    assert proba[clean].min() >= 0.5
    # The look class is a class of its own, not the rest of the label.
    assert proba[look].max() < 0.5


def test_group_trigger_test_removes_only_in_flagged_labels(poisoned_digits, plain):
    X, y, poison, _ = poisoned_digits
    loose = dict(confidence=0.3, min_share=0.5, min_size=3)
    before = _linear(extra_stages=[GroupDecision(**loose)]).fit(X, y)
    only_flagged = GroupTriggerTest(n_candidates=0)
    tested = _linear(extra_stages=[GroupDecision(**loose), only_flagged])
    tested.fit(X, y)
    groups, stage = tested.extra_stages_
    flagged = np.isin(y, [g["label"] for g in groups.groups_ if g["flagged"]])
    assert flagged.any()
    assert np.isnan(stage.scores_[~flagged]).all()
    assert not np.isnan(stage.scores_[flagged]).any()
    np.testing.assert_array_equal(stage.removed_, stage.scores_ >= 0.5)
    np.testing.assert_array_equal(
        tested.keep_mask_, before.keep_mask_ & ~stage.removed_
    )
    # Without a group decision before it there is nothing to test.
    alone = _linear(extra_stages=[GroupTriggerTest()]).fit(X, y)
    (lone,) = alone.extra_stages_
    assert np.isnan(lone.scores_).all()
    np.testing.assert_array_equal(alone.keep_mask_, plain.keep_mask_)


def _candidate_state(data, group, blind_look, isolation=2.0):
    """The state a group test sees after a group decision that measured one
    unflagged (label 1, look 0) group: ``group``."""
    from sklearn.linear_model import SGDClassifier

    from sklearn_ispl.experimental import FitState

    n = len(data)
    look = data.y.copy()
    look[group] = 0
    proba = np.eye(3)[look] * 0.9 + 0.1 / 3
    everyone = np.ones(n, dtype=bool)
    return FitState(
        data=data,
        classes=np.array([10, 11, 12]),
        rng=np.random.RandomState(0),
        device="cpu",
        n_jobs=None,
        refine_learner=SGDClassifier(loss="log_loss", alpha=1e-3),
        scores=np.ones(n),
        vote_keep=everyone,
        start=everyone,
        trainable=everyone,
        keep=everyone.copy(),
        proba=proba,
        look=blind_look,
        flagged=[],
        groups=[
            {
                "label": 1,
                "look": 0,
                "size": int(group.sum()),
                "share": 0.0,
                "isolation": isolation,
                "flagged": False,
            }
        ],
    )


def test_group_test_confirms_a_candidate_that_carries_a_trigger():
    data, group, hidden = _trigger_data()
    # A trigger-blind view takes the triggered images for what they show.
    blind = np.repeat([0, 1, 2], 120)
    state = _candidate_state(data, group, blind)
    # A clean sample of the label that the models find more like the look
    # class than its label (though most like a third): a flagged group's
    # decision removes it, and so does a confirmed candidate.
    leaning = np.flatnonzero((data.y == 1) & ~group & ~hidden)[0]
    state.proba[leaning] = [0.34, 0.30, 0.36]
    stage = GroupTriggerTest(n_epochs=5, n_candidates=1)
    stage.after_refine(state)
    (tested,) = stage.groups_
    assert tested["label"] == 11 and tested["look"] == 10
    assert not tested["flagged"] and tested["confirmed"]
    assert tested["blind_share"] == 1.0 and tested["separation"] >= 0.99
    clean = (data.y == 1) & ~group & ~hidden
    assert stage.removed_[group | hidden].all() and stage.removed_[leaning]
    clean[leaning] = False
    assert not stage.removed_[clean].any() and not stage.removed_[data.y != 1].any()
    np.testing.assert_array_equal(state.keep, ~stage.removed_)
    # Without candidates nothing is tested, trained or removed.
    idle = GroupTriggerTest(n_candidates=0)
    state = _candidate_state(data, group, blind)
    idle.after_refine(state)
    assert idle.groups_ == [] and state.keep.all() and np.isnan(idle.scores_).all()


def test_group_test_leaves_a_candidate_without_both_signs():
    data, group, hidden = _trigger_data()
    # The blind view takes the members for their label: a clean group the
    # refine models misread, however separable, is not even tested.
    state = _candidate_state(data, group, data.y.copy())
    stage = GroupTriggerTest(n_epochs=5, n_candidates=1)
    stage.after_refine(state)
    assert stage.groups_ == [] and not stage.removed_.any() and state.keep.all()
    # Look-alikes without a trigger: class-0 images labelled 1, which the
    # blind view takes for class 0, are not told apart from class 0.
    X = data.X.copy()
    X[group | hidden, 0, 4:, 4:] -= 1.5
    plain = type(data)(X, data.y, 3, data.input_shape)
    state = _candidate_state(plain, group, np.repeat([0, 1, 2], 120))
    stage = GroupTriggerTest(n_epochs=5, n_candidates=1)
    stage.after_refine(state)
    (tested,) = stage.groups_
    # Its first model already rules it out: no second model, no separation.
    assert tested["blind_share"] == 1.0 and tested["separation"] is None
    assert not tested["confirmed"] and not stage.removed_.any()


def test_compatibility_test_removes_a_label_cluster_that_is_not_its_label():
    data, group, hidden = _trigger_data()
    state = _candidate_state(data, group, None)
    stage = LabelCompatibilityTest(n_epochs=5)
    stage.after_refine(state)
    (tested,) = stage.groups_
    assert tested["label"] == 11 and tested["look"] == 10
    assert tested["size"] == group.sum() and tested["incompatible"]
    assert tested["isolation"] >= stage.min_isolation
    # The group and the hidden poison are images of class 0 with a trigger:
    # outsiders to label 1, whose clean images stay.
    clean = (data.y == 1) & ~group & ~hidden
    assert stage.removed_[group | hidden].all()
    assert not stage.removed_[clean].any() and not stage.removed_[data.y != 1].any()
    np.testing.assert_array_equal(state.keep, ~stage.removed_)
    of_label = data.y == 1
    assert np.isnan(stage.scores_[~of_label]).all()
    np.testing.assert_array_equal(stage.removed_, stage.scores_ < 0.5)


def test_compatibility_test_leaves_a_continuum_of_look_alikes():
    from sklearn_ispl._validation import PreparedData

    # Label 1's images fade into class 0's: the bright row of class 0 is
    # there at every intensity. The group is the most class-0-like tail.
    rng = np.random.RandomState(1)
    y = np.repeat([0, 1, 2], 120)
    X = rng.rand(len(y), 1, 6, 6).astype(np.float32) * 0.3
    X[np.arange(len(y)), 0, y + 1, :] += 1.0
    fade = np.linspace(0, 1, 120)
    X[y == 1, 0, 1, :] += fade[:, None]
    X[y == 1, 0, 2, :] -= fade[:, None]
    group = np.zeros(len(y), dtype=bool)
    group[120 + 90 :] = True
    faded = PreparedData(X, y, 3, (1, 6, 6))
    state = _candidate_state(faded, group, None)
    stage = LabelCompatibilityTest(n_epochs=5)
    stage.after_refine(state)
    (tested,) = stage.groups_
    assert not tested["incompatible"] and tested["isolation"] < stage.min_isolation
    assert not stage.removed_.any() and state.keep.all()
    assert np.isnan(stage.scores_).all()


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_compatibility_test_does_not_depend_on_n_jobs(backend):
    from joblib import parallel_backend

    # The default network: its trainings run as fixed-thread tasks.
    data, group, _ = _trigger_data()

    def run(n_jobs):
        state = _candidate_state(data, group, None)
        state.refine_learner, state.n_jobs = None, n_jobs
        # A low bar, so that the group is removed and there is a decision
        # to compare.
        stage = LabelCompatibilityTest(n_epochs=10, min_isolation=1.0)
        with parallel_backend(backend, n_jobs=2):
            stage.after_refine(state)
        return stage

    one, two = run(1), run(2)
    assert one.groups_[0]["incompatible"] and one.removed_.any()
    assert one.groups_ == two.groups_
    np.testing.assert_array_equal(one.scores_, two.scores_)
    np.testing.assert_array_equal(one.removed_, two.removed_)


def test_compatibility_test_skips_flagged_groups_and_runs_without_groups():
    data, group, _ = _trigger_data()
    state = _candidate_state(data, group, None)
    state.groups[0]["flagged"] = True
    stage = LabelCompatibilityTest()
    stage.after_refine(state)
    assert stage.groups_ == [] and not stage.removed_.any() and state.keep.all()
    state = _candidate_state(data, group, None)
    state.groups = None
    stage.after_refine(state)
    assert stage.groups_ == [] and state.keep.all()


def _count_models(monkeypatch):
    from sklearn_ispl.experimental import _group_test

    trained = []
    real = _group_test._fit_and_read

    def counting(*args):
        trained.append(args[2])
        return real(*args)

    monkeypatch.setattr(_group_test, "_fit_and_read", counting)
    return trained


@pytest.mark.parametrize("triggered", [True, False])
def test_group_test_decides_as_both_models_would(monkeypatch, triggered):
    from sklearn_ispl.experimental import _group_test

    data, group, hidden = _trigger_data()
    if not triggered:
        X = data.X.copy()
        X[group | hidden, 0, 4:, 4:] -= 1.5
        data = type(data)(X, data.y, 3, data.input_shape)
    blind = np.repeat([0, 1, 2], 120)
    trained = _count_models(monkeypatch)
    screened = GroupTriggerTest(n_epochs=5, n_candidates=1, n_rounds=1)
    screened.after_refine(_candidate_state(data, group, blind))
    n_screened = len(trained)
    monkeypatch.setattr(_group_test, "separation_bound", lambda *args: 1.0)
    full = GroupTriggerTest(n_epochs=5, n_candidates=1, n_rounds=1)
    full.after_refine(_candidate_state(data, group, blind))
    ((one,), (both,)) = screened.groups_, full.groups_
    assert one["confirmed"] == both["confirmed"] == triggered
    np.testing.assert_array_equal(screened.removed_, full.removed_)
    np.testing.assert_array_equal(screened.scores_, full.scores_)
    if triggered:
        assert one == both and n_screened == 2
    else:
        # One model instead of two; both together stay under the bar.
        assert one["separation"] is None and both["separation"] < 0.9
        assert n_screened == 1 and len(trained) == 3


def test_separation_bound_counts_unread_pairs_as_ordered():
    from sklearn_ispl.experimental._group_test import (
        separation_bound,
        separation_from_look,
    )

    members = np.array([True, True, True, True, False, False, False, False])
    look = ~members
    scores = np.array([0.9, 0.2, 0.8, 0.1, 0.3, 0.1, 0.7, 0.6])
    full = separation_from_look(scores, members, look)
    assert separation_bound(scores, members, look) == pytest.approx(full)
    half = scores.copy()
    half[[2, 3, 6, 7]] = np.nan
    # Read: members 0.9, 0.2 against look 0.3, 0.1: 3 of 4 pairs ordered;
    # the other 12 of 16 pairs count as ordered.
    assert separation_bound(half, members, look) == pytest.approx(15 / 16)
    assert separation_bound(half, members, look) >= full
    assert separation_bound(np.full(8, np.nan), members, look) >= 1.0


def test_group_test_candidates_skip_what_the_blind_view_rejects():
    from types import SimpleNamespace

    # Five unflagged groups of label 1, looks 0 and 2..5, most isolated
    # first: the blind view takes the members of the second for their label
    # (a group the refine models misread), those of the others for the look.
    y = np.repeat([0, 1, 2, 3, 4, 5], 12)
    look = y.copy()
    label1 = np.flatnonzero(y == 1)
    looks = [0, 2, 3, 4, 5]
    for k, seen in enumerate(looks):
        look[label1[2 * k : 2 * k + 2]] = seen
    blind = look.copy()
    blind[(y == 1) & (look == 2)] = 1
    groups = [
        {"label": 1, "look": seen, "isolation": 5.0 - k, "flagged": False}
        for k, seen in enumerate(looks)
    ]
    state = SimpleNamespace(
        data=SimpleNamespace(y=y),
        proba=np.eye(6)[look],
        look=blind,
        groups=groups[::-1],
    )
    pairs = [pair for pair, _ in GroupTriggerTest()._candidates(state, [])]
    # The rejected group does not use up a place among the candidates.
    assert pairs == [(1, 0), (1, 3), (1, 4), (1, 5)]
    two = GroupTriggerTest(n_candidates=2)._candidates(state, [(1, 0)])
    assert [pair for pair, _ in two] == [(1, 3), (1, 4)]
    assert [share for _, share in two] == [1.0, 1.0]


def test_separation_from_look_is_the_held_out_auc():
    from sklearn_ispl.experimental._group_test import separation_from_look

    scores = np.array([0.9, 0.8, np.nan, 0.1, 0.85, np.nan])
    members = np.array([True, True, True, False, False, False])
    look = ~members
    # Members 0.9, 0.8 against look 0.1, 0.85: 3 of 4 pairs ordered.
    assert separation_from_look(scores, members, look) == 0.75
    assert separation_from_look(np.full(6, np.nan), members, look) == 0.5


def test_group_test_runs_the_blind_judge_when_none_ran(monkeypatch):
    from sklearn_ispl.experimental import _group_test

    data, group, hidden = _trigger_data()
    asked = []

    def judge(data_, n_neighbors, n_components, seed):
        asked.append(len(data_))
        return np.eye(3)[np.repeat([0, 1, 2], 120)]

    monkeypatch.setattr(_group_test, "blind_judge", judge)
    state = _candidate_state(data, group, None)
    stage = GroupTriggerTest(n_epochs=5, n_candidates=1)
    stage.after_refine(state)
    assert asked == [len(data)]
    assert [g["confirmed"] for g in stage.groups_] == [True]
    assert stage.removed_[group | hidden].all()


def test_group_test_rounds_learn_the_grown_group(monkeypatch):
    from sklearn_ispl.experimental import _group_test

    data, group, hidden = _trigger_data()
    blind = np.repeat([0, 1, 2], 120)
    calls = []
    real = _group_test.group_score_sets

    def spy(data_, learner, groups, *args, **kwargs):
        calls.append([members.copy() for members, _ in groups])
        return real(data_, learner, groups, *args, **kwargs)

    monkeypatch.setattr(_group_test, "group_score_sets", spy)
    one = GroupTriggerTest(n_epochs=5, n_candidates=1, n_rounds=1)
    one.after_refine(_candidate_state(data, group, blind))
    assert len(calls) == 0
    two = GroupTriggerTest(n_epochs=5, n_candidates=1)
    state = _candidate_state(data, group, blind)
    two.after_refine(state)
    # The second round learns the group grown by what the first removed.
    assert len(calls) == 1
    (grown,) = calls[0]
    np.testing.assert_array_equal(grown, one.removed_ & (data.y == 1))
    assert grown[group | hidden].all()
    assert not (one.removed_ & ~two.removed_).any()
    np.testing.assert_array_equal(state.keep, ~two.removed_)
