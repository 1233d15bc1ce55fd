"""Writes about users, and the limits service every surface asks "may this user do this?"."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import date, datetime, timedelta

from django.core.files.storage import Storage, default_storage
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template.defaultfilters import filesizeformat, pluralize
from django.utils import timezone

from accounts.billing.services import customer_forget, subscription_cancel_now
from accounts.billing.stripe_client import BillingError
from accounts.models import ApiKey, MonthlyUsage, Submission, User
from accounts.plans import Plan, PlanKey
from accounts.selectors import api_key_get_for_user, month_start, user_usage
from batches.models import DraftFile
from batchsite.errors import Problem, Rejected
from documents.models import Document
from documents.services import document_stored_files

logger = logging.getLogger(__name__)


def user_set_notify_batch_email(*, user: User, enabled: bool) -> User:
    """Turn the email sent when one of the user's batches finishes on or off."""
    user.notify_batch_email = enabled
    user.save(update_fields=["notify_batch_email"])
    return user


def user_set_plan_override(*, user: User, plan_key: str | None) -> User:
    """Set the staff override (a plan key), or clear it with None so the plan is automatic."""
    if plan_key is not None and plan_key not in PlanKey.values:
        raise ValueError(f"unknown plan {plan_key!r}; choose one of {', '.join(PlanKey.values)}")
    user.plan_override = plan_key or ""
    user.save(update_fields=["plan_override"])
    return user


def user_delete(*, user: User, confirm_email: str) -> None:
    """Delete an account and everything it owns, once the user has typed their email address.

    A live Stripe subscription is canceled first, and the Stripe customer deleted (which also
    cancels a subscription whose webhook has not arrived yet); if Stripe refuses, nothing is
    deleted. Then the account is deactivated (its sessions and API keys stop working, so
    nothing new is added while it goes), the rows go in one transaction (the user, and by
    cascade their batches, documents, upload drafts, API keys, subscription, usage and
    submissions), and once that has committed their uploaded files are deleted from storage.
    Deleting files only after the commit means a rolled-back deletion never loses files; a
    storage error leaves an unreachable file behind, logged. Workers holding one of the
    documents find it gone and drop their result (their updates are conditional on the row).
    """
    if " ".join(confirm_email.split()).lower() != user.email.lower():
        raise Rejected.one(
            "invalid", "Type your email address exactly as shown to confirm the deletion."
        )
    try:
        subscription_cancel_now(user=user)
        customer_forget(user=user)
    except BillingError as exc:
        raise Rejected.one(
            "conflict",
            "Stripe could not cancel your subscription or delete your billing record, so "
            f"nothing was deleted ({exc}). Try again, or cancel it from the billing page first.",
        ) from None
    User.objects.filter(pk=user.pk).update(is_active=False)
    folder = f"uploads/{user.pk}"
    with transaction.atomic():
        paths = {
            name
            for file, read_result in Document.objects.filter(user=user).values_list(
                "file", "read_result"
            )
            for name in document_stored_files(file=file, read_result=read_result)
        }
        # Files uploaded into a draft the user never submitted (batches.drafts).
        paths |= set(DraftFile.objects.filter(draft__user=user).values_list("file", flat=True))
        User.objects.filter(pk=user.pk).delete()
        transaction.on_commit(lambda: _files_delete(paths=paths, folder=folder))


def _files_delete(*, paths: set[str], folder: str) -> None:
    # Files left by an upload or a batch deletion that died half-way are not on any row.
    for path in sorted(paths | set(_stored_files(default_storage, folder))):
        try:
            default_storage.delete(path)
        except Exception:
            logger.exception("account deletion: could not delete %s; it is unreachable", path)


def _stored_files(storage: Storage, folder: str) -> list[str]:
    """Every file under `folder`, for storages that can list (FileSystemStorage, S3...)."""
    try:
        folders, files = storage.listdir(folder)
    except (FileNotFoundError, NotImplementedError):
        return []
    found = [f"{folder}/{name}" for name in files]
    for name in folders:
        found.extend(_stored_files(storage, f"{folder}/{name}"))
    return found


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
    *, user: User, plan: Plan, documents: int, now: datetime | None = None, rate: bool = True
) -> None:
    """Refuse a submission that cannot fit the month's quota or the hour's rate (`rate=False`:
    the quota only, for what is no submission), without reserving anything
    (`limits_reserve_submission` or `quota_reserve` decides, atomically)."""
    now = now or timezone.now()
    usage = user_usage(user, now=now)
    if usage.documents_this_month + documents > plan.documents_per_month:
        raise _quota_exceeded(plan, used=usage.documents_this_month, documents=documents)
    if rate and usage.submissions_last_hour >= plan.submissions_per_hour:
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


# --- API keys ------------------------------------------------------------------------------------

API_KEY_PREFIX = "sk_sheaf_"
API_KEY_LOOKUP_LENGTH = 8
API_KEY_TOUCH_EVERY = timedelta(minutes=1)


def _api_key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(*, user: User, name: str) -> tuple[ApiKey, str]:
    """Make a key for `user`. Returns the key and its secret, which is not stored and cannot be
    shown again: only its first characters (to find it) and a hash are kept."""
    name = " ".join((name or "").split())
    if not name:
        raise Rejected.one("invalid", "Give the key a name, e.g. the program that will use it.")
    if len(name) > ApiKey.NAME_MAX_LENGTH:
        raise Rejected.one(
            "invalid", f"The key's name is longer than {ApiKey.NAME_MAX_LENGTH} characters."
        )
    for _ in range(5):
        secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
        prefix = secret[len(API_KEY_PREFIX) :][:API_KEY_LOOKUP_LENGTH]
        try:
            with transaction.atomic():
                key = ApiKey.objects.create(
                    user=user, name=name, prefix=prefix, hashed_secret=_api_key_hash(secret)
                )
        except IntegrityError:
            continue  # a prefix already taken: draw another key
        return key, secret
    raise RuntimeError("could not draw an unused API key prefix")


def api_key_revoke(*, user: User, key_id: int) -> ApiKey:
    """Revoke one of the user's keys (Http404 for anyone else's); revoking twice is harmless."""
    key = api_key_get_for_user(user=user, key_id=key_id)
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    key.refresh_from_db()
    return key


class ApiKeyInvalid(Exception):
    """The presented API key is unknown, revoked, or belongs to a deactivated account."""


def api_key_authenticate(*, secret: str, now: datetime | None = None) -> ApiKey:
    """The active key whose secret this is, or ApiKeyInvalid. Notes the time of use, at most
    once a minute, so a busy client does not turn every request into a write."""
    now = now or timezone.now()
    if not secret.startswith(API_KEY_PREFIX):
        raise ApiKeyInvalid("This is not a Sheaf API key (they start with sk_sheaf_).")
    prefix = secret[len(API_KEY_PREFIX) :][:API_KEY_LOOKUP_LENGTH]
    key = ApiKey.objects.select_related("user").filter(prefix=prefix).first()
    if key is None or not hmac.compare_digest(key.hashed_secret, _api_key_hash(secret)):
        raise ApiKeyInvalid("Unknown API key.")
    if key.revoked_at is not None:
        raise ApiKeyInvalid("This API key was revoked.")
    if not key.user.is_active:
        raise ApiKeyInvalid("This account is deactivated.")
    stale = now - API_KEY_TOUCH_EVERY
    # Checked here first: an UPDATE that matches no row still takes SQLite's write lock, which
    # every API request would then queue for behind the workers' writes.
    if key.last_used_at is None or key.last_used_at < stale:
        ApiKey.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale), pk=key.pk
        ).update(last_used_at=now)
    return key
