"""The worker cluster: django-q2's, in one process fewer, made to stop within seconds of SIGINT or
SIGTERM.

`manage.py qcluster` is Sheaf's command (`batches/management/commands/qcluster.py`), which starts
this cluster instead of django-q2's own.

django-q2's command forks a sentinel, which forks the pusher, the monitor and the workers and
guards them, while the command's own process only waits for the sentinel and passes a signal on.
Here the command's process is the sentinel: each process of a cluster holds Django and the app
(about 60 MB resident, most of it shared after the fork but counted in each), so the cluster is
four processes and a worker each instead of five and a worker each.

Three things in django-q2 kept a stopping cluster alive, and this cluster avoids them:

- django-q2's signal handler is not reentrant. Python runs a handler between any two bytecodes,
  so a second SIGINT or SIGTERM (Ctrl-C, then a SIGTERM from the Makefile or from systemd) that
  arrives while the first handler is inside `stop_event.set()` runs the handler again inside it,
  and the second `set()` waits for the lock the first one holds. Here only the first signal is
  handled, and it sets the event from a thread: the guard may be inside the event's `wait()` on
  this very thread when the signal comes.
- django-q2's parent stopped the guard with `stop_event.set()`, which waits until every process
  asleep in the event's `wait()` has woken; a guard killed asleep there never woke. The guard is
  now this process, which ignores SIGINT and SIGTERM from the first of them on.
- On a stop the guard waits for every worker to finish its task, and a drain holds its worker for
  up to SHEAF_DRAIN_SECONDS; nothing told the drain that the cluster is stopping. The first signal
  raises a flag in shared memory that every process of the cluster sees (the workers are forked
  from the process that made it). A drain then stops taking work, gives the documents in flight
  SHEAF_STOP_GRACE_SECONDS to finish, and returns; a document still in flight stays under its
  lease, which the sweep requeues once it expires, as after a crash. The flag is a plain shared
  byte with no lock: a worker killed while reading it cannot leave a lock behind.

The pusher, the monitor and the workers keep the signal dispositions django-q2's sentinel gave
them: SIGINT ignored (a stop reaches them through the guard and the flag) and SIGTERM's default
(systemd's control-group stop ends them at once, which the leases make safe). The guard holds
both signals while it forks one, and the child sets its dispositions before it releases them,
so no signal reaches a child's copy of the guard's handler; the guard's own handlers stay in
place throughout.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.util import register_after_fork
from types import FrameType
from typing import Any

from django_q.cluster import Cluster as QCluster
from django_q.cluster import Sentinel as QSentinel
from django_q.conf import logger

_stopping: ctypes.c_bool | None = None

_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
# How long a stop waits for a worker killed by the same SIGTERM to be gone.
KILLED_WORKER_SECONDS = 5.0


def stop_requested() -> bool:
    """Whether the cluster this process belongs to is stopping; False outside a cluster (the
    tests, `manage.py batch process`)."""
    return _stopping is not None and bool(_stopping.value)


@contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM held (pending, not lost) on this thread inside: a process forked
    inside starts with them held, until `_as_sentinels_child` has set its dispositions. This
    process's handlers stay in place, so a signal that another thread takes meanwhile is
    handled as ever."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


class _AfterFork:
    """The key `multiprocessing.util.register_after_fork` needs (anything weakly referenceable)."""


_AFTER_FORK = _AfterFork()


def _as_sentinels_child(_key: _AfterFork) -> None:
    """In each forked child: the dispositions django-q2's sentinel gave its children, then the
    signals released (a SIGTERM sent meanwhile ends the child now; a SIGINT is dropped)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


# multiprocessing runs this in every child it forks, before the child's target.
register_after_fork(_AFTER_FORK, _as_sentinels_child)


