"""Work on untrusted input in pooled child processes, each call under its own CPU, memory and
wall-clock limits.

Reading an upload (pypdf, pdfium, openpyxl, the csv module) and the offline engine's label
matching work on what anyone can upload: a hostile or broken file can make them spin or allocate
without end (pdfium, a C library, aborts the process when an allocation fails), and the caller is
a multi-threaded worker that must survive any file. So children do that work:

- A child serves named operations (`OPERATIONS`): "read" turns a stored upload into text,
  "extract" runs an engine whose work is CPU (`Engine.sandboxed`: the offline engine). Every call
  brings its operation's `Limits`, so a later operation (OCR, page rendering) is one more entry
  and one more function in the child, not another pool.
- A pool of long-lived children (``python -I documents/sandbox.py``, started by ``subprocess``
  with fork+exec, which is safe in a threaded parent) is created lazily; one call holds one child.
- Before each call the child sets its soft RLIMIT_CPU to the CPU time it has used so far plus the
  budget (whole seconds, rounded up), and its soft RLIMIT_AS to the memory budget (the child's
  whole address space, so a call cannot grow it past the budget); the parent enforces the wall
  clock. A child that overruns is killed by the kernel (SIGXCPU) or by the parent and replaced.
- Memory goes back: a child whose resident memory is above the call's ``recycle_mb`` once it has
  answered exits, and the next call starts a fresh one. CPython keeps the arenas it freed, so a
  child that once held a large workbook would otherwise keep that memory for good.
- Parent and child speak one JSON line each way over the child's stdin/stdout (`json_bytes`).
  The child exits at EOF on stdin, so it dies with the parent; it never outlives a worker.

The child imports only this module, the standard library and what its operations need (the
"read" operation pypdf, pypdfium2 and openpyxl, the offline engine its own package), each on first
use. Callers turn `SandboxError` into the errors their users see.
"""

from __future__ import annotations

import atexit
import importlib
import json
import math
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import orjson


@dataclass(frozen=True)
class Limits:
    cpu_seconds: float
    memory_mb: int
    wall_seconds: float


@dataclass(frozen=True)
class Operation:
    # "module:function", imported by the child on first use. The function takes the call's JSON
    # arguments and returns a JSON object, or raises `Refused` when its input is at fault.
    target: str
    # The work as a reason names it: "reading it needs more than 100 MB of memory".
    subject: str


OPERATIONS: dict[str, Operation] = {
    "read": Operation("documents.formats:read", "reading it"),
    "extract": Operation("extraction.running:extract_operation", "extracting from it"),
    "ocr": Operation("documents.ocr:ocr", "OCR"),
    "render": Operation("documents.rendering:render", "drawing its page"),
}


