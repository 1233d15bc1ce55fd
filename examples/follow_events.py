"""Follow a Sheaf batch as it runs, over server-sent events, and resume after a dropped
connection without missing an event.

Standard library only (Python 3.9+):

    SHEAF_URL=http://127.0.0.1:8000 SHEAF_API_KEY=sk_sheaf_... \\
        python examples/follow_events.py BATCH_ID

It prints one line per event (`<id> <type> <what>`) and exits 0 when the batch has finished
(`batch.completed`, `batch.failed` or `batch.canceled`), 1 on an API error. A connection that
drops is opened again with the last event id it saw (`Last-Event-ID`), so the events in between
come first; a `resync` means the gap was too old: the batch is read again.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

FINISHED = {"batch.completed", "batch.failed", "batch.canceled"}


def events(url: str, key: str, last_id: str | None) -> Iterator[dict]:
    """The server-sent events at `url`, each `{"id", "type", "created_at", "data"}`."""
    headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
    if last_id is not None:
        headers["Last-Event-ID"] = last_id
    # The heartbeat comes every 15 s: a read that waits longer means the connection is gone.
    with urlopen(Request(url, headers=headers), timeout=45) as response:  # noqa: S310
        fields: dict[str, str] = {}
        for raw in response:
            line = raw.decode("utf-8").rstrip("\r\n")
            if line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
            elif "data" in fields:
                yield json.loads(fields["data"])
                fields = {}
            else:
                fields = {}


def describe(event: dict) -> str:
    data = event["data"]
    if "document" in data:
        document = data["document"]
        return f"{document['filename']} {document.get('status', '')}".strip()
    batch = data.get("batch", {})
    if event["type"] == "batch.progress":
        return f"{batch['percent']}% ({batch['counts']['completed']} completed)"
    return batch.get("status", "")


def follow(base: str, key: str, batch_id: str, *, out=sys.stdout) -> int:
    url = f"{base.rstrip('/')}/api/v1/events/?batch={batch_id}"
    last_id: str | None = None
    while True:
        try:
            for event in events(url, key, last_id):
                if event["type"] == "heartbeat":
                    continue
                if event["type"] == "resync":
                    print("resync: read the batch again", file=out, flush=True)
                    continue
                last_id = str(event["id"])
                print(f"{event['id']} {event['type']} {describe(event)}", file=out, flush=True)
                if event["type"] in FINISHED:
                    return 0
        except HTTPError as error:
            body = json.loads(error.read() or b"{}")
            print(f"error {error.code}: {body.get('code')}: {body.get('detail')}", file=sys.stderr)
            return 1
        except (URLError, TimeoutError, ConnectionError) as error:
            print(f"connection lost ({error}); resuming after {last_id}", file=sys.stderr)
            time.sleep(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("batch", help="the batch id")
    args = parser.parse_args()
    base = os.environ.get("SHEAF_URL", "http://127.0.0.1:8000")
    key = os.environ.get("SHEAF_API_KEY", "")
    if not key:
        print("Set SHEAF_API_KEY to an API key (Settings, API keys).", file=sys.stderr)
        return 1
    return follow(base, key, args.batch)


if __name__ == "__main__":
    sys.exit(main())
