"""Tests for the dirty-label backdoor attacks in sklearn_ispl.attacks."""

import numpy as np
import pytest

from sklearn_ispl.attacks import (
    CIFAR10_SCENARIOS,
    PAPER_CLASS_PAIRS,
    SCENARIO_KINDS,
    TRIGGERS,
    BackdoorAttack,
    BlendedBackdoorAttack,
    MultiAttack,
    VaryingBackdoorAttack,
    make_blended_scenario,
    make_multi_scenario,
    make_scenario,
    make_varying_scenario,
)
from sklearn_ispl.datasets import CIFAR10_CLASSES

HEIGHT, WIDTH = 6, 7

# Pixels each trigger must cover when placed at (2, 3), written out by hand
# from the paper's description rather than computed from the code's offsets.
EXPECTED_PIXELS = {
    "pixel": {(2, 3)},
    "ell": {(2, 3), (3, 3), (2, 4)},
    "pattern": {(2, 3), (1, 2), (1, 4), (3, 2), (3, 4)},
}

# (layout name, channels, builder of a user array from (n, H, W, C) data,
# reader back to (n, H, W, C), image_shape for the attack)
LAYOUTS = [
    ("nhw", 1, lambda a: a[..., 0], lambda a: a[..., None], None),
    ("nhwc-gray", 1, lambda a: a, lambda a: a, None),
    ("nhwc", 3, lambda a: a, lambda a: a, None),
    (
        "nchw",
        3,
        lambda a: a.transpose(0, 3, 1, 2),
        lambda a: a.transpose(0, 2, 3, 1),
        None,
    ),
    (
        "flat-gray",
        1,
        lambda a: a.reshape(len(a), -1),
        lambda a: a.reshape(len(a), HEIGHT, WIDTH, 1),
        (HEIGHT, WIDTH),
    ),
    (
        "flat",
        3,
        lambda a: a.reshape(len(a), -1),
        lambda a: a.reshape(len(a), HEIGHT, WIDTH, 3),
        (HEIGHT, WIDTH, 3),
    ),
]


def _attack(**params):
    settings = dict(
        source=0,
        target=1,
        trigger="pixel",
        position=(2, 3),
        color=255,
        eps=0.1,
        random_state=0,
    )
    settings.update(params)
    return BackdoorAttack(**settings)


