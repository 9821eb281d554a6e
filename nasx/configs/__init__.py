"""The built-in search spaces (YAML), read by nasx.space.

May import: nothing (data only)."""
