"""The digits of an image, left to right: its ink -> each digit's region. Pure functions, numpy in and out.

Connected components alone would split a 5 from its bar and merge digits that touch. So:
1. the 8-connected components of the ink mask (OpenCV's, in C), less the specks;
2. components whose x-extents overlap, the narrower one's mostly inside the other's, are one digit: a 5 and its
   bar, a 4 or a 7 in two strokes, a broken 8 (groups());
3. groups small beside the tallest one are dots or specks, not digits, and are dropped; close neighbours of which
   one is short beside the two are pieces of one broken digit, and are joined;
4. a group much wider than a digit of its height may be digits that touch: it gets candidate cut lines, upright or
   slanted, at the valleys of its ink projected along them, and seams, paths from top to bottom that bend around
   strokes where touching digits' strokes interleave (cuts(), seams()); every span between two of them is a
   candidate digit (candidates()). The model reads them all, and choose() takes the split with the best score: the
   model's confidence and the pieces' shapes, weighed as train/segmenter.py fitted them on touching MNIST training
   digits (the model alone is confidently wrong both ways: it reads a squeezed pair as one digit, and a digit's
   halves as two), with a bonus for the whole group as one digit, so that a wide 0, 2 or 7 stays one digit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from service.preprocessing import INK, MIN_EXTENT, stroke_width

OVERLAP = 0.5  # components whose x-extents overlap by this fraction of the narrower one's width are one digit
SMALL = 0.3  # a group whose width and height are both under this fraction of the tallest group's height is a dot
FAINT = 0.15  # a group with less ink than this fraction of the inkiest group's is a stray mark (a dotted line)
# neighbours at most NEAR x their joint height apart, one of them under SHORT x that height, are one broken digit
NEAR, SHORT = 0.15, 0.6
WIDE = 0.9  # a group wider than this times its height may be touching digits: it gets candidate cuts...
CUT_HEIGHT = 24  # ...if it is this many pixels tall: MNIST-sized digits (20 px) are too coarse to cut, and one digit
NARROWEST = 0.12  # the narrowest piece a cut may leave, as a fraction of the group's height (a narrow 1)
WIDEST = 1.6  # the widest candidate digit a cut may leave, as a fraction of the group's height
# candidate cut lines per group at most: MOST_CUTS, or PER_HEIGHT per height of width (every span between two is
# read); a long run of touching digits needs them: of 60 numbers of 6 touching MNIST training digits laid out as
# bench/numbers_eval.py lays them out, a right split was among the candidates for 14 with 2.5 straight lines per
# height, for 25 with 6 and seams
MOST_CUTS, PER_HEIGHT = 10, 6
SHEARS = (0.0, -0.25, 0.25)  # the slants of cut lines, in x shift per row down (0.25: 14 degrees)
STEP = 0.25  # a seam's cost per column it moves sideways, in ink pixels: straight where nothing is in its way
# The score of a candidate digit: SPAN_WEIGHTS @ span_features(). Fitted by `python -m train.segmenter --count 800`
# to read touching numbers of MNIST training digits right; it prints these constants.
SPAN_WEIGHTS = np.array(
    [-4.181, -2.022, -2.114, 1.94, 4.825, -2.683, -0.733, 0.123, 0.278, -0.302, 0.307, -0.792, -0.03, -0.088]
)
# per digit: mean and spread of log(width / height) of MNIST training digits drawn alone
DIGIT_ASPECT = [
    (-0.111, 0.194),
    (-0.893, 0.421),
    (-0.071, 0.22),
    (-0.234, 0.207),
    (-0.237, 0.21),
    (-0.073, 0.258),
    (-0.328, 0.2),
    (-0.269, 0.211),
    (-0.282, 0.216),
    (-0.389, 0.19),
]
# The whole group's bonus as one digit: the smallest that keeps single digits within 0.1% of never cut (train.segmenter
# picks it on held-out numbers). 3.0 reads touching pairs a little better (71% instead of 66% there) but cuts two more
# of bench/canvas_eval.py's 10,000 single digits
ONE_DIGIT = 4.0
# A wide group that the model reads whole this surely, and at most SURE_ASPECT x as wide as tall, is not cut: most
# are single digits, and reading a group's pieces costs (train/segmenter.py measures what this loses on touching pairs)
SURE, SURE_ASPECT = 0.99, 1.0
# Narrower groups than WIDE, but wider than ASK times their height, that the model reads whole less surely than
# CERTAIN, are read by the line reader too: a 1 touching a digit (most single digits are read surer than that)
ASK, CERTAIN = 0.6, 0.999


class Box(NamedTuple):
    """A rectangle in pixels: top-left corner (x, y), width, height."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Region:
    """A candidate digit: its box in the ink image, and its ink alone (float32 [height, width], 0..1)."""

    box: Box
    ink: np.ndarray


