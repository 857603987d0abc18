"""The digits of an image, left to right: its ink -> each digit's region. Pure functions, numpy in and out.

Connected components alone would split a 5 from its bar and merge digits that touch. So:
1. the 8-connected components of the ink mask (OpenCV's, in C), less the specks;
2. components whose x-extents overlap, the narrower one's mostly inside the other's, are one digit: a 5 and its
   bar, a 4 or a 7 in two strokes, a broken 8 (groups());
3. groups small beside the tallest one are dots or specks, not digits, and are dropped; close neighbours of which
   one is short beside the two are pieces of one broken digit, and are joined;
4. a group much wider than a digit of its height may be digits that touch: it gets candidate cut columns at the
   valleys of its vertical ink projection, and every run of pieces between two of them is a candidate digit
   (layout()). The classifier chooses among them (choose()): a cut is kept only when its pieces read with clearly
   higher confidence than the whole, so a wide 0, 2 or 7 stays one digit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from service.preprocessing import INK, MIN_EXTENT

OVERLAP = 0.5  # components whose x-extents overlap by this fraction of the narrower one's width are one digit
SMALL = 0.3  # a group whose width and height are both under this fraction of the tallest group's height is a dot
FAINT = 0.15  # a group with less ink than this fraction of the inkiest group's is a stray mark (a dotted line)
# neighbours at most NEAR x their joint height apart, one of them under SHORT x that height, are one broken digit
NEAR, SHORT = 0.15, 0.6
WIDE = 0.9  # a group wider than this times its height may be touching digits: it gets candidate cuts
NARROWEST = 0.12  # the narrowest piece a cut may leave, as a fraction of the group's height (a narrow 1)
WIDEST = 1.6  # the widest candidate digit a cut may leave, as a fraction of the group's height
MOST_CUTS = 6  # candidate cut columns per group at most (every run between two of them is read)
PENALTY = 0.2  # log-confidence that each extra digit must gain: a cut is kept when p1 * p2 > p_whole * e^PENALTY


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
        """Wide enough to be digits that touch: worth candidate cuts."""
        return self.box.width > WIDE * self.box.height


def components(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels int32 [H, W], stats int32 [n + 1, 5]: x, y, width, height, area) of the ink mask's 8-connected
    components; label 0, row 0 of stats, is the background."""
    mask = np.ascontiguousarray(ink > INK).view(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=cv2.CV_32S)
    return labels, stats


def groups(stats: np.ndarray, shape: tuple[int, int]) -> list[list[int]]:
    """The labels of each digit's components, left to right: components merged by x-overlap, dots and stray marks
    dropped, pieces of a broken digit joined, specks kept with the digit they belong to. `stats` as components()
    gives them, `shape` the image's (height, width)."""
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
    specks = np.setdiff1d(np.arange(1, len(stats)), kept)
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


def candidates(group: Group) -> dict[tuple[int, int], Region]:
    """A group's candidate digits: spans[(i, j)] lies between cut i and cut j, where cut 0 is the group's left edge
    and the last cut its right edge; the span from the first to the last is the whole group. Only the whole
    when no valley of its ink projection makes a plausible cut."""
    box = group.box
    mask = group.ink > INK if group.mask is None else group.mask
    edges = [0, *cut_columns(mask.sum(axis=0), box.height), box.width]
    spans = {(0, len(edges) - 1): group.region}
    for i in range(len(edges) - 1):
        for j in range(i + 1, len(edges)):
            if (i, j) not in spans and edges[j] - edges[i] <= WIDEST * box.height:
                region = _piece(box, group.ink, mask, edges[i], edges[j])
                if region is not None:
                    spans[(i, j)] = region
    return spans


def _piece(box: Box, crop: np.ndarray, mask: np.ndarray, left: int, right: int) -> Region | None:
    """The candidate digit in columns [left, right) of a group: its ink cropped to its own box."""
    part = mask[:, left:right]
    rows, cols = np.flatnonzero(part.any(axis=1)), np.flatnonzero(part.any(axis=0))
    if rows.size == 0:
        return None
    top, bottom, x0, x1 = int(rows[0]), int(rows[-1]) + 1, left + int(cols[0]), left + int(cols[-1]) + 1
    return Region(Box(box.x + x0, box.y + top, x1 - x0, bottom - top), crop[top:bottom, x0:x1])


def cut_columns(profile: np.ndarray, height: int) -> list[int]:
    """Candidate cut columns of a group from its vertical ink projection [w] (ink pixels per column): the
    lowest valleys (lower than the ink on both sides), at least a narrow digit's width from the ends and
    from each other, lowest first up to MOST_CUTS, returned left to right."""
    narrow = max(2, math.ceil(NARROWEST * height))
    p = profile.astype(np.float32)
    left_peak = np.maximum.accumulate(p)
    right_peak = np.maximum.accumulate(p[::-1])[::-1]
    valley = np.minimum(left_peak, right_peak) >= np.maximum(p + 2, 1.3 * p)  # a dip, not the edge of a curve
    valley[:narrow] = False
    valley[len(p) - narrow + 1 :] = False
    chosen: list[int] = []
    for c in np.flatnonzero(valley)[np.argsort(p[valley], kind="stable")]:
        if all(abs(int(c) - d) >= narrow for d in chosen):
            chosen.append(int(c))
            if len(chosen) == MOST_CUTS:
                break
    return sorted(chosen)


def choose(confidence: dict[tuple[int, int], float]) -> list[tuple[int, int]]:
    """The spans (keys of candidates()) a group reads as, left to right, given each one's confidence: the split
    with the highest total log-confidence, each digit after the first paying PENALTY (so a cut must clearly beat
    the whole)."""
    end = max(j for _, j in confidence)
    best: dict[int, tuple[float, list[tuple[int, int]]]] = {0: (0.0, [])}
    for j in range(1, end + 1):
        options = [
            (best[i][0] + math.log(max(confidence[(i, j)], 1e-12)) - PENALTY, [*best[i][1], (i, j)])
            for i in range(j)
            if i in best and (i, j) in confidence
        ]
        if options:
            best[j] = max(options, key=lambda option: option[0])
    return best[end][1]
