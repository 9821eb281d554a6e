"""`capacity`, the default score: a network's size along three axes on one fixed scale, a function of the
network alone.

    capacity(a) = log(MAdds(a)) / 0.387 + log(activations(a)) / 0.338 + log(depth(a)) / 0.173

The counts are the cost core's (nasx.cost: microseconds, nothing is built): the multiply-accumulates, the
activation count (output elements of conv and linear layers) and the weighted depth (the most conv and
linear layers on any input-to-output path, nasx.graph.Graph.depth). Each log is divided by its spread, the
standard deviation of that log within a search space, so that no term outweighs the others by its units or
range: a network twice as deep counts like one whose MAdds grew by a factor of 2 ** (0.387 / 0.173). The
spreads are fixed constants (SPREADS) measured without any accuracy: 200 architectures drawn uniformly
(nasx.space.sample.sample_archs, seed 0) from each space nasx ships (SPREAD_SPACES), the standard deviation of
each log count within each space, averaged over the four (`python scripts/score_spreads.py` prints them;
tests/test_capacity.py recomputes them). They are versioned (VERSION, in the score cache key): refitting them
makes a new score, never a silent change to stored values.

Why (docs/scores.md "Against real accuracy", `nasx validate-score --truth all`): over three truths of real accuracy
(NAS-Bench-Macro's CIFAR-10 trainings, Once-for-All MobileNetV3 subnets on ImageNet, the zoo's published
ImageNet top-1) every single count wins one truth and loses another (activations rank NAS-Bench-Macro best
and the zoo worst, params the other way round), and no training-free proxy, alone or added to this sum,
raised the worst case beyond what resampling the networks moves it. Of the sums of log counts this one has
the best worst case (Kendall tau-b +0.661 on all 3,969 NAS-Bench-Macro networks, +0.817 on all 2,223 OFA
subnets, +0.717 on the 18 zoo networks). The terms were chosen with all three truths in view: left out of
one truth and chosen on the other two, the choice did worse on the one left out (docs/scores.md), so read the worst
case as what was seen, not as a promise. On a space unlike all three, check it with `nasx validate-score`
against a few networks trained on your data.

A rank against a pool or a sample would make the value depend on what else is scored; a sum with fixed
constants does not: the same network scores the same in every search, storage and config, and any two
networks compare by their values.

May import: nasx.errors, core (nasx.cost)."""

from __future__ import annotations

import math

from nasx.errors import NasxError

VERSION = "v1"
# standard deviation of log(count) within each shipped space (200 uniform draws, seed 0), averaged over the four
# spaces; scripts/score_spreads.py prints them
SPREADS = {"madds": 0.387, "activations": 0.338, "depth": 0.173}
TERMS = tuple(SPREADS)
SPREAD_SPACES = ("cifar32", "mobile224", "mobile224_layers", "nas-bench-macro")  # where the spreads were measured


def capacity_terms(arch) -> dict[str, float]:
    """Each term's log count divided by its spread (what capacity sums)."""
    from nasx.cost import cost

    report = cost(arch)
    out = {}
    for term in TERMS:
        count = getattr(report, term)
        if count <= 0:
            raise NasxError(f"capacity: {getattr(arch, 'name', '') or 'the network'} has no {term} to count")
        out[term] = math.log(count) / SPREADS[term]
    return out


def capacity(module, input_shape, seed: int = 0, arch=None) -> float:
    """The capacity score of `arch` (module and seed unused: the counts are the architecture's)."""
    if arch is None:
        raise NasxError("capacity reads the cost core's counts: call it with arch=")
    return sum(capacity_terms(arch).values())


capacity.needs_arch = True  # type: ignore[attr-defined]  (call_score passes arch=)
capacity.needs_module = False  # type: ignore[attr-defined]  (nothing to build)
capacity.key = f"{VERSION}:" + "+".join(f"{t}/{SPREADS[t]}" for t in TERMS)  # type: ignore[attr-defined]
