"""One economy submission in a worker that dies at a chosen step, as kill -9 would end it
(`os._exit`: no cleanup, no commit of anything still open). For
tests/batches/test_economy_crash.py; run as ``python -m tests.support.economy_crash STEP`` with
the test's database and the fake Anthropic server in the environment.

Steps, in the order `batches.pipeline.economy.economy_submit` takes them:

- ``marked``: the submission is recorded and its documents marked; its requests are not stored.
- ``recorded``: the requests' custom_ids are stored; nothing was sent.
- ``in_flight``: the request is on its way; the worker dies before the provider answers (the
  test makes the fake slow to answer, and the provider creates the batch after the death).
- ``sent``: the provider created the batch and answered; its id is not stored.
- ``stored``: the id is stored and the submission settled; the worker dies just after.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

KILLED = 9
STEPS = ("marked", "recorded", "in_flight", "sent", "stored")


def _die() -> None:
    sys.stdout.flush()
    os._exit(KILLED)


def main(step: str) -> int:
    if step not in STEPS:
        print(f"unknown step {step!r}; one of {', '.join(STEPS)}", file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchsite.settings")
    import django

    django.setup()
    from batches.pipeline import economy
    from extraction.claude.engine import AnthropicEngine

    submit_batch = AnthropicEngine.submit_batch

    def dying_record_requests(**kwargs: Any) -> bool:
        _die()
        return False

    def dying_submit_batch(self: AnthropicEngine, requests: list[tuple[str, Any]]) -> str:
        if step == "recorded":
            _die()
        if step == "in_flight":
            threading.Timer(0.3, _die).start()
        batch_id = submit_batch(self, requests)
        if step == "sent":
            _die()
        return batch_id

    if step == "marked":
        economy._record_requests = dying_record_requests  # type: ignore[assignment]
    elif step == "stored":
        record_submitted = economy._record_submitted

        def dying_record_submitted(**kwargs: Any) -> None:
            record_submitted(**kwargs)
            _die()

        economy._record_submitted = dying_record_submitted  # type: ignore[assignment]
    else:
        AnthropicEngine.submit_batch = dying_submit_batch  # type: ignore[method-assign]
    economy.economy_submit()
    print("the submission finished without dying", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
