"""django-q2 tasks of the documents app: thin, they call a service."""

from __future__ import annotations

from documents.services import originals_expire


def originals_expire_task() -> int:
    """The daily retention run (schedule `sheaf-retention`); does nothing while
    SHEAF_RETENTION_DAYS is unset."""
    return originals_expire()
