"""Replace a file's bytes without losing what another process writes to it meanwhile.

The new bytes go to a temporary file beside the original, which is swapped into place.
Another process (an editor saving, a formatter) may change the file at any moment, and
the swap must never put the fixed text over that change:

- The file is compared with what enslint read just before the swap.
- On Linux the swap is an exchange (renameat2's RENAME_EXCHANGE), so what was at the
  path at that instant is compared once more and, if it is not what enslint read, put
  back.
- A writer that opened the file before the swap and writes after it would write into
  the replaced file, which is then deleted: no comparison can see that write. On Linux,
  a write lease (fcntl F_SETLEASE) on the original is held through the swap: a process
  opening the file for writing meanwhile breaks it, waits in its open() until enslint
  lets go, and enslint then puts the original back, so that write lands in the file.

A file some other program holds open for writing cannot be leased; it is left as it is.
Where the platform or file system has no exchange or no lease (another OS, a network
file system, a file owned by another user), the comparisons alone guard the swap.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Literal

from enslint.source import read_source

# What this process has written, in order: an interrupted run names them.
WRITTEN: list[str] = []

Outcome = Literal["written", "same", "changed"]

# How long a file another program holds open is waited for before it is left as it is.
LEASE_WAIT_SECONDS = 1.0


class HeldOpen(OSError):
    """Another program holds the file open: replacing it could lose what it writes."""


def replace_bytes(
    path: Path, new: bytes, expected: bytes, mode: int, owner: tuple[int, int] | None, shown: str
) -> Outcome:
    """Put `new` at `path` if the file there still holds `expected`: "written" (and
    `shown` joins WRITTEN before a held signal is taken); "same" when it already holds
    `new` (another enslint wrote it); "changed" when it holds anything else, which is
    kept. `path` is a real path (no symbolic link). HeldOpen when another program holds
    the file open past LEASE_WAIT_SECONDS."""
    with signals_held(), write_lease(path) as lease:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".enslint-tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(new)
            os.chmod(temporary, mode & 0o7777)
            written = os.stat(temporary)
            if owner is not None and hasattr(os, "chown") and (written.st_uid, written.st_gid) != owner:
                os.chown(temporary, *owner)  # root fixing another user's file keeps it theirs
            current = _content(path, lease)  # the last look before the swap
            if current == new:
                return "same"
            if current != expected or (lease is not None and lease.broken_by_writer()):
                return "changed"
            if exchange(temporary, path):
                # `temporary` now holds what was at the path when the two swapped.
                swapped = _content(Path(temporary), lease)
                if swapped == new:
                    return "same"  # written by another enslint in between
                if swapped != expected or (lease is not None and lease.broken_by_writer()):
                    exchange(temporary, path)  # theirs goes back
                    return "changed"
            else:
                os.replace(temporary, path)
            WRITTEN.append(shown)
            return "written"
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)


def _content(path: Path, lease: Lease | None) -> bytes:
    """The bytes at `path`, read through the lease's descriptor where it is that file:
    opening a leased file, even from this process, would wait out the lease."""
    if lease is not None and lease.is_at(path):
        return lease.read()
    return read_source(path)


class Lease:
    """A write lease held on one open file (Linux)."""

    def __init__(self, descriptor: int) -> None:
        self.descriptor = descriptor

    def is_at(self, path: Path) -> bool:
        try:
            here = os.stat(path)  # stat does not open the file, so the lease holds
        except OSError:
            return False
        held = os.fstat(self.descriptor)
        return (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino)

    def read(self) -> bytes:
        chunks, offset = [], 0
        while chunk := os.pread(self.descriptor, 1 << 20, offset):
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks)

    def broken_by_writer(self) -> bool:
        """Whether a process has tried to open the file for writing (or truncate it)
        since the lease was taken: the lease is then being given up, not shared."""
        import fcntl

        return bool(fcntl.fcntl(self.descriptor, fcntl.F_GETLEASE) == fcntl.F_UNLCK)


@contextlib.contextmanager
def write_lease(path: Path) -> Iterator[Lease | None]:
    """A write lease on the file at `path` while the block runs, or None where the
    platform, the file system or the file's owner allows none. HeldOpen when another
    program keeps the file open for longer than LEASE_WAIT_SECONDS."""
    import threading

    fcntl = _lease_support()
    if fcntl is None or threading.current_thread() is not threading.main_thread():
        yield None  # the lease-break signal can be set aside only on the main thread
        return
    import signal

    # A broken lease sends SIGIO, whose default is to end the process; the lease's state
    # is read instead (F_GETLEASE), so the signal is not needed.
    before = signal.signal(signal.SIGIO, signal.SIG_IGN)
    descriptor = None
    try:
        descriptor = _leased_descriptor(fcntl, path)
        try:
            yield None if descriptor is None else Lease(descriptor)
        finally:
            if descriptor is not None:
                fcntl.fcntl(descriptor, fcntl.F_SETLEASE, fcntl.F_UNLCK)  # a waiting open() goes on
    finally:
        if descriptor is not None:
            os.close(descriptor)
        signal.signal(signal.SIGIO, before)


def _leased_descriptor(fcntl: ModuleType, path: Path) -> int | None:
    """A descriptor of the file holding a write lease; None where no lease can be had."""
    deadline = time.monotonic() + LEASE_WAIT_SECONDS
    while True:
        try:
            descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return None  # the caller's own reads report why
        try:
            fcntl.fcntl(descriptor, fcntl.F_SETLEASE, fcntl.F_WRLCK)
            return descriptor
        except OSError as error:
            os.close(descriptor)
            if error.errno != errno.EAGAIN:
                return None  # not the file's owner, or a file system without leases
        if time.monotonic() >= deadline:
            raise HeldOpen("open in another program; left as it is")
        # Someone else has the file open: a reader closes it soon. Two enslint runs that
        # both opened it to lease it would wait on each other: each lets go, for a while
        # of its own choosing.
        time.sleep(random.uniform(0.002, 0.02))


def _lease_support() -> ModuleType | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import fcntl
    except ImportError:
        return None
    return fcntl if hasattr(fcntl, "F_SETLEASE") and hasattr(fcntl, "F_GETLEASE") else None


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait while a file is replaced: the interrupted run then names
    every file it rewrote and leaves no temporary file (the signal is taken just after)."""
    import signal
    import threading

    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


_RENAME_EXCHANGE = 2
_renameat2: Callable[..., int] | Literal[False] | None = None  # libc's, once looked up; False: none


def exchange(a: str, b: Path | str) -> bool:
    """Swap the files at `a` and `b` in one step (Linux 3.15+, glibc 2.28+); False where
    the platform or the file system cannot, and the caller renames instead."""
    global _renameat2
    if _renameat2 is None:
        _renameat2 = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                libc = ctypes.CDLL(None, use_errno=True)
                function = libc.renameat2
                function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
                _renameat2 = function
            except (OSError, AttributeError):
                _renameat2 = False
    if not _renameat2:
        return False
    at_cwd = -100  # AT_FDCWD
    if _renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(str(b)), _RENAME_EXCHANGE) == 0:
        return True
    import ctypes

    if ctypes.get_errno() in (errno.EINVAL, errno.ENOSYS, errno.EXDEV, errno.EPERM):
        return False  # a file system without exchange (some network and FUSE ones)
    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), str(b))
