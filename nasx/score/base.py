"""What every score module shares and none imports back: forward hooks for a pass, and how a score function
is called (its declared needs: the arch, the store, a module at all)."""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def forward_hooks(modules, hook):
    """`hook` registered as a forward hook on each of `modules` for the duration of the block."""
    handles = [m.register_forward_hook(hook) for m in modules]
    try:
        yield handles
    finally:
        for h in handles:
            h.remove()


def call_score(fn, module, arch, seed: int):
    """fn(module, arch.input, seed), with arch=arch for a score that declares `needs_arch` (one that reads
    the cost core's counts or looks the network up in a table)."""
    if getattr(fn, "needs_arch", False):
        return fn(module, arch.input, seed, arch=arch)
    return fn(module, arch.input, seed)


def needs_module(fn) -> bool:
    """False for a score that reads only the arch (cost-core counts, a table lookup): nothing is built for it."""
    return getattr(fn, "needs_module", True)
