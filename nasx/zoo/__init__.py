"""Reference architectures shipped as arch JSON, usable by name wherever an arch file is accepted."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def names() -> tuple[str, ...]:
    return tuple(sorted(p.name[:-5] for p in resources.files(__name__).iterdir() if p.name.endswith(".json")))


@cache
def get(name: str):
    from nasx.arch import Arch
    from nasx.errors import ArchError

    if name not in names():
        raise ArchError(f"unknown reference model {name!r}; known: {', '.join(names())}")
    return Arch.from_json(resources.files(__name__).joinpath(f"{name}.json").read_text(), source=f"zoo:{name}")