class Sentinel(QSentinel):  # type: ignore[misc]  # django-q2 is untyped
    """django-q2's sentinel, run in the command's own process."""

    def spawn_process(self, target: Any, *args: Any) -> Any:
        with _signals_held():
            return super().spawn_process(target, *args)

    def reincarnate(self, process: Any) -> None:
        # Under systemd's control-group stop the workers die of the same SIGTERM that stops
        # the guard; they must not come back while it stops.
        if stop_requested():
            return
        super().reincarnate(process)

    def stop(self) -> None:
        self.event_out.set()
        while self.pusher.is_alive():
            time.sleep(0.1)
        # The pusher leaves normally when told to. Killed by SIGTERM, it is systemd's
        # control-group stop, which sent every process of the cluster that SIGTERM, whose
        # default ends them: django-q2's stop would put poison pills for dead workers into a
        # task queue that may be full, and take queue locks a killed process may still hold,
        # and wait for good. The guard waits for its children to be gone instead (and kills any
        # left), and leaves; the leases make the documents they held safe.
        if self.pusher.exitcode == -signal.SIGTERM:
            for process in [*self.pool, self.monitor]:
                process.join(KILLED_WORKER_SECONDS)
                if process.is_alive():
                    process.kill()
                    process.join()
            return
        # A worker that died otherwise takes no pill either.
        self.pool[:] = [process for process in self.pool if process.is_alive()]
        super().stop()


class Cluster(QCluster):  # type: ignore[misc]  # django-q2 is untyped
    # Set by django-q2's `__init__`.
    name: str
    sentinel: Any
    start_event: Any
    stop_event: Any

    def __init__(self, broker: Any = None) -> None:
        global _stopping
        # Made before the guard forks, so that every process of the cluster shares it.
        _stopping = multiprocessing.RawValue(ctypes.c_bool, False)
        # Set by the first signal; a thread started with the guard passes it on to stop_event.
        self._stop_asked = threading.Event()
        super().__init__(broker)
        self.stop_event = multiprocessing.Event()
        self.start_event = multiprocessing.Event()

    def start(self) -> int:
        """Guard the cluster in this process until a stop (SIGINT or SIGTERM, or `stop()`
        called beforehand, which stops it after the first round: `qcluster --run-once`)."""
        logger.info("Q Cluster %s starting.", self.name)
        threading.Thread(target=self._relay_stop, name="qcluster-stop", daemon=True).start()
        # django-q2's sentinel sets SIGINT ignored and SIGTERM's default for its children as
        # it is made; this process keeps its handlers. (A SIGINT held meanwhile is dropped.)
        with _signals_held():
            on_int, on_term = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
            try:
                self.sentinel = Sentinel(
                    self.stop_event,
                    self.start_event,
                    self.cluster_id,
                    self.broker,
                    self.timeout,
                    start=False,
                )
            finally:
                signal.signal(signal.SIGINT, on_int)
                signal.signal(signal.SIGTERM, on_term)
        self.sentinel.start()  # spawns the processes, guards them, and stops them
        logger.info("Q Cluster %s has stopped.", self.name)
        return int(self.pid)

    def _relay_stop(self) -> None:
        # stop_event.set() waits for the lock of the event's wait(), which the guard may hold
        # on the very thread the signal interrupted: it is set from here, not from the handler.
        self._stop_asked.wait()
        self.stop_event.set()

    def sig_handler(self, signum: int, frame: FrameType | None) -> None:
        # From here on the kernel drops SIGINT and SIGTERM, so no second handler can start
        # inside this one. One that was already pending may still run first, and then this one
        # finds the flag raised and leaves the stop to it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if getattr(self, "stop_event", None) is None:
            raise SystemExit(128 + signum)  # still being made: nothing runs yet
        if self.stop():
            logger.info("Q Cluster %s stopping.", self.name)

    def stop(self) -> bool:
        """Ask the guard to stop, as the first signal does; False if it was stopping."""
        if _stopping is None or _stopping.value:
            return False
        _stopping.value = True
        self._stop_asked.set()
        return True
