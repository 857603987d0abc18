"""Finding the digits of a number: segmentation's pure functions, then reading real numbers with the real model."""

from __future__ import annotations

from itertools import pairwise
from typing import NamedTuple

import numpy as np
import pytest

from service import segmentation
from service.decoding import decode_sized
from service.errors import NoDigit, TooManyDigits
from service.reading import read
from tests.images import encode, number_image, pen_digit
from train.numbers import digit_ink


def ink_of(image) -> np.ndarray:
    """A dark-on-light test image -> its ink [H, W] 0..1."""
    return 1 - np.asarray(image, np.float32) / 255


def boxes_of(ink: np.ndarray) -> list[tuple[int, int, int, int]]:
    return [tuple(group.box) for group in segmentation.layout(ink)]


def bar(canvas: np.ndarray, x: int, y: int, w: int, h: int) -> None:
    canvas[y : y + h, x : x + w] = 1.0


# ---- grouping: pure functions on ink -----------------------------------------------------------------------------


@pytest.mark.parametrize("gap", [1, 2, 5, 20, 80, 400])
def test_digits_apart_are_apart_whatever_the_gap(gap):
    ink = np.zeros((120, 600), np.float32)
    bar(ink, 10, 10, 8, 100)  # a 1
    bar(ink, 18 + gap, 10, 40, 8)  # a 7: its bar and its stem
    bar(ink, 18 + gap + 32, 10, 8, 100)
    assert boxes_of(ink) == [(10, 10, 8, 100), (18 + gap, 10, 40, 100)]


def test_a_digit_in_separate_strokes_is_one_digit():
    """A 5 with its bar apart, a 7 whose stem does not meet its bar, an 8 broken in two: each is one group."""
    ink = np.zeros((120, 400), np.float32)
    bar(ink, 10, 10, 60, 8)  # the 5's bar, apart from its body
    bar(ink, 10, 24, 8, 40)
    bar(ink, 10, 60, 60, 8)
    bar(ink, 62, 60, 8, 50)
    bar(ink, 10, 102, 60, 8)
    bar(ink, 110, 10, 60, 8)  # the 7: its bar...
    bar(ink, 140, 22, 8, 88)  # ...and its stem, which does not reach it
    bar(ink, 210, 10, 50, 45)  # the 8: two loops (solid here), one above the other, not touching
    bar(ink, 205, 60, 60, 50)
    assert boxes_of(ink) == [(10, 10, 60, 100), (110, 10, 60, 100), (205, 10, 60, 100)]


@pytest.mark.parametrize("size", [2, 4, 12, 30])
def test_specks_and_dots_are_not_digits(size):
    ink = np.zeros((280, 400), np.float32)
    bar(ink, 120, 40, 16, 200)  # a 1...
    bar(ink, 220, 40, 16, 200)  # ...and another
    for x, y in [(60, 200), (170, 230), (300, 30), (380, 260)]:  # dots left, between, right; a speck in a corner
        bar(ink, x, y, size, size)
    # 30 px: under segmentation.SMALL (0.3) of the 200 px digits' height
    assert boxes_of(ink) == [(120, 40, 16, 200), (220, 40, 16, 200)]


@pytest.mark.parametrize("side", [1, 2, 4, 10])
def test_a_lone_stroke_is_one_digit_with_its_own_box_and_ink(side):
    """One component alone, a batch's usual upload: one group, its box and all the ink in it."""
    ink = np.zeros((100, 80), np.float32)
    bar(ink, 30, 20, side, side * 6)
    (group,) = segmentation.layout(ink)
    assert tuple(group.box) == (30, 20, side, side * 6) and group.mask is None
    assert np.array_equal(group.ink, ink[20 : 20 + side * 6, 30 : 30 + side])


@pytest.mark.parametrize("side", [1, 3])
def test_a_lone_speck_is_no_digit(side):
    """Under MIN_EXTENT of the image (4 px of 100) and alone: no group at all."""
    ink = np.zeros((100, 80), np.float32)
    bar(ink, 30, 20, side, side)
    assert boxes_of(ink) == []


