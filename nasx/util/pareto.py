"""Pareto dominance and 2-D hypervolume for (latency, score) fronts: latency minimised, score maximised."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

Point = tuple[float, float]  # (latency_ms, score)


def dominates(a: Point, b: Point) -> bool:
    """a is at least as fast and at least as good as b, and strictly better in one."""
    return a[0] <= b[0] and a[1] >= b[1] and (a[0] < b[0] or a[1] > b[1])


def dominated_with_margin(
    front: Iterable[tuple[int, float, float]], predicted_ms: float, margin: float, score: float
) -> tuple[int, float, float] | None:
    """The fastest member (number, latency ms, score) of a measured `front` that would still dominate a
    candidate of `score` whose latency is only predicted, even were it `margin` faster than `predicted_ms`:
    latency < predicted x (1 - margin) and score >= the candidate's. None when no member does (a candidate
    that could join the front). The rule of both screening (nasx.search.screen) and --prefilter."""
    optimistic = predicted_ms * (1 - margin)
    if predicted_ms > 0:
        for member in sorted(front, key=lambda f: f[1]):
            if member[1] < optimistic and member[2] >= score:
                return member
    return None


def nondominated(points: Iterable[Point]) -> list[Point]:
    """The Pareto-optimal points (duplicates kept once), fastest first."""
    pts = sorted(set(points), key=lambda p: (p[0], -p[1]))
    front: list[Point] = []
    for p in pts:
        if not front or p[1] > front[-1][1]:
            front.append(p)
    return front


def hypervolume(points: Sequence[Point], ref: Point) -> float:
    """Area dominated by `points` and bounded by `ref` = (worst latency, worst score): the union of the
    rectangles [latency, ref_latency] x [ref_score, score]. Points beyond the reference add nothing."""
    inside = [p for p in nondominated(points) if p[0] < ref[0] and p[1] > ref[1]]
    # fastest first, scores rise: each point covers the score band above its predecessor's from its latency
    area, prev_score = 0.0, ref[1]
    for lat, score in inside:
        area += (ref[0] - lat) * (score - prev_score)
        prev_score = score
    return area


def normalised(points: Iterable[Point], latency_unit: float, score_unit: float) -> list[Point]:
    """Points in units of a reference model: (latency / latency_unit, score / score_unit)."""
    return [(lat / latency_unit, score / score_unit) for lat, score in points]


def knee(points: Sequence[Point]) -> int | None:
    """Index of the knee of a front of (latency, score) points: with both objectives normalised to [0, 1] over
    the front (latency 0 = fastest, score 1 = best), the point farthest from the line between the two extremes
    (the fastest and the best-scoring), on the side of the ideal corner (fast and good); a tie goes to the
    faster point. None for fewer than 3 points, where there is no trade-off curve to bend."""
    if len(points) < 3:
        return None
    lats, scores = [p[0] for p in points], [p[1] for p in points]
    lo_l, hi_l, lo_s, hi_s = min(lats), max(lats), min(scores), max(scores)
    if hi_l == lo_l or hi_s == lo_s:
        return None
    norm = [((lat - lo_l) / (hi_l - lo_l), (s - lo_s) / (hi_s - lo_s)) for lat, s in points]
    a = min(range(len(points)), key=lambda i: (lats[i], -scores[i]))  # fastest extreme
    b = max(range(len(points)), key=lambda i: (scores[i], -lats[i]))  # best-scoring extreme
    (ax, ay), (bx, by) = norm[a], norm[b]
    length = math.hypot(bx - ax, by - ay)

    def distance(i: int) -> float:  # signed: positive towards the ideal corner (0, 1)
        x, y = norm[i]
        return ((bx - ax) * (y - ay) - (by - ay) * (x - ax)) / length

    return max(range(len(points)), key=lambda i: (distance(i), -lats[i]))
