"""examples/follow_events.py, as the README shows it, against a live server: it follows a batch
over server-sent events until the batch has finished."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from accounts.services import api_key_create
from batches.tasks import drain
from notifications import live
from tests.notifications.test_live import two_invoices
from tests.support.cluster import REPO


@pytest.mark.django_db(transaction=True)
def test_the_example_prints_each_event_until_the_batch_has_finished(alice, live_server, settings):
    _, secret = api_key_create(user=alice, name="example")
    batch = two_invoices(alice, settings)
    follower = subprocess.Popen(  # noqa: S603 (our own example, with this interpreter)
        [sys.executable, str(REPO / "examples" / "follow_events.py"), str(batch.pk)],
        env={**os.environ, "SHEAF_URL": live_server.url, "SHEAF_API_KEY": secret},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not live.TAIL.streams and time.monotonic() < deadline:
            time.sleep(0.05)  # until the example's stream is open
        drain(budget_seconds=120)
        out, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
        live.TAIL.stop()

    assert follower.returncode == 0, err
    lines = out.splitlines()
    assert lines[0].split()[1:] == ["batch.started", "processing"]
    assert sorted(line.split()[2] for line in lines if "document.completed" in line) == [
        "1.pdf",
        "2.pdf",
    ]
    assert lines[-1].split()[1:] == ["batch.completed", "completed"]