def _dataset(n_per_class=50, n_classes=3, channels=1, dtype=np.uint8, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randint(0, 100, size=(n_per_class * n_classes, HEIGHT, WIDTH, channels))
    y = np.repeat(np.arange(n_classes), n_per_class)
    return X.astype(dtype), y


class TestTriggerPixels:
    @pytest.mark.parametrize("trigger", TRIGGERS)
    @pytest.mark.parametrize(
        ("name", "channels", "to_user", "to_nhwc", "image_shape"), LAYOUTS
    )
    def test_exact_pixels_written(
        self, trigger, name, channels, to_user, to_nhwc, image_shape
    ):
        color = 200 if channels == 1 else (10, 20, 30)
        X = to_user(np.zeros((4, HEIGHT, WIDTH, channels), dtype=np.uint8))
        attack = _attack(trigger=trigger, color=color, image_shape=image_shape)
        X_t = attack.apply_trigger(X)
        assert X_t.shape == X.shape and X_t.dtype == X.dtype
        images = to_nhwc(X_t)
        written = {
            (int(r), int(c))
            for r, c in zip(*np.nonzero(images.any(axis=(0, 3))), strict=True)
        }
        assert written == EXPECTED_PIXELS[trigger]
        for row, col in EXPECTED_PIXELS[trigger]:
            np.testing.assert_array_equal(
                images[:, row, col, :], np.broadcast_to(color, (4, channels))
            )

    def test_trigger_pixels_method(self):
        for trigger, expected in EXPECTED_PIXELS.items():
            pixels = _attack(trigger=trigger).trigger_pixels((HEIGHT, WIDTH))
            assert {tuple(p) for p in pixels.tolist()} == expected

    def test_scalar_color_fills_every_channel(self):
        X, _ = _dataset(channels=3)
        X_t = _attack(color=7).apply_trigger(X)
        np.testing.assert_array_equal(X_t[:, 2, 3, :], 7)

    def test_other_pixels_untouched(self):
        X, _ = _dataset(channels=3)
        X_t = _attack(trigger="pattern", color=(1, 2, 3)).apply_trigger(X)
        mask = np.ones((HEIGHT, WIDTH), dtype=bool)
        for row, col in EXPECTED_PIXELS["pattern"]:
            mask[row, col] = False
        np.testing.assert_array_equal(X_t[:, mask], X[:, mask])

    def test_float_images(self):
        X = np.random.RandomState(0).rand(5, HEIGHT, WIDTH).astype(np.float32)
        X_t = _attack(color=1.0).apply_trigger(X)
        assert X_t.dtype == np.float32
        np.testing.assert_array_equal(X_t[:, 2, 3], 1.0)

    def test_idempotent(self):
        X, _ = _dataset()
        attack = _attack(trigger="ell")
        once = attack.apply_trigger(X)
        np.testing.assert_array_equal(attack.apply_trigger(once), once)

    def test_edge_positions_fit(self):
        # The last positions at which each shape still fits the image.
        for trigger, position in [
            ("pixel", (HEIGHT - 1, WIDTH - 1)),
            ("ell", (HEIGHT - 2, WIDTH - 2)),
            ("pattern", (HEIGHT - 2, WIDTH - 2)),
            ("pattern", (1, 1)),
        ]:
            X = np.zeros((1, HEIGHT, WIDTH))
            X_t = _attack(trigger=trigger, position=position).apply_trigger(X)
            assert np.count_nonzero(X_t) == len(EXPECTED_PIXELS[trigger])


class TestPoison:
    @pytest.mark.parametrize(
        ("eps", "expected"),
        [(0.1, 5), (0.25, 13), (0.5, 25), (1.0, 50), (0.001, 1), (0.03, 2)],
    )
    def test_count(self, eps, expected):
        X, y = _dataset(n_per_class=50)
        _, _, mask = _attack(eps=eps).poison(X, y)
        assert mask.sum() == expected

    def test_poisoned_samples_are_source_relabelled_and_triggered(self):
        X, y = _dataset()
        attack = _attack(source=2, target=0, trigger="pattern", eps=0.3)
        X_p, y_p, mask = attack.poison(X, y)
        assert mask.dtype == bool and mask.shape == y.shape
        assert np.all(y[mask] == 2)
        assert np.all(y_p[mask] == 0)
        np.testing.assert_array_equal(y_p[~mask], y[~mask])
        np.testing.assert_array_equal(X_p[~mask], X[~mask])
        np.testing.assert_array_equal(X_p[mask], attack.apply_trigger(X[mask]))
        assert not np.array_equal(X_p[mask], X[mask])

    def test_reproducible_with_seed(self):
        X, y = _dataset()
        first = _attack(random_state=3).poison(X, y)
        second = _attack(random_state=3).poison(X, y)
        for a, b in zip(first, second, strict=True):
            np.testing.assert_array_equal(a, b)
        other = _attack(random_state=4).poison(X, y)[2]
        assert not np.array_equal(first[2], other)

    def test_random_state_instance_advances(self):
        X, y = _dataset()
        attack = _attack(random_state=np.random.RandomState(0), eps=0.2)
        assert not np.array_equal(attack.poison(X, y)[2], attack.poison(X, y)[2])

    def test_inputs_unmodified(self):
        X, y = _dataset(channels=3)
        X_before, y_before = X.copy(), y.copy()
        X_p, y_p, _ = _attack(eps=0.5).poison(X, y)
        np.testing.assert_array_equal(X, X_before)
        np.testing.assert_array_equal(y, y_before)
        assert not np.shares_memory(X_p, X) and not np.shares_memory(y_p, y)

    @pytest.mark.parametrize(
        ("name", "channels", "to_user", "to_nhwc", "image_shape"), LAYOUTS
    )
    def test_read_only_inputs(self, name, channels, to_user, to_nhwc, image_shape):
        X, y = _dataset(channels=channels)
        X = to_user(X)
        X.setflags(write=False)
        y.setflags(write=False)
        color = 9 if channels == 1 else (9, 9, 9)
        attack = _attack(color=color, image_shape=image_shape)
        X_p, y_p, mask = attack.poison(X, y)
        X_t = attack.apply_trigger(X)
        assert X_p.flags.writeable and y_p.flags.writeable and X_t.flags.writeable
        assert X_p.shape == X.shape and X_p.dtype == X.dtype
        np.testing.assert_array_equal(to_nhwc(X_p)[mask][:, 2, 3, :], 9)

    def test_label_dtypes_kept(self):
        X, y = _dataset()
        names = np.array(["cat", "dog", "emu"])[y]
        _, y_p, mask = _attack(source="cat", target="dog").poison(X, names)
        assert y_p.dtype == names.dtype
        assert set(y_p[mask]) == {"dog"}
        _, y_p, _ = _attack().poison(X, y.astype(np.int8))
        assert y_p.dtype == np.int8

    def test_list_inputs(self):
        X, y = _dataset(n_per_class=5)
        X_p, y_p, mask = _attack(eps=0.4).poison(X.tolist(), y.tolist())
        assert isinstance(X_p, np.ndarray) and mask.sum() == 2


class TestErrors:
    @pytest.mark.parametrize(
        ("params", "match"),
        [
            ({"trigger": "pattern", "position": (0, 3)}, "outside"),
            ({"trigger": "pattern", "position": (HEIGHT - 1, 3)}, "outside"),
            ({"trigger": "ell", "position": (2, WIDTH - 1)}, "outside"),
            ({"trigger": "pixel", "position": (HEIGHT, 0)}, "outside"),
            ({"trigger": "square"}, "trigger must be one of"),
            ({"trigger": None}, "trigger must be one of"),
            ({"position": (-1, 2)}, "position"),
            ({"position": (1.0, 2)}, "position"),
            ({"position": (1, 2, 3)}, "position"),
            ({"position": 3}, "position"),
            ({"eps": 0}, "eps"),
            ({"eps": 1.5}, "eps"),
            ({"eps": -0.1}, "eps"),
            ({"eps": float("nan")}, "eps"),
            ({"eps": True}, "eps"),
            ({"eps": "0.1"}, "eps"),
            ({"source": 1, "target": 1}, "must differ"),
            ({"source": 7}, "source=7 does not occur"),
            ({"source": [0, 1]}, "single class label"),
            ({"color": (1, 2, 3)}, "3 values but the images have 1 channel"),
            ({"color": 256}, "cannot be stored in uint8"),
            ({"color": -1}, "cannot be stored in uint8"),
            ({"color": 1.5}, "cannot be stored in uint8"),
            ({"color": float("nan")}, "color must be"),
            ({"color": "white"}, "color must be"),
            ({"color": []}, "color must be"),
            ({"target": 300}, "cannot be stored in y"),
            ({"target": 1.5}, "cannot be stored in y"),
        ],
    )
    def test_bad_params(self, params, match):
        X, y = _dataset()
        attack = _attack(**params)
        X_before = X.copy()
        with pytest.raises(ValueError, match=match):
            attack.poison(X[..., 0], y.astype(np.int8))
        np.testing.assert_array_equal(X, X_before)

    def test_truncated_string_target(self):
        X, y = _dataset()
        names = np.array(["cat", "dog", "emu"])[y]
        with pytest.raises(ValueError, match="target='horse' cannot be stored"):
            _attack(source="cat", target="horse").poison(X, names)

    def test_color_channels_mismatch_rgb(self):
        X, y = _dataset(channels=3)
        with pytest.raises(ValueError, match="2 values but the images have 3"):
            _attack(color=(1, 2)).poison(X, y)

    def test_flat_without_image_shape(self):
        X, y = _dataset()
        with pytest.raises(ValueError, match="image_shape"):
            _attack().poison(X.reshape(len(X), -1), y)

    def test_image_shape_mismatch(self):
        X, y = _dataset()
        with pytest.raises(ValueError, match="does not match"):
            _attack(image_shape=(HEIGHT, WIDTH, 3)).poison(X, y)

    def test_length_mismatch(self):
        X, y = _dataset()
        with pytest.raises(ValueError, match="same number of samples"):
            _attack().poison(X, y[:-1])

    def test_y_not_1d(self):
        X, y = _dataset()
        with pytest.raises(ValueError, match="y must be 1-D"):
            _attack().poison(X, y[:, None])

    def test_non_numeric_pixels(self):
        X, y = _dataset()
        with pytest.raises(ValueError, match="integer or floating-point"):
            _attack().poison(X.astype(bool), y)

    def test_bad_ndim(self):
        with pytest.raises(ValueError, match="ndim=1"):
            _attack().apply_trigger(np.zeros(10))


def test_repr_round_trips():
    attack = _attack(trigger="ell", color=(1, 2, 3), image_shape=(6, 7, 3))
    text = repr(attack)
    assert text.startswith("BackdoorAttack(") and "trigger='ell'" in text
    rebuilt = eval(text, {"BackdoorAttack": BackdoorAttack})
    assert vars(rebuilt) == vars(attack)


def test_init_only_stores_params():
    # Invalid values are accepted by the constructor and reported on use.
    attack = BackdoorAttack(0, 0, trigger="nope", position=None, color=None, eps=9)
    assert attack.eps == 9 and attack.trigger == "nope"


class TestMakeScenario:
    def test_reproducible(self):
        first = make_scenario((32, 32, 3), 0, 2, random_state=5)
        second = make_scenario((32, 32, 3), 0, 2, random_state=5)
        assert vars(first) == vars(second)
        assert vars(first) != vars(make_scenario((32, 32, 3), 0, 2, random_state=6))

    def test_draws_cover_every_valid_position(self):
        # On a 3x3 image the valid anchors are few enough to enumerate.
        seen = {trigger: set() for trigger in TRIGGERS}
        for seed in range(400):
            attack = make_scenario((3, 3), 0, 1, random_state=seed)
            seen[attack.trigger].add(attack.position)
        assert seen["pixel"] == {(r, c) for r in range(3) for c in range(3)}
        assert seen["ell"] == {(r, c) for r in range(2) for c in range(2)}
        assert seen["pattern"] == {(1, 1)}

    def test_valid_and_in_range(self):
        X = np.zeros((1, 10, 12, 3), dtype=np.uint8)
        for seed in range(60):
            attack = make_scenario((10, 12, 3), 0, 1, eps=0.2, random_state=seed)
            assert attack.eps == 0.2 and (attack.source, attack.target) == (0, 1)
            assert len(attack.color) == 3
            assert all(isinstance(v, int) and 0 <= v <= 255 for v in attack.color)
            triggered = attack.apply_trigger(X)
            assert triggered.any(axis=3).sum() == len(
                attack.trigger_pixels((10, 12, 3))
            )

    def test_colors_span_the_range(self):
        colors = np.array(
            [make_scenario((5, 5, 3), 0, 1, random_state=s).color for s in range(300)]
        )
        assert colors.min() < 20 and colors.max() > 235

    def test_grayscale_gets_scalar_color(self):
        attack = make_scenario((8, 8), 0, 1, random_state=0, max_value=16)
        assert np.ndim(attack.color) == 0 and 0 <= attack.color <= 16
        X = np.zeros((2, 8, 8))
        assert np.count_nonzero(attack.apply_trigger(X)) <= 2 * 5

    def test_float_max_value(self):
        colors = [
            make_scenario((8, 8), 0, 1, random_state=s, max_value=1.0).color
            for s in range(50)
        ]
        assert all(isinstance(c, float) and 0 <= c < 1 for c in colors)
        assert len(set(colors)) == 50

    def test_min_contrast(self):
        without = [
            make_scenario((8, 8), 0, 1, random_state=s, max_value=16).color
            for s in range(200)
        ]
        assert min(without) < 4  # the paper's rule allows near-black triggers
        with_contrast = [
            make_scenario(
                (8, 8), 0, 1, random_state=s, max_value=16, min_contrast=8
            ).color
            for s in range(200)
        ]
        assert min(with_contrast) >= 8
        rgb = [
            make_scenario((8, 8, 3), 0, 1, random_state=s, min_contrast=200).color
            for s in range(100)
        ]
        assert min(max(color) for color in rgb) >= 200

    def test_image_shape_carried_for_flat_rows(self):
        attack = make_scenario((8, 8), 0, 1, random_state=0, max_value=16)
        X = np.zeros((3, 64))
        X_t = attack.apply_trigger(X)
        np.testing.assert_array_equal(
            X_t.reshape(3, 8, 8), attack.apply_trigger(X.reshape(3, 8, 8))
        )

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"image_shape": (2, 8)}, "too small"),
            ({"image_shape": (8,)}, "image_shape"),
            ({"max_value": 0}, "max_value"),
            ({"max_value": -1.0}, "max_value"),
            ({"max_value": "255"}, "max_value"),
            ({"min_contrast": -1}, "min_contrast"),
            ({"min_contrast": 300}, "min_contrast"),
            ({"max_value": 1.0, "min_contrast": 1.0}, "min_contrast"),
            ({"eps": 0}, "eps"),
            ({"target": 0}, "must differ"),
        ],
    )
    def test_errors(self, kwargs, match):
        params = dict(image_shape=(8, 8), source=0, target=1)
        params.update(kwargs)
        with pytest.raises(ValueError, match=match):
            make_scenario(**params)


