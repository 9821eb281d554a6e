"""Writing files atomically: a temporary file beside the target, moved into place with os.replace, so an
interrupted or failed write never leaves a partial file at the target path."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from nasx.errors import NasxError


def check_target(path, suffix: str = "") -> Path:
    """The target as a Path, or one clear NasxError when it cannot be a file we write."""
    path = Path(path)
    if path.is_dir():
        raise NasxError(f"cannot write {path}: it is a directory; give a file name, e.g. {path / 'model'}{suffix}")
    parent = path.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise NasxError(f"cannot write {path}: {parent} {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise NasxError(f"cannot write {path}: no permission to write in {parent}")
    try:  # os.access says yes to root and on /proc-like file systems: try it, before any slow export
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".probe")
    except OSError as e:
        raise NasxError(f"cannot write {path}: no file can be created in {parent}: {e.strerror or e}") from None
    os.close(fd)
    os.unlink(probe)
    return path


def atomic_write(path, write: Callable[[str], object], suffix: str = "") -> Path:
    """Call write(tmp) for a temporary path beside `path`, then os.replace it onto `path`. Nothing is left
    behind when write fails; an unusable target is one clear NasxError."""
    path = check_target(path, suffix)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{suffix}")
    except OSError as e:
        raise NasxError(f"cannot write {path}: {e.strerror or e}") from None
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the result should look like any new file
        os.replace(tmp, path)
    except OSError as e:
        raise NasxError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path


def atomic_write_text(path, text: str, suffix: str = "") -> Path:
    """`text` (UTF-8) written atomically to `path`."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), suffix)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
