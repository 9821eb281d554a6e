"""`--score bench`: the trained accuracy a benchmark table holds for an architecture, instead of an estimate.

The table shipped is NAS-Bench-Macro (Su et al., CVPR 2021; nasx/score/nas-bench-macro/ holds it with its
licence and citation): CIFAR-10 test top-1 of 6,561 codes, the mean of three trainings from scratch. Its
networks are the built-in space `nas-bench-macro`, whose decisions, stage by stage and block by block, are
the code's digits, and whose candidates' order is the digit's value.

An architecture is looked up by its structure (the Arch itself, name aside), not by how it was encoded:
codes that differ only in where a stage's identity layers sit build one network and find one entry, and an
arch read from a JSON file scores as the space's member it equals."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from nasx.errors import NasxError

NAME = "nas-bench-macro"  # the table, and the built-in space of its networks
TABLE = (NAME, "nas-bench-macro_cifar10.json")  # inside the nasx.score package


@lru_cache(maxsize=1)
def table() -> dict[str, dict]:
    """code -> {"test_acc": [three runs], "mean_acc", "std", "params", "flops" (MAdds)}."""
    path = resources.files("nasx.score").joinpath(*TABLE)
    return json.loads(path.read_text(encoding="utf-8"))


class _Code:
    """Answers the space's decisions from a code: the k-th real decision (more than one choice) takes the
    candidate of the k-th digit."""

    def __init__(self, code: str):
        self.digits, self.k = code, 0

    def suggest_categorical(self, name, choices):
        if len(choices) == 1:
            return choices[0]
        pick = choices[int(self.digits[self.k])]
        self.k += 1
        return pick


@lru_cache(maxsize=1)
def space():
    from nasx.space.config import load_space

    return load_space(NAME)


def code_arch(code: str):
    """The network of a table code, as the built-in space builds it."""
    decisions = _Code(code)
    arch = space().sample(decisions)
    if decisions.k != len(code):  # the space and the table disagree on the number of layers
        raise NasxError(f"{NAME}: code {code!r} has {len(code)} digits, the space makes {decisions.k} decisions")
    return arch


@lru_cache(maxsize=1)
def _index() -> dict:
    """Arch (compared by structure, the name aside) -> the canonical code of its network: the smallest of
    the codes that build it."""
    index: dict = {}
    for code in sorted(table()):
        index.setdefault(code_arch(code), code)
    return index


def networks() -> list[str]:
    """The canonical code of every distinct network in the table (3,969), sorted."""
    return sorted(set(_index().values()))


def lookup(arch) -> str:
    """The canonical code of the table network `arch` equals; NasxError if the table holds none."""
    code = _index().get(arch)
    if code is None:
        raise NasxError(
            f"{getattr(arch, 'name', '') or 'the architecture'} is not a {NAME} network: the table "
            f"holds the {len(networks()):,} networks of the built-in space {NAME} (3x32x32 input, "
            f"10 classes), so --score bench scores only those; use another score for this one"
        )
    return code


def accuracy(code: str) -> float:
    """Mean CIFAR-10 test top-1 (%) of the three trainings of a table code."""
    return table()[code]["mean_acc"]


def bench_score(module, input_shape, seed: int = 0, arch=None) -> float:
    """The table's mean test accuracy (%) of the network `arch` is; no module is needed, `seed` is unused (the
    training is done)."""
    if arch is None:
        raise NasxError("bench looks the architecture up in its table: call it with arch=")
    return accuracy(lookup(arch))


bench_score.needs_arch = True  # type: ignore[attr-defined]  (looked up by the arch: call_score passes it)
bench_score.needs_module = False  # type: ignore[attr-defined]  (nothing to build)
bench_score.table = NAME  # type: ignore[attr-defined]  (a truth to validate against, not an estimate)
bench_score.key = f"{NAME}:cifar10:mean_acc"  # type: ignore[attr-defined]  (part of the score cache key)
