"""Search spaces: a YAML config (or a built-in name) read into a SearchSpace that turns a sampler's choices
into an Arch, or a define-by-run function of a trial (nasx.space.function). Pure arithmetic, like the core:
no torch, no optuna.

May import: nasx.errors, nasx.util, core."""

from nasx.space.function import FunctionSpace, load_space_function

__all__ = ["FunctionSpace", "load_space_function"]
