"""Reference architectures shipped as arch JSON, usable by name wherever an arch file is accepted: the names
and each one's JSON text. The Arch of a name is nasx.arch.zoo_arch's (this package is data and imports no
arch, so the two never import each other)."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def names() -> tuple[str, ...]:
    return tuple(sorted(p.name[:-5] for p in resources.files(__name__).iterdir() if p.name.endswith(".json")))


def text(name: str) -> str:
    """The arch JSON of the reference model `name`."""
    from nasx.errors import ArchError

    if name not in names():
        raise ArchError(f"unknown reference model {name!r}; known: {', '.join(names())}")
    return resources.files(__name__).joinpath(f"{name}.json").read_text()
