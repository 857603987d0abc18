"""The MNIST recipe: each pure function, and golden tests against real MNIST digits."""

from __future__ import annotations

import numpy as np
import pytest

from bench.canvas_eval import STYLES, render_canvas
from service.decoding import decode
from service.errors import NoDigit
from service.preprocessing import (
    MNIST_STROKE,
    center_by_mass,
    crop_to_ink,
    digit_region,
    dilate,
    erode,
    fit_to_box,
    ink_levels,
    ink_of,
    ink_region,
    normalize_stroke,
    preprocess,
    resize,
    stroke_width,
)
from tests.images import encode, mnist_as_image
from tests.reference import is_blank, morph, pillow_resize, to_ink


def centre_of_mass(x: np.ndarray) -> tuple[float, float]:
    total = x.sum()
    return (
        float((x.sum(1) * np.arange(x.shape[0])).sum() / total),
        float((x.sum(0) * np.arange(x.shape[1])).sum() / total),
    )


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


# ---- ink_levels and ink_of: polarity -------------------------------------------------------------


@pytest.mark.parametrize("paper", [1.0, 0.9, 0.0, 0.1])
def test_ink_is_white_whatever_the_paper(paper):
    gray = np.full((50, 50), paper, np.float32)
    gray[10:40, 20:25] = 1.0 - paper  # the stroke
    levels = ink_levels(gray)
    ink, contrast = ink_of(gray, levels), levels[2]
    assert ink[20, 22] == pytest.approx(1.0) and ink[0, 0] == pytest.approx(0.0)
    assert contrast == pytest.approx(abs(1.0 - 2 * paper))


# ---- blank detection ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "gray"),
    [
        ("white", np.ones((280, 280), np.float32)),
        ("black", np.zeros((280, 280), np.float32)),
        ("grey", np.full((40, 40), 0.5, np.float32)),
        ("faint-noise", (0.97 + 0.03 * np.random.default_rng(0).random((280, 280))).astype(np.float32)),
        ("one-pixel", np.ones((1, 1), np.float32)),
    ],
)
def test_blank_images_have_no_digit(name, gray):
    with pytest.raises(NoDigit):
        preprocess(gray)


def test_a_speck_is_not_a_digit():
    gray = np.ones((280, 280), np.float32)
    gray[100:105, 100:105] = 0.0  # a 5 px dot on a 280 px canvas
    with pytest.raises(NoDigit):
        digit_region(gray)


def test_a_small_real_digit_is_not_blank():
    gray = np.ones((280, 280), np.float32)
    gray[100:130, 140:143] = 0.0  # a 30 px tall '1'
    assert digit_region(gray).shape == (30, 3)


# ---- geometry -----------------------------------------------------------------------------------


def test_crop_to_ink_is_the_bounding_box():
    ink = np.zeros((100, 80), np.float32)
    ink[10:30, 5:60] = 1.0
    ink[50, 70] = 0.1  # below the threshold: not ink
    assert crop_to_ink(ink).shape == (20, 55)


@pytest.mark.parametrize(("shape", "expected"), [((200, 20), (20, 2)), ((50, 100), (10, 20)), ((7, 7), (20, 20))])
def test_fit_to_box_keeps_aspect_ratio(shape, expected):
    out = fit_to_box(np.ones(shape, np.float32))
    assert out.shape == expected and out.max() == pytest.approx(1.0)


def test_fit_to_box_anti_aliases():
    a = np.zeros((200, 200), np.float32)
    a[:, 95:100] = 1.0  # a 5 px line, 10x too big: becomes a half-covered pixel column
    out = fit_to_box(a)
    assert 0 < out[10].max() <= 1 and np.count_nonzero((out[10] > 0) & (out[10] < 1)) >= 1


@pytest.mark.parametrize("offset", [(0, 0), (3, 0), (0, 7), (5, 5)])
def test_center_by_mass_puts_the_centroid_at_14_14(offset):
    box = np.zeros((20, 20), np.float32)
    box[offset[0] : offset[0] + 6, offset[1] : offset[1] + 4] = 1.0
    out = center_by_mass(box)
    cy, cx = centre_of_mass(out)
    assert out.shape == (28, 28) and out.sum() == pytest.approx(box.sum())
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


# ---- stroke width -------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [2, 4, 8, 16])
def test_stroke_width_measures_a_bar(width):
    mask = np.zeros((300, 300), bool)
    mask[20:280, 100 : 100 + width] = True
    assert stroke_width(mask) == pytest.approx(width, rel=0.08)


def test_mnist_stroke_constant_matches_the_data(fixture_data):
    widths = [
        stroke_width(fit_to_box(crop_to_ink(d.astype(np.float32) / 255), 80) > 0.5) / 4 for d in fixture_data.x_train
    ]
    assert np.mean(widths) == pytest.approx(MNIST_STROKE, abs=0.25)


def test_dilate_and_erode_change_width_by_the_radius():
    a = np.zeros((100, 100), np.float32)
    a[10:90, 40:50] = 1.0
    thick, thin = dilate(a, 3), erode(a, 2)
    assert thick.shape == (106, 106)  # dilation grows the canvas so nothing is clipped
    assert int((thick[53] > 0.5).sum()) == 16 and int((thin[50] > 0.5).sum()) == 6


