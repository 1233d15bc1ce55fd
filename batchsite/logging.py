"""JSON log lines for LOG_FORMAT=json, one object per record; what a management command's
verbosity lets through to the terminal."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


# The handler of settings.LOGGING that writes to the terminal.
CONSOLE_HANDLER = "console"


def verbosity_threshold(verbosity: int) -> int:
    """The lowest level a command shows at this verbosity (Django's 0 to 3): errors at 0,
    warnings at 1 and 2, every record LOG_LEVEL lets through at 3."""
    if verbosity <= 0:
        return logging.ERROR
    return logging.WARNING if verbosity < 3 else logging.NOTSET


class _Threshold(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level
        self.muted = False

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.muted and record.levelno >= self.level


class CommandLogging:
    """A management command's log lines, as its verbosity asks (see `verbosity_threshold`).

    Entered for the command's run: the terminal handler of settings.LOGGING drops the records
    under the threshold (other handlers, a test's capture among them, still get them).
    `through(handler)` sends the lines to another handler meanwhile, such as one that prints
    above a progress bar.
    """

    def __init__(self, verbosity: int) -> None:
        self._threshold = _Threshold(verbosity_threshold(verbosity))

    def _terminal_handlers(self) -> list[logging.Handler]:
        return [h for h in logging.getLogger().handlers if h.name == CONSOLE_HANDLER]

    def __enter__(self) -> CommandLogging:
        for handler in self._terminal_handlers():
            handler.addFilter(self._threshold)
        return self

    def __exit__(self, *exc: object) -> None:
        for handler in self._terminal_handlers():
            handler.removeFilter(self._threshold)

    @contextmanager
    def through(self, handler: logging.Handler) -> Iterator[None]:
        """Log to `handler` instead of the terminal handler while in the block."""
        handler.addFilter(_Threshold(self._threshold.level))
        root = logging.getLogger()
        self._threshold.muted = True
        root.addHandler(handler)
        try:
            yield
        finally:
            root.removeHandler(handler)
            self._threshold.muted = False