class SandboxError(Exception):
    """A call that failed because of its input: code is timeout or too_large when a limit stopped
    it, else what the operation refused with (encrypted, malformed, too_large);
    reason completes "<file> is ...: <reason>" where the code needs one; details are what the
    operation still knew (the page count of a PDF), or, when a limit
    stopped the call, which: {"limit": "memory" | "cpu" | "wall"}."""

    def __init__(self, code: str, reason: str = "", details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.details = details or {}


class Refused(Exception):
    """Raised by an operation, in the child, when its input is at fault; the caller gets it as a
    `SandboxError` with the same code, reason and details."""

    def __init__(self, code: str, reason: str = "", **details: Any) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.details = details


def run(
    operation: str,
    arguments: dict[str, Any],
    limits: Limits,
    *,
    processes: int | None = None,
    recycle_mb: int | None = None,
) -> dict[str, Any]:
    """The answer of `operation` to `arguments`, computed in a child under `limits`.

    Raises SandboxError when the input is at fault or a limit stopped the call, OSError when the
    operation could not open a file, RuntimeError when the operation itself failed (a bug).
    Thread-safe: at most ``processes`` calls run at once (the pool is sized on first use); a child
    above ``recycle_mb`` of resident memory after a call is replaced. Both default to the Django
    settings SHEAF_READER_PROCESSES (at most one per CPU) and SHEAF_READER_RECYCLE_MB.
    """
    if operation not in OPERATIONS:
        raise ValueError(f"{operation!r} is not a sandbox operation; known: {sorted(OPERATIONS)}")
    if recycle_mb is None:
        recycle_mb = _setting("SHEAF_READER_RECYCLE_MB")
    global _pool
    with _pool_lock:
        if _pool is None:
            if processes is None:
                processes = min(os.cpu_count() or 1, _setting("SHEAF_READER_PROCESSES"))
            _pool = _Pool(processes)
        pool = _pool
    request = {
        "operation": operation,
        "arguments": arguments,
        "cpu_seconds": limits.cpu_seconds,
        "memory_bytes": limits.memory_mb * 2**20,
        "recycle_bytes": recycle_mb * 2**20,
    }
    reply = pool.run(request, limits, OPERATIONS[operation].subject)
    if reply["ok"]:
        result: dict[str, Any] = reply["result"]
        return result
    if reply["code"] == "os_error":
        raise OSError(reply["errno"], reply["reason"], reply.get("filename"))
    if reply["code"] == "crashed":
        raise RuntimeError(f"the sandbox's {operation!r} operation failed: {reply['reason']}")
    raise SandboxError(reply["code"], reply["reason"], reply.get("details"))


def _setting(name: str) -> int:
    # Only callers in a Django process get here; the child never imports Django for this.
    from django.conf import settings

    value: int = getattr(settings, name)
    return value


def shutdown() -> None:
    """Stop every child. The next call starts a new pool."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.close()


class _Child:
    def __init__(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-I", os.path.abspath(__file__)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin = self.process.stdin
        self.stdout = self.process.stdout
        self._poll = select.poll()  # not select.select: worker fds can be above 1024
        self._poll.register(self.stdout.fileno(), select.POLLIN)

    def exchange(self, request: dict[str, Any], limits: Limits, subject: str) -> dict[str, Any]:
        """Send one request and wait for its reply; a child that overruns or dies raises
        SandboxError and must not be reused."""
        deadline = time.monotonic() + limits.wall_seconds
        try:
            self.stdin.write(json_bytes(request) + b"\n")
        except OSError:
            self._raise_death(limits, subject)
        reply = bytearray()
        fd = self.stdout.fileno()
        while not reply.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._poll.poll(math.ceil(remaining * 1000)):
                self.kill()
                raise SandboxError(
                    "timeout", f"it took more than {limits.wall_seconds:g} s", {"limit": "wall"}
                )
            # A pipe holds 64 KiB: a larger buffer is only a fresh mmap on every read.
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self._raise_death(limits, subject)
            reply += chunk
        return from_json_bytes(reply)

    def _raise_death(self, limits: Limits, subject: str) -> NoReturn:
        self.kill()
        # The hard CPU limit stays unlimited (so the next call can raise the soft one), so the
        # kernel ends an overrun with SIGXCPU, never SIGKILL.
        if self.process.returncode == -signal.SIGXCPU:
            raise SandboxError(
                "timeout",
                f"it needs more than {limits.cpu_seconds:g} s of CPU time",
                {"limit": "cpu"},
            )
        # Otherwise the likely killers are memory: an allocation under RLIMIT_AS that Python could
        # not turn into MemoryError (the interpreter aborts), or the kernel's OOM killer (SIGKILL).
        raise SandboxError(
            "too_large",
            f"{subject} needs more than {limits.memory_mb} MB of memory",
            {"limit": "memory"},
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.stdin.close()
        self.stdout.close()

    def close(self) -> None:
        """Ask an idle child to exit (EOF on its stdin), killing it if it does not."""
        self.stdin.close()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.stdout.close()


class _Pool:
    def __init__(self, size: int) -> None:
        self._slots = threading.BoundedSemaphore(max(size, 1))
        self._lock = threading.Lock()
        self._idle: list[_Child] = []
        self._all: set[_Child] = set()
        self._closed = False

    def run(self, request: dict[str, Any], limits: Limits, subject: str) -> dict[str, Any]:
        with self._slots:
            child = self._checkout()
            reusable = False
            try:
                reply = child.exchange(request, limits, subject)
                reusable = not reply.get("exiting", False)
            finally:
                # Anything unexpected mid-exchange (even KeyboardInterrupt) leaves a reply in the
                # pipe that the next caller would take for its own, so the child goes.
                self._checkin(child, reusable)
        return reply

    def _checkout(self) -> _Child:
        while True:
            with self._lock:
                if not self._idle:
                    break
                child = self._idle.pop()
                if child.process.poll() is None:
                    return child
                self._all.discard(child)
            child.kill()  # died while idle (OOM killer, an operator, a recycle): reap, take another
        child = _Child()
        with self._lock:
            self._all.add(child)
        return child

    def _checkin(self, child: _Child, reusable: bool) -> None:
        with self._lock:
            if reusable and not self._closed:
                self._idle.append(child)
                return
            self._all.discard(child)
        if reusable:
            child.close()
        else:
            child.kill()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            for child in idle:
                self._all.discard(child)
        for child in idle:
            child.close()

    def forget(self) -> None:
        """In a forked copy of the parent: drop its copies of the pipes, leave the children be."""
        for child in self._all:
            child.stdin.close()
            child.stdout.close()


_pool: _Pool | None = None
_pool_lock = threading.Lock()


def _forget_pool_after_fork() -> None:
    # A forked process (e.g. a django-q2 worker started by fork) must not share the parent's
    # children, and holding their stdin open would stop them from seeing EOF when the parent dies.
    global _pool, _pool_lock
    _pool_lock = threading.Lock()
    if _pool is not None:
        _pool.forget()
        _pool = None


os.register_at_fork(after_in_child=_forget_pool_after_fork)
atexit.register(shutdown)


# ---- child side: runs as ``python -I documents/sandbox.py`` --------------------------------------


def serve() -> None:
    """Answer requests from stdin until it closes (the child's main loop)."""
    import logging
    import resource
    import warnings

    # The parent handles Ctrl-C; the child leaves when its stdin closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGXCPU's default action dumps core; a killed call should leave no core files behind.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Replies get a private copy of stdout; anything a library prints goes to stderr instead of
    # corrupting the protocol.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # pypdf logs every repaired xref table, openpyxl warns about every unknown extension; the
    # parent reports what matters.
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    memory_hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    functions: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}

    for line in sys.stdin.buffer:
        request = from_json_bytes(line)
        name = request["operation"]
        operation = OPERATIONS[name]
        reply: dict[str, Any]
        try:
            # Our own code, imported before the limits apply: under a small RLIMIT_AS an import
            # fails as ImportError ("failed to map segment"), which would read as a bug.
            if name not in functions:
                functions[name] = _load(operation.target)
            usage = resource.getrusage(resource.RUSAGE_SELF)
            # RLIMIT_CPU counts seconds since the process started, in whole seconds.
            cpu_soft = math.ceil(usage.ru_utime + usage.ru_stime + request["cpu_seconds"])
            resource.setrlimit(resource.RLIMIT_CPU, (_at_most(cpu_soft, cpu_hard), cpu_hard))
            resource.setrlimit(
                resource.RLIMIT_AS, (_at_most(request["memory_bytes"], memory_hard), memory_hard)
            )
            reply = {"ok": True, "result": functions[name](request["arguments"])}
        except Refused as refused:
            reply = {
                "ok": False,
                "code": refused.code,
                "reason": refused.reason,
                "details": refused.details,
            }
        except MemoryError:
            # Lift the limit so the reply can be written, then leave: a child that hit the wall
            # mid-allocation is not trusted with the next call.
            resource.setrlimit(resource.RLIMIT_AS, (memory_hard, memory_hard))
            megabytes = request["memory_bytes"] // 2**20
            reason = f"{operation.subject} needs more than {megabytes} MB of memory"
            reply = {
                "ok": False,
                "code": "too_large",
                "reason": reason,
                "details": {"limit": "memory"},
                "exiting": True,
            }
        except OSError as error:
            reply = {
                "ok": False,
                "code": "os_error",
                "errno": error.errno,
                "reason": error.strerror or str(error),
                "filename": error.filename,
            }
        except Exception as error:  # a bug in the operation: its state is not to be trusted
            reason = f"{type(error).__name__}: {_first_line(error)}"
            reply = {"ok": False, "code": "crashed", "reason": reason, "exiting": True}
        if _resident_bytes() > request["recycle_bytes"]:
            reply["exiting"] = True
        replies.write(json_bytes(reply) + b"\n")
        replies.flush()
        if reply.get("exiting"):
            return


def json_bytes(value: Any) -> bytes:
    """`value` as compact UTF-8 JSON. orjson writes it in a tenth of the json module's time
    (a page's words are hundreds of floats); what orjson refuses (an integer past 64 bits, an
    unpaired surrogate from a broken font map) goes through the json module, marked with a
    leading "J" so the other side reads it back exactly, surrogates replaced."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return b"J" + json.dumps(value, ensure_ascii=False).encode("utf-8", errors="replace")


def from_json_bytes(line: bytes | bytearray) -> dict[str, Any]:
    """An object written by `json_bytes`."""
    if line[:1] == b"J":
        marked: dict[str, Any] = json.loads(bytes(line[1:]))
        return marked
    answer: dict[str, Any] = orjson.loads(line)
    return answer


def _load(target: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    module, _, function = target.partition(":")
    loaded: Callable[[dict[str, Any]], dict[str, Any]] = getattr(
        importlib.import_module(module), function
    )
    return loaded


def _at_most(value: int, hard: int) -> int:
    return value if hard == -1 else min(value, hard)  # -1 is RLIM_INFINITY


def _resident_bytes() -> int:
    """This process's resident memory now (not its peak, which never comes down)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except OSError:  # no /proc (not Linux): never recycle
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return lines[0][:200]


if __name__ == "__main__":
    # -I keeps the project off sys.path, and operations live in its packages. Serve from the
    # package's copy of this module, so the `Refused` operations raise is the one caught above.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from documents.sandbox import serve as serve_from_package

    serve_from_package()