def test_a_digit_s_ink_does_not_hold_its_neighbour_s_strokes():
    """Digits whose boxes overlap: each digit's ink is its own strokes only."""
    ink = np.zeros((120, 200), np.float32)
    bar(ink, 10, 10, 100, 8)  # a 7 with a long bar, reaching over...
    bar(ink, 90, 10, 8, 100)
    bar(ink, 104, 30, 40, 8)  # ...the next digit, which starts under it
    bar(ink, 104, 30, 8, 80)
    seven, other = segmentation.layout(ink)
    assert other.box.x < seven.box.x + seven.box.width  # the boxes overlap
    assert seven.ink.sum() == pytest.approx(100 * 8 + 8 * 100 - 8 * 8)
    assert other.ink.sum() == pytest.approx(40 * 8 + 8 * 80 - 8 * 8)


def test_a_group_is_wide_only_when_wider_than_a_digit_of_its_height():
    ink = np.zeros((100, 300), np.float32)
    bar(ink, 10, 10, 60, 80)  # 60 wide, 80 tall
    bar(ink, 100, 10, 150, 80)  # 150 wide
    narrow, wide = segmentation.layout(ink)
    assert not narrow.wide and wide.wide


def test_cut_columns_are_where_touching_digits_meet():
    ink = np.zeros((100, 200), np.float32)
    ink[10:90, 10:70] = 1.0  # two solid digits...
    ink[10:90, 73:140] = 1.0
    ink[45:50, 70:73] = 1.0  # ...joined by a thin stroke
    (cut,) = segmentation.cut_columns((ink > 0.5).sum(axis=0)[10:140], 80)
    assert 60 <= cut <= 63  # within the joint, in the group's columns (the group starts at x = 10)


def test_cut_columns_are_only_at_valleys():
    ink = np.zeros((100, 120), np.float32)
    ink[10:20, 10:110] = 1.0  # a wide 7: its bar...
    ink[10:90, 95:110] = 1.0  # ...and its stem; the ink per column only rises to the right: no valley
    assert segmentation.cut_columns((ink > 0.5).sum(axis=0)[10:110], 80) == []


def touching_strokes(left_edge, joint: tuple[slice, slice]) -> np.ndarray:
    """Two 8 px strokes 30 px apart over rows 10-89, the left one's left edge at `left_edge(y)`, joined at `joint`."""
    ink = np.zeros((100, 120), np.float32)
    for y in range(10, 90):
        x = left_edge(y)
        ink[y, x : x + 8] = 1.0
        ink[y, x + 30 : x + 38] = 1.0
    ink[joint] = 1.0  # where they touch
    return ink


def slanted_pair() -> np.ndarray:
    """Two strokes leaning right (a slanted 11; 20 px of lean over 80 rows), joined at mid-height: they overlap in x."""
    return touching_strokes(lambda y: 40 - round(0.25 * (y - 50)), np.s_[48:52, 45:72])


def test_slanted_digits_that_touch_are_cut_along_their_slant():
    (group,) = segmentation.layout(slanted_pair())
    found = segmentation.candidates(group)
    between = [k for k, c in enumerate(found.lines, start=1) if 18 <= c.x <= 39]
    assert between  # a cut in the gap between the strokes at mid-height...
    cut, end = between[0], len(found.lines) + 1
    rows = np.arange(100)[:, None] - 50
    assert found.lines[cut - 1].at(rows)[0, 0] - found.lines[cut - 1].at(rows)[-1, 0] >= 12  # ...leaning as they do
    left, right = found.regions[(0, cut)], found.regions[(cut, end)]
    # a stroke each (80 rows of 8 px), and the 4 x 22 px joint between them shared somehow
    assert abs(left.ink.sum() - 80 * 8) <= 88 and abs(right.ink.sum() - 80 * 8) <= 88


