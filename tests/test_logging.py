"""LOG_FORMAT=json writes one JSON object per log record, on one line."""

from __future__ import annotations

import json
import logging
import sys

from batchsite.logging import JsonFormatter


def _record(message: str, *args: object, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord(
        "batches.services", logging.ERROR, __file__, 1, message, args, exc_info
    )


def test_a_record_becomes_one_json_line():
    line = JsonFormatter().format(_record("batch %s finished\nwith %d errors", "b-1", 2))

    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "batches.services"
    assert entry["message"] == "batch b-1 finished\nwith 2 errors"
    assert entry["time"].endswith("+00:00")


def test_an_exception_stays_on_the_same_line():
    try:
        raise ValueError("broken PDF")
    except ValueError:
        line = JsonFormatter().format(_record("read failed", exc_info=sys.exc_info()))

    assert "\n" not in line
    assert "ValueError: broken PDF" in json.loads(line)["exception"]
