"""A search space as data: the skeleton and the choices at each block position (SearchSpace, parsed from YAML
by nasx.space.config), and how a trial's choices become an Arch (`SearchSpace.sample(trial)`: an Optuna
trial, optuna.trial.FixedTrial to replay recorded choices, or a uniform draw)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from nasx.arch import Arch
from nasx.blocks import FAMILIES
from nasx.ops import Conv2d, Flatten, GlobalAvgPool, Linear


class Chooser(Protocol):
    """What sampling a space needs of a trial: one choice among `choices`, under a fixed name."""

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...


class RandomChooser:
    """A uniform draw for each suggest_* call (no Optuna needed), recording what each returned: what a space's
    random_choices (YAML or function) and a function space's load-time sample use in place of a trial."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.choices: dict[str, Any] = {}  # what each suggest_* returned: the trial's params, for enqueue_trial

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._made(name, self.rng.choice(list(choices)))

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        return self._made(name, low + step * self.rng.randrange((high - low) // step + 1))

    def suggest_float(self, name: str, low: float, high: float, step: float | None = None, log: bool = False):
        if step:
            return self._made(name, low + step * self.rng.randrange(int(round((high - low) / step)) + 1))
        return self._made(name, self.rng.uniform(low, high))

    def _made(self, name: str, value):
        self.choices[name] = value
        return value


@dataclass(frozen=True)
class Candidate:
    """One entry of a candidate list: a block family with fixed parameters, or skip (family "")."""

    name: str
    family: str = ""
    params: tuple[tuple[str, object], ...] = ()

    def layer(self, cin: int, out: int, stride: int, act: str):
        """The layer at a position taking `cin` channels to `out` at `stride`; None for an identity skip."""
        if self.family:
            return FAMILIES[self.family](out=out, stride=stride, act=act, **dict(self.params))
        if cin == out and stride == 1:
            return None
        return Conv2d(out, 1, stride, act=None)  # the projection a shape change needs: 1x1 conv + BN


@dataclass(frozen=True)
class Stage:
    stride: int
    depth: tuple[int, ...]
    out: tuple[int, ...]
    candidates: tuple[Candidate, ...] = ()  # this stage's own candidate list, else the space's choice


@dataclass(frozen=True)
class SearchSpace:
    name: str
    input: tuple[int, int, int]
    classes: int
    act: str
    stem_out: tuple[int, ...]
    stem_kernel: int
    stem_stride: int
    stages: tuple[Stage, ...]
    head_out: tuple[int, ...]
    families: tuple[tuple[str, tuple[tuple[str, tuple], ...]], ...]  # (family, ((param, choices), ...))
    text: str = ""  # the YAML it came from (stored with the study)
    choose: str = "block"
    candidates: tuple[Candidate, ...] = ()  # the top-level candidate list (instead of families)

    @property
    def config_hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:12]

    def sample(self, trial: Chooser) -> Arch:
        """The architecture the trial's choices describe."""
        pick = trial.suggest_categorical
        act = self.act
        cin = pick("stem_out", self.stem_out)
        stem = (Conv2d(cin, self.stem_kernel, self.stem_stride, act=act),)
        layers = []
        family_names = [f for f, _ in self.families]
        for i, stage in enumerate(self.stages, 1):
            depth = pick(f"s{i}_depth", stage.depth)
            out = pick(f"s{i}_out", stage.out)
            candidates = {c.name: c for c in stage.candidates or self.candidates}
            for j in range(depth):
                stride = stage.stride if j == 0 else 1
                if j == 0 or self.choose == "block":
                    key = f"s{i}" if self.choose == "stage" else f"s{i}_b{j}"
                    if candidates:
                        block = candidates[pick(f"{key}_block", list(candidates))]
                    else:
                        fam = pick(f"{key}_family", family_names)
                        params = dict(self.families)[fam]
                        block = Candidate(fam, fam, tuple((p, pick(f"{key}_{fam}_{p}", c)) for p, c in params))
                layer = block.layer(cin, out, stride, act)
                if layer is not None:
                    layers.append(layer)
                cin = out
        head = (Conv2d(pick("head_out", self.head_out), 1, act=act), GlobalAvgPool(), Flatten(), Linear(self.classes))
        return Arch(self.input, stem, tuple(layers), head, name=f"{self.name}-candidate")

    def random_arch(self, rng: random.Random) -> Arch:
        """A uniform draw over the choices (no Optuna needed): each choice picked uniformly at random."""
        return self.random_choices(rng)[1]

    def random_choices(self, rng: random.Random) -> tuple[dict, Arch]:
        """A uniform draw, with the choices it made: Optuna's parameters of the trial that would propose it
        (optuna.trial.FixedTrial(choices) or study.enqueue_trial(choices) replay it)."""
        chooser = RandomChooser(rng)
        arch = self.sample(chooser)
        return chooser.choices, arch

    def cost_bounds(self) -> dict[str, tuple[int, int]]:
        """(lower, upper) bound of MAdds, params and MAC (elements) over every network of the space, from the
        cost core: the sum over positions of each position's cheapest (dearest) family and knobs at its
        cheapest (dearest) in/out widths, each stage at its smallest (largest) depth. Costs are never negative
        and a position's cost does not depend on the families chosen elsewhere, so the bounds hold. The MAdds
        lower bound is exact (the narrowest, shallowest network with each position's cheapest family has it;
        tests/test_search.py builds it); for params and MAC it is only a lower bound: neighbouring positions
        share widths, and the cheapest choice at one can be dearer at the next (on cifar32 the cheapest
        network found moves 14% more than the MAC bound)."""
        from itertools import product

        from nasx.cost import _convention, layer_cost

        conv = _convention("madds", ())
        keys = ("madds", "params", "mac")

        def costs(layers, shape):
            total = dict.fromkeys(keys, 0)
            for layer in layers:
                c, shape = layer_cost(layer, shape, conv)
                for k in keys:
                    total[k] += getattr(c, k)
            return total, shape

        def bounds(options):  # options: list of cost dicts -> {key: (min, max)}
            return {k: (min(o[k] for o in options), max(o[k] for o in options)) for k in keys}

        def add(a, b, n_lo=1, n_hi=1):
            return {k: (a[k][0] + n_lo * b[k][0], a[k][1] + n_hi * b[k][1]) for k in keys}

        shape_in = self.input
        stem = {}
        for w in self.stem_out:
            stem[w], shape = costs([Conv2d(w, self.stem_kernel, self.stem_stride, act=self.act)], shape_in)
        total = bounds(list(stem.values()))
        hw, prev = shape[1:], self.stem_out
        # every block a position can hold, as a Candidate: each family with each combination of its knobs, or
        # the stage's (else the space's) candidate list, whose skip costs nothing where it is the identity
        combos = tuple(
            Candidate(fam, fam, tuple(zip([p for p, _ in params], values, strict=True)))
            for fam, params in self.families
            for values in product(*[c for _, c in params])
        )

        def block(cand, cin, cout, stride):
            layer = cand.layer(cin, cout, stride, self.act)
            return [] if layer is None else [layer]

        for stage in self.stages:
            per_combo = []
            for cand in stage.candidates or self.candidates or combos:
                first, rest = [], []
                for cin, cout in product(prev, stage.out):
                    c, out = costs(block(cand, cin, cout, stage.stride), (cin, *hw))
                    first.append(c)
                for ch in stage.out:
                    rest.append(costs(block(cand, ch, ch, 1), (ch, *out[1:]))[0])
                per_combo.append((bounds(first), bounds(rest)))
            lo_d, hi_d = min(stage.depth), max(stage.depth)
            if self.choose == "stage":  # one family for the whole stage: bound each family's stage, then the stage
                stage_b = [add(f, r, lo_d - 1, hi_d - 1) for f, r in per_combo]
                total = add(total, {k: (min(b[k][0] for b in stage_b), max(b[k][1] for b in stage_b)) for k in keys})
            else:
                first = {k: (min(f[k][0] for f, _ in per_combo), max(f[k][1] for f, _ in per_combo)) for k in keys}
                rest = {k: (min(r[k][0] for _, r in per_combo), max(r[k][1] for _, r in per_combo)) for k in keys}
                total = add(add(total, first), rest, lo_d - 1, hi_d - 1)
            hw, prev = out[1:], stage.out
        head = [
            costs([Conv2d(w, 1, act=self.act), GlobalAvgPool(), Flatten(), Linear(self.classes)], (cin, *hw))[0]
            for cin, w in product(prev, self.head_out)
        ]
        total = add(total, bounds(head))
        return {k: (int(lo), int(hi)) for k, (lo, hi) in total.items()}

    def size(self) -> int:
        """Number of distinct choice combinations (architectures, counting equal ones once per path)."""
        fam_counts = []
        for _, params in self.families:
            n = 1
            for _, choices in params:
                n *= len(choices)
            fam_counts.append(n)
        total = len(self.stem_out) * len(self.head_out)
        for stage in self.stages:
            per_block = len(stage.candidates or self.candidates) or sum(fam_counts)
            repeats = [1 if self.choose == "stage" else d for d in stage.depth]
            total *= len(stage.out) * sum(per_block**r for r in repeats)
        return total