class TestPaperScenarios:
    def test_class_pairs_match_names(self):
        by_name = [
            ("airplane", "bird"),
            ("automobile", "cat"),
            ("bird", "dog"),
            ("cat", "dog"),
            ("cat", "horse"),
            ("horse", "deer"),
            ("ship", "frog"),
            ("truck", "bird"),
        ]
        assert [
            (CIFAR10_CLASSES[s], CIFAR10_CLASSES[t]) for s, t in PAPER_CLASS_PAIRS
        ] == by_name

    def test_24_scenarios_three_per_pair_in_order(self):
        assert len(CIFAR10_SCENARIOS) == 24
        pairs = [(s["source"], s["target"]) for s in CIFAR10_SCENARIOS]
        assert pairs == [pair for pair in PAPER_CLASS_PAIRS for _ in range(3)]
        assert len({(s["position"], s["color"]) for s in CIFAR10_SCENARIOS}) == 24

    @pytest.mark.parametrize("index", range(24))
    def test_each_is_a_valid_attack_on_cifar_images(self, index):
        scenario = CIFAR10_SCENARIOS[index]
        assert set(scenario) == {"source", "target", "trigger", "position", "color"}
        attack = BackdoorAttack(**scenario, eps=0.05)
        X = np.zeros((1, 32, 32, 3), dtype=np.uint8)
        X_t = attack.apply_trigger(X)
        size = {"pixel": 1, "ell": 3, "pattern": 5}[scenario["trigger"]]
        # Some colours have a zero channel, so count pixels, not values.
        assert X_t.any(axis=3).sum() == size
        row, col = scenario["position"]
        np.testing.assert_array_equal(X_t[0, row, col], scenario["color"])

    def test_table_1_positions(self):
        # Table 1 (single-pixel results) lists poison 1 of four pairs with
        # its position; they must agree with the Table 2 transcription.
        first = {(s["source"], s["target"]): s for s in CIFAR10_SCENARIOS[::3]}
        for pair, position in [
            ((2, 5), (27, 9)),
            ((7, 4), (15, 4)),
            ((8, 6), (4, 1)),
            ((9, 2), (4, 27)),
        ]:
            assert first[pair]["trigger"] == "pixel"
            assert first[pair]["position"] == position

    def test_mix_of_triggers(self):
        counts = {t: 0 for t in TRIGGERS}
        for scenario in CIFAR10_SCENARIOS:
            counts[scenario["trigger"]] += 1
        assert counts == {"pixel": 15, "ell": 4, "pattern": 5}


