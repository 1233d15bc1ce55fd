"""The processes the bench starts, and its own console output.

Every process the bench starts runs in its own session and is killed with its group on exit,
error or Ctrl-C (`stop_all`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


_STARTED: list[Process] = []


class Process:
    """A child in its own session, so that stopping it stops everything it started; as a
    context manager, stopped when the block ends."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        with open(log_path, "ab") as out:
            self.popen = subprocess.Popen(  # noqa: S603
                argv,
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _STARTED.append(self)

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left of it."""
        if self in _STARTED:
            _STARTED.remove(self)
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
            try:
                self.popen.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            if not _group_alive(self.pid):
                return
            # The leader is gone but children of the group may linger: kill them too.
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_all() -> None:
    for process in _STARTED:  # all at once first, then one by one
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    for process in list(reversed(_STARTED)):
        try:
            process.stop(grace=5.0)
        except Exception as exc:  # keep stopping the others
            log(f"could not stop {process.name} ({process.pid}): {exc}")


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(  # noqa: S603
        [PYTHON, "manage.py", *args],
        cwd=REPO,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def wait_for(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    process: Process | None = None,
    step: float = 0.05,
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if process is not None and not process.alive():
            raise RuntimeError(f"{process.name} exited while waiting for {what}:\n{process.tail()}")
        if time.monotonic() > deadline:
            tail = f":\n{process.tail()}" if process is not None else ""
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}{tail}")
        time.sleep(step)
