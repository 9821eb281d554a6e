"""nasx's own tables beside Optuna's, in the same database: a latency cache keyed by
(arch hash, device fingerprint), its block latency table (one layer timed alone) keyed by (device fingerprint,
runtime, threads, batch, layer hash) and a score cache keyed by (arch hash, score name, seed, input)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from pathlib import Path

from sqlalchemy import JSON, Column, DateTime, Float, Integer, MetaData, String, Table, create_engine, event, select
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, SQLAlchemyError

from nasx.errors import NasxError, StorageError
from nasx.store.reconnect import chain, for_url, is_disk_full, safe_url

DEFAULT_STORAGE = "sqlite:///studies/nasx.db"
# Search defaults live here, not in nasx.search, so the CLI can show them without importing optuna.
# 200 with the sweep (nasx.search.sweep): measured against 300 without it, side by side (docs/benchmarks.md
# "The main job with the sweep").
DEFAULT_TRIALS = 200

metadata = MetaData()

latency_cache = Table(
    "nasx_latency_cache",
    metadata,
    Column("arch_hash", String(32), primary_key=True),
    Column("fingerprint_hash", String(32), primary_key=True),
    Column("fingerprint", JSON, nullable=False),
    Column("result", JSON, nullable=False),
    Column("median_ms", Float, nullable=False),
    Column("created", DateTime, nullable=False),
)

# one layer of a network (its spec as the arch JSON writes it, on one input shape) timed alone, as a whole network
# is timed under the same fingerprint (nasx.measure.blocks); runtime, threads and batch are in the fingerprint
# too, and named in the key so a row says what it is
block_latency = Table(
    "nasx_block_latency",
    metadata,
    Column("fingerprint_hash", String(32), primary_key=True),
    Column("runtime", String(32), primary_key=True),
    Column("threads", Integer, primary_key=True),
    Column("batch", Integer, primary_key=True),
    Column("layer_hash", String(32), primary_key=True),
    Column("layer", JSON, nullable=False),  # {"layer": the spec's JSON, "input": [C, H, W]}
    Column("fingerprint", JSON, nullable=False),
    Column("result", JSON, nullable=False),
    Column("median_ms", Float, nullable=False),
    Column("created", DateTime, nullable=False),
)

score_cache = Table(
    "nasx_score_cache",
    metadata,
    Column("arch_hash", String(32), primary_key=True),
    Column("score_key", String(128), primary_key=True),
    Column("value", Float, nullable=True),  # NULL stands for -inf (a degenerate kernel)
    Column("seconds", Float, nullable=False),
    Column("created", DateTime, nullable=False),
)

# one reference per device fingerprint: the calibration workload's latency that drift-corrected numbers are
# scaled to (nasx.measure.latency.drift_corrected); the first stored wins, so every number in a storage shares it
calibrations = Table(
    "nasx_calibration",
    metadata,
    Column("fingerprint_hash", String(32), primary_key=True),
    Column("fingerprint", JSON, nullable=False),
    Column("reference_ms", Float, nullable=False),
    Column("created", DateTime, nullable=False),
)


def fitted_models_table(name: str) -> Table:
    """A table of models fitted on one device fingerprint's measurements (nasx.measure.latency_model,
    nasx.measure.block_model): one row per fit, the newest the one read (save_fitted, load_fitted)."""
    return Table(
        name,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("fingerprint_hash", String(32), nullable=False, index=True),
        Column("fingerprint", JSON, nullable=False),
        Column("model", JSON, nullable=False),
        Column("created", DateTime, nullable=False),
    )


def save_fitted(store, table: Table, fingerprint_hash: str, fingerprint: dict, model: dict) -> None:
    """Store one fitted model's dict for its fingerprint."""
    table.create(store.engine, checkfirst=True)
    with store.engine.begin() as c:
        c.execute(
            table.insert().values(
                fingerprint_hash=fingerprint_hash,
                fingerprint=fingerprint,
                model=model,
                created=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
            )
        )