def test_existing_draws_pinned():
    # The committed benchmark results depend on these exact draws.
    attack = make_scenario((32, 32, 3), 0, 2, eps=0.05, random_state=0)
    assert vars(attack) == {
        "source": 0,
        "target": 2,
        "trigger": "pixel",
        "position": (15, 21),
        "color": (192, 67, 251),
        "eps": 0.05,
        "image_shape": (32, 32, 3),
        "random_state": 192771779,
    }
    X = np.zeros((300, 32, 32, 3), dtype=np.uint8)
    y = np.repeat(np.arange(3), 100)
    assert np.flatnonzero(attack.poison(X, y)[2]).tolist() == [9, 22, 23, 86, 98]
    table = BackdoorAttack(**CIFAR10_SCENARIOS[0], eps=0.1, random_state=7)
    expected = [15, 22, 26, 37, 49, 71, 78, 86, 91, 93]
    assert np.flatnonzero(table.poison(X, y)[2]).tolist() == expected


# -- shared checks of the new attacks ---------------------------------------


def _blended(**params):
    settings = dict(source=0, target=1, alpha=0.2, eps=0.1, random_state=0)
    settings.update(params)
    return BlendedBackdoorAttack(**settings)


def _varying(**params):
    settings = dict(
        source=0,
        target=1,
        trigger="pixel",
        position=(2, 3),
        color_range=(160, 255),
        eps=0.1,
        random_state=0,
    )
    settings.update(params)
    return VaryingBackdoorAttack(**settings)


NEW_ATTACKS = [
    pytest.param(_blended, id="blended"),
    pytest.param(_varying, id="varying"),
]


class TestNewAttacksPoison:
    @pytest.mark.parametrize("make", NEW_ATTACKS)
    @pytest.mark.parametrize(("eps", "expected"), [(0.1, 5), (0.25, 13), (1.0, 50)])
    def test_count(self, make, eps, expected):
        X, y = _dataset(n_per_class=50)
        _, _, mask = make(eps=eps).poison(X, y)
        assert mask.dtype == bool and mask.sum() == expected

    @pytest.mark.parametrize("make", NEW_ATTACKS)
    def test_only_poisoned_change(self, make):
        X, y = _dataset(channels=3)
        X_p, y_p, mask = make(source=2, target=0, eps=0.3).poison(X, y)
        assert np.all(y[mask] == 2) and np.all(y_p[mask] == 0)
        np.testing.assert_array_equal(y_p[~mask], y[~mask])
        np.testing.assert_array_equal(X_p[~mask], X[~mask])
        # Every poisoned image carries the trigger.
        assert np.all((X_p[mask] != X[mask]).any(axis=(1, 2, 3)))

    @pytest.mark.parametrize("make", NEW_ATTACKS)
    def test_same_images_as_backdoor_attack(self, make):
        X, y = _dataset()
        for seed in (0, 5):
            expected = _attack(eps=0.3, random_state=seed).poison(X, y)[2]
            mask = make(eps=0.3, random_state=seed).poison(X, y)[2]
            np.testing.assert_array_equal(mask, expected)

    @pytest.mark.parametrize("make", NEW_ATTACKS)
    def test_reproducible_with_seed(self, make):
        X, y = _dataset()
        first = make(random_state=3).poison(X, y)
        second = make(random_state=3).poison(X, y)
        for a, b in zip(first, second, strict=True):
            np.testing.assert_array_equal(a, b)
        assert not np.array_equal(first[2], make(random_state=4).poison(X, y)[2])

    @pytest.mark.parametrize("make", NEW_ATTACKS)
    @pytest.mark.parametrize(
        ("name", "channels", "to_user", "to_nhwc", "image_shape"), LAYOUTS
    )
    def test_layouts_read_only_inputs_unmodified(
        self, make, name, channels, to_user, to_nhwc, image_shape
    ):
        X, y = _dataset(channels=channels)
        X = to_user(X)
        X_before, y_before = X.copy(), y.copy()
        X.setflags(write=False)
        y.setflags(write=False)
        attack = make(image_shape=image_shape, eps=0.5)
        X_p, y_p, mask = attack.poison(X, y)
        X_t = attack.apply_trigger(X)
        np.testing.assert_array_equal(X, X_before)
        np.testing.assert_array_equal(y, y_before)
        for out in (X_p, X_t):
            assert out.shape == X.shape and out.dtype == X.dtype
            assert out.flags.writeable and not np.shares_memory(out, X)
        np.testing.assert_array_equal(to_nhwc(X_p)[~mask], to_nhwc(X)[~mask])
        assert not np.array_equal(to_nhwc(X_p)[mask], to_nhwc(X)[mask])

    @pytest.mark.parametrize("make", NEW_ATTACKS)
    @pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32, np.float64])
    def test_dtype_kept(self, make, dtype):
        X, y = _dataset(dtype=dtype)
        if np.dtype(dtype).kind == "f":
            X = X / 100
        attack = make(**({} if make is _blended else {"color_range": (1, 2)}))
        X_p, y_p, _ = attack.poison(X.astype(dtype), y.astype(np.int8))
        assert X_p.dtype == dtype and y_p.dtype == np.int8
        assert attack.apply_trigger(X.astype(dtype)).dtype == dtype

    @pytest.mark.parametrize("make", NEW_ATTACKS)
    def test_repr_round_trips(self, make):
        attack = make(image_shape=(6, 7, 3))
        rebuilt = eval(repr(attack), {type(attack).__name__: type(attack)})
        assert vars(rebuilt) == vars(attack)
        assert set(vars(attack)) == set(type(attack)._param_names)


