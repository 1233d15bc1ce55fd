"""The worker cluster: django-q2's, made to stop within seconds of SIGINT or SIGTERM.

`manage.py qcluster` is Sheaf's command (`batches/management/commands/qcluster.py`), which starts
this cluster instead of django-q2's own. Three things in django-q2 kept a stopping cluster alive:

- The parent's signal handler is not reentrant. Python runs a handler between any two bytecodes,
  so a second SIGINT or SIGTERM (Ctrl-C, then a SIGTERM from the Makefile or from systemd) that
  arrives while the first handler is inside `stop_event.set()` runs the handler again inside it,
  and the second `set()` waits for the lock the first one holds: the parent hangs until SIGKILL.
- The parent stops the guard with `stop_event.set()`, which waits until every process asleep in
  the event's `wait()` has woken. The guard sleeps there between its rounds, so when every
  process gets SIGTERM at once (systemd's default KillMode, `kill -TERM -<group>`) the guard dies
  asleep, never wakes, and the parent waits for it for good.
- On a stop the guard waits for every worker to finish its task, and a drain holds its worker for
  up to SHEAF_DRAIN_SECONDS; nothing tells the drain that the cluster is stopping.

So only the first signal is handled; the parent sets the event from a thread while it waits for
the guard to exit, however the guard exits; and the first signal raises a flag in shared memory
that every process of the cluster sees (the guard and its workers are forked from the parent
that made it). A drain then stops taking work, gives the documents in flight
SHEAF_STOP_GRACE_SECONDS to finish, and returns; a document still in flight stays under its
lease, which the sweep requeues once it expires, as after a crash. The flag is a plain shared
byte with no lock: a worker killed while reading it cannot leave a lock behind for the parent to
wait on.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import signal
import threading
from types import FrameType
from typing import Any

from django_q.cluster import Cluster as QCluster
from django_q.conf import logger

_stopping: ctypes.c_bool | None = None


def stop_requested() -> bool:
    """Whether the cluster this process belongs to is stopping; False outside a cluster (the
    tests, `manage.py batch process`)."""
    return _stopping is not None and bool(_stopping.value)


class Cluster(QCluster):  # type: ignore[misc]  # django-q2 is untyped
    # Set by django-q2's `__init__` and `start`.
    sentinel: Any
    start_event: Any
    stop_event: Any

    def __init__(self, broker: Any = None) -> None:
        global _stopping
        # Made before `start()` forks the guard, so that the guard and its workers share it.
        _stopping = multiprocessing.RawValue(ctypes.c_bool, False)
        super().__init__(broker)

    def sig_handler(self, signum: int, frame: FrameType | None) -> None:
        # From here on the kernel drops SIGINT and SIGTERM, so no second handler can start
        # inside this one. One that was already pending may still run first, and then this one
        # finds the flag raised and leaves the stop to it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if _stopping is None or _stopping.value:
            return
        _stopping.value = True
        super().sig_handler(signum, frame)

    def stop(self) -> bool:
        """django-q2's `stop`, but for how the guard is told (see the module's docstring)."""
        if not self.sentinel.is_alive():
            return False
        logger.info("Q Cluster %s stopping.", self.name)
        threading.Thread(target=self.stop_event.set, name="qcluster-stop", daemon=True).start()
        self.sentinel.join()
        logger.info("Q Cluster %s has stopped.", self.name)
        self.start_event = None
        self.stop_event = None
        return True