def _random_images(seed: int, count: int = 30):
    """Random float images of random shapes: noise, with solid blocks, some negative, some not contiguous."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        a = rng.random(tuple(rng.integers(1, 90, 2))).astype(np.float32)
        a[a > 0.7] = 1.0
        if rng.random() < 0.3:
            a -= 0.5
        yield a[:, ::2] if rng.random() < 0.3 else a


@pytest.mark.parametrize("seed", range(4))
def test_dilate_and_erode_are_exactly_the_rounds_of_3x3_filters(seed):
    rng = np.random.default_rng(seed)
    for a in _random_images(seed):
        radius = int(rng.integers(0, 9))
        assert np.array_equal(dilate(a, radius), morph(a, radius, grow=True))
        assert np.array_equal(erode(a, radius), morph(a, radius, grow=False))


@pytest.mark.parametrize("seed", range(4))
def test_resize_is_pillows_bilinear(seed):
    """Enlarging, shrinking, and both at once (one side each), to and from 1 pixel."""
    rng = np.random.default_rng(seed)
    for a in _random_images(seed):
        shape = (int(rng.integers(1, 120)), int(rng.integers(1, 120)))
        out = resize(a, shape)
        assert out.shape == shape and out.dtype == np.float32
        assert np.allclose(out, pillow_resize(a, shape), rtol=0, atol=2e-6)


@pytest.mark.parametrize("bar_width", [1, 3, 45, 60])
def test_normalize_stroke_brings_width_towards_mnist(bar_width):
    """Hairlines get thicker, marker strokes thinner, in 20 px box units."""
    crop = np.zeros((200, 120), np.float32)
    crop[:, 60 - bar_width // 2 : 60 - bar_width // 2 + bar_width] = 1.0
    crop[:bar_width, :] = 1.0  # a '7'-like top bar, so it is not a lone line
    before = stroke_width(fit_to_box(crop, 80) > 0.5) / 4
    after = stroke_width(normalize_stroke(crop) > 0.5) / 4
    assert abs(after - MNIST_STROKE) < abs(before - MNIST_STROKE)
    assert 0.5 * MNIST_STROKE < after < 2.0 * MNIST_STROKE


# ---- golden tests: real MNIST digits, transformed, come back close to the original --------------


def transformed(digit: np.ndarray, how: str) -> bytes:
    from PIL import Image

    from service.preprocessing import resize

    big = np.asarray(mnist_as_image(digit, invert=False), np.float32) / 255  # 280x280, ink = 1
    if how == "thick":
        big = dilate(big, 8)
    elif how == "thin":
        big = erode(big, 5)
    elif how == "shifted":
        canvas = np.zeros((500, 400), np.float32)
        canvas[210:490, 5:285] = big
        big = canvas
    elif how == "small":
        big = resize(big, (70, 70))
    if how == "transparent":
        rgba = np.zeros(big.shape + (4,), np.uint8)
        rgba[..., 3] = (big * 255).astype(np.uint8)  # black ink; alpha carries the stroke
        return encode(Image.fromarray(rgba, mode="RGBA"))
    level = (np.clip(big, 0, 1) * 255).astype(np.uint8)
    inverted = how != "white-on-black"  # the usual paper: dark ink on white
    return encode(Image.fromarray(255 - level if inverted else level, mode="L"))


HOWS = ["large", "shifted", "small", "thick", "thin", "white-on-black", "transparent"]


@pytest.mark.parametrize("how", HOWS)
def test_golden_transformed_digits_match_the_original(fixture_data, how):
    scores = []
    for digit in fixture_data.x_test[:25]:
        out = preprocess(decode(transformed(digit, how)))
        assert out.shape == (28, 28) and out.dtype == np.float32
        assert out.min() >= 0 and out.max() == pytest.approx(255, abs=1)
        scores.append(similarity(out, digit.astype(np.float32)))
    floor = 0.55 if how in ("thick", "thin") else 0.75  # width changes move pixels by design
    # measured 2026-11-23 with this loop (mean / lowest correlation): large 0.939/0.759, shifted 0.922/0.743,
    # small 0.947/0.782, thick 0.878/0.720, thin 0.927/0.744, white-on-black 0.935/0.759, transparent
    # 0.939/0.759; the tightest margins are shifted's mean (0.07 above 0.85) and lowest (0.19 above 0.55)
    assert np.mean(scores) > floor + 0.1 and min(scores) > floor - 0.2


def test_preprocessing_an_mnist_digit_changes_little(fixture_data):
    scores = [similarity(preprocess(d.astype(np.float32) / 255), d.astype(np.float32)) for d in fixture_data.x_test]
    # measured 2026-11-23 with this line: mean correlation 0.964 (0.964 on the first 1,000 test digits of the
    # full MNIST in $MNIST_DIR too); 0.03 of margin
    assert np.mean(scores) > 0.93


@pytest.mark.parametrize("how", HOWS)
def test_golden_transformed_digits_are_recognised(real_app, fixture_data, how):
    predictor = real_app.extensions["digits"].default
    x = np.stack([preprocess(decode(transformed(d, how))) for d in fixture_data.x_test[:50]])
    accuracy = float((predictor.predict(x).argmax(1) == fixture_data.y_test[:50]).mean())
    # measured 2026-11-23 with this test's code: cnn v1 gets 50 of 50 for every transformation (0.994 to 0.996
    # on the first 1,000 test digits of the full MNIST in $MNIST_DIR); the floors leave 4 misses (thick, thin:
    # width changes lose detail by design) or 2 (the others)
    assert accuracy >= (0.92 if how in ("thick", "thin") else 0.96)


@pytest.mark.parametrize("style", STYLES)
def test_canvas_renderings_are_recognised(real_app, fixture_data, style):
    """A smoke-sized run of bench/canvas_eval.py's renderer through the real pipeline."""
    predictor = real_app.extensions["digits"].default
    rng = np.random.default_rng(5)
    x = np.stack([preprocess(decode(render_canvas(d, rng, style))) for d in fixture_data.x_test[:60]])
    # measured 2026-11-23 with this test's code: cnn v1 gets 60 of 60 in every style; on 10,000 renderings
    # `python -m bench.canvas_eval` measured 99.34% to 99.50% per style (README); the floor leaves 3 misses
    assert float((predictor.predict(x).argmax(1) == fixture_data.y_test[:60]).mean()) >= 0.95