class TestBlended:
    def test_formula_float(self):
        rng = np.random.RandomState(1)
        X = rng.rand(4, HEIGHT, WIDTH, 3)
        pattern = rng.rand(HEIGHT, WIDTH, 3)
        X_t = _blended(alpha=0.3, pattern=pattern).apply_trigger(X)
        np.testing.assert_allclose(X_t, 0.7 * X + 0.3 * pattern, rtol=1e-12)

    def test_formula_float32_stays_float32(self):
        X = np.random.RandomState(1).rand(4, HEIGHT, WIDTH).astype(np.float32)
        X_t = _blended(alpha=0.5, pattern=np.ones((HEIGHT, WIDTH))).apply_trigger(X)
        assert X_t.dtype == np.float32
        np.testing.assert_allclose(X_t, 0.5 * X + 0.5, rtol=1e-6)

    def test_uint8_rounds_and_clips(self):
        X = np.zeros((1, 2, 2), dtype=np.uint8)
        X[0, 0, 0] = 100
        pattern = np.array([[200, 7], [300, -50]])
        X_t = _blended(alpha=0.25, pattern=pattern).apply_trigger(X)
        # 0.75 * 100 + 0.25 * 200 = 125; 0.25 * 7 = 1.75 rounds (not
        # truncates) to 2; 75 and -12.5 stay in uint8's range.
        np.testing.assert_array_equal(X_t[0], [[125, 2], [75, 0]])
        X_t = _blended(alpha=1.0, pattern=pattern).apply_trigger(X)
        np.testing.assert_array_equal(X_t[0], [[200, 7], [255, 0]])

    def test_gray_pattern_on_every_channel(self):
        X, _ = _dataset(channels=3)
        pattern = np.arange(HEIGHT * WIDTH).reshape(HEIGHT, WIDTH)
        X_t = _blended(alpha=1.0, pattern=pattern).apply_trigger(X)
        for channel in range(3):
            np.testing.assert_array_equal(X_t[..., channel][0], pattern)

    def test_noise_pattern_whole_image_in_range(self):
        pattern = _blended(pattern_seed=4).trigger_pattern((32, 32, 3))
        assert pattern.shape == (32, 32, 3)
        assert pattern.min() >= 0 and pattern.max() < 255
        assert 110 < pattern.mean() < 145  # uniform over [0, 255)
        assert len(np.unique(pattern)) > 3000  # noise, not a constant
        floats = _blended().trigger_pattern((8, 8), dtype=np.float32)
        assert floats.shape == (8, 8) and 0 <= floats.min() and floats.max() < 1
        digits = _blended(value_range=(0, 16)).trigger_pattern((8, 8))
        assert digits.max() > 8 and digits.max() < 16

    def test_noise_pattern_is_what_is_blended(self):
        X, y = _dataset(channels=3)
        attack = _blended(alpha=0.4, pattern_seed=9, random_state=None)
        pattern = attack.trigger_pattern((HEIGHT, WIDTH, 3))
        X_t = attack.apply_trigger(X)
        expected = np.clip(np.rint(0.6 * X + 0.4 * pattern), 0, 255)
        np.testing.assert_array_equal(X_t, expected)
        # poison and apply_trigger blend the same pattern even without a seed.
        X_p, _, mask = attack.poison(X, y)
        np.testing.assert_array_equal(X_p[mask], X_t[mask])

    def test_pattern_seed(self):
        same = _blended(pattern_seed=1).trigger_pattern((8, 8))
        np.testing.assert_array_equal(
            same, _blended(pattern_seed=1, random_state=5).trigger_pattern((8, 8))
        )
        assert not np.array_equal(
            same, _blended(pattern_seed=2).trigger_pattern((8, 8))
        )

    @pytest.mark.parametrize(
        ("params", "match"),
        [
            ({"alpha": 0}, "alpha must be"),
            ({"alpha": 1.5}, "alpha must be"),
            ({"alpha": float("nan")}, "alpha must be"),
            ({"alpha": True}, "alpha must be"),
            ({"alpha": "0.2"}, "alpha must be"),
            ({"pattern": np.zeros((HEIGHT, WIDTH + 1))}, "pattern has shape"),
            ({"pattern": np.zeros((HEIGHT, WIDTH, 3))}, "pattern has shape"),
            ({"pattern": np.zeros(HEIGHT)}, "pattern must be"),
            ({"pattern": [["a"]]}, "pattern must be"),
            ({"pattern": np.full((HEIGHT, WIDTH), np.inf)}, "pattern must be"),
            ({"pattern_seed": -1}, "pattern_seed"),
            ({"pattern_seed": 2**32}, "pattern_seed"),
            ({"pattern_seed": 1.5}, "pattern_seed"),
            ({"pattern_seed": None}, "pattern_seed"),
            ({"value_range": (1, 0)}, "value_range"),
            ({"value_range": (0,)}, "value_range"),
            ({"value_range": "0-255"}, "value_range"),
            ({"eps": 0}, "eps"),
            ({"source": 1, "target": 1}, "must differ"),
            ({"source": 7}, "source=7 does not occur"),
            ({"target": 300}, "cannot be stored in y"),
        ],
    )
    def test_bad_params(self, params, match):
        X, y = _dataset()
        X_before = X.copy()
        with pytest.raises(ValueError, match=match):
            _blended(**params).poison(X[..., 0], y.astype(np.int8))
        np.testing.assert_array_equal(X, X_before)


