"""The worker side of a batch: how each document is claimed, read, extracted and finished, and
how the sweep recovers from crashes. `batches.services` holds the use cases people call; the
drain task (`batches.tasks`) and `manage.py batch process` run this package through `runner`.

The names below are the package's interface; its modules are named by topic.
"""

from batches.pipeline.circuits import (
    PAUSED_REASON,
    PROBE_FIRST_SECONDS,
    PROBE_MAX_SECONDS,
    circuit_open,
    circuits_probe,
    circuits_probe_soon,
)
from batches.pipeline.claims import (
    ROUND_ROBIN_TICK,
    Claim,
    document_claim,
    document_renew_leases,
    kick_workers,
)
from batches.pipeline.economy import (
    ECONOMY_CHUNK,
    ECONOMY_LEASE,
    FALLBACK,
    SUBMITTING,
    economy_collect,
    economy_recover,
    economy_submit,
)
from batches.pipeline.finishing import (
    COUNTERS_EVERY,
    OPEN_STATUSES,
    batch_refresh,
    document_complete,
    document_fail,
    retry_delay,
)
from batches.pipeline.processing import document_process
from batches.pipeline.recovery import seconds_until_next_due, sweep, work_remaining

__all__ = [
    "COUNTERS_EVERY",
    "ECONOMY_CHUNK",
    "ECONOMY_LEASE",
    "FALLBACK",
    "OPEN_STATUSES",
    "PAUSED_REASON",
    "PROBE_FIRST_SECONDS",
    "PROBE_MAX_SECONDS",
    "ROUND_ROBIN_TICK",
    "SUBMITTING",
    "Claim",
    "batch_refresh",
    "circuit_open",
    "circuits_probe",
    "circuits_probe_soon",
    "document_claim",
    "document_complete",
    "document_fail",
    "document_process",
    "document_renew_leases",
    "economy_collect",
    "economy_recover",
    "economy_submit",
    "kick_workers",
    "retry_delay",
    "seconds_until_next_due",
    "sweep",
    "work_remaining",
]