def test_preprocess_rejects_non_2d():
    with pytest.raises(ValueError):
        preprocess(np.zeros((2, 2, 3), np.float32))


def long_side(x: np.ndarray) -> int:
    """The longer side of the bounding box of the pixels that are not 0."""
    rows, cols = np.flatnonzero(x.any(1)), np.flatnonzero(x.any(0))
    return int(max(rows[-1] - rows[0], cols[-1] - cols[0])) + 1


@pytest.mark.parametrize(("canvas", "height", "width"), [(60, 50, 50), (280, 40, 24), (280, 200, 120), (1000, 900, 90)])
def test_any_digit_is_scaled_to_the_size_of_mnist_s(fixture_data, canvas, height, width):
    """Small or large on the canvas, a digit's long side comes out as MNIST's digits have it (a 20 px box)."""
    gray = np.ones((canvas, canvas), np.float32)
    gray[10 : 10 + height, 5 : 5 + width // 6] = 0.0  # a dark "Γ": a post and a top bar
    gray[10 : 10 + height // 8, 5 : 5 + width] = 0.0
    mnist = {long_side(d) for d in fixture_data.x_test}
    assert mnist == {20} and long_side(preprocess(gray)) == 20


# ---- the fast path in preprocess() against the reference functions ------------------------------


def _images(fixture_data) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    out = [d.astype(np.float32) / 255 for d in fixture_data.x_test[:20]]  # white on black
    out += [1 - d.astype(np.float32) / 255 for d in fixture_data.x_test[20:40]]  # dark on white
    for _ in range(40):  # noise, specks, faint and uniform images, odd shapes
        h, w = rng.integers(1, 120, 2)
        image = np.full((h, w), rng.uniform(), np.float32)
        y, x = rng.integers(0, h), rng.integers(0, w)
        image[y : y + rng.integers(1, 40), x : x + rng.integers(1, 40)] = rng.uniform()
        out.append(np.clip(image + rng.normal(0, rng.choice([0, 0.02, 0.2]), (h, w)), 0, 1).astype(np.float32))
    return out


def test_digit_region_is_exactly_the_reference_crop_or_blank(fixture_data):
    seen = set()
    for gray in _images(fixture_data):
        ink, contrast = to_ink(gray)
        blank = is_blank(ink, contrast)
        seen.add(blank)
        if blank:
            with pytest.raises(NoDigit):
                digit_region(gray)
            with pytest.raises(NoDigit):
                preprocess(gray)
        else:
            assert np.array_equal(digit_region(gray), crop_to_ink(ink))
    assert seen == {True, False}  # both outcomes are exercised


def test_ink_region_is_empty_exactly_when_no_pixel_is_ink(fixture_data):
    for gray in _images(fixture_data):
        ink, _ = to_ink(gray)
        region = ink_region(gray, ink_levels(gray))
        if (ink > 0.3).any():
            assert np.array_equal(region, crop_to_ink(ink))
        else:
            assert region.size == 0


def test_the_recipe_in_two_stages_is_preprocess(fixture_data):
    """image_ink() (the whole image) then digit_input() (one digit's crop) give exactly preprocess()'s output, and
    refuse exactly the images preprocess() refuses."""
    from service.preprocessing import digit_input, image_ink

    for gray in _images(fixture_data):
        try:
            expected = preprocess(gray)
        except NoDigit:
            with pytest.raises(NoDigit):
                image_ink(gray)
            continue
        ink = image_ink(gray)
        assert np.array_equal(ink, to_ink(gray)[0])
        assert np.array_equal(digit_input(crop_to_ink(ink)), expected)