class TestVarying:
    def test_values_in_range_and_per_image(self):
        X, y = _dataset(channels=3)  # values below 100, so stamps stand out
        attack = _varying(trigger="pattern", eps=1.0)
        X_p, _, mask = attack.poison(X, y)
        changed = (X_p != X).any(axis=(0, 3))
        assert {
            (int(r), int(c)) for r, c in zip(*np.nonzero(changed), strict=True)
        } == (EXPECTED_PIXELS["pattern"])
        values = X_p[mask][:, 2, 3, :]
        assert values.min() >= 160 and values.max() <= 255
        # One intensity per image, on every channel and trigger pixel.
        np.testing.assert_array_equal(values, values[:, :1].repeat(3, axis=1))
        np.testing.assert_array_equal(X_p[mask][:, 1, 2, :], values)
        assert len(np.unique(values[:, 0])) > 20

    def test_apply_trigger_draws_the_same_way(self):
        X, _ = _dataset(n_per_class=100)
        attack = _varying(color_range=(200, 210), random_state=2)
        X_t = attack.apply_trigger(X)
        values = X_t[:, 2, 3, 0]
        assert values.min() >= 200 and values.max() <= 210
        assert set(values.tolist()) == set(range(200, 211))
        np.testing.assert_array_equal(attack.apply_trigger(X), X_t)
        other = _varying(color_range=(200, 210), random_state=3)
        assert not np.array_equal(other.apply_trigger(X), X_t)
        # A generator instance advances: fresh values on every call.
        shared = _varying(random_state=np.random.RandomState(2))
        assert not np.array_equal(shared.apply_trigger(X), shared.apply_trigger(X))

    def test_float_values(self):
        X = np.zeros((200, HEIGHT, WIDTH), dtype=np.float32)
        X_t = _varying(color_range=(0.5, 0.75)).apply_trigger(X)
        values = X_t[:, 2, 3]
        assert X_t.dtype == np.float32
        assert values.min() >= 0.5 and values.max() <= 0.75
        assert len(np.unique(values)) == 200

    def test_constant_range_is_a_fixed_stamp(self):
        X, y = _dataset()
        fixed = _attack(color=200).poison(X, y)
        varying = _varying(color_range=(200, 200)).poison(X, y)
        for a, b in zip(fixed, varying, strict=True):
            np.testing.assert_array_equal(a, b)

    @pytest.mark.parametrize(
        ("trigger", "position", "jitter"),
        [("pixel", (3, 3), 2), ("pattern", (2, 2), 3), ("ell", (0, 0), 4)],
    )
    def test_jitter(self, trigger, position, jitter):
        X = np.zeros((300, 8, 8), dtype=np.uint8)
        attack = _varying(trigger=trigger, position=position, jitter=jitter)
        X_t = attack.apply_trigger(X)
        size = len(EXPECTED_PIXELS[trigger])
        assert np.all(np.count_nonzero(X_t, axis=(1, 2)) == size)
        offsets = np.array(
            [(r - 2, c - 3) for r, c in sorted(EXPECTED_PIXELS[trigger])]
        )
        anchors = set()
        for image in X_t:
            pixels = np.array(sorted(zip(*np.nonzero(image), strict=True)))
            anchor = pixels - offsets
            # The whole shape moves together.
            assert len({tuple(a) for a in anchor.tolist()}) == 1
            anchors.add(tuple(anchor[0].tolist()))
        rows = {r for r, _ in anchors}
        cols = {c for _, c in anchors}
        # Within `jitter` of `position`, and never outside the image.
        assert max(abs(r - position[0]) for r in rows) <= jitter
        assert max(abs(c - position[1]) for c in cols) <= jitter
        lowest = max(position[0] - jitter, -offsets[:, 0].min())
        highest = min(position[0] + jitter, 7 - offsets[:, 0].max())
        assert rows == set(range(lowest, highest + 1))
        assert len(anchors) > len(rows)

    def test_no_jitter_stays_in_place(self):
        X = np.zeros((50, HEIGHT, WIDTH), dtype=np.uint8)
        X_t = _varying(trigger="ell").apply_trigger(X)
        written = {
            (int(r), int(c)) for r, c in zip(*np.nonzero(X_t.any(axis=0)), strict=True)
        }
        assert written == EXPECTED_PIXELS["ell"]

    @pytest.mark.parametrize(
        ("params", "match"),
        [
            ({"color_range": (255, 160)}, "color_range must be"),
            ({"color_range": (160,)}, "color_range must be"),
            ({"color_range": 200}, "color_range must be"),
            ({"color_range": (0, float("nan"))}, "color_range must be"),
            ({"color_range": ("a", "b")}, "color_range must be"),
            ({"color_range": (0, 256)}, "color_range=.* cannot be stored in uint8"),
            ({"color_range": (-1, 5)}, "color_range=.* cannot be stored in uint8"),
            ({"color_range": (0.5, 1)}, "color_range=.* cannot be stored in uint8"),
            ({"jitter": -1}, "jitter must be"),
            ({"jitter": 1.5}, "jitter must be"),
            ({"jitter": True}, "jitter must be"),
            ({"trigger": "square"}, "trigger must be one of"),
            ({"position": (-1, 2)}, "position"),
            ({"trigger": "pattern", "position": (0, 3)}, "outside"),
            ({"eps": 1.5}, "eps"),
            ({"source": 1, "target": 1}, "must differ"),
            ({"source": 7}, "source=7 does not occur"),
        ],
    )
    def test_bad_params(self, params, match):
        X, y = _dataset()
        X_before = X.copy()
        with pytest.raises(ValueError, match=match):
            _varying(**params).poison(X, y)
        np.testing.assert_array_equal(X, X_before)


