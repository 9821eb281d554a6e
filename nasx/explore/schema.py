"""The explorer's tables beside the study tables: one row per run and per sampled architecture."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Column, DateTime, Float, Integer, String, Table, Text

from nasx.store.db import metadata

explore_runs = Table(
    "nasx_explore_run",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("config_name", String(256), nullable=False),
    Column("config_hash", String(32), nullable=False),
    Column("config", Text, nullable=False),  # Text, not a length-less String: MySQL refuses VARCHAR without one
    Column("seed", Integer, nullable=False),
    Column("n", Integer, nullable=False),
    Column("fingerprint_hash", String(32), nullable=False),
    Column("fingerprint", JSON, nullable=False),
    Column("summary", JSON, nullable=False),
    Column("created", DateTime, nullable=False),
)


explore_archs = Table(
    "nasx_explore_arch",
    metadata,
    Column("run_id", Integer, primary_key=True),
    Column("population", String(64), primary_key=True),
    Column("index", Integer, primary_key=True),
    Column("arch_hash", String(32), nullable=False),
    Column("choices", JSON, nullable=False),  # rebuild: SearchSpace.sample(optuna.trial.FixedTrial(choices))
    Column("madds", BigInteger, nullable=False),  # past 2^31 in large spaces: MySQL's INT would overflow
    Column("mac", Integer, nullable=False),
    Column("params", Integer, nullable=False),
    Column("activations", Integer, nullable=False),
    Column("measured", Boolean, nullable=False),
    Column("split", String(8), nullable=True),  # train | test | None (not measured)
    Column("median_ms", Float, nullable=True),
    Column("iqr_ms", Float, nullable=True),
)