def curved_pair() -> np.ndarray:
    """Two strokes bowed like ')' (a bulge of 24 px), joined at mid-height: no straight line, upright or slanted,
    passes between them."""
    return touching_strokes(lambda y: 20 + round(24 * (1 - ((y - 50) / 40) ** 2)), np.s_[48:52, 50:76])


def test_a_seam_bends_between_curved_strokes_that_touch():
    (group,) = segmentation.layout(curved_pair())
    found = segmentation.candidates(group)
    end = len(found.lines) + 1
    whole_strokes = [
        k
        for k in range(1, end)
        if abs(found.regions[(0, k)].ink.sum() - 80 * 8) <= 88 and abs(found.regions[(k, end)].ink.sum() - 80 * 8) <= 88
    ]
    assert whole_strokes  # a cut that leaves each stroke whole on its side
    assert all(found.lines[k - 1].path is not None for k in whole_strokes)  # a seam: no straight line does


def test_choose_keeps_a_lone_candidate():
    ink = np.zeros((100, 60), np.float32)
    bar(ink, 20, 10, 10, 80)
    (group,) = segmentation.layout(ink)
    found = segmentation.Candidates([], {(0, 1): group.region})
    assert segmentation.choose(group, found, {(0, 1): np.full(10, 0.1)}) == [(0, 1)]


def test_choose_with_a_count_takes_the_best_split_into_that_many():
    ink = np.zeros((100, 200), np.float32)
    for x in (20, 80, 140):  # three upright strokes joined by a bar along the bottom: one wide group
        bar(ink, x, 10, 12, 80)
    bar(ink, 20, 84, 132, 6)
    (group,) = segmentation.layout(ink)
    found = segmentation.candidates(group)
    sure = np.full(10, 0.001)
    sure[1] = 0.991
    probabilities = {key: sure for key in found.regions}
    end = len(found.lines) + 1
    for count in (1, 2, 3):
        split = segmentation.choose(group, found, probabilities, count)
        assert len(split) == count and split[0][0] == 0 and split[-1][1] == end
        assert all(a[1] == b[0] for a, b in pairwise(split))  # contiguous, left to right
    assert segmentation.choose(group, found, probabilities, end + 1) is None  # more digits than pieces
    assert segmentation.choose(group, found, probabilities) in [
        segmentation.choose(group, found, probabilities, n) for n in (1, 2, 3)
    ]


# ---- reading real numbers with the real model --------------------------------------------------------------------


@pytest.fixture(scope="module")
def predictor(real_app):
    return real_app.extensions["digits"].default


class Served(NamedTuple):
    """What the service reads with: the digit model, and the line reader that counts touching digits."""

    predictor: object
    reader: object


@pytest.fixture(scope="module")
def served(real_app) -> Served:
    return Served(real_app.extensions["digits"].default, real_app.extensions["digits_reader"])


def read_number(served: Served, image, max_digits: int = 20) -> str:
    (readings,) = read([decode_sized(encode(image))], served.predictor, max_digits, reader=served.reader)
    return "".join(str(r.digit) for r in readings)


def fixture_number(fixture_data, picks: list[int], gaps: list, height: int = 150, **kw):
    """The fixture's test digits `picks` written as canvas strokes, `height` px tall (a list: one per digit)."""
    heights = height if isinstance(height, list) else [height] * len(picks)
    inks = [digit_ink(fixture_data.x_test[i], h) for i, h in zip(picks, heights, strict=True)]
    image, boxes = number_image(inks, gaps, **kw)
    return image, "".join(str(fixture_data.y_test[i]) for i in picks), boxes


def numbers_read(served, fixture_data, gap, count: int = 30, seed: int = 0, **kw) -> tuple[int, int]:
    """(numbers read right, numbers) of `count` numbers of 2 to 6 fixture digits with gaps from `gap(rng)`."""
    rng = np.random.default_rng(seed)
    right = 0
    for _ in range(count):
        picks = [int(i) for i in rng.integers(0, len(fixture_data.x_test), int(rng.integers(2, 7)))]
        image, truth, _ = fixture_number(fixture_data, picks, [gap(rng) for _ in picks[1:]], **kw)
        right += read_number(served, image) == truth
    return right, count