def _multi_attacks():
    return [
        _attack(source=0, target=1, trigger="pattern", eps=0.2, random_state=0),
        _blended(source=1, target=2, alpha=0.5, eps=0.1, random_state=1),
        _varying(source=2, target=0, eps=0.3, random_state=2),
    ]


class TestMultiAttack:
    def test_each_attack_on_its_own_images(self):
        X, y = _dataset(channels=3)
        attacks = _multi_attacks()
        X_p, y_p, mask, ids = MultiAttack(attacks).poison(X, y, return_ids=True)
        assert ids.dtype.kind == "i" and set(np.unique(ids)) == {-1, 0, 1, 2}
        np.testing.assert_array_equal(mask, ids >= 0)
        assert [int((ids == k).sum()) for k in range(3)] == [10, 5, 15]
        np.testing.assert_array_equal(X_p[ids < 0], X[ids < 0])
        np.testing.assert_array_equal(y_p[ids < 0], y[ids < 0])
        for k, attack in enumerate(attacks):
            assert np.all(y[ids == k] == attack.source)
            assert np.all(y_p[ids == k] == attack.target)
        # Deterministic triggers: exactly what each attack writes.
        for k in (0, 1):
            np.testing.assert_array_equal(
                X_p[ids == k], attacks[k].apply_trigger(X[ids == k])
            )
        assert np.all(X_p[ids == 2][:, 2, 3, :] >= 160)

    def test_same_source_disjoint(self):
        # Twice the same seed on the same class: without the exclusion both
        # attacks would draw the very same images.
        X, y = _dataset()
        first = _attack(eps=0.5, random_state=0)
        second = _attack(target=2, eps=0.5, random_state=0, trigger="ell")
        X_p, y_p, mask, ids = MultiAttack([first, second]).poison(X, y, return_ids=True)
        assert (ids == 0).sum() == 25 and (ids == 1).sum() == 25
        np.testing.assert_array_equal(mask, y == 0)
        np.testing.assert_array_equal(y_p[ids == 1], 2)
        # The first attack poisons what it poisons alone.
        np.testing.assert_array_equal(ids == 0, first.poison(X, y)[2])

    def test_too_few_clean_images_left(self):
        X, y = _dataset()
        attacks = [_attack(eps=0.6), _varying(target=2, eps=0.6)]
        with pytest.raises(ValueError, match="only 20 source images are left"):
            MultiAttack(attacks).poison(X, y)

    def test_default_return_like_single_attack(self):
        X, y = _dataset()
        out = MultiAttack(_multi_attacks()).poison(X, y)
        assert len(out) == 3 and out[2].dtype == bool

    def test_reproducible_inputs_unmodified_dtype(self):
        X, y = _dataset(dtype=np.float32)
        X_before, y_before = X.copy(), y.copy()
        first = MultiAttack(_multi_attacks()).poison(X, y, return_ids=True)
        second = MultiAttack(_multi_attacks()).poison(X, y, return_ids=True)
        for a, b in zip(first, second, strict=True):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(X, X_before)
        np.testing.assert_array_equal(y, y_before)
        assert first[0].dtype == np.float32

    def test_apply_trigger(self):
        X, _ = _dataset()
        attacks = _multi_attacks()
        multi = MultiAttack(attacks)
        for k, attack in enumerate(attacks):
            np.testing.assert_array_equal(
                multi.apply_trigger(X, attack=k), attack.apply_trigger(X)
            )
        for bad in (None, 3, -1, True, 1.0):
            with pytest.raises(ValueError, match="attack must be the index"):
                multi.apply_trigger(X, attack=bad)

    @pytest.mark.parametrize(
        "attacks", [[], None, "abc", [object()], [MultiAttack([_attack()])]]
    )
    def test_bad_attacks(self, attacks):
        X, y = _dataset()
        with pytest.raises(ValueError, match="attacks must be"):
            MultiAttack(attacks).poison(X, y)

    def test_all_checked_before_any_poison(self):
        X, y = _dataset()
        with pytest.raises(ValueError, match="source=7 does not occur"):
            MultiAttack([_attack(), _blended(source=7)]).poison(X, y)

    def test_repr(self):
        multi = MultiAttack([_attack()])
        assert repr(multi) == f"MultiAttack(attacks=[{_attack()!r}])"


