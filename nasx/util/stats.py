"""Rank statistics shared by the report, explore and validate-score, in numpy only.

Spearman's rho is Pearson's r of average ranks (ties share their mean rank); Kendall's tau is tau-b
(tie-corrected), the variant scipy.stats.kendalltau computes by default. Both are checked against scipy in
the tests."""

from __future__ import annotations

import math

import numpy as np


def rankdata(values) -> np.ndarray:
    """1-based ranks; tied values share the mean of the ranks they span (scipy's 'average' method)."""
    a = np.asarray(values, dtype=float)
    order = np.argsort(a, kind="mergesort")
    s = a[order]
    new = np.r_[True, s[1:] != s[:-1]]
    starts = np.r_[np.flatnonzero(new), len(a)]
    mean_rank = (starts[:-1] + 1 + starts[1:]) / 2  # ranks start+1 .. next start, averaged
    ranks = np.empty(len(a))
    ranks[order] = mean_rank[np.cumsum(new) - 1]
    return ranks


def spearman(x, y) -> float:
    """Spearman's rho; nan when fewer than 3 points or either side is constant."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) != len(y):
        raise ValueError("x and y differ in length")
    if len(x) < 3:
        return math.nan
    rx, ry = rankdata(x) - (len(x) + 1) / 2, rankdata(y) - (len(y) + 1) / 2
    den = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry) / den if den else math.nan


def kendall_tau_b(x, y) -> float:
    """Kendall's tau-b = (concordant - discordant) / sqrt((n0 - ties_x)(n0 - ties_y)); O(n^2) time, O(n)
    memory. nan when fewer than 3 points or either side is constant."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) != len(y):
        raise ValueError("x and y differ in length")
    n = len(x)
    if n < 3:
        return math.nan
    s = 0.0
    for i in range(n - 1):
        s += float(np.sum(np.sign(x[i + 1 :] - x[i]) * np.sign(y[i + 1 :] - y[i])))

    def tied_pairs(v):
        _, c = np.unique(v, return_counts=True)
        return float(np.sum(c * (c - 1) / 2))

    n0 = n * (n - 1) / 2
    den = math.sqrt((n0 - tied_pairs(x)) * (n0 - tied_pairs(y)))
    return s / den if den else math.nan