# Floors: measured 2026-11-23 by these tests with cnn v1 (numbers right of numbers tried): wide gaps 30/30, normal
# 30/30, narrow 30/30, touching 27/30 (51/60 with count=60; 19/30 and 36/60 with straight cut lines only: digits
# that touch all along the number are segmentation's weak point), touching pairs of training digits 37/40 (30/40
# with straight cut lines only), different heights 20/20, sloping 20/20 each way, wide digits drawn alone 41/41, and
# every one of the 200 fixture digits given the very model input of the single-digit recipe. The floors leave a few
# misses of slack. 2026-12-07, with the line reader (models/reader/1): touching digits whose strokes cross 34/40,
# 20/40 with cuts alone; models/reader/2 holds every floor.
FLOORS = {
    "wide": 0.9,
    "normal": 0.9,
    "narrow": 0.9,
    "touching": 0.8,
    "touching_pairs": 0.85,
    "heights": 0.9,
    "slope": 0.9,
    "same_input": 1.0,
    "wide_alone": 0.95,
    "crossing": 0.75,
    "reader_gain": 0.2,
}
GAPS = {
    "wide": lambda rng: int(rng.integers(70, 140)),
    "normal": lambda rng: int(rng.integers(20, 60)),
    "narrow": lambda rng: int(rng.integers(2, 15)),
    "touching": lambda rng: None,
}


@pytest.mark.parametrize("gap", list(GAPS))
def test_numbers_are_read_whatever_the_gap(served, fixture_data, gap):
    right, count = numbers_read(served, fixture_data, GAPS[gap])
    assert right >= FLOORS[gap] * count, (right, count)


def test_the_line_reader_reads_touching_numbers_better_than_cuts_alone(served, fixture_data):
    """The line reader (service/reader.py) against segmentation's scores alone, on the same numbers of touching digits
    whose strokes cross (by 5 px at 150 px high), where every cut line goes through a digit."""
    crossing = {"count": 40, "seed": 7, "cross": 5}
    with_reader, count = numbers_read(served, fixture_data, GAPS["touching"], **crossing)
    cuts_alone, _ = numbers_read(served._replace(reader=None), fixture_data, GAPS["touching"], **crossing)
    assert with_reader >= FLOORS["crossing"] * count, (with_reader, cuts_alone, count)
    assert with_reader >= cuts_alone + FLOORS["reader_gain"] * count, (with_reader, cuts_alone, count)


def test_touching_pairs_are_read(served, fixture_data):
    """Pairs of the fixture's training digits whose strokes touch (what train/segmenter.py fits on, other digits)."""
    rng = np.random.default_rng(5)
    right, count = 0, 40
    for _ in range(count):
        picks = rng.integers(0, len(fixture_data.x_train), 2)
        inks = [digit_ink(fixture_data.x_train[i], int(rng.integers(100, 160))) for i in picks]
        image, _ = number_image(inks, [None])
        right += read_number(served, image) == "".join(str(fixture_data.y_train[i]) for i in picks)
    assert right >= FLOORS["touching_pairs"] * count, (right, count)


def test_wide_digits_drawn_alone_stay_one_digit(served, fixture_data):
    """Digits wider than segmentation.WIDE x their height get candidate cuts: drawn alone, they still read whole."""
    wide = right = 0
    for digit, label in zip(fixture_data.x_test, fixture_data.y_test, strict=True):
        ink = digit_ink(digit, 150)
        if ink.shape[1] > segmentation.WIDE * ink.shape[0]:
            image, _ = number_image([ink], [])
            wide += 1
            right += read_number(served, image) == str(label)
    assert wide >= 30 and right >= FLOORS["wide_alone"] * wide, (right, wide)


