"""Tests for the dirty-label backdoor attack in sklearn_ispl.attacks."""

import numpy as np
import pytest

from sklearn_ispl.attacks import (
    CIFAR10_SCENARIOS,
    PAPER_CLASS_PAIRS,
    TRIGGERS,
    BackdoorAttack,
    make_scenario,
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
