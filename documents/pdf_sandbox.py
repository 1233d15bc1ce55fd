"""Reading PDFs in pooled child processes, each read with its own CPU, memory and wall clock limits.

pypdf is pure Python, but a hostile or broken PDF can still make it spin or allocate without end,
and the caller is a multi-threaded worker that must survive any file, so children do the parsing:

- A pool of long-lived children (``python -I pdf_sandbox.py``, started by ``subprocess`` with
  fork+exec, which is safe in a threaded parent) is created lazily; one read holds one child.
- Before each read the child sets its soft RLIMIT_CPU to the CPU time it has used so far plus the
  budget (whole seconds, rounded up), and its soft RLIMIT_AS to the memory budget (the child's whole
  address space, so a read cannot grow it past the budget); the parent enforces the wall clock. A
  child that overruns is killed by the kernel (SIGXCPU) or by the parent and replaced.
- pypdf's own decompression limits apply in the child, so a bomb stops at ``STREAM_MAX_BYTES``.
- Parent and child speak one JSON line each way over the child's stdin/stdout. The child exits at
  EOF on stdin, so it dies with the parent; it never outlives a worker.

This module has no Django import: the child imports only it, the standard library and pypdf.
``documents.readers`` turns `SandboxError` into the user-facing `ExtractionError`.
"""

from __future__ import annotations

import atexit
import base64
import json
import math
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from pypdf import PasswordType, PdfReader

# A text content stream this size is thousands of pages; past it pypdf stops inflating
# (LimitReachedError) instead of expanding a bomb until the memory limit.
STREAM_MAX_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Limits:
    cpu_seconds: float
    memory_mb: int
    wall_seconds: float
    max_pages: int
    max_chars: int
    max_xml_bytes: int = 10 * 2**20  # an embedded e-invoice's XML (documents.pdf_attachments)


@dataclass(frozen=True)
class PdfText:
    text: str  # pages joined with "\f", NULs removed, cut at max_chars
    page_count: int
    truncated: bool
    einvoice: tuple[str, bytes] | None = None  # embedded e-invoice XML: its name and bytes


class SandboxError(Exception):
    """A read that failed because of the file: code is one of encrypted, no_text_layer, malformed,
    too_large, timeout; reason completes "<file> is ...: <reason>" where the code needs one."""

    def __init__(self, code: str, reason: str = "", page_count: int | None = None) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.page_count = page_count  # known for no_text_layer: the pages are there, as images


def read_pdf(path: str, limits: Limits, *, processes: int) -> PdfText:
    """Text of the PDF at ``path``; SandboxError for a bad file, OSError if it cannot be opened.

    Thread-safe: at most ``processes`` reads run at once (the pool is sized on first use).
    """
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = _Pool(processes)
        pool = _pool
    reply = pool.run(path, limits)
    if reply["ok"]:
        attached = reply.get("einvoice")
        einvoice = (attached[0], base64.b64decode(attached[1])) if attached else None
        return PdfText(reply["text"], reply["page_count"], reply["truncated"], einvoice)
    if reply["code"] == "os_error":
        raise OSError(reply["errno"], reply["reason"], path)
    raise SandboxError(reply["code"], reply["reason"], reply.get("page_count"))


