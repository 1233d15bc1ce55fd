"""Writes about users, and the limits service every surface asks "may this user do this?"."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.template.defaultfilters import filesizeformat, pluralize
from django.utils import timezone

from accounts.models import MonthlyUsage, Submission, User
from accounts.plans import Plan, PlanKey
from accounts.selectors import month_start, user_usage
from batchsite.errors import Problem, Rejected


def user_set_plan_override(*, user: User, plan_key: str | None) -> User:
    """Set the staff override (a plan key), or clear it with None so the plan is automatic."""
    if plan_key is not None and plan_key not in PlanKey.values:
        raise ValueError(f"unknown plan {plan_key!r}; choose one of {', '.join(PlanKey.values)}")
    user.plan_override = plan_key or ""
    user.save(update_fields=["plan_override"])
    return user


def limits_check_files(*, plan: Plan, filenames: list[str]) -> list[Problem]:
    """Problems with the number of files in one submission (sizes are checked per file)."""
    if not filenames:
        return [Problem("no_files", "Choose at least one file to upload.")]
    if len(filenames) > plan.files_per_batch:
        noun = "file" if plan.files_per_batch == 1 else "files"
        extra = ", ".join(filenames[plan.files_per_batch :][:5])
        return [
            Problem(
                "too_many_files",
                f"Your {plan.name} plan allows {plan.files_per_batch} {noun} per batch; this "
                f"submission has {len(filenames)} (one too many starts at {extra}).",
            )
        ]
    return []


def limits_check_mode(*, plan: Plan, mode: str) -> list[Problem]:
    if mode == "economy" and not plan.economy_lane:
        return [
            Problem(
                "plan_limit",
                f"The economy lane is part of the Growth plan; your plan is {plan.name}.",
            )
        ]
    return []


def limits_max_file_size_message(plan: Plan) -> str:
    return f"up to {filesizeformat(plan.max_file_size)} per file"


def limits_check_submission(
    *, user: User, plan: Plan, documents: int, now: datetime | None = None
) -> None:
    """Refuse a submission that cannot fit the month's quota or the hour's rate, without
    reserving anything (`limits_reserve_submission` decides, atomically)."""
    now = now or timezone.now()
    usage = user_usage(user, now=now)
    if usage.documents_this_month + documents > plan.documents_per_month:
        raise _quota_exceeded(plan, used=usage.documents_this_month, documents=documents)
    if usage.submissions_last_hour >= plan.submissions_per_hour:
        raise _rate_limited(plan, user, now)


def _quota_exceeded(plan: Plan, *, used: int, documents: int) -> Rejected:
    left = max(plan.documents_per_month - used, 0)
    return Rejected.one(
        "quota_exceeded",
        f"Your {plan.name} plan includes {plan.documents_per_month} "
        f"document{pluralize(plan.documents_per_month)} a month; {used} are used and {left} "
        f"left, so these {documents} do not fit. Upgrade, or wait for next month.",
    )


def _rate_limited(plan: Plan, user: User, now: datetime) -> Rejected:
    return Rejected.one(
        "rate_limited",
        f"Your {plan.name} plan allows {plan.submissions_per_hour} batch "
        f"submission{pluralize(plan.submissions_per_hour)} an hour; try again later.",
        retry_after=_seconds_until_a_submission_frees(user, now),
    )


@transaction.atomic
def quota_reserve(*, user: User, plan: Plan, documents: int, now: datetime | None = None) -> date:
    """Take `documents` from this month's quota with one conditional UPDATE, or raise Rejected.

    The UPDATE locks the user's usage row until the surrounding transaction ends, so concurrent
    submissions by one user are serialised and cannot pass the quota together. Returns the month
    the documents were reserved in (a refund goes back to that month).
    """
    month = month_start(now)
    MonthlyUsage.objects.get_or_create(user=user, month=month)
    reserved = MonthlyUsage.objects.filter(
        user=user, month=month, documents__lte=plan.documents_per_month - documents
    ).update(documents=F("documents") + documents)
    if not reserved:
        used = user_usage(user, now=now).documents_this_month
        raise _quota_exceeded(plan, used=used, documents=documents)
    return month


@transaction.atomic
def limits_reserve_submission(
    *, user: User, plan: Plan, documents: int, now: datetime | None = None
) -> date:
    """Reserve a new batch's documents and check the hourly submission rate, atomically.

    Runs inside the transaction that creates the batch: the quota row lock taken first also
    serialises the hourly count. Returns the month the documents were reserved in.
    """
    now = now or timezone.now()
    month = quota_reserve(user=user, plan=plan, documents=documents, now=now)
    submissions = user_usage(user, now=now).submissions_last_hour
    if submissions >= plan.submissions_per_hour:
        raise _rate_limited(plan, user, now)
    Submission.objects.create(user=user, created_at=now)
    return month


def _seconds_until_a_submission_frees(user: User, now: datetime) -> int:
    oldest = (
        Submission.objects.filter(user=user, created_at__gt=now - timedelta(hours=1))
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    if oldest is None:
        return 60
    return max(int((oldest + timedelta(hours=1) - now).total_seconds()) + 1, 1)


def quota_release(*, user_id: int, month: date, documents: int = 1) -> None:
    """Give documents back to the month they were reserved in (failed permanently, canceled)."""
    MonthlyUsage.objects.filter(user_id=user_id, month=month, documents__gte=documents).update(
        documents=F("documents") - documents
    )


def submissions_prune(*, now: datetime | None = None) -> int:
    """Forget submissions older than a day; only the last hour's count for anything."""
    cutoff = (now or timezone.now()) - timedelta(days=1)
    deleted, _ = Submission.objects.filter(created_at__lt=cutoff).delete()
    return deleted
