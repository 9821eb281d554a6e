"""Riding out a database server that goes away: a restart for maintenance, a dropped connection. A storage
call that fails because the server cannot be reached is tried again with backoff until the server is back,
saying so in one line when it goes and one when it is back; past RECONNECT_S the failure is one StorageError
line (the trials completed are stored; the same command resumes). SQLite has no server to wait for, and a full
disk or a malformed query is no outage: those errors pass through at once, for explain() to word.

A write whose connection drops while its commit is under way cannot tell whether the commit happened; the
callers that can check (nasx.store.rdb, a trial's state) do, and an insert of a cache row is idempotent."""

from __future__ import annotations

import math
import sys
import threading
import time

from sqlalchemy.exc import DBAPIError, OperationalError

from nasx.errors import StorageError

RECONNECT_S = 300.0  # a server restarted for maintenance is back within minutes; past that, stop and say so
BACKOFF_S = (0.2, 0.5, 1.0)  # then every second: a server that is back is seen within a second
# A failure this soon after the server came back continues the same outage, unannounced: a restart flickers
# (pooled connections die one by one as they are next used; a call can pass while the server is going down).
# The 1,000-trial soak printed up to 3 lost/back pairs per worker for its one restart before this.
SETTLE_S = 30.0

# Words of a full disk in SQLite's, PostgreSQL's (SQLSTATE 53100) and MySQL's errors: no outage, no waiting.
DISK_FULL = ("database or disk is full", "no space left on device", "could not extend file", "disk full")


def safe_url(url: str) -> str:
    """The URL without its user (and password): what messages show."""
    return url.split("@")[-1] if "@" in url else url


def chain(err: BaseException | None):
    """`err` and the exceptions it was raised from or while handling (Optuna wraps driver errors)."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def first_line(err: BaseException) -> str:
    text = str(getattr(err, "orig", None) or err).strip()
    return (text.splitlines() or [type(err).__name__])[0][:200]


def reason(err: BaseException) -> str:
    """The driver's words for `err` where it carries them (Optuna's wrapper says only "An exception is raised
    during the commit")."""
    return first_line(next((e for e in chain(err) if isinstance(e, DBAPIError)), err))


def is_disk_full(err: BaseException) -> bool:
    return any(word in first_line(e).lower() for e in chain(err) for word in DISK_FULL)


def server_unreachable(err: BaseException) -> bool:
    """Whether `err` says the database server went away or refused a connection (not a full disk, not a
    bad query): what waiting for the server can cure."""
    if is_disk_full(err):
        return False
    return any(
        isinstance(e, OperationalError) or (isinstance(e, DBAPIError) and e.connection_invalidated) for e in chain(err)
    )


class Reconnect:
    """Calls through one storage URL that wait out the server's absence. One per URL and process (for_url):
    the outage is announced once, however many threads (a trial and its heartbeat) meet it."""

    def __init__(self, url: str, limit_s: float = RECONNECT_S, out=None):
        self.url, self.limit_s, self.out = url, limit_s, out
        self.waits = not url.startswith("sqlite")
        self.down_since: float | None = None
        self.first_down = self.back_at = -math.inf  # when this outage began, when the server was last back
        self.lock = threading.Lock()

    def call(self, fn, *args, **kwargs):
        attempt = 0
        while True:
            try:
                result = fn(*args, **kwargs)
            except Exception as e:
                if not self.waits or not server_unreachable(e):
                    raise
                self._down(e)
                time.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
                attempt += 1
                continue
            if self.down_since is not None:
                self._back()
            return result

    def _say(self, line: str) -> None:
        out = self.out or sys.stderr
        out.write(f"nasx: {line}\n")
        out.flush()

    def _down(self, err: BaseException) -> None:
        now = time.monotonic()
        with self.lock:
            if self.down_since is None and now - self.back_at < SETTLE_S:
                self.down_since = self.first_down  # the same outage: said already, its wait goes on
            elif self.down_since is None:
                self.down_since = self.first_down = now
                self._say(
                    f"lost the storage {safe_url(self.url)} ({reason(err)}); reconnecting for up to "
                    f"{self.limit_s:.0f} s"
                )
            down_s = now - self.down_since
        if down_s > self.limit_s:
            raise StorageError(
                f"lost the storage {safe_url(self.url)} for {down_s:.0f} s ({reason(err)}); every completed "
                f"trial is stored: re-run the same command once the server is back to resume"
            ) from None

    def _back(self) -> None:
        with self.lock:
            if self.down_since is None:
                return
            now = time.monotonic()
            down_s, said = now - self.down_since, self.back_at > self.first_down
            self.down_since, self.back_at = None, now
        if not said:
            self._say(f"storage {safe_url(self.url)} is back after {down_s:.1f} s; going on")


_by_url: dict[str, Reconnect] = {}


def for_url(url: str) -> Reconnect:
    """This process's Reconnect for `url`."""
    if url not in _by_url:
        _by_url[url] = Reconnect(url)
    return _by_url[url]