@dataclass(frozen=True)
class Group:
    """Ink that holds one digit, or several that touch: its box in the ink image, its ink alone (float32
    [height, width] 0..1, other groups' strokes removed), and its own ink mask there (None: all ink in the box)."""

    box: Box
    ink: np.ndarray
    mask: np.ndarray | None = None

    @property
    def region(self) -> Region:
        """The group as one candidate digit."""
        return Region(self.box, self.ink)

    @property
    def wide(self) -> bool:
        """Wide enough to be digits that touch, and large enough to cut: worth candidate cuts."""
        return self.box.width > WIDE * self.box.height and self.box.height >= CUT_HEIGHT


def components(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels uint16 or int32 [H, W], stats int32 [n + 1, 5]: x, y, width, height, area) of the ink mask's
    8-connected components; label 0, row 0 of stats, is the background."""
    mask = np.ascontiguousarray(ink > INK).view(np.uint8)
    h, w = mask.shape
    # 16-bit labels when they cannot overflow (8-connected components are at most one per 2x2 block): OpenCV is
    # about twice as fast with them
    ltype = cv2.CV_16U if ((h + 1) // 2) * ((w + 1) // 2) < 65535 else cv2.CV_32S
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=ltype)
    return labels, stats


def groups(stats: np.ndarray, shape: tuple[int, int]) -> list[list[int]]:
    """The labels of each digit's components, left to right: components merged by x-overlap, dots and stray marks
    dropped, pieces of a broken digit joined, specks kept with the digit they belong to. `stats` as components()
    gives them, `shape` the image's (height, width)."""
    if len(stats) == 2:  # one component, the usual upload of one digit: that digit, unless it is a speck
        return [[1]] if max(stats[1, 2], stats[1, 3]) >= max(2.0, MIN_EXTENT * min(shape)) else []
    extent = np.maximum(stats[1:, 2], stats[1:, 3])
    kept = np.flatnonzero(extent >= max(2.0, MIN_EXTENT * min(shape))) + 1  # specks: small against the image
    spans = _merge([(Box(*map(int, stats[i, :4])), [int(i)]) for i in kept[np.argsort(stats[kept, 0])]], _overlapping)
    tallest = max((box.height for box, _ in spans), default=0)
    areas = [int(stats[members, 4].sum()) for _, members in spans]
    spans = [
        (box, members)
        for (box, members), area in zip(spans, areas, strict=True)
        if max(box.width, box.height) >= SMALL * tallest and area >= FAINT * max(areas)
    ]
    speck = np.ones(len(stats), bool)
    speck[0], speck[kept] = False, False
    specks = np.flatnonzero(speck)
    return [members + _specks_near(box, stats, specks) for box, members in _merge(spans, _pieces)]


def _specks_near(box: Box, stats: np.ndarray, specks: np.ndarray) -> list[int]:
    """The specks (labels) that belong to the digit in `box`: those within a tenth of its height of it, left or
    right, and a quarter above or below. A digit keeps the bits of its broken strokes, as the single-digit recipe
    kept all the ink."""
    x, y, w, h = (stats[specks, k] for k in range(4))
    across, up = box.height // 10, box.height // 4
    beside = (x + w >= box.x - across) & (x <= box.x + box.width + across)
    near = (y + h >= box.y - up) & (y <= box.y + box.height + up)
    return [int(i) for i in specks[beside & near]]


