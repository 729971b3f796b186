"""Output files: every file relcode writes goes through :class:`AtomicOutput`.

The rules, the same for the command line and the Python writers:

* The file appears at the destination only when it is complete: it is written to a
  temporary file in the destination's directory, which is flushed to disk (``fsync``),
  renamed over the destination, and the directory is flushed too. An error or an interrupt
  leaves the destination as it was and removes the temporary file.
* :func:`check_destination` refuses, before any work starts (:class:`InputError`): the
  string ``"-"`` (no relcode writer streams to stdout; ``./-`` or ``Path("-")`` names a
  file called ``-``), a path that ends in ``/`` or names a directory, a destination that is a symbolic
  link (it is neither followed nor replaced: give the link's target), one that exists and
  is not a regular file (a FIFO, a device, a socket), and one that is the same file (same
  device and inode, hard links included) as any input.
* Replacing an existing file keeps its permission bits (a read-only file stays read-only);
  a new file gets the mode ``open()`` would give it (0o666 less the umask).
* Temporary names are ``.<name>.<hash>.<pid>.<random>.rctmp``, ``<name>`` shortened (never
  the destination's own name) so that the whole fits the directory's ``NAME_MAX``.
  ``<hash>`` identifies the destination and ``<pid>`` the writing process, so when a write
  starts it removes the temporary files that an earlier, killed writer of the same
  destination left behind: those whose process no longer exists on this machine and that
  have not been modified for a minute, and any untouched for a day.
* :func:`discard_all` removes every temporary file this process still has open (what the
  command line does on Ctrl-C); it also runs at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import hashlib
import os
import secrets
import stat
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from .errors import InputError

__all__ = [
    "AtomicOutput",
    "check_destination",
    "clean_stale",
    "discard_all",
    "new_file_mode",
    "temp_prefix",
    "write_bytes",
]

SUFFIX = ".rctmp"
#: A temporary file of a dead process is removed once untouched this long (seconds) ...
STALE_DEAD_S = 60.0
#: ... and any temporary file of ours once untouched this long.
STALE_ANY_S = 24 * 3600.0

_live: set[str] = set()
_live_lock = threading.Lock()
_umask_lock = threading.Lock()


def new_file_mode() -> int:
    """The mode ``open()`` gives a new file now: 0o666 less the process umask."""
    try:  # Linux: read it without changing it
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:  # elsewhere: set and restore (briefly visible to other threads)
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def _name_max(parent: str) -> int:
    try:
        return int(os.pathconf(parent, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def _ids(paths: Iterable[Any]) -> set[tuple[int, int]]:
    ids = set()
    for p in paths:
        if p is None or not isinstance(p, (str, os.PathLike)):
            continue
        try:
            st = os.stat(p)
        except OSError:
            continue
        ids.add((st.st_dev, st.st_ino))
    return ids


def check_destination(dest: Any, inputs: Iterable[Any] = ()) -> Path:
    """``dest`` as a :class:`Path` if relcode may write a file there (see the module docs);
    otherwise :class:`InputError` (a missing directory: :class:`FileNotFoundError`)."""
    if not isinstance(dest, (str, os.PathLike)):
        raise InputError(f"the output must be a path, got {type(dest).__name__}")
    if isinstance(dest, str) and dest == "-":
        raise InputError(
            "cannot write to stdout ('-'): relcode writes files only; give a file name "
            "(./- for a file named '-')"
        )
    text = os.fsdecode(os.fspath(dest))
    if not text or text.endswith(("/", os.sep)) or os.path.basename(text) in ("", ".", ".."):
        raise InputError(f"{text or repr(text)}: the output must name a file, not a directory")
    path = Path(text)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise InputError(
                f"{text}: the output is a symbolic link; relcode neither follows nor replaces links "
                "at the output (give the link's target)"
            )
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"{text}: the output is a directory; give a file name")
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{text}: the output exists and is not a regular file (a FIFO or device?)")
        if (st.st_dev, st.st_ino) in _ids(inputs):
            raise InputError(f"{text}: the output is one of the input files; write to another file")
    parent = os.path.dirname(text) or "."
    if not os.path.isdir(parent):
        raise FileNotFoundError(errno.ENOENT, "no such directory", parent)
    if len(os.fsencode(path.name)) > _name_max(parent):
        raise OSError(errno.ENAMETOOLONG, "file name too long", text)
    return path


def temp_prefix(dest: Path) -> tuple[str, bytes]:
    """The directory and the name prefix of ``dest``'s temporary files (``.<name>.<hash>.``),
    ``<name>`` cut so that a whole temporary name fits NAME_MAX."""
    parent = os.path.dirname(os.fspath(dest)) or "."
    raw = os.fsencode(dest.name)
    tag = hashlib.sha256(raw).hexdigest()[:8].encode()
    fixed = len(b"." + b"." + tag + b"." + b"4294967295." + b"0123456789ab" + SUFFIX.encode())
    keep = max(0, min(len(raw), _name_max(parent) - fixed, 64))
    return parent, b"." + raw[:keep] + b"." + tag + b"."


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def clean_stale(dest: Any) -> list[str]:
    """Removes the temporary files of ``dest`` that a killed writer left (see the module
    docs); returns their paths. Never touches a name of another pattern or destination."""
    parent, prefix = temp_prefix(Path(os.fspath(dest)))
    removed = []
    try:
        entries = os.listdir(os.fsencode(parent))
    except OSError:
        return removed
    now = time.time()
    me = os.getpid()
    for entry in entries:
        if not (entry.startswith(prefix) and entry.endswith(SUFFIX.encode())):
            continue
        parts = entry[len(prefix) : -len(SUFFIX)].split(b".")
        if len(parts) != 2 or not parts[0].isdigit():
            continue
        pid = int(parts[0])
        full = os.path.join(os.fsencode(parent), entry)
        try:
            st = os.lstat(full)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        age = now - st.st_mtime
        stale = age > STALE_ANY_S or (pid != me and age > STALE_DEAD_S and not _alive(pid))
        if stale:
            with contextlib.suppress(OSError):
                os.unlink(full)
                removed.append(os.fsdecode(full))
    return removed


def _fsync_dir(parent: str) -> None:
    try:
        fd = os.open(parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # a file system that cannot sync directories
        pass
    finally:
        os.close(fd)


class AtomicOutput:
    """A temporary file next to ``dest`` (:attr:`path`), renamed over ``dest`` by
    :meth:`commit` and removed by :meth:`discard`, or by leaving a ``with`` block with an
    exception. The destination is checked first (:func:`check_destination`, with
    ``inputs``) and stale temporary files of the same destination are removed."""

    def __init__(self, dest: Any, *, inputs: Iterable[Any] = ()):
        self.dest = check_destination(dest, inputs)
        clean_stale(self.dest)
        parent, prefix = temp_prefix(self.dest)
        for _ in range(100):
            name = prefix + f"{os.getpid()}.{secrets.token_hex(6)}{SUFFIX}".encode()
            tmp = os.fsdecode(os.path.join(os.fsencode(parent), name))
            with _live_lock:  # registered before it exists: an interrupt cannot orphan it
                _live.add(tmp)
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
            except FileExistsError:
                with _live_lock:
                    _live.discard(tmp)
                continue
            except BaseException:
                with _live_lock:
                    _live.discard(tmp)
                raise
            os.close(fd)
            break
        else:  # pragma: no cover
            raise FileExistsError(errno.EEXIST, "no free temporary name", parent)
        self.path = Path(tmp)
        self.done = False

    def open(self) -> BinaryIO:
        """The temporary file, opened for writing (binary)."""
        return open(self.path, "wb")

    def commit(self) -> None:
        """Flushes the temporary file to disk, gives it its mode (the replaced file's, or the
        umask default), renames it over the destination and flushes the directory."""
        if self.done:
            raise InputError("this output is already committed or discarded")
        try:
            st = os.lstat(self.dest)
            mode = stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else None
        except FileNotFoundError:
            mode = new_file_mode()
        if mode is None:  # became a link, FIFO or directory while we were writing
            check_destination(self.dest)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
            with contextlib.suppress(OSError):  # a file system without modes
                os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.replace(self.path, self.dest)
        with _live_lock:
            _live.discard(os.fspath(self.path))
        self.done = True
        _fsync_dir(os.path.dirname(os.fspath(self.dest)) or ".")

    def discard(self) -> None:
        """Removes the temporary file (nothing appears at the destination)."""
        if not self.done:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            with _live_lock:
                _live.discard(os.fspath(self.path))
            self.done = True

    def __enter__(self) -> AtomicOutput:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None or not self.done:
            self.discard()


def write_bytes(dest: Any, data: bytes, *, inputs: Iterable[Any] = ()) -> None:
    """Writes ``data`` to the path ``dest`` atomically (see the module docs)."""
    with AtomicOutput(dest, inputs=inputs) as out:
        with out.open() as f:
            f.write(data)
        out.commit()


def discard_all() -> None:
    """Removes every temporary file of this process that is not committed yet."""
    with _live_lock:
        paths = list(_live)
        _live.clear()
    for p in paths:
        with contextlib.suppress(OSError):
            os.unlink(p)


atexit.register(discard_all)
