"""Sheaf's own error type for refused requests, shared by the dashboard, the API and the CLI.

Each problem carries a stable `code` (see README, "Error codes") and a message a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass

HTTP_STATUS = {
    "unsupported_type": 400,
    "empty_file": 400,
    "file_too_large": 400,
    "too_many_files": 400,
    "no_files": 400,
    "invalid_fields": 400,
    "invalid_json": 400,
    "invalid_review": 400,
    "invalid_prompt": 400,
    "invalid_start_at": 400,
    "invalid": 400,
    "not_authenticated": 401,
    "plan_limit": 403,
    "quota_exceeded": 403,
    "not_found": 404,
    "conflict": 409,
    "idempotency_mismatch": 422,
    "rate_limited": 429,
}


@dataclass(frozen=True)
class Problem:
    code: str
    message: str

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 400)


class Rejected(Exception):
    """A request Sheaf refuses as a whole; nothing was stored."""

    def __init__(self, problems: list[Problem], *, retry_after: int | None = None) -> None:
        if not problems:
            raise ValueError("Rejected needs at least one problem")
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems
        self.retry_after = retry_after

    @classmethod
    def one(cls, code: str, message: str, *, retry_after: int | None = None) -> Rejected:
        return cls([Problem(code, message)], retry_after=retry_after)

    @property
    def code(self) -> str:
        return self.problems[0].code

    @property
    def http_status(self) -> int:
        return max(p.http_status for p in self.problems)
