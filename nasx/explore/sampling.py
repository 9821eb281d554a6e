"""Sampling populations from a space (whole, per family), their EDFs, and the stratified measured subset."""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass

import numpy as np

from nasx.arch import Arch
from nasx.cost import cost
from nasx.errors import NasxError
from nasx.space.model import SearchSpace

ALL = "all"  # the population drawn from the whole space


def enumerate_space(space: SearchSpace, limit: int = 100_000):
    """Every choice path of a (small) space with its probability under the uniform draw:
    yields (probability, choices, arch). Raises NasxError past `limit` paths."""

    class _Replay:  # a Chooser taking the choices a prefix of indices names, then the first ones
        def __init__(self, prefix):
            self.prefix, self.path, self.choices = prefix, [], {}

        def suggest_categorical(self, name, choices):
            choices = list(choices)
            i = self.prefix[len(self.path)] if len(self.path) < len(self.prefix) else 0
            self.path.append((i, len(choices)))
            self.choices[name] = choices[i]
            return choices[i]

    stack, seen = [[]], 0
    while stack:
        prefix = stack.pop()
        rep = _Replay(prefix)
        arch = space.sample(rep)
        for pos in range(len(prefix), len(rep.path)):
            stack.extend([i for i, _ in rep.path[:pos]] + [alt] for alt in range(1, rep.path[pos][1]))
        seen += 1
        if seen > limit:
            raise NasxError(f"space {space.name} has more than {limit} choice paths: too many to enumerate")
        yield math.prod(1 / n for _, n in rep.path), rep.choices, arch


def subspace(space: SearchSpace, family: str) -> SearchSpace:
    """The same skeleton with every block of one family (its parameter choices unchanged)."""
    fams = dict(space.families)
    if family not in fams:
        raise NasxError(f"space {space.name} has no family {family!r}; it has {', '.join(fams)}")
    return dataclasses.replace(space, name=f"{space.name}[{family}]", families=((family, fams[family]),))


def population_names(space: SearchSpace) -> list[str]:
    fams = [f for f, _ in space.families]
    return [ALL] + fams if len(fams) > 1 else [ALL]


@dataclass
class Sample:
    population: str
    index: int
    choices: dict
    arch: Arch
    arch_hash: str
    madds: int
    mac: int
    params: int
    activations: int
    families: dict
    latency_ms: float | None = None
    iqr_ms: float | None = None
    cached: bool = False
    split: str | None = None
    layer_sum_ms: float | None = None  # its layers timed alone (the block table), summed
    n_layers: int = 0

    def value(self, key: str) -> float:
        return getattr(self, key)


def sample_population(space: SearchSpace, n: int, seed: int, population: str = ALL) -> list[Sample]:
    """n uniform draws from `space` (or from its single-family sub-space `population`), costed."""
    sp = space if population == ALL else subspace(space, population)
    rng = random.Random(f"nasx-explore:{seed}:{population}")
    out = []
    for i in range(n):
        choices, arch = sp.random_choices(rng)
        r = cost(arch)
        out.append(
            Sample(
                population,
                i,
                choices,
                arch,
                arch.content_hash(),
                r.madds,
                r.mac,
                r.params,
                r.activations,
                arch.families(),
            )
        )
    return out


def edf(values) -> tuple[np.ndarray, np.ndarray]:
    """The empirical distribution function F(t) = share of values <= t, as its steps: (the distinct
    values in increasing order, F at each of them). F is right-continuous and ends at 1."""
    v = np.sort(np.asarray(values, dtype=float))
    if len(v) == 0:
        return v, v
    xs, counts = np.unique(v, return_counts=True)
    return xs, np.cumsum(counts) / len(v)


def edf_at(values, points) -> np.ndarray:
    """F evaluated at arbitrary points."""
    v = np.sort(np.asarray(values, dtype=float))
    return np.searchsorted(v, np.asarray(points, dtype=float), side="right") / len(v)


def quotas(names: list[str], k: int) -> dict[str, int]:
    """Half of k (rounded up) to the whole space, the rest evenly over the family sub-spaces."""
    if len(names) == 1:
        return {names[0]: k}
    fams = names[1:]
    if k < 1 + len(fams):
        raise NasxError(
            f"--measure {k} is too few to represent the whole space and each of the {len(fams)} "
            f"families: use at least {1 + len(fams)} (default 40)"
        )
    rest = k - math.ceil(k / 2)
    rest = max(rest, len(fams))
    q = {ALL: k - rest}
    for i, f in enumerate(fams):
        q[f] = rest // len(fams) + (1 if i < rest % len(fams) else 0)
    return q


def spread_pick(samples: list[Sample], q: int) -> list[Sample]:
    """q samples of distinct architectures, nearest to q targets evenly spaced over log MAdds between the
    population's smallest and largest member (targets at the centres of q equal intervals)."""
    if q <= 0 or not samples:
        return []
    logm = np.log(np.array([s.madds for s in samples], dtype=float))
    lo, hi = logm.min(), logm.max()
    chosen, hashes = [], set()
    for j in range(q):
        target = lo + (j + 0.5) / q * (hi - lo)
        for i in np.argsort(np.abs(logm - target), kind="stable"):
            s = samples[int(i)]
            if s.arch_hash not in hashes:
                chosen.append(s)
                hashes.add(s.arch_hash)
                break
    return chosen


def stratified_subset(populations: dict[str, list[Sample]], k: int) -> list[Sample]:
    q = quotas(list(populations), k)
    subset, hashes = [], set()
    for name, samples in populations.items():
        picks = spread_pick([s for s in samples if s.arch_hash not in hashes], q[name])
        subset += picks
        hashes.update(s.arch_hash for s in picks)
    return subset


def split_halves(subset: list[Sample], seed: int) -> tuple[list[Sample], list[Sample]]:
    """Within each population, architectures in MAdds order are paired; a seeded coin sends one of each
    pair to the training half and the other to the held-out half (an odd one out trains)."""
    rng = random.Random(f"nasx-explore-split:{seed}")
    train, test = [], []
    by_pop: dict[str, list[Sample]] = {}
    for s in subset:
        by_pop.setdefault(s.population, []).append(s)
    for samples in by_pop.values():
        ordered = sorted(samples, key=lambda s: (s.madds, s.arch_hash))
        for i in range(0, len(ordered) - 1, 2):
            a, b = ordered[i], ordered[i + 1]
            if rng.random() < 0.5:
                a, b = b, a
            train.append(a)
            test.append(b)
        if len(ordered) % 2:
            train.append(ordered[-1])
    for s in train:
        s.split = "train"
    for s in test:
        s.split = "test"
    return train, test