def load_fitted(store, table: Table, fingerprint_hash: str) -> dict | None:
    """The dict of the most recent model fitted for this fingerprint, or None."""
    table.create(store.engine, checkfirst=True)
    with store.engine.connect() as c:
        row = c.execute(
            select(table.c.model)
            .where(table.c.fingerprint_hash == fingerprint_hash)
            .order_by(table.c.id.desc())
            .limit(1)
        ).first()
    return dict(row[0]) if row else None


pareto_snapshots = Table(
    "nasx_pareto",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("study", String(512), nullable=False, index=True),
    Column("trials", JSON, nullable=False),
    Column("created", DateTime, nullable=False),
)


def sqlite_path(url: str) -> Path | None:
    """The file behind a sqlite:/// URL (None for other databases and in-memory SQLite)."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        return Path(url[len("sqlite:///") :].split("?", 1)[0])
    return None


def refuse_in_memory(url: str) -> None:
    """An in-memory SQLite database is gone when the command ends: a study or cache in it is lost, and
    Optuna's storage fails on one with chained tracebacks. One line instead."""
    if not url.startswith("sqlite"):
        return
    rest = url.split("://", 1)[1] if "://" in url else ""
    path, _, query = rest.lstrip("/").partition("?")
    if not path or path.startswith(":memory:") or "mode=memory" in query:
        raise StorageError(
            f"storage {url!r} is an in-memory database, which cannot hold a study or cache that outlives the "
            f"command; use a file, e.g. sqlite:///studies/nasx.db"
        )


def prepare_sqlite_dir(url: str) -> None:
    """SQLite creates the file but not its directory. The default's studies/ is made on first use; any other
    missing folder is more likely a typo than a wish, so it is refused rather than created."""
    path = sqlite_path(url)
    if path is None or not str(path) or path.parent.is_dir():
        return
    default_dir = sqlite_path(DEFAULT_STORAGE).parent
    if path.parent == default_dir:
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    raise StorageError(
        f"no folder {path.parent} for the SQLite database {path.name} ({url}); create it first "
        f"(mkdir -p {path.parent}) or fix the path"
    )


def explain(url: str, err: Exception) -> StorageError:
    """One actionable line for an unreachable or malformed storage URL, or a full disk."""
    safe = safe_url(url)
    text = str(getattr(err, "orig", None) or err).strip().splitlines()[0][:200]
    if isinstance(err, (ArgumentError, ValueError)) or "Could not parse" in text:
        return StorageError(
            f"storage URL {url!r} is malformed ({text}); use e.g. sqlite:///studies/nasx.db or "
            f"postgresql://user@host/db"
        )
    if isinstance(err, ImportError):  # the driver itself, or optuna's ImportError around it
        missing = getattr(err, "name", None) or getattr(err.__cause__, "name", None) or "the driver"
        if url.startswith(("mysql", "mariadb")):
            how = (
                "for MySQL/MariaDB: pip install 'nasx[mysql]' and use a mysql+pymysql:// URL, or pip install "
                "mysqlclient for mysql://"
            )
        else:
            how = "for PostgreSQL: pip install 'nasx[postgres]', which brings psycopg"
        return StorageError(f"storage {safe!r} needs a database driver that is not installed ({missing}); {how}")
    if is_disk_full(err):
        path = sqlite_path(url)
        disk = f"the disk holding {path.resolve().parent}" if path else "the database server's disk"
        return StorageError(
            f"storage {safe!r}: {disk} is full ({text}); free space on it and re-run the same command: every "
            f"completed trial is stored and the search resumes"
        )
    return StorageError(
        f"cannot open storage {safe!r}: {text}; check that the server is running and the URL, "
        f"or use the default sqlite:///studies/nasx.db"
    )


@contextlib.contextmanager
def storage_failures(url: str):
    """Inside, a storage failure (storage_failure) comes out as its one StorageError line; anything else as is."""
    try:
        yield
    except NasxError:
        raise
    except Exception as e:  # Optuna fails the trial, meets the same error again and raises what it met last
        failure = storage_failure(url, e)
        if failure is None:
            raise
        raise failure from None