def shutdown() -> None:
    """Stop every child. The next read starts a new pool."""
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

    def exchange(self, request: dict[str, Any], limits: Limits) -> dict[str, Any]:
        """Send one request and wait for its reply; a child that overruns or dies raises
        SandboxError and must not be reused."""
        deadline = time.monotonic() + limits.wall_seconds
        try:
            self.stdin.write(json.dumps(request).encode() + b"\n")
        except OSError:
            self._raise_death(limits)
        reply = bytearray()
        fd = self.stdout.fileno()
        while not reply.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._poll.poll(math.ceil(remaining * 1000)):
                self.kill()
                raise SandboxError("timeout", f"it took more than {limits.wall_seconds:g} s")
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                self._raise_death(limits)
            reply += chunk
        result: dict[str, Any] = json.loads(reply)  # the child answers one JSON object a line
        return result

    def _raise_death(self, limits: Limits) -> NoReturn:
        self.kill()
        # The hard CPU limit stays unlimited (so the next read can raise the soft one), so the
        # kernel ends an overrun with SIGXCPU, never SIGKILL.
        if self.process.returncode == -signal.SIGXCPU:
            raise SandboxError(
                "timeout", f"it needs more than {limits.cpu_seconds:g} s of CPU time"
            )
        # Otherwise the likely killers are memory: an allocation under RLIMIT_AS that Python could
        # not turn into MemoryError (the interpreter aborts), or the kernel's OOM killer (SIGKILL).
        raise SandboxError(
            "too_large", f"reading it needs more than {limits.memory_mb} MB of memory"
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

    def run(self, path: str, limits: Limits) -> dict[str, Any]:
        request = {
            "path": os.fspath(path),
            "cpu_seconds": limits.cpu_seconds,
            "memory_bytes": limits.memory_mb * 2**20,
            "max_pages": limits.max_pages,
            "max_chars": limits.max_chars,
            "max_xml_bytes": limits.max_xml_bytes,
        }
        with self._slots:
            child = self._checkout()
            reusable = False
            try:
                reply = child.exchange(request, limits)
                reusable = not reply.get("exiting", False)
            finally:
                # Anything unexpected mid-exchange (even KeyboardInterrupt) leaves a reply in the
                # pipe that the next reader would take for its own, so the child goes.
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
            child.kill()  # died while idle (OOM killer, an operator): reap it and take another
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


# ---- child side: runs as ``python -I pdf_sandbox.py`` -------------------------------------------


class _Refused(Exception):
    def __init__(self, code: str, reason: str = "") -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _serve() -> None:
    import logging
    import resource
    import warnings

    import pypdf

    # The parent handles Ctrl-C; the child leaves when its stdin closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGXCPU's default action dumps core; a killed read should leave no core files behind.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Replies get a private copy of stdout; anything a library prints goes to stderr instead of
    # corrupting the protocol. Unpaired surrogates from broken font maps cannot be stored as text.
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8", errors="replace")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # pypdf logs every repaired xref table; the parent reports what matters.
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    pypdf.overwrite_configuration(
        disable_legacy_handling=True,  # skips a per-reader scan for deprecated module constants
        jbig2dec_binary=None,  # never start another program from the sandbox
        zlib_maximum_output_length=STREAM_MAX_BYTES,
        lzw_maximum_output_length=STREAM_MAX_BYTES,
        run_length_maximum_output_length=STREAM_MAX_BYTES,
        brotli_maximum_output_length=STREAM_MAX_BYTES,
        jbig2_maximum_output_length=STREAM_MAX_BYTES,
        array_based_stream_maximum_output_length=STREAM_MAX_BYTES,
    )
    cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    memory_hard = resource.getrlimit(resource.RLIMIT_AS)[1]

    for line in sys.stdin.buffer:
        request = json.loads(line)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        # RLIMIT_CPU counts seconds since the process started, in whole seconds.
        cpu_soft = math.ceil(usage.ru_utime + usage.ru_stime + request["cpu_seconds"])
        resource.setrlimit(resource.RLIMIT_CPU, (_at_most(cpu_soft, cpu_hard), cpu_hard))
        resource.setrlimit(
            resource.RLIMIT_AS, (_at_most(request["memory_bytes"], memory_hard), memory_hard)
        )
        try:
            reply = _extract(
                request["path"],
                request["max_pages"],
                request["max_chars"],
                request["max_xml_bytes"],
            )
        except MemoryError:
            # Lift the limit so the reply can be written, then leave: a child that hit the wall
            # mid-allocation is not trusted with the next file.
            resource.setrlimit(resource.RLIMIT_AS, (memory_hard, memory_hard))
            megabytes = request["memory_bytes"] // 2**20
            reason = f"reading it needs more than {megabytes} MB of memory"
            reply = {"ok": False, "code": "too_large", "reason": reason, "exiting": True}
        replies.write(json.dumps(reply, ensure_ascii=False) + "\n")
        replies.flush()
        if reply.get("exiting"):
            return


def _at_most(value: int, hard: int) -> int:
    return value if hard == -1 else min(value, hard)  # -1 is RLIM_INFINITY


def _extract(path: str, max_pages: int, max_chars: int, max_xml_bytes: int) -> dict[str, Any]:
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import LimitReachedError

    from documents.pdf_attachments import AttachmentTooLarge, invoice_attachment

    page_number = 0
    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not _opens_without_password(reader, PasswordType):
            raise _Refused("encrypted")
        page_count = len(reader.pages)
        if page_count == 0:
            raise _Refused("malformed", "it has no pages")
        if page_count > max_pages:
            raise _Refused(
                "too_large", f"it has {page_count:,} pages and the limit is {max_pages:,}"
            )
        texts: list[str] = []
        size = 0
        for page_number in range(1, page_count + 1):
            # A form feed inside a page would shift every later page number.
            text = reader.pages[page_number - 1].extract_text()
            text = text.replace("\x00", "").replace("\f", "\n")
            texts.append(text)
            size += len(text) + 1
            if size - 1 > max_chars:
                break
        page_number = 0
        einvoice = invoice_attachment(reader, max_bytes=max_xml_bytes)
    except AttachmentTooLarge as error:
        return {"ok": False, "code": "too_large", "reason": str(error)}
    except _Refused as refused:
        return {"ok": False, "code": refused.code, "reason": refused.reason}
    except LimitReachedError as error:
        where = f"page {page_number}" if page_number else "it"
        reason = f"{where} goes past a safety limit of the PDF reader ({_short(error)})"
        return {"ok": False, "code": "too_large", "reason": reason}
    except OSError as error:
        reason = error.strerror or str(error)
        return {"ok": False, "code": "os_error", "errno": error.errno, "reason": reason}
    except MemoryError:
        raise
    except Exception as error:
        reason = f"page {page_number}: {_short(error)}" if page_number else _short(error)
        return {"ok": False, "code": "malformed", "reason": reason}
    if not any(text.strip() for text in texts):
        return {"ok": False, "code": "no_text_layer", "reason": "", "page_count": page_count}
    text = "\f".join(texts)
    return {
        "ok": True,
        "text": text[:max_chars],
        "page_count": page_count,
        "truncated": len(text) > max_chars,
        "einvoice": [einvoice[0], base64.b64encode(einvoice[1]).decode()] if einvoice else None,
    }


def _opens_without_password(reader: PdfReader, password_type: type[PasswordType]) -> bool:
    try:
        return reader.decrypt("") != password_type.NOT_DECRYPTED
    except Exception:  # unsupported or broken encryption: as closed as a real password
        return False


def _short(error: Exception) -> str:
    """The first line of a pypdf error, without its full stop (messages add their own)."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return lines[0][:200].rstrip(".")


if __name__ == "__main__":
    # `python -I` leaves the project off sys.path; appended, it cannot shadow the standard library.
    sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    _serve()
