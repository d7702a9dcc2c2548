"""Checker processes that may die without taking the run with them.

A file can still kill the process that analyses it where Python cannot catch it: a
native parser's stack overflow (SIGSEGV), the kernel's out-of-memory killer (SIGKILL).
So files are checked in worker processes, one file at a time per worker: the supervisor
always knows which file each worker holds. When a worker dies, that file gets the
answer `on_death` gives (an ENS000 diagnostic), a fresh worker takes its place, and the
other files are checked as usual. Results come back in the order of the items.

On Linux the workers are forked: they start in milliseconds with everything the parent
imported, so even a one-file run (pre-commit's) is isolated at little cost.
"""

from __future__ import annotations

import atexit
import contextlib
import faulthandler
import gc
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from multiprocessing.context import ForkContext, SpawnContext

Item = TypeVar("Item")
Result = TypeVar("Result")


def _serve(function: Callable[[Any], Any], connection: Connection, parent: int) -> None:
    """A worker: answer each item sent until told to stop (None)."""
    _become_worker(parent)
    _answer(function, connection)


def _answer(function: Callable[[Any], Any], connection: Connection) -> None:
    while True:
        try:
            item = connection.recv()
        except EOFError:
            return
        if item is None:
            return
        connection.send(function(item))


def _become_worker(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the supervisor's handler, inherited by fork
    _die_with(parent)
    faulthandler.disable()  # a crash is reported once, as the file's ENS000, not as a dump


def _die_with(parent: int) -> None:
    """End this worker when its supervisor ends, however it ends (SIGKILL included): on
    Linux the kernel sends SIGKILL at the parent's death; a parent already gone is seen
    here. Elsewhere the worker ends at its next read, when the pipe closes."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(1)


# The workers alive in this process: an interrupted run kills them all before it exits.
_LIVE: set[_Worker] = set()


def kill_all() -> None:
    """Kill every worker this process started (they take their own workers with them)."""
    for worker in list(_LIVE):
        if worker.process.is_alive():
            worker.process.kill()
    for worker in list(_LIVE):
        worker.process.join(timeout=1)
        worker.connection.close()
        _LIVE.discard(worker)


def _context(fork: bool = True) -> ForkContext | SpawnContext:
    """Forked workers where the platform forks and the caller allows it; else spawned
    ones, fresh interpreters with this process's environment and folder, which need
    `function` and the items picklable."""
    methods = multiprocessing.get_all_start_methods()
    if fork and "fork" in methods:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


class _Worker:
    def __init__(self, function: Callable[..., Any], fork: bool = True, serve: Callable[..., None] = _serve) -> None:
        """`serve(function, connection, parent)` runs in the worker (`_serve`, or a
        WarmPool's `_serve_warm`)."""
        context = _context(fork)
        ours, theirs = context.Pipe()
        # Not a daemon: a worker may need workers of its own (a big file's pieces); it
        # ends when told to, or when the supervisor's end of the pipe closes.
        self.process = context.Process(target=serve, args=(function, theirs, os.getpid()), daemon=False)
        self.process.start()
        _LIVE.add(self)
        theirs.close()
        self.connection = ours
        self.index: int | None = None  # the item it holds
        self.since = 0.0  # when it got it

    def give(self, index: int, item: Any) -> None:
        self.index = index
        self.since = time.monotonic()
        self.connection.send(item)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.send(None)
        self.connection.close()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        _LIVE.discard(self)


class WarmPool:
    """Workers forked from a process that prepares first (imports what they need),
    started before the caller has items for them: the preparation runs beside the
    caller's own work, not before it, and the caller's process stays small, so its own
    forks stay cheap. `prepare` returns the function to map and the result of an item
    whose worker dies. `submit` hands over items, `results` waits for their results:
    `isolated_map` in that process, its progress sent back as it goes. Should that
    process itself die, the items are mapped here instead. Needs fork (`available`)."""

    def __init__(self, prepare: Callable[[], tuple[Callable[[Any], Any], Callable[[Any, str], Any]]]) -> None:
        self._process = _Worker(prepare, fork=True, serve=_serve_warm)
        self.connection, self.process = self._process.connection, self._process.process
        self._prepare = prepare
        self._items: list[Any] = []
        self._workers = 1
        # Not a daemon (it forks workers of its own): an exit that skips `stop` (an early
        # sys.exit) must not leave multiprocessing waiting for it at the interpreter's end.
        atexit.register(self.stop)

    @staticmethod
    def available() -> bool:
        return "fork" in multiprocessing.get_all_start_methods()

    def submit(self, items: Sequence[Any], workers: int) -> None:
        self._items, self._workers = list(items), workers
        with contextlib.suppress(OSError):
            self.connection.send((self._items, workers))

    def results(self, progress: Callable[[int], None] | None = None) -> list[Any]:
        done = progress or (lambda n: None)
        counted = 0
        while True:
            wait([self.connection, self.process.sentinel])
            try:
                kind, value = self.connection.recv()
            except Exception:  # noqa: BLE001 - its pipe: EOF, reset, a torn message
                break
            if kind == "done":
                return list(value)
            counted += value
            done(value)
        # That process died (the out-of-memory killer chose it): map the items here,
        # without counting again the progress already reported.
        self.stop()

        def once(n: int) -> None:
            nonlocal counted
            if counted:
                counted -= n
            else:
                done(n)

        function, on_death = self._prepare()
        return isolated_map(function, self._items, self._workers, on_death, once)

    def stop(self) -> None:
        atexit.unregister(self.stop)
        self._process.stop()


def _serve_warm(
    prepare: Callable[[], tuple[Callable[[Any], Any], Callable[[Any, str], Any]]], connection: Connection, parent: int
) -> None:
    """A WarmPool's process: prepare, then map each batch sent until told to stop."""
    _become_worker(parent)
    try:
        function, on_death = prepare()
    except Exception:  # noqa: BLE001 - the caller's own attempt reports it
        os._exit(1)
    # What was imported lives as long as the workers: out of the collector's sight, it
    # is never walked again, and the forked workers share its pages instead of copying
    # every page a collection would touch.
    gc.freeze()

    def batch(items_and_workers: tuple[list[Any], int]) -> tuple[str, list[Any]]:
        items, workers = items_and_workers
        return "done", isolated_map(function, items, workers, on_death, lambda n: connection.send(("progress", n)))

    _answer(batch, connection)


def death_reason(exitcode: int | None) -> str:
    """`killed by SIGSEGV`, `exited with status 3`."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


def isolated_map(
    function: Callable[[Item], Result],
    items: Sequence[Item],
    workers: int,
    on_death: Callable[[Item, str], Result],
    progress: Callable[[int], None] | None = None,
    time_limit: float | None = None,
    fork: bool = True,
    started: Callable[[int], None] | None = None,
    counted: Callable[[Result], bool] | None = None,
) -> list[Result]:
    """`function` over `items` in up to `workers` processes, in order; an item whose
    worker dies gets `on_death(item, reason)`, and so does one still running after
    `time_limit` seconds (its worker is killed). `progress(1)` after each item,
    `started(index)` as each is handed out; with `counted`, progress only for the
    results it accepts. `fork=False` starts the workers as fresh
    interpreters (see `_context`)."""

    done = progress or (lambda n: None)
    results: list[Any] = [None] * len(items)
    pending = list(range(len(items)))
    pending.reverse()  # popped from the end: first items first
    pool: list[_Worker] = []
    try:
        for _ in range(max(1, min(workers, len(items)))):
            pool.append(_Worker(function, fork))

        def hand_out(worker: _Worker) -> None:
            i = pending.pop()
            if started:
                started(i)
            worker.give(i, items[i])

        for worker in pool:
            if pending:
                hand_out(worker)
        while any(worker.index is not None for worker in pool):
            busy = [w for w in pool if w.index is not None]
            timeout = (
                None if time_limit is None else max(0.0, min(w.since for w in busy) + time_limit - time.monotonic())
            )
            ready = wait([w.connection for w in busy] + [w.process.sentinel for w in busy], timeout)
            for worker in busy:
                overdue = time_limit is not None and time.monotonic() - worker.since > time_limit
                if worker.connection not in ready and worker.process.sentinel not in ready and not overdue:
                    continue
                index = worker.index
                assert index is not None  # a busy worker holds an item
                try:
                    if worker.connection not in ready:
                        worker.process.kill()
                        raise TimeoutError
                    results[index] = worker.connection.recv()
                except Exception:  # noqa: BLE001 - a dead worker's pipe: EOF, reset, a torn message
                    worker.process.join()
                    reason = (
                        f"stopped after {time_limit:g} s"
                        if overdue and worker.connection not in ready
                        else death_reason(worker.process.exitcode)
                    )
                    results[index] = on_death(items[index], reason)
                    worker.connection.close()
                    _LIVE.discard(worker)
                    pool[pool.index(worker)] = worker = _Worker(function, fork)
                if counted is None or counted(results[index]):
                    done(1)
                worker.index = None
                if pending:
                    hand_out(worker)
    finally:
        for worker in pool:
            worker.stop()
    return results


def in_process() -> bool:
    """ENSLINT_DEBUG runs everything in this process, so a debugger and tracebacks reach
    the analysis."""
    return bool(os.environ.get("ENSLINT_DEBUG"))