def storage_failure(url: str, err: BaseException) -> StorageError | None:
    """The one line for a storage failure `err` (raised by Optuna or a driver, perhaps wrapped in or raised
    while handling other errors: Optuna fails the trial and meets the same error again); None when `err` is
    no storage failure."""
    for e in chain(err):
        if isinstance(e, StorageError):
            return e
        if isinstance(e, SQLAlchemyError):
            return explain(url, e)
        if type(e).__name__ == "StorageInternalError":  # Optuna's, around the driver's error
            return explain(url, e.__cause__ if isinstance(e.__cause__, SQLAlchemyError) else e)
    return None


def engine_kwargs(url: str) -> dict:
    """Connection settings for nasx's and Optuna's engines: SQLite waits for a busy lock instead of failing."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    return {"pool_pre_ping": True}


def commits_without_fsync(engine) -> None:
    """SQLite only: every new connection of `engine` commits with synchronous=NORMAL, which in WAL mode
    (Store sets it, and it stays in the file) returns without waiting for the disk. A search commits about 70
    times per trial (each sampled parameter, each user attr), 1 ms each when fsynced here. Still safe
    against a crash or kill of the process (a committed transaction is in the WAL file); only an OS crash
    or power cut can undo the last commits, never corrupt the database (sqlite.org/pragma.html#pragma_synchronous)."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _normal_sync(dbapi_connection, _record):
        # in a rollback journal NORMAL could corrupt the file on a power cut: only where the WAL is on
        if dbapi_connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    engine.dispose()  # connections opened before the listener was added


def created_by_one_of_racing_workers(create, attempts: int = 5):
    """`create()` (something that creates tables if missing), again when a worker starting at the same moment
    created them first: each checks, both see no table (or no version row), one CREATE or INSERT fails
    (PostgreSQL: duplicate key in pg_type; MySQL, SQLite: table already exists; a duplicate version row).
    The next check sees what the other worker made and creates nothing."""
    for attempt in range(attempts):
        try:
            return create()
        except Exception as e:  # optuna and the drivers wrap this error in several types
            text = str(e).lower()
            raced = any(sign in text for sign in ("already exists", "duplicate", "unique constraint"))
            if not raced or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


class Store:
    """The nasx tables of one storage URL."""

    def __init__(self, url: str = DEFAULT_STORAGE):
        prepare_sqlite_dir(url)
        self.url = url
        try:
            self.engine = create_engine(url, **engine_kwargs(url))
            if self.engine.dialect.name == "sqlite":
                with self.engine.begin() as c:  # WAL persists in the file: readers never block the writer
                    c.exec_driver_sql("PRAGMA journal_mode=WAL")
                commits_without_fsync(self.engine)
            created_by_one_of_racing_workers(lambda: metadata.create_all(self.engine))
        except (SQLAlchemyError, ImportError, ValueError) as e:
            raise explain(url, e) from None
        self.reconnect = for_url(url)  # a server restarted mid-search is waited for (nasx.store.reconnect)

    def _first(self, query):
        def read():
            with self.engine.connect() as c:
                return c.execute(query).first()

        return self.reconnect.call(read)

    def get_latency(self, arch_hash: str, fp_hash: str) -> dict | None:
        row = self._first(
            select(latency_cache.c.result).where(
                latency_cache.c.arch_hash == arch_hash, latency_cache.c.fingerprint_hash == fp_hash
            )
        )
        return dict(row[0]) if row else None

    def put_latency(self, arch_hash: str, fp_hash: str, fingerprint: dict, result: dict) -> None:
        self._insert(
            latency_cache,
            arch_hash=arch_hash,
            fingerprint_hash=fp_hash,
            fingerprint=fingerprint,
            result=result,
            median_ms=result["median_ms"],
        )

    def get_block_latencies(self, key: tuple[str, str, int, int], layer_hashes) -> dict[str, float]:
        """The stored median (ms) of each of `layer_hashes` found under key = (fingerprint hash, runtime,
        threads, batch); a layer not stored under exactly that key is absent."""
        fp_hash, runtime, threads, batch = key
        wanted, out = sorted(set(layer_hashes)), {}
        t = block_latency.c
        with self.engine.connect() as c:
            for i in range(0, len(wanted), 500):  # bounded IN lists
                rows = c.execute(
                    select(t.layer_hash, t.median_ms).where(
                        t.fingerprint_hash == fp_hash,
                        t.runtime == runtime,
                        t.threads == threads,
                        t.batch == batch,
                        t.layer_hash.in_(wanted[i : i + 500]),
                    )
                )
                out.update({h: ms for h, ms in rows})
        return out

    def put_block_latency(
        self, key: tuple[str, str, int, int], layer_hash: str, layer: dict, fingerprint: dict, result: dict
    ) -> None:
        fp_hash, runtime, threads, batch = key
        self._insert(
            block_latency,
            fingerprint_hash=fp_hash,
            runtime=runtime,
            threads=threads,
            batch=batch,
            layer_hash=layer_hash,
            layer=layer,
            fingerprint=fingerprint,
            result=result,
            median_ms=result["median_ms"],
        )

    def get_calibration(self, fp_hash: str) -> float | None:
        row = self._first(select(calibrations.c.reference_ms).where(calibrations.c.fingerprint_hash == fp_hash))
        return row[0] if row else None

    def put_calibration(self, fp_hash: str, fingerprint: dict, reference_ms: float) -> float:
        """Store the reference unless another worker stored one first; returns the one that counts."""
        self._insert(calibrations, fingerprint_hash=fp_hash, fingerprint=fingerprint, reference_ms=reference_ms)
        return self.get_calibration(fp_hash)

    def get_score(self, arch_hash: str, key: str) -> tuple[float, float] | None:
        row = self._first(
            select(score_cache.c.value, score_cache.c.seconds).where(
                score_cache.c.arch_hash == arch_hash, score_cache.c.score_key == key
            )
        )
        if not row:
            return None
        return (float("-inf") if row[0] is None else row[0], row[1])

    def put_score(self, arch_hash: str, key: str, value: float, seconds: float) -> None:
        self._insert(
            score_cache,
            arch_hash=arch_hash,
            score_key=key,
            value=None if value == float("-inf") else value,
            seconds=seconds,
        )

    def snapshot_pareto(self, study: str, trials: list[int]) -> None:
        self._insert(pareto_snapshots, study=study, trials=json.loads(json.dumps(trials)))

    def _insert(self, table, **values) -> None:
        values["created"] = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)

        def insert():
            with self.engine.begin() as c:
                c.execute(table.insert().values(**values))

        try:
            self.reconnect.call(insert)
        except IntegrityError:
            pass  # another worker cached the same key first (or this one did, its answer lost): as good as ours
        except OperationalError as e:
            raise explain(self.url, e) from None


def set_finished_trial_user_attr(study, trial_id: int, key: str, value) -> None:
    """Optuna's set_trial_user_attr, without its refusal for finished trials (RDB storage only): a row of
    Optuna's own trial_user_attributes table (schema of optuna 5), written the way Optuna writes it. Used for
    what is learnt about a trial after it completed (retrain's accuracy, the re-timed front's latency)."""
    from optuna.storages import RDBStorage
    from optuna.storages._rdb import models

    storage = study._storage
    storage = getattr(storage, "_backend", storage)  # a cached storage wraps the RDB one
    if not isinstance(storage, RDBStorage):
        raise StorageError(f"cannot record {key} on a finished trial outside an RDB (SQLAlchemy) storage")
    session = storage.scoped_session()
    try:
        row = session.query(models.TrialUserAttributeModel).filter_by(trial_id=trial_id, key=key).one_or_none()
        if row is None:
            session.add(models.TrialUserAttributeModel(trial_id=trial_id, key=key, value_json=json.dumps(value)))
        else:
            row.value_json = json.dumps(value)
        session.commit()
    except Exception as e:
        session.rollback()
        raise StorageError(f"cannot record {key} on trial id {trial_id}: {str(e).splitlines()[0][:200]}") from None
    finally:
        session.close()
