"""Search spaces: a YAML config (or a built-in name) read into a SearchSpace that turns a sampler's choices
into an Arch. Pure arithmetic, like the core: no torch, no optuna.

May import: nasx.errors, nasx.util, core."""
