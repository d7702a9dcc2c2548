"""Run the user's program as `python SCRIPT ARGS` or `python -m MODULE ARGS` would, in
this process (the hooks must see its modules), and say how it ended.

Its output and exit status pass through; an exception prints its traceback without
enslint's frames and ends with status 1, as Python's would. `--max-seconds`, Ctrl-C and
SIGTERM stop it with an exception raised where it runs, so that what was gathered is
still written: Python's handlers are put back afterwards.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType, TracebackType

_OURS = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class _TimeUp(BaseException):
    """--max-seconds ran out."""


class _Terminated(BaseException):
    """SIGTERM arrived."""


@dataclass(frozen=True)
class Ending:
    status: int  # the exit status the program's run gives
    how: str  # "exited with status 0", "stopped after 5 s (--max-seconds)", ...


def run(target: str, args: list[str], as_module: bool, max_seconds: float | None) -> Ending:
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    try:
        with _stoppers(max_seconds):
            try:
                if as_module:
                    sys.argv = [target, *args]
                    sys.path.insert(0, os.getcwd())
                    runpy.run_module(target, run_name="__main__", alter_sys=True)
                else:
                    sys.argv = [target, *args]
                    sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
                    runpy.run_path(target, run_name="__main__")
            except SystemExit as exit_:
                return _exited(exit_.code)
            except _TimeUp:
                return Ending(0, f"stopped after {max_seconds:g} s (--max-seconds)")
            except KeyboardInterrupt:
                return Ending(130, "interrupted (Ctrl-C)")
            except _Terminated:
                return Ending(143, "terminated (SIGTERM)")
            except BaseException as error:  # noqa: BLE001 - the program's own error, shown as Python would
                _print_traceback(error)
                return Ending(1, f"raised {type(error).__name__}")
        return Ending(0, "exited with status 0")
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
        sys.stdout.flush()


def _exited(code: object) -> Ending:
    if code is None:
        return Ending(0, "exited with status 0")
    if isinstance(code, int):
        return Ending(code, f"exited with status {code}")
    print(code, file=sys.stderr)
    return Ending(1, "exited with status 1")


def _ours(filename: str) -> bool:
    return filename.startswith(_OURS) or "runpy" in filename


def _print_traceback(error: BaseException) -> None:
    tb: TracebackType | None = error.__traceback__
    while tb is not None and _ours(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    sys.stdout.flush()
    traceback.print_exception(type(error), error, tb)


@contextmanager
def _stoppers(max_seconds: float | None) -> Iterator[None]:
    def time_up(signum: int, frame: FrameType | None) -> None:
        raise _TimeUp

    def terminated(signum: int, frame: FrameType | None) -> None:
        raise _Terminated

    previous_term = signal.signal(signal.SIGTERM, terminated)
    previous_alarm = signal.signal(signal.SIGALRM, time_up) if max_seconds else None
    if max_seconds:
        signal.setitimer(signal.ITIMER_REAL, max_seconds)
    try:
        yield
    finally:
        if max_seconds:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous_alarm)
        signal.signal(signal.SIGTERM, previous_term)