def test_digits_of_different_heights(served, fixture_data):
    rng = np.random.default_rng(1)
    right, count = 0, 20
    for _ in range(count):
        picks = [int(i) for i in rng.integers(0, 200, 4)]
        heights = [int(h) for h in rng.integers(90, 180, 4)]
        image, truth, _ = fixture_number(fixture_data, picks, [30, 30, 30], heights)
        right += read_number(served, image) == truth
    assert right >= FLOORS["heights"] * count, (right, count)


@pytest.mark.parametrize("slope", [-0.08, 0.08])  # about 4.5 degrees, down or up
def test_a_sloping_number(served, fixture_data, slope):
    right, count = numbers_read(served, fixture_data, GAPS["normal"], count=20, seed=2, slope=slope)
    assert right >= FLOORS["slope"] * count, (right, count)


@pytest.mark.parametrize("length", [10, 12, 20])
def test_long_numbers(served, fixture_data, length):
    picks = list(range(30, 30 + length))
    image, truth, _ = fixture_number(fixture_data, picks, [30] * (length - 1), height=100)
    read_as = read_number(served, image)
    assert len(read_as) == length
    assert sum(a == b for a, b in zip(read_as, truth, strict=True)) >= length - 1, (read_as, truth)


@pytest.mark.parametrize(
    ("number", "gap"),
    [("5", 0), ("4", 0), ("7", 0), ("111", 25), ("1111", 8), ("1457", 30), ("7541", 12), ("55", 20), ("14", 6)],
)
def test_numbers_written_stroke_by_stroke(served, number, gap):
    """A 5 whose bar is apart, a 4 in two strokes, a 7 whose stem is apart from its bar, narrow 1s, close together."""
    widths = {"1": 30, "4": 90, "5": 80, "7": 85}
    inks = [pen_digit(d, 150, widths[d], 14) for d in number]
    image, _ = number_image(inks, [gap] * (len(number) - 1))
    assert read_number(served, image) == number


def test_a_single_digit_reads_as_it_did(predictor, fixture_data):
    """MNIST digits as 28x28 pixel arrays: one digit each, the same model input as the single-digit recipe."""
    from service.preprocessing import preprocess

    same = 0
    for digit in fixture_data.x_test:
        gray = digit.astype(np.float32) / 255
        (readings,) = read([(gray, (28, 28))], predictor, 20)
        assert len(readings) == 1
        same += np.array_equal(readings[0].input, preprocess(gray))
    assert same >= FLOORS["same_input"] * len(fixture_data.x_test)


def test_blank_and_too_many(predictor):
    with pytest.raises(NoDigit):
        read([(np.ones((280, 280), np.float32), (280, 280))], predictor, 20)
    ink = np.zeros((100, 900), np.float32)
    for x in range(30, 870, 40):  # 21 strokes
        bar(ink, x, 20, 10, 60)
    with pytest.raises(TooManyDigits, match="found 21 digits; the limit is 20"):
        read([(1 - ink, ink.shape)], predictor, 20)


def test_the_span_scoring_fit_learns_to_read_touching_digits(predictor, fixture_data):
    """train/segmenter.py on the fixture's training digits: the fitted weights read its touching numbers better
    than the classifier's confidence alone does."""
    from train import segmenter

    data = segmenter.examples(fixture_data.x_train, fixture_data.y_train, predictor, 40, seed=3)
    fitted = segmenter.fit(data)
    confidence_only = np.zeros_like(fitted)
    confidence_only[8] = 1.0  # span_features()[8]: log of the model's confidence
    assert fitted.shape == segmentation.SPAN_WEIGHTS.shape
    by_fit, by_confidence = segmenter.accuracy(data, fitted, 0.0), segmenter.accuracy(data, confidence_only, 0.0)
    assert sum(by_fit[n] for n in (2, 3, 4)) > sum(by_confidence[n] for n in (2, 3, 4))
