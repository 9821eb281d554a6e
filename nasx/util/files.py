"""Writing files atomically: a temporary file beside the target, moved into place with os.replace, so an
interrupted or failed write never leaves a partial file at the target path.

Only a regular file (or a new one) is ever replaced. A symlink is followed: the file it names is replaced,
the link kept. A character device or FIFO (/dev/stdout, /dev/null, a named pipe), or anything reached through
a process's file descriptors (/dev/stdout -> /proc/self/fd/1), is written through: opened and written, never
replaced. Anything else (a block device, a socket) is refused."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from nasx.errors import NasxError

# These paths name an open file descriptor: replacing the file one leads to would not reach the descriptor
# (nor whatever reads it), so such a target is written through.
_DESCRIPTOR = re.compile(r"^/(proc/[^/]+/fd|dev/fd)/\d+$")


def _through_descriptor(path: Path) -> bool:
    """Whether `path`, or any link on the way to its target, is a /proc/PID/fd/N or /dev/fd/N."""
    p = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on a chain of links
        if _DESCRIPTOR.match(p):
            return True
        if not os.path.islink(p):
            return False
        p = os.path.join(os.path.dirname(p), os.readlink(p))
        p = os.path.abspath(p)
    return False


def _resolve(path: Path, suffix: str) -> tuple[Path, bool]:
    """(the file to write, whether it is written through rather than replaced), or one clear NasxError."""
    if path.is_dir():
        raise NasxError(f"cannot write {path}: it is a directory; give a file name, e.g. {path / 'model'}{suffix}")
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # a new file; its folder is checked below
        mode = None
    except OSError as e:
        raise NasxError(f"cannot write {path}: {e.strerror or e}") from None
    if mode is not None and (not stat.S_ISREG(mode) or _through_descriptor(path)):
        if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or stat.S_ISREG(mode)):
            raise NasxError(
                f"cannot write {path}: it is {_kind(mode)}; nasx writes regular files, or through a character "
                f"device or FIFO such as /dev/stdout"
            )
        if not os.access(path, os.W_OK):
            raise NasxError(f"cannot write {path}: no permission to write it")
        return path, True
    # a regular file or a new one; through a symlink, the file the link names (the link is kept)
    return Path(os.path.realpath(path)), False


def _kind(mode: int) -> str:
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def is_regular_target(path) -> bool:
    """Whether writing `path` makes or replaces a regular file (rather than writing through a device or FIFO):
    only then may files be named beside it."""
    path = Path(path)
    try:
        return not _resolve(path, "")[1]
    except NasxError:
        return False


def is_stdout(path) -> bool:
    """Whether writing `path` writes this process's stdout (-o /dev/stdout): messages then go to stderr."""
    path = Path(path)
    try:
        through = _resolve(path, "")[1]
    except NasxError:
        return False
    return through and _standard_descriptor(path) == 1


def check_target(path, suffix: str = "") -> Path:
    """The target as a Path, or one clear NasxError when it cannot be a file we write."""
    path = Path(path)
    real, through = _resolve(path, suffix)
    if through:
        return path
    parent = real.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise NasxError(f"cannot write {path}: {parent} {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise NasxError(f"cannot write {path}: no permission to write in {parent}")
    try:  # os.access says yes to root and on /proc-like file systems: try it, before any slow export
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{real.name}.", suffix=".probe")
    except OSError as e:
        raise NasxError(f"cannot write {path}: no file can be created in {parent}: {e.strerror or e}") from None
    os.close(fd)
    os.unlink(probe)
    return path


def atomic_write(path, write: Callable[[str], object], suffix: str = "") -> Path:
    """Call write(tmp) for a temporary path beside `path`, then os.replace it onto `path`. Nothing is left
    behind when write fails; an unusable target is one clear NasxError. A device or FIFO target is written
    through instead (module docstring). Returns `path` as given."""
    path = check_target(path, suffix)
    real, through = _resolve(path, suffix)
    if through:
        _write_through(path, write, suffix)
        return path
    try:
        fd, tmp = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=f".tmp{suffix}")
    except OSError as e:
        raise NasxError(f"cannot write {path}: {e.strerror or e}") from None
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the result should look like any new file
        os.replace(tmp, real)
    except OSError as e:
        raise NasxError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path


def _write_through(path: Path, write: Callable[[str], object], suffix: str) -> None:
    """write(tmp) into a private temporary folder, then copy the bytes into the opened target."""
    with tempfile.TemporaryDirectory(prefix="nasx-") as folder:
        tmp = os.path.join(folder, f"out{suffix}")
        write(tmp)
        try:
            with open(tmp, "rb") as src:
                fd = _standard_descriptor(path)
                if fd is not None:  # our own stdout or stderr: through its descriptor, so its offset is shared
                    (sys.stdout if fd == 1 else sys.stderr).flush()
                    with os.fdopen(os.dup(fd), "wb") as dst:
                        shutil.copyfileobj(src, dst)
                else:
                    with open(path, "ab") as dst:  # append: a file behind /dev/fd/N keeps what was written before
                        shutil.copyfileobj(src, dst)
        except OSError as e:
            raise NasxError(f"cannot write {path}: {e.strerror or e}") from None


def _standard_descriptor(path: Path) -> int | None:
    """1 or 2 when `path` is the file this process's stdout or stderr is open on."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            other = os.fstat(fd)
            if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
                return fd
    return None


def atomic_write_text(path, text: str, suffix: str = "") -> Path:
    """`text` (UTF-8) written atomically to `path`."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), suffix)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