class TestNewScenarios:
    @pytest.mark.parametrize(
        "make", [make_blended_scenario, make_varying_scenario], ids=["b", "v"]
    )
    def test_reproducible(self, make):
        first = make((32, 32, 3), 0, 2, random_state=5)
        assert vars(first) == vars(make((32, 32, 3), 0, 2, random_state=5))
        assert vars(first) != vars(make((32, 32, 3), 0, 2, random_state=6))
        assert first.eps == 0.1 and first.image_shape == (32, 32, 3)

    @pytest.mark.parametrize(
        "make", [make_blended_scenario, make_varying_scenario], ids=["b", "v"]
    )
    @pytest.mark.parametrize("pair", PAPER_CLASS_PAIRS)
    def test_each_paper_pair_poisons_cifar_images(self, make, pair):
        X = np.random.RandomState(0).randint(0, 100, size=(100, 32, 32, 3))
        X = X.astype(np.uint8)
        y = np.repeat(np.arange(10), 10)
        attack = make((32, 32, 3), *pair, random_state=sum(pair))
        X_p, y_p, mask = attack.poison(X, y)
        assert mask.sum() == 1 and y_p[mask] == pair[1] and y[mask] == pair[0]
        np.testing.assert_array_equal(X_p[~mask], X[~mask])
        assert not np.array_equal(X_p[mask], X[mask])

    def test_blended_draws(self):
        attacks = [
            make_blended_scenario((8, 8), 0, 1, random_state=s) for s in range(60)
        ]
        assert {a.alpha for a in attacks} == {0.05, 0.1, 0.2}
        assert len({a.pattern_seed for a in attacks}) == 60
        assert all(a.pattern is None and a.value_range == (0, 255) for a in attacks)
        digits = make_blended_scenario(
            (8, 8), 0, 1, random_state=0, max_value=16, alphas=(0.3,)
        )
        assert digits.alpha == 0.3
        assert digits.trigger_pattern((8, 8), dtype=np.float64).max() < 16

    def test_varying_draws(self):
        attacks = [
            make_varying_scenario((3, 3), 0, 1, random_state=s) for s in range(200)
        ]
        seen = {trigger: set() for trigger in TRIGGERS}
        for attack in attacks:
            seen[attack.trigger].add(attack.position)
            assert attack.color_range == (160, 255) and attack.jitter == 0
        assert seen["pixel"] == {(r, c) for r in range(3) for c in range(3)}
        assert seen["ell"] == {(r, c) for r in range(2) for c in range(2)}
        assert seen["pattern"] == {(1, 1)}
        assert make_varying_scenario((8, 8), 0, 1, max_value=16).color_range == (10, 16)
        floats = make_varying_scenario((8, 8), 0, 1, max_value=1.0, jitter=2)
        assert floats.color_range == (0.625, 1.0) and floats.jitter == 2
        given = make_varying_scenario((8, 8), 0, 1, color_range=[1, 2])
        assert given.color_range == (1, 2)

    def test_multi_draws_different_pairs(self):
        kinds = set()
        for seed in range(30):
            multi = make_multi_scenario((32, 32, 3), random_state=seed)
            pairs = [(a.source, a.target) for a in multi.attacks]
            assert len(pairs) == 2 and pairs[0] != pairs[1]
            assert set(pairs) <= set(PAPER_CLASS_PAIRS)
            kinds.update(type(a).__name__ for a in multi.attacks)
        assert kinds == {
            "BackdoorAttack",
            "BlendedBackdoorAttack",
            "VaryingBackdoorAttack",
        }
        first = make_multi_scenario((32, 32, 3), random_state=3)
        assert repr(first) == repr(make_multi_scenario((32, 32, 3), random_state=3))

    def test_multi_options(self):
        multi = make_multi_scenario(
            (8, 8),
            n_attacks=3,
            eps=[0.1, 0.2, 0.3],
            kinds=["stamped", "blended", "varying"],
            max_value=16,
            random_state=0,
        )
        assert [type(a) for a in multi.attacks] == [
            BackdoorAttack,
            BlendedBackdoorAttack,
            VaryingBackdoorAttack,
        ]
        assert [a.eps for a in multi.attacks] == [0.1, 0.2, 0.3]
        assert multi.attacks[0].color <= 16
        blended = make_multi_scenario((8, 8), kinds="blended", random_state=0)
        assert all(isinstance(a, BlendedBackdoorAttack) for a in blended.attacks)
        pairs = make_multi_scenario(
            (8, 8), n_attacks=2, class_pairs=[(0, 1), (1, 2)], random_state=0
        )
        assert {(a.source, a.target) for a in pairs.attacks} == {(0, 1), (1, 2)}
        X = np.zeros((60, 8, 8), dtype=np.uint8)
        y = np.repeat(np.arange(3), 20)
        _, _, mask, ids = pairs.poison(X, y, return_ids=True)
        assert mask.sum() == 4 and set(ids[mask]) == {0, 1}

    def test_scenario_kinds(self):
        assert SCENARIO_KINDS == ("stamped", "blended", "varying")

    @pytest.mark.parametrize(
        ("make", "kwargs", "match"),
        [
            (make_blended_scenario, {"alphas": ()}, "alphas"),
            (make_blended_scenario, {"alphas": (0,)}, "alphas"),
            (make_blended_scenario, {"alphas": (1.5,)}, "alphas"),
            (make_blended_scenario, {"alphas": 0.2}, "alphas"),
            (make_blended_scenario, {"max_value": 0}, "max_value"),
            (make_blended_scenario, {"eps": 0}, "eps"),
            (make_blended_scenario, {"target": 0}, "must differ"),
            (make_blended_scenario, {"image_shape": (8,)}, "image_shape"),
            (make_varying_scenario, {"image_shape": (2, 8)}, "too small"),
            (make_varying_scenario, {"max_value": "255"}, "max_value"),
            (make_varying_scenario, {"color_range": (0, 300)}, "color_range"),
            (make_varying_scenario, {"color_range": (9, 8)}, "color_range"),
            (make_varying_scenario, {"jitter": -1}, "jitter"),
            (make_varying_scenario, {"eps": 2}, "eps"),
            (make_varying_scenario, {"target": 0}, "must differ"),
        ],
    )
    def test_single_errors(self, make, kwargs, match):
        params = dict(image_shape=(8, 8), source=0, target=1)
        params.update(kwargs)
        with pytest.raises(ValueError, match=match):
            make(**params)

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"n_attacks": 0}, "n_attacks"),
            ({"n_attacks": 9}, "n_attacks"),
            ({"n_attacks": 1.5}, "n_attacks"),
            ({"kinds": "poison"}, "kinds"),
            ({"kinds": ["stamped"]}, "kinds"),
            ({"kinds": 3}, "kinds"),
            ({"eps": [0.1]}, "eps"),
            ({"eps": "0.1"}, "eps"),
            ({"eps": 0}, "eps"),
            ({"class_pairs": [(0, 1, 2)]}, "class_pairs"),
            ({"class_pairs": [(0, 1), (0, 1)]}, "n_attacks"),
            ({"class_pairs": [(0, 0), (1, 2)]}, "must differ"),
            ({"image_shape": 8}, "image_shape"),
        ],
    )
    def test_multi_errors(self, kwargs, match):
        params = dict(image_shape=(8, 8), random_state=0)
        params.update(kwargs)
        with pytest.raises(ValueError, match=match):
            make_multi_scenario(**params)