def _merge(spans: list[tuple[Box, list[int]]], together) -> list[tuple[Box, list[int]]]:
    """Merge neighbours of `spans` (boxes and their components' labels, in x order) while together(a, b) says so."""
    merged = True
    while merged:
        merged, out = False, []
        for box, members in spans:
            if out and together(out[-1][0], box):
                out[-1] = (_union(out[-1][0], box), out[-1][1] + members)
                merged = True
            else:
                out.append((box, members))
        spans = out
    return spans


def _overlapping(a: Box, b: Box) -> bool:
    """Do a's and b's x-extents overlap by OVERLAP of the narrower one's width? Then they are one digit."""
    overlap = min(a.x + a.width, b.x + b.width) - max(a.x, b.x)
    return overlap > 0 and overlap >= OVERLAP * min(a.width, b.width)


def _pieces(a: Box, b: Box) -> bool:
    """Are neighbours a and b pieces of one broken digit: close together, one of them short beside the two (digits
    side by side are each about as tall as both together: a 1 broken in two, or a 5 whose bar reaches past it)?"""
    union = _union(a, b)
    return b.x - (a.x + a.width) <= NEAR * union.height and min(a.height, b.height) < SHORT * union.height


def _union(a: Box, b: Box) -> Box:
    x0, y0 = min(a.x, b.x), min(a.y, b.y)
    x1, y1 = max(a.x + a.width, b.x + b.width), max(a.y + a.height, b.y + b.height)
    return Box(x0, y0, x1 - x0, y1 - y0)


def _bounds(stats: np.ndarray, members: list[int]) -> Box:
    """The box around the components `members`."""
    rows = stats[members]
    x0, y0 = rows[:, 0].min(), rows[:, 1].min()
    x1, y1 = (rows[:, 0] + rows[:, 2]).max(), (rows[:, 1] + rows[:, 3]).max()
    return Box(int(x0), int(y0), int(x1 - x0), int(y1 - y0))


def layout(ink: np.ndarray) -> list[Group]:
    """The image's ink [H, W] float32 0..1 -> its digit groups, left to right."""
    labels, stats = components(ink)
    return cut_out(ink, labels, stats, groups(stats, ink.shape))


def cut_out(ink: np.ndarray, labels: np.ndarray, stats: np.ndarray, members: list[list[int]]) -> list[Group]:
    """Each group's box and ink, given the image's ink [H, W], its components (components()) and the labels of
    each group's components (groups())."""
    if members == [[1]] and len(stats) == 2:  # one component, the usual upload of one digit: nothing else to remove
        box = Box(*(int(v) for v in stats[1, :4]))
        return [Group(box, ink[box.y : box.y + box.height, box.x : box.x + box.width])]
    boxes = [_bounds(stats, m) for m in members]
    owner = np.zeros(len(stats), np.int32)  # label -> 1 + index of the group it belongs to; 0: none
    for index, labels_of_group in enumerate(members):
        owner[labels_of_group] = index + 1
    return [
        Group(box, *_own_ink(ink, labels, owner, index + 1, box, _intersects_others(boxes, index)))
        for index, box in enumerate(boxes)
    ]


def _intersects_others(boxes: list[Box], index: int) -> bool:
    a = boxes[index]
    return any(
        b.x < a.x + a.width and a.x < b.x + b.width and b.y < a.y + a.height and a.y < b.y + b.height
        for i, b in enumerate(boxes)
        if i != index
    )


def _own_ink(
    ink: np.ndarray, labels: np.ndarray, owner: np.ndarray, group: int, box: Box, shared: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """The ink in `box` [h, w] without other groups' strokes (and their anti-aliased edges), and the group's
    own ink mask there (None when nothing else is in the box: all of the box's mask is the group's)."""
    rows, cols = slice(box.y, box.y + box.height), slice(box.x, box.x + box.width)
    crop = ink[rows, cols]
    if not shared:
        return crop, None
    owners = owner[labels[rows, cols]]
    others = ((owners != 0) & (owners != group)).view(np.uint8)
    if others.any():
        crop = crop.copy()
        crop[cv2.dilate(others, np.ones((3, 3), np.uint8)).view(bool)] = 0
    return crop, owners == group


class Candidates(NamedTuple):
    """A group's cut lines, left to right, and its candidate digits: regions[(i, j)] lies between cut i and cut j,
    where cut 0 is the group's left edge and cut len(lines) + 1 its right edge; regions[(0, len(lines) + 1)] is
    the whole group."""

    lines: list[Cut]
    regions: dict[tuple[int, int], Region]


def candidates(group: Group, hints: Sequence[float] = ()) -> Candidates:
    """A group's candidate digits (only the whole when no valley of its ink projection makes a plausible cut).

    Handwriting slants, and slanted digits that touch overlap in x: cuts are lines, upright or slanted (SHEARS),
    at the valleys of the ink projected along them (cuts()). `hints`: columns (in the group) where the line reader
    puts a boundary between two digits; each gets a seam near it, whatever the projection there.
    """
    box = group.box
    mask = group.ink > INK if group.mask is None else group.mask
    lines = cuts(mask, hints)
    rows = np.arange(box.height)[:, None] - box.height / 2
    columns = np.arange(box.width)[None, :]
    edges = [None, *lines, None]
    spans = {(0, len(edges) - 1): group.region}
    for i in range(len(edges) - 1):
        for j in range(i + 1, len(edges)):
            if (i, j) in spans or not _apart(edges[i], edges[j], box.height):
                continue
            part = np.ones((box.height, box.width), bool)
            if edges[i] is not None:
                part &= columns >= edges[i].at(rows)
            if edges[j] is not None:
                part &= columns < edges[j].at(rows)
            region = _piece(box, group.ink, mask, part)
            if region is not None and region.box.width <= WIDEST * box.height:
                spans[(i, j)] = region
    return Candidates(lines, spans)


def _apart(a: Cut | None, b: Cut | None, height: int) -> bool:
    """Do cut lines a and b (None: the group's edge) not cross within the group?"""
    if a is None or b is None:
        return True
    rows = np.arange(height)[:, None] - height / 2
    return bool((a.at(rows) < b.at(rows)).all())


class Cut(NamedTuple):
    """A candidate cut line through a group: x at mid-height, shear (x shift per row down), ink pixels it crosses;
    a seam (a path that bends around strokes) also has its x in every row, `path` float [h, 1]."""

    x: float
    shear: float
    ink: int
    path: np.ndarray | None = None

    def at(self, rows: np.ndarray) -> np.ndarray:
        """The cut's x in each of `rows` [h, 1] (row index less half the group's height): [h, 1]."""
        return self.path if self.path is not None else self.x + self.shear * rows


def cuts(mask: np.ndarray, hints: Sequence[float] = ()) -> list[Cut]:
    """Candidate cut lines of a group's ink mask [h, w], left to right: for each slant in SHEARS, the valleys of
    the ink projected along it (cut_columns()), and seams that bend around strokes (seams()); the least ink crossed
    first, lines that meet within a narrow digit's width of each other at mid-height merged, MOST_CUTS (or
    PER_HEIGHT per height of width) at most; then a seam near each of `hints` (columns) that none of those is near."""
    h = mask.shape[0]
    ys, xs = np.nonzero(mask)
    found = []
    for shear in SHEARS:
        u = np.round(xs - shear * (ys - h / 2)).astype(np.int64)
        profile = np.bincount(u - u.min())
        found += [(int(profile[c]), c + int(u.min()), shear, None) for c in cut_columns(profile, h)]
    found += seams(mask)
    narrow = max(2, math.ceil(NARROWEST * h))
    most = max(MOST_CUTS, math.ceil(PER_HEIGHT * mask.shape[1] / h))
    chosen: list[Cut] = []
    for ink, x, shear, path in sorted(found, key=lambda f: f[:3]):
        if all(abs(x - other.x) >= narrow for other in chosen):
            chosen.append(Cut(float(x), shear, ink, path))
            if len(chosen) == most:
                break
    for ink, x, shear, path in seams(mask, [round(x) for x in hints]) if hints else ():
        if all(abs(x - other.x) >= narrow / 2 for other in chosen):
            chosen.append(Cut(float(x), shear, ink, path))
    return sorted(chosen)


def seams(mask: np.ndarray, near: Sequence[int] | None = None) -> list[tuple[int, int, float, np.ndarray]]:
    """Candidate seams of a group's ink mask [h, w]: paths from top to bottom, one column sideways at most per row,
    crossing the least ink; the valleys (cut_columns()) of the least ink a seam through each column of the middle
    row crosses, or with `near`, the least of those within a narrow digit's width of each of these columns.
    -> (ink crossed, x at mid-height, 0.0, x per row float [h, 1]) for each."""
    h, w = mask.shape
    cost = mask.astype(np.float32)
    down, up = _least_paths(cost), _least_paths(cost[::-1])[::-1]
    mid = h // 2
    through = down[mid] + up[mid] - cost[mid]  # [w]: the least ink of a seam through (mid, x)
    if near is None:
        columns = cut_columns(np.round(through).astype(np.int64), h)
    else:
        reach = max(2, math.ceil(NARROWEST * h))
        windows = [(max(1, c - reach), min(w - 1, c + reach + 1)) for c in near]
        columns = sorted({a + int(np.argmin(through[a:b])) for a, b in windows if a < b})
    if not columns:
        return []
    path = np.empty((h, len(columns)), np.int64)
    path[mid] = columns
    _trace(down, path, range(mid - 1, -1, -1))
    _trace(up, path, range(mid + 1, h))
    crossed = mask[np.arange(h)[:, None], path].sum(axis=0)
    return [(int(crossed[k]), int(c), 0.0, path[:, k : k + 1].astype(np.float32)) for k, c in enumerate(columns)]


def _least_paths(cost: np.ndarray) -> np.ndarray:
    """The least cost [h, w] of a path from the top row down to each pixel of `cost` [h, w]."""
    total = cost.copy()
    for y in range(1, len(cost)):
        prev = total[y - 1]
        best = prev.copy()
        np.minimum(best[1:], prev[:-1] + STEP, out=best[1:])
        np.minimum(best[:-1], prev[1:] + STEP, out=best[:-1])
        total[y] += best
    return total


def _trace(total: np.ndarray, path: np.ndarray, rows: range) -> None:
    """Follow the least paths of `total` [h, w] from the row before `rows` through `rows`, filling `path` [h, k]."""
    w = total.shape[1]
    step = -1 if rows.step > 0 else 1  # the row the path comes from
    for y in rows:
        x = path[y + step]
        options = np.stack([np.clip(x + d, 0, w - 1) for d in (-1, 0, 1)])  # [3, k]
        value = total[y][options] + STEP * (options != x)
        path[y] = options[value.argmin(axis=0), np.arange(len(x))]


def _piece(box: Box, crop: np.ndarray, mask: np.ndarray, part: np.ndarray) -> Region | None:
    """The candidate digit made of the pixels `part` (bool [h, w]) of a group: its ink, cropped to its own box."""
    own = mask & part
    rows, cols = np.flatnonzero(own.any(axis=1)), np.flatnonzero(own.any(axis=0))
    if rows.size == 0:
        return None
    top, bottom, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    ink = np.where(part[top:bottom, x0:x1], crop[top:bottom, x0:x1], 0).astype(np.float32)
    return Region(Box(box.x + x0, box.y + top, x1 - x0, bottom - top), ink)


def cut_columns(profile: np.ndarray, height: int) -> list[int]:
    """Candidate cut columns of a group from its vertical ink projection [w] (ink pixels per column): the
    lowest valleys (lower than the ink on both sides), at least a narrow digit's width from the ends and
    from each other, lowest first up to MOST_CUTS, returned left to right."""
    narrow = max(2, math.ceil(NARROWEST * height))
    p = profile.astype(np.float32)
    left_peak = np.maximum.accumulate(p)
    right_peak = np.maximum.accumulate(p[::-1])[::-1]
    valley = np.minimum(left_peak, right_peak) >= p + np.maximum(2, 0.15 * p)  # a dip, not the edge of a curve
    valley[:narrow] = False
    valley[len(p) - narrow + 1 :] = False
    chosen: list[int] = []
    for c in np.flatnonzero(valley)[np.argsort(p[valley], kind="stable")]:
        if all(abs(int(c) - d) >= narrow for d in chosen):
            chosen.append(int(c))
            if len(chosen) == MOST_CUTS:
                break
    return sorted(chosen)


def worth_asking(group: Group, whole: np.ndarray) -> bool:
    """May a group too narrow to be worth cutting be two digits, one of them a narrow 1, given what the model reads
    in it whole (`whole` [10])? Then the line reader is asked."""
    return group.box.width > ASK * group.box.height and group.box.height >= CUT_HEIGHT and whole.max() < CERTAIN


def worth_cutting(group: Group, whole: np.ndarray) -> bool:
    """Should a group's candidate pieces be read, given what the model reads in it whole (`whole` [10])?"""
    return group.wide and not (group.box.width <= SURE_ASPECT * group.box.height and whole.max() >= SURE)


def span_features(region: Region, left: Cut | None, right: Cut | None, height: int, stroke: float, p) -> np.ndarray:
    """What the score of a candidate digit weighs (SPAN_WEIGHTS): its shape against its group's `height`, the ink
    its cuts cross (in strokes, `stroke` px wide; none at the group's edges), and what the model reads in it
    (probabilities `p` [10]): float64 [len(SPAN_WEIGHTS)]."""
    w, h = region.box.width, region.box.height
    digit, confidence = int(p.argmax()), float(p.max())
    wide, tall = w / height, h / height
    crossed = [c.ink / stroke if c is not None else 0.0 for c in (left, right)]
    odd = (math.log(w / h) - DIGIT_ASPECT[digit][0]) / DIGIT_ASPECT[digit][1]  # against digits read as this one
    return np.array(
        [
            1.0,
            wide,
            wide * wide,
            max(wide - 1, 0) ** 2,
            tall,
            (1 - tall) ** 2,
            sum(crossed),
            sum(max(c - 1, 0) ** 2 for c in crossed),
            math.log(max(confidence, 1e-9)),
            math.log(max(1 - confidence, 1e-9)),
            wide * (digit == 1),
            float(digit == 1),
            odd * odd,
            max(odd, 0) ** 2,
        ]
    )


def choose(
    group: Group, found: Candidates, probabilities: dict[tuple[int, int], np.ndarray], count: int | None = None
) -> list[tuple[int, int]] | None:
    """The candidate digits a group reads as, left to right, given what the model reads in each (`probabilities`,
    keyed as found.regions): the split with the highest total score (span_features() weighed by SPAN_WEIGHTS), the
    whole group as one digit favoured by ONE_DIGIT (a digit drawn alone must not be cut). With `count`, the best
    split into that many digits, None if there is none."""
    lines: list[Cut | None] = [None, *found.lines, None]
    end = len(lines) - 1
    if len(probabilities) == 1:
        return list(probabilities) if count in (None, 1) else None
    mask = group.ink > INK if group.mask is None else group.mask
    stroke = max(stroke_width(mask), 1.0)
    score = {
        (i, j): float(
            SPAN_WEIGHTS @ span_features(found.regions[(i, j)], lines[i], lines[j], group.box.height, stroke, p)
        )
        + (ONE_DIGIT if (i, j) == (0, end) else 0.0)
        for (i, j), p in probabilities.items()
    }
    # best[(j, k)]: the best way to read the group up to cut j as k digits: (score, its candidate digits)
    best: dict[tuple[int, int], tuple[float, list[tuple[int, int]]]] = {(0, 0): (0.0, [])}
    for j in range(1, end + 1):
        for (i, k), (total, path) in [item for item in best.items() if item[0][0] < j]:
            if (i, j) in score and (count is None or k < count):
                option = (total + score[(i, j)], [*path, (i, j)])
                if (j, k + 1) not in best or option[0] > best[(j, k + 1)][0]:
                    best[(j, k + 1)] = option
    ends = [v for (j, k), v in best.items() if j == end and (count is None or k == count)]
    return max(ends, key=lambda option: option[0])[1] if ends else None
